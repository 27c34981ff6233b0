"""The MongoDB connection (MongoEngine's ``default`` alias): connect once per process, check it answers; and
transactions — one business save is one MongoDB transaction (:func:`in_transaction`).

Every write is acknowledged only once a majority of the replica set has it in its journal (``w: majority, j:
true`` on the client), so a save that answered 2xx survives a crash of the server or of the whole machine. That
needs a replica set (a single member is enough: the embedded server is one); a standalone ``mongod`` is refused at
start.
"""
from __future__ import annotations

import functools
from contextvars import ContextVar
from datetime import timezone
from typing import Callable, TypeVar

import mongoengine
import pymongo
from gridfs import GridFSBucket
from gridfs.errors import NoFile
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import PyMongoError
from pymongo.uri_parser import parse_uri
from pymongo.write_concern import WriteConcern

from kefu.core.clock import utcnow
from kefu.core.config import DEFAULT_DATABASE, ConfigError, uri_hosts


def database_name(uri: str, explicit: str | None = None) -> str:
    """``explicit``, else the database named in the URI path, else ``kefu``."""
    if explicit:
        return explicit
    try:
        return parse_uri(uri).get("database") or DEFAULT_DATABASE
    except Exception:  # pymongo raises several types for a malformed URI
        return DEFAULT_DATABASE


def connect(uri: str, db_name: str | None = None, timeout_ms: int = 10000):
    """Connect the ``default`` alias and check the server answers; return the pymongo Database.

    Replaces an earlier connection of this process (tests create one app per
    database). Raises ``ConfigError`` with one readable line, naming the host
    but never the password, when the URI is malformed or the server does not
    answer within ``timeout_ms``.
    """
    name = database_name(uri, db_name)
    mongoengine.disconnect(alias="default")
    try:
        client = mongoengine.connect(
            db=name, host=uri, alias="default", tz_aware=True, tzinfo=timezone.utc,
            serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, uuidRepresentation="standard",
            w=DURABLE.document["w"], journal=DURABLE.document["j"], retryWrites=True, retryReads=True,
        )
    except Exception as exc:  # InvalidURI, ConfigurationError, ValueError …
        raise ConfigError(f"MONGODB_URI for {uri_hosts(uri)} is not valid: {exc}") from exc
    try:
        hello = client.admin.command("hello")
    except PyMongoError as exc:
        mongoengine.disconnect(alias="default")
        if isinstance(exc, pymongo.errors.OperationFailure) and exc.code == 18:  # AuthenticationFailed
            raise ConfigError(f"MongoDB at {uri_hosts(uri)} refused the credentials in MONGODB_URI (authentication "
                              "failed); check the user name, password and authSource") from exc
        raise ConfigError(
            f"MongoDB at {uri_hosts(uri)} did not answer within {timeout_ms / 1000:.0f} s "
            f"({type(exc).__name__}); check MONGODB_URI and that the server is running"
        ) from exc
    if not hello.get("setName") and hello.get("msg") != "isdbgrid":
        mongoengine.disconnect(alias="default")
        raise ConfigError(
            f"MongoDB at {uri_hosts(uri)} is a standalone server: kefu needs a replica set (one member is enough: "
            "start mongod with --replSet NAME and run rs.initiate() once) for transactions and journaled writes"
        )
    return client[name]


# Business writes: acknowledged once a majority of the set has journaled them (the client's default too).
DURABLE = WriteConcern("majority", j=True)
T = TypeVar("T")
_transaction: ContextVar[ClientSession | None] = ContextVar("kefu_transaction", default=None)
_after_commit: ContextVar[list | None] = ContextVar("kefu_after_commit", default=None)
# The collection methods that take part in a transaction (all of them take ``session=``); index and collection
# management cannot run inside one and go to the database directly.
_TRANSACTIONAL = frozenset({
    "find", "find_one", "find_one_and_update", "find_one_and_replace", "find_one_and_delete", "insert_one",
    "insert_many", "update_one", "update_many", "replace_one", "delete_one", "delete_many", "bulk_write",
    "count_documents", "distinct", "aggregate",
})


class _TransactionCollection:
    """A collection whose reads and writes join the transaction in progress (pymongo binds an operation to a
    transaction only through its ``session=`` argument; this adds it, so the code of a save reads like any other)."""

    def __init__(self, collection: Collection, session: ClientSession):
        self._collection, self._session = collection, session

    def __getattr__(self, name):
        attribute = getattr(self._collection, name)
        if name in _TRANSACTIONAL:
            return functools.partial(attribute, session=self._session)
        return attribute


class _TransactionDatabase:
    """The database as seen from inside a transaction: its collections are :class:`_TransactionCollection`."""

    def __init__(self, database: Database, session: ClientSession):
        self._database, self._session = database, session

    def __getitem__(self, name: str) -> _TransactionCollection:
        return _TransactionCollection(self._database[name], self._session)

    def __getattr__(self, name):
        return getattr(self._database, name)


def get_database():
    """The pymongo Database behind MongoEngine's ``default`` alias; inside :func:`in_transaction` its collections'
    reads and writes are part of the transaction."""
    database = mongoengine.get_db(alias="default")
    session = _transaction.get()
    return database if session is None else _TransactionDatabase(database, session)


def database_outside_transaction() -> Database:
    """The database for a write that must commit on its own even inside a transaction: a record number taken from
    a counter (a number skipped by a save that failed is harmless; a counter shared by every concurrent save would
    make them conflict), a file streamed into GridFS (removed again by the save that fails)."""
    return mongoengine.get_db(alias="default")


def in_transaction(work: Callable[[], T]) -> T:
    """Run ``work()`` as one MongoDB transaction and return its result: everything it reads and writes through
    :func:`get_database` commits together, with ``w: majority, j: true``, or not at all (an exception from ``work``
    aborts and propagates). pymongo retries the whole of ``work`` on a transient error (a write conflict with a
    concurrent save, an election) within ``MONGODB_TIMEOUT_MS``, so ``work`` must do nothing outside the database it cannot do twice: what must
    happen outside goes to :func:`after_commit`. Called inside a transaction, ``work`` joins it."""
    if _transaction.get() is not None:
        return work()
    committed: list = []

    def attempt(session: ClientSession):
        pending: list = []
        session_token, pending_token = _transaction.set(session), _after_commit.set(pending)
        try:
            result = work()
        finally:
            _transaction.reset(session_token)
            _after_commit.reset(pending_token)
        committed[:] = pending
        return result

    client = mongoengine.get_connection(alias="default")
    # Retried for as long as a request waits for a primary (MONGODB_TIMEOUT_MS, above an election), not pymongo's
    # two minutes: then the save fails whole, and the caller is told to try again (503).
    with client.start_session() as session, pymongo.timeout(client.options.server_selection_timeout):
        result = session.with_transaction(attempt, write_concern=DURABLE)
    for callback in committed:
        callback()
    return result


def transactional(save: Callable[..., T]) -> Callable[..., T]:
    """Decorates a service function: each call is one transaction (:func:`in_transaction`)."""
    @functools.wraps(save)
    def in_one_transaction(*args, **kwargs):
        return in_transaction(lambda: save(*args, **kwargs))

    return in_one_transaction


def after_commit(callback: Callable[[], object]) -> None:
    """Call ``callback()`` once the transaction in progress has committed (never when it aborts); at once outside
    a transaction. For what lives outside MongoDB — queueing a sweep in Redis — and can be derived again from what
    is stored if the process dies in between."""
    pending = _after_commit.get()
    if pending is None:
        callback()
    else:
        pending.append(callback)


def disconnect() -> None:
    """Close the ``default`` connection (a process that only checked the server answers)."""
    mongoengine.disconnect(alias="default")


MIGRATIONS = "migrations"  # one document per one-off data migration that has run to the end on this database


def migration_done(name: str) -> bool:
    """Whether the one-off migration ``name`` has run to the end on this database."""
    return get_database()[MIGRATIONS].count_documents({"_id": name}, limit=1) > 0


def mark_migration_done(name: str) -> None:
    """Note that the one-off migration ``name`` has run to the end (idempotent)."""
    get_database()[MIGRATIONS].update_one({"_id": name}, {"$setOnInsert": {"done_at": utcnow()}},
                                          upsert=True)


def delete_files(bucket_name: str, file_ids) -> None:
    """Delete the GridFS files ``file_ids`` of bucket ``bucket_name``; one already gone is skipped (a clean-up
    interrupted half-way is run again)."""
    bucket = GridFSBucket(get_database(), bucket_name=bucket_name)
    for file_id in file_ids:
        try:
            bucket.delete(file_id)
        except NoFile:
            pass
