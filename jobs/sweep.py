"""The prompt sweep: records whose alert is due already when they are saved (registered late, imported from
history, a level raised to the top) are swept within seconds instead of at the next tick — by one job, however
many records a burst of saves brings.

A save marks nothing of its own: a record whose ``sla_next`` has come *is* due (``kefu.notify.reminders``). Once it
has committed, the save asks for the job (``queue_prompt_sweep``) under a stable id (rq's ``unique``): while that
job waits, a further save's request is refused — the job has not looked yet, so it will see that save — and a burst
of 10,000 saves queues one job, not 10,000. The job sweeps everything due, batch by batch, asking again until
nothing is. While it *runs*, a save may commit after its last look: then the request queues the follow-up under the
second id, which sweeps after it. So at most one prompt sweep waits; a finished one leaves no record
(``result_ttl=0``) and frees its id for the next save. A request that finds both ids held by jobs not waiting (two
running: more than one worker serves ``default``; a failed job kept for the 任务队列 page, ``FAILED_KEPT_SECONDS``)
or Redis down leaves the record to the ``sla_sweep`` duty of the next minute (``kefu.schedule.duties``).
"""
from __future__ import annotations

import logging

from redis.exceptions import RedisError
from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus

from jobs import DEFAULT_QUEUE, enqueue, get_queue
from jobs.deliver import dispatch
from kefu.notify.reminders import sweep

log = logging.getLogger(__name__)

PROMPT_SWEEP_JOB_IDS = ("sweep-due", "sweep-due-next")
# Long enough to read a failure on the 任务队列 page; meanwhile the other id and the minute's duty sweep.
FAILED_KEPT_SECONDS = 3600


def sweep_due() -> str:
    """Sweep every record whose alert has come (``kefu.notify.reminders.sweep``), then hand what it wrote to the
    outbox to the workers."""
    result = sweep()
    dispatch()
    return result.text()


def queue_prompt_sweep():
    """Have every record due now swept soon, this save's included (call it after the save committed): queue
    ``sweep_due`` on ``default`` under a free id of ``PROMPT_SWEEP_JOB_IDS`` unless a prompt sweep waits that has not
    started yet (see the module docstring). Return the job queued, or None: one waits, both ids are held, or Redis
    cannot be reached (logged, never raised)."""
    try:
        held = Job.fetch_many(PROMPT_SWEEP_JOB_IDS, connection=get_queue(DEFAULT_QUEUE).connection)
    except RedisError as exc:
        log.warning("could not enqueue sweep_due (Redis unreachable: %s); the sla_sweep duty catches up", exc)
        return None
    if any(job is not None and job.get_status(refresh=False) == JobStatus.QUEUED for job in held):
        return None
    for job_id in (job_id for job_id, job in zip(PROMPT_SWEEP_JOB_IDS, held) if job is None):
        try:
            return enqueue(sweep_due, queue=DEFAULT_QUEUE, job_id=job_id, unique=True, result_ttl=0,
                           failure_ttl=FAILED_KEPT_SECONDS)
        except DuplicateJobError:  # another save took this id since we looked: try the other
            continue
    return None
