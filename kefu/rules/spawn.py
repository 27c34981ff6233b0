"""Follow-up records created when a record reaches a stage (the ``spawn:`` section): 002 在施工程电话回访制度's
four site callbacks (开工 / 隐蔽工程 / 中期 / 完工), 002 日常流程's care after a visit (send-off, 3 days, 5 days,
1 week, half a month), 002 工程预验收流程's rectification notices (attempt 1–3 of one job).

```yaml
spawn:
  - key: start_callback            # unique in the list (lowercase letters, digits, _)
    name: 开工回访                  # what it is, for the timeline and the details page's links
    on_status: 施工中               # trigger: the record enters this status …
    when: {stage: 开工}             # … and/or these fields hold these values ("field: '*'": filled in);
                                   # without on_status: the moment they come to hold (a field taking a value)
    type: construction_checkpoint  # the record type created (not this type itself)
    values: {checkpoint: 开工}      # optional: fixed values of the new record
    copy: {customer_name: customer_name, phone: phone}   # optional: this record's field → the new record's field
    due: {working_days: 1}         # optional: its due date, N working_days / days / hours after the trigger
    due_field: planned_date        # the new type's date or datetime field holding it (required with due)
    attempt_field: attempt         # optional: the new type's field holding N — the N-th record this entry made
                                   # for this record: an integer field gets N, a choice field its N-th choice
                                   # (第一次验收, 第二次验收, 第三次验收; the last one beyond)
    assign_to: assignee            # optional: assignee (default) or created_by — this record's person who gets it
    for_each: targets              # optional: a field of this type holding several values (a multi-choice):
    each_into: target              # one record per value it holds at the trigger, the value written into this
                                   # field of the new record (required with for_each) — 004 沟通事项: one
                                   # 通知确认 per target of an important notice
```

At least one of ``on_status`` / ``when``. The trigger moment is when the record entered ``on_status``
(``status_at``), else the save in which ``when`` came to hold. N working days end at 23:59:59 local of the N-th
working day after the trigger's date; days and hours are clock time; a date field gets the due moment's local date.

The new record stores ``spawned_from`` = {type, id, number, rule, name, at, due_at, within, due_field, attempt[, each]}
and the origin's ``created_department`` (who may read the origin by department reads it too); the
record that triggered it keeps ``spawned`` = [{rule, name, type, id, number, at, due_at, attempt[, each]}]. One trigger
occurrence creates one record, however often the rule runs (a unique index on ``spawned_from.id`` + ``rule`` +
``at``); entering the status again later is a new occurrence and creates the next one (attempt N + 1). With
``for_each`` an occurrence creates one record per value (``spawned_from.each``, in the unique index too): a value
already served by this occurrence is found again, never doubled (a retried transaction, a rule run twice); the
attempt number counts per value; a field holding nothing at the trigger creates nothing. A value added to the field
later, while the record is still at the stage, gets its record from the latest occurrence (a target added to a
published notice); a value removed keeps the record it had.

A due date counted in working days follows calendar edits while the spawned record is open and its due field
still holds the computed value (``follow_calendar``, a calendar listener; a due date someone changed by hand
stays): the new date is saved on the record (its clocks follow) and noted on its timeline.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from flask import current_app
from pydantic import AfterValidator, Field, RootModel, StrictStr, field_validator, model_validator
from pymongo import ASCENDING, IndexModel

from kefu.calendar.workcalendar import get_calendar
from kefu.core.clock import aware
from kefu.core.db import get_database, in_transaction
from kefu.core.errors import DomainError, NotFound
from kefu.core.i18n import _l
from kefu.records.actor import system_actor
from kefu.records.definitions import TYPE_KEY_PATTERN
from kefu.records.fields import get_field_type
from kefu.records.sections import WORKFLOW, Section, SectionModel, at, parsed, refuse, workflow_of
from kefu.records.store import RECORDS, get_record
from kefu.records.timeline import record_event
from kefu.records.types import RecordType, get_record_type
from kefu.records.values import core_values, read_plain_values
from kefu.records.write import create_record
from kefu.rules.callbacks import CORE_KEYS, WRITABLE_CORE, carried_values, rules_of
from kefu.rules.clock_start import CORE_CONDITION_KEYS, matches
from kefu.rules.shapes import DATES, NUMBERS, SINGLE_CHOICE, CallbackWindow, FieldKind, Name, named_kind, picker
from kefu.rules.sla import refresh

log = logging.getLogger(__name__)

SPAWNED_FROM = "spawned_from"   # on the new record: where it came from
SPAWNED = "spawned"             # on the record that triggered it: what it made
EVENT_KIND = "spawn"

# The fields ``for_each`` may name: those holding several values at once.
MULTIPLE = named_kind("multiple", FieldKind(lambda t: t.multiple, ("multi_choice",)))

# The records collection's indexes (created by kefu.runtime.storage): one record per trigger occurrence of an entry
# (and value of its ``for_each`` field), and the count of an entry's records for one record (the attempt number).
RECORD_INDEXES = [
    IndexModel([(f"{SPAWNED_FROM}.id", ASCENDING), (f"{SPAWNED_FROM}.rule", ASCENDING),
                (f"{SPAWNED_FROM}.at", ASCENDING), (f"{SPAWNED_FROM}.each", ASCENDING)], unique=True,
               name="spawned_from",
               partialFilterExpression={f"{SPAWNED_FROM}.id": {"$exists": True}}),
]


def _entry_key(value: str) -> str:
    if not (value.isidentifier() and value.isascii()):
        raise refuse(_l("须为小写字母、数字或下划线"))
    return value


class SpawnRule(SectionModel):
    """One entry of the ``spawn:`` list."""

    key: Annotated[StrictStr, AfterValidator(_entry_key)] = Field(title=_l("键"), json_schema_extra=picker("key"))
    name: Name = Field(title=_l("名称"), description=_l("生成的是什么，如“开工回访”"))
    on_status: Name | None = Field(None, title=_l("进入状态时生成"), description=_l("记录进入该状态时生成"),
                                   json_schema_extra=picker("status"))
    when: dict[StrictStr, Any] = Field({}, title=_l("字段条件"),
                                       description=_l("字段取这些值时生成（与状态同时写：进入状态且满足条件）"),
                                       json_schema_extra=picker("conditions"))
    type: StrictStr = Field(title=_l("生成的记录类型"), json_schema_extra=picker("record_type"))
    values: dict[StrictStr, Any] = Field({}, title=_l("新记录的固定值"), description=_l("新记录字段 → 值"),
                                         json_schema_extra=picker("pairs"))
    copy_: dict[StrictStr, StrictStr] = Field({}, alias="copy", title=_l("复制到新记录的字段"),
                                              description=_l("本类型字段 → 新记录字段"),
                                              json_schema_extra=picker("pairs"))
    due: CallbackWindow | None = Field(None, title=_l("期限"), description=_l("从生成时起多久到期"),
                                       json_schema_extra=picker("window", units=list(CallbackWindow.units)))
    due_field: StrictStr | None = Field(None, title=_l("期限字段"),
                                        description=_l("新记录类型中保存期限的日期或日期时间字段"))
    attempt_field: StrictStr | None = Field(None, title=_l("次数字段"),
                                            description=_l("新记录类型中保存“第几次”的整数或选项字段"))
    assign_to: Literal["assignee", "created_by"] = Field(
        "assignee", title=_l("处理人"), description=_l("assignee：本记录的处理人；created_by：本记录的登记人"))
    for_each: StrictStr | None = Field(None, title=_l("逐项生成"),
                                       description=_l("本类型的多选字段：为它的每一个值各生成一条记录"),
                                       json_schema_extra=picker("field", "multiple"))
    each_into: StrictStr | None = Field(None, title=_l("逐项值写入"),
                                        description=_l("新记录类型中保存该值的字段（与“逐项生成”同时写）"))

    @field_validator("type")
    @classmethod
    def _type_key(cls, value: str) -> str:
        if not TYPE_KEY_PATTERN.match(value):
            raise refuse(_l("应为要生成的记录类型的键"))
        return value

    @model_validator(mode="after")
    def _complete(self):
        if self.on_status is None and not self.when:
            raise refuse(_l("应写 on_status 或 when（或两者）"))
        if self.due is not None and self.due_field is None:
            raise refuse(_l("写了 due 就要写 due_field"))
        if (self.for_each is None) != (self.each_into is None):
            raise refuse(_l("for_each 与 each_into 要同时写"))
        return self


class SpawnRules(RootModel[tuple[SpawnRule, ...]]):
    """The ``spawn:`` section: a list of entries, keys unique."""

    @model_validator(mode="after")
    def _unique_keys(self):
        keys = [rule.key for rule in self.root]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise refuse(_l("的 key“%(key)s”重复", key="、".join(repeated)))
        return self


def spawn_rules_of(record_type) -> tuple[SpawnRule, ...]:
    return parsed(record_type, SpawnSection.key)


class SpawnSection(Section):
    """``spawn:``: create the follow-up records of a stage when a saved record reaches it."""

    key = "spawn"
    title = _l("到达节点时生成记录")
    model = SpawnRules
    item_words = {"spawn": "条"}
    empty = []

    def default(self) -> tuple:
        return ()

    def parse(self, raw) -> tuple[SpawnRule, ...]:
        return super().parse(raw).root

    def problems(self, draft, model) -> list:
        workflow = draft.section(WORKFLOW)
        problems = []
        for rule in model:
            where = f"spawn.{rule.key}"
            if rule.type == draft.key:
                problems.append(at(f"{where}.type", _l("%(where)s.type 不能是本类型自己", where=where)))
            if workflow is not None and rule.on_status is not None and rule.on_status not in workflow.statuses:
                problems.append(at(f"{where}.on_status", _l("%(where)s.on_status“%(status)s”不在流程状态中", where=where,
                                                            status=rule.on_status)))
            for name in rule.when:
                if name not in CORE_CONDITION_KEYS and draft.field(name) is None:
                    problems.append(at(f"{where}.when", _l("%(where)s.when 的字段“%(field)s”不存在", where=where,
                                                           field=name)))
            if rule.for_each is not None and (draft.field(rule.for_each) or {}).get("type") not in MULTIPLE:
                problems.append(at(f"{where}.for_each", _l("%(where)s.for_each：本类型没有多选字段“%(field)s”",
                                                           where=where, field=rule.for_each)))
            missing = [k for k in rule.copy_ if draft.field(k) is None and k not in CORE_KEYS]
            if missing:
                problems.append(at(f"{where}.copy", _l("%(where)s.copy 中本类型没有的字段：%(fields)s", where=where,
                                                       fields="、".join(missing))))
            target = RecordType.objects(key=rule.type).first() if rule.type != draft.key else None
            if target is not None:
                problems.extend(_target_problems(where, target, rule, draft))
        return problems

    def choice_references(self, owner, model, type_key, field_key):
        """The values the entries' ``when`` (of this type) and ``values`` (of the type they create) name."""
        found = []
        for rule in model:
            named = []
            if owner.key == type_key:
                named.append(rule.when.get(field_key))
            if rule.type == type_key:
                named.append(rule.values.get(field_key))
            for value in named:
                found.extend((_l("“%(type)s”的生成规则“%(name)s”", type=owner.name, name=rule.name), v)
                             for v in (value if isinstance(value, list) else [value]) if v not in (None, "*"))
        return found

    def after_save(self, record_type, model, document, before, changed, actor):
        if not model:
            return None
        values = {**core_values(document), **read_plain_values(record_type, document)}
        made = []
        for rule in model:
            if _triggered(rule, record_type, values, before, changed):
                made.extend(spawn(record_type, rule, document))
            elif rule.for_each in changed and _holds(rule, record_type, values):
                # A value added after the trigger (a target added to the notice) is served by the same occurrence;
                # a trigger reached while the field was empty made nothing: its first values start the occurrence.
                last = max((e["at"] for e in document.get(SPAWNED) or () if e.get("rule") == rule.key), default=None)
                made.extend(spawn(record_type, rule, document, None if last is None else aware(last)))
        return get_record(record_type.key, document["_id"]) if made else None


def _target_problems(where: str, target, rule: SpawnRule, draft) -> list:
    problems = _each_into_problems(where, target, rule, draft) if rule.each_into is not None else []
    if rule.due_field is not None and getattr(target.field(rule.due_field), "type", None) not in DATES:
        problems.append(at(f"{where}.due_field", _l("%(where)s.due_field：“%(type)s”没有日期或日期时间字段“%(field)s”",
                                                    where=where, type=target.name, field=rule.due_field)))
    if rule.attempt_field is not None:
        kind = getattr(target.field(rule.attempt_field), "type", None)
        if kind not in NUMBERS and kind not in SINGLE_CHOICE:
            problems.append(at(f"{where}.attempt_field", _l(
                "%(where)s.attempt_field：“%(type)s”没有整数或选项字段“%(field)s”", where=where, type=target.name,
                field=rule.attempt_field)))
    missing = [k for k in [*rule.values, *rule.copy_.values()] if target.field(k) is None and k not in WRITABLE_CORE]
    if missing:
        problems.append(at(f"{where}.values", _l("%(where)s：“%(type)s”没有字段 %(fields)s", where=where,
                                                 type=target.name, fields="、".join(missing))))
    return problems


def _each_into_problems(where: str, target, rule: SpawnRule, draft) -> list:
    """``each_into`` must be a single-valued field of the new type able to hold every value of ``for_each``: a
    choice field offering each of its choices (a value it lacks would fail every time it is picked)."""
    definition, source = target.field(rule.each_into), draft.field(rule.for_each) or {}
    if definition is None or definition.type in MULTIPLE:
        return [at(f"{where}.each_into", _l("%(where)s.each_into：“%(type)s”没有单值字段“%(field)s”", where=where,
                                            type=target.name, field=rule.each_into))]
    if definition.type in SINGLE_CHOICE:
        lacking = [c for c in source.get("choices") or [] if c not in definition.choices]
        if lacking:
            return [at(f"{where}.each_into", _l(
                "%(where)s.each_into：“%(type)s”的“%(field)s”缺少可选项 %(values)s", where=where, type=target.name,
                field=definition.label, values="、".join(lacking)))]
    return []


# -- creating the records -------------------------------------------------------------------------------

def _holds(rule: SpawnRule, record_type, values: dict) -> bool:
    """Whether the record is at the entry's stage now: in ``on_status`` (if any) with ``when`` holding."""
    return (rule.on_status is None or values.get("status") == rule.on_status) and (
        not rule.when or matches(rule.when, values, record_type))


def _triggered(rule: SpawnRule, record_type, values: dict, before: dict | None, changed: set) -> bool:
    """Whether this save is a trigger occurrence of ``rule``: the record entered ``on_status`` (with ``when``
    holding), or — without ``on_status`` — ``when`` came to hold."""
    holds = not rule.when or matches(rule.when, values, record_type)
    if rule.on_status is not None:
        entered = "status" in changed and values.get("status") == rule.on_status and (
            before is None or before.get("status") != rule.on_status)
        return entered and holds
    if not holds or not changed & set(rule.when):
        return False
    # ``before`` holds only the values that were there: a changed field missing from it was empty.
    return before is None or not matches(rule.when, {**values, **{k: before.get(k) for k in changed}}, record_type)


def _moment(rule: SpawnRule, document: dict) -> datetime:
    """When the trigger happened, as MongoDB keeps it (milliseconds): the entry into ``on_status``, else the save."""
    moment = (document.get("status_at") or {}).get(rule.on_status) if rule.on_status else None
    moment = aware(moment or document.get("updated_at") or document["created_at"])
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def spawn(record_type, rule: SpawnRule, document: dict, moment: datetime | None = None) -> list[dict]:
    """The records ``rule`` makes for this trigger occurrence of ``document`` (the one at ``moment``; by default
    the latest): one, or with ``for_each`` one per value that field holds; each created once, then found again.
    One that could not be created is left out (the reason is written to ``document``'s timeline)."""
    moment = moment or _moment(rule, document)
    if rule.for_each is None:
        each = [None]
    else:
        each = read_plain_values(record_type, document).get(rule.for_each) or []
    made = [_spawn_one(record_type, rule, document, moment, value) for value in each]
    return [record for record in made if record is not None]


def _spawn_one(record_type, rule: SpawnRule, document: dict, moment: datetime, each) -> dict | None:
    """The record of one occurrence (and ``for_each`` value ``each``; None without it)."""
    collection = get_database()[RECORDS]
    occurrence = {f"{SPAWNED_FROM}.id": document["_id"], f"{SPAWNED_FROM}.rule": rule.key}
    if each is not None:
        occurrence[f"{SPAWNED_FROM}.each"] = each
    existing = collection.find_one({**occurrence, f"{SPAWNED_FROM}.at": moment})
    if existing is not None:
        _link(document, existing)
        return existing
    system = system_actor()
    attempt = collection.count_documents(occurrence) + 1
    due = rule.due.due(moment, get_calendar(), system.tz) if rule.due is not None else None
    name = rule.name if each is None else str(_l("%(name)s（%(value)s）", name=rule.name, value=each))
    try:
        target = get_record_type(rule.type)
        values = carried_values(record_type, document, target, rule.values, rule.copy_)
        person = document.get(rule.assign_to) or document.get("assignee") or document.get("created_by")
        if person is not None:
            values["assignee"] = person
        if due is not None:
            values[rule.due_field] = due
        if rule.attempt_field is not None:
            values[rule.attempt_field] = _attempt_value(target, rule.attempt_field, attempt)
        if each is not None:
            values[rule.each_into] = each
        link = {"type": record_type.key, "id": document["_id"], "number": document["number"], "rule": rule.key,
                "name": rule.name, "at": moment, "due_at": due, "attempt": attempt,
                "within": rule.due.to_dict() if rule.due is not None else None, "due_field": rule.due_field,
                **({"each": each} if each is not None else {})}
        # In the triggering save's transaction: a concurrent save of the same record is a write conflict, and the
        # retried save finds the record made above.
        # Seen where the origin is: made by the system, it takes the origin's registering department (the
        # department's supervisors who see a notice their agent published see what it made).
        created = create_record(rule.type, values, system, extra={
            SPAWNED_FROM: link, "created_department": document.get("created_department")})
    except DomainError as exc:
        log.warning("spawn %s for %s %s not created: %s", rule.key, record_type.key, document["number"], exc)
        record_event(record_type.key, document["_id"], EVENT_KIND, system, text=str(_l(
            "未能自动生成%(name)s：%(reason)s", name=name, reason=str(exc.message))))
        return None
    if _link(document, created):
        text = _l("已生成%(name)s %(number)s（第 %(attempt)s 次）", name=name, number=created["number"],
                  attempt=attempt)
        if due is not None:
            text = _l("%(text)s，期限 %(due)s（%(within)s）", text=text, within=rule.due.text(),
                      due=due.astimezone(system.tz).strftime("%Y-%m-%d %H:%M"))
        record_event(record_type.key, document["_id"], EVENT_KIND, system, text=str(text))
    return created


def _attempt_value(target, field_key: str, attempt: int):
    """N for an integer field; a choice field's N-th choice (its last beyond them)."""
    definition = target.field(field_key)
    choices = list(getattr(definition, "choices", None) or [])
    if definition is not None and definition.type in SINGLE_CHOICE and choices:
        return choices[min(attempt, len(choices)) - 1]
    return attempt


def _link(document: dict, created: dict) -> bool:
    """Note the new record on the one that triggered it (once); True when it was added now."""
    source = created[SPAWNED_FROM]
    entry = {key: source[key] for key in ("rule", "name", "at", "due_at", "attempt", "each") if key in source}
    entry.update(type=created["type"], id=created["_id"], number=created["number"])
    written = get_database()[RECORDS].update_one({"_id": document["_id"], f"{SPAWNED}.id": {"$ne": created["_id"]}},
                                                 {"$push": {SPAWNED: entry}})
    return bool(written.modified_count)


# -- following calendar edits -------------------------------------------------------------------------

# The records whose due date is counted from a trigger: (their link key, the trigger moment's key in it, the list
# on the original, the timeline event kind) — callbacks (kefu.rules.callbacks) and the records made here.
DUE_LINKS = (("source", "closed_at", "callbacks", "callback"), (SPAWNED_FROM, "at", SPAWNED, EVENT_KIND))


def follow_calendar(first: date, last: date) -> int:
    """The calendar listener (``kefu.calendar.workcalendar.on_change``): recount the due date of every open
    callback and spawned record whose working-day window the days ``first``…``last`` fall in (its trigger's day
    up to its due day), on the calendar as it is now; return how many moved.

    A due date someone changed by hand (the due field no longer holds the computed one) stays. A moved date is
    written to the record's due field, its link and the original's list, its clocks are recomputed and its
    timeline says why."""
    tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
    before_end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    from_start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    calendar, moved = get_calendar(), 0
    collection = get_database()[RECORDS]
    for link_key, moment_key, list_key, kind in DUE_LINKS:
        query = {f"{link_key}.{moment_key}": {"$lt": before_end}, f"{link_key}.due_at": {"$gte": from_start}}
        for document in collection.find(query, {"type": 1, "status": 1, "number": 1, "data": 1, link_key: 1}):
            try:  # a record's moved date, its original's list, its clocks and its timeline commit together
                moved += in_transaction(lambda document=document, link_key=link_key, moment_key=moment_key,
                                        list_key=list_key, kind=kind:
                                        _follow(document, link_key, moment_key, list_key, kind, calendar, tz))
            except Exception:  # one record that cannot move must not keep the others from following the calendar
                log.exception("the due date of record %s did not follow the calendar edit", document["_id"])
    return moved


def _follow(document, link_key, moment_key, list_key, kind, calendar, tz) -> bool:
    link = document[link_key]
    try:
        record_type = get_record_type(document["type"], active_only=False)
        within, due_field = _window_of(link)
    except NotFound:
        return False
    definition = record_type.field(due_field) if due_field else None
    if within is None or within.unit != "working_days" or definition is None \
            or workflow_of(record_type).is_closed(document.get("status")):
        return False
    old, new = aware(link["due_at"]), within.due(link[moment_key], calendar, tz)
    field_type = get_field_type(definition.type)
    stored_old, stored_new = (_stored(field_type, moment, tz) for moment in (old, new))
    if new == old or (document.get("data") or {}).get(due_field) != stored_old:
        return False
    collection = get_database()[RECORDS]
    written = collection.update_one(
        {"_id": document["_id"], f"{link_key}.due_at": link["due_at"], f"data.{due_field}": stored_old},
        {"$set": {f"{link_key}.due_at": new, f"data.{due_field}": stored_new}})
    if not written.modified_count:
        return False
    collection.update_one({"_id": link["id"], f"{list_key}.id": document["_id"]},
                          {"$set": {f"{list_key}.$.due_at": new}})
    refresh(record_type, document["_id"])
    record_event(record_type.key, document["_id"], kind, system_actor(), text=str(_l(
        "工作日历已调整：期限由 %(old)s 改为 %(new)s", old=old.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        new=new.astimezone(tz).strftime("%Y-%m-%d %H:%M"))))
    return True


def _window_of(link: dict) -> tuple[CallbackWindow | None, str | None]:
    """The window and due field a link was counted with; a callback stored before links kept them: its original's
    current rule."""
    if "within" in link:
        return (CallbackWindow.from_dict(link["within"]) if link["within"] else None), link.get("due_field")
    rules = rules_of(get_record_type(link["type"], active_only=False))
    return (rules.within, rules.due_field) if rules is not None else (None, None)


def _stored(field_type, moment: datetime, tz: ZoneInfo):
    """``moment`` as a field of ``field_type`` stores it: itself in a date-time field, its local date in a date one."""
    return moment if field_type.has_time_of_day else field_type.to_storage(moment.astimezone(tz).date())
