"""Roles as data (系统设置 → 角色权限): what each role may do outside the records, and with each record type.

A role is a document in ``roles``: its key, its name, the *capabilities* it grants outside the records (keep
the system, read the reports, keep the customer archive …) and its *grants* per record type — the actions it
allows on that type and the scope they reach. A grant for ``*`` covers every type without a grant of its own.

Scopes, each wider than the one before:

- ``own``: records assigned to the user or registered by them;
- ``department``: those, and records concerning the user's department — its department (the one handling it),
  any department field (forwarded to, following up: the record's ``departments``) or the registering department
  (``created_department``, the department of whoever registered it);
- ``all``: every record of the type.

The six shipped roles (``SHIPPED_ROLES``) follow the handbooks (domain §1) and are written on first start
(``ensure_shipped_roles``); a company edits them and adds its own (前台, 财务 …). A role key a user holds but no
document defines grants nothing.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from mongoengine import (
    BooleanField, DateTimeField, Document, EmbeddedDocument, EmbeddedDocumentListField, ListField, StringField,
)

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.errors import Conflict, NotFound, ValidationFailed
from kefu.core.i18n import _l
from kefu.core.validation import InvalidValue, check_typable
from kefu.core.versioned_cache import NamedCache

ANY_TYPE = "*"
ROLE_KEY_PATTERN = r"^[a-z][a-z0-9_]{1,31}$"


class Role(str, Enum):
    """The keys of the shipped roles (their grants are data, see ``SHIPPED_ROLES``)."""

    ADMIN = "admin"
    MANAGER = "manager"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    HANDLER = "handler"
    APPROVER = "approver"


class Action(str, Enum):
    """What a grant allows on the records of a type."""

    READ = "read"
    CREATE = "create"
    EDIT = "edit"
    DELETE = "delete"
    EXPORT = "export"
    VIEW_PII = "view_pii"
    REASSIGN = "reassign"
    APPROVE = "approve"


ACTION_LABELS = {
    Action.READ: _l("查看"), Action.CREATE: _l("登记"), Action.EDIT: _l("修改"), Action.DELETE: _l("删除"),
    Action.EXPORT: _l("导出"), Action.VIEW_PII: _l("查看个人信息明文"), Action.REASSIGN: _l("改派"),
    Action.APPROVE: _l("审批"),
}
ALL_ACTIONS = tuple(action.value for action in Action)


class Scope(str, Enum):
    OWN = "own"
    DEPARTMENT = "department"
    ALL = "all"


SCOPE_LABELS = {Scope.OWN: _l("本人（负责或登记的）"), Scope.DEPARTMENT: _l("本部门"), Scope.ALL: _l("全部")}
SCOPE_ORDER = (Scope.OWN.value, Scope.DEPARTMENT.value, Scope.ALL.value)


class Capability(str, Enum):
    """What a role may do outside the records of a type."""

    MANAGE_SYSTEM = "manage_system"  # users, roles, departments, record types, calendar, notifications, queues
    VIEW_REPORTS = "view_reports"  # the monthly report and the dashboard's figures over all records
    MANAGE_CUSTOMERS = "manage_customers"  # register and edit customer archives
    LOOKUP_CUSTOMERS = "lookup_customers"  # find a customer by exact phone number
    VIEW_CUSTOMER_PII = "view_customer_pii"  # customers' phone, ID number and address unmasked
    ARCHIVE_CUSTOMERS = "archive_customers"  # archive a customer (never a hard delete)
    SHARE_VIEWS = "share_views"  # save list views shared with everyone
    MANAGE_KNOWLEDGE = "manage_knowledge"  # write the knowledge base (知识库); everyone signed in reads it


CAPABILITY_LABELS = {
    Capability.MANAGE_SYSTEM: _l("系统设置（用户、角色、部门、记录类型、日历、通知）"),
    Capability.VIEW_REPORTS: _l("查看报表与统计"),
    Capability.MANAGE_CUSTOMERS: _l("登记和修改客户档案"),
    Capability.LOOKUP_CUSTOMERS: _l("按电话查找客户"),
    Capability.VIEW_CUSTOMER_PII: _l("查看客户个人信息明文"),
    Capability.ARCHIVE_CUSTOMERS: _l("归档客户档案"),
    Capability.SHARE_VIEWS: _l("共享列表视图"),
    Capability.MANAGE_KNOWLEDGE: _l("维护知识库"),
}
ALL_CAPABILITIES = tuple(capability.value for capability in Capability)


class TypeGrant(EmbeddedDocument):
    """The actions one role may take on one record type (``*``: every type without its own grant), and their
    scope."""

    record_type = StringField(required=True, max_length=40, verbose_name=_l("记录类型"))
    actions = ListField(StringField(choices=ALL_ACTIONS), verbose_name=_l("操作"))
    scope = StringField(choices=SCOPE_ORDER, default=Scope.OWN.value, verbose_name=_l("范围"))


class AccessRole(Document):
    """One role: its capabilities and its grants per record type."""

    key = StringField(required=True, unique=True, regex=ROLE_KEY_PATTERN, verbose_name=_l("角色代码"))
    name = StringField(required=True, max_length=40, verbose_name=_l("角色名称"))
    description = StringField(max_length=200, verbose_name=_l("说明"))
    capabilities = ListField(StringField(choices=ALL_CAPABILITIES), verbose_name=_l("功能权限"))
    grants = EmbeddedDocumentListField(TypeGrant, verbose_name=_l("记录权限"))
    shipped = BooleanField(default=False, verbose_name=_l("预置"))
    updated_at = DateTimeField(default=utcnow, verbose_name=_l("更新时间"))
    updated_by = StringField(verbose_name=_l("修改人"))

    meta = {"collection": "roles", "ordering": ["key"]}

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.updated_at = utcnow()
        saved = super().save(*args, **kwargs)
        _roles.changed()
        return saved

    def delete(self, *args, **kwargs):
        super().delete(*args, **kwargs)
        _roles.changed()


@dataclass(frozen=True)
class Grant:
    """What one role allows on one record type."""

    actions: frozenset[str]
    scope: str


@dataclass(frozen=True)
class RoleRules:
    """A role as the access checks read it."""

    key: str
    name: str
    capabilities: frozenset[str]
    grants: Mapping[str, Grant]  # record type key (or ``*``) → grant

    def grant_for(self, type_key: str) -> Grant | None:
        """The type's own grant, else the ``*`` grant, else None."""
        return self.grants.get(type_key) or self.grants.get(ANY_TYPE)


_EVERYTHING = ALL_ACTIONS
_AGENT_ACTIONS = (Action.READ.value, Action.CREATE.value, Action.EDIT.value, Action.EXPORT.value)

SHIPPED_ROLES: tuple[dict, ...] = (
    {"key": Role.ADMIN.value, "name": "系统管理员", "capabilities": list(ALL_CAPABILITIES),
     "grants": [{"record_type": ANY_TYPE, "actions": list(_EVERYTHING), "scope": Scope.ALL.value}]},
    {"key": Role.MANAGER.value, "name": "客服经理",
     "capabilities": [c for c in ALL_CAPABILITIES if c not in (Capability.MANAGE_SYSTEM.value,
                                                                 Capability.ARCHIVE_CUSTOMERS.value)],
     "grants": [{"record_type": ANY_TYPE, "actions": list(_EVERYTHING), "scope": Scope.ALL.value}]},
    {"key": Role.SUPERVISOR.value, "name": "客服主管",
     "capabilities": [Capability.VIEW_REPORTS.value, Capability.MANAGE_CUSTOMERS.value,
                      Capability.LOOKUP_CUSTOMERS.value, Capability.VIEW_CUSTOMER_PII.value,
                      Capability.SHARE_VIEWS.value, Capability.MANAGE_KNOWLEDGE.value],
     "grants": [{"record_type": ANY_TYPE, "scope": Scope.DEPARTMENT.value,
                 "actions": [*_AGENT_ACTIONS, Action.VIEW_PII.value, Action.REASSIGN.value]}]},
    {"key": Role.AGENT.value, "name": "客服专员",
     "capabilities": [Capability.MANAGE_CUSTOMERS.value, Capability.LOOKUP_CUSTOMERS.value],
     "grants": [{"record_type": ANY_TYPE, "actions": list(_AGENT_ACTIONS), "scope": Scope.DEPARTMENT.value}]},
    {"key": Role.HANDLER.value, "name": "部门处理人", "capabilities": [],
     "grants": [{"record_type": ANY_TYPE, "actions": [Action.READ.value, Action.EDIT.value],
                 "scope": Scope.DEPARTMENT.value}]},
    {"key": Role.APPROVER.value, "name": "审批人", "capabilities": [],
     "grants": [{"record_type": ANY_TYPE, "actions": [Action.APPROVE.value], "scope": Scope.OWN.value}]},
)
"""The shipped defaults (domain §1, issue 14): admin everything; manager every record, unmasked; supervisor the
department's records, unmasked, and reassigns; agent registers every type and reads and edits the records of
the department (the customer-service centre follows every case it registers), masked; handler reads and edits
the records forwarded to the department or assigned to them, masked; approver sees the records whose approval
waits on their title and acts only through the approval actions."""


def _rules_of(stored: Mapping) -> RoleRules:
    grants = {g["record_type"]: Grant(frozenset(g.get("actions") or ()), g.get("scope") or Scope.OWN.value)
              for g in stored.get("grants") or ()}
    return RoleRules(key=stored["key"], name=stored.get("name") or stored["key"],
                     capabilities=frozenset(stored.get("capabilities") or ()), grants=MappingProxyType(grants))


def load_roles() -> Mapping[str, RoleRules]:
    """``{key: RoleRules}`` of every role as stored (one query)."""
    stored = AccessRole._get_collection().find({}, {"_id": 0, "updated_at": 0, "description": 0}, sort=[("key", 1)])
    return MappingProxyType({role["key"]: _rules_of(role) for role in stored})


_roles = NamedCache("roles", load_roles)


def roles() -> Mapping[str, RoleRules]:
    """``load_roles`` as this process holds it (an edit in another process shows within about 2 seconds)."""
    return _roles.get()


def role_keys() -> tuple[str, ...]:
    """The keys of every defined role, for pick lists and checks."""
    return tuple(roles())


def role_label(key: str) -> str:
    """The name of role ``key`` (the key itself for a role no document defines)."""
    rules = roles().get(key)
    return rules.name if rules is not None else key


def ensure_shipped_roles() -> int:
    """Write the shipped roles a database does not have yet (an edited one keeps its edits; shipped roles cannot
    be deleted); returns how many were written. Idempotent: run at every start."""
    collection = AccessRole._get_collection()
    written = 0
    for role in SHIPPED_ROLES:
        result = collection.update_one({"key": role["key"]}, {"$setOnInsert": {
            **role, "shipped": True, "updated_at": utcnow()}}, upsert=True)
        written += result.upserted_id is not None
    if written:
        _roles.changed()
    return written


# -- editing (系统设置 → 角色权限) -------------------------------------------------------------------------

USERS = "users"  # kefu.org.users.User's collection, read directly: that module imports this one
MAX_NAME_LENGTH = 40
MAX_DESCRIPTION_LENGTH = 200


def holder_counts() -> dict[str, int]:
    """``{role key: how many users (enabled or not) hold it}``, one query; a role nobody holds is absent."""
    pipeline = [{"$unwind": "$roles"}, {"$group": {"_id": "$roles", "n": {"$sum": 1}}}]
    return {row["_id"]: row["n"] for row in get_database()[USERS].aggregate(pipeline)}


def save_role(values: Mapping, known_types: Collection[str], *, key: str | None = None,
              by: str | None = None) -> AccessRole:
    """Create a role (``key`` None: its key is ``values["key"]``) or change role ``key`` (whose key stays: users
    hold it); return it as stored. In effect at once in this process, within about 2 seconds in the others.

    ``values``: ``name``, ``description``, ``capabilities`` (``Capability`` values) and ``grants``, a list of
    ``{record_type, actions, scope}`` where ``record_type`` is one of ``known_types`` (the record type keys that
    exist, ``kefu.records.types``) or ``*`` (every type without a grant of its own); a type's own grant replaces
    the ``*`` grant for that type, so one without actions allows nothing on it (leave the type out to follow
    ``*``). Raises ``ValidationFailed`` naming the fields at fault (``key``, ``name``, ``description``,
    ``capabilities``, ``grants``, ``grants.<type key>``), ``NotFound`` for an unknown ``key``, ``Conflict`` when
    the change would leave no enabled user able to keep the system.
    """
    role = _role(key) if key is not None else None
    errors = {}
    if role is None:
        key = str(values.get("key") or "").strip()
        errors["key"] = _key_problem(key)
    name = str(values.get("name") or "").strip()
    description = str(values.get("description") or "").strip()
    capabilities = _strings(values.get("capabilities"))
    errors["name"] = _typing_problem(name, multiline=False) or _name_problem(name, key)
    errors["description"] = _typing_problem(description, multiline=True)
    if len(description) > MAX_DESCRIPTION_LENGTH:
        errors["description"] = _l("说明最多 %(n)s 个字", n=MAX_DESCRIPTION_LENGTH)
    unknown = [c for c in capabilities if c not in ALL_CAPABILITIES]
    if unknown:
        errors["capabilities"] = _l("未知的功能权限：%(unknown)s；可选：%(allowed)s", unknown="、".join(unknown),
                                    allowed=_choices(CAPABILITY_LABELS))
    grants, grant_errors = _clean_grants(values.get("grants"), known_types)
    errors.update(grant_errors)
    errors = {field: message for field, message in errors.items() if message}
    if errors:
        raise ValidationFailed(next(iter(errors.values())), errors)
    if role is not None:
        _refuse_losing_the_last_admin(role, capabilities)
    role = role or AccessRole(key=key, shipped=False)
    role.name, role.description, role.updated_by = name, description, by
    role.capabilities = [c for c in ALL_CAPABILITIES if c in capabilities]
    role.grants = [TypeGrant(**grant) for grant in grants]
    role.save()
    return role


def delete_role(key: str) -> None:
    """Delete role ``key``. ``Conflict`` for a shipped role (edit its permissions instead) and for a role some
    user holds (an enabled or a disabled account: give them another role first); ``NotFound`` when unknown."""
    role = _role(key)
    if role.shipped:
        raise Conflict(_l("“%(name)s”是预置角色，不能删除；可以修改它的权限", name=role.name))
    holders = get_database()[USERS].count_documents({"roles": role.key})
    if holders:
        raise Conflict(_l("还有 %(n)s 个用户使用角色“%(name)s”（含停用的账号），请先为他们更换角色", n=holders,
                          name=role.name))
    role.delete()


def _role(key: str) -> AccessRole:
    role = AccessRole.objects(key=key).first()
    if role is None:
        raise NotFound(_l("没有代码为“%(key)s”的角色", key=key))
    return role


def _strings(raw) -> list[str]:
    if raw is None:
        return []
    return [raw] if isinstance(raw, str) else [str(item) for item in raw]


def _choices(labels: Mapping) -> str:
    return "、".join(f"{member.value}（{label}）" for member, label in labels.items())


def _key_problem(key: str):
    if not re.fullmatch(ROLE_KEY_PATTERN, key):
        return _l("角色代码须以小写字母开头，2–32 位小写字母、数字或下划线，如 cashier、front_desk")
    if AccessRole.objects(key=key).first() is not None:
        return _l("角色代码“%(key)s”已被使用", key=key)
    return None


def _typing_problem(text: str, *, multiline: bool):
    try:
        check_typable(text, multiline=multiline)
    except InvalidValue as exc:
        return str(exc)
    return None


def _name_problem(name: str, key: str):
    if not name:
        return _l("请填写角色名称")
    if len(name) > MAX_NAME_LENGTH:
        return _l("角色名称最多 %(n)s 个字", n=MAX_NAME_LENGTH)
    if AccessRole.objects(name=name, key__ne=key).first() is not None:
        return _l("角色名称“%(name)s”已被使用", name=name)
    return None


def _clean_grants(raw, known_types: Collection[str]) -> tuple[list[dict], dict]:
    """The grants in a canonical form (actions in ``Action`` order), and the problems by field."""
    if raw is None:
        return [], {}
    if isinstance(raw, (str, Mapping)) or not isinstance(raw, Collection):
        return [], {"grants": _l("记录权限应为列表：[{record_type, actions, scope}]")}
    grants, errors = [], {}
    for item in raw:
        type_key = str(item.get("record_type") or "") if isinstance(item, Mapping) else ""
        field = f"grants.{type_key or '?'}"
        if type_key != ANY_TYPE and type_key not in known_types:
            errors[field] = _l("记录权限：没有记录类型“%(type)s”", type=type_key or "-")
            continue
        if any(grant["record_type"] == type_key for grant in grants):
            errors[field] = _l("记录权限：“%(type)s”出现了两次", type=type_key)
            continue
        actions = _strings(item.get("actions"))
        scope = str(item.get("scope") or "")
        unknown = [action for action in actions if action not in ALL_ACTIONS]
        if unknown:
            errors[field] = _l("记录权限“%(type)s”：未知的操作 %(unknown)s；可选：%(allowed)s", type=type_key,
                               unknown="、".join(unknown), allowed=_choices(ACTION_LABELS))
        elif not scope and actions:
            errors[field] = _l("记录权限“%(type)s”：勾选了操作时请选择范围（%(allowed)s）；不单独设置时请不要勾选操作",
                               type=type_key, allowed=_choices(SCOPE_LABELS))
        elif scope not in SCOPE_ORDER:
            errors[field] = _l("记录权限“%(type)s”：请选择范围（%(allowed)s）", type=type_key,
                               allowed=_choices(SCOPE_LABELS))
        else:
            grants.append({"record_type": type_key, "scope": scope,
                           "actions": [action for action in ALL_ACTIONS if action in actions]})
    return grants, errors


def _refuse_losing_the_last_admin(role: AccessRole, capabilities: list[str]) -> None:
    """Nobody could open this screen again if the change took 系统设置 from the last enabled user holding it."""
    manage = Capability.MANAGE_SYSTEM.value
    if manage not in role.capabilities or manage in capabilities:
        return
    keeping = [key for key, rules in load_roles().items() if key != role.key and manage in rules.capabilities]
    if not get_database()[USERS].count_documents({"active": True, "roles": {"$in": keeping}}, limit=1):
        raise Conflict(_l("保存后将没有启用的用户拥有“%(capability)s”权限，无法再修改角色",
                          capability=CAPABILITY_LABELS[Capability.MANAGE_SYSTEM]), {"capabilities": _l("须保留")})
