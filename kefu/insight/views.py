"""Saved views (视图): filters + visible columns + sort of one record type's list, per user or shared.

A view's filters are stored as ``[field, op, value]`` — the operators of the
field's type (``kefu.records.fields``), plus the pseudo-field ``sla`` with ``overdue``,
``due_soon``, ``due_within`` (hours) and ``due_today``. Values may name the person looking:
``$me`` (the user), ``$my_department``, ``$open`` (the type's open statuses),
``$today``, ``$month_start``.

A view is checked against the type's *current* definition each time it is
opened (``resolve``): a filter naming a removed field or an operator the field
no longer has is dropped and named in ``dropped``, the rest applies; columns
that no longer exist are left out. Built-in views (``BUILTIN``) exist for every
type; the one named after the type's top level (重大投诉 in the shipped packs: ``kefu.rules.levels.top_level``) only
where the type has a top level and its level field offers it. Each user may pick
one default view per type. Sharing needs supervisor, manager or admin.

The value of a filter on a sensitive field (a phone number) is stored encrypted with the data key under the
context ``view.<type>.<field>``, as ``{"sealed": "<hex of the ciphertext>"}`` (a typed value is never an object;
``SealedFilters`` finds them for a key rotation); it is decrypted when the view is applied, and shown masked to
whoever may not see the type's personal data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from bson import ObjectId
from flask import current_app
from mongoengine import BooleanField, DateTimeField, Document, ListField, ObjectIdField, StringField

from kefu.core.clock import utcnow
from kefu.core.crypto import DecryptionFailed
from kefu.core.encrypted_stores import unreadable
from kefu.core.errors import NotFound, PermissionDenied, ValidationFailed
from kefu.core.i18n import _l
from kefu.org.access import policy_for
from kefu.org.roles import CAPABILITY_LABELS, Capability
from kefu.records.core_fields import CORE_BY_KEY, core_field
from kefu.records.fields import get_field_type
from kefu.records.query import SLA_SORT, Condition, RecordQuery, build_filter
from kefu.records.sections import workflow_of
from kefu.records.types import get_record_type
from kefu.rules.levels import level_field, top_level
from kefu.rules.sla import SLA_COLUMN

LEVEL_FIELD = "$level"  # in a built-in's filters: whichever field holds the type's level (``kefu.rules.levels``)
TOP_LEVEL = "$top_level"  # in a built-in's filters: the type's highest level (``kefu.rules.levels.top_level``)
SLA_OPS = ("overdue", "due_soon", "due_within", "due_today")
MAX_NAME = 40
BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True)
class Builtin:
    key: str
    name: object
    filters: tuple
    sort: str | None = None
    # Offered only where the type has a top level and its level field offers it; ``name`` then says which
    # (``%(level)s``).
    needs_top_level: bool = False

    def name_for(self, record_type) -> str:
        """The view's name on this type, in the user's language."""
        name = str(self.name)
        return name % {"level": top_level(record_type)} if self.needs_top_level else name

    def filters_for(self, record_type) -> list[list]:
        """The filters as lists, ``LEVEL_FIELD`` replaced by the key of the type's level field and ``TOP_LEVEL``
        by its highest level."""
        top = top_level(record_type)
        return [[level_field(record_type) if key == LEVEL_FIELD else key, op, top if value == TOP_LEVEL else value]
                for key, op, value in self.filters]


BUILTIN = (
    Builtin("my_todo", _l("我的待办"), (("assignee", "eq", "$me"), ("status", "in", "$open"))),
    Builtin("my_overdue", _l("我的逾期"), (("assignee", "eq", "$me"), (SLA_COLUMN, "overdue", True)), sort="sla_due"),
    Builtin("dept_overdue", _l("本部门逾期"), (("department", "eq", "$my_department"), (SLA_COLUMN, "overdue", True)),
            sort="sla_due"),
    Builtin("due_24h", _l("24 小时内到期"), ((SLA_COLUMN, "due_within", 24),), sort="sla_due"),
    Builtin("my_due_today", _l("我的今日到期"), (("assignee", "eq", "$me"), (SLA_COLUMN, "due_today", True)),
            sort="sla_due"),
    Builtin("major", _l("%(level)s投诉"), ((LEVEL_FIELD, "eq", TOP_LEVEL), ("status", "in", "$open")),
            needs_top_level=True),
    Builtin("new_this_month", _l("本月新增"), (("created_at", "gte", "$month_start"),)),
    Builtin("new_today", _l("今日新增"), (("created_at", "gte", "$today"),)),
)
BUILTIN_BY_KEY = {b.key: b for b in BUILTIN}


class SavedView(Document):
    """A view someone saved: theirs only, or shared with everyone who opens the type."""

    record_type = StringField(required=True, verbose_name=_l("记录类型"))
    name = StringField(required=True, max_length=MAX_NAME, verbose_name=_l("名称"))
    owner = ObjectIdField(required=True, verbose_name=_l("创建人"))
    shared = BooleanField(default=False, verbose_name=_l("共享"))
    filters = ListField(ListField(), verbose_name=_l("筛选"))
    columns = ListField(StringField(), verbose_name=_l("列"))
    sort = StringField(verbose_name=_l("排序"))
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    meta = {"collection": "saved_views", "indexes": [("record_type", "owner"), ("record_type", "shared")]}


def _context(type_key: str, field_key: str) -> str:
    return f"view.{type_key}.{field_key}"


def _sensitive(record_type, key) -> bool:
    definition = record_type.field(key) if isinstance(key, str) and key not in CORE_BY_KEY else None
    return definition is not None and definition.sensitive


def _sealed(value) -> bytes | None:
    """The ciphertext of a stored filter value that is encrypted, else None."""
    return bytes.fromhex(value["sealed"]) if isinstance(value, dict) and "sealed" in value else None


def _seal_filters(record_type, filters: list) -> list:
    """``filters`` as stored: the value of a filter on a sensitive field encrypted (``{"sealed": hex}``)."""
    cipher = current_app.extensions["kefu_cipher"]
    def sealed(key: str, value) -> dict:
        return {"sealed": cipher.encrypt(str(value), context=_context(record_type.key, key)).hex()}

    return [[item[0], item[1], sealed(item[0], item[2])]
            if len(item) == 3 and _sensitive(record_type, item[0]) and item[2] not in (None, "")
            and _sealed(item[2]) is None else item for item in filters]


def _opened(type_key: str, key: str, value):
    """A stored filter value as typed: decrypted when it was stored encrypted."""
    blob = _sealed(value)
    if blob is None:
        return value
    return current_app.extensions["kefu_cipher"].decrypt(blob, context=_context(type_key, key))


class SealedFilters:
    """The encrypted filter values of saved views, for a key rotation (``kefu.core.encrypted_stores``): the context
    of each depends on the view's type and the filter's field. Saved views are few: they are read whole."""

    name = "saved_views"
    HOLDING = {"filters": {"$elemMatch": {"$elemMatch": {"sealed": {"$exists": True}}}}}

    @staticmethod
    def _collection():
        return SavedView._get_collection()

    def _sealed(self):
        """``(view document, [(field key, ciphertext)])`` of every view holding an encrypted value."""
        for document in self._collection().find(self.HOLDING, ["record_type", "filters"]):
            yield document, [(item[0], _sealed(item[2])) for item in document["filters"]
                             if len(item) == 3 and _sealed(item[2]) is not None]

    def sample(self):
        for document, sealed in self._sealed():
            key, blob = sealed[0]
            return blob, _context(document["record_type"], key)
        return None

    def count_pending(self, cipher) -> int:
        return sum(1 for _document, sealed in self._sealed()
                   if any(not cipher.under_primary_key(blob) for _key, blob in sealed))

    def reencrypt_batch(self, cipher, batch_size: int) -> int:
        moved = 0
        for document, sealed in self._sealed():
            if moved >= batch_size:
                break
            if all(cipher.under_primary_key(blob) for _key, blob in sealed):
                continue
            try:
                filters = [[item[0], item[1], {"sealed": cipher.reencrypt(
                    _sealed(item[2]), context=_context(document["record_type"], item[0])).hex()}]
                    if len(item) == 3 and _sealed(item[2]) is not None else item for item in document["filters"]]
            except DecryptionFailed as exc:
                raise unreadable(self.name, document["_id"], "filters", exc) from exc
            moved += self._collection().update_one({"_id": document["_id"], "filters": document["filters"]},
                                                   {"$set": {"filters": filters}}).matched_count
        return moved


ENCRYPTED_STORES = [SealedFilters()]


def seal_earlier_views() -> int:
    """Encrypt the values of filters on sensitive fields that saved views keep in clear (saved before values were
    encrypted, or before the field was marked sensitive); idempotent. Return how many views were sealed."""
    sealed = 0
    for type_key in SavedView.objects.distinct("record_type"):
        try:
            record_type = get_record_type(type_key, active_only=False)
        except NotFound:  # the type is gone: its views open nothing
            continue
        for view in SavedView.objects(record_type=type_key):
            filters = _seal_filters(record_type, [list(item) for item in view.filters])
            if filters != [list(item) for item in view.filters]:
                view.update(set__filters=filters)
                sealed += 1
    return sealed


class DefaultView(Document):
    """Which view a user's list of a type opens with."""

    user = ObjectIdField(required=True)
    record_type = StringField(required=True, unique_with="user")
    view = StringField(required=True)  # "builtin:<key>" or a SavedView id

    meta = {"collection": "default_views"}


@dataclass
class Resolved:
    """A view applied to the current definition: what ``kefu.records.query`` runs, and what was dropped."""

    key: str
    name: str
    conditions: list = field(default_factory=list)  # kefu.records.query.Condition
    overdue: bool = False
    due_soon: bool = False
    due_within: timedelta | None = None
    columns: list[str] = field(default_factory=list)
    sort: str | None = None
    dropped: list[str] = field(default_factory=list)

    def apply(self, query):
        """Add this view's filters to a ``RecordQuery`` (and its sort when the query has none)."""
        query.conditions.extend(self.conditions)
        query.overdue = query.overdue or self.overdue
        query.due_soon = query.due_soon or self.due_soon
        if self.due_within is not None:
            query.due_within = self.due_within
        if not query.sort and self.sort:
            query.sort = self.sort
        return query


# -- checking filters -------------------------------------------------------------------------------------

def filter_problem(record_type, item) -> str | None:
    """Why ``[field, op, value]`` cannot apply to the type as defined now (None when it can)."""
    if not isinstance(item, (list, tuple)) or len(item) != 3 or not isinstance(item[0], str):
        return str(_l("筛选条件应为 [字段, 运算, 值]：%(item)s", item=item))
    key, op, _value = item
    if key == SLA_COLUMN:
        return None if op in SLA_OPS else str(_l("时限筛选只支持：%(ops)s", ops="、".join(SLA_OPS)))
    definition = core_field(record_type, key) if key in CORE_BY_KEY else record_type.field(key)
    if definition is None:
        return str(_l("字段“%(key)s”已不存在", key=key))
    if not definition.active:
        return str(_l("字段“%(label)s”已停用", label=definition.label))
    operators = get_field_type(definition.type).operators
    if definition.sensitive:
        operators = tuple(o for o in operators if o in ("eq", "empty", "not_empty"))
    if op not in operators:
        return str(_l("字段“%(label)s”不支持“%(op)s”；可用：%(ops)s", label=definition.label, op=op,
                      ops="、".join(operators)))
    return None


def _value(record_type, value, actor, now: datetime):
    if value == "$me":
        return str(actor.user_id) if actor.user_id else None
    if value == "$my_department":
        department = getattr(actor.user, "department", None)
        return str(department.pk) if department is not None else None
    if value == "$open":
        return ",".join(workflow_of(record_type).open_statuses)
    local = now.astimezone(actor.tz)
    if value == "$today":
        return local.date().isoformat()
    if value == "$month_start":
        return local.date().replace(day=1).isoformat()
    return value


def resolve(record_type, key: str, actor, now: datetime | None = None) -> Resolved:
    """The view ``key`` (a built-in key or a saved view's id) for ``actor``; ``NotFound`` when it is neither
    (or is someone else's unshared view). Filters that no longer fit the definition are dropped, with a reason."""
    now = now or utcnow()
    builtin = BUILTIN_BY_KEY.get(key.removeprefix(BUILTIN_PREFIX))
    if builtin is not None and _offered(record_type, builtin):
        resolved = Resolved(key=BUILTIN_PREFIX + builtin.key, name=builtin.name_for(record_type), sort=builtin.sort)
        filters = builtin.filters_for(record_type)
    else:
        view = _visible_view(record_type.key, key, actor)
        resolved = Resolved(key=str(view.pk), name=view.name, sort=view.sort,
                            columns=[c for c in view.columns if _column_exists(record_type, c)])
        filters = list(view.filters)
        missing = [c for c in view.columns if not _column_exists(record_type, c)]
        if missing:
            resolved.dropped.append(str(_l("列“%(keys)s”已不存在，未显示", keys="、".join(missing))))
    for item in filters:
        problem = filter_problem(record_type, item)
        if problem is not None:
            resolved.dropped.append(str(_l("已忽略筛选 %(item)s：%(problem)s", item=_describe(item), problem=problem)))
            continue
        field_key, op, value = item
        if field_key == SLA_COLUMN:
            if op == "due_within":
                try:
                    resolved.due_within = timedelta(hours=float(value))
                except (TypeError, ValueError):
                    resolved.dropped.append(str(_l("已忽略筛选 %(item)s：小时数应为数字", item=_describe(item))))
            elif op == "due_today":
                tomorrow = now.astimezone(actor.tz).date() + timedelta(days=1)
                resolved.due_within = datetime.combine(tomorrow, time(0, 0), tzinfo=actor.tz) - now
            else:
                setattr(resolved, op, True)
            continue
        value = _opened(record_type.key, field_key, value)
        condition = Condition(field_key, op, _value(record_type, value, actor, now))
        if condition.value is None and op not in ("empty", "not_empty"):
            resolved.dropped.append(str(_l("已忽略筛选 %(item)s：当前用户没有所属部门", item=_describe(item))))
            continue
        try:
            build_filter(record_type, RecordQuery(conditions=[condition]), actor)
        except ValidationFailed as exc:
            resolved.dropped.append(str(_l("已忽略筛选 %(item)s：%(problem)s", item=_describe(item),
                                           problem=str(exc.message))))
            continue
        resolved.conditions.append(condition)
    if resolved.sort and not _sort_exists(record_type, resolved.sort):
        resolved.dropped.append(str(_l("排序字段“%(key)s”已不存在，按登记时间排序", key=resolved.sort.lstrip("-"))))
        resolved.sort = None
    return resolved


def _describe(item) -> str:
    try:
        key, op, value = item
        return f"[{key}, {op}, {'******' if _sealed(value) is not None else value}]"
    except (TypeError, ValueError):
        return str(item)


def _offered(record_type, builtin: Builtin) -> bool:
    if not builtin.needs_top_level:
        return True
    top, level = top_level(record_type), record_type.field(level_field(record_type))
    return top is not None and level is not None and level.active and top in level.choices


def _column_exists(record_type, key: str) -> bool:
    if key in CORE_BY_KEY or key == SLA_COLUMN:
        return True
    definition = record_type.field(key)
    return definition is not None and definition.active


def _sort_exists(record_type, sort: str) -> bool:
    key = sort.lstrip("-")
    return key == SLA_SORT or _column_exists(record_type, key)


def _visible_view(type_key: str, key: str, actor) -> SavedView:
    try:
        view = SavedView.objects(pk=ObjectId(str(key)), record_type=type_key).first()
    except Exception:
        view = None
    if view is None or (not view.shared and view.owner != actor.user_id):
        raise NotFound(_l("没有这个视图：%(key)s", key=key))
    return view


# -- listing and saving ----------------------------------------------------------------------------------

def views_for(record_type, user) -> list[dict]:
    """Every view the user may open on the type: built-ins, their own, the shared ones; with the default marked."""
    default = default_key(user.pk, record_type.key)
    items = [{"id": BUILTIN_PREFIX + b.key, "name": b.name_for(record_type), "builtin": True, "shared": True,
              "mine": False, "filters": b.filters_for(record_type), "columns": [], "sort": b.sort}
             for b in BUILTIN if _offered(record_type, b)]
    saved = SavedView.objects(record_type=record_type.key).filter(
        __raw__={"$or": [{"owner": user.pk}, {"shared": True}]}).order_by("name")
    unmasked = policy_for(user).sees_pii(record_type.key)
    items += [{"id": str(v.pk), "name": v.name, "builtin": False, "shared": v.shared, "mine": v.owner == user.pk,
               "filters": [_shown_filter(record_type, item, unmasked) for item in v.filters],
               "columns": list(v.columns), "sort": v.sort} for v in saved]
    for item in items:
        item["default"] = item["id"] == default
    return items


def _shown_filter(record_type, item, unmasked: bool) -> list:
    """A stored filter as a person sees it: an encrypted value decrypted, masked unless they see personal data."""
    key, op, value = item
    if _sealed(value) is None:
        return [key, op, value]
    try:
        value = _opened(record_type.key, key, value)
    except DecryptionFailed:
        return [key, op, "******"]
    definition = record_type.field(key)
    return [key, op, value if unmasked or definition is None else get_field_type(definition.type).mask(value)]


def save_view(record_type, user, name: str, filters, columns=(), sort: str | None = None, shared: bool = False,
              view_id: str | None = None) -> SavedView:
    """Create (or, with ``view_id``, change) a view. Refused (``ValidationFailed``) when a filter or column does
    not fit the current definition; sharing without the role is ``PermissionDenied``."""
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = str(_l("请填写视图名称"))
    elif len(name) > MAX_NAME:
        errors["name"] = str(_l("视图名称最多 %(n)s 个字", n=MAX_NAME))
    filters = [list(f) if isinstance(f, (list, tuple)) else f for f in (filters or [])]
    problems = [p for p in (filter_problem(record_type, f) for f in filters) if p]
    for item in filters:
        if isinstance(item, list) and len(item) == 3 and isinstance(item[2], (dict, list)):
            problems.append(str(_l("筛选值格式不正确：%(item)s", item=_describe(item))))
    if problems:
        errors["filters"] = "；".join(problems)
    columns = [str(c) for c in (columns or [])]
    unknown = [c for c in columns if not _column_exists(record_type, c)]
    if unknown:
        errors["columns"] = str(_l("没有这些列：%(keys)s", keys="、".join(unknown)))
    if sort and not _sort_exists(record_type, sort):
        errors["sort"] = str(_l("不能按“%(key)s”排序", key=sort))
    if errors:
        raise ValidationFailed("；".join(errors.values()), errors)
    if shared and not policy_for(user).has(Capability.SHARE_VIEWS.value):
        raise PermissionDenied(_l("您没有共享视图的权限（%(capability)s）",
                                  capability=CAPABILITY_LABELS[Capability.SHARE_VIEWS]))
    if view_id is not None:
        view = _own_view(record_type.key, view_id, user)
    else:
        view = SavedView(record_type=record_type.key, owner=user.pk)
    view.name, view.columns, view.sort, view.shared = name, columns, sort or None, bool(shared)
    view.filters = _seal_filters(record_type, filters)
    view.updated_at = utcnow()
    view.save()
    return view


def _own_view(type_key: str, view_id: str, user) -> SavedView:
    try:
        view = SavedView.objects(pk=ObjectId(str(view_id)), record_type=type_key).first()
    except Exception:
        view = None
    if view is None:
        raise NotFound(_l("没有这个视图：%(key)s", key=view_id))
    if view.owner != user.pk and not policy_for(user).has(Capability.MANAGE_SYSTEM.value):
        raise PermissionDenied(_l("只能修改自己创建的视图"))
    return view


def delete_view(record_type, user, view_id: str) -> None:
    view = _own_view(record_type.key, view_id, user)
    DefaultView.objects(record_type=record_type.key, view=str(view.pk)).delete()
    view.delete()


def default_key(user_id, type_key: str) -> str | None:
    entry = DefaultView.objects(user=user_id, record_type=type_key).first()
    return entry.view if entry else None


def set_default(record_type, actor, key: str | None) -> None:
    """Make ``key`` the actor's default view of the type (None: no default); the view must be one they may open."""
    if key is None:
        DefaultView.objects(user=actor.user_id, record_type=record_type.key).delete()
        return
    key = resolve(record_type, key, actor).key  # NotFound for a view they cannot open
    DefaultView.objects(user=actor.user_id, record_type=record_type.key).update_one(upsert=True, set__view=key)
