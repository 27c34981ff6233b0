"""Deadline reminders: the SLA sweep and the overdue follow-up ladder (the ``reminders:`` section).

```yaml
reminders:
  ladder: {at: "09:00", manager_after: 2}   # while overdue: remind every working day at 09:00; from the 2nd
                                            # working day on the manager is told too. ``ladder: false`` = off
  daily_update: {after_working_days: 5}     # open longer than 5 working days: a 今日跟进 task every working day
```

A type without the section gets the ladder at 09:00 with the manager after 2
working days, and no daily update task.

For every running clock (``kefu.rules.sla``) the record keeps which alerts were
sent for its current deadline (``sla.<clock>.alerts`` = {for_due, due_soon,
overdue, ladder}) and, over all its clocks, when the next one is due
(``sla_next``, indexed). A deadline that moves (an edit, a new level, a
reopen, a pause) is a new deadline: its alerts start again, and an alert of
the old one never fires (osTicket #5955).

``sweep`` takes the records whose ``sla_next`` has come, in batches, and for
each clock sends what the moment calls for — once:

- ``due_soon``: entered the last stretch → the assignee (no assignee: the department's supervisors);
- ``overdue``: past the deadline → the assignee and the department's supervisors (and the managers when it is
  already past the ladder's manager step: the sweep was down meanwhile);
- ``ladder`` step k: 09:00 of the k-th working day after the deadline → the assignee, from step
  ``manager_after`` on the department's managers too. After an outage only the latest step is sent.

Each alert has a key (record, clock, transition, deadline[, step]) and becomes
notifications and deliveries with unique keys (``kefu.notify.notifications``): two
sweeps at once, or one repeated after a crash, write nothing twice. The marks
are written after the alerts, conditioned on ``sla_rev`` (bumped by every
``sla.refresh``); a record changed meanwhile is swept again at the next run.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

from pymongo import UpdateOne

from kefu.core.clock import aware, time_of_day, utcnow
from kefu.core.db import get_database
from kefu.core.i18n import _l

log = logging.getLogger(__name__)

SECTION_KEYS = ("ladder", "daily_update")
LADDER_KEYS = ("at", "manager_after")
DAILY_KEYS = ("after_working_days",)
DEFAULT_AT = "09:00"
DEFAULT_MANAGER_AFTER = 2
RECORDS = "records"
SWEEP_BATCH = 500
SWEEP_FIELDS = {"type": 1, "number": 1, "status": 1, "assignee": 1, "department": 1, "created_by": 1, "data": 1,
                "pii": 1, "sla": 1, "sla_open": 1, "sla_next": 1, "sla_rev": 1}


@dataclass(frozen=True)
class Ladder:
    at: time
    manager_after: int


@dataclass(frozen=True)
class Reminders:
    ladder: Ladder | None
    daily_update_after: int | None  # working days; None: no 今日跟进 tasks


def reminders_of(record_type) -> Reminders:
    """The type's reminder settings (the defaults when its definition has no section)."""
    section = getattr(record_type, "reminders", None) or {}
    ladder_section = section.get("ladder", {})
    ladder = None
    if ladder_section is not False:
        ladder_section = ladder_section or {}
        ladder = Ladder(at=time_of_day(ladder_section.get("at") or DEFAULT_AT),
                        manager_after=int(ladder_section.get("manager_after") or DEFAULT_MANAGER_AFTER))
    daily = section.get("daily_update") or {}
    return Reminders(ladder=ladder, daily_update_after=int(daily["after_working_days"]) if daily else None)


def section_problems(section, definition: dict) -> list:
    """What is wrong with a ``reminders:`` section, as messages for a person (empty when it is fine)."""
    if not isinstance(section, dict):
        return [_l("reminders 应为包含 ladder、daily_update 的对象")]
    problems = []
    unknown = sorted(set(map(str, section)) - set(SECTION_KEYS))
    if unknown:
        problems.append(_l("reminders 有不认识的项：%(keys)s", keys="、".join(unknown)))
    ladder = section.get("ladder", {})
    if ladder is not False:
        if not isinstance(ladder, dict):
            problems.append(_l("reminders.ladder 应为 {at: \"09:00\", manager_after: 2}，或 false 表示不再提醒"))
        else:
            if set(map(str, ladder)) - set(LADDER_KEYS):
                problems.append(_l("reminders.ladder 只能有 at 和 manager_after"))
            at = ladder.get("at", DEFAULT_AT)
            try:
                time_of_day(at if isinstance(at, str) else "")
            except ValueError:
                problems.append(_l("reminders.ladder.at 应为“时:分”，如 09:00"))
            after = ladder.get("manager_after", DEFAULT_MANAGER_AFTER)
            if isinstance(after, bool) or not isinstance(after, int) or after < 1:
                problems.append(_l("reminders.ladder.manager_after 应为不小于 1 的整数（逾期第几个工作日起通知经理）"))
    daily = section.get("daily_update")
    if daily is not None:
        days = daily.get("after_working_days") if isinstance(daily, dict) else None
        if not isinstance(daily, dict) or set(map(str, daily)) - set(DAILY_KEYS) or isinstance(days, bool) \
                or not isinstance(days, int) or days < 1:
            problems.append(_l("reminders.daily_update 应为 {after_working_days: 5}（受理超过几个工作日起每天跟进）"))
    return problems


# -- when the next alert is due ------------------------------------------------------------------------------


def same_moment(first, second) -> bool:
    """Two stored times within a second of each other (MongoDB keeps milliseconds)."""
    if first is None or second is None:
        return False
    return abs((aware(first) - aware(second)).total_seconds()) < 1


def ladder_time(due_at: datetime, step: int, ladder: Ladder, calendar, tz: ZoneInfo) -> datetime:
    """The ``step``-th follow-up: ``ladder.at`` local on the step-th working day after the deadline's day."""
    day = calendar.nth_workday_after(aware(due_at).astimezone(tz).date(), step)
    return datetime.combine(day, ladder.at, tzinfo=tz).astimezone(timezone.utc)


def ladder_steps(due_at: datetime, now: datetime, ladder: Ladder, calendar, tz: ZoneInfo) -> int:
    """How many follow-up times have come by ``now``."""
    steps = 0
    while ladder_time(due_at, steps + 1, ladder, calendar, tz) <= now:
        steps += 1
    return steps


def carried_alerts(previous: dict, due_at: datetime) -> dict:
    """The alerts already sent for this deadline (none when the deadline moved)."""
    alerts = (previous or {}).get("alerts") or {}
    return dict(alerts) if same_moment(alerts.get("for_due"), due_at) else {}


def next_alert_at(state: dict, reminders: Reminders, calendar, tz: ZoneInfo) -> datetime | None:
    """When this clock's next alert is due (None: met, paused or nothing left to send)."""
    if state.get("met_at") is not None or state.get("paused"):
        return None
    alerts = state.get("alerts") or {}
    due, warn = aware(state["due_at"]), aware(state["warn_at"])
    if not alerts.get("overdue"):
        if not alerts.get("due_soon") and warn < due:
            return warn
        return due
    if reminders.ladder is None:
        return None
    return ladder_time(due, int(alerts.get("ladder") or 0) + 1, reminders.ladder, calendar, tz)


def sla_next(clocks: dict, reminders: Reminders, calendar, tz: ZoneInfo) -> datetime | None:
    times = [t for t in (next_alert_at(state, reminders, calendar, tz) for state in clocks.values()) if t]
    return min(times, default=None)


# -- the sweep -----------------------------------------------------------------------------------------------

@dataclass
class SweepResult:
    records: int = 0
    alerts: dict = field(default_factory=dict)  # kind → how many
    notifications: int = 0
    retried: int = 0  # records changed while being swept (swept again next time)

    def text(self) -> str:
        kinds = "、".join(f"{kind} {n}" for kind, n in sorted(self.alerts.items())) or "-"
        return (f"records swept: {self.records}; alerts: {kinds}; notifications created: {self.notifications}"
                f"{f'; changed meanwhile: {self.retried}' if self.retried else ''}")


class SweepContext:
    """What one sweep reads once: types, people, settings, templates, calendar."""

    def __init__(self, now: datetime):
        from flask import current_app

        from kefu.calendar.workcalendar import get_calendar
        from kefu.notify.channels import get_settings
        from kefu.notify.messages import Renderer
        from kefu.notify.notifications import People

        self.now = now
        self.tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
        self.calendar = get_calendar()
        self.people = People()
        self.settings = get_settings()
        self.renderer = Renderer()
        self.base_url = (self.settings.base_url or current_app.config.get("KEFU_BASE_URL")
                         or "http://127.0.0.1:5000").rstrip("/")
        self.types: dict = {}
        self.department_names: dict | None = None

    def record_type(self, key: str):
        from kefu.core.errors import NotFound
        from kefu.records.types import get_record_type

        if key not in self.types:
            try:
                self.types[key] = get_record_type(key, active_only=False)
            except NotFound:
                self.types[key] = None
        return self.types[key]

    def department(self, department_id) -> str:
        """The department's name ("" for none or a deleted one); every name is read with the first call."""
        if self.department_names is None:
            from kefu.org.structure import Department

            self.department_names = {d["_id"]: d.get("name", "") for d in Department.objects.only("name").as_pymongo()}
        return self.department_names.get(department_id, "") if department_id is not None else ""

    def url(self, document: dict) -> str:
        return f"{self.base_url}/admin/records/{document['type']}/details/?id={document['_id']}"


def _local(moment: datetime, tz) -> str:
    return aware(moment).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _record_alerts(context: SweepContext, record_type, document: dict, texts: dict) -> tuple[list, dict]:
    """The alerts ``document`` calls for now, and the ``$set`` marking them sent."""
    from kefu.core.durations import duration_text
    from kefu.notify.notifications import Alert
    from kefu.org.roles import Role
    from kefu.rules.levels import level_of
    from kefu.rules.sla import state_at

    now, people = context.now, context.people
    reminders = reminders_of(record_type)
    running = {entry["clock"] for entry in document.get("sla_open") or []}
    level = level_of(record_type, document)
    assignee, department = document.get("assignee"), document.get("department")
    supervisors = people.with_role(Role.SUPERVISOR.value, department)
    urgent = level in (context.settings.urgent_levels or [])
    base = {"number": document["number"], "type_name": record_type.name, "status": document.get("status") or "",
            "level": level or "", "assignee": people.name(assignee), "department": context.department(department),
            "url": context.url(document), "record": texts}
    alerts, update, clocks = [], {}, {}
    for key, stored in (document.get("sla") or {}).items():
        state = dict(stored)
        clocks[key] = state
        if key not in running or state.get("met_at") is not None or state.get("paused"):
            continue
        due, warn = aware(state["due_at"]), aware(state["warn_at"])
        alerts_sent = carried_alerts(state, due)
        alerts_sent["for_due"] = due
        stamp = int(due.timestamp())
        values = {**base, "clock": state.get("name") or key, "due_at": _local(due, context.tz),
                  "late": duration_text(now - due) if now >= due else "", "step": 0}

        def alert(kind: str, recipients: list, step: int | None = None):
            suffix = f":{step}" if step is not None else ""
            subject, body = context.renderer.render(kind, {**values, "step": step or 0})
            alerts.append(Alert(
                key=f"{document['_id']}:{key}:{kind}:{stamp}{suffix}", kind=kind, subject=subject, body=body,
                recipients=recipients, record={"id": document["_id"], "type": document["type"],
                                               "number": document["number"]},
                clock=key, url=values["url"], urgent=urgent))

        owner = [assignee] if people.active(assignee) else supervisors
        if now >= due:
            steps = ladder_steps(due, now, reminders.ladder, context.calendar, context.tz) if reminders.ladder else 0
            managers = people.with_role(Role.MANAGER.value, department)
            late_for_manager = reminders.ladder is not None and steps >= reminders.ladder.manager_after
            if not alerts_sent.get("overdue"):
                alert("overdue", [*owner, *supervisors, *(managers if late_for_manager else [])])
                alerts_sent["overdue"] = now
                alerts_sent["ladder"] = steps
            elif steps > int(alerts_sent.get("ladder") or 0):
                alert("ladder", [*owner, *(managers if late_for_manager else [])], step=steps)
                alerts_sent["ladder"] = steps
        elif now >= warn and not alerts_sent.get("due_soon"):
            alert("due_soon", owner)
            alerts_sent["due_soon"] = now
        state["alerts"] = alerts_sent
        update[f"sla.{key}.alerts"] = alerts_sent
        update[f"sla.{key}.state"] = state_at(state, now)
    update["sla_next"] = sla_next({k: s for k, s in clocks.items() if k in running}, reminders, context.calendar,
                                  context.tz)
    return alerts, update


def sweep(now: datetime | None = None, batch: int = SWEEP_BATCH, record_ids=None) -> SweepResult:
    """Send every alert that has come due (``sla_next <= now``), batch by batch; return what was done.

    ``record_ids``: only these records (a prompt sweep after a save). Idempotent: see the module docstring.
    """
    from kefu.notify.messages import record_values
    from kefu.notify.notifications import Outbox

    now = now or utcnow()
    context = SweepContext(now)
    collection = get_database()[RECORDS]
    result, skipped = SweepResult(), set()
    query = {"sla_next": {"$lte": now, "$type": "date"}}
    if record_ids is not None:
        query["_id"] = {"$in": list(record_ids)}
    while True:
        page_query = {**query, "_id": {**query.get("_id", {}), "$nin": list(skipped)}} if skipped else query
        documents = list(collection.find(page_query, SWEEP_FIELDS, sort=[("sla_next", 1)], limit=batch))
        if not documents:
            break
        outbox = Outbox(now, context.people, context.settings, context.calendar, context.tz)
        updates = []
        by_type: dict = {}
        for document in documents:
            by_type.setdefault(document["type"], []).append(document)
        for type_key, members in by_type.items():
            record_type = context.record_type(type_key)
            if record_type is None:  # its type was deleted: nothing to remind about
                updates.extend(UpdateOne({"_id": d["_id"]}, {"$set": {"sla_next": None}}) for d in members)
                continue
            texts = record_values(record_type, members, context.tz)
            for document in members:
                alerts, update = _record_alerts(context, record_type, document, texts[document["_id"]])
                for alert in alerts:
                    outbox.add(alert)
                    result.alerts[alert.kind] = result.alerts.get(alert.kind, 0) + 1
                updates.append(UpdateOne({"_id": document["_id"], "sla_rev": document.get("sla_rev")},
                                         {"$set": update}))
        # Alerts first, marks second: a crash in between repeats alerts that are then found written already.
        result.notifications += outbox.flush()
        written = collection.bulk_write(updates, ordered=False) if updates else None
        result.records += len(documents)
        if written is not None and written.matched_count < len(updates):
            changed = [u._filter["_id"] for u in updates]
            still_due = collection.find({"_id": {"$in": changed}, "sla_next": {"$lte": now}}, {"_id": 1})
            missed = {d["_id"] for d in still_due}
            result.retried += len(missed)
            skipped |= missed
    return result
