"""Reports: the weekly summary's numbers and the monthly report archived on the 5th.

Numbers come from MongoDB aggregation pipelines that start with an indexed
``$match`` on ``type`` and ``created_at`` (``records`` indexes ``type_created``).
The monthly report of a month is stored once in ``reports`` (``_id`` =
``monthly:YYYY-MM``); generating it again replaces it with fresh numbers.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from kefu.clock import utcnow
from kefu.db import get_database

RECORDS = "records"
REPORTS = "reports"


def previous_month(today: date) -> str:
    """``YYYY-MM`` of the month before ``today``'s."""
    first = today.replace(day=1) - timedelta(days=1)
    return f"{first.year:04d}-{first.month:02d}"


def month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's, local midnight, as UTC."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=tz)
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def _types():
    from kefu.record_types import RecordType

    return list(RecordType.objects(active=True).order_by("sort_order", "key"))


def _closed_statuses(record_type) -> list[str]:
    from kefu.workflow import workflow_of

    return list(workflow_of(record_type).closed)


def type_numbers(record_type, start: datetime, end: datetime, now: datetime) -> dict:
    """New, closed and now-overdue counts of one type for ``[start, end)``."""
    collection = get_database()[RECORDS]
    new = collection.count_documents({"type": record_type.key, "created_at": {"$gte": start, "$lt": end}})
    closed_clauses = [{f"status_at.{status}": {"$gte": start, "$lt": end}} for status in _closed_statuses(record_type)]
    closed = collection.count_documents({"type": record_type.key, "$or": closed_clauses}) if closed_clauses else 0
    overdue = collection.count_documents({"type": record_type.key, "sla_due": {"$lte": now, "$type": "date"}})
    return {"new": new, "closed": closed, "overdue": overdue}


def week_numbers(now: datetime, start: datetime, end: datetime) -> list[str]:
    """Lines of the weekly summary: per type with any activity, and the total."""
    lines, totals = [], {"new": 0, "closed": 0, "overdue": 0}
    for record_type in _types():
        numbers = type_numbers(record_type, start, end, now)
        if not any(numbers.values()):
            continue
        for key in totals:
            totals[key] += numbers[key]
        lines.append(f"{record_type.name}：新增 {numbers['new']}，关闭 {numbers['closed']}，当前逾期 {numbers['overdue']}")
    lines.append(f"合计：新增 {totals['new']}，关闭 {totals['closed']}，当前逾期 {totals['overdue']}")
    return lines


def clock_rates(record_type, start: datetime, end: datetime) -> list[dict]:
    """Per SLA clock: how many were completed in ``[start, end)`` and how many of them on time."""
    from kefu.sla import clocks_of

    rows = []
    collection = get_database()[RECORDS]
    for clock in clocks_of(record_type):
        met_path = f"sla.{clock.key}.met_at"
        pipeline = [
            {"$match": {"type": record_type.key, met_path: {"$gte": start, "$lt": end}}},
            {"$group": {"_id": None, "done": {"$sum": 1},
                        "on_time": {"$sum": {"$cond": [{"$lte": [f"${met_path}", f"$sla.{clock.key}.due_at"]}, 1, 0]}}}},
        ]
        result = next(collection.aggregate(pipeline), None) or {"done": 0, "on_time": 0}
        rows.append({"clock": clock.key, "name": clock.name, "done": result["done"], "on_time": result["on_time"],
                     "rate": round(result["on_time"] / result["done"], 4) if result["done"] else None})
    return rows


def archive_monthly(month: str, now: datetime | None = None) -> dict:
    """Compute ``month``'s report, store it in ``reports`` and return it (with ``summary_lines``)."""
    from flask import current_app

    now = now or utcnow()
    tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
    start, end = month_bounds(month, tz)
    types, lines = [], []
    for record_type in _types():
        numbers = type_numbers(record_type, start, end, now)
        rates = clock_rates(record_type, start, end)
        types.append({"type": record_type.key, "name": record_type.name, **numbers, "clocks": rates})
        if numbers["new"] or numbers["closed"]:
            rated = [r for r in rates if r["rate"] is not None]
            rate_text = "；".join(f"{r['name']}按时率 {r['rate']:.0%}" for r in rated)
            lines.append(f"{record_type.name}：新增 {numbers['new']}，关闭 {numbers['closed']}"
                         + (f"（{rate_text}）" if rate_text else ""))
    report = {"_id": f"monthly:{month}", "kind": "monthly", "month": month, "generated_at": now, "types": types,
              "summary_lines": lines or [f"{month} 无新增或关闭的记录"]}
    get_database()[REPORTS].replace_one({"_id": report["_id"]}, report, upsert=True)
    return report
