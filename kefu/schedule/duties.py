"""Scheduled work (定时任务): what runs when, each occurrence exactly once, with catch-up after an outage.

The schedule is code (``DUTIES``); its state is in MongoDB (``duty_runs``,
one document per duty and occurrence). ``due_now`` names, for every duty,
its latest occurrence up to now and *claims* it by inserting that document:
however many schedulers tick at the same moment, one claim wins. A claim
whose worker died (still ``running`` after the duty's lease) or that failed
may be claimed again. Because occurrences are computed from the clock, a
scheduler that was down (or a Redis outage) catches up at its next tick: the
latest missed occurrence runs, if it is not older than the duty's
``catch_up`` (yesterday's 09:00 follow-ups are not sent at noon today).

Every duty derives its work from MongoDB and writes with unique keys, so a
repeated run sends nothing twice:

| duty | when (local time) | what |
|---|---|---|
| ``sla_sweep`` | every tick | ``kefu.notify.reminders.sweep`` |
| ``escalate_levels`` | daily 01:00 | ``kefu.rules.levels.escalate_by_age`` (重要 open > 3 months → 重大) |
| ``follow_up_tasks`` | working days 09:00 | 今日跟进 task + reminder: open longer than ``daily_update`` working days |
| ``callbacks_due`` | working days 09:00 | 今日回访 task + reminder for each callback due today |
| ``care_messages`` | daily 10:00 | handover care 30/15/3 days before; greetings the working day before a statutory holiday |
| ``weekly_summary`` | Wednesdays 09:00 | the week's numbers to supervisors and managers |
| ``monthly_report`` | the 5th 08:00 | last month's report archived (``kefu.insight.reports``), managers told |
| ``remove_old_exports`` | daily 03:00 | background exports older than 7 days deleted with their files |
"""
from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from mongoengine import DateTimeField, Document, IntField, StringField
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from kefu.calendar.days import is_statutory
from kefu.calendar.workcalendar import get_calendar
from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.i18n import _l
from kefu.insight.export_jobs import remove_old
from kefu.insight.reports import archive_monthly, previous_month, week_numbers
from kefu.notify.messages import record_values
from kefu.notify.notifications import Alert, Outbox, add_tasks, task_day
from kefu.notify.reminders import SweepContext, reminders_of, sweep
from kefu.org.customers import Customer
from kefu.org.roles import Role
from kefu.org.structure import Project
from kefu.records.store import RECORDS
from kefu.records.types import RecordType
from kefu.rules.levels import escalate_by_age, level_of
from kefu.rules.workflow import workflow_of

log = logging.getLogger(__name__)

RUN_HISTORY = timedelta(days=7)  # every-tick runs are kept this long (TTL)
MAX_ATTEMPTS = 3


class RunState:
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


STATE_LABELS = {RunState.RUNNING: _l("运行中"), RunState.DONE: _l("完成"), RunState.FAILED: _l("失败")}


@dataclass(frozen=True)
class Duty:
    name: str
    label: object
    function: str                      # "module:function", called with now
    at: time | None = None             # None: every tick
    weekday: int | None = None         # 0 = Monday
    monthday: int | None = None
    working_days: bool = False         # only on working days of the company calendar
    catch_up: timedelta = timedelta(hours=12)
    lease: timedelta = timedelta(minutes=15)

    def latest(self, now: datetime, calendar, tz: ZoneInfo) -> datetime | None:
        """The latest occurrence at or before ``now`` (UTC; for every-tick duties: ``now``'s minute)."""
        if self.at is None:
            return now.replace(second=0, microsecond=0)
        day = now.astimezone(tz).date()
        for _offset in range(400):
            moment = datetime.combine(day, self.at, tzinfo=tz).astimezone(timezone.utc)
            if moment <= now and self._on(day, calendar):
                return moment
            day -= timedelta(days=1)
        return None

    def next_after(self, now: datetime, calendar, tz: ZoneInfo) -> datetime | None:
        """The first occurrence after ``now`` (for the queue page)."""
        if self.at is None:
            return now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = now.astimezone(tz).date()
        for _offset in range(400):
            moment = datetime.combine(day, self.at, tzinfo=tz).astimezone(timezone.utc)
            if moment > now and self._on(day, calendar):
                return moment
            day += timedelta(days=1)
        return None

    def _on(self, day: date, calendar) -> bool:
        if self.weekday is not None and day.weekday() != self.weekday:
            return False
        if self.monthday is not None and day.day != self.monthday:
            return False
        return not self.working_days or calendar.is_workday(day)


DUTIES = (
    Duty("sla_sweep", _l("时限扫描与提醒"), "kefu.schedule.duties:run_sweep", catch_up=timedelta(days=3650),
         lease=timedelta(minutes=5)),
    Duty("escalate_levels", _l("投诉等级按时升级"), "kefu.schedule.duties:escalate_levels", at=time(1, 0)),
    Duty("follow_up_tasks", _l("今日跟进任务"), "kefu.schedule.duties:follow_up_tasks", at=time(9, 0), working_days=True,
         catch_up=timedelta(hours=9)),
    Duty("callbacks_due", _l("今日回访提醒"), "kefu.schedule.duties:callbacks_due", at=time(9, 0), working_days=True,
         catch_up=timedelta(hours=9)),
    Duty("care_messages", _l("客户关怀消息"), "kefu.schedule.duties:care_messages", at=time(10, 0),
         catch_up=timedelta(hours=8)),
    Duty("weekly_summary", _l("每周汇总"), "kefu.schedule.duties:weekly_summary", at=time(9, 0), weekday=2,
         catch_up=timedelta(days=3)),
    Duty("monthly_report", _l("月度报告"), "kefu.schedule.duties:monthly_report", at=time(8, 0), monthday=5,
         catch_up=timedelta(days=20), lease=timedelta(minutes=60)),
    Duty("remove_old_exports", _l("清理过期导出文件"), "kefu.schedule.duties:remove_old_exports", at=time(3, 0),
         catch_up=timedelta(hours=20)),
)
DUTY_BY_NAME = {duty.name: duty for duty in DUTIES}


class DutyRun(Document):
    """One occurrence of one duty: claimed, done or failed (the schedule's memory)."""

    id = StringField(primary_key=True)  # "<duty>:<occurrence as YYYYmmddTHHMM UTC>"
    duty = StringField(required=True, verbose_name=_l("任务"))
    occurrence = DateTimeField(required=True, verbose_name=_l("计划时间"))
    state = StringField(required=True, verbose_name=_l("状态"))
    attempts = IntField(default=1)
    claimed_at = DateTimeField(verbose_name=_l("开始时间"))
    finished_at = DateTimeField(verbose_name=_l("结束时间"))
    result = StringField(verbose_name=_l("结果"))
    error = StringField(verbose_name=_l("错误"))
    expire_at = DateTimeField()

    meta = {"collection": "duty_runs", "ordering": ["-occurrence"],
            "indexes": [{"fields": ["duty", "-occurrence"]},
                        {"fields": ["expire_at"], "expireAfterSeconds": 0}]}


def run_id(duty: Duty, occurrence: datetime) -> str:
    return f"{duty.name}:{occurrence.astimezone(timezone.utc):%Y%m%dT%H%M}"


def claim(duty: Duty, occurrence: datetime, now: datetime) -> bool:
    """Take this occurrence; False when another scheduler has it (running within its lease) or it is done."""
    collection = DutyRun._get_collection()
    identifier = run_id(duty, occurrence)
    document = {"_id": identifier, "duty": duty.name, "occurrence": occurrence, "state": RunState.RUNNING,
                "attempts": 1, "claimed_at": now, "finished_at": None, "result": None, "error": None,
                "expire_at": occurrence + RUN_HISTORY if duty.at is None else None}
    try:
        collection.insert_one(document)
        return True
    except DuplicateKeyError:
        pass
    taken = collection.find_one_and_update(
        {"_id": identifier, "attempts": {"$lt": MAX_ATTEMPTS}, "$or": [
            {"state": RunState.RUNNING, "claimed_at": {"$lte": now - duty.lease}},
            {"state": RunState.FAILED}]},
        {"$set": {"state": RunState.RUNNING, "claimed_at": now, "error": None}, "$inc": {"attempts": 1}},
        return_document=ReturnDocument.AFTER)
    return taken is not None


def due_now(now: datetime | None = None) -> list[tuple[Duty, datetime]]:
    """Claim and return every duty occurrence that should run now (see the module docstring)."""
    from flask import current_app


    now = now or utcnow()
    tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
    calendar = get_calendar()
    claimed = []
    for duty in DUTIES:
        occurrence = duty.latest(now, calendar, tz)
        if occurrence is None or now - occurrence > duty.catch_up:
            continue
        if claim(duty, occurrence, now):
            claimed.append((duty, occurrence))
    return claimed


def run(name: str, occurrence: datetime, now: datetime | None = None) -> str:
    """Run one claimed occurrence and record its outcome; return its result text (raises on failure)."""
    from importlib import import_module

    duty = DUTY_BY_NAME[name]
    module, _sep, function = duty.function.partition(":")
    collection = DutyRun._get_collection()
    identifier = run_id(duty, occurrence)
    try:
        result = getattr(import_module(module), function)(now or utcnow())
    except Exception:
        collection.update_one({"_id": identifier}, {"$set": {"state": RunState.FAILED, "finished_at": utcnow(),
                                                              "error": traceback.format_exc()[-4000:]}})
        raise
    text = str(result)
    collection.update_one({"_id": identifier}, {"$set": {"state": RunState.DONE, "finished_at": utcnow(),
                                                          "result": text[:2000]}})
    return text


def schedule_overview(now: datetime | None = None) -> list[dict]:
    """Per duty: label, last run (occurrence, state, result, error) and next occurrence, for the queue page."""
    from flask import current_app


    now = now or utcnow()
    tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
    calendar = get_calendar()
    rows = []
    for duty in DUTIES:
        last = DutyRun.objects(duty=duty.name).order_by("-occurrence").first()
        rows.append({"duty": duty, "last": last, "next": duty.next_after(now, calendar, tz)})
    return rows


# -- the duties -----------------------------------------------------------------------------------------------

def run_sweep(now: datetime) -> str:
    return sweep(now).text()


def escalate_levels(now: datetime) -> str:
    return f"records raised: {escalate_by_age(now)}"


def _local_day(now: datetime, tz) -> date:
    return now.astimezone(tz).date()


def _day_bounds(day: date, tz) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(timezone.utc)
    return start, start + timedelta(days=1)


def _record_tasks(now: datetime, kind: str, found: list[tuple], context) -> str:
    """Tasks and reminders for ``found`` = [(record type, document, step)], one of each per record and day."""
    today = _local_day(now, context.tz)
    outbox = Outbox(now, context.people, context.settings, context.calendar, context.tz)
    tasks = []
    by_type: dict = {}
    for record_type, document, step in found:
        by_type.setdefault(record_type.key, (record_type, []))[1].append((document, step))
    for record_type, members in by_type.values():
        texts = record_values(record_type, [d for d, _s in members], context.tz)
        for document, step in members:
            owner = next((u for u in (document.get("assignee"), document.get("created_by"))
                          if context.people.active(u)), None)
            recipients = [owner] if owner else context.people.with_role(Role.SUPERVISOR.value,
                                                                        document.get("department"))
            values = {"number": document["number"], "type_name": record_type.name,
                      "status": document.get("status") or "", "level": level_of(record_type, document) or "",
                      "clock": "", "due_at": _due_text(document, context.tz), "late": "", "step": step,
                      "assignee": context.people.name(document.get("assignee")),
                      "department": context.department(document.get("department")), "url": context.url(document),
                      "record": texts[document["_id"]]}
            subject, body = context.renderer.render(kind, values)
            key = f"{document['_id']}:{kind}:{today.isoformat()}"
            outbox.add(Alert(key=key, kind=kind, subject=subject, body=body, recipients=recipients,
                             record={"id": document["_id"], "type": document["type"], "number": document["number"]},
                             url=values["url"]))
            tasks.extend({"key": f"{key}:{user}", "user": user, "kind": kind, "title": subject,
                          "record_id": document["_id"], "record_type": document["type"],
                          "record_number": document["number"], "day": task_day(today, context.tz)}
                         for user in recipients)
    created = add_tasks(tasks)
    notified = outbox.flush()
    return f"records: {len(found)}; tasks created: {created}; notifications created: {notified}"


def _due_text(document: dict, tz) -> str:
    due = (document.get("source") or {}).get("due_at")
    return due.astimezone(tz).strftime("%Y-%m-%d %H:%M") if due else ""


def _context(now: datetime):
    return SweepContext(now)


def follow_up_tasks(now: datetime) -> str:
    """今日跟进: every open record of a type with ``reminders.daily_update`` registered more than that many
    working days ago gets a task for its agent today (004: track daily, update the complainant every day)."""
    context = _context(now)
    today = _local_day(now, context.tz)
    found = []
    for record_type in RecordType.objects(active=True):
        after = reminders_of(record_type).daily_update_after
        if not after:
            continue
        # The last day whose records have been open more than ``after`` working days by today.
        day, counted = today, 0
        while counted <= after:
            if context.calendar.is_workday(day):
                counted += 1
            day -= timedelta(days=1)
        _start, cutoff = _day_bounds(day, context.tz)
        query = {"type": record_type.key, "status": {"$in": list(workflow_of(record_type).open_statuses)},
                 "created_at": {"$lt": cutoff}}
        for document in get_database()[RECORDS].find(query):
            opened = context.calendar.working_days_between(document["created_at"].astimezone(context.tz).date(),
                                                           today)
            found.append((record_type, document, opened))
    return _record_tasks(now, "follow_up", found, context)


def callbacks_due(now: datetime) -> str:
    """今日回访: each open callback due today is a task and a reminder for its agent."""
    context = _context(now)
    start, end = _day_bounds(_local_day(now, context.tz), context.tz)
    found = []
    # "$type": the partial index ``callback_due`` serves only queries that name its filter expression.
    for document in get_database()[RECORDS].find({"source.due_at": {"$gte": start, "$lt": end, "$type": "date"}}):
        record_type = context.record_type(document["type"])
        if record_type is not None and document.get("status") in workflow_of(record_type).open_statuses:
            found.append((record_type, document, 0))
    return _record_tasks(now, "callback_due", found, context)


CARE_DAYS = (30, 15, 3)


def care_messages(now: datetime) -> str:
    """Care messages (domain §8) through the care webhook: to each customer of a project 30, 15 and 3 days
    before its handover; to every customer on the working day before a statutory holiday."""
    context = _context(now)
    today = _local_day(now, context.tz)
    outbox = Outbox(now, context.people, context.settings, context.calendar, context.tz)
    handover_count = greeting_count = 0
    # project id → (project, days ahead, handover day); then all their customers in one query
    handing_over = {}
    for days in CARE_DAYS:
        target = today + timedelta(days=days)
        start = datetime(target.year, target.month, target.day, tzinfo=timezone.utc)
        for project in Project.objects(active=True, handover_date__gte=start, handover_date__lt=start + timedelta(1)):
            handing_over[project.pk] = (project, days, target)
    customers = Customer.objects(project__in=list(handing_over)).only("id", "name", "phone", "project")
    for customer in customers.as_pymongo() if handing_over else ():
        project, days, target = handing_over[customer["project"]]
        subject, body = context.renderer.render("care_handover", {
            "customer": customer["name"], "project": project.name, "handover_date": target.isoformat(), "days": days})
        outbox.add(Alert(key=f"care:handover:{project.pk}:{days}:{customer['_id']}", kind="care_handover",
                         subject=subject, body=body, webhook="care_webhook_url", mobiles=[customer.get("phone")]))
        handover_count += 1
    holiday = holiday_ahead(today, context.calendar)
    if holiday is not None:
        name, first_day = holiday
        for customer in Customer.objects().only("id", "name", "phone", "project"):
            subject, body = context.renderer.render("care_holiday", {"customer": customer.name, "holiday": name,
                                                                     "project": ""})
            outbox.add(Alert(key=f"care:holiday:{first_day.isoformat()}:{customer.pk}", kind="care_holiday",
                             subject=subject, body=body, webhook="care_webhook_url", mobiles=[customer.phone]))
            greeting_count += 1
    outbox.flush()
    return f"handover messages: {handover_count}; holiday greetings: {greeting_count}"


def holiday_ahead(today: date, calendar) -> tuple[str, date] | None:
    """``(holiday name, its first day)`` when ``today`` is the last working day before a statutory holiday."""
    if not calendar.is_workday(today):
        return None
    day = today + timedelta(days=1)
    first = day
    while not calendar.is_workday(day) and (day - first).days < 40:
        entry = calendar.day_entry(day)
        if entry is not None and is_statutory(entry[1]):
            return entry[1], first
        day += timedelta(days=1)
    return None


def weekly_summary(now: datetime) -> str:
    """The week's numbers (new, closed, overdue now, due soon) per type, to supervisors and managers."""
    context = _context(now)
    today = _local_day(now, context.tz)
    first = today - timedelta(days=6)
    lines = week_numbers(now, _day_bounds(first, context.tz)[0], _day_bounds(today, context.tz)[1])
    period = f"{first.isoformat()} 至 {today.isoformat()}"
    subject, body = context.renderer.render("weekly_summary", {
        "title": f"客服周报（{period}）", "lines": lines, "period": period,
        "url": f"{context.base_url}/admin/overdue/"})
    recipients = context.people.with_role(Role.SUPERVISOR.value) + context.people.with_role(Role.MANAGER.value)
    outbox = Outbox(now, context.people, context.settings, context.calendar, context.tz)
    outbox.add(Alert(key=f"weekly:{today.isoformat()}", kind="weekly_summary", subject=subject, body=body,
                     recipients=recipients, url=f"{context.base_url}/admin/overdue/"))
    return f"lines: {len(lines)}; notifications created: {outbox.flush()}"


def monthly_report(now: datetime) -> str:
    """Archive last month's report (``kefu.insight.reports``) and tell the managers where it is."""
    context = _context(now)
    month = previous_month(_local_day(now, context.tz))
    report = archive_monthly(month, now)
    url = f"{context.base_url}/admin/reports/monthly/?month={month}"
    subject, body = context.renderer.render("monthly_report", {
        "title": f"{month} 月度投诉分析报告", "lines": report["summary_lines"], "period": month, "url": url})
    outbox = Outbox(now, context.people, context.settings, context.calendar, context.tz)
    outbox.add(Alert(key=f"monthly:{month}", kind="monthly_report", subject=subject, body=body,
                     recipients=context.people.with_role(Role.MANAGER.value), url=url))
    return f"report {month} archived; notifications created: {outbox.flush()}"


def remove_old_exports(now: datetime) -> str:
    return f"exports removed: {remove_old(now)}"
