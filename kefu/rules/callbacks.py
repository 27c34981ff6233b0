"""Callbacks (回访): closing a record creates a callback record linked to it (the ``callback:`` section).

```yaml
callback:
  type: callback                 # the record type created
  on_status: 已关闭              # entering it creates the callback
  within: {working_days: 7}      # its deadline from that moment: working_days, days or hours (003: 7; 004: 3)
  due_field: due_at              # the callback type's datetime field that holds the deadline (default due_at)
  result_field: result           # the callback type's choice field the agent records the answer in
  rejected_values: [不满意]       # answers that send the original back (kefu.rules.levels.customer_rejected)
  values: {callback_type: 投诉回访}                    # optional: fixed values of the new callback
  copy: {number: target_number, owner_name: customer_name}   # optional: this record's field → callback field
```

The callback is assigned to whoever registered the original (its
``created_by``, else its assignee) and stores ``source`` = {type, id, number,
closed_at}; the original keeps ``callbacks`` = [{type, id, number, closed_at,
due_at, result}]. One closing creates one callback, however often the rule
runs (a unique index on ``source.id`` + ``source.closed_at``); closing again
after a reopen creates the next one.

When the callback's result is recorded: a rejected answer calls
``kefu.rules.levels.customer_rejected`` on the original (raised one level, back to
rework); any answer closes the callback. Each callback is acted on once.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bson import ObjectId
from pydantic import Field, StrictStr, field_validator
from pymongo import ASCENDING, IndexModel

from kefu.calendar.workcalendar import get_calendar
from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.errors import DomainError, NotFound
from kefu.core.i18n import _l
from kefu.org.access import ACCESS_PROJECTION
from kefu.org.roles import Action
from kefu.records.actor import system_actor
from kefu.records.definitions import TYPE_KEY_PATTERN
from kefu.records.engine_state import claim_outcome, link_callback, set_callback_result
from kefu.records.fields import get_field_type
from kefu.records.sections import WORKFLOW, Section, SectionModel, at, parsed, refuse, workflow_of
from kefu.records.store import RECORDS
from kefu.records.timeline import record_event
from kefu.records.types import RecordType, get_record_type
from kefu.records.values import core_values, read_values
from kefu.records.write import create_record, system_update
from kefu.rules.levels import customer_rejected
from kefu.rules.shapes import MOMENTS, SINGLE_CHOICE, CallbackWindow, Name, picker

log = logging.getLogger(__name__)

DEFAULT_DUE_FIELD = "due_at"
# Core fields a callback may be given or copied from the original (the engine's own, not configured ones).
CORE_KEYS = ("number", "status", "assignee", "department", "customer", "created_by")
WRITABLE_CORE = ("assignee", "department", "customer")


# The records collection's indexes for callbacks (created by kefu.runtime.storage): one callback per closing of a
# record, and the callbacks due on a day (今日回访, kefu.schedule.duties).
RECORD_INDEXES = [
    IndexModel([("source.id", ASCENDING), ("source.closed_at", ASCENDING)], unique=True, name="callback_source",
               partialFilterExpression={"source.id": {"$exists": True}}),
    IndexModel([("source.due_at", ASCENDING)], name="callback_due",
               partialFilterExpression={"source.due_at": {"$type": "date"}}),
]


class Callback(SectionModel):
    """The ``callback:`` section."""

    type: StrictStr = Field(title=_l("回访记录类型"), description=_l("要创建的回访记录类型的键"),
                            json_schema_extra=picker("record_type"))
    on_status: Name = Field(title=_l("生成回访的状态"), description=_l("进入该状态（关闭）时生成回访"),
                            json_schema_extra=picker("status"))
    within: CallbackWindow = Field(title=_l("回访期限"), json_schema_extra=picker("window",
                                                                               units=list(CallbackWindow.units)))
    due_field: Name = Field(DEFAULT_DUE_FIELD, title=_l("期限字段"), description=_l("回访类型中保存期限的日期时间字段"))
    result_field: Name = Field(title=_l("结果字段"), description=_l("回访类型中记录回访结果的选项字段"))
    rejected_values: tuple[Name, ...] = Field(min_length=1, title=_l("不满意的结果"),
                                              description=_l("表示客户不满意的结果"), json_schema_extra=picker("words"))
    values: dict[StrictStr, Any] = Field({}, title=_l("回访记录的固定值"), description=_l("回访字段 → 值"),
                                         json_schema_extra=picker("pairs"))
    copy_: dict[StrictStr, StrictStr] = Field({}, alias="copy", title=_l("复制到回访的字段"),
                                              description=_l("本类型字段 → 回访字段"), json_schema_extra=picker("pairs"))

    @field_validator("type")
    @classmethod
    def _type_key(cls, value: str) -> str:
        if not TYPE_KEY_PATTERN.match(value):
            raise refuse(_l("应为要创建的回访记录类型的键，如 callback"))
        return value

    @property
    def unit(self) -> str:
        return self.within.unit

    @property
    def amount(self) -> int:
        return self.within.amount

    def within_text(self) -> str:
        return self.within.text()

    def due(self, start: datetime, tz) -> datetime:
        """The callback's deadline counted from ``start`` (working days on the company calendar)."""
        return self.within.due(start, get_calendar(), tz)


def rules_of(record_type) -> Callback | None:
    """The type's callback rule, or None when it has no ``callback:`` section."""
    return parsed(record_type, CallbackSection.key)


class CallbackSection(Section):
    """``callback:``: create the 回访 on closing; act on a callback's recorded answer.

    The callback type itself is checked when it exists already (a pack may define it after the types that use
    it): its deadline field must be a date-time, its result field a choice offering ``rejected_values``.
    """

    key = "callback"
    title = _l("回访规则")
    model = Callback

    def problems(self, draft, model: Callback) -> list:
        problems = []
        if model.type == draft.key:
            problems.append(at("callback.type", _l("callback.type 不能是本类型自己")))
        workflow = draft.section(WORKFLOW)
        if workflow is not None and model.on_status not in workflow.statuses:
            problems.append(at("callback.on_status", _l("callback.on_status“%(status)s”不在流程状态中；可选：%(statuses)s",
                                                        status=model.on_status, statuses="、".join(workflow.statuses))))
        missing = [k for k in model.copy_ if draft.field(k) is None and k not in CORE_KEYS]
        if missing:
            problems.append(at("callback.copy", _l("callback.copy 中本类型没有的字段：%(fields)s",
                                                   fields="、".join(missing))))
        target = RecordType.objects(key=model.type).first() if model.type != draft.key else None
        if target is not None:
            problems.extend(_target_problems(target, model))
        return problems

    def choice_references(self, owner, model: Callback, type_key, field_key):
        """The answers (``rejected_values``) and fixed values (``values``) the rule names for a field of the
        callback type."""
        if model.type != type_key:
            return []
        found = [(_l("“%(type)s”的回访规则 callback.rejected_values", type=owner.name), value)
                 for value in (model.rejected_values if field_key == model.result_field else ())]
        fixed = model.values.get(field_key)
        found.extend((_l("“%(type)s”的回访规则 callback.values", type=owner.name), value)
                     for value in (fixed if isinstance(fixed, list) else [fixed]) if value is not None)
        return found

    def after_save(self, record_type, model, document, before, changed, actor):
        if document.get("source"):
            record_result(record_type, document, changed, actor)
        if model is None or "status" not in changed or document.get("status") != model.on_status:
            return None
        if before is None or before.get("status") != model.on_status:
            create_callback(record_type, document, actor)
        return None


def _target_problems(target, rules: Callback) -> list:
    problems = []
    due = target.field(rules.due_field)
    if due is None or due.type not in MOMENTS:
        problems.append(at("callback.due_field", _l("callback.due_field：回访类型“%(type)s”没有日期时间字段“%(field)s”",
                                                    type=target.name, field=rules.due_field)))
    result = target.field(rules.result_field)
    if result is None or result.type not in SINGLE_CHOICE:
        problems.append(at("callback.result_field", _l(
            "callback.result_field：回访类型“%(type)s”没有选项字段“%(field)s”", type=target.name,
            field=rules.result_field)))
    else:
        unknown = [v for v in rules.rejected_values if v not in (result.choices or [])]
        if unknown:
            problems.append(at("callback.rejected_values", _l(
                "callback.rejected_values 中的“%(values)s”不是“%(field)s”的可选项（%(choices)s）",
                values="、".join(unknown), field=result.label, choices="、".join(result.choices or []))))
    missing = [k for k in [*rules.values, *rules.copy_.values()] if target.field(k) is None and k not in WRITABLE_CORE]
    if missing:
        problems.append(_l("callback：回访类型“%(type)s”没有字段 %(fields)s", type=target.name,
                           fields="、".join(missing)))
    return problems


# -- creating the callback ----------------------------------------------------------------------------

def create_callback(record_type, document: dict, actor) -> dict | None:
    """The callback of this closing of ``document``: created once, then found again. None when it could not
    be created (the reason is written to the original's timeline)."""
    rules = rules_of(record_type)
    closed_at = (document.get("status_at") or {}).get(rules.on_status) or document.get("updated_at")
    closed_at = closed_at.replace(microsecond=closed_at.microsecond // 1000 * 1000)  # as MongoDB keeps it
    collection = get_database()[RECORDS]
    existing = collection.find_one({"source.id": document["_id"], "source.closed_at": closed_at})
    if existing is not None:
        _link(document, existing)
        return existing
    system = system_actor()
    due = rules.due(closed_at, actor.tz)
    try:
        target = get_record_type(rules.type)
        values = carried_values(record_type, document, target, rules.values, rules.copy_)
        registered_by = document.get("created_by") or document.get("assignee")
        if registered_by is not None:
            values["assignee"] = registered_by
        if _writable(target, rules.due_field):
            values[rules.due_field] = due
        # ``within`` and ``due_field``: what kefu.rules.spawn.follow_calendar recounts the deadline from.
        source = {"type": record_type.key, "id": document["_id"], "number": document["number"],
                  "closed_at": closed_at, "due_at": due, "within": rules.within.to_dict(),
                  "due_field": rules.due_field}
        # In the closing save's transaction: a concurrent closing that made it first is a write conflict, and the
        # retried save finds it above.
        # Seen where the original is: the callback takes its registering department (its supervisors follow it up).
        created = create_record(rules.type, values, system, extra={
            "source": source, "created_department": document.get("created_department")})
    except DomainError as exc:
        log.warning("callback for %s %s not created: %s", record_type.key, document["number"], exc)
        record_event(record_type.key, document["_id"], "callback", system,
                     text=str(_l("未能自动生成回访：%(reason)s", reason=str(exc.message))))
        return None
    if _link(document, created):
        record_event(record_type.key, document["_id"], "callback", system,
                     text=str(_l("已生成回访 %(number)s，回访期限 %(due)s（%(within)s）", number=created["number"],
                     due=due.astimezone(actor.tz).strftime("%Y-%m-%d %H:%M"),
                     within=rules.within_text())))
    return created


def carried_values(record_type, document: dict, target, fixed: dict, copy: dict) -> dict:
    """The values a record created from ``document`` (of ``target`` type) starts with: the ``fixed`` ones, then
    ``document``'s fields named by ``copy`` (its field → the target's field) that hold something; only target
    fields that can be written (active ones and ``WRITABLE_CORE``)."""
    source_values = {**core_values(document), **read_values(record_type, document, system_actor())}
    values = {key: value for key, value in fixed.items() if _writable(target, key)}
    for source_key, target_key in copy.items():
        value = source_values.get(source_key)
        if value not in (None, "", []) and _writable(target, target_key):
            values[target_key] = value
    return values


def _writable(target, key: str) -> bool:
    definition = target.field(key)
    return key in WRITABLE_CORE or (definition is not None and definition.active)


def _link(document: dict, callback: dict) -> bool:
    """Note the callback on the original (once); True when it was added now."""
    source = callback["source"]
    entry = {"type": callback["type"], "id": callback["_id"], "number": callback["number"],
             "closed_at": source["closed_at"], "due_at": source.get("due_at"), "result": None}
    return link_callback(document["_id"], entry)


# -- the answer -----------------------------------------------------------------------------------------

def record_result(record_type, document: dict, changed, actor) -> None:
    """Act on the callback's result once it is recorded: a rejected answer sends the original back
    (``kefu.rules.levels.customer_rejected``); the callback is then closed. Once per callback (``outcome``)."""
    source = document["source"]
    try:
        source_type = get_record_type(source["type"], active_only=False)
    except NotFound:
        return
    rules = rules_of(source_type)
    if rules is None or document.get("outcome"):
        return  # no rule, or acted on already (a failed attempt is retried at the callback's next save)
    definition = record_type.field(rules.result_field)
    stored = (document.get("data") or {}).get(rules.result_field)
    if definition is None or stored in (None, ""):
        return
    field_type = get_field_type(definition.type)
    result = field_type.from_storage(stored)
    # Under any name of the answer: one the rule names may have been renamed while records still hold the old one.
    rejected = any(name in rules.rejected_values for name in field_type.same_choice(result, definition))
    outcome = {"result": result, "rejected": rejected, "at": utcnow(), "by": actor.user_id}
    if not claim_outcome(document["_id"], outcome):
        return  # acted on already
    if rejected:
        # The rule sends the original back, whoever answered the callback: the engine acts for them (in the
        # callback's save: if that fails, the claim above is undone with it).
        customer_rejected(source["type"], str(source["id"]), system_actor(actor.user),
                          str(_l("回访 %(number)s：客户%(result)s", number=document["number"], result=result)))
        text = _l("客户%(result)s：%(source)s 已退回重新处理", result=result, source=source["number"])
    else:
        text = _l("回访结果“%(result)s”：%(source)s 归档", result=result, source=source["number"])
    set_callback_result(source["id"], document["_id"], result)
    record_event(source["type"], source["id"], "callback", actor,
                 text=str(_l("回访 %(number)s 结果：%(result)s", number=document["number"], result=result)))
    workflow = workflow_of(record_type)
    current = get_database()[RECORDS].find_one({"_id": document["_id"]}, {"status": 1})
    if workflow.closed and not workflow.is_closed(current.get("status")):
        system_update(record_type.key, document["_id"], {"status": workflow.closed[0]}, actor,
                      event_kind="callback", event_text=str(text))
    else:
        record_event(record_type.key, document["_id"], "callback", actor, text=str(text))


# -- reading ------------------------------------------------------------------------------------------

def links_of(document: dict, tz, access) -> list[dict]:
    """The records linked to ``document`` that ``access`` may read: its original (for a callback or a record made
    by a ``spawn:`` rule), its callbacks and the records its ``spawn:`` rules made, with their current status, for the details pages (one query for the statuses, one for the type
    names). A linked record out of the reader's scope stays unseen."""
    links = []
    source = document.get("source")
    if source:
        links.append({"role": "source", "type": source["type"], "id": source["id"], "number": source["number"],
                      "due_at": source.get("due_at")})
    for entry in document.get("callbacks") or []:
        links.append({"role": "callback", "type": entry["type"], "id": entry["id"], "number": entry["number"],
                      "due_at": entry.get("due_at"), "result": entry.get("result")})
    spawned_from = document.get("spawned_from")
    if spawned_from:
        links.append({"role": "source", "type": spawned_from["type"], "id": spawned_from["id"],
                      "number": spawned_from["number"], "due_at": spawned_from.get("due_at")})
    for entry in document.get("spawned") or []:
        links.append({"role": "spawned", "type": entry["type"], "id": entry["id"], "number": entry["number"],
                      "due_at": entry.get("due_at"), "name": entry.get("name"), "attempt": entry.get("attempt")})
    found = get_database()[RECORDS].find({"_id": {"$in": [link["id"] for link in links]}},
                                         {**ACCESS_PROJECTION, "status": 1})
    stored = {d["_id"]: d for d in found if access.permits(d, Action.READ.value)}
    links = [link for link in links if link["id"] in stored]
    if not links:
        return []
    names = {t.key: t.name for t in RecordType.objects(key__in=list({link["type"] for link in links})).only(
        "key", "name")}
    for link in links:
        link["id"] = str(link["id"])
        link["type_name"] = names.get(link["type"], link["type"])
        link["status"] = (stored.get(ObjectId(link["id"])) or {}).get("status")
        link["due_text"] = link["due_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M") if link.get("due_at") else ""
    return links
