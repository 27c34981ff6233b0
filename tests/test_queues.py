"""No job storms: a burst of saves whose alerts are due queues one prompt sweep (``jobs.sweep``), which sends every
alert once; the tick and the duties run on the ``schedule`` queue, which a worker serves before bulk work; the
任务队列 page shows how many jobs wait in each queue and how long the oldest has waited. Real Redis and MongoDB."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bson import ObjectId
from rq import Queue
from rq.job import Job

from tests.test_reminders import new_record, probe, users  # noqa: F401  (fixtures)
from tests.test_workers import other_duties_already_run


def queued_ids(app, name: str) -> list[str]:
    return Queue(name, connection=app.extensions["kefu_redis"]).job_ids


def prompt_sweeps(app) -> list[str]:
    """The prompt sweep jobs waiting in ``default`` (the calendar fixture's recompute may wait there too)."""
    return [job.id for job in Queue("default", connection=app.extensions["kefu_redis"]).jobs
            if job.func_name == "jobs.sweep.sweep_due"]


def test_a_burst_of_due_saves_queues_one_sweep_that_sends_each_alert_once(app, client, admin, probe, users, db):
    from jobs.sweep import PROMPT_SWEEP_JOB_IDS

    received = datetime.now(timezone.utc) - timedelta(hours=30)  # overdue when registered
    records = [new_record(client, admin, received, users) for _ in range(12)]
    assert prompt_sweeps(app) == [PROMPT_SWEEP_JOB_IDS[0]]  # one job for twelve saves
    assert Job.fetch(PROMPT_SWEEP_JOB_IDS[0], connection=app.extensions["kefu_redis"]).args == ()
    assert db.notifications.count_documents({}) == 0
    assert db.records.count_documents({"sla_next": {"$lte": datetime.now(timezone.utc)}}) == len(records)

    result = app.test_cli_runner().invoke(args=["kefu", "worker", "--burst", "--without-scheduler"])
    assert result.exit_code == 0, result.output

    ids = [ObjectId(r["id"]) for r in records]
    for stored in db.records.find({"_id": {"$in": ids}}):
        assert stored["sla"]["resolve"]["alerts"]["overdue"]
        assert stored["sla_next"] is None or stored["sla_next"].replace(tzinfo=timezone.utc) > datetime.now(
            timezone.utc)
    overdue = list(db.notifications.find({"kind": "overdue"}))
    assert len(overdue) == 2 * len(records)  # the agent and the supervisor, once each per record
    assert {n["record_id"] for n in overdue} == set(ids)
    assert len({n["key"] for n in overdue}) == len(overdue)
    # The finished job left no record behind: the next due save queues the next sweep.
    assert not app.extensions["kefu_redis"].exists(f"rq:job:{PROMPT_SWEEP_JOB_IDS[0]}")
    assert queued_ids(app, "default") == []
    new_record(client, admin, received, users)
    assert prompt_sweeps(app) == [PROMPT_SWEEP_JOB_IDS[0]]


def test_a_save_while_the_sweep_runs_queues_one_follow_up(app, probe, db):
    from rq import SimpleWorker
    from rq.job import JobStatus

    from jobs.sweep import PROMPT_SWEEP_JOB_IDS, queue_prompt_sweep

    first_id, follow_up_id = PROMPT_SWEEP_JOB_IDS
    connection = app.extensions["kefu_redis"]
    with app.app_context():
        first = queue_prompt_sweep()
        assert first is not None and first.id == first_id
        assert queue_prompt_sweep() is None  # it waits, so it will see this save: refused, not raised
        first.set_status(JobStatus.STARTED)  # a worker took it: a save now may come after its last look
        follow_up = queue_prompt_sweep()
        assert follow_up is not None and follow_up.id == follow_up_id
        assert queue_prompt_sweep() is None and queue_prompt_sweep() is None  # the follow-up waits
        first.set_status(JobStatus.QUEUED)
        SimpleWorker(["default"], connection=connection).work(burst=True, with_scheduler=False)
        assert not any(connection.exists(f"rq:job:{job_id}") for job_id in PROMPT_SWEEP_JOB_IDS)
        assert queue_prompt_sweep().id == first_id  # both finished: the next save starts over
    assert prompt_sweeps(app) == [first_id]


def test_the_tick_and_its_duties_run_on_the_schedule_queue_before_bulk_work(app, calendar, db):
    from jobs.schedule import run_duty, tick
    from jobs.sweep import PROMPT_SWEEP_JOB_IDS, queue_prompt_sweep

    other_duties_already_run(app)
    connection = app.extensions["kefu_redis"]
    with app.app_context():
        bulk = Queue("default", connection=connection).enqueue("os.getpid")  # waiting before the tick
        queue_prompt_sweep()
        assert tick().startswith("duties started: sla_sweep")
    [duty_job] = queued_ids(app, "schedule")
    assert duty_job.startswith("duty-sla_sweep-") and Job.fetch(duty_job, connection=connection).func == run_duty
    assert queued_ids(app, "default")[-2:] == [bulk.id, PROMPT_SWEEP_JOB_IDS[0]]

    # ``flask kefu worker`` with its default queues: the duty first, though the bulk jobs were queued before it.
    result = app.test_cli_runner().invoke(args=["kefu", "worker", "--burst", "--without-scheduler"])
    assert result.exit_code == 0, result.output
    duty = Job.fetch(duty_job, connection=connection)
    assert duty.get_status() == "finished"
    assert duty.ended_at <= Job.fetch(bulk.id, connection=connection).started_at
    run_document = db.duty_runs.find_one({"duty": "sla_sweep"})
    assert run_document["state"] == "done" and run_document["worker"] == duty.worker_name


def test_the_queue_page_shows_the_waiting_jobs_and_how_long_the_oldest_waited(app, client, make_user, sign_in):
    make_user("root", role="admin")
    sign_in("root")
    connection = app.extensions["kefu_redis"]
    queue = Queue("default", connection=connection)
    oldest, _newer = queue.enqueue("os.getpid"), queue.enqueue("os.getpid")
    oldest.enqueued_at = datetime.now(timezone.utc) - timedelta(minutes=7, seconds=5)
    oldest.save()  # as if it had waited seven minutes behind a long job
    Queue("notify", connection=connection).enqueue("os.getpid")

    response = client.get("/admin/queue/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    row = page.split('data-queue="default">', 1)[1].split("</tr>", 1)[0]
    assert "后台任务" in row and '<td class="kefu-waiting">2</td>' in row
    assert '<td class="kefu-lag">7 分钟</td>' in row
    notify = page.split('data-queue="notify">', 1)[1].split("</tr>", 1)[0]
    assert '<td class="kefu-waiting">1</td>' in notify and "秒</td>" in notify
    schedule = page.split('data-queue="schedule">', 1)[1].split("</tr>", 1)[0]
    assert "定时任务" in schedule and '<td class="kefu-waiting">0</td>' in schedule
    assert '<td class="kefu-lag">-</td>' in schedule
    assert "最久等待" in page
    # What the page read is what Redis holds.
    assert queue.count == 2 and queue.job_ids[0] == oldest.id
