"""An import's background phases (``kefu.insight.imports``): its dry run, then its writes."""
from __future__ import annotations

from jobs import enqueue
from kefu.insight.imports import fail, run


def run_import(import_id: str) -> str:
    """Do what the import waits for; idempotent (a finished phase is left, written rows are skipped)."""
    try:
        job = run(import_id)
    except Exception as exc:
        fail(import_id, f"{type(exc).__name__}: {exc}")
        raise
    return f"import {import_id}: {job.status if job else 'gone'}"


def queue_import(import_id: str, phase: str):
    """Queue the import's ``phase`` (``check`` or ``write``); None when the queue cannot be reached."""
    return enqueue(run_import, import_id, job_id=f"import-{import_id}-{phase}")
