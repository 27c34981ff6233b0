"""Personal data encrypted at rest (AES-256-GCM), with blind indexes for exact search.

A :class:`FieldCipher` is built from one 32-byte master key (``KEFU_DATA_KEY``).
Two keys are derived from it with HKDF-SHA256 under different ``info`` labels:
one encrypts values, the other computes blind indexes, so an index never
reveals anything about the encryption key and vice versa.

Every call names a ``context`` — the field the value belongs to, such as
``"complaint.phone"``. It is bound into the ciphertext as associated data, so a
value copied into another field (or another record type) no longer decrypts,
and it is mixed into the blind index, so the same phone number indexes
differently in different fields.

Stored layout of a ciphertext: one version byte, the 12-byte random nonce, then
the AES-GCM ciphertext with its 16-byte tag.

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
NONCE_SIZE = 12
TAG_SIZE = 16
FORMAT_VERSION = 1
_VERSION_BYTE = bytes([FORMAT_VERSION])
_ENCRYPTION_INFO = b"kefu field encryption v1"
_INDEX_INFO = b"kefu blind index v1"

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


def _derive(master_key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=info).derive(master_key)


def _context_bytes(context: str) -> bytes:
    if not isinstance(context, str) or not context:
        raise ValueError("context must be a non-empty string such as 'complaint.phone'")
    return context.encode("utf-8")


class FieldCipher:
    """Encrypts, decrypts and blind-indexes field values with keys derived from one master key."""

    def __init__(self, master_key: bytes):
        if not isinstance(master_key, (bytes, bytearray)) or len(master_key) != KEY_SIZE:
            raise ValueError(f"FieldCipher needs a {KEY_SIZE}-byte master key")
        self._aead = AESGCM(_derive(bytes(master_key), _ENCRYPTION_INFO))
        self._index_key = _derive(bytes(master_key), _INDEX_INFO)

    @classmethod
    def from_config(cls, config: dict) -> "FieldCipher":
        """A cipher with the key :func:`data_key_from_config` finds; raises ``ConfigError``."""
        return cls(data_key_from_config(config))

    def __repr__(self) -> str:  # never show key material
        return "<FieldCipher>"

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        """``plaintext`` encrypted under a fresh random nonce, bound to ``context``."""
        if not isinstance(plaintext, str):
            raise TypeError("FieldCipher.encrypt takes a str")
        nonce = os.urandom(NONCE_SIZE)
        associated = _VERSION_BYTE + _context_bytes(context)
        return _VERSION_BYTE + nonce + self._aead.encrypt(nonce, plaintext.encode("utf-8"), associated)

    def decrypt(self, blob, *, context: str) -> str:
        """The text ``encrypt`` was given; raises :class:`DecryptionFailed`.

        It fails when the key differs, ``context`` is not the one used to
        encrypt, or any byte of ``blob`` was changed.
        """
        associated = _VERSION_BYTE + _context_bytes(context)
        data = bytes(blob) if isinstance(blob, (bytes, bytearray, memoryview)) else None
        if data is None or len(data) < 1 + NONCE_SIZE + TAG_SIZE or data[:1] != _VERSION_BYTE:
            raise DecryptionFailed(_l("加密数据“%(context)s”格式不正确，无法解密", context=context))
        nonce, sealed = data[1:1 + NONCE_SIZE], data[1 + NONCE_SIZE:]
        try:
            return self._aead.decrypt(nonce, sealed, associated).decode("utf-8")
        except InvalidTag:
            raise DecryptionFailed(
                _l("加密数据“%(context)s”无法解密：密钥不符或数据已被改动", context=context)
            ) from None

    def blind_index(self, normalised_value: str, *, context: str) -> str:
        """A deterministic keyed hash (HMAC-SHA256, 64 hex digits) of ``normalised_value`` for exact search.

        Pass the canonical form (e.g. from ``kefu.core.validation.normalize_phone``):
        values that differ in any character index differently.
        """
        if not isinstance(normalised_value, str):
            raise TypeError("FieldCipher.blind_index takes a str")
        context_bytes = _context_bytes(context)
        message = len(context_bytes).to_bytes(4, "big") + context_bytes + normalised_value.encode("utf-8")
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()
