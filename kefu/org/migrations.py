"""Upgrades of the organisation's stored documents, run by every start (``kefu.runtime.prepare``): idempotent and
resumable.

``encrypt_plaintext_personal_data``: customers and users written before personal data was encrypted hold their
``phone`` / ``id_number`` / ``address`` in clear. Each such document gets, in one update, the ciphertexts and blind
indexes (as ``kefu.org.customers`` and ``kefu.org.users`` store them) and loses the plaintext (``$unset``). The update
matches the plaintext it read, so a document changed meanwhile is left for the next batch; a crash between batches
leaves every document either as it was or migrated, and the next start finishes the rest.
"""
from __future__ import annotations

from typing import Callable

from pymongo import UpdateOne
from pymongo.errors import OperationFailure

from kefu.core.validation import InvalidValue, normalize_id_number, normalize_phone
from kefu.org import customers, users
from kefu.org.personal import index_of, seal

DEFAULT_BATCH_SIZE = 500


def _canonical(normalise: Callable[[str], str] | None, text: str) -> tuple[str, str | None]:
    """``(the text to store, the text to index)``: a legacy value no longer accepted is kept as it was, unindexed."""
    if normalise is None:
        return text, None
    try:
        canonical = normalise(text)
    except InvalidValue:
        return text, None
    return canonical, canonical


# collection → [(plaintext key, encryption context, ciphertext key, blind index key or None, normaliser or None)]
PLAINTEXT_FIELDS = {
    customers.Customer._get_collection_name(): [
        (name, customers.CONTEXTS[name], f"{name}_enc", None if name == "address" else f"{name}_bidx", normalise)
        for name, normalise in (("phone", normalize_phone), ("id_number", normalize_id_number),
                                ("address", None))],
    users.User._get_collection_name(): [("phone", users.PHONE, "phone_enc", None, normalize_phone)],
}
# Indexes of the plaintext fields, built by MongoEngine before encryption: dropped with the plaintext.
RETIRED_INDEXES = {customers.Customer._get_collection_name(): ("phone_1", "id_number_1")}


def _changes(document: dict, fields) -> tuple[dict, dict]:
    """``($set, $unset)`` that moves one document's plaintext into ciphertexts."""
    to_set, to_unset = {}, {}
    for plain, context, sealed, index, normalise in fields:
        if plain not in document:
            continue
        to_unset[plain] = ""
        text = document[plain].strip() if isinstance(document[plain], str) else ""
        if not text:
            continue
        stored, indexed = _canonical(normalise, text)
        to_set[sealed] = seal(stored, context)
        if index is not None:
            to_set[index] = index_of(indexed, context)
    return to_set, to_unset


def _migrate_batch(collection, fields, batch_size: int) -> int:
    keys = [plain for plain, *_ in fields]
    operations = []
    for document in collection.find({"$or": [{key: {"$exists": True}} for key in keys]}, keys).limit(batch_size):
        to_set, to_unset = _changes(document, fields)
        # Matching the plaintext read: a document changed since is left as it is, for the next batch.
        guard = {"_id": document["_id"], **{key: document[key] for key in keys if key in document}}
        operations.append(UpdateOne(guard, {"$set": to_set, "$unset": to_unset} if to_set else {"$unset": to_unset}))
    return collection.bulk_write(operations, ordered=False).modified_count if operations else 0


def _drop_retired_indexes(collection, names) -> None:
    existing = set(collection.index_information())
    for name in names:
        if name in existing:
            try:
                collection.drop_index(name)
            except OperationFailure:
                pass  # another process dropped it first


def encrypt_plaintext_personal_data(batch_size: int = DEFAULT_BATCH_SIZE,
                                    say: Callable[[str], None] | None = None) -> int:
    """Encrypt the customers' and users' personal data still stored in clear, ``batch_size`` documents per write,
    telling ``say`` the progress; return how many documents were migrated (0 when there was nothing left)."""
    database = customers.Customer._get_db()
    migrated = 0
    for name, fields in PLAINTEXT_FIELDS.items():
        collection = database[name]
        done = 0
        while moved := _migrate_batch(collection, fields, batch_size):
            done += moved
            if say is not None:
                say(f"{name}: personal data encrypted in {done} documents")
        _drop_retired_indexes(collection, RETIRED_INDEXES.get(name, ()))
        migrated += done
    return migrated
