"""The records' encrypted store: sensitive values in ``pii.<field>`` under the context ``<type>.<field>``, their blind
indexes in ``bidx.<field>`` (see ``kefu.records.values.storage_of``), as a key rotation moves them to a new key.

A record whose ciphertexts were moved (or checked) is marked with the key's id in ``enc_key``; a rotation selects the
records whose mark differs, so a run that stopped half-way resumes where it stopped. A record written later carries
no mark and is checked by the next rotation (its values are under the primary key already: only the mark is set).
"""
from __future__ import annotations

import json

from pymongo import UpdateOne

from kefu.core.crypto import DecryptionFailed, FieldCipher
from kefu.core.db import get_database
from kefu.core.encrypted_stores import unreadable
from kefu.core.errors import NotFound
from kefu.core.validation import InvalidValue
from kefu.records.actor import system_actor
from kefu.records.fields import FieldContext, get_field_type
from kefu.records.store import RECORDS
from kefu.records.types import get_record_type
from kefu.records.values import blind_index_text

ENCRYPTION_MARK = "enc_key"  # the id of the key a record's ciphertexts were last moved to
# A record holding at least one ciphertext (``pii`` keeps None for a sensitive value that was cleared).
_HOLDS_CIPHERTEXT = {"$expr": {"$gt": [{"$size": {"$filter": {
    "input": {"$objectToArray": {"$ifNull": ["$pii", {}]}}, "cond": {"$ne": ["$$this.v", None]}}}}, 0]}}


class RecordCiphertexts:
    """The :class:`kefu.core.encrypted_stores.EncryptedStore` of the records collection."""

    name = RECORDS

    @staticmethod
    def _pending(cipher: FieldCipher) -> dict:
        return {ENCRYPTION_MARK: {"$ne": cipher.key_id}, "pii": {"$nin": [None, {}]}}

    def sample(self) -> tuple[bytes, str] | None:
        document = get_database()[RECORDS].find_one(_HOLDS_CIPHERTEXT, {"type": 1, "pii": 1})
        if document is None:
            return None
        key, blob = next((key, blob) for key, blob in document["pii"].items() if blob is not None)
        return bytes(blob), f"{document['type']}.{key}"

    def count_pending(self, cipher: FieldCipher) -> int:
        return get_database()[RECORDS].count_documents(self._pending(cipher))

    def reencrypt_batch(self, cipher: FieldCipher, batch_size: int) -> int:
        collection = get_database()[RECORDS]
        context = FieldContext(tz=system_actor().tz)
        types: dict = {}
        operations = []
        for document in collection.find(self._pending(cipher), {"type": 1, "pii": 1}).limit(batch_size):
            if document["type"] not in types:
                types[document["type"]] = _record_type_or_none(document["type"])
            changes = {ENCRYPTION_MARK: cipher.key_id}
            for key, blob in document["pii"].items():
                if blob is None:
                    continue
                try:
                    changes.update(_moved(cipher, types[document["type"]], document["type"], key, blob, context))
                except DecryptionFailed as exc:
                    raise unreadable(self.name, document["_id"], f"pii.{key}", exc) from exc
            # Matching the ciphertexts read: a record saved meanwhile is left alone and stays pending.
            operations.append(UpdateOne({"_id": document["_id"], "pii": document["pii"]}, {"$set": changes}))
        return collection.bulk_write(operations, ordered=False).matched_count if operations else 0


def _record_type_or_none(type_key: str):
    try:
        return get_record_type(type_key, active_only=False)
    except NotFound:
        return None


def _moved(cipher: FieldCipher, record_type, type_key: str, key: str, blob, context: FieldContext) -> dict:
    """``$set`` of one sensitive value under the primary key: its ciphertext and its blind index (computed from
    the value as ``storage_of`` computes it: cleaned by its field type)."""
    field_context = f"{type_key}.{key}"
    if cipher.under_primary_key(blob):
        return {}
    text = cipher.decrypt(bytes(blob), context=field_context)
    value = json.loads(text)
    definition = record_type.field(key) if record_type is not None else None
    if definition is not None:
        try:
            value = get_field_type(definition.type).clean(value, definition, context)
        except InvalidValue:
            pass  # stored before the definition changed: indexed as stored, as it was
    return {f"pii.{key}": cipher.encrypt(text, context=field_context),
            f"bidx.{key}": cipher.blind_index(blind_index_text(value), context=field_context)}


ENCRYPTED_STORES = [RecordCiphertexts()]
