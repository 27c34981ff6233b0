"""rq jobs: small idempotent functions taking ids, and ``enqueue``, the one way to queue them.

Queues: ``default`` (the scheduler's tick, duties, prompt sweeps) and
``notify`` (one job per email or webhook delivery, retried with backoff).
Every job finds its work in MongoDB, so a lost or repeated job changes
nothing: the next tick does what is left (``kefu.schedule.duties``, ``kefu.notify.reminders``).
Jobs run inside the worker's app (``flask --app app kefu worker``).
"""
from __future__ import annotations

import logging

from flask import current_app
from redis.exceptions import RedisError
from rq import Queue, Retry

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "default"
NOTIFY_QUEUE = "notify"
QUEUES = (DEFAULT_QUEUE, NOTIFY_QUEUE)
TIMEOUTS = {DEFAULT_QUEUE: 600, NOTIFY_QUEUE: 60}
DEFAULT_RETRY_INTERVALS = (30, 120, 600)


def get_queue(name: str = DEFAULT_QUEUE) -> Queue:
    return Queue(name, connection=current_app.extensions["kefu_redis"])


def retry_policy(attempts: int) -> Retry:
    """rq ``Retry`` for ``attempts`` tries in all, with the configured backoff (``KEFU_RETRY_INTERVALS``)."""
    intervals = list(current_app.config.get("KEFU_RETRY_INTERVALS") or DEFAULT_RETRY_INTERVALS)
    return Retry(max=max(1, attempts - 1), interval=intervals)


def enqueue(function, *args, queue: str = DEFAULT_QUEUE, job_id: str | None = None, retry: Retry | None = None,
            **kwargs):
    """Queue ``function(*args, **kwargs)``; return the job, or None when Redis cannot be reached.

    A failure is logged, never raised: the web app keeps working while Redis is down and the scheduler's
    next tick finds the work in MongoDB. ``job_id`` (letters, digits, ``-``, ``_``) makes a repeat a no-op
    while the first job's record lives.
    """
    try:
        return get_queue(queue).enqueue(function, *args, job_id=job_id, retry=retry,
                                        job_timeout=TIMEOUTS.get(queue, 600), result_ttl=3600, failure_ttl=7 * 86400,
                                        **kwargs)
    except RedisError as exc:
        log.warning("could not enqueue %s on %s (Redis unreachable: %s); the scheduler's next tick catches up",
                    getattr(function, "__name__", function), queue, exc)
        return None
