"""Where ciphertexts are stored, declared by the area that stores them, so a key rotation re-encrypts every one.

An area that keeps values of :class:`kefu.core.crypto.FieldCipher` declares them next to its documents in a
module-level ``ENCRYPTED_STORES`` list, and ``kefu.runtime.keys`` collects the lists (as ``kefu.runtime.storage``
collects ``RECORD_INDEXES``). A collection whose ciphertexts sit at fixed paths is one declaration::

    ENCRYPTED_STORES = [EncryptedFields("customers", (
        EncryptedField("phone", "customer.phone", index="phone_bidx", normalise=normalize_phone),
        EncryptedField("address", "customer.address"),
    ))]

A store whose paths or contexts depend on the document (the records: ``pii.<field>`` under
``<type>.<field>``) implements :class:`EncryptedStore` itself (``kefu.records.encryption``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from pymongo import UpdateOne

from kefu.core.crypto import FORMAT_VERSION, DecryptionFailed, FieldCipher
from kefu.core.db import get_database
from kefu.core.errors import DomainError
from kefu.core.i18n import _l


class UnreadableCiphertext(DomainError):
    """A stored ciphertext opens with no key of the ring: a rotation cannot move it (the message names where)."""

    code = "unreadable_ciphertext"


def unreadable(store: str, document_id, path: str, exc: DecryptionFailed) -> UnreadableCiphertext:
    """The error naming the document and path of a ciphertext no key of the ring decrypts."""
    return UnreadableCiphertext(_l("“%(store)s”中文档 %(id)s 的 %(path)s 无法解密（%(reason)s）；"
                                   "请把加密它的密钥放进 KEFU_DATA_KEY_OLD",
                                   store=store, id=document_id, path=path, reason=exc.message))


class EncryptedStore(Protocol):
    """What a key rotation and the start-up key check need of a place that stores ciphertexts."""

    name: str  # shown in the rotation's progress lines, e.g. "records"

    def sample(self) -> tuple[bytes, str] | None:
        """One stored ciphertext and its context (the start-up check decrypts it), or None when there is none."""

    def count_pending(self, cipher: FieldCipher) -> int:
        """How many documents hold a ciphertext not (known to be) under ``cipher``'s primary key."""

    def reencrypt_batch(self, cipher: FieldCipher, batch_size: int) -> int:
        """Move up to ``batch_size`` pending documents to the primary key (blind indexes recomputed with it), each
        in one write that is skipped when the document changed meanwhile (it stays pending); return how many were
        moved. Raises :class:`UnreadableCiphertext`."""


@dataclass(frozen=True)
class EncryptedField:
    """One ciphertext at a fixed ``path`` (dotted) of every document, encrypted under ``context``; the value may
    also be a list of ciphertexts."""

    path: str
    context: str
    index: str | None = None  # dotted path of its blind index (a list for a list of values), if it has one
    normalise: Callable[[str], str] | None = None  # the decrypted text → the text its index is computed from
    as_hex: bool = False  # stored as hex text instead of binary


def _value_at(document: dict, path: str):
    for part in path.split("."):
        document = document.get(part) if isinstance(document, dict) else None
    return document


def _header_bits(key_id: str) -> tuple[list[int], list[int]]:
    """The bit positions (MongoDB's numbering: bit 0 is the lowest of the first byte) that are set and clear in
    the first bytes of a ciphertext under ``key_id``: its version byte and key id."""
    header = bytes([FORMAT_VERSION]) + bytes.fromhex(key_id)
    positions = [(index * 8 + bit, byte >> bit & 1) for index, byte in enumerate(header) for bit in range(8)]
    return [p for p, value in positions if value], [p for p, value in positions if not value]


@dataclass(frozen=True)
class EncryptedFields:
    """The ciphertexts of a collection at fixed paths (:class:`EncryptedField`): an :class:`EncryptedStore` that
    needs no marker field, since a ciphertext's own header says which key it is under."""

    collection: str
    fields: tuple[EncryptedField, ...]

    @property
    def name(self) -> str:
        return self.collection

    def _holding(self) -> dict:
        return {"$or": [{field.path: {"$nin": [None, "", []]}} for field in self.fields]}

    def _pending(self, cipher: FieldCipher) -> dict:
        set_bits, clear_bits = _header_bits(cipher.key_id)
        prefix = (bytes([FORMAT_VERSION]) + bytes.fromhex(cipher.key_id)).hex()
        options = []
        for field in self.fields:
            if field.as_hex:
                options.append({field.path: {"$type": "string", "$nin": [""], "$not": {"$regex": f"^{prefix}"}}})
            else:
                options += [{field.path: {"$bitsAnyClear": set_bits}}, {field.path: {"$bitsAnySet": clear_bits}}]
        return {"$or": options}

    def sample(self) -> tuple[bytes, str] | None:
        document = get_database()[self.collection].find_one(self._holding(), [f.path for f in self.fields])
        for field in self.fields if document else ():
            value = _value_at(document, field.path)
            value = value[0] if isinstance(value, list) and value else value
            if value:
                return (bytes.fromhex(value) if field.as_hex else bytes(value)), field.context
        return None

    def count_pending(self, cipher: FieldCipher) -> int:
        return get_database()[self.collection].count_documents(self._pending(cipher))

    def reencrypt_batch(self, cipher: FieldCipher, batch_size: int) -> int:
        collection = get_database()[self.collection]
        paths = [f.path for f in self.fields] + [f.index for f in self.fields if f.index]
        operations = []
        for document in collection.find(self._pending(cipher), paths).limit(batch_size):
            guard, changes = {"_id": document["_id"]}, {}
            for field in self.fields:
                stored = _value_at(document, field.path)
                if stored in (None, "", []):
                    continue
                guard[field.path] = stored
                try:
                    moved = [self._moved(cipher, field, value) for value in
                             (stored if isinstance(stored, list) else [stored])]
                except DecryptionFailed as exc:
                    raise unreadable(self.name, document["_id"], field.path, exc) from exc
                changes[field.path] = [blob for blob, _ in moved] if isinstance(stored, list) else moved[0][0]
                if field.index:
                    indexes = [index for _, index in moved]
                    changes[field.index] = indexes if isinstance(stored, list) else indexes[0]
            operations.append(UpdateOne(guard, {"$set": changes}))
        return collection.bulk_write(operations, ordered=False).matched_count if operations else 0

    @staticmethod
    def _moved(cipher: FieldCipher, field: EncryptedField, value) -> tuple:
        """``(ciphertext under the primary key, its blind index)`` of one stored value, as stored."""
        blob = bytes.fromhex(value) if field.as_hex else bytes(value)
        text = cipher.decrypt(blob, context=field.context)
        sealed = blob if cipher.under_primary_key(blob) else cipher.encrypt(text, context=field.context)
        index = cipher.blind_index(field.normalise(text) if field.normalise else text, context=field.context) \
            if field.index else None
        return (sealed.hex() if field.as_hex else sealed), index
