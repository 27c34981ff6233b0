"""The indexes of the records collection, the timeline and the audit log.

The records area declares those behind every list, filter, sort and search — fixed ones for the core fields, and
one per sortable list column of each large record type (``list_sort_indexes``, derived from the definitions); an
area whose own queries need more declares them next to those queries as ``RECORD_INDEXES`` (the SLA clocks,
callbacks, the overdue page, the reminder sweep, the dashboard), and ``kefu.runtime.storage`` creates them all at
start. The list sort indexes follow the definitions and the types' sizes, so they are built in the background
(``sync_list_indexes``: after a type is saved, and nightly), never while a process starts: a build on a large
collection would hold every web and worker process starting at that moment.
"""
from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from kefu.core.db import get_database
from kefu.records.idempotency import IDEMPOTENCY_KEYS, idempotency_indexes
from kefu.records.query import sortable, tiebreak
from kefu.records.store import AUDIT, EVENTS, RECORDS
from kefu.records.types import active_record_types

LIST_INDEX_PREFIX = "list_"
LIST_INDEX_MIN_RECORDS = 10_000  # a smaller type is sorted in memory quickly enough (a few milliseconds)
MAX_LIST_INDEXES = 24  # MongoDB allows 64 indexes on a collection; the fixed ones and other areas' take ~25


def record_indexes() -> list[IndexModel]:
    """The records area's indexes: behind every list, filter, sort and search the screens offer.

    Lists sort by ``created_at`` then ``_id`` by default, and by a column
    then its tiebreak (``kefu.records.query.sort_spec``), so the list indexes
    end with both: MongoDB then returns pages in index order — for a filter on
    the field, sorted by registration, and for a sort by the field — instead
    of sorting every matching record in memory. The number is unique within a
    type (``type_number`` serves its sort without a tiebreak).
    """
    newest = [("created_at", DESCENDING), ("_id", DESCENDING)]  # = tiebreak(<field>, ASCENDING)
    return [
        IndexModel([("type", ASCENDING), ("number", ASCENDING)], unique=True, name="type_number"),
        IndexModel([("type", ASCENDING), *newest], name="type_created"),
        IndexModel([("type", ASCENDING), ("updated_at", DESCENDING), ("_id", DESCENDING)], name="type_updated"),
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


def list_sort_indexes(min_records: int = LIST_INDEX_MIN_RECORDS) -> list[IndexModel]:
    """One index per sortable configured list column of each active type holding at least ``min_records`` records
    (at most ``MAX_LIST_INDEXES``, in the types' order): ``{data.<key>: 1, created_at: -1, _id: -1}`` over that
    type's records only (a partial index), which serves the sort by the column in both directions and a filter on
    it sorted by registration. The core columns' indexes are fixed (``record_indexes``)."""
    records = get_database()[RECORDS]
    models = []
    for record_type in active_record_types():
        if min_records and records.count_documents({"type": record_type.key}, limit=min_records) < min_records:
            continue
        for definition in record_type.active_fields:
            if definition.list and sortable(definition):
                models.append(IndexModel([(definition.path, ASCENDING), *tiebreak(definition.path, ASCENDING)],
                                         name=f"{LIST_INDEX_PREFIX}{record_type.key}_{definition.key}",
                                         partialFilterExpression={"type": record_type.key}))
    return models[:MAX_LIST_INDEXES]


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


def sync_list_indexes() -> tuple[int, int]:
    """Make the records collection hold exactly the list sort indexes the definitions and sizes call for now
    (``list_sort_indexes``): drop those of a column or type no longer listed or large, build the missing ones;
    return ``(built, dropped)``. Idempotent."""
    records = get_database()[RECORDS]
    wanted = list_sort_indexes()
    names = {model.document["name"] for model in wanted}
    existing = records.index_information()
    dropped = [name for name in existing if name.startswith(LIST_INDEX_PREFIX) and name not in names]
    for name in dropped:
        records.drop_index(name)
    if wanted:
        ensure_indexes(records, wanted)
    return len(names - set(existing)), len(dropped)
