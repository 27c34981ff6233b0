"""A background export (``kefu.insight.export_jobs``)."""
from __future__ import annotations

from jobs import run_noting_failure
from kefu.insight.export_jobs import fail, run


def run_export(job_id: str) -> str:
    job = run_noting_failure(run, fail, job_id)
    return f"export {job_id}: {job.rows_done if job else 0} rows"
