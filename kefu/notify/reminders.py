"""Deadline reminders: the SLA sweep and the overdue follow-up ladder (the type's ``reminders:`` section,
``kefu.rules.reminders``, says when).

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

A clock with ``notify_at_start`` (approval titles and/or role keys) also tells, once per start of the clock, the
active users holding one of them — those of the record's department when it has any, else all of them — in
``clock_started``; the start is noted in ``sla.<clock>.announced``. A start older than ``ANNOUNCE_WITHIN`` (a
definition given ``notify_at_start`` later, a sweep down for long) is noted without telling anyone.

Supervisors and managers are read from the roles' permissions, not their names (``People.supervisors`` and
``People.managers``): whoever may reassign the record's type across a department, and anywhere.

Each alert has a key (record, clock, transition, deadline[, step]) and becomes
notifications and deliveries with unique keys (``kefu.notify.notifications``): two
sweeps at once, or one repeated after a crash, write nothing twice. The marks
are written after the alerts, conditioned on ``sla_rev`` (bumped by every
``sla.refresh``) and on the ``sla_next`` the sweep read (another sweep may have
marked the record since); a record changed meanwhile is swept again at the next run.
"""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from pymongo import ASCENDING, IndexModel

from kefu.calendar.workcalendar import get_calendar
from kefu.core.clock import aware, utcnow
from kefu.core.db import get_database
from kefu.core.durations import DurationWords, duration_text
from kefu.core.errors import NotFound
from kefu.notify.channels import get_settings
from kefu.notify.messages import Renderer, record_values
from kefu.notify.notifications import Alert, Outbox, People
from kefu.org.structure import Department
from kefu.org.users import User
from kefu.records.engine_state import clear_sla_next, mark_alerts
from kefu.records.sections import usable
from kefu.records.store import RECORDS
from kefu.records.types import get_record_type
from kefu.rules.levels import level_of
from kefu.rules.reminders import carried_alerts, ladder_steps, reminders_of, same_moment, sla_next
from kefu.rules.sla import clocks_of, state_at

log = logging.getLogger(__name__)

SWEEP_BATCH = 500
ANNOUNCE_WITHIN = timedelta(days=1)
SWEEP_FIELDS = {"type": 1, "number": 1, "status": 1, "assignee": 1, "department": 1, "created_by": 1, "data": 1,
                "pii": 1, "sla": 1, "sla_open": 1, "sla_next": 1, "sla_rev": 1}


# -- the sweep -----------------------------------------------------------------------------------------------

# The records collection's index behind the sweep: records whose next alert has come (created by
# kefu.runtime.storage).
RECORD_INDEXES = [
    IndexModel([("sla_next", ASCENDING)], name="sla_next", partialFilterExpression={"sla_next": {"$type": "date"}}),
]


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
    """What one sweep reads once: types, people, settings, templates, calendar, the words of durations."""

    def __init__(self, now: datetime):
        self.now = now
        self.tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
        self.calendar = get_calendar()
        self.people = People()
        self.settings = get_settings()
        self.renderer = Renderer()
        self.words = DurationWords.current()
        self.base_url = (self.settings.base_url or current_app.config.get("KEFU_BASE_URL")
                         or "http://127.0.0.1:5000").rstrip("/")
        self.types: dict = {}
        self.department_names: dict | None = None
        self._titled: list | None = None

    def record_type(self, key: str):
        if key not in self.types:
            try:
                self.types[key] = get_record_type(key, active_only=False)
            except NotFound:
                self.types[key] = None
        return self.types[key]

    def department(self, department_id) -> str:
        """The department's name ("" for none or a deleted one); every name is read with the first call."""
        if self.department_names is None:
            self.department_names = {d["_id"]: d.get("name", "") for d in Department.objects.only("name").as_pymongo()}
        return self.department_names.get(department_id, "") if department_id is not None else ""

    def holders(self, names, department) -> list:
        """Active users holding one of ``names`` as an approval title or a role key, those of ``department`` first
        (all of them when it has none); every user is read with the first call."""
        if self._titled is None:
            self._titled = list(User.objects(active=True).only("id", "roles", "approval_titles", "department")
                                .as_pymongo())
        wanted = set(names)
        found = [u for u in self._titled if wanted & {*(u.get("roles") or ()), *(u.get("approval_titles") or ())}]
        return [u["_id"] for u in found if u.get("department") == department] or [u["_id"] for u in found]

    def url(self, document: dict) -> str:
        return f"{self.base_url}/admin/records/{document['type']}/details/?id={document['_id']}"


def _local(moment: datetime, tz) -> str:
    return aware(moment).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _record_alerts(context: SweepContext, record_type, document: dict, texts: dict) -> tuple[list, dict]:
    """The alerts ``document`` calls for now, and the ``$set`` marking them sent."""
    now, people = context.now, context.people
    reminders = reminders_of(record_type)
    running = {entry["clock"] for entry in document.get("sla_open") or []}
    level = level_of(record_type, document)
    assignee, department = document.get("assignee"), document.get("department")
    supervisors = people.supervisors(record_type.key, department)
    urgent = level in context.settings.urgent_for(record_type)
    base = {"number": document["number"], "type_name": record_type.name, "status": document.get("status") or "",
            "level": level or "", "assignee": people.name(assignee), "department": context.department(department),
            "url": context.url(document), "record": texts}
    alerts, update, clocks = [], {}, {}
    announce = {clock.key: clock.notify_at_start for clock in clocks_of(record_type) if clock.notify_at_start}
    for key, stored in (document.get("sla") or {}).items():
        state = dict(stored)
        clocks[key] = state
        if key in announce and not same_moment(state.get("announced"), state["started_at"]):
            if now - aware(state["started_at"]) <= ANNOUNCE_WITHIN:
                alerts.append(_started(context, document, base, state, key, announce[key], urgent))
            update[f"sla.{key}.announced"] = state["started_at"]
        if key not in running or state.get("met_at") is not None or state.get("paused"):
            continue
        due, warn = aware(state["due_at"]), aware(state["warn_at"])
        alerts_sent = carried_alerts(state, due)
        alerts_sent["for_due"] = due
        stamp = int(due.timestamp())
        values = {**base, "clock": state.get("name") or key, "due_at": _local(due, context.tz),
                  "late": duration_text(now - due, context.words) if now >= due else "", "step": 0}

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
            managers = people.managers(record_type.key, department)
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


def _started(context: SweepContext, document: dict, base: dict, state: dict, key: str, names, urgent: bool) -> Alert:
    """The ``clock_started`` alert of a clock with ``notify_at_start``, keyed by the clock's start, written with the
    ``clock_started`` message template (消息模板)."""
    subject, body = context.renderer.render("clock_started", {
        **base, "clock": state.get("name") or key, "due_at": _local(state["due_at"], context.tz), "late": "",
        "step": 0})
    return Alert(
        key=f"{document['_id']}:{key}:clock_started:{int(aware(state['started_at']).timestamp())}",
        kind="clock_started", subject=subject, body=body,
        recipients=context.holders(names, document.get("department")),
        record={"id": document["_id"], "type": document["type"], "number": document["number"]},
        clock=key, url=base["url"], urgent=urgent)


def sweep(now: datetime | None = None, batch: int = SWEEP_BATCH) -> SweepResult:
    """Send every alert that has come due (``sla_next <= now``), batch by batch, asking again after each batch
    until none is due; return what was done.

    ``now``: the moment to sweep at (a duty's, a test's); by default the clock, read again for every batch, so that
    a long sweep also takes the records that came due, or were saved due, while it ran (``jobs.sweep``).
    A batch's alerts and marks are written by a second thread while the next batch is read and worked out (one
    batch in flight, left out of the next read): MongoDB writes while Python computes (10,000 long-overdue records:
    5.1–5.5 s instead of 6.2 on two cores, ``bench/sweep_bench.py``). Idempotent: see the module docstring.
    """
    clock = utcnow if now is None else (lambda: now)
    context = SweepContext(clock())
    collection = get_database()[RECORDS]
    result, skipped = SweepResult(), set()
    app = current_app._get_current_object()
    writing, in_flight = None, set()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-writes") as writer:
        while True:
            now = context.now = clock()
            query = {"sla_next": {"$lte": now, "$type": "date"}}
            if skipped or in_flight:
                query["_id"] = {"$nin": [*skipped, *in_flight]}
            documents = list(collection.find(query, SWEEP_FIELDS, sort=[("sla_next", 1)], limit=batch))
            if not documents and writing is None:
                break
            work = _batch_alerts(context, documents, result, skipped) if documents else None
            if writing is not None:  # the batch before: written, its records no longer in flight
                skipped |= _written(writing, result)
                writing, in_flight = None, set()
            if work is not None:
                writing, in_flight = writer.submit(_write_batch, app, now, *work), {d["_id"] for d in documents}
    return result


def _batch_alerts(context: SweepContext, documents: list[dict], result: SweepResult, skipped: set) -> tuple:
    """The alerts of a batch (counted in ``result``) and what to write: ``(outbox, orphans, marks)``. Records of a
    deleted type are orphans; those of a type whose definition cannot be used wait, still due (in ``skipped``)."""
    outbox = Outbox(context.now, context.people, context.settings, context.calendar, context.tz)
    marks, orphans = [], []
    by_type: dict = {}
    for document in documents:
        by_type.setdefault(document["type"], []).append(document)
    for type_key, members in by_type.items():
        record_type = context.record_type(type_key)
        if record_type is None:  # its type was deleted: nothing to remind about
            orphans.extend(d["_id"] for d in members)
            continue
        if not usable(record_type):
            skipped |= {d["_id"] for d in members}
            continue
        texts = record_values(record_type, members, context.tz)
        for document in members:
            alerts, update = _record_alerts(context, record_type, document, texts[document["_id"]])
            for alert in alerts:
                outbox.add(alert)
                result.alerts[alert.kind] = result.alerts.get(alert.kind, 0) + 1
            marks.append((document["_id"], document.get("sla_rev"), document.get("sla_next"), update))
    result.records += len(documents)
    return outbox, orphans, marks


def _write_batch(app, now: datetime, outbox: Outbox, orphans: list, marks: list) -> tuple[int, set]:
    """Write a batch (in the sweep's writer thread): alerts first, marks second — a crash in between repeats alerts
    that are then found written already. Return the notifications created and the records still due because they
    changed meanwhile (swept again next time)."""
    with app.app_context():
        notifications = outbox.flush()
        clear_sla_next(orphans)
        if mark_alerts(marks) == len(marks):
            return notifications, set()
        changed = [record_id for record_id, *_read in marks]
        still_due = get_database()[RECORDS].find({"_id": {"$in": changed}, "sla_next": {"$lte": now}}, {"_id": 1})
        return notifications, {d["_id"] for d in still_due}


def _written(writing: Future, result: SweepResult) -> set:
    """Wait for a batch's writes (raising their error); count them in ``result``; return the records missed."""
    notifications, missed = writing.result()
    result.notifications += notifications
    result.retried += len(missed)
    return missed
