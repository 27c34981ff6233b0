"""Personal data encrypted at rest (AES-256-GCM), with blind indexes for exact search, under a keyring.

A :class:`FieldCipher` holds a keyring: the primary master key (``KEFU_DATA_KEY``)
and, while a rotation runs, the old ones (``KEFU_DATA_KEY_OLD``). From each
32-byte master key three values are derived with HKDF-SHA256 under different
``info`` labels: the key that encrypts values, the key that computes blind
indexes, and an 8-byte key id that names the key in every ciphertext (it
reveals nothing about the key). New values are always encrypted and indexed
with the primary key; a stored value is decrypted with whichever key of the
ring its key id names.

Every call names a ``context`` — the field the value belongs to, such as
``"complaint.phone"``. It is bound into the ciphertext as associated data, so a
value copied into another field (or another record type) no longer decrypts,
and it is mixed into the blind index, so the same phone number indexes
differently in different fields.

Stored layout of a ciphertext (format 2): the version byte 2, the 8-byte key
id, the 12-byte random nonce, then the AES-GCM ciphertext with its 16-byte tag;
the version byte and the key id are authenticated with the context. Format 1
(written before key ids existed: version byte 1, nonce, ciphertext) is still
read, by trying the keys of the ring.

Losing the master key loses every encrypted value: in embedded mode it lives in
``var/data_key``; back that file up together with the database.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kefu.core.config import ConfigError, environment_value, read_embedded_addresses, var_dir
from kefu.core.errors import DomainError
from kefu.core.i18n import _l

KEY_SIZE = 32
KEY_ID_SIZE = 8
NONCE_SIZE = 12
TAG_SIZE = 16
FORMAT_VERSION = 2
LEGACY_FORMAT_VERSION = 1  # no key id: written before keyrings existed, still read
_VERSION_BYTE = bytes([FORMAT_VERSION])
_LEGACY_VERSION_BYTE = bytes([LEGACY_FORMAT_VERSION])
_ENCRYPTION_INFO = b"kefu field encryption v1"
_INDEX_INFO = b"kefu blind index v1"
_KEY_ID_INFO = b"kefu key id v1"

DATA_KEY_FILE_NAME = "data_key"
GENERATE_KEY_HINT = (
    "python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'"
)


class DecryptionFailed(DomainError):
    """A stored value could not be decrypted: wrong key, wrong field, or the bytes were altered."""

    code = "decryption_failed"


def generate_data_key() -> str:
    """A new random master key, base64-encoded, as ``KEFU_DATA_KEY`` expects it."""
    return base64.b64encode(os.urandom(KEY_SIZE)).decode("ascii")


def parse_data_key(value, *, source: str = "KEFU_DATA_KEY") -> bytes:
    """The 32 key bytes encoded in ``value`` (standard or URL-safe base64 text).

    Raises ``ConfigError`` with one line naming ``source`` (never the key itself)
    when the value is not base64 of exactly 32 bytes.
    """
    try:
        text = value.decode("ascii") if isinstance(value, (bytes, bytearray)) else str(value)
        text = "".join(text.split()).replace("-", "+").replace("_", "/")
        text += "=" * (-len(text) % 4)
        key = base64.b64decode(text, validate=True)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        raise ConfigError(
            f"{source} is not valid base64; it must be the base64 of 32 random bytes, "
            f"generate one with: {GENERATE_KEY_HINT}"
        ) from None
    if len(key) != KEY_SIZE:
        raise ConfigError(
            f"{source} decodes to {len(key)} bytes but must be exactly {KEY_SIZE}; "
            f"generate one with: {GENERATE_KEY_HINT}"
        )
    return key


def _is_set(value) -> bool:
    return value not in (None, "", "0", 0, False)


def _embedded_mode(config: dict) -> bool:
    """The same notion as ``Settings.load``: the launcher's flag, its address file, or a key file kept earlier."""
    flag = config.get("KEFU_EMBEDDED")
    if flag is None:
        flag = environment_value("KEFU_EMBEDDED")
    return (
        _is_set(flag)
        or (var_dir() / DATA_KEY_FILE_NAME).exists()
        or bool(read_embedded_addresses())
    )


def embedded_data_key() -> bytes:
    """The master key kept in ``var/data_key`` in embedded mode, generated once on first use.

    The file is created readable by its owner only (0600), atomically, so two
    processes starting together end up with the same key.
    """
    key_file: Path = var_dir() / DATA_KEY_FILE_NAME
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it just now; read theirs
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(generate_data_key() + "\n")
    return parse_data_key(key_file.read_text().strip(), source=str(key_file))


def data_key_from_config(config: dict) -> bytes:
    """The 32-byte master key for :class:`FieldCipher`; raises ``ConfigError``.

    Looked up in ``config["KEFU_DATA_KEY"]`` (an app's config always holds it, see
    ``kefu.core.config.Settings``), then for a bare ``config`` in the ``KEFU_DATA_KEY``
    environment variable (the same precedence as ``Settings.load``). In embedded
    mode (``KEFU_EMBEDDED``, the launcher's ``var/embedded.json`` or an existing
    ``var/data_key``) a key is generated once and kept in ``var/data_key``.
    """
    value = config.get("KEFU_DATA_KEY") or environment_value("KEFU_DATA_KEY")
    if value:
        return parse_data_key(value)
    if _embedded_mode(config):
        return embedded_data_key()
    raise ConfigError(
        "KEFU_DATA_KEY is not set: it encrypts personal data at rest and must be the base64 of "
        f"32 random bytes; generate one with: {GENERATE_KEY_HINT} (and keep it safe: "
        "without it the encrypted data cannot be read)"
    )




def old_data_keys_from_config(config: dict) -> list[bytes]:
    """The old master keys of a rotation: ``KEFU_DATA_KEY_OLD``, base64 keys separated by commas; raises
    ``ConfigError``.

    Looked up like :func:`data_key_from_config` (``config``, then for a bare ``config`` the environment); none is
    the usual case.
    """
    value = config.get("KEFU_DATA_KEY_OLD") or environment_value("KEFU_DATA_KEY_OLD")
    parts = [part.strip() for part in str(value or "").split(",") if part.strip()]
    if len(parts) == 1:
        return [parse_data_key(parts[0], source="KEFU_DATA_KEY_OLD")]
    return [parse_data_key(part, source=f"KEFU_DATA_KEY_OLD (key {number})")
            for number, part in enumerate(parts, start=1)]


def _derive(master_key: bytes, info: bytes, length: int = KEY_SIZE) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master_key)


def _context_bytes(context: str) -> bytes:
    if not isinstance(context, str) or not context:
        raise ValueError("context must be a non-empty string such as 'complaint.phone'")
    return context.encode("utf-8")


def _blob_bytes(blob) -> bytes | None:
    return bytes(blob) if isinstance(blob, (bytes, bytearray, memoryview)) else None


def key_id_of(blob) -> str | None:
    """The key id a ciphertext names (16 hex digits), None for a format 1 one (which names none) or other bytes."""
    data = _blob_bytes(blob)
    if data is None or data[:1] != _VERSION_BYTE or len(data) < 1 + KEY_ID_SIZE + NONCE_SIZE + TAG_SIZE:
        return None
    return data[1:1 + KEY_ID_SIZE].hex()


class _RingKey:
    """What one master key gives: its key id, its encryption key and its blind-index key."""

    __slots__ = ("key_id", "aead", "index_key")

    def __init__(self, master_key: bytes):
        self.key_id = _derive(master_key, _KEY_ID_INFO, KEY_ID_SIZE)
        self.aead = AESGCM(_derive(master_key, _ENCRYPTION_INFO))
        self.index_key = _derive(master_key, _INDEX_INFO)

    def index(self, normalised_value: str, context_bytes: bytes) -> str:
        message = len(context_bytes).to_bytes(4, "big") + context_bytes + normalised_value.encode("utf-8")
        return hmac.new(self.index_key, message, hashlib.sha256).hexdigest()


class FieldCipher:
    """Encrypts, decrypts and blind-indexes field values with a keyring: the primary master key, which every new
    value is encrypted and indexed with, and the old keys of a rotation, which still decrypt what they encrypted."""

    def __init__(self, master_key: bytes, old_keys=()):
        ring: list[_RingKey] = []
        for key in (master_key, *old_keys):
            if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_SIZE:
                raise ValueError(f"FieldCipher needs {KEY_SIZE}-byte master keys")
            derived = _RingKey(bytes(key))
            if all(derived.key_id != known.key_id for known in ring):
                ring.append(derived)
        self._ring = tuple(ring)
        self._by_id = {key.key_id: key for key in ring}

    @classmethod
    def from_config(cls, config: dict) -> "FieldCipher":
        """A cipher with the key :func:`data_key_from_config` finds and the old keys of
        :func:`old_data_keys_from_config`; raises ``ConfigError``."""
        return cls(data_key_from_config(config), old_data_keys_from_config(config))

    def __repr__(self) -> str:  # never show key material (a key id reveals nothing about its key)
        return f"<FieldCipher key_id={self.key_id} old={len(self._ring) - 1}>"

    @property
    def key_id(self) -> str:
        """The primary key's id (16 hex digits): every new ciphertext names it."""
        return self._ring[0].key_id.hex()

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of every key of the ring, the primary first."""
        return tuple(key.key_id.hex() for key in self._ring)

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        """``plaintext`` encrypted with the primary key under a fresh random nonce, bound to ``context``."""
        if not isinstance(plaintext, str):
            raise TypeError("FieldCipher.encrypt takes a str")
        key = self._ring[0]
        header = _VERSION_BYTE + key.key_id
        nonce = os.urandom(NONCE_SIZE)
        return header + nonce + key.aead.encrypt(nonce, plaintext.encode("utf-8"), header + _context_bytes(context))

    def decrypt(self, blob, *, context: str) -> str:
        """The text ``encrypt`` was given; raises :class:`DecryptionFailed`.

        It fails when no key of the ring is the one that encrypted it, ``context``
        is not the one used to encrypt, or any byte of ``blob`` was changed.
        """
        return self._open(blob, context)[1]

    def opening_key_id(self, blob, *, context: str) -> str:
        """The id of the ring's key that decrypts ``blob`` (checked by decrypting it); raises
        :class:`DecryptionFailed`."""
        return self._open(blob, context)[0].key_id.hex()

    def under_primary_key(self, blob) -> bool:
        """Whether ``blob`` names the primary key (format 2); says nothing about whether it decrypts."""
        return key_id_of(blob) == self.key_id

    def reencrypt(self, blob, *, context: str) -> bytes:
        """``blob``'s text encrypted with the primary key; ``blob`` itself when it is so already. Raises
        :class:`DecryptionFailed` like :meth:`decrypt`."""
        if self.under_primary_key(blob):
            return bytes(blob)
        return self.encrypt(self.decrypt(blob, context=context), context=context)

    def _open(self, blob, context: str) -> tuple[_RingKey, str]:
        context_bytes = _context_bytes(context)
        data = _blob_bytes(blob) or b""
        if data[:1] == _VERSION_BYTE and len(data) >= 1 + KEY_ID_SIZE + NONCE_SIZE + TAG_SIZE:
            header = data[:1 + KEY_ID_SIZE]
            named = self._by_id.get(data[1:1 + KEY_ID_SIZE])
            candidates: tuple[_RingKey, ...] = (named,) if named is not None else ()
        elif data[:1] == _LEGACY_VERSION_BYTE and len(data) >= 1 + NONCE_SIZE + TAG_SIZE:
            header, candidates = _LEGACY_VERSION_BYTE, self._ring
        else:
            raise DecryptionFailed(_l("加密数据“%(context)s”格式不正确，无法解密", context=context))
        nonce, sealed = data[len(header):len(header) + NONCE_SIZE], data[len(header) + NONCE_SIZE:]
        for key in candidates:
            try:
                return key, key.aead.decrypt(nonce, sealed, header + context_bytes).decode("utf-8")
            except InvalidTag:
                continue
        raise DecryptionFailed(_l("加密数据“%(context)s”无法解密：密钥不符或数据已被改动", context=context))

    def blind_index(self, normalised_value: str, *, context: str) -> str:
        """A deterministic keyed hash (HMAC-SHA256, 64 hex digits) of ``normalised_value`` under the primary key,
        for exact search; stored next to the ciphertext.

        Pass the canonical form (e.g. from ``kefu.core.validation.normalize_phone``):
        values that differ in any character index differently.
        """
        return self.blind_indexes(normalised_value, context=context)[0]

    def blind_indexes(self, normalised_value: str, *, context: str) -> list[str]:
        """:meth:`blind_index` under every key of the ring, the primary first: what a lookup matches (``$in``)
        while a rotation runs, since a record not yet re-encrypted keeps its index under an old key."""
        if not isinstance(normalised_value, str):
            raise TypeError("FieldCipher.blind_index takes a str")
        context_bytes = _context_bytes(context)
        return [key.index(normalised_value, context_bytes) for key in self._ring]
