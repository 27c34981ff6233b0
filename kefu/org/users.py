"""Users: accounts, password checks, and the services that change them (a password change or a disabled account
ends every session and API token of the user)."""
from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from types import MappingProxyType

from bson import ObjectId
from mongoengine import (
    NULLIFY, BinaryField, BooleanField, DateTimeField, Document, ListField, ReferenceField, StringField,
)
from werkzeug.security import check_password_hash, generate_password_hash

from kefu.core.clock import utcnow
from kefu.core.config import SUPPORTED_LOCALES
from kefu.core.encrypted_stores import EncryptedField, EncryptedFields
from kefu.core.errors import LoginFailed, NotFound, ValidationFailed
from kefu.core.i18n import _l
from kefu.core.validation import InvalidValue, normalize_phone
from kefu.core.versioned_cache import NamedCache
from kefu.org import sessions, tokens
from kefu.org.personal import seal, unseal
from kefu.org.roles import role_keys
from kefu.org.structure import Department

USERNAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{2,31}$")
MIN_PASSWORD_LENGTH = 8
MAX_TITLE_LENGTH = 40
TITLE_SEPARATORS = re.compile(r"[,，、;；\n]+")
PHONE = "user.phone"  # the encryption context of users' phones

# Checked against when the username is unknown so that a wrong username takes
# as long as a wrong password (no account enumeration by timing).
_UNKNOWN_USER_HASH = generate_password_hash(secrets.token_hex(16))


class User(Document):
    """A person who signs in. Flask-Login reads ``get_id`` / ``is_active`` / ``is_authenticated``."""

    username = StringField(required=True, unique=True, regex=USERNAME_PATTERN.pattern, verbose_name=_l("登录名"))
    password_hash = StringField(required=True)
    display_name = StringField(required=True, max_length=40, verbose_name=_l("姓名"))
    roles = ListField(StringField(max_length=32), verbose_name=_l("角色"))  # kefu.org.roles keys
    # Approval titles (审批职务) named by the record types' approval bands: 项目总监, 财务总监 …
    approval_titles = ListField(StringField(max_length=MAX_TITLE_LENGTH), verbose_name=_l("审批职务"))
    department = ReferenceField(Department, reverse_delete_rule=NULLIFY, verbose_name=_l("部门"))
    email = StringField(max_length=120, verbose_name=_l("邮箱"))
    phone_enc = BinaryField()  # the phone, encrypted (context "user.phone"): read ``phone``
    locale = StringField(choices=SUPPORTED_LOCALES, verbose_name=_l("界面语言"))
    active = BooleanField(default=True, verbose_name=_l("启用"))
    last_login_at = DateTimeField(verbose_name=_l("最近登录"))
    created_at = DateTimeField(default=utcnow, verbose_name=_l("创建时间"))

    meta = {"collection": "users", "ordering": ["username"], "indexes": ["department", "roles"]}

    def __str__(self) -> str:
        return user_label(self.display_name, self.username)

    @property
    def phone(self) -> str | None:
        return unseal(self.phone_enc, PHONE)

    def save(self, *args, **kwargs):
        saved = super().save(*args, **kwargs)
        _active_user_labels.changed()  # a name, the active flag or a new user: the pick lists change
        return saved

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.pk)

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


ENCRYPTED_STORES = [EncryptedFields(User._get_collection_name(), (EncryptedField("phone_enc", PHONE),))]
"""Where the users' ciphertexts are, for ``flask kefu rotate-key`` (``kefu.core.encrypted_stores``)."""


def user_label(display_name: str, username: str) -> str:
    """How a user is named on screens and in the audit log: ``林晓雯（agent）``."""
    return f"{display_name}（{username}）"


def load_active_user_labels() -> Mapping[ObjectId, str]:
    """``{id: user_label}`` of the active users by name, as stored now: one query, no documents built."""
    # pymongo directly: MongoEngine's queryset costs more than the query itself here.
    found = User._get_collection().find({"active": True}, {"username": 1, "display_name": 1},
                                        sort=[("display_name", 1), ("_id", 1)])
    return MappingProxyType({u["_id"]: user_label(u["display_name"], u["username"]) for u in found})


_active_user_labels = NamedCache("users", load_active_user_labels)


def active_user_labels() -> Mapping[ObjectId, str]:
    """``load_active_user_labels`` as this process holds it, for pick lists and names on pages: no query
    (``kefu.core.versioned_cache``: an edit made in another process shows within about 2 seconds). A check
    before a write reads ``load_active_user_labels``."""
    return _active_user_labels.get()


def active_user(user_id) -> User | None:
    """The active user with this id, else None.

    Runs on every request (the session's or the API token's user): pymongo's ``find_one`` and MongoEngine's
    own loader, without the cost of building a queryset.
    """
    if user_id is None:
        return None
    stored = User._get_collection().find_one({"_id": user_id})
    if stored is None or not stored.get("active", True):
        return None
    return User._from_son(stored)


def session_user(session_key: str | None) -> User | None:
    """The active user whose open session ``session_key`` names (``kefu.org.sessions``), else None."""
    return active_user(sessions.session_user_id(session_key))


def token_user(token: str | None) -> User | None:
    """The active user a valid API token belongs to (``kefu.org.tokens``), else None."""
    return active_user(tokens.token_user_id(token))


def forget_lockout_state() -> int:
    """Remove what the per-account lock-out and the session version stored on users (sign-in is now limited per
    address by the web tier and sessions live in ``kefu.org.sessions``); returns how many users changed.
    Idempotent: a start runs it before the first request."""
    retired = ("failed_logins", "locked_until", "session_version")
    return User._get_collection().update_many({"$or": [{name: {"$exists": True}} for name in retired]},
                                              {"$unset": {name: "" for name in retired}}).modified_count


def _password_problem(password: str | None):
    if not password or len(password) < MIN_PASSWORD_LENGTH:
        return _l("密码至少 %(n)s 位", n=MIN_PASSWORD_LENGTH)
    return None


def stored_phone(stored: Mapping) -> str | None:
    """The phone of a user document read with pymongo (``phone_enc`` in its projection)."""
    return unseal(stored.get("phone_enc"), PHONE)


def _sealed_phone(phone: str | None) -> bytes | None:
    """The stored form of a user's phone (canonical, encrypted); ``ValidationFailed`` for a malformed number."""
    if not (phone or "").strip():
        return None
    try:
        return seal(normalize_phone(phone), PHONE)
    except InvalidValue as exc:
        message = _l("电话：%(problem)s", problem=str(exc))
        raise ValidationFailed(message, {"phone": message}) from None


def _roles_problem(roles: list[str]):
    known = role_keys()
    unknown = [role for role in roles if role not in known]
    if not roles or unknown:
        return _l("角色无效：%(roles)s；可选：%(allowed)s", roles=", ".join(unknown) or "-", allowed=", ".join(known))
    return None


def clean_approval_titles(raw) -> list[str]:
    """Approval titles from a list or from text separated by 、 , ; or new lines: trimmed, without repeats.

    Raises ``ValidationFailed`` for a title longer than 40 characters.
    """
    if raw is None:
        return []
    items = TITLE_SEPARATORS.split(raw) if isinstance(raw, str) else [str(item) for item in raw]
    titles = []
    for item in (item.strip() for item in items):
        if item and item not in titles:
            titles.append(item)
    too_long = [title for title in titles if len(title) > MAX_TITLE_LENGTH]
    if too_long:
        message = _l("审批职务最多 %(n)s 个字：%(titles)s", n=MAX_TITLE_LENGTH, titles="、".join(too_long))
        raise ValidationFailed(message, {"approval_titles": message})
    return titles


def _raise_if(errors: dict) -> None:
    errors = {key: message for key, message in errors.items() if message}
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors)


def find_department(name_or_id) -> Department:
    """The department with this name (or id); ``NotFound`` lists the existing ones."""
    if isinstance(name_or_id, Department):
        return name_or_id
    department = Department.objects(name=name_or_id).first()
    if department is None and re.fullmatch(r"[0-9a-f]{24}", str(name_or_id)):
        department = Department.objects(pk=name_or_id).first()
    if department is None:
        names = "、".join(Department.objects.scalar("name"))
        raise NotFound(_l("没有名为“%(name)s”的部门，现有部门：%(names)s", name=name_or_id, names=names))
    return department


def create_user(username: str, password: str, roles, department=None, display_name: str | None = None,
                email: str | None = None, phone: str | None = None, locale: str | None = None,
                approval_titles=None) -> User:
    """Create an account; raises ``ValidationFailed`` naming the field at fault."""
    roles = [roles] if isinstance(roles, str) else list(roles or [])
    username_problem = None
    if not USERNAME_PATTERN.match(username or ""):
        username_problem = _l("登录名须以字母开头，3–32 位字母、数字、_ . -")
    elif User.objects(username=username).first():
        username_problem = _l("登录名“%(name)s”已被使用", name=username)
    _raise_if({"username": username_problem, "roles": _roles_problem(roles), "password": _password_problem(password)})
    user = User(
        username=username, password_hash=generate_password_hash(password),
        display_name=display_name or username, roles=roles,
        department=find_department(department) if department else None,
        email=email, phone_enc=_sealed_phone(phone), locale=locale,
        approval_titles=clean_approval_titles(approval_titles),
    )
    user.save()
    return user


def update_user(user: User, display_name: str, roles, department=None, email: str | None = None,
                phone: str | None = None, locale: str | None = None, approval_titles=None) -> User:
    """Change an account's profile and roles (not its login name or password); ``approval_titles``
    None keeps them."""
    roles = list(roles or [])
    phone_enc = _sealed_phone(phone)
    _raise_if({"roles": _roles_problem(roles),
               "display_name": None if display_name else _l("请填写姓名")})
    user.display_name = display_name
    user.roles = roles
    user.department = find_department(department) if department else None
    user.email, user.phone_enc, user.locale = email, phone_enc, locale
    if approval_titles is not None:
        user.approval_titles = clean_approval_titles(approval_titles)
    user.save()
    return user


def set_password(user: User, password: str) -> User:
    """Replace the password; every session and API token of the user ends (a stolen one stops working)."""
    _raise_if({"password": _password_problem(password)})
    user.password_hash = generate_password_hash(password)
    user.save()
    sessions.end_sessions_of(user.pk)
    tokens.revoke_tokens_of(user.pk)
    return user


def set_active(user: User, active: bool) -> User:
    """Enable or disable an account; disabling ends every session and API token of the user."""
    user.active = active
    user.save()
    if not active:
        sessions.end_sessions_of(user.pk)
        tokens.revoke_tokens_of(user.pk)
    return user


def set_locale(user: User, locale: str) -> User:
    """Remember the user's interface language."""
    if locale not in SUPPORTED_LOCALES:
        raise ValidationFailed(_l("不支持的语言：%(locale)s", locale=locale))
    User.objects(pk=user.pk).update_one(set__locale=locale)
    user.locale = locale
    return user


def authenticate(username: str, password: str, now=None) -> User:
    """The user whose credentials these are; raises ``LoginFailed``.

    A wrong password and an unknown username get the same message and take as long (a password is checked either
    way): nobody learns which login names exist. Repeated failures are limited per address and per login name and
    address by the web tier (``web.security``), not by locking the account: nobody can lock someone else out.
    """
    now = now or utcnow()
    username, password = (username or "").strip(), _encodable(password or "")
    user = User.objects(username=username).first() if USERNAME_PATTERN.match(username) else None
    if user is None:
        check_password_hash(_UNKNOWN_USER_HASH, password)
        raise LoginFailed(_l("用户名或密码错误"))
    if not check_password_hash(user.password_hash, password):
        raise LoginFailed(_l("用户名或密码错误"))
    if not user.active:
        raise LoginFailed(_l("该账号已停用，请联系系统管理员"))
    User.objects(pk=user.pk).update_one(set__last_login_at=now)
    user.last_login_at = now
    return user


def _encodable(text: str) -> str:
    """``text`` with anything UTF-8 cannot carry (a lone surrogate from JSON) replaced: such a password is wrong,
    not an error."""
    return text.encode("utf-8", "replace").decode("utf-8")
