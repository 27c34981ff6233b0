"""Overdue and due-soon records across every record type: the supervisors' 逾期督办 page.

A record is *overdue* when one of its running SLA clocks is past its deadline,
i.e. ``sla_due <= now`` (``kefu.rules.sla`` keeps ``sla_due`` = the earliest running
deadline); *due soon* when a running clock is in its last stretch (an
``sla_open`` element with ``warn_at <= now < due_at``). Both conditions come
from ``kefu.records.query.sla_clauses``, the same ones the per-type lists use.

Every query here starts with that condition, so MongoDB reads the ``sla_due``
(overdue) or ``sla_warn`` (due soon) index and only the matching records —
never the whole collection — and the lists sort by ``sla_due``: the most
overdue first. A person's query is limited to the records they may read
(``SlaListQuery.scope``, from ``kefu.insight.scope.readable_filter``).
Writes (bulk reassign) go through ``kefu.records.write.reassign``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bson import ObjectId
from pymongo import ASCENDING, IndexModel

from kefu.core.clock import aware, utcnow
from kefu.core.db import get_database
from kefu.core.durations import DurationWords, duration_text
from kefu.core.i18n import _l
from kefu.records.query import RecordQuery, sla_clauses
from kefu.records.store import RECORDS
from kefu.records.types import type_summaries
from kefu.rules.levels import DEFAULT_LEVEL_FIELD

OVERDUE = "overdue"
DUE_SOON = "due_soon"
DUE_TODAY = "due_today"
KINDS = (OVERDUE, DUE_SOON, DUE_TODAY)
KIND_LABELS = {OVERDUE: _l("逾期"), DUE_SOON: _l("即将到期"), DUE_TODAY: _l("今日到期")}
GROUPS = ("type", "department", "assignee", "level")
GROUP_LABELS = {"type": _l("按类型"), "department": _l("按部门"), "assignee": _l("按负责人"), "level": _l("按等级")}
# Where each group's value is stored. The level is in the field ``level`` (kefu.rules.levels.DEFAULT_LEVEL_FIELD)
# unless a type names another (``levels.field``): see SlaListQuery.level_fields.
GROUP_PATHS = {"type": "type", "department": "department", "assignee": "assignee",
               "level": f"data.{DEFAULT_LEVEL_FIELD}"}
NONE = "none"  # a filter value meaning "not set" (no department, nobody assigned, no level)
SORT = [("sla_due", ASCENDING), ("_id", ASCENDING)]  # the most overdue first, then a stable order
MAX_PER_PAGE = 200
# What a list row needs: never the encrypted values, the search grams or the timeline.
LIST_FIELDS = {"type": 1, "number": 1, "status": 1, "assignee": 1, "department": 1, "data.level": 1, "sla": 1,
               "sla_open": 1, "sla_due": 1, "version": 1}


# The records collection's indexes behind 逾期督办 across types (created by kefu.runtime.storage). The keys after
# _id let the page count per type, department, assignee and level from the index alone (``counts``) and filter on
# them before reading a document — with who registered the record and from which department, the keys of the
# own and department scopes (kefu.org.access); the due-soon one scans only clocks past their warning time.
RECORD_INDEXES = [
    IndexModel([("sla_due", ASCENDING), ("_id", ASCENDING), ("type", ASCENDING), ("department", ASCENDING),
                ("assignee", ASCENDING), ("data.level", ASCENDING), ("created_department", ASCENDING),
                ("created_by", ASCENDING)], name="sla_due",
               partialFilterExpression={"sla_due": {"$type": "date"}}),
    IndexModel([("sla_open.warn_at", ASCENDING), ("sla_open.due_at", ASCENDING)], name="sla_warn"),
]


def stored_level_fields() -> dict[str, str]:
    """``{type key: field key}`` of the active types whose level is not in the field ``level``."""
    return {t["key"]: t["level_field"] for t in type_summaries() if t["level_field"] != DEFAULT_LEVEL_FIELD}


@dataclass
class SlaListQuery:
    """Which records the page lists: overdue or due soon, optionally of one type, department, assignee, level.

    ``department`` and ``assignee`` are ObjectIds or ``NONE``; ``level`` a level value or ``NONE``.
    ``level_fields``: ``{type key: field key}`` of the types whose level is not in the field ``level``
    (by default as the types are defined: ``stored_level_fields``). ``scope``: the records the person may read
    (``kefu.insight.scope.readable_filter``); None: every record.
    """

    kind: str = OVERDUE
    until: datetime | None = None  # due today: the end of the local day (the caller knows the time zone)
    type: str | None = None
    department: ObjectId | str | None = None
    assignee: ObjectId | str | None = None
    level: str | None = None
    page: int = 1
    per_page: int = 50
    level_fields: dict[str, str] = field(default_factory=stored_level_fields)
    scope: dict | None = None

    def filters(self) -> dict:
        """The set filters as ``{group: value}`` (for links and forms)."""
        return {group: getattr(self, group) for group in GROUPS if getattr(self, group) not in (None, "")}


@dataclass
class Row:
    """One listed record: the document and the clock that makes it overdue (or due soon)."""

    document: dict
    clock_key: str | None
    clock_name: str
    due_at: datetime | None
    late: timedelta  # positive: how late; negative: how long is left
    level: object = None

    @property
    def id(self) -> str:
        return str(self.document["_id"])


def _level_field(query: SlaListQuery, type_key: str | None) -> str:
    return query.level_fields.get(type_key, DEFAULT_LEVEL_FIELD)


def level_path(query: SlaListQuery, type_key: str | None) -> str:
    """The stored path of a type's level."""
    return f"data.{_level_field(query, type_key)}"


def _level_of(query: SlaListQuery, document: dict):
    return (document.get("data") or {}).get(_level_field(query, document.get("type")))


def _level_clause(query: SlaListQuery, value) -> dict:
    """Records at level ``value`` (None: without one), each type's level read where that type keeps it."""
    if query.type or not query.level_fields:
        return {level_path(query, query.type): value}
    return {"$or": [{"type": {"$nin": sorted(query.level_fields)}, GROUP_PATHS["level"]: value}] +
                   [{"type": key, level_path(query, key): value} for key in sorted(query.level_fields)]}


def _level_expression(query: SlaListQuery):
    """The level as a ``$group`` key: ``$data.level``, or a ``$switch`` on the type when a type keeps it
    elsewhere (such records are then read from the documents, not from the index alone)."""
    if not query.level_fields:
        return f"${GROUP_PATHS['level']}"
    return {"$switch": {"branches": [{"case": {"$eq": ["$type", key]}, "then": f"${level_path(query, key)}"}
                                     for key in sorted(query.level_fields)],
                        "default": f"${GROUP_PATHS['level']}"}}


def list_filter(query: SlaListQuery, now: datetime) -> dict:
    """The MongoDB filter: the SLA condition first (it picks the index), then the page's filters and the scope."""
    if query.kind not in KINDS:
        raise ValueError(query.kind)
    window = (query.until - now) if query.kind == DUE_TODAY and query.until is not None else None
    if query.kind == DUE_TODAY and window is None:
        raise ValueError("due_today needs until")
    mongo_filter = dict(sla_clauses(RecordQuery(overdue=query.kind == OVERDUE, due_soon=query.kind == DUE_SOON,
                                                due_within=window), now)[0])
    for group in GROUPS:
        value = getattr(query, group)
        if value in (None, ""):
            continue
        value = None if value == NONE else value
        if group == "level":
            mongo_filter.update(_level_clause(query, value))
        else:
            mongo_filter[GROUP_PATHS[group]] = value
    if query.scope is not None:  # its own $and: the level clause may be an $or of its own
        mongo_filter["$and"] = [query.scope]
    return mongo_filter


def find(query: SlaListQuery, now: datetime | None = None) -> tuple[int, list[Row]]:
    """``(total, page of rows)`` sorted by how late, the most overdue first: a count and a page, both on the
    index the SLA condition picks."""
    now = now or utcnow()
    per_page = max(1, min(int(query.per_page or 50), MAX_PER_PAGE))
    page = max(1, int(query.page or 1))
    mongo_filter = list_filter(query, now)
    collection = get_database()[RECORDS]
    total = collection.count_documents(mongo_filter)
    fields = {**LIST_FIELDS, **{level_path(query, key): 1 for key in query.level_fields}}
    documents = collection.find(mongo_filter, fields, sort=SORT, skip=(page - 1) * per_page, limit=per_page)
    return total, [row_of(document, query, now) for document in documents]


def counts_pipeline(query: SlaListQuery, now: datetime) -> list[dict]:
    """One ``$group`` by (type, department, assignee, level) after the indexed ``$match``; rolled up in Python."""
    return [
        {"$match": list_filter(query, now)},
        {"$group": {"_id": {**{group: f"${path}" for group, path in GROUP_PATHS.items()},
                            "level": _level_expression(query)}, "n": {"$sum": 1}}},
    ]


@dataclass
class Counts:
    """How many records a query matches: ``total`` and ``by[group]`` = ``[(value, n)]``, largest first.

    Values are as stored (a type key, an ObjectId, a level); ``None`` counts the records without one.
    """

    total: int
    by: dict[str, list[tuple[object, int]]]


def counts(query: SlaListQuery, now: datetime | None = None) -> Counts:
    """The query's records counted per type, department, assignee and level (one aggregation; for overdue
    records it reads the ``sla_due`` index only)."""
    now = now or utcnow()
    totals: dict[str, dict] = {group: {} for group in GROUPS}
    total = 0
    for bucket in get_database()[RECORDS].aggregate(counts_pipeline(query, now)):
        total += bucket["n"]
        for group in GROUPS:
            value = bucket["_id"].get(group)
            totals[group][value] = totals[group].get(value, 0) + bucket["n"]
    return Counts(total, {group: sorted(values.items(), key=lambda item: (-item[1], str(item[0])))
                          for group, values in totals.items()})


def row_of(document: dict, query: SlaListQuery, now: datetime) -> Row:
    """The row for ``document``: for an overdue record the clock past its deadline longest ago, for a due-soon
    record the running clock in its last stretch that ends first, for one due today the first clock due by
    ``query.until``."""
    kind, until = query.kind, query.until
    level = _level_of(query, document)
    candidates = []
    for entry in document.get("sla_open") or []:
        due_at, warn_at = aware(entry.get("due_at")), aware(entry.get("warn_at"))
        if due_at is None:
            continue
        overdue = kind == OVERDUE and due_at <= now
        due_soon = kind == DUE_SOON and warn_at is not None and warn_at <= now < due_at
        due_today = kind == DUE_TODAY and until is not None and now < due_at <= until
        if overdue or due_soon or due_today:
            candidates.append((due_at, entry["clock"]))
    if not candidates and document.get("sla_due") is not None:  # stored before sla_open existed
        candidates.append((aware(document["sla_due"]), None))
    if not candidates:
        return Row(document, None, "", None, timedelta(0), level)
    due_at, key = min(candidates, key=lambda item: item[0])
    name = ((document.get("sla") or {}).get(key) or {}).get("name") or key or ""
    return Row(document, key, name, due_at, now - due_at, level)


def lateness_text(row: Row, words: DurationWords | None = None) -> str:
    """``逾期 3 天 4 小时`` for an overdue row, ``剩余 1 小时 20 分钟`` for one due soon."""
    if row.due_at is None:
        return ""
    words = words or DurationWords.current()
    if row.late >= timedelta(0):
        return words.late % {"time": duration_text(row.late, words)}
    return words.left % {"time": duration_text(-row.late, words)}
