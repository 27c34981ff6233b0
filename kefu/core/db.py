"""The MongoDB connection (MongoEngine's ``default`` alias): connect once per process, check it answers."""
from __future__ import annotations

from datetime import timezone

import mongoengine
from pymongo.errors import PyMongoError
from pymongo.uri_parser import parse_uri

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
        )
    except Exception as exc:  # InvalidURI, ConfigurationError, ValueError …
        raise ConfigError(f"MONGODB_URI for {uri_hosts(uri)} is not valid: {exc}") from exc
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        mongoengine.disconnect(alias="default")
        raise ConfigError(
            f"MongoDB at {uri_hosts(uri)} did not answer within {timeout_ms / 1000:.0f} s "
            f"({type(exc).__name__}); check MONGODB_URI and that the server is running"
        ) from exc
    return client[name]


def get_database():
    """The pymongo Database behind MongoEngine's ``default`` alias."""
    return mongoengine.get_db(alias="default")


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
