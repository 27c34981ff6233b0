"""Connects the domain's background signals (``kefu.core.background``) to the jobs that do the work."""
from __future__ import annotations

from jobs import enqueue
from jobs.exports import run_export
from jobs.schema import queue_choice_migration
from jobs.sweep import sweep_records
from kefu.core import background


def queue_sweep(record_ids: list[str]):
    """Sweep records whose alert is due already now, not at the next tick."""
    return enqueue(sweep_records, list(record_ids))


def queue_export(export_id: str):
    """Build a large export in the background; the stable job id makes a repeat a no-op."""
    return enqueue(run_export, export_id, job_id=f"export-{export_id}")


def connect() -> None:
    """Connect every receiver (idempotent: blinker keeps one connection per receiver)."""
    background.alerts_due.connect(queue_sweep)
    background.export_requested.connect(queue_export)
    background.choices_renamed.connect(queue_choice_migration)
