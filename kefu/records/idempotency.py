"""Idempotency keys of record creation: a client that retries a create with the same ``Idempotency-Key`` (after a
timeout, a 503 during an election, a dropped connection) gets the record its first try made, never a second one.

A key is the caller's own (two people may use the same key), kept for :data:`KEPT_FOR` in ``idempotency_keys``
with the record it made and a digest of the request; it is written in the same transaction as the record, so a key
exists exactly when its record does. The same key with another request is refused: it is a client's mistake.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.errors import Conflict, ValidationFailed
from kefu.core.i18n import _l
from kefu.records.store import RECORDS

IDEMPOTENCY_KEYS = "idempotency_keys"
KEPT_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 255


def idempotency_indexes() -> list[IndexModel]:
    """Keys expire :data:`KEPT_FOR` after their record was made."""
    return [IndexModel([("created_at", ASCENDING)], name="expiry", expireAfterSeconds=int(KEPT_FOR.total_seconds()))]


@dataclass(frozen=True)
class IdempotencyKey:
    """One caller's key for one create request."""

    user_id: object
    key: str
    type_key: str
    request_digest: str

    @classmethod
    def of(cls, key: str | None, user_id, type_key: str, values: dict) -> "IdempotencyKey | None":
        """The key of a create request (None without one); ``ValidationFailed`` when it cannot be a key."""
        if key is None:
            return None
        if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
            message = _l("Idempotency-Key 应为 1–%(max)s 个可打印的 ASCII 字符", max=MAX_KEY_LENGTH)
            raise ValidationFailed(message, {"Idempotency-Key": message})
        request = json.dumps([type_key, values], sort_keys=True, default=str, ensure_ascii=False)
        return cls(user_id, key, type_key, hashlib.sha256(request.encode("utf-8")).hexdigest())

    @property
    def id(self) -> str:
        return f"{self.user_id}:{hashlib.sha256(self.key.encode('ascii')).hexdigest()}"

    def earlier_record(self) -> dict | None:
        """The record this key made before, as stored; None when the key is new. ``Conflict`` when the key was
        used for another request."""
        claim = get_database()[IDEMPOTENCY_KEYS].find_one({"_id": self.id})
        if claim is None:
            return None
        if claim["request"] != self.request_digest:
            message = _l("这个 Idempotency-Key 已用于另一个请求：每个新请求请使用新的键")
            raise Conflict(message, {"Idempotency-Key": message})
        return get_database()[RECORDS].find_one({"_id": claim["record_id"]})

    def note(self, record_id) -> None:
        """Note that the key made ``record_id`` (inside the record's transaction)."""
        get_database()[IDEMPOTENCY_KEYS].insert_one({
            "_id": self.id, "record_id": record_id, "type": self.type_key, "request": self.request_digest,
            "created_at": utcnow()})

    def made_concurrently(self, exc: DuplicateKeyError) -> bool:
        """Whether ``exc`` is this key's note colliding with a concurrent request's (which made the record)."""
        return IDEMPOTENCY_KEYS in str(exc)
