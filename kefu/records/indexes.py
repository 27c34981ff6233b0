"""The indexes of the records collection, the timeline and the audit log.

The records area declares those behind every list, filter, sort and search; an area whose own queries need more
declares them next to those queries as ``RECORD_INDEXES`` (the SLA clocks, callbacks, the overdue page, the reminder
sweep, the dashboard), and ``kefu.runtime.storage`` creates them all at start.
"""
from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from kefu.core.db import get_database
from kefu.records.idempotency import IDEMPOTENCY_KEYS, idempotency_indexes
from kefu.records.store import AUDIT, EVENTS, RECORDS


def record_indexes() -> list[IndexModel]:
    """The records area's indexes: behind every list, filter, sort and search the screens offer.

    Lists sort by ``created_at`` then ``_id`` (``sort_spec``), so the list
    indexes end with both: MongoDB then returns pages in index order instead
    of sorting every matching record in memory.
    """
    newest = [("created_at", DESCENDING), ("_id", DESCENDING)]
    return [
        IndexModel([("type", ASCENDING), ("number", ASCENDING)], unique=True, name="type_number"),
        IndexModel([("type", ASCENDING), *newest], name="type_created"),
        IndexModel([("type", ASCENDING), ("updated_at", DESCENDING)], name="type_updated"),
        IndexModel([("type", ASCENDING), ("status", ASCENDING), *newest], name="type_status"),
        IndexModel([("type", ASCENDING), ("assignee", ASCENDING), *newest], name="type_assignee"),
        IndexModel([("type", ASCENDING), ("department", ASCENDING), *newest], name="type_department"),
        IndexModel([("type", ASCENDING), ("customer", ASCENDING)], name="type_customer"),
        IndexModel([("type", ASCENDING), ("created_by", ASCENDING)], name="type_created_by"),
        # The department scope of kefu.org.access: records registered by the user's department.
        IndexModel([("type", ASCENDING), ("created_department", ASCENDING), *newest], name="type_created_department"),
        IndexModel([("type", ASCENDING), ("departments", ASCENDING), *newest], name="type_departments"),
        # The approvals waiting on a title (kefu.org.access: what an approver may read).
        IndexModel([("approval.approver", ASCENDING), ("approval.state", ASCENDING)], name="approval_approver"),
        IndexModel([("type", ASCENDING), ("grams", ASCENDING)], name="type_grams"),
        # Configured fields: one wildcard index serves an equality or range
        # filter on any data field and any blind index, whatever the admin adds.
        IndexModel([("$**", ASCENDING)], name="data_wildcard",
                   wildcardProjection={"data": 1, "bidx": 1}),
    ]


def ensure_indexes(collection, models: list[IndexModel]) -> None:
    """Create ``models`` on ``collection``, first dropping an index of the same name whose keys changed."""
    existing = collection.index_information()
    for model in models:
        name = model.document["name"]
        if name in existing and dict(existing[name]["key"]) != dict(model.document["key"]):
            collection.drop_index(name)
    collection.create_indexes(models)


def ensure_record_indexes(declared_elsewhere: list[IndexModel]) -> None:
    """Create the indexes of the records collection — the records area's own and those other areas declare for
    their queries (``declared_elsewhere``, collected by ``kefu.runtime.storage``) — and of the timeline, the audit log
    and the idempotency keys (creating each collection before the first transaction writes to it)."""
    database = get_database()
    ensure_indexes(database[RECORDS], [*record_indexes(), *declared_elsewhere])
    database[EVENTS].create_index([("record_id", ASCENDING), ("at", ASCENDING)], name="record_at")
    database[AUDIT].create_index([("record_id", ASCENDING), ("at", ASCENDING)], name="record_at")
    database[AUDIT].create_index([("at", DESCENDING)], name="at")
    ensure_indexes(database[IDEMPOTENCY_KEYS], idempotency_indexes())
