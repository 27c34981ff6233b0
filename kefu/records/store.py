"""The records collection and its neighbours (events, audit log, counters), and reading one record.

Records are plain documents in the ``records`` collection (pymongo, not MongoEngine: their fields are data, not
code)::

    {_id, type, number, status, assignee, department, customer,
     data: {field: value}, pii: {field: ciphertext}, bidx: {field: blind index},
     grams: [...], version, created_at, created_by, updated_at, updated_by,
     status_at: {status: when it was last entered}, closed_at}

Only the records area writes them: people's changes through ``kefu.records.write``, the engine-owned keys (SLA
state, alerts, approvals, callbacks, level rules applied) through ``kefu.records.engine_state``."""
from __future__ import annotations

from bson import ObjectId
from bson.errors import InvalidId

from kefu.core.db import get_database
from kefu.core.errors import NotFound
from kefu.core.i18n import _l
from kefu.org.access import ACCESS_PROJECTION, AccessPolicy
from kefu.org.roles import Action

RECORDS = "records"
EVENTS = "record_events"
AUDIT = "audit_log"
COUNTERS = "counters"


def object_id(record_id) -> ObjectId:
    """``record_id`` (str or ObjectId) as an ObjectId; ``NotFound`` when it cannot be one."""
    try:
        return record_id if isinstance(record_id, ObjectId) else ObjectId(str(record_id))
    except (InvalidId, TypeError) as exc:
        raise NotFound(_l("记录不存在")) from exc


def get_record(type_key: str, record_id) -> dict:
    """The stored document; ``NotFound`` when it does not exist (or is of another type)."""
    document = get_database()[RECORDS].find_one({"_id": object_id(record_id), "type": type_key})
    if document is None:
        raise NotFound(_l("记录不存在"))
    return document


def get_record_for(type_key: str, record_id, access: AccessPolicy, action: str = Action.READ.value) -> dict:
    """The stored document when ``access`` allows ``action`` on it: ``NotFound`` when it does not exist or the
    user may not read it (no existence leak), ``PermissionDenied`` when they may read it but not ``action`` it."""
    document = get_record(type_key, record_id)
    access.check(document, action)
    return document


def readable_ids(record_ids, access: AccessPolicy) -> set[str]:
    """Which of ``record_ids`` (of any types) name records ``access`` may read, as strings (one query)."""
    wanted = [object_id(record_id) for record_id in record_ids]
    if not wanted:
        return set()
    found = get_database()[RECORDS].find({"_id": {"$in": wanted}}, ACCESS_PROJECTION)
    return {str(document["_id"]) for document in found if access.permits(document, Action.READ.value)}

