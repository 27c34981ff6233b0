"""What happens after a record is saved: the rules of its type run, in a fixed order.

- Levels (``kefu.rules.levels``) first: the rules whose fields changed raise the level (never lower it); a raise is
  a save of its own (``records.system_update``) that runs this lifecycle again for the new level. A new
  timeline event (``after_event``) counts the record's communications.
- Approvals (``kefu.rules.approvals``): entering the ``on_status`` opens a request for the amount;
  ``before_save`` refuses entering it without an amount or leaving it while a request is pending.
- Callbacks (``kefu.rules.callbacks``): entering the ``on_status`` (closing) creates the linked 回访;
  a callback's recorded result acts on its original (``kefu.rules.levels.customer_rejected``).
- SLA clocks (``kefu.rules.sla``) are recomputed last, because they read the
  level and the status the rules before them may have changed; an alert due
  already is swept at once in the background (``jobs.sweep``).

Every step is idempotent and reads the record as stored, so running it twice
— or after a crash between steps — changes nothing more.
"""
from __future__ import annotations

from kefu.core import background
from kefu.core.clock import aware, utcnow


def before_save(record_type, current: dict | None, after: dict, changed) -> None:
    """Refuse a change the rules of the type forbid (``ValidationFailed``), before anything is written.

    ``current`` is the stored document (None for a new record), ``after`` the record's values after the change.
    """
    from kefu.rules import approvals
    approvals.before_save(record_type, current, after, changed)


def after_save(record_type, document: dict, before: dict | None, changed: set, actor) -> dict:
    """Run the rules ``changed`` keys of ``document`` trigger; return the record as stored afterwards.

    ``before`` holds the values before the change (None for a new record).
    """
    from kefu.rules import approvals, callbacks, levels, sla
    levels.after_save(record_type, document, before, changed, actor)
    approvals.after_save(record_type, document, before, changed, actor)
    callbacks.after_save(record_type, document, before, changed, actor)
    stored = sla.refresh(record_type, document["_id"])
    _sweep_soon(stored)
    return stored


def _sweep_soon(document: dict | None) -> None:
    """An alert due already (a record registered late, a level raised to 重大): sweep it now, not at the next
    tick (``kefu.core.background.alerts_due``); while Redis is down the failure is logged and the tick catches up."""
    due = (document or {}).get("sla_next")
    if due is None or aware(due) > utcnow():
        return
    background.alerts_due.send([str(document["_id"])])


def after_event(type_key: str, record_id, kind: str, actor) -> None:
    """Run the rules a timeline event added by a person (a call, a visit …) triggers."""
    from kefu.rules import levels
    levels.after_event(type_key, record_id, kind, actor)
