"""Recomputing the running deadlines after a calendar edit, in the background (``kefu.calendar.recompute``).

``queue_recompute`` is the calendar's change listener (wired by ``create_app``): the admin request only
records the request and queues ``recompute_deadlines``, which works through the running records in batches,
noting its progress for the calendar screen. When Redis is down the request stays in MongoDB and the
scheduler's tick queues it once Redis is back (``queue_unfinished``), as it does for a job that died or failed.
"""
from __future__ import annotations

import time

from jobs import DEFAULT_QUEUE, TIMEOUTS, enqueue
from kefu.calendar import recompute
from kefu.calendar.workcalendar import get_calendar
from kefu.rules.sla import recompute_live

BATCH = 500
# Under the queue's job timeout with room for the last batch: a longer recompute continues in a new job.
SLICE_SECONDS = TIMEOUTS[DEFAULT_QUEUE] / 2


def _queue(version: int, after_id=None) -> bool:
    """Queue the job for ``version``; False when Redis cannot be reached. The job id names the version and the
    resume point; a job queued twice finds nothing to claim the second time (``recompute.claim``)."""
    job_id = f"calendar-recompute-{version}" + (f"-{after_id}" if after_id else "")
    if enqueue(recompute_deadlines, version, queue=DEFAULT_QUEUE, job_id=job_id) is None:
        return False
    recompute.mark_queued(version)
    return True


def queue_recompute(first, last) -> None:
    """The calendar listener: have every running deadline recomputed on the calendar as it is now.

    All running clocks are recomputed whatever the days ``first``…``last`` touched: a deadline is counted from
    its start, and an edit anywhere before it moves it.
    """
    _queue(recompute.request().version)


def recompute_deadlines(version: int) -> str:
    """Recompute the running deadlines for calendar ``version``, resuming after the last record done.

    Idempotent: a finished, superseded or elsewhere running recompute is left alone. Stops when a newer edit
    supersedes it; after ``SLICE_SECONDS`` it queues its own continuation. A failure is recorded (the tick
    retries it) and raised, so rq keeps it too.
    """
    claimed = recompute.claim(version)
    if claimed is None:
        return f"calendar recompute {version}: nothing to do"
    base, deadline = claimed.done, time.monotonic() + SLICE_SECONDS
    running, resume_at = True, claimed.after_id

    def progress(done: int, total: int, last_id) -> bool:
        nonlocal running, resume_at
        running, resume_at = recompute.advance(version, base + done, total, last_id), last_id
        return running and time.monotonic() < deadline

    try:
        get_calendar(at_least=version)  # this worker's copy may be up to 2 s older than the edit
        count, complete = recompute_live(claimed.after_id, batch=BATCH, progress=progress)
    except Exception as exc:
        recompute.fail(version, f"{type(exc).__name__}: {exc}")
        raise
    if not running:
        return f"calendar recompute {version}: superseded after {count} records"
    if not complete:
        recompute.release(version)
        _queue(version, resume_at)
        return f"calendar recompute {version}: {count} records, continues in a new job"
    recompute.finish(version)
    return f"calendar recompute {version}: {base + count} records"


def queue_unfinished() -> int:
    """Queue the recomputes that never reached the queue, were lost or died; return how many were queued."""
    return sum(_queue(version) for version in recompute.unfinished())
