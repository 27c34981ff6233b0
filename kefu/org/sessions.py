"""Sign-in sessions kept on the server: a browser's cookie names one, signing out deletes it.

The cookie holds a random key; only its SHA-256 digest is stored, so a copy of the collection opens no session.
A session ends when its owner signs out, when it has not been used for ``IDLE_LIFETIME`` (MongoDB's TTL index
removes it), or when the owner's password changes or the account is disabled (``kefu.org.users``).
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from bson import ObjectId
from mongoengine import DateTimeField, Document, ObjectIdField, StringField

from kefu.core.clock import aware, utcnow

IDLE_LIFETIME = timedelta(hours=12)  # a shift: a browser left overnight signs in again in the morning
LAST_SEEN_PRECISION = timedelta(minutes=1)  # how exactly "last seen" is kept (not a write on every request)


class UserSession(Document):
    """One signed-in browser: ``id`` is the digest of the key its cookie holds."""

    id = StringField(primary_key=True)
    user = ObjectIdField(required=True)
    created_at = DateTimeField(required=True)
    last_seen_at = DateTimeField(required=True)
    expires = DateTimeField(required=True)

    meta = {"collection": "sessions",
            "indexes": ["user", {"fields": ["expires"], "expireAfterSeconds": 0}]}


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def start_session(user_id: ObjectId, now=None) -> str:
    """Open a session for ``user_id``; returns the key for the cookie (shown nowhere else)."""
    now = now or utcnow()
    key = secrets.token_urlsafe(32)
    UserSession(id=_digest(key), user=user_id, created_at=now, last_seen_at=now, expires=now + IDLE_LIFETIME).save(
        force_insert=True)
    return key


def session_user_id(key: str | None, now=None) -> ObjectId | None:
    """The id of the user whose open session ``key`` names, else None; keeps the session alive."""
    if not key:
        return None
    now = now or utcnow()
    # Every request: pymongo directly (as kefu.org.users.active_user).
    collection = UserSession._get_collection()
    stored = collection.find_one({"_id": _digest(key)})
    if stored is None or aware(stored["expires"]) <= now:  # the TTL monitor runs once a minute
        return None
    if now - aware(stored["last_seen_at"]) >= LAST_SEEN_PRECISION:
        collection.update_one({"_id": stored["_id"]}, {"$set": {"last_seen_at": now, "expires": now + IDLE_LIFETIME}})
    return stored["user"]


def end_session(key: str | None) -> None:
    """Sign-out: the session ``key`` names stops working."""
    if key:
        UserSession.objects(id=_digest(key)).delete()


def end_sessions_of(user_id: ObjectId) -> int:
    """End every session of ``user_id``; returns how many there were."""
    return UserSession.objects(user=user_id).delete()
