"""Real background processes: schedulers and workers as subprocesses (``flask --app app kefu scheduler|worker``)
on the test's MongoDB and Redis — exactly once with 2 schedulers and 3 workers, a worker killed with SIGKILL
in the middle of a sweep, Redis stopped and started again."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from bson import ObjectId

from kefu.runtime.embedded import EmbeddedRedis, free_port
from tests.conftest import token_headers
from tests.test_channels import Robot, configure, smtp_server  # noqa: F401  (fixture)
from tests.test_reminders import new_record, probe, users  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition, timeout: float, interval: float = 0.1, what=lambda: "condition"):
    """Poll ``condition`` until it is truthy; on timeout fail with ``what()`` — called then, so logs and counts
    describe the moment of failure, not the moment of the call."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what()}")


class Processes:
    """Background ``flask --app app kefu …`` processes on the test's servers and database."""

    def __init__(self, app_config: dict, tmp_path: Path, **extra_env):
        self.env = {**os.environ, "MONGODB_URI": app_config["MONGODB_URI"], "MONGODB_DB": app_config["MONGODB_DB"],
                    "REDIS_URL": app_config["REDIS_URL"], "SECRET_KEY": app_config["SECRET_KEY"],
                    "KEFU_DATA_KEY": app_config["KEFU_DATA_KEY"], "KEFU_TIMEZONE": "Asia/Shanghai",
                    "KEFU_RETRY_INTERVALS": "1,1,1", "PYTHONUNBUFFERED": "1", **extra_env}
        self.tmp_path = tmp_path
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}-{len(self.started)}.log", "wb")
        process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "kefu", *args], cwd=ROOT,
                                   env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append((name, process))
        return process

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted(self.tmp_path.glob("*.log")))

    def stop(self):
        for _name, process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _name, process in self.started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes(app_config, tmp_path):
    made = []

    def make(**extra_env):
        made.append(Processes(app_config, tmp_path, **extra_env))
        return made[-1]

    yield make
    for group in made:
        group.stop()


def other_duties_already_run(app) -> None:
    """Mark the current and the next occurrence of every duty but the SLA sweep as done, the way a scheduler
    leaves them: the weekly summary or the 09:00 follow-ups must not add messages to a test that counts the
    sweep's, whatever the hour the suite runs at."""
    from zoneinfo import ZoneInfo

    from kefu.calendar.workcalendar import get_calendar
    from kefu.schedule.duties import DUTIES, DutyRun, RunState, claim

    now = datetime.now(timezone.utc)
    with app.app_context():
        tz, calendar = ZoneInfo(app.config["KEFU_TIMEZONE"]), get_calendar()
        for duty in DUTIES:
            if duty.at is None:
                continue
            for occurrence in (duty.latest(now, calendar, tz), duty.next_after(now, calendar, tz)):
                if occurrence is not None and claim(duty, occurrence, now):
                    DutyRun.objects(duty=duty.name, occurrence=occurrence).update(set__state=RunState.DONE)


def overdue_records(client, admin, users, count: int) -> list[dict]:
    received = datetime.now(timezone.utc) - timedelta(hours=30)
    return [new_record(client, admin, received, users) for _ in range(count)]


def test_two_schedulers_and_three_workers_send_each_reminder_once(app, client, admin, probe, users, db, processes,
                                                                  smtp_server):
    controller, inbox = smtp_server
    robot = Robot([(200, {"errcode": 0})])
    try:
        configure(app, smtp_host="127.0.0.1", smtp_port=controller.port, smtp_from="kefu@example.com",
                  staff_webhook_url=robot.url, quiet_enabled=False)
        other_duties_already_run(app)
        records = overdue_records(client, admin, users, 25)
        group = processes(KEFU_TICK_SECONDS="1")
        for _ in range(2):
            group.start("scheduler", "scheduler", "--interval", "1")
        for _ in range(3):
            group.start("worker", "worker")
        expected = 2 * len(records)  # agent + supervisor, per record
        wait_for(lambda: db.deliveries.count_documents({"status": "sent"}) == expected + len(records), 90,
                 what=lambda: f"{expected} emails and {len(records)} webhook posts sent, "
                 f"deliveries now {sorted((d['channel'], d['status']) for d in db.deliveries.find())}\n{group.logs()}")
        with app.app_context():
            from kefu.schedule.queues import overview

            running = overview(app.extensions["kefu_redis"])
        assert len(running["schedulers"]) == 2 and len(running["workers"]) == 3
        assert all(s["heartbeat"] for s in running["schedulers"])
        time.sleep(4)  # a few more ticks from both schedulers: nothing more may come
        assert db.notifications.count_documents({"kind": "overdue"}) == expected
        assert len(db.notifications.distinct("key")) == db.notifications.count_documents({})
        assert len(inbox.messages) == expected
        assert sorted(to for tos, _m in inbox.messages for to in tos) == sorted(
            ["agent@kefu.example.com", "supervisor@kefu.example.com"] * len(records))
        assert len(robot.received) == len(records)
        numbers = sorted(p["text"]["content"].split("：")[0] for _path, _t, p in robot.received)
        assert numbers == sorted(f"【已逾期】提醒测试 {r['number']}" for r in records)
        assert db.deliveries.count_documents({"attempts": {"$gt": 1}}) == 0
        runs = list(db.duty_runs.find({"duty": "sla_sweep"}))
        assert runs and len({r["_id"] for r in runs}) == len(runs)
    finally:
        robot.stop()


def clone_records(db, template_id, count: int) -> None:
    """``count`` more records shaped exactly like ``template_id`` (as the services stored it), new ids and numbers:
    many records past their deadline at once without thousands of API calls."""
    template = db.records.find_one({"_id": ObjectId(template_id)})
    batch = []
    for index in range(count):
        document = {**template, "_id": ObjectId(), "number": f"{template['number']}-{index:05d}"}
        batch.append(document)
    db.records.insert_many(batch)


def test_a_worker_killed_mid_sweep_leaves_nothing_lost_and_nothing_doubled(app, client, admin, probe, users, db,
                                                                           processes):
    from jobs import SCHEDULE_QUEUE, enqueue
    from jobs.schedule import run_duty
    from kefu.schedule.duties import DUTY_BY_NAME, claim

    first = overdue_records(client, admin, users, 1)[0]
    db.notifications.delete_many({})  # the prompt sweep is not what this test is about
    db.records.update_one({"_id": ObjectId(first["id"])},
                          {"$set": {"sla.resolve.alerts": {}, "sla_next": datetime.now(timezone.utc) - timedelta(hours=6)}})
    clone_records(db, first["id"], 3999)
    total = 4000
    expected = 2 * total
    duty = DUTY_BY_NAME["sla_sweep"]
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    with app.app_context():
        assert claim(duty, now, now)
        enqueue(run_duty, "sla_sweep", now.isoformat(), queue=SCHEDULE_QUEUE, job_id="duty-sla_sweep-killed")
    group = processes()
    worker = group.start("worker", "worker", "--queue", "schedule")
    partial = wait_for(lambda: 0 < db.notifications.count_documents({}) < expected and
                       db.notifications.count_documents({}), 60, interval=0.01,
                       what=lambda: f"the sweep to be under way\n{group.logs()}")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    stopped_at = db.notifications.count_documents({})
    assert partial <= stopped_at < expected, "the sweep finished before the kill: the test proves nothing"
    assert db.duty_runs.find_one({"_id": f"sla_sweep:{now:%Y%m%dT%H%M}"})["state"] == "running"

    # The next minute's sweep, by another worker, finishes the work.
    later = now + timedelta(minutes=1)
    with app.app_context():
        assert claim(duty, later, later)
        enqueue(run_duty, "sla_sweep", later.isoformat(), queue=SCHEDULE_QUEUE, job_id="duty-sla_sweep-next")
    group.start("worker", "worker", "--queue", "schedule", "--burst").wait(120)
    assert db.duty_runs.find_one({"_id": f"sla_sweep:{later:%Y%m%dT%H%M}"})["state"] == "done"
    assert db.notifications.count_documents({}) == expected
    assert len(db.notifications.distinct("key")) == expected
    assert db.records.count_documents({"sla.resolve.alerts.overdue": {"$exists": True}}) == total


def test_while_redis_is_down_records_are_saved_and_the_sweep_catches_up(app_config, tmp_path, caplog):
    from rq import SimpleWorker

    from app import create_app
    from jobs.schedule import tick
    from kefu.schedule.queues import QUEUE_NAMES

    own_redis = EmbeddedRedis(tmp_path / "redis", free_port(), persistent=True).start()
    app = create_app({**app_config, "REDIS_URL": own_redis.url})
    client = app.test_client()
    from kefu.calendar.workcalendar import seed_calendar
    from kefu.core.db import get_database
    from seed.demo import seed_demo

    with app.app_context():
        seed_demo()
        seed_calendar()
    db = get_database()
    users = {u["username"]: u["_id"] for u in db.users.find({}, {"username": 1})}
    headers = token_headers(client, "admin")
    from tests.test_reminders import PROBE

    assert client.post("/api/v1/types", json=PROBE, headers=headers).status_code == 201

    own_redis.kill()  # Redis crashes
    assert client.get("/healthz").status_code == 503
    with caplog.at_level("WARNING"):
        record = new_record(client, headers, datetime.now(timezone.utc) - timedelta(hours=30), users)
        edited = client.patch(f"/api/v1/records/remind_probe/{record['id']}", headers=headers,
                              json={"content": "卫生间漏水，已联系物业", "version": record["version"]})
    assert edited.status_code == 200, edited.get_data(as_text=True)
    assert "could not enqueue sweep_due" in caplog.text
    assert db.records.find_one({"_id": ObjectId(record["id"])})["data"]["content"] == "卫生间漏水，已联系物业"
    assert db.notifications.count_documents({}) == 0

    restarted = EmbeddedRedis(tmp_path / "redis", own_redis.port, persistent=True).start()
    try:
        with app.app_context():
            tick()
            SimpleWorker(list(QUEUE_NAMES), connection=app.extensions["kefu_redis"]).work(
                burst=True, with_scheduler=False)
        assert db.notifications.count_documents({"record_id": ObjectId(record["id"]), "kind": "overdue"}) == 2
    finally:
        restarted.stop()
        db.client.drop_database(db.name)


def test_the_scheduler_survives_a_redis_outage(app_config, tmp_path, processes):
    from redis import Redis
    from rq import Queue

    own_redis = EmbeddedRedis(tmp_path / "redis", free_port(), persistent=False).start()
    group = processes(REDIS_URL=own_redis.url)
    scheduler = group.start("scheduler", "scheduler", "--interval", "1")
    connection = Redis.from_url(own_redis.url)
    wait_for(lambda: Queue("schedule", connection=connection).count > 0, 30, what=lambda: f"a tick\n{group.logs()}")
    own_redis.kill()
    time.sleep(3)
    assert scheduler.poll() is None, group.logs()
    restarted = EmbeddedRedis(tmp_path / "redis", own_redis.port, persistent=False).start()
    try:
        connection = Redis.from_url(restarted.url)
        wait_for(lambda: Queue("schedule", connection=connection).count > 0, 30,
                 what=lambda: f"ticks after the restart\n{group.logs()}")
        assert scheduler.poll() is None
    finally:
        group.stop()
        restarted.stop()
