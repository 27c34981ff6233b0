"""Connects the domain's background signals (``kefu.core.background``) to the jobs that do the work."""
from __future__ import annotations

from jobs import enqueue
from jobs.exports import run_export
from jobs.schema import queue_choice_migration, queue_list_indexes
from jobs.sweep import queue_prompt_sweep
from kefu.core import background


def queue_sweep(record_ids: list[str]):
    """Records whose alert is due already: have them swept now, not at the next tick — by the one prompt sweep,
    which takes every record due (``jobs.sweep``), so the ids need not travel."""
    return queue_prompt_sweep()


def queue_export(export_id: str):
    """Build a large export in the background; the stable job id makes a repeat a no-op."""
    return enqueue(run_export, export_id, job_id=f"export-{export_id}")


def connect() -> None:
    """Connect every receiver (idempotent: blinker keeps one connection per receiver)."""
    background.alerts_due.connect(queue_sweep)
    background.export_requested.connect(queue_export)
    background.choices_renamed.connect(queue_choice_migration)
    background.record_type_saved.connect(queue_list_indexes)
