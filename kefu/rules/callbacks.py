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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.errors import DomainError, NotFound
from kefu.core.i18n import _, _l
from kefu.records.fields import get_field_type
from kefu.rules.workflow import workflow_of

log = logging.getLogger(__name__)

SECTION_KEYS = ("type", "on_status", "within", "due_field", "result_field", "rejected_values", "values", "copy")
UNITS = ("working_days", "days", "hours")
DEFAULT_DUE_FIELD = "due_at"
# Core fields a callback may be given or copied from the original (the engine's own, not configured ones).
CORE_KEYS = ("number", "status", "assignee", "department", "customer", "created_by")
WRITABLE_CORE = ("assignee", "department", "customer")
RECORDS = "records"


@dataclass(frozen=True)
class Rules:
    type: str
    on_status: str
    unit: str
    amount: int
    due_field: str
    result_field: str
    rejected_values: tuple[str, ...]
    values: dict = field(default_factory=dict)
    copy: dict = field(default_factory=dict)

    def within_text(self) -> str:
        return {"working_days": _("%(n)s 个工作日", n=self.amount), "days": _("%(n)s 天", n=self.amount),
                "hours": _("%(n)s 小时", n=self.amount)}[self.unit]

    def due(self, start: datetime, tz) -> datetime:
        """The callback's deadline counted from ``start`` (working days on the company calendar)."""
        if self.unit == "working_days":
            from kefu.calendar.workcalendar import get_calendar

            return get_calendar().add_working_days(start, self.amount, tz)
        return start + timedelta(**{self.unit: self.amount})


def rules_of(record_type) -> Rules | None:
    """The type's callback rule, or None when it has no ``callback:`` section."""
    section = getattr(record_type, "callback", None) or {}
    if not section:
        return None
    (unit, amount), = section["within"].items()
    return Rules(type=section["type"], on_status=section["on_status"], unit=unit, amount=int(amount),
                 due_field=section.get("due_field") or DEFAULT_DUE_FIELD, result_field=section["result_field"],
                 rejected_values=tuple(section["rejected_values"]), values=dict(section.get("values") or {}),
                 copy=dict(section.get("copy") or {}))


# -- definition checks -------------------------------------------------------------------------------

def section_problems(section, definition: dict) -> list:
    """What is wrong with a ``callback:`` section, as messages for a person (empty when it is fine).

    The callback type itself is checked when it exists already (a pack may define it after the types that
    use it): its deadline field must be a date-time, its result field a choice offering ``rejected_values``.
    """
    from kefu.records.types import TYPE_KEY_PATTERN, RecordType

    if not isinstance(section, dict):
        return [_l("callback 应为包含 type、on_status、within、result_field 的对象")]
    problems = []
    unknown = sorted(set(section) - set(SECTION_KEYS))
    if unknown:
        problems.append(_l("callback 有不认识的项：%(keys)s", keys="、".join(map(str, unknown))))
    target_key = section.get("type")
    if not isinstance(target_key, str) or not TYPE_KEY_PATTERN.match(target_key):
        problems.append(_l("callback.type 应为要创建的回访记录类型的键，如 callback"))
        target_key = None
    elif target_key == definition.get("key"):
        problems.append(_l("callback.type 不能是本类型自己"))
        target_key = None
    try:
        statuses = workflow_of(SimpleNamespace(workflow=definition.get("workflow"))).statuses
    except (KeyError, TypeError, AttributeError):
        statuses = None  # the workflow section is broken: its own check reports it
    on_status = section.get("on_status")
    if not isinstance(on_status, str) or not on_status.strip():
        problems.append(_l("callback.on_status 应为一个流程状态，如 已关闭"))
    elif statuses is not None and on_status not in statuses:
        problems.append(_l("callback.on_status“%(status)s”不在流程状态中；可选：%(statuses)s", status=on_status,
                           statuses="、".join(statuses)))
    within = section.get("within")
    if not isinstance(within, dict) or len(within) != 1 or next(iter(within)) not in UNITS:
        problems.append(_l("callback.within 应恰好写一个单位：working_days / days / hours，如 {working_days: 7}"))
    else:
        amount = next(iter(within.values()))
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            problems.append(_l("callback.within 的数量应为不小于 0 的整数"))
    due_field = section.get("due_field", DEFAULT_DUE_FIELD)
    if not isinstance(due_field, str) or not due_field:
        problems.append(_l("callback.due_field 应为回访类型的一个日期时间字段"))
    result_field = section.get("result_field")
    if not isinstance(result_field, str) or not result_field:
        problems.append(_l("callback.result_field 应为回访类型中记录回访结果的字段，如 result"))
    rejected = section.get("rejected_values")
    if not isinstance(rejected, list) or not rejected or not all(isinstance(v, str) and v for v in rejected):
        problems.append(_l("callback.rejected_values 应为表示客户不满意的结果列表，如 [不满意]"))
        rejected = []
    values = section.get("values", {})
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        problems.append(_l("callback.values 应为“回访字段: 值”"))
        values = {}
    copy = section.get("copy", {})
    fields = {f.get("key"): f for f in definition.get("fields") or [] if isinstance(f, dict)}
    if not isinstance(copy, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in copy.items()):
        problems.append(_l("callback.copy 应为“本类型字段: 回访字段”"))
        copy = {}
    else:
        missing = [k for k in copy if k not in fields and k not in CORE_KEYS]
        if missing:
            problems.append(_l("callback.copy 中本类型没有的字段：%(fields)s", fields="、".join(missing)))
    target = RecordType.objects(key=target_key).first() if target_key else None
    if target is not None:
        problems.extend(_target_problems(target, due_field, result_field, rejected, [*values, *copy.values()]))
    return problems


def _target_problems(target, due_field, result_field, rejected, given) -> list:
    problems = []
    due = target.field(due_field) if isinstance(due_field, str) else None
    if due is None or due.type != "datetime":
        problems.append(_l("callback.due_field：回访类型“%(type)s”没有日期时间字段“%(field)s”", type=target.name,
                           field=due_field))
    result = target.field(result_field) if isinstance(result_field, str) else None
    if result is None or result.type != "choice":
        problems.append(_l("callback.result_field：回访类型“%(type)s”没有选项字段“%(field)s”", type=target.name,
                           field=result_field))
    else:
        unknown = [v for v in rejected if v not in (result.choices or [])]
        if unknown:
            problems.append(_l("callback.rejected_values 中的“%(values)s”不是“%(field)s”的可选项（%(choices)s）",
                               values="、".join(unknown), field=result.label, choices="、".join(result.choices or [])))
    missing = [k for k in given if target.field(k) is None and k not in WRITABLE_CORE]
    if missing:
        problems.append(_l("callback：回访类型“%(type)s”没有字段 %(fields)s", type=target.name,
                           fields="、".join(missing)))
    return problems


# -- creating the callback ----------------------------------------------------------------------------

def after_save(record_type, document: dict, before: dict | None, changed, actor) -> None:
    """Create the callback when the record enters ``on_status``; act on a callback's recorded result."""
    if document.get("source"):
        record_result(record_type, document, changed, actor)
    rules = rules_of(record_type)
    if rules is None or "status" not in changed or document.get("status") != rules.on_status:
        return
    if before is not None and before.get("status") == rules.on_status:
        return
    create_callback(record_type, document, actor)


def create_callback(record_type, document: dict, actor) -> dict | None:
    """The callback of this closing of ``document``: created once, then found again. None when it could not
    be created (the reason is written to the original's timeline)."""
    from kefu.records.actor import system_actor
    from kefu.records.timeline import record_event
    from kefu.records.values import core_values, read_values
    from kefu.records.write import create_record
    from kefu.records.types import get_record_type

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
        source_values = {**core_values(document), **read_values(record_type, document, system)}
        values = {key: value for key, value in rules.values.items() if _writable(target, key)}
        for source_key, target_key in rules.copy.items():
            value = source_values.get(source_key)
            if value not in (None, "", []) and _writable(target, target_key):
                values[target_key] = value
        registered_by = document.get("created_by") or document.get("assignee")
        if registered_by is not None:
            values["assignee"] = registered_by
        if _writable(target, rules.due_field):
            values[rules.due_field] = due
        source = {"type": record_type.key, "id": document["_id"], "number": document["number"],
                  "closed_at": closed_at, "due_at": due}
        try:
            created = create_record(rules.type, values, system, extra={"source": source})
        except DuplicateKeyError:  # another run created it a moment ago
            created = collection.find_one({"source.id": document["_id"], "source.closed_at": closed_at})
    except DomainError as exc:
        log.warning("callback for %s %s not created: %s", record_type.key, document["number"], exc)
        record_event(record_type.key, document["_id"], "callback", system,
               text=str(_l("未能自动生成回访：%(reason)s", reason=str(exc.message))))
        return None
    if _link(document, created):
        record_event(record_type.key, document["_id"], "callback", system,
               text=str(_l("已生成回访 %(number)s，回访期限 %(due)s（%(within)s）", number=created["number"],
                           due=due.astimezone(actor.tz).strftime("%Y-%m-%d %H:%M"), within=rules.within_text())))
    return created


def _writable(target, key: str) -> bool:
    definition = target.field(key)
    return key in WRITABLE_CORE or (definition is not None and definition.active)


def _link(document: dict, callback: dict) -> bool:
    """Note the callback on the original (once); True when it was added now."""
    source = callback["source"]
    entry = {"type": callback["type"], "id": callback["_id"], "number": callback["number"],
             "closed_at": source["closed_at"], "due_at": source.get("due_at"), "result": None}
    written = get_database()[RECORDS].update_one({"_id": document["_id"], "callbacks.id": {"$ne": callback["_id"]}},
                                                 {"$push": {"callbacks": entry}})
    return bool(written.modified_count)


# -- the answer -----------------------------------------------------------------------------------------

def record_result(record_type, document: dict, changed, actor) -> None:
    """Act on the callback's result once it is recorded: a rejected answer sends the original back
    (``kefu.rules.levels.customer_rejected``); the callback is then closed. Once per callback (``outcome``)."""
    from kefu.records.timeline import record_event
    from kefu.records.write import system_update
    from kefu.records.types import get_record_type

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
    result = get_field_type(definition.type).from_storage(stored)
    rejected = result in rules.rejected_values
    collection = get_database()[RECORDS]
    claimed = collection.update_one(
        {"_id": document["_id"], "outcome": {"$exists": False}},
        {"$set": {"outcome": {"result": result, "rejected": rejected, "at": utcnow(), "by": actor.user_id}}})
    if not claimed.matched_count:
        return  # acted on already
    if rejected:
        try:
            from kefu.rules.levels import customer_rejected

            customer_rejected(source["type"], str(source["id"]), actor,
                              str(_l("回访 %(number)s：客户%(result)s", number=document["number"], result=result)))
        except Exception:
            collection.update_one({"_id": document["_id"]}, {"$unset": {"outcome": ""}})  # acted on at the next save
            raise
        text = _l("客户%(result)s：%(source)s 已退回重新处理", result=result, source=source["number"])
    else:
        text = _l("回访结果“%(result)s”：%(source)s 归档", result=result, source=source["number"])
    collection.update_one({"_id": source["id"], "callbacks.id": document["_id"]},
                          {"$set": {"callbacks.$.result": result}})
    record_event(source["type"], source["id"], "callback", actor,
           text=str(_l("回访 %(number)s 结果：%(result)s", number=document["number"], result=result)))
    workflow = workflow_of(record_type)
    current = collection.find_one({"_id": document["_id"]}, {"status": 1})
    if workflow.closed and not workflow.is_closed(current.get("status")):
        system_update(record_type.key, document["_id"], {"status": workflow.closed[0]}, actor,
                      event_kind="callback", event_text=str(text))
    else:
        record_event(record_type.key, document["_id"], "callback", actor, text=str(text))


# -- reading ------------------------------------------------------------------------------------------

def links_of(document: dict, tz) -> list[dict]:
    """The records linked to ``document``: its original (for a callback) and its callbacks, with their
    current status, for the details pages (one query for the statuses, one for the type names)."""
    from kefu.records.types import RecordType

    links = []
    source = document.get("source")
    if source:
        links.append({"role": "source", "type": source["type"], "id": source["id"], "number": source["number"],
                      "due_at": source.get("due_at")})
    for entry in document.get("callbacks") or []:
        links.append({"role": "callback", "type": entry["type"], "id": entry["id"], "number": entry["number"],
                      "due_at": entry.get("due_at"), "result": entry.get("result")})
    if not links:
        return []
    stored = {d["_id"]: d for d in get_database()[RECORDS].find({"_id": {"$in": [link["id"] for link in links]}},
                                                                 {"status": 1})}
    names = {t.key: t.name for t in RecordType.objects(key__in=list({link["type"] for link in links})).only(
        "key", "name")}
    for link in links:
        link["id"] = str(link["id"])
        link["type_name"] = names.get(link["type"], link["type"])
        link["status"] = (stored.get(ObjectId(link["id"])) or {}).get("status")
        link["due_text"] = link["due_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M") if link.get("due_at") else ""
    return links
