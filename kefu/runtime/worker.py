"""The rq worker of ``flask kefu worker``: rq's ``SimpleWorker`` with a pulse short enough to survive outages.

- **A job costs no fork and no app start.** ``SimpleWorker`` runs each job in the worker's own process, in the app
  ``flask kefu worker`` built once (its MongoDB client, copies of the calendar and the record types): a tiny job
  pays rq's bookkeeping in Redis and its own work only — 120–330 no-op jobs/s and 60–130 prompt sweeps with nothing
  due per second on a shared two-core machine (``bench/import_bench.py``).
- **Its scheduler comes back within a minute.** rq's scheduler process (delayed jobs, retries) dies in a Redis
  outage, and only the worker's maintenance starts it again — every 10 minutes at rq's default. Here maintenance
  runs every ``MAINTENANCE_SECONDS`` (it also cleans the queues' registries, one worker at a time under rq's lock),
  and an idle worker wakes every ``WAKE_SECONDS`` to see whether it is due; while Redis is away it tries again
  every ``RECONNECT_SECONDS``. rq's lock on the queues names the scheduler, which keeps its name across restarts:
  a persistent Redis that kept the dead scheduler's lock gives it back at the same worker's next maintenance.
- **A job that ends while Redis is away does not stop the worker** (``execute_job``; rq would quit, and the
  launcher with it): the worker waits for Redis and goes on.
- **A killed worker's job is noticed within ``PULSE_TTL`` seconds.** A ``SimpleWorker`` runs the job in its own
  process and so, in rq, stops heartbeating until the job ends: its job stays "started" (and the worker listed)
  for the job's timeout plus a minute after a ``kill -9``. Here a thread heartbeats six times per lease while
  a job runs, with a lease of ``KEFU_WORKER_LEASE_SECONDS`` (``PULSE_TTL``, 30 s, by default): when it stops, rq's registry cleanup moves the job to the failed
  jobs as abandoned and the worker's record expires (``kefu.schedule.duties`` re-runs a duty it held).
"""
from __future__ import annotations

import threading
import time

from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.worker import WorkerStatus

from kefu.core.config import DEFAULT_WORKER_LEASE_SECONDS

MAINTENANCE_SECONDS = 30
WAKE_SECONDS = 15
RECONNECT_SECONDS = 10.0
PULSE_TTL = DEFAULT_WORKER_LEASE_SECONDS  # the lease by default (KEFU_WORKER_LEASE_SECONDS), renewed 6 times in it


class KefuWorker(SimpleWorker):
    """Runs jobs in this process (no fork after the MongoDB client exists), see the module docstring."""

    max_connection_wait_time = RECONNECT_SECONDS

    def __init__(self, queues, connection, lease_seconds: int = PULSE_TTL, **kwargs):
        self.lease_seconds = lease_seconds
        # rq waits for a job ``worker_ttl - 15`` seconds at a time and looks at maintenance between two waits.
        super().__init__(queues, connection=connection, maintenance_interval=MAINTENANCE_SECONDS,
                         worker_ttl=WAKE_SECONDS + 15, **kwargs)

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        """The lease of the worker and its job while it runs, renewed by the pulse thread."""
        return self.lease_seconds

    def execute_job(self, job, queue):
        """Run ``job`` here with the pulse. A job that ends while Redis is away does not stop the worker (rq's
        catch-all would, and the launcher with it): the worker says so, waits until Redis answers and goes on.
        rq then has no outcome for that job — its record lapses to abandoned, and what it wrote to MongoDB stays."""
        try:
            execution = self.prepare_execution(job)
            stop = threading.Event()
            pulse = threading.Thread(target=self._pulse, args=(job, execution, stop), name="kefu-pulse",
                                     daemon=True)
            pulse.start()
            try:
                self.perform_job(job, queue, execution)
            finally:
                stop.set()
                pulse.join()
            self.set_state(WorkerStatus.IDLE)
        except RedisError as exc:
            self.log.error("Worker %s: Redis went away while job %s ran (%s): its outcome is not recorded in rq; "
                           "waiting for Redis", self.name, job.id, exc)
            self._await_redis()

    def _await_redis(self) -> None:
        while not self._stop_requested:
            try:
                self.connection.ping()
                return
            except RedisError:
                time.sleep(RECONNECT_SECONDS)

    def _pulse(self, job, execution, stop: threading.Event) -> None:
        while not stop.wait(max(1, self.lease_seconds // 6)):
            try:
                with self.connection.pipeline() as pipeline:
                    self.heartbeat(self.lease_seconds, pipeline=pipeline)
                    execution.heartbeat(job.started_job_registry, self.lease_seconds, pipeline=pipeline)
                    pipeline.execute()
            except RedisError as exc:  # the job goes on; the next pulse tries again
                self.log.warning("Worker %s: heartbeat of job %s failed: %s", self.name, job.id, exc)
