"""The indexes of the records collection, the timeline and the audit log: behind every list, filter, sort, search, overdue page and reminder sweep."""
from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from kefu.core.db import get_database
from kefu.records.store import AUDIT, EVENTS, RECORDS


def record_indexes() -> list[IndexModel]:
    """Indexes behind every list, filter, sort and search the screens offer.

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
        IndexModel([("type", ASCENDING), ("grams", ASCENDING)], name="type_grams"),
        # One callback per closing of a record (kefu.rules.callbacks).
        IndexModel([("source.id", ASCENDING), ("source.closed_at", ASCENDING)], unique=True, name="callback_source",
                   partialFilterExpression={"source.id": {"$exists": True}}),
        # Overdue and due-soon lists (kefu.rules.sla), per type and across types, sorted by how late.
        IndexModel([("type", ASCENDING), ("sla_due", ASCENDING), ("_id", ASCENDING)], name="type_sla_due"),
        # Across types; the keys after _id let the overdue page count per type, department, assignee and
        # level from the index alone (kefu.insight.overdue.counts) and filter on them before reading a document.
        IndexModel([("sla_due", ASCENDING), ("_id", ASCENDING), ("type", ASCENDING), ("department", ASCENDING),
                    ("assignee", ASCENDING), ("data.level", ASCENDING)], name="sla_due",
                   partialFilterExpression={"sla_due": {"$type": "date"}}),
        # Due soon ($elemMatch warn_at <= now < due_at): both bounds apply to the same sla_open element, so
        # only the clocks past their warning time are scanned and the overdue ones are skipped in the index.
        IndexModel([("type", ASCENDING), ("sla_open.warn_at", ASCENDING), ("sla_open.due_at", ASCENDING)],
                   name="type_sla_warn"),
        IndexModel([("sla_open.warn_at", ASCENDING), ("sla_open.due_at", ASCENDING)], name="sla_warn"),
        IndexModel([("sla_live", ASCENDING)], name="sla_live", partialFilterExpression={"sla_live": {"$gt": 0}}),
        # Cross-type counts by day (the dashboard: new and closed per day; kefu.insight.dashboard).
        IndexModel([("created_at", DESCENDING), ("department", ASCENDING)], name="created"),
        IndexModel([("closed_at", DESCENDING), ("department", ASCENDING)], name="closed",
                   partialFilterExpression={"closed_at": {"$type": "date"}}),
        # The reminder sweep (kefu.notify.reminders): records whose next alert has come.
        IndexModel([("sla_next", ASCENDING)], name="sla_next", partialFilterExpression={"sla_next": {"$type": "date"}}),
        # Callbacks due on a day (kefu.schedule.duties: 今日回访).
        IndexModel([("source.due_at", ASCENDING)], name="callback_due",
                   partialFilterExpression={"source.due_at": {"$type": "date"}}),
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


def ensure_record_indexes() -> None:
    database = get_database()
    ensure_indexes(database[RECORDS], record_indexes())
    database[EVENTS].create_index([("record_id", ASCENDING), ("at", ASCENDING)], name="record_at")
    database[AUDIT].create_index([("record_id", ASCENDING), ("at", ASCENDING)], name="record_at")
    database[AUDIT].create_index([("at", DESCENDING)], name="at")
