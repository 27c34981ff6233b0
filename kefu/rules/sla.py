"""SLA clocks: the handbooks' deadlines, configured per record type (the ``sla:`` section).

```yaml
sla:
  - key: resolve
    name: 处理完成
    start: received_at               # a datetime field, "created", or "status:已关闭" (when it last entered it)
    within: {working_days: 7}        # exactly one of minutes / hours / days / working_days
    by_level: {重大: {hours: 0}, 重要: {hours: 1}, 一般: {days: 2}}   # optional, per value of level_field
    level_field: level               # optional, default "level"
    when: {category: 工程质量}        # optional: only for records whose fields match
    done_when: {status: [已解决, 已关闭]}  # "field: '*'" means: once the field is filled in
    until: agreed_deadline           # optional date/datetime field: when filled, it is the deadline
    due_soon: {hours: 2}             # optional; default: the last 20% of the window, at least 2 hours
```

Minutes, hours and days are clock time (nights and holidays included); N
working days end at 23:59:59 local time of the N-th working day after the
start date (``kefu.calendar.workcalendar``). While the record is in one of its
workflow's ``pausing`` statuses no clock runs; the paused time is added to
every deadline it interrupted.

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

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from pymongo import ReturnDocument

from kefu.core.clock import aware, utcnow
from kefu.core.db import get_database
from kefu.core.errors import NotFound
from kefu.core.i18n import _, _l
from kefu.rules.levels import DEFAULT_LEVEL_FIELD
from kefu.rules.workflow import workflow_of

UNITS = ("minutes", "hours", "days", "working_days")
CLOCK_KEYS = ("key", "name", "name_en", "start", "within", "by_level", "level_field", "when", "done_when", "until",
              "due_soon")
STATES = ("on_time", "due_soon", "overdue", "met", "missed")
STATE_LABELS = {"on_time": _l("未到期"), "due_soon": _l("即将到期"), "overdue": _l("已逾期"), "met": _l("按时完成"),
                "missed": _l("超时完成")}
LIVE_STATES = ("on_time", "due_soon", "overdue")
ANY_VALUE = "*"  # in when / done_when: the field is filled in
DUE_SOON_SHARE = 0.2
DUE_SOON_AT_LEAST = timedelta(hours=2)
RECORDS = "records"


@dataclass(frozen=True)
class Window:
    """An amount of one unit: ``{"working_days": 7}``."""

    unit: str
    amount: int

    @classmethod
    def from_dict(cls, data: dict) -> "Window":
        (unit, amount), = data.items()
        return cls(unit, int(amount))

    def to_dict(self) -> dict:
        return {self.unit: self.amount}

    def text(self) -> str:
        return {"minutes": _("%(n)s 分钟", n=self.amount), "hours": _("%(n)s 小时", n=self.amount),
                "days": _("%(n)s 天", n=self.amount),
                "working_days": _("%(n)s 个工作日", n=self.amount)}[self.unit]

    def due(self, start: datetime, calendar, tz: ZoneInfo) -> datetime:
        if self.unit == "working_days":
            return calendar.add_working_days(start, self.amount, tz)
        return start + timedelta(**{self.unit: self.amount})


@dataclass(frozen=True)
class Clock:
    key: str
    name: str
    start: str
    within: Window
    by_level: dict
    level_field: str
    when: dict
    done_when: dict
    until: str | None
    due_soon: Window | None

    @classmethod
    def from_dict(cls, data: dict) -> "Clock":
        return cls(
            key=data["key"], name=data["name"], start=data.get("start") or "created",
            within=Window.from_dict(data["within"]),
            by_level={level: Window.from_dict(w) for level, w in (data.get("by_level") or {}).items()},
            level_field=data.get("level_field") or DEFAULT_LEVEL_FIELD, when=data.get("when") or {},
            done_when=data.get("done_when") or {}, until=data.get("until"),
            due_soon=Window.from_dict(data["due_soon"]) if data.get("due_soon") else None,
        )

    def window_for(self, level) -> Window:
        return self.by_level.get(level, self.within)


def clocks_of(record_type) -> list[Clock]:
    return [Clock.from_dict(data) for data in (getattr(record_type, "sla", None) or [])]


# -- definition checks -------------------------------------------------------------------------------

def _window_problem(value, where: str):
    if not isinstance(value, dict) or len(value) != 1:
        return _l("%(where)s 应恰好写一个单位：minutes / hours / days / working_days", where=where)
    (unit, amount), = value.items()
    if unit not in UNITS:
        return _l("%(where)s 的单位“%(unit)s”不存在；可用：minutes / hours / days / working_days", where=where,
                  unit=unit)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        return _l("%(where)s 的数量应为不小于 0 的整数", where=where)
    return None


def section_problems(section, definition: dict) -> list:
    """What is wrong with an ``sla:`` section, as messages for a person (empty when it is fine)."""
    if not isinstance(section, list):
        return [_l("sla 应为时限列表")]
    fields = {f.get("key"): f for f in definition.get("fields") or [] if isinstance(f, dict)}
    statuses = set(workflow_of(_Section(definition.get("workflow"))).statuses)
    core = {"status", "assignee", "department", "customer"}
    problems, seen = [], set()
    for position, clock in enumerate(section, start=1):
        if not isinstance(clock, dict):
            problems.append(_l("第 %(n)s 个时限格式不正确", n=position))
            continue
        key = clock.get("key")
        where = f"sla.{key or position}"
        unknown = sorted(set(clock) - set(CLOCK_KEYS))
        if unknown:
            problems.append(_l("%(where)s 有不认识的项：%(keys)s", where=where, keys="、".join(unknown)))
        if not isinstance(key, str) or not key.isidentifier() or not key.isascii():
            problems.append(_l("第 %(n)s 个时限的 key 须为小写字母、数字或下划线", n=position))
        elif key in seen:
            problems.append(_l("时限 key“%(key)s”重复", key=key))
        seen.add(key)
        if not isinstance(clock.get("name"), str) or not clock["name"].strip():
            problems.append(_l("%(where)s 缺少名称 name", where=where))
        problem = _window_problem(clock.get("within"), f"{where}.within")
        if problem:
            problems.append(problem)
        start = clock.get("start", "created")
        if isinstance(start, str) and start.startswith("status:"):
            if start[len("status:"):] not in statuses:
                problems.append(_l("%(where)s.start 的状态“%(status)s”不在流程中", where=where,
                                   status=start[len("status:"):]))
        elif start != "created" and (fields.get(start) or {}).get("type") != "datetime":
            problems.append(_l("%(where)s.start 应为 created、status:状态 或一个日期时间字段", where=where))
        level_field = clock.get("level_field", DEFAULT_LEVEL_FIELD)
        by_level = clock.get("by_level") or {}
        if not isinstance(by_level, dict):
            problems.append(_l("%(where)s.by_level 应为“等级: 时限”", where=where))
        else:
            if by_level and level_field not in fields:
                problems.append(_l("%(where)s.by_level 需要等级字段“%(field)s”", where=where, field=level_field))
            choices = set((fields.get(level_field) or {}).get("choices") or [])
            for level, window in by_level.items():
                if choices and level not in choices:
                    problems.append(_l("%(where)s.by_level 的等级“%(level)s”不在可选项中", where=where, level=level))
                problem = _window_problem(window, f"{where}.by_level.{level}")
                if problem:
                    problems.append(problem)
        for part in ("when", "done_when"):
            condition = clock.get(part) or {}
            if not isinstance(condition, dict):
                problems.append(_l("%(where)s.%(part)s 应为“字段: 值”", where=where, part=part))
                continue
            for name in condition:
                if name not in core and name not in fields:
                    problems.append(_l("%(where)s.%(part)s 的字段“%(field)s”不存在", where=where, part=part,
                                       field=name))
                elif (fields.get(name) or {}).get("sensitive"):
                    problems.append(_l("%(where)s.%(part)s 不能使用敏感字段“%(field)s”", where=where, part=part,
                                       field=name))
        until = clock.get("until")
        if until is not None and (fields.get(until) or {}).get("type") not in ("date", "datetime"):
            problems.append(_l("%(where)s.until 应为一个日期或日期时间字段", where=where))
        if clock.get("due_soon") is not None:
            problem = _window_problem(clock["due_soon"], f"{where}.due_soon")
            if problem is None and "working_days" in clock["due_soon"]:
                problem = _l("%(where)s.due_soon 请用 minutes / hours / days", where=where)
            if problem:
                problems.append(problem)
    return problems


class _Section:
    """A stand-in record type holding only a workflow section (to check a definition before it is saved)."""

    def __init__(self, workflow):
        self.workflow = workflow if isinstance(workflow, dict) and isinstance(workflow.get("statuses"), list) else {}


# -- computing clocks ---------------------------------------------------------------------------------

def _matches(condition: dict, values: dict) -> bool:
    """Every ``field: value`` (or ``field: [values]``) holds; a list value matches when it shares one;
    ``field: "*"`` means the field is filled in."""
    for name, expected in condition.items():
        value = values.get(name)
        if expected == ANY_VALUE:
            if value in (None, "", []):
                return False
            continue
        wanted = expected if isinstance(expected, list) else [expected]
        present = value if isinstance(value, list) else [value]
        if not any(str(v) in {str(w) for w in wanted} for v in present if v is not None):
            return False
    return True


def _end_of(value, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return aware(value)
    if isinstance(value, date):
        return datetime.combine(value, time(23, 59, 59), tzinfo=tz).astimezone(timezone.utc)
    raise TypeError(value)


def _start_of(clock: Clock, document: dict, values: dict) -> datetime | None:
    if clock.start == "created":
        return aware(document.get("created_at"))
    if clock.start.startswith("status:"):
        return aware((document.get("status_at") or {}).get(clock.start[len("status:"):]))
    value = values.get(clock.start)
    return aware(value) if isinstance(value, datetime) else None


def _soon(clock: Clock, window: timedelta) -> timedelta:
    """How long before the deadline the clock is due soon (never longer than the window)."""
    if clock.due_soon is not None:
        return min(window, timedelta(**{clock.due_soon.unit: clock.due_soon.amount}))
    return min(window, max(window * DUE_SOON_SHARE, DUE_SOON_AT_LEAST))


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
    from kefu.notify.reminders import carried_alerts, reminders_of, sla_next
    from kefu.records.values import core_values, read_plain_values

    values = {**core_values(document), **read_plain_values(record_type, document)}
    workflow = workflow_of(record_type)
    paused_now = workflow.is_pausing(values.get("status"))
    paused_since = aware(document.get("paused_since"))
    pause_ended = paused_since is not None and not paused_now
    if paused_now and paused_since is None:
        paused_since = now
    stored = document.get("sla") or {}
    clocks, open_clocks = {}, []
    for clock in clocks_of(record_type):
        if clock.when and not _matches(clock.when, values):
            continue
        start = _start_of(clock, document, values)
        if start is None:
            continue
        previous = stored.get(clock.key) or {}
        rearmed_at = aware(previous.get("rearmed_at"))
        if rearmed_at and rearmed_at > start:
            start = rearmed_at
        paused_s = float(previous.get("paused_s") or 0)
        met_at = aware(previous.get("met_at"))
        done = bool(clock.done_when) and _matches(clock.done_when, values)
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
            "alerts": carried_alerts(previous, due_at),
        }
        state["state"] = state_at(state, now)
        clocks[clock.key] = state
        if running:
            open_clocks.append({"clock": clock.key, "warn_at": warn_at, "due_at": due_at})
    running_keys = {c["clock"] for c in open_clocks}
    return {
        "sla": clocks, "sla_open": open_clocks,
        "sla_due": min((c["due_at"] for c in open_clocks), default=None),
        "sla_live": sum(1 for c in clocks.values() if c["met_at"] is None),
        "paused_since": paused_since if paused_now else None,
        "sla_next": sla_next({k: c for k, c in clocks.items() if k in running_keys}, reminders_of(record_type),
                             calendar, tz),
    }


def refresh(record_type, record_id, now: datetime | None = None) -> dict:
    """Recompute the record's clocks and store them; return the stored record."""
    from flask import current_app

    from kefu.calendar.workcalendar import get_calendar

    collection = get_database()[RECORDS]
    document = collection.find_one({"_id": record_id})
    if document is None:
        return None
    now = now or utcnow()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # what MongoDB keeps: unchanged compares equal
    update = compute(record_type, document, now, get_calendar(), ZoneInfo(current_app.config["KEFU_TIMEZONE"]))
    if all(document.get(k) == v for k, v in update.items()):
        return document
    # sla_rev: the sweep marks alerts only on the revision it read (kefu.notify.reminders).
    return collection.find_one_and_update({"_id": record_id}, {"$set": update, "$inc": {"sla_rev": 1}},
                                          return_document=ReturnDocument.AFTER)


def recompute_live(first: date | None = None, last: date | None = None) -> int:
    """Recompute every record with a clock still running (after a calendar edit); return how many."""
    from kefu.records.types import get_record_type

    collection = get_database()[RECORDS]
    types, count = {}, 0
    for document in collection.find({"sla_live": {"$gt": 0}}, {"type": 1}):
        if document["type"] not in types:
            types[document["type"]] = get_record_type(document["type"], active_only=False)
        refresh(types[document["type"]], document["_id"])
        count += 1
    return count


def backfill_next(batch: int = 1000) -> int:
    """Recompute the running records stored before reminders existed (no ``sla_next`` yet); return how many."""
    from kefu.records.types import get_record_type

    collection = get_database()[RECORDS]
    types, count = {}, 0
    for document in collection.find({"sla_live": {"$gt": 0}, "sla_next": {"$exists": False}}, {"type": 1},
                                    batch_size=batch):
        if document["type"] not in types:
            try:
                types[document["type"]] = get_record_type(document["type"], active_only=False)
            except NotFound:  # its type was deleted: no clocks to compute
                types[document["type"]] = None
        if types[document["type"]] is not None:
            refresh(types[document["type"]], document["_id"])
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
        if window.unit == "working_days":
            reasons = calendar.explain_working_days(aware(start), window.amount, tz)
            skipped = [(_day(r["first"]) if r["first"] == r["last"] else f"{_day(r['first'])}…{_day(r['last'])}")
                       + f" {r['name']}" for r in reasons["skipped"]]
            if skipped:
                parts.append(_("跳过 %(days)s", days="、".join(skipped)))
            parts.extend(_("%(day)s 调休上班", day=_day(m["day"])) for m in reasons["makeup"])
            if reasons["fallback_years"]:
                parts.append(_("%(years)s 年节假日未录入，按周末及元旦、劳动节、国庆节计算",
                               years="、".join(str(y) for y in reasons["fallback_years"])))
        text = "，".join(parts) + _(" → %(due)s 截止", due=_short(base_due, tz))
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
    from kefu.calendar.workcalendar import get_calendar

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
