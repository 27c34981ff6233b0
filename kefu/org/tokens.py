"""API tokens for integrations (hotline, WeChat forms): issued for a password, expiring, revocable.

Only a SHA-256 digest of each token is stored; the token itself is shown once.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from mongoengine import CASCADE, BooleanField, DateTimeField, Document, ReferenceField, StringField

from kefu.core.clock import aware, utcnow
from kefu.core.i18n import _l
from kefu.org.users import User, active_user, authenticate

TOKEN_LIFETIME = timedelta(days=30)
LAST_USED_PRECISION = timedelta(minutes=1)  # how exactly "last used" is kept


class ApiToken(Document):
    digest = StringField(required=True, unique=True)
    user = ReferenceField(User, required=True, reverse_delete_rule=CASCADE, verbose_name=_l("用户"))
    name = StringField(max_length=60, verbose_name=_l("用途"))
    created_at = DateTimeField(default=utcnow, verbose_name=_l("签发时间"))
    expires_at = DateTimeField(required=True, verbose_name=_l("过期时间"))
    last_used_at = DateTimeField(verbose_name=_l("最近使用"))
    revoked = BooleanField(default=False, verbose_name=_l("已吊销"))

    meta = {"collection": "api_tokens", "ordering": ["-created_at"], "indexes": ["user"]}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(username: str, password: str, name: str | None = None, now=None) -> tuple[str, ApiToken]:
    """Check the credentials (with the same lock-out as the login page) and issue a token."""
    now = now or utcnow()
    user = authenticate(username, password, now=now)
    token = secrets.token_urlsafe(32)
    record = ApiToken(digest=_digest(token), user=user, name=name, created_at=now, expires_at=now + TOKEN_LIFETIME)
    record.save()
    return token, record


def user_for_token(token: str, now=None) -> User | None:
    """The active user a valid, unexpired, unrevoked token belongs to; else None."""
    now = now or utcnow()
    # Every API call: pymongo directly (see users.active_user).
    record = ApiToken._get_collection().find_one({"digest": _digest(token or "")},
                                                 {"user": 1, "revoked": 1, "expires_at": 1, "last_used_at": 1})
    if record is None or record.get("revoked") or aware(record["expires_at"]) <= now:
        return None
    user = active_user(record["user"])
    if user is None:
        return None
    last_used = aware(record.get("last_used_at"))
    if last_used is None or now - last_used >= LAST_USED_PRECISION:  # not a write on every call
        ApiToken.objects(pk=record["_id"]).update_one(set__last_used_at=now)
    return user


def revoke_token(token_id) -> None:
    ApiToken.objects(pk=token_id).update_one(set__revoked=True)
