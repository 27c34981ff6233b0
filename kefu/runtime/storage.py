"""The indexes of every area's collections, created when an app starts and before its first write.

Each area declares the indexes its own queries need next to those queries (``RECORD_INDEXES`` for the records
collection); this module, above every area, collects and creates them. The unique keys among them are what makes
every callback, alert, delivery and duty run happen once: they must exist before the first write, not be built by
whichever process touches a collection first (a race with concurrent inserts).
"""
from __future__ import annotations

from kefu import knowledge
from kefu.insight import dashboard, imports_targets, overdue
from kefu.notify import reminders
from kefu.notify.notifications import Delivery, Notification, Task
from kefu.org import loyalty
from kefu.org.roles import AccessRole, ensure_shipped_roles
from kefu.records.attachments import ensure_attachment_indexes
from kefu.records.indexes import ensure_record_indexes
from kefu.rules import callbacks, sla, spawn
from kefu.rules.loyalty import RECORD_INDEXES as GRADE_CALLBACK_INDEXES
from kefu.schedule import contacts
from kefu.schedule.duties import DutyRun
from kefu.surveys import answers as survey_answers

# Indexes of the records collection declared outside the records area, by the module whose queries use them.
DECLARED_RECORD_INDEXES = (*sla.RECORD_INDEXES, *callbacks.RECORD_INDEXES, *reminders.RECORD_INDEXES,
                           *overdue.RECORD_INDEXES, *dashboard.RECORD_INDEXES, *imports_targets.RECORD_INDEXES,
                           *spawn.RECORD_INDEXES, *contacts.RECORD_INDEXES,
                           *GRADE_CALLBACK_INDEXES)


def ensure_collections() -> None:
    """Create the indexes of the collections written with pymongo and of the MongoEngine documents whose unique
    keys make work happen once (the other MongoEngine documents create their own on first use); write the shipped
    roles a database lacks (every permission check reads them) and the shipped membership settings."""
    ensure_record_indexes(list(DECLARED_RECORD_INDEXES))
    ensure_attachment_indexes()
    knowledge.ensure_indexes()
    loyalty.ensure_indexes()
    survey_answers.ensure_indexes()
    for document in (Notification, Delivery, Task, DutyRun, AccessRole):
        document.ensure_indexes()
    ensure_shipped_roles()
    loyalty.ensure_shipped_settings()
