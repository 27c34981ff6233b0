"""Users: accounts, password checks with lock-out, and the services that change them."""
from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType

from bson import ObjectId
from mongoengine import NULLIFY, BooleanField, DateTimeField, Document, IntField, ListField, ReferenceField, StringField
from werkzeug.security import check_password_hash, generate_password_hash

from kefu.core.clock import aware, utcnow
from kefu.core.config import SUPPORTED_LOCALES
from kefu.core.errors import AccountLocked, LoginFailed, NotFound, ValidationFailed
from kefu.core.i18n import _l
from kefu.core.versioned_cache import NamedCache
from kefu.org.roles import ALL_ROLES, permissions_of
from kefu.org.structure import Department

USERNAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{2,31}$")
MIN_PASSWORD_LENGTH = 8
LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
LOCKOUT_DURATION = timedelta(minutes=15)
MAX_TITLE_LENGTH = 40
TITLE_SEPARATORS = re.compile(r"[,，、;；\n]+")

# Checked against when the username is unknown so that a wrong username takes
# as long as a wrong password (no account enumeration by timing).
_UNKNOWN_USER_HASH = generate_password_hash(secrets.token_hex(16))


class User(Document):
    """A person who signs in. Flask-Login reads ``get_id`` / ``is_active`` / ``is_authenticated``."""

    username = StringField(required=True, unique=True, regex=USERNAME_PATTERN.pattern, verbose_name=_l("登录名"))
    password_hash = StringField(required=True)
    display_name = StringField(required=True, max_length=40, verbose_name=_l("姓名"))
    roles = ListField(StringField(choices=ALL_ROLES), verbose_name=_l("角色"))
    # Approval titles (审批职务) named by the record types' approval bands: 项目总监, 财务总监 …
    approval_titles = ListField(StringField(max_length=MAX_TITLE_LENGTH), verbose_name=_l("审批职务"))
    department = ReferenceField(Department, reverse_delete_rule=NULLIFY, verbose_name=_l("部门"))
    email = StringField(max_length=120, verbose_name=_l("邮箱"))
    phone = StringField(max_length=20, verbose_name=_l("电话"))
    locale = StringField(choices=SUPPORTED_LOCALES, verbose_name=_l("界面语言"))
    active = BooleanField(default=True, verbose_name=_l("启用"))
    # Bumped when the password changes or the account is disabled: sessions
    # signed with an older value stop working.
    session_version = IntField(default=1)
    failed_logins = ListField(DateTimeField())
    locked_until = DateTimeField()
    last_login_at = DateTimeField(verbose_name=_l("最近登录"))
    created_at = DateTimeField(default=utcnow, verbose_name=_l("创建时间"))

    meta = {"collection": "users", "ordering": ["username"], "indexes": ["department", "roles"]}

    def __str__(self) -> str:
        return user_label(self.display_name, self.username)

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
        return f"{self.pk}:{self.session_version}"

    @property
    def permissions(self) -> frozenset[str]:
        return permissions_of(self.roles)

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)

    def can(self, permission: str) -> bool:
        return permission in self.permissions


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


def active_user(user_id, session_version: str | None = None) -> User | None:
    """The active user with this id (and, when given, this ``session_version``), else None.

    Runs on every request (the session's or the API token's user): pymongo's ``find_one`` and MongoEngine's
    own loader, without the cost of building a queryset.
    """
    stored = User._get_collection().find_one({"_id": user_id})
    if stored is None or not stored.get("active", True):
        return None
    if session_version is not None and str(stored.get("session_version", 1)) != session_version:
        return None
    return User._from_son(stored)


def load_user_by_session_id(session_id: str) -> User | None:
    """The active user a session id from ``User.get_id`` names, or None when stale."""
    user_id, _, version = (session_id or "").partition(":")
    if not ObjectId.is_valid(user_id):  # a forged or old cookie
        return None
    return active_user(ObjectId(user_id), version)


def _password_problem(password: str | None):
    if not password or len(password) < MIN_PASSWORD_LENGTH:
        return _l("密码至少 %(n)s 位", n=MIN_PASSWORD_LENGTH)
    return None


def _roles_problem(roles: list[str]):
    unknown = [role for role in roles if role not in ALL_ROLES]
    if not roles or unknown:
        return _l("角色无效：%(roles)s；可选：%(allowed)s", roles=", ".join(unknown) or "-", allowed=", ".join(ALL_ROLES))
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
        email=email, phone=phone, locale=locale, approval_titles=clean_approval_titles(approval_titles),
    )
    user.save()
    return user


def update_user(user: User, display_name: str, roles, department=None, email: str | None = None,
                phone: str | None = None, locale: str | None = None, approval_titles=None) -> User:
    """Change an account's profile and roles (not its login name or password); ``approval_titles``
    None keeps them."""
    roles = list(roles or [])
    _raise_if({"roles": _roles_problem(roles),
               "display_name": None if display_name else _l("请填写姓名")})
    user.display_name = display_name
    user.roles = roles
    user.department = find_department(department) if department else None
    user.email, user.phone, user.locale = email, phone, locale
    if approval_titles is not None:
        user.approval_titles = clean_approval_titles(approval_titles)
    user.save()
    return user


def set_password(user: User, password: str) -> User:
    """Replace the password and end the user's other sessions."""
    _raise_if({"password": _password_problem(password)})
    user.password_hash = generate_password_hash(password)
    user.session_version = (user.session_version or 0) + 1
    user.failed_logins = []
    user.locked_until = None
    user.save()
    return user


def set_active(user: User, active: bool) -> User:
    """Enable or disable an account; disabling ends its sessions."""
    if user.active and not active:
        user.session_version = (user.session_version or 0) + 1
    user.active = active
    user.save()
    return user


def set_locale(user: User, locale: str) -> User:
    """Remember the user's interface language."""
    if locale not in SUPPORTED_LOCALES:
        raise ValidationFailed(_l("不支持的语言：%(locale)s", locale=locale))
    User.objects(pk=user.pk).update_one(set__locale=locale)
    user.locale = locale
    return user


def authenticate(username: str, password: str, now=None) -> User:
    """The user whose credentials these are; raises ``LoginFailed`` / ``AccountLocked``.

    Five wrong passwords for one account within 15 minutes lock it for 15
    minutes. Failures are recorded with atomic updates, so concurrent web
    processes count every attempt.
    """
    now = now or utcnow()
    user = User.objects(username=(username or "").strip()).first()
    if user is None:
        check_password_hash(_UNKNOWN_USER_HASH, password or "")
        raise LoginFailed(_l("用户名或密码错误"))
    if user.locked_until and user.locked_until > now:
        raise AccountLocked(_locked_message(user.locked_until, now))
    if not check_password_hash(user.password_hash, password or ""):
        _record_failure(user, now)
        raise _failure_error(user, now)
    if not user.active:
        raise LoginFailed(_l("该账号已停用，请联系系统管理员"))
    User.objects(pk=user.pk).update_one(set__failed_logins=[], unset__locked_until=True, set__last_login_at=now)
    user.reload()
    return user


def _record_failure(user: User, now) -> None:
    collection = User._get_collection()
    updated = collection.find_one_and_update(
        {"_id": user.pk},
        {"$push": {"failed_logins": {"$each": [now], "$slice": -LOCKOUT_FAILURES}}},
        return_document=True,
    )
    recent = [at for at in updated.get("failed_logins", []) if aware(at) > now - LOCKOUT_WINDOW]
    if len(recent) >= LOCKOUT_FAILURES:
        collection.update_one(
            {"_id": user.pk}, {"$set": {"locked_until": now + LOCKOUT_DURATION, "failed_logins": []}},
        )
    user.reload()


def _failure_error(user: User, now) -> LoginFailed:
    if user.locked_until and user.locked_until > now:
        return AccountLocked(_locked_message(user.locked_until, now))
    recent = [at for at in user.failed_logins if at > now - LOCKOUT_WINDOW]
    left = LOCKOUT_FAILURES - len(recent)
    return LoginFailed(_l("用户名或密码错误，再错 %(n)s 次账号将被锁定 15 分钟", n=left))


def _locked_message(locked_until, now):
    minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
    return _l("密码错误次数过多，账号已锁定，请 %(n)s 分钟后再试", n=minutes)
