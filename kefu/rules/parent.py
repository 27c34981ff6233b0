"""Child records of another record (the ``parent:`` section): 004 顾客沟通's agreed items (议定事项) of a meeting
(座谈会) — any type whose records belong to one record of another type.

```yaml
parent:
  type: meeting      # the parent record type (not this type itself)
  field: meeting     # this type's text field holding the parent's record number (ZTH-202612-0001)
```

A record of this type is a child of the record of ``type`` whose number its ``field`` holds. Saving a number that
is no record of ``type`` is refused at that field. The parent's details page lists its children of every child
type (``children_of``: number, status, owner, the nearest deadline and its state) with a button that opens the
child's create form prefilled with the parent's number (``prefilled``). The link is the child's field value, so
moving an item to another meeting is an edit of that field; the children are found by it (the records' wildcard
index on ``data``), nothing is copied onto the parent.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, Field, StrictStr

from kefu.core.clock import aware, utcnow
from kefu.core.db import get_database
from kefu.core.errors import NotFound, ValidationFailed
from kefu.core.i18n import _l, in_user_language
from kefu.org.access import ACCESS_PROJECTION
from kefu.org.roles import Action
from kefu.org.users import User
from kefu.records.definitions import TYPE_KEY_PATTERN
from kefu.records.sections import Section, SectionModel, at, refuse
from kefu.records.store import RECORDS
from kefu.records.types import get_record_type, type_summaries
from kefu.rules.sla import STATE_LABELS, state_at

PARENT = "parent"
LINK_FIELD_TYPES = ("text",)   # a record number is text until a record-reference field type exists
MAX_CHILDREN = 200             # listed on the parent's page; more is a list filter's job (the link is filterable)
SUMMARY_CHARS = 60


def _type_key(value: str) -> str:
    if not TYPE_KEY_PATTERN.match(value):
        raise refuse(_l("应为上级记录类型的键"))
    return value


class Parent(SectionModel):
    """The ``parent:`` section."""

    type: Annotated[StrictStr, AfterValidator(_type_key)] = Field(title=_l("上级记录类型"),
                                                                  description=_l("本类型记录所属的记录类型"))
    field: StrictStr = Field(title=_l("上级记录编号字段"), description=_l("本类型中保存上级记录编号的文本字段"))


class ParentSection(Section):
    """``parent:``: this type's records belong to a record of another type."""

    key = PARENT
    title = _l("所属上级记录")
    model = Parent
    summary_paths = ("parent.type", "parent.field")

    def summary(self, raw, fields: list[dict]) -> dict:
        if isinstance(raw, Mapping) and isinstance(raw.get("type"), str) and isinstance(raw.get("field"), str):
            return {PARENT: {"type": raw["type"], "field": raw["field"]}}
        return {}

    def problems(self, draft, model: Parent) -> list:
        problems = []
        field = draft.field(model.field)
        if field is None or field.get("type") not in LINK_FIELD_TYPES:
            problems.append(at("parent.field", _l("parent.field：本类型没有文本字段“%(field)s”（保存上级记录编号）",
                                                  field=model.field)))
        if model.type == draft.key:
            problems.append(at("parent.type", _l("parent.type 不能是本类型")))
        else:
            try:
                get_record_type(model.type, active_only=False)
            except NotFound:
                problems.append(at("parent.type", _l("parent.type：没有记录类型“%(type)s”", type=model.type)))
        return problems

    def before_save(self, record_type, model: Parent | None, current, after, changed, *, system) -> None:
        """Refuse a link to a number that is no record of the parent type (checked when the link changes)."""
        if model is None or model.field not in changed or not after.get(model.field):
            return
        number = after[model.field]
        if get_database()[RECORDS].find_one({"type": model.type, "number": number}, {"_id": 1}) is None:
            raise ValidationFailed(_l("保存失败：请检查标出的项目"), {model.field: _l(
                "没有编号为“%(number)s”的%(type)s", number=number, type=_parent_name(model.type))})


def _parent_name(type_key: str) -> str:
    try:
        parent_type = get_record_type(type_key, active_only=False)
    except NotFound:
        return type_key
    return in_user_language(parent_type.name, parent_type.name_en)


def child_types(type_key: str) -> list[Mapping]:
    """The summaries (``kefu.records.types.type_summaries``) of the active types whose ``parent:`` names
    ``type_key``, in menu order."""
    return [s for s in type_summaries() if (s.get(PARENT) or {}).get("type") == type_key]


def prefilled(record_type, args: Mapping) -> dict:
    """The parent link a create form of ``record_type`` starts with: ``{field: number}`` when ``args`` (the query
    string of the link that opened it) give the link field a number of a record of the parent type; else {}."""
    summary = next((s for s in type_summaries() if s["key"] == record_type.key), None)
    link = (summary or {}).get(PARENT)
    number = str(args.get(link["field"]) or "").strip() if link else ""
    if not number or get_database()[RECORDS].find_one({"type": link["type"], "number": number}, {"_id": 1}) is None:
        return {}
    return {link["field"]: number}


def children_of(record_type, document: dict, tz, access) -> list[dict]:
    """The child records of ``document`` (a record of ``record_type``) that ``access`` may read, grouped by child
    type: ``{type, name, field, number, may_create, records: [{id, number, status, owner, summary, due_text,
    state, state_label}]}`` — ``due_text``/``state``: its nearest deadline (a running clock first) and that
    clock's state. A type whose records the user may not read is left out; one without children is listed (its
    button adds the first) when the user may create its records."""
    groups = []
    for child in child_types(record_type.key):
        may_create = access.allows(child["key"], Action.CREATE.value)
        if not access.may_read_type(child["key"]) and not may_create:
            continue
        field = child[PARENT]["field"]
        found = get_database()[RECORDS].find(
            {"type": child["key"], f"data.{field}": document["number"]},
            {**ACCESS_PROJECTION, "status": 1, "sla": 1, "data": 1}, sort=[("created_at", 1), ("_id", 1)],
            limit=MAX_CHILDREN)
        now = utcnow()
        items = [_item(d, field, tz, now) for d in found if access.permits(d, Action.READ.value)]
        if items or may_create:
            groups.append({"type": child["key"], "name": in_user_language(child["name"], child.get("name_en")),
                           "field": field, "number": document["number"], "may_create": may_create,
                           "records": items})
    _name_owners([item for group in groups for item in group["records"]])
    return groups


def _item(document: dict, link_field: str, tz, now) -> dict:
    clocks = list((document.get("sla") or {}).values())
    running = [c for c in clocks if c.get("met_at") is None]
    nearest = min(running or clocks, key=lambda c: aware(c["due_at"]), default=None)
    state = state_at(nearest, now) if nearest else None
    text = next((str(v) for k, v in (document.get("data") or {}).items()
                 if k != link_field and isinstance(v, str) and v.strip()), "")
    return {"id": str(document["_id"]), "number": document["number"], "status": document.get("status"),
            "owner": document.get("assignee"),
            "summary": text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS] + "…",
            "due_text": aware(nearest["due_at"]).astimezone(tz).strftime("%Y-%m-%d %H:%M") if nearest else "",
            "state": state, "state_label": str(STATE_LABELS.get(state, ""))}


def _name_owners(items: list[dict]) -> None:
    """Replace each item's ``owner`` id by the person's name (one query), "" when unassigned."""
    ids = {item["owner"] for item in items if item["owner"]}
    names = {u.id: u.display_name for u in User.objects(id__in=list(ids)).only("display_name")} if ids else {}
    for item in items:
        item["owner"] = names.get(item["owner"], "") if item["owner"] else ""


