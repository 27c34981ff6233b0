"""A background export (``kefu.insight.export_jobs``)."""
from __future__ import annotations

from kefu.insight.export_jobs import fail, run


def run_export(job_id: str) -> str:
    try:
        job = run(job_id)
    except Exception as exc:
        fail(job_id, f"{type(exc).__name__}: {exc}")
        raise
    return f"export {job_id}: {job.rows_done if job else 0} rows"
