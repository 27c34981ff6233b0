"""rq jobs: small idempotent functions taking ids, and ``enqueue``, the one way to queue them.

Queues (``kefu.schedule.queues``), in the order a worker serves them: ``schedule`` (the scheduler's tick and the
duties it starts), ``default`` (bulk work: the prompt sweep, exports, deadline recomputes, choice migrations) and
``notify`` (one job per email or webhook delivery, retried with backoff).
Every job finds its work in MongoDB, so a lost or repeated job changes
nothing: the next tick does what is left (``kefu.schedule.duties``, ``kefu.notify.reminders``).
Jobs run inside the worker's app (``flask --app app kefu worker``: one app per worker process, no fork per job).
"""
from __future__ import annotations

import logging

from flask import current_app
from redis.exceptions import RedisError
from rq import Queue, Retry

from kefu.schedule.queues import DEFAULT_QUEUE, NOTIFY_QUEUE, SCHEDULE_QUEUE

log = logging.getLogger(__name__)

TIMEOUTS = {SCHEDULE_QUEUE: 600, DEFAULT_QUEUE: 600, NOTIFY_QUEUE: 60}
DEFAULT_RETRY_INTERVALS = (30, 120, 600)
RESULT_TTL = 3600
FAILURE_TTL = 7 * 86400


def get_queue(name: str = DEFAULT_QUEUE) -> Queue:
    return Queue(name, connection=current_app.extensions["kefu_redis"])


def retry_policy(attempts: int) -> Retry:
    """rq ``Retry`` for ``attempts`` tries in all, with the configured backoff (``KEFU_RETRY_INTERVALS``)."""
    intervals = list(current_app.config.get("KEFU_RETRY_INTERVALS") or DEFAULT_RETRY_INTERVALS)
    return Retry(max=max(1, attempts - 1), interval=intervals)


def enqueue(function, *args, queue: str = DEFAULT_QUEUE, job_id: str | None = None, retry: Retry | None = None,
            unique: bool = False, result_ttl: int = RESULT_TTL, failure_ttl: int = FAILURE_TTL, **kwargs):
    """Queue ``function(*args, **kwargs)``; return the job, or None when Redis cannot be reached.

    An unreachable Redis is logged, never raised: the web app keeps working while Redis is down and the scheduler's
    next tick finds the work in MongoDB. ``job_id``: letters, digits, ``-``, ``_``. Without ``unique`` a second
    job with the same id replaces the first one's record (each job is idempotent); with it the second raises rq's
    ``DuplicateJobError`` while the first one's record lives — queued, running, then ``result_ttl`` seconds after
    it succeeded (0: not at all) or ``failure_ttl`` after it failed.
    """
    try:
        return get_queue(queue).enqueue(function, *args, job_id=job_id, retry=retry, unique=unique,
                                        job_timeout=TIMEOUTS.get(queue, 600), result_ttl=result_ttl,
                                        failure_ttl=failure_ttl, **kwargs)
    except RedisError as exc:
        log.warning("could not enqueue %s on %s (Redis unreachable: %s); the scheduler's next tick catches up",
                    getattr(function, "__name__", function), queue, exc)
        return None


def run_noting_failure(run, fail, target_id: str):
    """``run(target_id)`` for a job working on a stored target (an export, an import): an exception is noted on the
    target (``fail(target_id, text)``, which its owner sees) before it is raised again for rq to record."""
    try:
        return run(target_id)
    except Exception as exc:
        fail(target_id, f"{type(exc).__name__}: {exc}")
        raise
