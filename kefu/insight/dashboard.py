"""The admin home's numbers for the signed-in user and their team (their department).

Every count is one indexed query across record types (the user's own figures and the team's new today counted
per type, for the links to each type's list, and summed): overdue and due today
read the ``sla_due`` index (whose keys include assignee and department), new
and closed per day read ``created`` and ``closed``, unread notifications the
inbox's ``unread`` index. The numbers count the records the user may read
(``kefu.insight.scope``); a role that reads the reports (``view_reports``)
sees them over every record.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from pymongo import ASCENDING, DESCENDING, IndexModel

from kefu.core.db import get_database
from kefu.insight.scope import readable_filter
from kefu.notify.notifications import unread_count
from kefu.org.access import AccessPolicy
from kefu.org.roles import Capability
from kefu.org.structure import Department, active_department_names
from kefu.records.store import RECORDS
from kefu.records.types import RecordType, type_summaries

TREND_DAYS = 30


# The records collection's indexes behind the cross-type counts by day: new and closed per day and department
# (created by kefu.runtime.storage).
RECORD_INDEXES = [
    IndexModel([("created_at", DESCENDING), ("department", ASCENDING)], name="created"),
    IndexModel([("closed_at", DESCENDING), ("department", ASCENDING)], name="closed",
               partialFilterExpression={"closed_at": {"$type": "date"}}),
]


@dataclass
class Dashboard:
    overdue_mine: int
    overdue_team: int
    due_today_mine: int
    due_today_team: int
    new_today_team: int
    unread: int
    department_id: object = None
    department_name: str | None = None
    trend: dict = field(default_factory=dict)  # {"days": [...], "created": [...], "closed": [...]}
    overdue_by_department: list = field(default_factory=list)  # [(department id, name, count)]
    # Per figure (overdue_mine, due_today_mine, new_today_team), (type key, type name, count) largest first: the
    # links to each type's list (its built-in view of the same records).
    per_type: dict = field(default_factory=dict)


def _start_of(day: date, tz) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(timezone.utc)


def counted_scope(access: AccessPolicy) -> dict | None:
    """The records the home page counts for ``access``: every one (None) for a role that reads the reports,
    else those the user may read."""
    return None if access.has(Capability.VIEW_REPORTS.value) else readable_filter(access)


def _within(match: dict, scope: dict | None) -> dict:
    return match if scope is None else {**match, "$and": [scope]}


def _per_day(path: str, since: datetime, team: dict, tz) -> dict[str, int]:
    pipeline = [{"$match": {path: {"$gte": since, "$type": "date"}, **team}},
                {"$group": {"_id": {"$dateToString": {"format": "%Y-%m-%d", "date": f"${path}", "timezone": str(tz)}},
                            "n": {"$sum": 1}}}]
    return {row["_id"]: row["n"] for row in get_database()[RECORDS].aggregate(pipeline)}


def build(user, access: AccessPolicy, now: datetime, tz) -> Dashboard:
    """The numbers of ``user``'s home page at ``now`` over the records ``counted_scope(access)`` selects; the
    team is the user's department (everyone without one). The user's overdue and due today and the team's new
    today are the sums of their counts per type (one query each)."""
    collection = get_database()[RECORDS]
    scope = counted_scope(access)
    department = user.to_mongo().get("department")  # its id as stored: the department itself is not read
    team = _within({"department": department} if department else {}, scope)
    today = now.astimezone(tz).date()
    end_of_today = _start_of(today + timedelta(days=1), tz)
    overdue = _within({"sla_due": {"$lte": now, "$type": "date"}}, scope)
    due_today = _within({"sla_due": {"$gt": now, "$lte": end_of_today, "$type": "date"}}, scope)
    first_day = today - timedelta(days=TREND_DAYS - 1)
    since = _start_of(first_day, tz)
    created, closed = _per_day("created_at", since, team, tz), _per_day("closed_at", since, team, tz)
    days = [(first_day + timedelta(days=n)).isoformat() for n in range(TREND_DAYS)]
    by_department = list(collection.aggregate([{"$match": overdue},
                                               {"$group": {"_id": "$department", "n": {"$sum": 1}}},
                                               {"$sort": {"n": -1}}]))
    per_type = _per_type({
        "overdue_mine": {**overdue, "assignee": user.pk},
        "due_today_mine": {**due_today, "assignee": user.pk},
        "new_today_team": {"created_at": {"$gte": _start_of(today, tz)}, **team},
    })
    total = {name: sum(n for _key, _name, n in counts) for name, counts in per_type.items()}
    names = _department_names([r["_id"] for r in by_department if r["_id"]] + ([department] if department else []))
    return Dashboard(
        overdue_mine=total["overdue_mine"], overdue_team=collection.count_documents({**overdue, **team}),
        due_today_mine=total["due_today_mine"], due_today_team=collection.count_documents({**due_today, **team}),
        new_today_team=total["new_today_team"], unread=unread_count(user.pk),
        department_id=department, department_name=names.get(department),
        trend={"days": [d[5:] for d in days], "created": [created.get(d, 0) for d in days],
               "closed": [closed.get(d, 0) for d in days]},
        overdue_by_department=[(r["_id"], names.get(r["_id"]), r["n"]) for r in by_department],
        per_type=per_type,
    )


def _per_type(matches: dict[str, dict]) -> dict[str, list[tuple[str, str, int]]]:
    """Per name of ``matches``, ``(type key, type name, count)`` of the records it matches, largest first."""
    counted = {name: {r["_id"]: r["n"] for r in get_database()[RECORDS].aggregate(
        [{"$match": match}, {"$group": {"_id": "$type", "n": {"$sum": 1}}}])}
        for name, match in matches.items()}
    names = {summary["key"]: summary["name"] for summary in type_summaries()}
    inactive = [key for counts in counted.values() for key in counts if key not in names]
    if inactive:
        names.update((t.key, t.name) for t in RecordType.objects(key__in=inactive).only("key", "name"))
    return {name: sorted(((key, names.get(key, key), n) for key, n in counts.items()), key=lambda item: -item[2])
            for name, counts in counted.items()}


def _department_names(ids: list) -> dict:
    """``{id: name}`` of these departments: the active ones as this process holds them, others read."""
    wanted = set(ids)
    names = {pk: name for pk, name in active_department_names().items() if pk in wanted}
    missing = [pk for pk in wanted if pk not in names]
    if missing:
        names.update((d.pk, d.name) for d in Department.objects(pk__in=missing))
    return names
