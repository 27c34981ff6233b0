"""Scheduled duties (kefu.schedule.duties): each does its work once per occurrence, claims are exclusive, a missed
occurrence is caught up, and the tick starts them through real rq jobs. Fixed moments are passed as ``now``."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from tests.test_callbacks import calendar, closed_complaint, patch  # noqa: F401  (fixtures)
from tests.test_channels import Robot, configure, drain  # noqa: F401
from tests.test_records_api import complaint

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(timezone.utc)


def run(app, name: str, now: datetime) -> str:
    from kefu.schedule import routines
    with app.app_context():
        return getattr(routines, name)(now)


@pytest.fixture
def users(db, seeded):
    return {u["username"]: u["_id"] for u in db.users.find({}, {"username": 1})}


@pytest.fixture
def robot():
    robot = Robot([(200, {"errcode": 0})])
    yield robot
    robot.stop()


def new_complaint(client, agent, **overrides) -> dict:
    response = client.post("/api/v1/records/complaint", json=complaint(**overrides), headers=agent)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


# -- 今日跟进 ----------------------------------------------------------------------------------------------

def test_complaints_open_over_five_working_days_get_a_daily_follow_up_task(app, client, agent, calendar, users, db):
    record = new_complaint(client, agent)
    registered = datetime.now(timezone.utc).astimezone(SHANGHAI).date()

    def nine_on(day: date) -> datetime:
        return datetime.combine(day, datetime.min.time().replace(hour=9), tzinfo=SHANGHAI).astimezone(timezone.utc)

    from kefu.calendar.workcalendar import get_calendar

    with app.app_context():
        cal = get_calendar()
        fifth, sixth = cal.nth_workday_after(registered, 5), cal.nth_workday_after(registered, 6)
    assert "tasks created: 0" in run(app, "follow_up_tasks", nine_on(fifth))  # open exactly 5 working days
    assert "tasks created: 1" in run(app, "follow_up_tasks", nine_on(sixth))
    assert "tasks created: 0" in run(app, "follow_up_tasks", nine_on(sixth) + timedelta(hours=1))  # once a day
    task = db.tasks.find_one()
    assert task["user"] == users["agent"] and task["record_id"] == ObjectId(record["id"])
    assert task["title"] == f"【今日跟进】投诉 {record['number']}" and task["kind"] == "follow_up"
    note = db.notifications.find_one({"kind": "follow_up"})
    assert note["user"] == users["agent"] and "6 个工作日" in note["body"]
    seventh = cal.nth_workday_after(registered, 7)
    assert "tasks created: 1" in run(app, "follow_up_tasks", nine_on(seventh))  # the next working day: again
    assert db.tasks.count_documents({}) == 2

    # Closed: no more follow-ups.
    patch(client, agent, "complaint", record["id"], status="已关闭", result="已解决")
    assert "records: 0" in run(app, "follow_up_tasks", nine_on(cal.nth_workday_after(registered, 8)))


def test_the_agent_sees_and_finishes_tasks(app, client, agent, calendar, users, db, sign_in):
    new_complaint(client, agent)
    run(app, "follow_up_tasks", datetime.now(timezone.utc) + timedelta(days=15))
    task = db.tasks.find_one()
    db.tasks.update_one({"_id": task["_id"]}, {"$set": {"day": task["day"] - timedelta(days=15)}})  # due today
    listed = client.get("/api/v1/tasks", headers=agent).get_json()["items"]
    assert [t["id"] for t in listed] == [str(task["_id"])]
    assert client.post(f"/api/v1/tasks/{task['_id']}/done", headers=agent).get_json()["done"] is True
    assert db.tasks.find_one()["done_at"] is not None
    assert client.get("/api/v1/tasks", headers=agent).get_json()["items"] == []


# -- 今日回访 ----------------------------------------------------------------------------------------------

def test_a_callback_due_today_is_a_task_and_a_reminder_for_its_agent(app, client, agent, supervisor, calendar,
                                                                      users, db):
    original = closed_complaint(client, agent, supervisor)
    callback = db.records.find_one({"source.id": ObjectId(original["id"])})
    due_day = callback["source"]["due_at"].astimezone(SHANGHAI)
    morning = local(due_day.strftime("%Y-%m-%dT09:00"))
    assert "records: 0" in run(app, "callbacks_due", morning - timedelta(days=1))
    assert "tasks created: 1" in run(app, "callbacks_due", morning)
    assert "tasks created: 0" in run(app, "callbacks_due", morning + timedelta(hours=2))
    task = db.tasks.find_one({"kind": "callback_due"})
    assert task["user"] == users["agent"] and task["record_id"] == callback["_id"]
    note = db.notifications.find_one({"kind": "callback_due"})
    assert note["title"] == f"【今日回访】回访 {callback['number']}" and due_day.strftime("%Y-%m-%d 23:59") in note["body"]


# -- levels by age ------------------------------------------------------------------------------------------

def test_escalation_duty_raises_important_complaints_open_three_months(app, client, agent, calendar, db):
    record = new_complaint(client, agent, level="重要", received_at="2026-07-01T10:00")
    result = run(app, "escalate_levels", local("2026-10-02T01:00"))
    assert result == "records raised: 1"
    assert db.records.find_one({"_id": ObjectId(record["id"])})["data"]["level"] == "重大"
    assert run(app, "escalate_levels", local("2026-10-03T01:00")) == "records raised: 0"


# -- care messages ------------------------------------------------------------------------------------------

def test_handover_care_30_15_and_3_days_before(app, client, calendar, db, robot, seeded):
    configure(app, care_webhook_url=robot.url, quiet_enabled=False)
    project = db.projects.find_one({"code": "YQJNF"})
    customers = db.customers.count_documents({"project": project["_id"]})
    assert customers > 0
    now = datetime.now(timezone.utc)
    today = now.astimezone(SHANGHAI).date()

    def hand_over_in(days: int) -> None:
        day = today + timedelta(days=days)
        db.projects.update_one({"_id": project["_id"]},
                               {"$set": {"handover_date": datetime(day.year, day.month, day.day, tzinfo=timezone.utc)}})

    for days, expected in ((30, customers), (29, 0), (15, customers), (3, customers)):
        hand_over_in(days)
        assert run(app, "care_messages", now).startswith(f"handover messages: {expected};")
        drain(app)
    assert len(robot.received) == 3 * customers
    contents = [payload["text"]["content"] for _path, _type, payload in robot.received]
    handover = (today + timedelta(days=30)).isoformat()
    assert any(f"将于 {handover} 交付，距今还有 30 天" in text and project["name"] in text for text in contents)
    assert all(len(payload["text"]["mentioned_mobile_list"]) == 1 for _p, _t, payload in robot.received)
    run(app, "care_messages", now)  # the same occasion again: nothing twice
    drain(app)
    assert len(robot.received) == 3 * customers


def test_holiday_greetings_go_out_the_working_day_before(app, calendar, db, robot, seeded):
    configure(app, care_webhook_url=robot.url, quiet_enabled=False)
    customers = db.customers.count_documents({})
    assert run(app, "care_messages", local("2025-09-29T10:00")).endswith("holiday greetings: 0")
    assert run(app, "care_messages", local("2025-09-30T10:00")).endswith(f"holiday greetings: {customers}")
    drain(app)
    assert len(robot.received) == customers
    assert "国庆节将至" in robot.received[0][2]["text"]["content"]
    run(app, "care_messages", local("2025-09-30T10:30"))
    drain(app)
    assert len(robot.received) == customers


def test_the_working_day_before_a_holiday_counts_make_up_days(app, calendar):
    from kefu.calendar.workcalendar import get_calendar
    from kefu.schedule.routines import holiday_ahead

    with app.app_context():
        cal = get_calendar()
        assert holiday_ahead(date(2025, 9, 30), cal) == ("国庆节", date(2025, 10, 1))
        assert holiday_ahead(date(2025, 9, 29), cal) is None
        # Spring Festival 2026 (2-15…2-23): Saturday 2-14 is a make-up workday, so it is the day before.
        assert holiday_ahead(date(2026, 2, 13), cal) is None
        assert holiday_ahead(date(2026, 2, 14), cal) == ("春节", date(2026, 2, 15))
        assert holiday_ahead(date(2026, 11, 20), cal) is None  # an ordinary weekend


# -- summaries ------------------------------------------------------------------------------------------------

def test_weekly_summary_to_whoever_may_read_the_reports(app, client, agent, calendar, users, db):
    new_complaint(client, agent)
    moment = datetime.now(timezone.utc) + timedelta(hours=1)
    result = run(app, "weekly_summary", moment)
    assert "notifications created: 3" in result
    notes = list(db.notifications.find({"kind": "weekly_summary"}))
    # view_reports: the shipped supervisor, manager and admin roles grant it, the agent's does not
    assert {n["user"] for n in notes} == {users["supervisor"], users["manager"], users["admin"]}
    assert "投诉：新增 1，关闭 0" in notes[0]["body"] and "合计：新增 1" in notes[0]["body"]
    # A minute later, not an hour: an hour can cross into the next week (Sunday night, local time).
    assert "notifications created: 0" in run(app, "weekly_summary", moment + timedelta(minutes=1))


def test_a_company_role_with_view_reports_gets_the_weekly_summary_and_the_monthly_report(app, client, agent,
                                                                                         calendar, users, db,
                                                                                         make_user):
    """Recipients come from the roles' capabilities, not their names: a role a company added is told too."""
    from kefu.org.roles import save_role

    with app.app_context():
        save_role({"key": "analyst", "name": "数据分析", "capabilities": ["view_reports"]}, set())
        analyst = make_user("analyst1", role="analyst").pk
    new_complaint(client, agent)
    now = datetime.now(timezone.utc)
    assert "notifications created: 4" in run(app, "weekly_summary", now + timedelta(hours=1))
    assert analyst in {n["user"] for n in db.notifications.find({"kind": "weekly_summary"})}
    run(app, "monthly_report", now)
    told = {n["user"] for n in db.notifications.find({"kind": "monthly_report"})}
    assert told == {analyst, users["supervisor"], users["manager"], users["admin"]}


def test_monthly_report_is_archived_on_the_fifth_and_managers_told(app, client, agent, supervisor, calendar, users,
                                                                    db):
    closed_complaint(client, agent, supervisor)
    now = datetime.now(timezone.utc).astimezone(SHANGHAI)
    next_month = (now.replace(day=1) + timedelta(days=32)).replace(day=5, hour=8)
    run(app, "monthly_report", next_month.astimezone(timezone.utc))
    month = f"{now.year:04d}-{now.month:02d}"
    report = db.reports.find_one({"_id": f"monthly:{month}"})
    complaints = next(t for t in report["types"] if t["type"] == "complaint")
    assert complaints["new"] == 1 and complaints["closed"] == 1
    assert db.notifications.find_one({"kind": "monthly_report", "user": users["manager"]})["title"] == \
        f"{month} 月度投诉分析报告"


# -- the schedule ---------------------------------------------------------------------------------------------

def test_due_now_claims_each_occurrence_once_and_catches_up(app, calendar):
    from kefu.schedule.duties import due_now

    wednesday = local("2026-11-25T09:05")
    with app.app_context():
        first = {duty.name for duty, _occurrence in due_now(wednesday)}
        again = due_now(wednesday)
        later = {duty.name for duty, _o in due_now(wednesday + timedelta(minutes=1))}
    # 01:00, 02:00 and 03:00 are within their catch-up; care (10:00) is not due yet and yesterday's is too old;
    # Wednesday: the 装修 pre-acceptance list (002 工程预验收流程) too, Tuesday's callback analysis is past its catch-up;
    # the grade callbacks (08:30 on working days) are within theirs.
    assert first == {"sla_sweep", "escalate_levels", "follow_up_tasks", "callbacks_due", "weekly_summary",
                     "remove_old_exports", "list_indexes", "pre_acceptance_list", "grade_callbacks"}
    assert again == []
    assert later == {"sla_sweep"}


def test_a_failed_or_abandoned_run_is_claimed_again(app, calendar, db):
    from kefu.schedule.duties import DUTY_BY_NAME, abandon_stale, claim

    duty = DUTY_BY_NAME["follow_up_tasks"]
    occurrence = local("2026-11-25T09:00")
    with app.app_context():
        assert claim(duty, occurrence, occurrence)
        assert abandon_stale(occurrence + timedelta(minutes=5)) == []
        assert not claim(duty, occurrence, occurrence + timedelta(minutes=5))  # running, within its lease
        assert abandon_stale(occurrence + timedelta(minutes=16)) == ["follow_up_tasks:2026-11-25"]
        assert db.duty_runs.find_one()["state"] == "abandoned"
        assert claim(duty, occurrence, occurrence + timedelta(minutes=16))  # its worker died
        db.duty_runs.update_one({}, {"$set": {"state": "failed"}})
        assert claim(duty, occurrence, occurrence + timedelta(minutes=17))  # failed: again (3 attempts at most)
        db.duty_runs.update_one({}, {"$set": {"state": "failed"}})
        assert not claim(duty, occurrence, occurrence + timedelta(minutes=18))
    assert db.duty_runs.find_one()["attempts"] == 3


def test_a_runs_lease_counts_from_its_start_and_a_live_workers_run_is_left_alone(app, calendar, db):
    from kefu.schedule.duties import DUTY_BY_NAME, abandon_stale, claim, start

    duty = DUTY_BY_NAME["follow_up_tasks"]  # lease 15 minutes
    occurrence = local("2026-11-25T09:00")
    alive, dead = (lambda name: True), (lambda name: False)
    with app.app_context():
        assert claim(duty, occurrence, occurrence)
        # It waited 8 minutes in the queue behind an export, then a worker started it; it runs for 9 minutes.
        assert start(duty, occurrence, "worker-a", occurrence + timedelta(minutes=8))["attempts"] == 1
        assert start(duty, occurrence, "worker-b", occurrence + timedelta(minutes=9)) is None  # started once
        for minutes in (15, 17, 22):
            assert abandon_stale(occurrence + timedelta(minutes=minutes), alive) == []
            assert abandon_stale(occurrence + timedelta(minutes=minutes)) == []
            assert not claim(duty, occurrence, occurrence + timedelta(minutes=minutes))
        stored = db.duty_runs.find_one()
        assert (stored["state"], stored["attempts"], stored["worker"]) == ("running", 1, "worker-a")
        # Its outcome never written (rq stops a live run at its 10-minute timeout first): the lease, from its start.
        assert abandon_stale(occurrence + timedelta(minutes=23), alive) == ["follow_up_tasks:2026-11-25"]
        assert "after it started" in db.duty_runs.find_one()["error"]
        # Its worker gone: abandoned at once, however young the run.
        assert claim(duty, occurrence, occurrence + timedelta(minutes=24))
        start(duty, occurrence, "worker-c", occurrence + timedelta(minutes=25))
        assert abandon_stale(occurrence + timedelta(minutes=25), alive) == []
        assert abandon_stale(occurrence + timedelta(minutes=25), dead) == ["follow_up_tasks:2026-11-25"]
        assert "worker-c stopped" in db.duty_runs.find_one()["error"]


def test_tick_runs_the_due_duties_through_rq(app, client, agent, calendar, db):
    from rq import Queue, SimpleWorker

    from jobs.schedule import tick
    from kefu.schedule.queues import QUEUE_NAMES

    client.post("/api/v1/records/complaint", json=complaint(received_at="2026-11-01T10:00"), headers=agent)
    with app.app_context():
        assert tick().startswith("duties started: sla_sweep")
        SimpleWorker(list(QUEUE_NAMES), connection=app.extensions["kefu_redis"]).work(burst=True, with_scheduler=False)
    run_document = db.duty_runs.find_one({"duty": "sla_sweep"})
    assert run_document["state"] == "done" and run_document["result"].startswith("records swept:")
    # The record was overdue when registered: the prompt sweep its save queued, or the tick's, told the people.
    stored = db.records.find_one({"type": "complaint"})
    late_clocks = [key for key, clock in stored["sla"].items() if clock["alerts"].get("overdue")]
    # a 工程质量 complaint: forward, the engineer told that day, verify, plan, resolve — all long past
    assert sorted(late_clocks) == ["engineer_told", "forward", "plan", "resolve", "verify"]
    # No assignee: the supervisors, and (long past the ladder's manager step) whoever may reassign it anywhere —
    # the shipped manager and admin roles both may.
    assert db.notifications.count_documents({"kind": "overdue"}) == 3 * len(late_clocks)
    assert all(Queue(name, connection=app.extensions["kefu_redis"]).count == 0 for name in QUEUE_NAMES)


def test_queue_page_shows_the_schedule_workers_and_failed_jobs(app, client, calendar, db, make_user, sign_in):
    from rq import Queue

    make_user("root", role="admin")
    sign_in("root")
    with app.app_context():
        from jobs.schedule import tick
        from kefu.schedule.queues import QUEUE_NAMES

        tick()
        Queue("notify", connection=app.extensions["kefu_redis"]).enqueue("jobs.deliver.deliver", "not-an-id")
        from rq import SimpleWorker

        SimpleWorker(list(QUEUE_NAMES), connection=app.extensions["kefu_redis"]).work(burst=True, with_scheduler=False)
    page = client.get("/admin/queue/").get_data(as_text=True)
    assert "时限扫描与提醒" in page and "月度报告" in page and "jobs.deliver.deliver" in page
    assert "InvalidId" in page
    job_id = Queue("notify", connection=app.extensions["kefu_redis"]).failed_job_registry.get_job_ids()[0]
    from tests.conftest import csrf_token

    token = csrf_token(client, "/admin/queue/")
    response = client.post(f"/admin/queue/job/{job_id}/delete/", data={"csrf_token": token})
    assert response.status_code == 302
    assert Queue("notify", connection=app.extensions["kefu_redis"]).failed_job_registry.count == 0
