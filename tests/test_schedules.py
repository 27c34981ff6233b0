"""Schedules are data (issue 18: "Schedules are data, editable per pack in the admin, not constants in code"):
the 定时任务 screen stores each duty's moment in ``duty_schedules``; the defaults are today's constants; a change
takes effect at the next tick; an occurrence is claimed once per period, whatever time an admin moves it to."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import csrf_token
from tests.test_callbacks import calendar  # noqa: F401  (fixture)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(timezone.utc)


@pytest.fixture
def root(client, make_user, sign_in):
    make_user("root", role="admin")
    sign_in("root")


def post(client, name: str, **values):
    token = csrf_token(client, f"/admin/schedules/{name}/")
    return client.post(f"/admin/schedules/{name}/", data={"csrf_token": token, **values})


def claimed(app, now: datetime) -> dict:
    """What a tick at ``now`` claims; each claim then marked done, as the worker that runs it leaves it (a claim
    left running past its lease would be abandoned and claimed again)."""
    from kefu.schedule.duties import DutyRun, RunState, due_now

    with app.app_context():
        taken = {duty.name: occurrence for duty, occurrence in due_now(now)}
        DutyRun.objects(state=RunState.RUNNING).update(set__state=RunState.DONE)
        return taken


def test_defaults_are_todays_constants_until_an_admin_edits(app, db, calendar):
    from kefu.schedule.duties import DUTIES, current_duties

    with app.app_context():
        assert [(d.at, d.weekday, d.monthday, d.working_days, d.options) for d in current_duties()] == \
               [(d.at, d.weekday, d.monthday, d.working_days, d.options) for d in DUTIES]
    assert db.duty_schedules.count_documents({}) == 0
    by_name = {d.name: d for d in DUTIES}
    # 003 3.6 每月5号 月报; 002 日常流程 前30日/前15日/前3日; 002 每周二 周回访情况分析表; 002 每周三 预验收名录
    assert by_name["monthly_report"].monthday == 5 and by_name["weekly_summary"].weekday == 2
    assert by_name["care_messages"].options == {"offsets": [30, 15, 3], "holiday_greetings": True}
    assert (by_name["callback_analysis"].weekday, by_name["callback_analysis"].pack) == (1, "renovation")
    assert (by_name["pre_acceptance_list"].weekday, by_name["pre_acceptance_list"].pack) == (2, "renovation")


def test_moving_0900_to_1000_after_todays_run_does_not_run_it_twice_today(app, client, db, calendar, root):
    """The occurrence key is the period (the local day), not the configured time."""
    assert "follow_up_tasks" in claimed(app, local("2026-11-25T09:05"))
    response = post(client, "follow_up_tasks", at="10:00", working_days="y")
    assert response.status_code == 302
    stored = db.duty_schedules.find_one({"_id": "follow_up_tasks"})
    assert (stored["at"], stored["working_days"], stored["updated_by"]) == ("10:00", True, "root")
    assert "follow_up_tasks" not in claimed(app, local("2026-11-25T10:01"))  # the next tick: today's is done
    assert db.duty_runs.count_documents({"duty": "follow_up_tasks"}) == 1
    tomorrow = claimed(app, local("2026-11-26T10:00"))
    assert tomorrow["follow_up_tasks"] == local("2026-11-26T10:00")
    assert db.duty_runs.find_one({"_id": "follow_up_tasks:2026-11-26"})["occurrence"].replace(
        tzinfo=timezone.utc) == local("2026-11-26T10:00")
    assert "follow_up_tasks" not in claimed(app, local("2026-11-26T09:00") + timedelta(hours=3))


def test_an_earlier_time_takes_effect_at_the_next_tick(app, client, db, calendar, root):
    assert "callbacks_due" not in claimed(app, local("2026-11-25T08:30"))
    assert post(client, "callbacks_due", at="08:00", working_days="y").status_code == 302
    assert claimed(app, local("2026-11-25T08:31"))["callbacks_due"] == local("2026-11-25T08:00")
    assert "callbacks_due" not in claimed(app, local("2026-11-25T09:00"))  # the old time: same day, once


def test_a_weekly_duty_moved_to_another_weekday_runs_once_that_week(app, client, db, calendar, root):
    assert "weekly_summary" in claimed(app, local("2026-11-25T09:05"))  # Wednesday
    assert post(client, "weekly_summary", weekday="3", at="09:00").status_code == 302
    assert db.duty_schedules.find_one({"_id": "weekly_summary"})["weekday"] == 3
    assert "weekly_summary" not in claimed(app, local("2026-11-26T09:05"))  # Thursday, the same ISO week
    assert claimed(app, local("2026-12-03T09:05"))["weekly_summary"] == local("2026-12-03T09:00")


def test_the_monthly_report_day_moved_after_the_fifth_does_not_run_again(app, client, db, calendar, root):
    assert "monthly_report" in claimed(app, local("2026-11-05T08:01"))
    assert post(client, "monthly_report", monthday="10", at="08:00").status_code == 302
    assert "monthly_report" not in claimed(app, local("2026-11-10T08:01"))
    assert claimed(app, local("2026-12-10T08:01"))["monthly_report"] == local("2026-12-10T08:00")
    assert db.duty_runs.find_one({"_id": "monthly_report:2026-12"})["occurrence"].replace(
        tzinfo=timezone.utc) == local("2026-12-10T08:00")


def test_bad_values_are_refused_at_their_field_and_nothing_is_stored(app, client, db, root):
    page = post(client, "monthly_report", monthday="31", at="25:00")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "请填写 00:00–23:59 之间的时间" in text and "每月几号须是 1–28 之间的整数" in text
    assert text.count("invalid-feedback d-block") == 2
    care = post(client, "care_messages", at="10:00", offsets="30、abc").get_data(as_text=True)
    assert "“abc”不是整数" in care
    assert post(client, "weekly_summary", weekday="9", at="09:00").status_code == 200
    listed = post(client, "pre_acceptance_list", at="09:00", weekday="2", statuses="open", date_field="created_at",
                  window_from="5", window_to="2").get_data(as_text=True)
    assert "请至少选择一个记录类型" in listed and "结束须晚于开始" in listed
    assert client.get("/admin/schedules/sla_sweep/").status_code == 404  # every tick: nothing to edit
    assert client.get("/admin/schedules/no_such_duty/").status_code == 404
    assert db.duty_schedules.count_documents({}) == 0


def test_the_page_lists_duties_by_pack_and_reset_restores_the_default(app, client, db, seeded, root):
    page = client.get("/admin/schedules/").get_data(as_text=True)
    assert "定时任务" in page and "全系统" in page and "装修" in page
    assert "每月 5 日 08:00" in page and "每周三 09:00" in page and "每周二 09:00" in page
    assert "预验收工程名录" in page and "周回访情况分析" in page
    assert post(client, "care_messages", at="10:30", offsets="7、30", holiday_greetings="").status_code == 302
    stored = db.duty_schedules.find_one({"_id": "care_messages"})
    assert stored["options"] == {"offsets": [30, 7], "holiday_greetings": False} and stored["at"] == "10:30"
    assert "已修改" in client.get("/admin/schedules/").get_data(as_text=True)
    token = csrf_token(client, "/admin/schedules/care_messages/")
    assert client.post("/admin/schedules/care_messages/reset/", data={"csrf_token": token}).status_code == 302
    assert db.duty_schedules.count_documents({}) == 0


def test_the_care_offsets_and_holiday_greetings_are_the_stored_ones(app, client, db, calendar, root):
    """002 日常流程 1(1) / domain §8: handover care N days before — N as the admin set it."""
    from kefu.schedule.duties import claim, current_duty, run

    project = db.projects.find_one({"code": "YQJNF"})
    customers = db.customers.count_documents({"project": project["_id"], "archived": {"$ne": True}})
    assert post(client, "care_messages", at="10:00", offsets="7").status_code == 302  # greetings unticked
    now = local("2025-09-30T10:00")  # the working day before 国庆节
    day = (now.astimezone(SHANGHAI) + timedelta(days=7)).date()
    db.projects.update_one({"_id": project["_id"]},
                           {"$set": {"handover_date": datetime(day.year, day.month, day.day, tzinfo=timezone.utc)}})
    with app.app_context():
        duty = current_duty("care_messages")
        assert claim(duty, now, now)
        assert run("care_messages", now, now) == f"handover messages: {customers}; holiday greetings: 0"
    assert db.duty_runs.find_one({"_id": "care_messages:2025-09-30"})["state"] == "done"


def test_002_the_wednesday_pre_acceptance_list_names_next_weeks_open_jobs(app, client, admin, db, calendar, users):
    """002 工程预验收流程: 工程部每周三提交申报下一周预验收工程名录 — a list duty of the 装修 pack, data not code."""
    from kefu.schedule.duties import claim, current_duty, run

    def inspection(day: str) -> dict:
        response = client.post("/api/v1/records/pre_acceptance", headers=admin, json={
            "customer_name": "王女士", "inspection_date": day, "foreman": "李工", "attempt": "第一次验收"})
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    thursday, far = inspection("2026-11-26"), inspection("2026-12-10")
    wednesday = local("2026-11-25T09:00")
    with app.app_context():
        duty = current_duty("pre_acceptance_list")
        assert claim(duty, wednesday, wednesday)
        result = run("pre_acceptance_list", wednesday, wednesday)
    assert result.startswith("records: 1;")
    note = db.notifications.find_one({"key": {"$regex": "^list:pre_acceptance_list:2026-11-25:"}})
    assert note is not None and note["title"].startswith("预验收工程名录（2026-11-26 至 2026-12-02）")
    assert thursday["number"] in note["body"] and far["number"] not in note["body"]
    assert users["supervisor"] in {n["user"] for n in db.notifications.find({"key": {"$regex": "^list:"}})}
    assert db.duty_runs.find_one({"_id": "pre_acceptance_list:2026-W48"})["state"] == "done"


def test_a_packs_duty_switched_off_is_not_claimed(app, client, db, calendar, root):
    assert post(client, "pre_acceptance_list", at="09:00", weekday="2", types="pre_acceptance", statuses="open",
                date_field="inspection_date", window_from="1", window_to="8").status_code == 302  # enabled unticked
    assert db.duty_schedules.find_one({"_id": "pre_acceptance_list"})["enabled"] is False
    assert "pre_acceptance_list" not in claimed(app, local("2026-11-25T09:05"))
    assert "未启用" not in client.get("/admin/schedules/").get_data(as_text=True)
    assert "已停用" in client.get("/admin/schedules/").get_data(as_text=True)


@pytest.fixture
def users(db, seeded):
    return {u["username"]: u["_id"] for u in db.users.find({}, {"username": 1})}
