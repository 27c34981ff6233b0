"""SLA clocks: the handbooks' deadlines, configured per record type (the ``sla:`` section).

```yaml
sla:
  - key: resolve
    name: 处理完成
    start: received_at               # a datetime field, "created", "status:已关闭" (when it last entered it),
                                     # "field:level=重要" (when the field last took that value) or
                                     # "field:plan" (when the field was first filled in)
    within: {working_days: 7}        # exactly one of minutes / hours / days / working_days / working_hours
    notify_at_start: [项目经理, manager]  # optional: approval titles and/or role keys told once when it starts
    by_level: {重大: {hours: 0}, 重要: {hours: 1}, 一般: {days: 2}}   # optional, per value of level_field
    level_field: level               # optional, default "level"
    when: {category: 工程质量}        # optional: only for records whose fields match
    done_when: {status: [已解决, 已关闭]}  # "field: '*'" means: once the field is filled in
    until: agreed_deadline           # optional date/datetime field: when filled, it is the deadline
    due_soon: {hours: 2}             # optional; default: the last 20% of the window, at least 2 hours
```

Minutes, hours and days are clock time (nights and holidays included); N
working days end at 23:59:59 local time of the N-th working day after the
start date (``kefu.calendar.workcalendar``); N working hours count only the
company's working hours (default 09:00–18:00, lunch 12:00–13:00, set with the
calendar) on working days. A clock whose start event has not happened yet
(status never reached, field never took the value) does not run. While the record is in one of its
workflow's ``pausing`` statuses no clock runs; the paused time is added to
every deadline it interrupted. Closing the record (a ``closed`` status of its
workflow) ends every clock still running, met at the close (late or not);
reopening it starts them afresh.

Each record stores, per clock, ``sla.<key>`` = {name, started_at, due_at,
warn_at, state, paused_s, met_at, window, level, until}; and for the list
filters: ``sla_open`` (the running clocks' ``{clock, warn_at, due_at}``),
``sla_due`` (the earliest running deadline: overdue means ``sla_due <= now``,
and sorting by it sorts by how late), ``sla_live`` (clocks not yet met or
missed) and ``paused_since``; for the reminder sweep (``kefu.notify.reminders``)
``sla.<key>.alerts`` (the alerts sent for the current deadline, kept while
the deadline stays) and ``sla_next`` (when the next alert is due). ``refresh``
recomputes all of it from the record, its type and the calendar, bumping
``sla_rev``; it is idempotent.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from flask import current_app
from pydantic import AfterValidator, BeforeValidator, Field, RootModel, StrictStr, ValidationError, model_validator
from pymongo import ASCENDING, IndexModel

from kefu.calendar.workcalendar import get_calendar
from kefu.core.clock import aware, utcnow
from kefu.core.db import get_database
from kefu.core.errors import NotFound
from kefu.core.i18n import _, _l, clauses, enumeration
from kefu.records.engine_state import set_sla_state
from kefu.records.sections import (
    WORKFLOW, Section, SectionInvalid, SectionModel, at, parsed, refuse, usable, workflow_of,
)
from kefu.records.store import RECORDS
from kefu.records.types import get_record_type
from kefu.records.values import core_values, read_plain_values
from kefu.rules.clock_start import (
    ANY_VALUE, CORE_CONDITION_KEYS, MARKS, field_event, marks, matches, start_of, start_problems,
)
from kefu.rules.levels import DEFAULT_LEVEL_FIELD
from kefu.rules.reminders import carried_alerts, reminders_of, same_moment, sla_next
from kefu.rules.shapes import DATES, MOMENTS, ClockTime, Name, Window, picker

SLA_COLUMN = "sla"  # the key of the 时限 column (lists, views, exports): the nearest clock's state
STATE_LABELS = {"on_time": _l("未到期"), "due_soon": _l("即将到期"), "overdue": _l("已逾期"), "met": _l("按时完成"),
                "missed": _l("超时完成")}
DUE_SOON_SHARE = 0.2
DUE_SOON_AT_LEAST = timedelta(hours=2)


# The records collection's indexes over the SLA state this section keeps (created by kefu.runtime.storage):
# per-type lists of overdue and due-soon records sorted by how late, and the clocks still running.
RECORD_INDEXES = [
    IndexModel([("type", ASCENDING), ("sla_due", ASCENDING), ("_id", ASCENDING)], name="type_sla_due"),
    # Due soon ($elemMatch warn_at <= now < due_at): both bounds apply to the same sla_open element, so
    # only the clocks past their warning time are scanned and the overdue ones are skipped in the index.
    IndexModel([("type", ASCENDING), ("sla_open.warn_at", ASCENDING), ("sla_open.due_at", ASCENDING)],
               name="type_sla_warn"),
    IndexModel([("sla_live", ASCENDING)], name="sla_live", partialFilterExpression={"sla_live": {"$gt": 0}}),
]


def _clock_key(value: str) -> str:
    if not (value.isidentifier() and value.isascii()):
        raise refuse(_l("须为小写字母、数字或下划线"))
    return value


class Clock(SectionModel):
    """One deadline of the ``sla:`` list."""

    key: Annotated[StrictStr, AfterValidator(_clock_key)] = Field(title=_l("键"), json_schema_extra=picker("key"))
    name: Name = Field(title=_l("名称"))
    name_en: Annotated[str | None, BeforeValidator(lambda value: None if value is None else str(value))] = Field(
        None, title=_l("英文名称"))
    start: StrictStr = Field("created", title=_l("开始于"),
                             description=_l("created、status:状态、field:字段=值（字段取该值时）、field:字段（首次填写时），"
                                            "或一个日期时间字段"),
                             json_schema_extra=picker("clock_start", "moment"))
    within: Window = Field(title=_l("时限"), json_schema_extra=picker("window"))
    notify_at_start: tuple[Name, ...] = Field((), title=_l("开始时通知"),
                                              description=_l("计时开始时通知的审批职务或角色（如 项目经理、manager），每次开始通知一次"),
                                              json_schema_extra=picker("words"))
    by_level: dict[StrictStr, Window] = Field({}, title=_l("按等级另定时限"), description=_l("按等级字段的值另定时限"),
                                              json_schema_extra=picker("by_level"))
    level_field: StrictStr = Field(DEFAULT_LEVEL_FIELD, title=_l("等级字段"), json_schema_extra=picker("field", "choice"))
    when: dict[StrictStr, Any] = Field({}, title=_l("适用条件"), description=_l("只对字段取这些值的记录计时"),
                                       json_schema_extra=picker("conditions"))
    done_when: dict[StrictStr, Any] = Field({}, title=_l("完成条件"), description=_l("完成条件；“字段: '*'”表示填写即完成"),
                                            json_schema_extra=picker("conditions"))
    until: StrictStr | None = Field(None, title=_l("约定期限字段"),
                                    description=_l("约定期限字段（日期或日期时间）：填写后即为截止时间"),
                                    json_schema_extra=picker("field", "date"))
    due_soon: ClockTime | None = Field(None, title=_l("提前预警"),
                                       description=_l("截止前多久算即将到期；默认时限的最后 20%，至少 2 小时"),
                                       json_schema_extra=picker("window", units=list(ClockTime.units)))

    @model_validator(mode="before")
    @classmethod
    def _start_default(cls, data):
        return {**data, "start": data.get("start") or "created"} if isinstance(data, dict) else data

    def window_for(self, level) -> Window:
        return self.by_level.get(level, self.within)


class Clocks(RootModel[tuple[Clock, ...]]):
    """The ``sla:`` section: a list of clocks, keys unique."""

    @model_validator(mode="after")
    def _unique_keys(self):
        keys = [clock.key for clock in self.root]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise refuse(_l("的时限 key“%(key)s”重复", key="、".join(repeated)))
        return self


def clocks_of(record_type) -> tuple[Clock, ...]:
    return parsed(record_type, SlaSection.key)


class SlaSection(Section):
    """``sla:``: after every save the record's clocks are recomputed (``refresh``)."""

    key = "sla"
    title = _l("时限")
    model = Clocks
    item_words = {"sla": "个"}
    empty = []

    def default(self) -> tuple:
        return ()

    def parse(self, raw) -> tuple[Clock, ...]:
        return super().parse(raw).root

    def partial(self, raw) -> tuple[Clock, ...]:
        """The clocks that parse one by one (their references are checked even when another clock is broken)."""
        clocks = []
        for entry in raw if isinstance(raw, list) else ():
            try:
                clocks.append(Clock.model_validate(entry))
            except ValidationError:
                continue
        return tuple(clocks)

    def problems(self, draft, model) -> list:
        workflow = draft.section(WORKFLOW)
        statuses = set(workflow.statuses) if workflow is not None else None
        problems = []
        for clock in model:
            problems.extend(_clock_problems(draft, clock, statuses))
        return problems

    def after_save(self, record_type, model, document, before, changed, actor):
        return refresh(record_type, document["_id"])

    def choice_references(self, owner, model, type_key, field_key):
        """The values the type's own clocks' ``when`` / ``done_when`` name for the field."""
        if owner.key != type_key:
            return []
        found = []
        for clock in model:
            event = field_event(clock.start)
            if event is not None and event.key == field_key and event.value is not None:
                found.append((_l("时限“%(name)s”的开始于", name=clock.name), event.value))
            for part, words in (("when", _l("适用条件")), ("done_when", _l("完成条件"))):
                expected = getattr(clock, part).get(field_key)
                for value in expected if isinstance(expected, list) else [expected]:
                    if value is not None and value != ANY_VALUE:
                        found.append((_l("时限“%(name)s”的%(part)s", name=clock.name, part=words), value))
        return found


def _clock_problems(draft, clock: Clock, statuses: set | None) -> list:
    """The clock's references to the definition's fields and statuses."""
    where = f"sla.{clock.key}"
    problems = start_problems(draft, where, clock.start, statuses, MOMENTS)
    if clock.by_level and draft.field(clock.level_field) is None:
        problems.append(at(f"{where}.level_field", _l("%(where)s.by_level 需要等级字段“%(field)s”", where=where,
                                                      field=clock.level_field)))
    choices = set((draft.field(clock.level_field) or {}).get("choices") or [])
    for level in clock.by_level:
        if choices and level not in choices:
            problems.append(at(f"{where}.by_level", _l("%(where)s.by_level 的等级“%(level)s”不在可选项中",
                                                       where=where, level=level)))
    for part in ("when", "done_when"):
        for name in getattr(clock, part):
            if name not in CORE_CONDITION_KEYS and draft.field(name) is None:
                problems.append(at(f"{where}.{part}", _l("%(where)s.%(part)s 的字段“%(field)s”不存在", where=where,
                                                         part=part, field=name)))
            elif (draft.field(name) or {}).get("sensitive"):
                problems.append(at(f"{where}.{part}", _l("%(where)s.%(part)s 不能使用敏感字段“%(field)s”",
                                                         where=where, part=part, field=name)))
    if clock.until is not None and (draft.field(clock.until) or {}).get("type") not in DATES:
        problems.append(at(f"{where}.until", _l("%(where)s.until 应为一个日期或日期时间字段", where=where)))
    return problems


# -- computing clocks ---------------------------------------------------------------------------------

def _end_of(value, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return aware(value)
    if isinstance(value, date):
        return datetime.combine(value, time(23, 59, 59), tzinfo=tz).astimezone(timezone.utc)
    raise TypeError(value)


def _soon(clock: Clock, window: timedelta) -> timedelta:
    """How long before the deadline the clock is due soon (never longer than the window)."""
    if clock.due_soon is not None:
        return min(window, timedelta(**{clock.due_soon.unit: clock.due_soon.amount}))
    return min(window, max(window * DUE_SOON_SHARE, DUE_SOON_AT_LEAST))


def nearest_clock(document: dict, now: datetime) -> dict | None:
    """The clock a list's 时限 column shows: the running one due first, else a missed one, else the last to end;
    None for a record without clocks."""
    clocks = document.get("sla") or {}
    running = [entry for entry in document.get("sla_open") or [] if entry.get("clock") in clocks]
    if running:
        return clocks[min(running, key=lambda entry: entry["due_at"])["clock"]]
    ended = list(clocks.values())
    return next((c for c in ended if state_at(c, now) == "missed"), ended[-1]) if ended else None


def state_at(clock_state: dict, now: datetime) -> str:
    """The clock's state at ``now`` (stored states age: on_time becomes due_soon, then overdue)."""
    if clock_state.get("met_at") is not None:
        return "met" if aware(clock_state["met_at"]) <= aware(clock_state["due_at"]) else "missed"
    if now >= aware(clock_state["due_at"]):
        return "overdue"
    if now >= aware(clock_state["warn_at"]):
        return "due_soon"
    return "on_time"


def compute(record_type, document: dict, now: datetime, calendar, tz: ZoneInfo) -> dict:
    """The ``$set`` of SLA fields for ``document`` at ``now`` (pure: no database access)."""
    values = {**core_values(document), **read_plain_values(record_type, document)}
    workflow = workflow_of(record_type)
    paused_now = workflow.is_pausing(values.get("status"))
    paused_since = aware(document.get("paused_since"))
    pause_ended = paused_since is not None and not paused_now
    if paused_now and paused_since is None:
        paused_since = now
    stored = document.get("sla") or {}
    clocks, open_clocks, unannounced = {}, [], []
    field_marks = marks([clock.start for clock in clocks_of(record_type)], document, values, record_type, now)
    for clock in clocks_of(record_type):
        if clock.when and not matches(clock.when, values, record_type):
            continue
        start = start_of(clock.start, document, values, field_marks)
        if start is None:
            continue
        previous = stored.get(clock.key) or {}
        rearmed_at = aware(previous.get("rearmed_at"))
        if rearmed_at and rearmed_at > start:
            start = rearmed_at
        paused_s = float(previous.get("paused_s") or 0)
        met_at = aware(previous.get("met_at"))
        # Closing the record ends every clock still running (met then, late or not): a closed record is never
        # overdue on 逾期督办 for a step nobody marked done.
        done = (bool(clock.done_when) and matches(clock.done_when, values, record_type)) or \
            workflow.is_closed(values.get("status"))
        if met_at is not None and not done:
            # Reopened: a fresh window from now; the old deadline must not fire (osTicket #5955).
            start = rearmed_at = now
            met_at, paused_s = None, 0.0
        if pause_ended and met_at is None:
            paused_s += max(0.0, (now - max(aware(document["paused_since"]), start)).total_seconds())
        if done and met_at is None:
            met_at = now
        level = values.get(clock.level_field)
        window = clock.window_for(level)
        agreed = values.get(clock.until) if clock.until else None
        base_due = _end_of(agreed, tz) if agreed is not None else window.due(start, calendar, tz)
        due_at = base_due + timedelta(seconds=paused_s)
        running = met_at is None and not paused_now
        if met_at is None and paused_now:
            due_at += max(timedelta(0), now - max(paused_since, start))  # provisional: moves while paused
        warn_at = due_at - _soon(clock, max(timedelta(0), base_due - start))
        state = {
            "name": clock.name, "started_at": start, "due_at": due_at, "warn_at": warn_at, "paused_s": paused_s,
            "met_at": met_at, "window": window.to_dict(), "level": level if window is not clock.within else None,
            "until": agreed is not None, "rearmed_at": rearmed_at, "paused": met_at is None and paused_now,
            "alerts": carried_alerts(previous, due_at), "announced": previous.get("announced"),
        }
        state["state"] = state_at(state, now)
        clocks[clock.key] = state
        if clock.notify_at_start and not same_moment(state["announced"], start):
            unannounced.append(start)  # the sweep tells notify_at_start (kefu.notify.reminders)
        if running:
            open_clocks.append({"clock": clock.key, "warn_at": warn_at, "due_at": due_at})
    running_keys = {c["clock"] for c in open_clocks}
    return {
        "sla": clocks, "sla_open": open_clocks,
        "sla_due": min((c["due_at"] for c in open_clocks), default=None),
        "sla_live": sum(1 for c in clocks.values() if c["met_at"] is None),
        "paused_since": paused_since if paused_now else None, MARKS: field_marks,
        "sla_next": min(filter(None, [*unannounced, sla_next({k: c for k, c in clocks.items() if k in running_keys},
                                                             reminders_of(record_type), calendar, tz)]), default=None),
    }


def refresh(record_type, record_id, now: datetime | None = None, *, force: bool = False) -> dict:
    """Recompute the record's clocks and store them (unchanged ones only with ``force``: a record lacking its
    ``sla_rev``); return the stored record."""
    document = get_database()[RECORDS].find_one({"_id": record_id})
    if document is None:
        return None
    now = now or utcnow()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # what MongoDB keeps: unchanged compares equal
    update = compute(record_type, document, now, get_calendar(), ZoneInfo(current_app.config["KEFU_TIMEZONE"]))
    if not force and all(document.get(k) == v for k, v in update.items()):
        return document
    return set_sla_state(record_id, update)


def recompute_live(after_id=None, *, batch: int = 500, progress=None) -> tuple[int, bool]:
    """Recompute every record with a clock still running (after a calendar edit), in ``_id`` order after
    ``after_id`` (None: from the first); return how many, and whether it got to the end.

    ``progress(done, total, last_id)`` is called after every ``batch`` records and at the end: ``done`` counts
    this call's records, ``total`` the running records when it started, ``last_id`` is where a later call
    resumes. When it returns False before the end, the recompute stops there.
    """
    collection = get_database()[RECORDS]
    live = {"sla_live": {"$gt": 0}}
    total = collection.count_documents(live) if progress else 0
    if after_id is not None:
        live["_id"] = {"$gt": after_id}
    types, count, last_id = {}, 0, after_id
    for document in collection.find(live, {"type": 1}, batch_size=batch).sort("_id", 1):
        if document["type"] not in types:
            record_type = get_record_type(document["type"], active_only=False)
            types[document["type"]] = record_type if usable(record_type) else None
        if types[document["type"]] is not None:  # a type whose definition cannot be used: its records wait
            refresh(types[document["type"]], document["_id"])
        count, last_id = count + 1, document["_id"]
        if progress and count % batch == 0 and not progress(count, total, last_id):
            return count, False
    if progress:
        progress(count, total, last_id)
    return count, True


# Records whose clocks were never computed (no ``sla_rev``: stored without them — before saves were transactions, a
# failure between the insert and the clocks left such records, never reminded, never overdue), and running records
# stored before reminders existed (no ``sla_next``).
LACKING_DERIVED_STATE = {"$or": [{"sla_rev": {"$exists": False}},
                                 {"sla_live": {"$gt": 0}, "sla_next": {"$exists": False}}]}


def repair_derived_state(batch: int = 1000) -> int:
    """Compute the clocks and reminder schedule of every record lacking them (:data:`LACKING_DERIVED_STATE`);
    return how many were repaired. Every start runs it: with one transaction per save it should find none."""
    collection = get_database()[RECORDS]
    types, count = {}, 0
    for document in collection.find(LACKING_DERIVED_STATE, {"type": 1}, batch_size=batch):
        if document["type"] not in types:
            try:
                types[document["type"]] = get_record_type(document["type"], active_only=False)
            except NotFound:  # its type was deleted: no clocks to compute
                types[document["type"]] = None
        if types[document["type"]] is None:
            continue
        try:
            refresh(types[document["type"]], document["_id"], force=True)
        except SectionInvalid:  # its stored definition cannot be used (the start names it): its records wait
            types[document["type"]] = None
            continue
        count += 1
    return count


# -- reading -----------------------------------------------------------------------------------------

def _short(moment: datetime, tz: ZoneInfo) -> str:
    local = aware(moment).astimezone(tz)
    return f"{local.month}-{local.day} {local:%H:%M}"


def _day(day: date) -> str:
    return f"{day.month}-{day.day}"


def explain(clock_state: dict, calendar, tz: ZoneInfo) -> str:
    """How the deadline was reached, for a person:
    "9-30 16:00 起 7 个工作日，跳过 10-1…10-8 国庆节，10-11 调休上班 → 10-16 23:59 截止"."""
    start, due = clock_state["started_at"], clock_state["due_at"]
    paused = timedelta(seconds=clock_state.get("paused_s") or 0)
    base_due = aware(due) - paused
    if clock_state.get("until"):
        text = _("按约定期限 → %(due)s 截止", due=_short(base_due, tz))
    else:
        window = Window.from_dict(clock_state["window"])
        parts = [_("%(start)s 起 %(window)s", start=_short(start, tz), window=window.text())]
        if clock_state.get("level"):
            parts[0] = _("等级“%(level)s”：", level=clock_state["level"]) + parts[0]
        if window.unit in ("working_days", "working_hours"):
            explain_window = getattr(calendar, f"explain_{window.unit}")
            reasons = explain_window(aware(start), window.amount, tz)
            if window.unit == "working_hours":
                parts.append(_("工作时间 %(hours)s", hours=calendar.hours.text()))
            skipped = [(_day(r["first"]) if r["first"] == r["last"] else f"{_day(r['first'])}…{_day(r['last'])}")
                       + f" {r['name']}" for r in reasons["skipped"]]
            if skipped:
                parts.append(_("跳过 %(days)s", days=enumeration(skipped)))
            parts.extend(_("%(day)s 调休上班", day=_day(m["day"])) for m in reasons["makeup"])
            if reasons["fallback_years"]:
                parts.append(_("%(years)s 年节假日未录入，按周末及元旦、劳动节、国庆节计算",
                               years=enumeration(reasons["fallback_years"])))
        text = clauses(parts) + _(" → %(due)s 截止", due=_short(base_due, tz))
    if paused:
        minutes = int(paused.total_seconds() // 60)
        text += _("；暂停 %(hours)s 小时 %(minutes)s 分，顺延至 %(due)s", hours=minutes // 60, minutes=minutes % 60,
                  due=_short(due, tz))
    if clock_state.get("paused") and not clock_state.get("met_at"):
        text += _("；暂停中（截止时间随暂停顺延）")
    if clock_state.get("met_at"):
        on_time = aware(clock_state["met_at"]) <= aware(due)
        text += _("；%(at)s 完成（%(verdict)s）", at=_short(clock_state["met_at"], tz),
                  verdict=_("按时") if on_time else _("超时"))
    return text


def clocks_json(document: dict, tz: ZoneInfo, now: datetime | None = None, calendar=None, *,
                explained: bool = True) -> dict:
    """The API shape: ``{"resolve": {"name", "due_at", "state", "started_at", "met_at", "paused", "explanation"}}``.

    ``explained=False`` leaves ``explanation`` out (lists: it walks the calendar day by day for every clock).
    """
    now = now or utcnow()
    if explained:
        calendar = calendar or get_calendar()

    def iso(moment):
        return aware(moment).astimezone(tz).isoformat() if moment else None

    clocks = {}
    for key, state in (document.get("sla") or {}).items():
        clocks[key] = {"name": state["name"], "due_at": iso(state["due_at"]), "state": state_at(state, now),
                       "started_at": iso(state["started_at"]), "met_at": iso(state.get("met_at")),
                       "paused": bool(state.get("paused"))}
        if explained:
            clocks[key]["explanation"] = explain(state, calendar, tz)
    return clocks
