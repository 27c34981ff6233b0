"""Background work survives outages, with real workers (``flask --app app kefu worker``) on real Redis and MongoDB:
the worker's rq scheduler is back within a minute of a Redis outage (persistent Redis, as the launcher's), a worker
whose job ends while Redis is down stays and runs the next job, a duty run whose worker was killed is marked
abandoned and run again exactly once, and a killed worker's "started" job leaves the queue page as abandoned."""
from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta, timezone

from bson import ObjectId
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from kefu.runtime.embedded import EmbeddedRedis, free_port
from kefu.schedule.queues import QUEUE_NAMES
from tests.test_reminders import probe, users  # noqa: F401  (fixtures)
from tests.test_workers import clone_records, overdue_records, processes, wait_for  # noqa: F401  (fixture)


# The workers' lease (KEFU_WORKER_LEASE_SECONDS, 30 s by default) in the tests that wait for a killed worker's to
# lapse: what they prove does not depend on its length.
LEASE_SECONDS = 10


def scheduler_pids(connection) -> set[str]:
    """The pids of the live rq schedulers (the worker's subprocess that queues delayed and retried jobs)."""
    return {connection.hget(key, "pid").decode() for key in connection.scan_iter("rq:scheduler:*")
            if connection.type(key) == b"hash"}


def test_the_workers_scheduler_is_back_within_a_minute_of_a_redis_outage(app_config, tmp_path, processes):
    # Persistent, as the launcher's: the dead scheduler's lock on its queues outlives the restart.
    servers = [EmbeddedRedis(tmp_path / "redis", free_port(), persistent=True).start()]
    group = processes(REDIS_URL=servers[0].url)
    try:
        worker = group.start("worker", "worker")
        connection = Redis.from_url(servers[0].url)
        before = wait_for(lambda: scheduler_pids(connection), 30, what=lambda: f"the scheduler\n{group.logs()}")
        locks = {key: connection.get(key) for key in connection.scan_iter("rq:scheduler-lock:*")}
        assert len(locks) == len(QUEUE_NAMES)  # one per queue it serves
        time.sleep(1.5)  # the append-only file is written every second
        servers[0].kill()
        time.sleep(4)  # the scheduler process polls Redis every second: it has died by now
        servers.append(EmbeddedRedis(tmp_path / "redis", servers[0].port, persistent=True).start())
        connection = Redis.from_url(servers[-1].url)
        back = time.monotonic()
        assert {key: connection.get(key) for key in locks} == locks  # held still, by the dead scheduler's name
        delayed = Queue("default", connection=connection).enqueue_in(timedelta(seconds=1), "os.getpid")
        wait_for(lambda: delayed.get_status(refresh=True) == JobStatus.FINISHED, 60,
                 what=lambda: f"the delayed job to run (status {delayed.get_status(refresh=True)})\n{group.logs()}")
        assert time.monotonic() - back < 60
        assert scheduler_pids(connection) and scheduler_pids(connection).isdisjoint(before)  # a new process
        assert worker.poll() is None, group.logs()
    finally:
        group.stop()
        for server in servers:
            server.stop()


def test_a_worker_whose_job_ends_while_redis_is_down_stays_and_runs_the_next_job(app_config, tmp_path, processes):
    servers = [EmbeddedRedis(tmp_path / "redis", free_port(), persistent=False).start()]
    group = processes(REDIS_URL=servers[0].url)
    try:
        worker = group.start("worker", "worker", "--queue", "notify")
        connection = Redis.from_url(servers[0].url)
        slow = Queue("notify", connection=connection).enqueue("time.sleep", 4)
        wait_for(lambda: slow.id in StartedJobRegistry("notify", connection=connection).get_job_ids(cleanup=False),
                 30, interval=0.05, what=lambda: f"the job to start\n{group.logs()}")
        servers[0].kill()
        # The job ends while Redis is away: rq cannot record its outcome. rq tries several writes in turn (success,
        # failure, dependents, state), each retried by redis-py for seconds: ~8 s here, over 20 s on a busy machine.
        wait_for(lambda: "outcome is not recorded" in group.logs(), 90, interval=0.5,
                 what=lambda: f"the worker to notice\n{group.logs()}")
        time.sleep(2)
        assert worker.poll() is None, group.logs()
        servers.append(EmbeddedRedis(tmp_path / "redis", servers[0].port, persistent=False).start())
        connection = Redis.from_url(servers[-1].url)
        later = Queue("notify", connection=connection).enqueue("os.getpid")
        wait_for(lambda: later.get_status(refresh=True) == JobStatus.FINISHED, 30,
                 what=lambda: f"the next job to run (status {later.get_status(refresh=True)})\n{group.logs()}")
        assert later.return_value() == worker.pid and worker.poll() is None, group.logs()
    finally:
        group.stop()
        for server in servers:
            server.stop()


def test_a_duty_run_whose_worker_was_killed_is_abandoned_and_run_again_once(app, client, admin, probe, users, db,
                                                                            processes):
    from jobs import SCHEDULE_QUEUE, enqueue
    from jobs.schedule import run_duty, tick
    from kefu.schedule.duties import DUTY_BY_NAME, abandon_stale, claim
    from kefu.schedule.queues import worker_alive
    from tests.test_workers import other_duties_already_run

    other_duties_already_run(app)
    first = overdue_records(client, admin, users, 1)[0]
    db.notifications.delete_many({})  # the prompt sweep is not what this test is about
    six_hours_ago = datetime.now(timezone.utc) - timedelta(hours=6)
    db.records.update_one({"_id": ObjectId(first["id"])},
                          {"$set": {"sla.resolve.alerts": {}, "sla_next": six_hours_ago}})
    clone_records(db, first["id"], 2999)
    expected = 2 * 3000
    duty = DUTY_BY_NAME["sla_sweep"]
    occurrence = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    run_key = f"sla_sweep:{occurrence:%Y%m%dT%H%M}"
    connection = app.extensions["kefu_redis"]
    with app.app_context():
        assert claim(duty, occurrence, occurrence)
        enqueue(run_duty, "sla_sweep", occurrence.isoformat(), queue=SCHEDULE_QUEUE, job_id="duty-sla_sweep-killed")
    group = processes(KEFU_WORKER_LEASE_SECONDS=str(LEASE_SECONDS))
    worker = group.start("worker", "worker", "--queue", "schedule")
    started = wait_for(lambda: db.duty_runs.find_one({"_id": run_key, "worker": {"$ne": None}}), 60, interval=0.01,
                       what=lambda: f"the run to start\n{group.logs()}")
    with app.app_context():  # its worker is alive: not abandoned, however often the schedulers look
        assert abandon_stale(occurrence + timedelta(seconds=30), lambda name: worker_alive(connection, name)) == []
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    stopped_at = db.notifications.count_documents({})
    assert stopped_at < expected, "the sweep finished before the kill: the test proves nothing"
    assert db.duty_runs.find_one({"_id": run_key})["state"] == "running"

    # Once the worker's heartbeat has lapsed, the tick marks the run abandoned and queues it again, once.
    wait_for(lambda: not worker_alive(connection, started["worker"]), LEASE_SECONDS + 10,
             what=lambda: "the killed worker's heartbeat to lapse")
    with app.app_context():
        assert "duties started: sla_sweep" in tick(occurrence + timedelta(seconds=30))
        assert "duties started: none" in tick(occurrence + timedelta(seconds=31))
    abandoned = db.duty_runs.find_one({"_id": run_key})
    assert abandoned["state"] == "running" and abandoned["attempts"] == 2 and abandoned["worker"] is None
    group.start("worker", "worker", "--queue", "schedule", "--burst").wait(120)
    done = db.duty_runs.find_one({"_id": run_key})
    assert done["state"] == "done" and done["attempts"] == 2, group.logs()
    assert db.notifications.count_documents({}) == expected
    assert len(db.notifications.distinct("key")) == expected


def test_a_killed_workers_started_job_leaves_the_queue_page_as_abandoned(app, client, make_user, sign_in, processes):
    make_user("root", role="admin")
    sign_in("root")
    connection = app.extensions["kefu_redis"]
    group = processes(KEFU_WORKER_LEASE_SECONDS=str(LEASE_SECONDS))
    worker = group.start("worker", "worker", "--queue", "notify")
    slow = Queue("notify", connection=connection).enqueue("time.sleep", 300, job_timeout=600)
    registry = StartedJobRegistry("notify", connection=connection)
    wait_for(lambda: slow.id in registry.get_job_ids(cleanup=False), 30,
             what=lambda: f"the job to start\n{group.logs()}")
    worker_key = f"rq:worker:{Job.fetch(slow.id, connection=connection).worker_name}"
    wait_for(lambda: 0 < connection.ttl(worker_key) <= LEASE_SECONDS, 5,
             what=lambda: "the worker's lease on its job")
    page = client.get("/admin/queue/").get_data(as_text=True)
    no_worker = 'class="text-danger">没有运行中的工作进程'
    assert "time.sleep" not in page and no_worker not in page  # running, and its worker listed
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()

    def page_shows_it_abandoned():
        page = client.get("/admin/queue/").get_data(as_text=True)
        return (f'data-job="{slow.id}"' in page and "AbandonedJobError" in page
                and no_worker in page and page)  # and the worker no longer listed

    wait_for(page_shows_it_abandoned, LEASE_SECONDS + 15, interval=1, what=lambda: "the job on the failed list")
    assert registry.get_job_ids(cleanup=False) == []
    assert Job.fetch(slow.id, connection=connection).get_status() == JobStatus.FAILED
