"""The data key of this database: the start-up check that refuses a ``KEFU_DATA_KEY`` which cannot read it before
anything is written, and the rotation that moves every stored ciphertext to a new key (``flask kefu rotate-key``).

The document ``data_key`` of the ``kefu_meta`` collection names, by key id (``kefu.core.crypto``: not reversible),
the key new values are written with (``key_id``) and the keys older values may still be under until a rotation
finishes (``older_key_ids``). The ciphertexts are found through the ``ENCRYPTED_STORES`` their areas declare
(``kefu.core.encrypted_stores``), collected here as ``kefu.runtime.storage`` collects the areas' indexes.

A rotation: set ``KEFU_DATA_KEY`` to the new key and ``KEFU_DATA_KEY_OLD`` to the old one, restart every process (from
then on new values are written with the new key and lookups match the blind indexes of both), run
``flask --app app:create_app kefu rotate-key``, then remove ``KEFU_DATA_KEY_OLD`` and restart.
"""
from __future__ import annotations

from typing import Callable

from kefu.core.clock import utcnow
from kefu.core.config import ConfigError
from kefu.core.crypto import DecryptionFailed, FieldCipher, key_id_of
from kefu.core.db import get_database
from kefu.core.encrypted_stores import EncryptedField, EncryptedFields
from kefu.insight import export_jobs, imports, views
from kefu.notify import notifications
from kefu.notify.channels import NotificationSettings
from kefu.org import customers, users
from kefu.records import encryption as record_encryption

META = "kefu_meta"
DATA_KEY = "data_key"  # the _id of the document naming this database's keys
DEFAULT_BATCH_SIZE = 500
ROTATE_COMMAND = "flask --app app:create_app kefu rotate-key"

# The SMTP password of 通知设置 (kefu.notify.channels keeps it as the hex of its ciphertext).
SMTP_PASSWORD = EncryptedFields(NotificationSettings._get_collection_name(), (
    EncryptedField("smtp_password_encrypted", "smtp.password", as_hex=True),))
ENCRYPTED_STORES = (*record_encryption.ENCRYPTED_STORES, *customers.ENCRYPTED_STORES, *users.ENCRYPTED_STORES,
                    *export_jobs.ENCRYPTED_STORES, *imports.ENCRYPTED_STORES, *views.ENCRYPTED_STORES,
                    *notifications.ENCRYPTED_STORES, SMTP_PASSWORD)


def _wrong_key(key_id: str | None) -> ConfigError:
    named = f" (key id {key_id})" if key_id else ""
    return ConfigError(f"KEFU_DATA_KEY does not match the key this database was encrypted with{named}; set the right "
                       "key, or for a rotation put the old key in KEFU_DATA_KEY_OLD")


def _record_keys(primary: str, older: list[str]) -> None:
    """Name ``primary`` as the key new values are written with and ``older`` as those still needed (unless they are
    named so already)."""
    meta = get_database()[META].find_one({"_id": DATA_KEY}) or {}
    if (meta.get("key_id"), meta.get("older_key_ids")) != (primary, older):
        get_database()[META].update_one({"_id": DATA_KEY}, {"$set": {
            "key_id": primary, "older_key_ids": older, "updated_at": utcnow()}}, upsert=True)


def check_data_key(cipher: FieldCipher) -> None:
    """Raise ``ConfigError`` (one line) unless ``cipher``'s keyring holds every key this database's values are under;
    called when an app starts, before anything is written, so a refused start writes nothing.

    Without the ``data_key`` document (a database from before key ids, or one that holds no ciphertext yet), one
    stored ciphertext must decrypt with the ring; the document is recorded once there is one (an empty database is
    left untouched: the next start records the key its first values were written with). A primary key the document
    does not name yet means a rotation was configured: it is recorded as the key new values are written with, the
    earlier ones as still needed.
    """
    meta = get_database()[META].find_one({"_id": DATA_KEY})
    if meta is None:
        sample = next((found for found in (store.sample() for store in ENCRYPTED_STORES) if found), None)
        if sample is None:
            return
        blob, context = sample
        try:
            cipher.opening_key_id(blob, context=context)
        except DecryptionFailed:
            raise _wrong_key(key_id_of(blob)) from None
        _record_keys(cipher.key_id, list(cipher.key_ids[1:]))
        return
    needed = [meta["key_id"], *meta.get("older_key_ids", [])]
    missing = [key_id for key_id in needed if key_id not in cipher.key_ids]
    if len(missing) == len(needed):
        raise _wrong_key(meta["key_id"])
    if missing:
        raise ConfigError(f"a key rotation of this database has not finished and KEFU_DATA_KEY / KEFU_DATA_KEY_OLD lack "
                          f"key id {', '.join(missing)}: put the new key in KEFU_DATA_KEY and the old one in "
                          f"KEFU_DATA_KEY_OLD, then run: {ROTATE_COMMAND}")
    if meta["key_id"] != cipher.key_id:
        _record_keys(cipher.key_id, [key_id for key_id in needed if key_id != cipher.key_id])


def rotate_data_key(cipher: FieldCipher, say: Callable[[str], None], batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Move every ciphertext of every store to ``cipher``'s primary key, ``batch_size`` documents per write, telling
    ``say`` the progress after each batch (``records: 1500/4200``); return how many documents are still not moved
    (0: done).

    Idempotent and resumable: a store re-encrypts only what is not under the primary key, so a second run moves
    nothing and a run that stopped is finished by the next. Once nothing is left, the ``data_key`` document names
    the primary key alone and the old keys may be removed from ``KEFU_DATA_KEY_OLD``; a document saved while its
    batch was written is left for the next run. Raises ``kefu.core.encrypted_stores.UnreadableCiphertext`` for a
    value no key of the ring decrypts.
    """
    for store in ENCRYPTED_STORES:
        total, done = store.count_pending(cipher), 0
        if not total:
            say(f"{store.name}: nothing to re-encrypt")
            continue
        while batch := store.reencrypt_batch(cipher, batch_size):
            done += batch
            say(f"{store.name}: {done}/{max(total, done)}")
    left = sum(store.count_pending(cipher) for store in ENCRYPTED_STORES)
    if not left:
        _record_keys(cipher.key_id, [])
    return left
