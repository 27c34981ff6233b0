"""API tokens for integrations (hotline, WeChat forms): issued for a password, expiring, revocable by their owner.

Only a SHA-256 digest of each token is stored; the token itself is shown once. This module knows users only by
id (``kefu.org.users`` checks the password before a token is issued and revokes every token of a user whose
password changes or whose account is disabled).
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from bson import ObjectId
from mongoengine import BooleanField, DateTimeField, Document, ReferenceField, StringField

from kefu.core.clock import aware, utcnow
from kefu.core.errors import NotFound, ValidationFailed
from kefu.core.i18n import _l

TOKEN_LIFETIME = timedelta(days=30)
LAST_USED_PRECISION = timedelta(minutes=1)  # how exactly "last used" is kept
MAX_NAME_LENGTH = 60


class ApiToken(Document):
    digest = StringField(required=True, unique=True)
    # By name: users are never deleted (they are disabled), and kefu.org.users imports this module.
    user = ReferenceField("User", required=True, verbose_name=_l("用户"))
    name = StringField(max_length=MAX_NAME_LENGTH, verbose_name=_l("用途"))
    created_at = DateTimeField(default=utcnow, verbose_name=_l("签发时间"))
    expires_at = DateTimeField(required=True, verbose_name=_l("过期时间"))
    last_used_at = DateTimeField(verbose_name=_l("最近使用"))
    revoked = BooleanField(default=False, verbose_name=_l("已吊销"))

    meta = {"collection": "api_tokens", "ordering": ["-created_at"], "indexes": ["user"]}

    def to_dict(self) -> dict:
        """What its owner may see of a token (never the digest)."""
        def moment(value):
            return aware(value).isoformat() if value else None

        return {"id": str(self.pk), "name": self.name, "created_at": moment(self.created_at),
                "expires_at": moment(self.expires_at), "last_used_at": moment(self.last_used_at),
                "revoked": bool(self.revoked)}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def issue_token(user_id: ObjectId, name: str | None = None, now=None) -> tuple[str, ApiToken]:
    """A new token for ``user_id`` (whose password the caller has checked): the token and its stored record.

    Raises ``ValidationFailed`` for a ``name`` longer than 60 characters.
    """
    now = now or utcnow()
    name = (str(name).strip() or None) if name is not None else None
    if name and len(name) > MAX_NAME_LENGTH:
        message = _l("令牌用途最多 %(n)s 个字", n=MAX_NAME_LENGTH)
        raise ValidationFailed(message, {"name": message})
    token = secrets.token_urlsafe(32)
    record = ApiToken(digest=_digest(token), user=user_id, name=name, created_at=now,
                      expires_at=now + TOKEN_LIFETIME)
    record.save()
    return token, record


def token_user_id(token: str | None, now=None) -> ObjectId | None:
    """The id of the user a valid, unexpired, unrevoked token belongs to; else None. Notes the use."""
    now = now or utcnow()
    # Every API call: pymongo directly (see users.active_user).
    record = ApiToken._get_collection().find_one({"digest": _digest(token or "")},
                                                 {"user": 1, "revoked": 1, "expires_at": 1, "last_used_at": 1})
    if record is None or record.get("revoked") or aware(record["expires_at"]) <= now:
        return None
    last_used = aware(record.get("last_used_at"))
    if last_used is None or now - last_used >= LAST_USED_PRECISION:  # not a write on every call
        ApiToken.objects(pk=record["_id"]).update_one(set__last_used_at=now)
    return record["user"]


def tokens_of(user_id: ObjectId) -> list[ApiToken]:
    """Every token of ``user_id``, newest first (revoked and expired ones too)."""
    return list(ApiToken.objects(user=user_id))


def revoke_token(token_id, owner_id: ObjectId | None = None) -> ApiToken:
    """Revoke a token: one of ``owner_id``'s, or when None anyone's (an admin's action). ``NotFound`` for an id
    that names no such token (whose it is stays unsaid)."""
    found = ApiToken.objects(pk=token_id) if ObjectId.is_valid(str(token_id)) else ApiToken.objects.none()
    token = (found.filter(user=owner_id) if owner_id is not None else found).first()
    if token is None:
        raise NotFound(_l("没有这个令牌：%(id)s", id=token_id))
    ApiToken.objects(pk=token.pk).update_one(set__revoked=True)
    token.revoked = True
    return token


def revoke_tokens_of(user_id: ObjectId) -> int:
    """Revoke every token of ``user_id`` still in use; returns how many."""
    return ApiToken.objects(user=user_id, revoked=False).update(set__revoked=True)
