"""The scheduler's tick and the duties it starts (``kefu.schedule.duties``), both on the ``schedule`` queue: a
worker serves it before the bulk work of ``default`` (``kefu.runtime.worker``)."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import partial

from flask import current_app
from rq import get_current_job

from jobs import SCHEDULE_QUEUE, calendar, enqueue, schema
from jobs.deliver import dispatch
from kefu.schedule.duties import due_now, run
from kefu.schedule.queues import clean_started, worker_alive


def tick(now: datetime | None = None) -> str:
    """Move the started jobs of dead workers to the failed ones; mark abandoned the duty runs whose worker is gone;
    claim every duty occurrence that is due (an abandoned one again) and queue it; hand due deliveries to the
    workers; queue again the deadline recomputes of calendar edits whose job never reached Redis, was lost or
    failed (``jobs.calendar``) and the choice renames whose job was lost (``jobs.schema``). ``now``: the moment to
    tick at (default: the clock).

    Safe to run from several schedulers at once: a claim is won once (``kefu.schedule.duties.claim``).
    """
    connection = current_app.extensions["kefu_redis"]
    clean_started(connection)
    started = []
    for duty, occurrence in due_now(now, worker_alive=partial(worker_alive, connection)):
        stamp = occurrence.astimezone(timezone.utc).strftime("%Y%m%dT%H%M")
        enqueue(run_duty, duty.name, occurrence.isoformat(), queue=SCHEDULE_QUEUE, job_id=f"duty-{duty.name}-{stamp}")
        started.append(duty.name)
    handed = dispatch()
    recomputes = calendar.queue_unfinished()
    migrations = schema.queue_unfinished(now)
    return (f"duties started: {', '.join(started) or 'none'}; deliveries handed out: {handed}; "
            f"calendar recomputes queued: {recomputes}; choice migrations queued again: {migrations}")


def run_duty(name: str, occurrence: str) -> str:
    """Run one claimed occurrence of a duty in this worker (its outcome is recorded in ``duty_runs``), then
    dispatch what it wrote to the outbox."""
    job = get_current_job()
    result = run(name, datetime.fromisoformat(occurrence), worker=job.worker_name if job else None)
    dispatch()
    return result
