"""The scheduler's tick and the duties it starts (``kefu.schedule.duties``)."""
from __future__ import annotations

from datetime import datetime, timezone

from jobs import DEFAULT_QUEUE, enqueue
from jobs.calendar import queue_unfinished
from jobs.deliver import dispatch
from kefu.schedule.duties import due_now, run


def tick() -> str:
    """Claim every duty occurrence that is due and queue it; hand due deliveries to the workers; queue again the
    deadline recomputes of calendar edits whose job never reached Redis, was lost or failed (``jobs.calendar``).

    Safe to run from several schedulers at once: a claim is won once (``kefu.schedule.duties.claim``).
    """
    started = []
    for duty, occurrence in due_now():
        stamp = occurrence.astimezone(timezone.utc).strftime("%Y%m%dT%H%M")
        enqueue(run_duty, duty.name, occurrence.isoformat(), queue=DEFAULT_QUEUE, job_id=f"duty-{duty.name}-{stamp}")
        started.append(duty.name)
    handed = dispatch()
    recomputes = queue_unfinished()
    return (f"duties started: {', '.join(started) or 'none'}; deliveries handed out: {handed}; "
            f"calendar recomputes queued: {recomputes}")


def run_duty(name: str, occurrence: str) -> str:
    """Run one claimed occurrence of a duty (its outcome is recorded in ``duty_runs``), then dispatch what
    it wrote to the outbox."""
    result = run(name, datetime.fromisoformat(occurrence))
    dispatch()
    return result
