"""An import's background phases (``kefu.insight.imports``): its dry run, then its writes."""
from __future__ import annotations

from jobs import enqueue, run_noting_failure
from kefu.insight.imports import fail, run


def run_import(import_id: str) -> str:
    """Do what the import waits for; idempotent (a finished phase is left, written rows are skipped)."""
    job = run_noting_failure(run, fail, import_id)
    return f"import {import_id}: {job.status if job else 'gone'}"


def queue_import(import_id: str, phase: str):
    """Queue the import's ``phase`` (``check`` or ``write``); None when the queue cannot be reached."""
    return enqueue(run_import, import_id, job_id=f"import-{import_id}-{phase}")
