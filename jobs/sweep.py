"""A prompt sweep of records just saved, so their alerts go out within seconds instead of at the next tick."""
from __future__ import annotations

from bson import ObjectId

from jobs.deliver import dispatch
from kefu.notify.reminders import sweep


def sweep_records(record_ids: list[str]) -> str:
    """Sweep these records (ids as str), then hand what it wrote to the outbox to the workers."""
    result = sweep(record_ids=[ObjectId(i) for i in record_ids])
    dispatch()
    return result.text()
