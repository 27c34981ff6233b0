"""The indexes of every area's collections, created when an app starts and before its first write.

The unique keys among them are what makes every alert, delivery and duty run happen once: they must exist before
the first write, not be built by whichever process touches a collection first (a race with concurrent inserts).
"""
from __future__ import annotations

from kefu.notify.notifications import Delivery, Notification, Task
from kefu.records.attachments import ensure_attachment_indexes
from kefu.records.indexes import ensure_record_indexes
from kefu.schedule.duties import DutyRun


def ensure_collections() -> None:
    """Create the indexes of the collections written with pymongo and of the MongoEngine documents whose unique
    keys make work happen once (the other MongoEngine documents create their own on first use)."""
    ensure_record_indexes()
    ensure_attachment_indexes()
    for document in (Notification, Delivery, Task, DutyRun):
        document.ensure_indexes()
