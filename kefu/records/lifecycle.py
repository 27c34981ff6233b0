"""What happens around a record's save: the hooks of the registered sections run, in registration order.

The composition root registers them (``kefu.rules.register_sections``): workflow (refuses moves it does not
allow), levels (raise the level; a raise is a save of its own that runs this lifecycle again), approvals (open a
request; refuse leaving ``on_status`` while one is pending), callback (create the 回访; act on its answer), then
sla last — its clocks read the level and status the sections before it may have changed — and reminders.

The hooks run inside the save's transaction (``kefu.records.write``): a save and everything its hooks write commit
together. Every hook is idempotent and reads the record as stored, so running it twice — a transaction retried
after a write conflict — changes nothing more. An alert that is due already after a save (a record registered late, a level raised to the
top) is announced once the save has committed (``kefu.core.background.alerts_due``: a prompt sweep in the
background).
"""
from __future__ import annotations

from kefu.core.background import alerts_due
from kefu.core.clock import aware, utcnow
from kefu.core.db import after_commit
from kefu.records.sections import parsed, sections
from kefu.records.store import get_record
from kefu.records.types import get_record_type


def before_save(record_type, current: dict | None, after: dict, changed, *, system: bool = False) -> None:
    """Refuse a change the sections of the type forbid (``ValidationFailed``), before anything is written.

    ``current`` is the stored document (None for a new record), ``after`` the record's values after the change;
    ``system``: a move of the rules engine's own (``write.system_update``), outside the workflow's allowed moves.
    """
    for section in sections():
        section.before_save(record_type, parsed(record_type, section.key), current, after, set(changed),
                            system=system)


def after_save(record_type, document: dict, before: dict | None, changed: set, actor) -> dict:
    """Run the hooks ``changed`` keys of ``document`` trigger; return the record as stored afterwards.

    ``before`` holds the values before the change (None for a new record).
    """
    stored = None
    for section in sections():
        fresh = section.after_save(record_type, parsed(record_type, section.key), document, before, changed, actor)
        stored = fresh if fresh is not None else stored
    if stored is None:
        stored = get_record(record_type.key, document["_id"])
    _alert_soon(stored)
    return stored


def _alert_soon(document: dict | None) -> None:
    """An alert due already: have it swept now, not at the next tick (with no sweeper connected, or Redis down,
    the tick catches up)."""
    due = (document or {}).get("sla_next")
    if due is None or aware(due) > utcnow():
        return
    record_id = str(document["_id"])
    after_commit(lambda: alerts_due.send([record_id]))


def after_event(type_key: str, record_id, kind: str, actor) -> None:
    """Run the hooks a timeline event added by a person (a call, a visit …) triggers."""
    record_type = get_record_type(type_key, active_only=False)
    for section in sections():
        section.after_event(record_type, parsed(record_type, section.key), record_id, kind, actor)
