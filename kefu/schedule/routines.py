"""What each scheduled duty does (``kefu.schedule.duties`` decides when): the sweep, level escalation, the day's
follow-up and callback tasks, care messages, the weekly summary, the monthly report, the clean-up of old exports and
the record lists of the packs' list duties (``record_list``).

Each takes the moment of its occurrence, derives its work from MongoDB and writes with unique keys, so a repeated run
sends nothing twice; each returns a line saying what it did (kept on the run).
"""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone

from kefu.calendar.days import is_statutory
from kefu.core.db import get_database
from kefu.insight import export_jobs, imports
from kefu.insight.reports import archive_monthly, previous_month, week_numbers
from kefu.notify.messages import record_values
from kefu.notify.notifications import Alert, Outbox, add_tasks, task_day
from kefu.notify.reminders import SweepContext, sweep
from kefu.org.customers import Customer, stored_phone
from kefu.org.roles import Capability
from kefu.org.structure import Project
from kefu.records.indexes import sync_list_indexes
from kefu.records.sections import usable, workflow_of
from kefu.records.store import RECORDS
from kefu.records.types import RecordType
from kefu.rules.levels import escalate_by_age, level_of
from kefu.rules.reminders import reminders_of

log = logging.getLogger(__name__)

def run_sweep(now: datetime) -> str:
    return sweep(now).text()


def update_list_indexes(now: datetime) -> str:
    """The list sort indexes as the record types and their sizes call for now (``sync_list_indexes``)."""
    built, dropped = sync_list_indexes()
    return f"list indexes: {built} built, {dropped} dropped"


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
            recipients = [owner] if owner else context.people.supervisors(record_type.key,
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
    for record_type in filter(usable, RecordType.objects(active=True)):
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


CARE_DAYS = (30, 15, 3)  # the default offsets; an admin changes them on 定时任务 (kefu.schedule.timetable)


def care_messages(now: datetime, offsets=CARE_DAYS, holiday_greetings: bool = True) -> str:
    """Care messages (domain §8; 002 日常流程 1(1): 前30日、前15日、前3日) through the care webhook: to each
    customer of a project ``offsets`` days before its handover; with ``holiday_greetings``, to every customer on
    the working day before a statutory holiday."""
    context = _context(now)
    today = _local_day(now, context.tz)
    outbox = Outbox(now, context.people, context.settings, context.calendar, context.tz)
    handover_count = greeting_count = 0
    # project id → (project, days ahead, handover day); then all their customers in one query
    handing_over = {}
    for days in offsets:
        target = today + timedelta(days=days)
        start = datetime(target.year, target.month, target.day, tzinfo=timezone.utc)
        for project in Project.objects(active=True, handover_date__gte=start, handover_date__lt=start + timedelta(1)):
            handing_over[project.pk] = (project, days, target)
    # An archived customer (kefu.org.customers.archive_customers) gets no care messages.
    customers = Customer.objects(project__in=list(handing_over), archived__ne=True).only(
        "id", "name", "phone_enc", "project")
    for customer in customers.as_pymongo() if handing_over else ():
        project, days, target = handing_over[customer["project"]]
        subject, body = context.renderer.render("care_handover", {
            "customer": customer["name"], "project": project.name, "handover_date": target.isoformat(), "days": days})
        outbox.add(Alert(key=f"care:handover:{project.pk}:{days}:{customer['_id']}", kind="care_handover",
                         subject=subject, body=body, webhook="care_webhook_url", mobiles=[stored_phone(customer)]))
        handover_count += 1
    holiday = holiday_ahead(today, context.calendar) if holiday_greetings else None
    if holiday is not None:
        name, first_day = holiday
        for customer in Customer.objects(archived__ne=True).only("id", "name", "phone_enc", "project"):
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
    """The week's numbers (new, closed, overdue now, due soon) per type, to whoever may read the reports
    (``view_reports``: the shipped supervisors, managers and admins)."""
    context = _context(now)
    today = _local_day(now, context.tz)
    first = today - timedelta(days=6)
    lines = week_numbers(now, _day_bounds(first, context.tz)[0], _day_bounds(today, context.tz)[1])
    period = f"{first.isoformat()} 至 {today.isoformat()}"
    subject, body = context.renderer.render("weekly_summary", {
        "title": f"客服周报（{period}）", "lines": lines, "period": period,
        "url": f"{context.base_url}/admin/overdue/"})
    recipients = context.people.with_capability(Capability.VIEW_REPORTS.value)
    outbox = Outbox(now, context.people, context.settings, context.calendar, context.tz)
    outbox.add(Alert(key=f"weekly:{today.isoformat()}", kind="weekly_summary", subject=subject, body=body,
                     recipients=recipients, url=f"{context.base_url}/admin/overdue/"))
    return f"lines: {len(lines)}; notifications created: {outbox.flush()}"


def monthly_report(now: datetime) -> str:
    """Archive last month's report (``kefu.insight.reports``) and tell whoever may read it (``view_reports``)
    where it is."""
    context = _context(now)
    month = previous_month(_local_day(now, context.tz))
    report = archive_monthly(month, now)
    url = f"{context.base_url}/admin/reports/monthly/?month={month}"
    subject, body = context.renderer.render("monthly_report", {
        "title": f"{month} 月度投诉分析报告", "lines": report["summary_lines"], "period": month, "url": url})
    outbox = Outbox(now, context.people, context.settings, context.calendar, context.tz)
    outbox.add(Alert(key=f"monthly:{month}", kind="monthly_report", subject=subject, body=body,
                     recipients=context.people.with_capability(Capability.VIEW_REPORTS.value), url=url))
    return f"report {month} archived; notifications created: {outbox.flush()}"


def remove_old_exports(now: datetime) -> str:
    return f"exports removed: {export_jobs.remove_old(now)}; imports removed: {imports.remove_old(now)}"


def record_list(now: datetime, *, name: str, title, kind: str, types=(), statuses: str = "open",
                date_field: str = "created_at", window_from: int = 0, window_to: int = 7) -> str:
    """A list duty (``kefu.schedule.timetable``): the records of ``types`` (``statuses`` "open": not closed yet)
    whose ``date_field`` falls on a day from ``window_from`` up to (not including) ``window_to`` days after the
    run's day, listed in one message to the supervisors of their types — e.g. 002 工程预验收流程: every Wednesday
    the jobs to pre-accept next week — written with the message template ``kind`` (``kefu.notify.messages``). Once
    per duty and day (the message's key); nothing sent when none match."""
    context = _context(now)
    today = _local_day(now, context.tz)
    first, last = today + timedelta(days=window_from), today + timedelta(days=window_to)
    lines, recipients = [], []
    for key in types:
        record_type = context.record_type(key)
        if record_type is None or not record_type.active:
            continue
        query = {"type": key, date_field if date_field in ("created_at", "updated_at") else f"data.{date_field}":
                 _window(record_type, date_field, first, last, context.tz)}
        if statuses == "open":
            query["status"] = {"$in": list(workflow_of(record_type).open_statuses)}
        found = list(get_database()[RECORDS].find(query).sort("number", 1))
        texts = record_values(record_type, found, context.tz) if found else {}
        shown = [spec for spec in record_type.specs if spec.list and spec.active]  # its list columns
        for document in found:
            summary = "；".join(f"{spec.label}：{texts[document['_id']][spec.key]}" for spec in shown
                               if spec.key in texts[document["_id"]])
            lines.append(f"{record_type.name} {document['number']}（{document.get('status') or '-'}）{summary}")
        if found:
            recipients.extend(context.people.supervisors(key))
    if not lines:
        return "records: 0; notifications created: 0"
    period = f"{first.isoformat()} 至 {(last - timedelta(days=1)).isoformat()}"
    subject, body = context.renderer.render(kind, {
        "title": f"{title}（{period}）", "lines": lines, "period": period, "url": f"{context.base_url}/admin/"})
    outbox = Outbox(now, context.people, context.settings, context.calendar, context.tz)
    outbox.add(Alert(key=f"list:{name}:{today.isoformat()}", kind=kind, subject=subject, body=body,
                     recipients=recipients, url=f"{context.base_url}/admin/"))
    return f"records: {len(lines)}; notifications created: {outbox.flush()}"


def _window(record_type, date_field: str, first: date, last: date, tz) -> dict:
    """The query on ``date_field`` for the days ``first`` ≤ day < ``last``: a date field is stored as the UTC
    midnight of its day, a moment (登记时间, a datetime field) is compared with the local days' bounds."""
    spec = record_type.field(date_field)
    if spec is not None and spec.type == "date":
        bounds = [datetime(d.year, d.month, d.day, tzinfo=timezone.utc) for d in (first, last)]
    else:
        bounds = [_day_bounds(first, tz)[0], _day_bounds(last, tz)[0]]
    return {"$gte": bounds[0], "$lt": bounds[1]}
