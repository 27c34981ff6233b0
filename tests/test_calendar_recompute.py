"""A calendar edit recomputes the running deadlines in the background: the admin request only queues the job, a
worker moves the deadlines in batches and notes its progress (``calendar_recomputes``) for the calendar screen;
with Redis down, a superseded or a dead job, the work still gets done once."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from flask_babel import force_locale
from redis import Redis
from rq import Queue, SimpleWorker

from jobs import calendar as calendar_jobs
from kefu.calendar import recompute
from kefu.runtime.embedded import free_port
from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token
from tests.test_sla import local, new_probe, probe, stored  # noqa: F401  (fixture)

BEFORE, AFTER = local("2027-01-07T23:59:59"), local("2027-01-11T23:59:59")  # 2027-01-04 and -05 off in between


def drain(app) -> None:
    """Run the queued jobs (and the jobs they queue) in this process until the default queue is empty."""
    with app.app_context():
        SimpleWorker(["default"], connection=app.extensions["kefu_redis"]).work(burst=True, with_scheduler=False)


def enter_company_holiday(client):
    token = csrf_token(client, "/admin/calendar/range/")
    return client.post("/admin/calendar/range/", data={
        "csrf_token": token, "first": "2027-01-04", "last": "2027-01-05", "kind": "holiday", "name": "公司年假"})


def newest(db) -> dict:
    return db.calendar_recomputes.find_one(sort=[("_id", -1)])


@pytest.fixture
def records(app, client, admin, probe, db, sign_in):  # noqa: F811
    """Three records whose 7-working-day clocks run across the first week of 2027; the admin signed in on the
    web, the queue emptied of the calendar seeding's recompute."""
    made = [new_probe(client, admin, "2026-12-28T09:00") for _ in range(3)]
    drain(app)
    assert sign_in("admin", DEMO_PASSWORD).status_code == 302
    return made


def test_an_edit_returns_at_once_and_a_worker_moves_the_deadlines(app, client, db, records):
    response = enter_company_holiday(client)
    assert response.status_code == 302, response.get_data(as_text=True)

    # The request only asked: no deadline moved yet, one job waits under the version's stable id.
    assert {stored(db, r["id"])["sla"]["resolve"]["due_at"] for r in records} == {BEFORE}
    version = db.calendar_state.find_one()["version"]
    request = newest(db)
    assert (request["_id"], request["state"], request["done"]) == (version, "queued", 0)
    assert Queue("default", connection=app.extensions["kefu_redis"]).job_ids == [f"calendar-recompute-{version}"]
    page = client.get("/admin/calendar/").get_data(as_text=True)
    assert "日历已修改，时限将在后台重新计算（排队中）" in page

    drain(app)
    assert {stored(db, r["id"])["sla"]["resolve"]["due_at"] for r in records} == {AFTER}
    request = newest(db)
    assert (request["state"], request["done"], request["total"], request["attempts"]) == ("done", 3, 3, 1)
    assert request["after_id"] == max(stored(db, r["id"])["_id"] for r in records)
    page = client.get("/admin/calendar/").get_data(as_text=True)
    assert "时限已按最新日历重新计算：3 条" in page


def test_the_screen_shows_the_progress_in_both_languages(app, client, db, records):
    enter_company_holiday(client)
    db.calendar_recomputes.update_one({"_id": newest(db)["_id"]},
                                      {"$set": {"state": "running", "done": 1200, "total": 56000}})
    page = client.get("/admin/calendar/").get_data(as_text=True)
    assert "正在重新计算时限：1,200 / 56,000" in page
    with app.test_request_context(), force_locale("en"):
        from admin_views.calendar import recompute_note

        assert recompute_note() == ("info", "Recomputing deadlines: 1,200 / 56,000")


def test_with_redis_down_the_edit_succeeds_and_the_next_tick_queues_the_recompute(app, client, db, records):
    from jobs.schedule import tick

    working = app.extensions["kefu_redis"]
    app.extensions["kefu_redis"] = Redis(port=free_port(), socket_connect_timeout=1)
    try:
        assert enter_company_holiday(client).status_code == 302
    finally:
        app.extensions["kefu_redis"] = working
    request = newest(db)
    assert request["state"] == "queued" and request.get("queued_at") is None
    assert Queue("default", connection=working).count == 0

    with app.app_context():
        assert "calendar recomputes queued: 1;" in tick()
        assert "calendar recomputes queued: 0;" in tick()  # queued already: not twice
    drain(app)
    assert newest(db)["state"] == "done"
    assert {stored(db, r["id"])["sla"]["resolve"]["due_at"] for r in records} == {AFTER}


def test_a_newer_edit_supersedes_the_waiting_recompute(app, client, db, records):
    enter_company_holiday(client)
    first = newest(db)["_id"]
    token = csrf_token(client, "/admin/calendar/new/")
    client.post("/admin/calendar/new/", data={"csrf_token": token, "day": "2027-01-06", "kind": "holiday",
                                              "name": "公司年假"})
    drain(app)
    assert db.calendar_recomputes.find_one({"_id": first})["state"] == "superseded"
    assert (newest(db)["state"], newest(db)["done"]) == ("done", 3)
    assert {stored(db, r["id"])["sla"]["resolve"]["due_at"] for r in records} == {local("2027-01-12T23:59:59")}


def test_a_long_recompute_continues_in_new_jobs_batch_by_batch(app, client, db, records, monkeypatch):
    monkeypatch.setattr(calendar_jobs, "BATCH", 1)
    monkeypatch.setattr(calendar_jobs, "SLICE_SECONDS", 0)  # every batch ends its job's slice
    enter_company_holiday(client)
    version = newest(db)["_id"]
    drain(app)
    request = newest(db)
    assert (request["state"], request["done"], request["total"]) == ("done", 3, 3)
    finished = Queue("default", connection=app.extensions["kefu_redis"]).finished_job_registry.get_job_ids()
    assert {job_id for job_id in finished if job_id.startswith(f"calendar-recompute-{version}")} == {
        f"calendar-recompute-{version}", *(f"calendar-recompute-{version}-{r['id']}" for r in records)}
    assert {stored(db, r["id"])["sla"]["resolve"]["due_at"] for r in records} == {AFTER}


def test_a_recompute_whose_worker_died_resumes_after_the_last_record_done(app, client, db, records):
    enter_company_holiday(client)
    version = newest(db)["_id"]
    Queue("default", connection=app.extensions["kefu_redis"]).empty()  # the job was lost with its worker
    first_id = min(stored(db, r["id"])["_id"] for r in records)
    silent_since = datetime.now(timezone.utc) - recompute.LEASE - timedelta(minutes=1)
    db.calendar_recomputes.update_one({"_id": version}, {"$set": {
        "state": "running", "done": 1, "total": 3, "after_id": first_id, "reported_at": silent_since,
        "attempts": 1}})
    with app.app_context():
        assert calendar_jobs.recompute_deadlines(version) == f"calendar recompute {version}: 3 records"
        assert calendar_jobs.recompute_deadlines(version) == f"calendar recompute {version}: nothing to do"
    request = newest(db)
    assert (request["state"], request["done"], request["attempts"]) == ("done", 3, 2)
    # Resumed after the first record: it still has the old deadline, the other two moved.
    assert stored(db, records[0]["id"])["sla"]["resolve"]["due_at"] == BEFORE
    assert {stored(db, r["id"])["sla"]["resolve"]["due_at"] for r in records[1:]} == {AFTER}


def test_a_failed_recompute_is_recorded_and_retried_by_the_tick(app, client, db, records, monkeypatch):
    from jobs.schedule import tick

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(calendar_jobs, "recompute_live", broken)
    enter_company_holiday(client)
    drain(app)
    request = newest(db)
    assert (request["state"], request["error"]) == ("failed", "RuntimeError: database went away")
    page = client.get("/admin/calendar/").get_data(as_text=True)
    assert "重新计算时限失败，将自动重试：RuntimeError: database went away" in page

    monkeypatch.undo()
    with app.app_context():
        assert "calendar recomputes queued: 1;" in tick()
    drain(app)
    assert (newest(db)["state"], newest(db)["attempts"]) == ("done", 2)
    assert {stored(db, r["id"])["sla"]["resolve"]["due_at"] for r in records} == {AFTER}
