"""What happens after a record is saved: the rules of its type run, in a fixed order.

- Levels (``kefu.levels``) first: the rules whose fields changed raise the level (never lower it); a raise is
  a save of its own (``records.system_update``) that runs this lifecycle again for the new level. A new
  timeline event (``after_event``) counts the record's communications.
- Approvals (``kefu.approvals``): entering the ``on_status`` opens a request for the amount;
  ``before_save`` refuses entering it without an amount or leaving it while a request is pending.
- Callbacks (``kefu.callbacks``): entering the ``on_status`` (closing) creates the linked 回访;
  a callback's recorded result acts on its original (``kefu.levels.customer_rejected``).
- SLA clocks (``kefu.sla``) are recomputed last, because they read the
  level and the status the rules before them may have changed.

Every step is idempotent and reads the record as stored, so running it twice
— or after a crash between steps — changes nothing more.
"""
from __future__ import annotations


def before_save(record_type, current: dict | None, after: dict, changed) -> None:
    """Refuse a change the rules of the type forbid (``ValidationFailed``), before anything is written.

    ``current`` is the stored document (None for a new record), ``after`` the record's values after the change.
    """
    from kefu import approvals

    approvals.before_save(record_type, current, after, changed)


def after_save(record_type, document: dict, before: dict | None, changed: set, actor) -> dict:
    """Run the rules ``changed`` keys of ``document`` trigger; return the record as stored afterwards.

    ``before`` holds the values before the change (None for a new record).
    """
    from kefu import approvals, callbacks, levels, sla

    levels.after_save(record_type, document, before, changed, actor)
    approvals.after_save(record_type, document, before, changed, actor)
    callbacks.after_save(record_type, document, before, changed, actor)
    return sla.refresh(record_type, document["_id"])


def after_event(type_key: str, record_id, kind: str, actor) -> None:
    """Run the rules a timeline event added by a person (a call, a visit …) triggers."""
    from kefu import levels

    levels.after_event(type_key, record_id, kind, actor)
