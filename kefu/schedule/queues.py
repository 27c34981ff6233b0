"""What the background half is doing, for the 任务队列 page: queues (with how long their oldest job has waited),
workers, schedulers, failed jobs.

The queues, in the order a worker serves them (``QUEUE_NAMES``): ``schedule`` (the scheduler's tick and the duties
it starts, each due at its minute: no bulk job waits in front of them), ``default`` (bulk work: the prompt sweep
after a burst of saves, exports, deadline recomputes, choice migrations) and ``notify`` (one job per email or
webhook delivery).

Views of rq's own Redis records, requeue/delete of a failed job, and the
clean-up of jobs left "started" by a worker that died (``clean_started``).
``QueueUnavailable`` when Redis cannot be reached (the page says so).
"""
from __future__ import annotations

from dataclasses import dataclass

from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.cron import CronScheduler
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from kefu.core.clock import aware, utcnow
from kefu.core.errors import DomainError, NotFound
from kefu.core.i18n import _l

SCHEDULE_QUEUE = "schedule"
DEFAULT_QUEUE = "default"
NOTIFY_QUEUE = "notify"
QUEUE_NAMES = (SCHEDULE_QUEUE, DEFAULT_QUEUE, NOTIFY_QUEUE)
QUEUE_LABELS = {SCHEDULE_QUEUE: _l("定时任务"), DEFAULT_QUEUE: _l("后台任务"), NOTIFY_QUEUE: _l("消息发送")}
FAILED_SHOWN = 50


def _heartbeat(scheduler):
    # A scheduler read back from Redis carries its heartbeat as a value; a live one has the method.
    value = scheduler.last_heartbeat
    return value() if callable(value) else value


class QueueUnavailable(DomainError):
    code = "queue_unavailable"


@dataclass
class FailedJob:
    id: str
    queue: str
    function: str
    args: str
    ended_at: object
    error: str


def worker_alive(connection, name: str) -> bool:
    """True while the rq worker ``name`` heartbeats (its record in Redis lives) and has not registered its death."""
    last_heartbeat, death = connection.hmget(Worker.redis_worker_namespace_prefix + name, "last_heartbeat", "death")
    return last_heartbeat is not None and death is None


def clean_started(connection) -> None:
    """Move every job left "started" by a worker that stopped heartbeating to the failed jobs, as abandoned (rq's
    registry clean-up; ``kefu.runtime.worker`` keeps a live worker's lease on its job to half a minute)."""
    for name in QUEUE_NAMES:
        StartedJobRegistry(name, connection=connection).cleanup()


def oldest_wait(queue: Queue, now) -> float | None:
    """Seconds the job at the head of ``queue`` has waited since it was queued (rq's ``enqueued_at``); None when
    nothing waits. The head is the oldest job: rq appends, and only a retry is put in front."""
    # A few ids from the head, in one round trip: an id whose job record expired meanwhile is skipped.
    for job in Job.fetch_many(queue.get_job_ids(0, 5), connection=queue.connection):
        if job is not None and job.enqueued_at is not None:
            return max(0.0, (now - aware(job.enqueued_at)).total_seconds())
    return None


def overview(connection) -> dict:
    """Queue lengths with the wait of each queue's oldest job, workers, cron schedulers and the newest failed jobs
    (stale started jobs cleaned first)."""
    try:
        clean_started(connection)
        queues = []
        failed: list[FailedJob] = []
        now = utcnow()
        for name in QUEUE_NAMES:
            queue = Queue(name, connection=connection)
            registry = FailedJobRegistry(queue=queue)
            queues.append({"name": name, "label": QUEUE_LABELS[name], "queued": queue.count,
                           "waited": oldest_wait(queue, now), "started": StartedJobRegistry(queue=queue).count,
                           "scheduled": ScheduledJobRegistry(queue=queue).count, "failed": registry.count})
            for job_id in registry.get_job_ids(0, FAILED_SHOWN - 1, desc=True):
                job = Job.fetch(job_id, connection=connection) if connection.exists(f"rq:job:{job_id}") else None
                if job is None:
                    continue
                failed.append(FailedJob(id=job.id, queue=name, function=job.func_name or "",
                                        args=", ".join(map(repr, job.args or ()))[:200], ended_at=aware(job.ended_at),
                                        error=(job.exc_info or "")[-3000:]))
        workers = [{"name": w.name, "state": w.get_state(), "queues": ", ".join(w.queue_names()),
                    "current": (w.get_current_job_id() or ""), "heartbeat": aware(w.last_heartbeat),
                    "done": w.successful_job_count, "failed": w.failed_job_count}
                   for w in Worker.all(connection=connection)]
        schedulers = [{"name": s.name, "heartbeat": aware(_heartbeat(s))} for s in CronScheduler.all(connection)]
    except RedisError as exc:
        raise QueueUnavailable(_l("无法连接 Redis：%(error)s", error=str(exc))) from exc
    failed.sort(key=lambda job: job.ended_at.timestamp() if job.ended_at else 0, reverse=True)
    return {"queues": queues, "workers": workers, "schedulers": schedulers, "failed": failed[:FAILED_SHOWN]}


def _failed_job(connection, job_id: str) -> tuple[Job, FailedJobRegistry]:
    try:
        job = Job.fetch(job_id, connection=connection)
    except Exception:
        raise NotFound(_l("没有这个任务：%(id)s", id=job_id)) from None
    registry = FailedJobRegistry(queue=Queue(job.origin, connection=connection))
    if job_id not in registry.get_job_ids():
        raise NotFound(_l("任务 %(id)s 不在失败列表中", id=job_id))
    return job, registry


def requeue_failed(connection, job_id: str) -> None:
    job, registry = _failed_job(connection, job_id)
    registry.requeue(job)


def delete_failed(connection, job_id: str) -> None:
    job, registry = _failed_job(connection, job_id)
    registry.remove(job, delete_job=True)
