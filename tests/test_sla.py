"""SLA clocks on the real working-day calendar: due times, states, explanations, pauses, filters, recomputation.

The expected dates are the State Council's published arrangements (National Day 2025, Spring Festival 2026
with its Saturday make-up days) and the fallback for a year not entered yet (January 2027).
"""
from __future__ import annotations

import copy
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from tests.test_records_api import assert_error, create

SHANGHAI = ZoneInfo("Asia/Shanghai")

PROBE = {
    "key": "sla_probe", "name": "时限测试", "number_prefix": "SP",
    "fields": [
        {"key": "received_at", "label": "受理时间", "type": "datetime", "required": True},
        {"key": "level", "label": "等级", "type": "choice", "choices": ["一般", "重要", "重大"], "default": "一般"},
        {"key": "agreed", "label": "约定期限", "type": "datetime"},
        {"key": "result", "label": "处理结果", "type": "textarea", "required_on_close": True},
    ],
    "workflow": {
        "statuses": ["待受理", "处理中", "等待客户", "已关闭", "重新打开"],
        "transitions": {"待受理": ["处理中", "等待客户"], "处理中": ["等待客户", "已关闭"], "等待客户": ["处理中"],
                        "已关闭": ["重新打开"], "重新打开": ["处理中"]},
        "closed": ["已关闭"], "pausing": ["等待客户"], "rework": "处理中",
    },
    "sla": [
        {"key": "resolve", "name": "处理完成", "start": "received_at", "within": {"working_days": 7},
         "by_level": {"重要": {"hours": 1}}, "until": "agreed", "done_when": {"status": ["已关闭"]}},
        {"key": "answer", "name": "首次响应", "start": "received_at", "within": {"hours": 24},
         "done_when": {"status": ["处理中", "已关闭"]}},
    ],
}


@pytest.fixture
def probe(client, admin, calendar):
    response = client.post("/api/v1/types", json=PROBE, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)


def new_probe(client, headers, received_at: str, **values) -> dict:
    response = client.post("/api/v1/records/sla_probe", json={"received_at": received_at, **values}, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def stored(db, record_id) -> dict:
    return db.records.find_one({"_id": ObjectId(record_id)})


# --- due times on the real calendar -----------------------------------------------------------------

def test_seven_working_days_across_national_day_2025(client, admin, probe, db):
    record = new_probe(client, admin, "2025-09-30T16:00")

    resolve = record["sla"]["resolve"]
    assert resolve["due_at"] == "2025-10-16T23:59:59+08:00"
    assert resolve["state"] == "overdue"
    assert resolve["explanation"] == ("9-30 16:00 起 7 个工作日，跳过 10-1…10-8 国庆节、10-12 周末，10-11 调休上班"
                                      " → 10-16 23:59 截止")
    document = stored(db, record["id"])
    assert document["sla"]["resolve"]["due_at"] == datetime(2025, 10, 16, 15, 59, 59, tzinfo=timezone.utc)
    assert document["sla_due"] == datetime(2025, 10, 1, 8, 0, tzinfo=timezone.utc)  # the 24-hour clock is earlier
    assert {c["clock"] for c in document["sla_open"]} == {"resolve", "answer"}


def test_spring_festival_2026_counts_the_saturday_make_up_day(client, admin, probe):
    record = new_probe(client, admin, "2026-02-13T10:00")

    resolve = record["sla"]["resolve"]
    # 2-14 (Saturday, make-up) 1, 2-24 2, 2-25 3, 2-26 4, 2-27 5, 2-28 (Saturday, make-up) 6, 3-2 7.
    assert resolve["due_at"] == "2026-03-02T23:59:59+08:00"
    assert "2-14 调休上班" in resolve["explanation"] and "2-28 调休上班" in resolve["explanation"]
    assert "2-15…2-23 春节" in resolve["explanation"]


def test_a_year_not_entered_falls_back_to_weekends_and_fixed_holidays(client, admin, probe):
    record = new_probe(client, admin, "2026-12-28T09:00")

    resolve = record["sla"]["resolve"]
    # 12-29, 12-30, 12-31, (1-1 元旦, 1-2/1-3 weekend), 1-4, 1-5, 1-6, 1-7.
    assert resolve["due_at"] == "2027-01-07T23:59:59+08:00"
    assert "2027 年节假日未录入" in resolve["explanation"]


def test_level_override_and_agreed_deadline(client, admin, probe, db):
    record = new_probe(client, admin, "2026-11-20T09:30", level="重要")
    assert record["sla"]["resolve"]["due_at"] == "2026-11-20T10:30:00+08:00"
    assert record["sla"]["resolve"]["explanation"].startswith("等级“重要”：11-20 09:30 起 1 小时")

    lowered = client.patch(f"/api/v1/records/sla_probe/{record['id']}", json={"version": 1, "level": "一般"},
                           headers=admin)
    assert lowered.status_code == 200, lowered.get_data(as_text=True)
    assert lowered.get_json()["sla"]["resolve"]["due_at"] == "2026-12-01T23:59:59+08:00"

    agreed = client.patch(f"/api/v1/records/sla_probe/{record['id']}",
                          json={"version": 2, "agreed": "2026-11-25T18:00"}, headers=admin)
    assert agreed.get_json()["sla"]["resolve"]["due_at"] == "2026-11-25T18:00:00+08:00"
    assert stored(db, record["id"])["sla"]["resolve"]["until"] is True


# --- states --------------------------------------------------------------------------------------------

def test_done_clocks_are_met_or_missed(client, admin, probe, db):
    now = datetime.now(timezone.utc)
    late = new_probe(client, admin, (now - timedelta(hours=30)).astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M"))
    prompt = new_probe(client, admin, now.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M"))
    for record in (late, prompt):
        response = client.patch(f"/api/v1/records/sla_probe/{record['id']}", json={"version": 1, "status": "处理中"},
                                headers=admin)
        assert response.status_code == 200, response.get_data(as_text=True)
    assert client.get(f"/api/v1/records/sla_probe/{late['id']}", headers=admin).get_json()["sla"]["answer"][
        "state"] == "missed"
    assert client.get(f"/api/v1/records/sla_probe/{prompt['id']}", headers=admin).get_json()["sla"]["answer"][
        "state"] == "met"
    document = stored(db, prompt["id"])
    assert document["sla"]["answer"]["met_at"] is not None
    assert [c["clock"] for c in document["sla_open"]] == ["resolve"] and document["sla_live"] == 1


def test_overdue_and_due_soon_filters(client, admin, probe):
    now = datetime.now(timezone.utc)

    def at(hours_ago):
        return (now - timedelta(hours=hours_ago)).astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")

    overdue = new_probe(client, admin, at(30), agreed=at(-200))
    due_soon = new_probe(client, admin, at(21), agreed=at(-200))  # 24 h clock: due soon in its last 4.8 h
    on_time = new_probe(client, admin, at(1), agreed=at(-200))

    def ids(**query):
        body = client.get("/api/v1/records/sla_probe", query_string=query, headers=admin).get_json()
        assert body["total"] == len(body["items"])
        return {item["id"] for item in body["items"]}

    assert ids(overdue="true") == {overdue["id"]}
    assert ids(due_soon="true") == {due_soon["id"]}
    assert ids() == {overdue["id"], due_soon["id"], on_time["id"]}
    listed = client.get("/api/v1/records/sla_probe", query_string={"sort": "sla_due"}, headers=admin).get_json()
    assert [item["id"] for item in listed["items"]] == [overdue["id"], due_soon["id"], on_time["id"]]
    # Lists carry each clock's deadline and state; the explanation comes with the single record only.
    clocks = [clock for item in listed["items"] for clock in item["sla"].values()]
    assert clocks and all(clock["due_at"] and clock["state"] and "explanation" not in clock for clock in clocks)
    single = client.get(f"/api/v1/records/sla_probe/{overdue['id']}", headers=admin).get_json()
    assert all(clock["explanation"] for clock in single["sla"].values())
    assert_error(client.get("/api/v1/records/sla_probe", query_string={"overdue": "maybe"}, headers=admin), 400)


def test_pausing_status_stops_the_clock_and_adds_the_time_back(client, admin, probe, db, monkeypatch):
    import kefu.records.timeline
    import kefu.records.write
    import kefu.rules.sla

    t0 = datetime(2026, 11, 16, 1, 0, tzinfo=timezone.utc)  # Monday 09:00 Shanghai
    clock = {"now": t0}
    monkeypatch.setattr(kefu.records.write, "utcnow", lambda: clock["now"])
    monkeypatch.setattr(kefu.records.timeline, "utcnow", lambda: clock["now"])
    monkeypatch.setattr(kefu.rules.sla, "utcnow", lambda: clock["now"])
    record = new_probe(client, admin, "2026-11-16T09:00", level="重要")  # resolve: 1 hour
    assert stored(db, record["id"])["sla"]["resolve"]["due_at"] == t0 + timedelta(hours=1)

    clock["now"] = t0 + timedelta(minutes=20)
    paused = client.patch(f"/api/v1/records/sla_probe/{record['id']}", json={"version": 1, "status": "等待客户"},
                          headers=admin)
    assert paused.status_code == 200, paused.get_data(as_text=True)
    document = stored(db, record["id"])
    assert document["paused_since"] == clock["now"] and document["sla_open"] == [] and document["sla_due"] is None

    clock["now"] = t0 + timedelta(hours=3, minutes=20)  # 3 hours waiting for the customer
    resumed = client.patch(f"/api/v1/records/sla_probe/{record['id']}", json={"version": 2, "status": "处理中"},
                           headers=admin)
    assert resumed.status_code == 200
    document = stored(db, record["id"])
    assert document["paused_since"] is None
    assert document["sla"]["resolve"]["paused_s"] == 3 * 3600
    assert document["sla"]["resolve"]["due_at"] == t0 + timedelta(hours=4)
    assert document["sla"]["resolve"]["state"] == "due_soon"
    explanation = resumed.get_json()["sla"]["resolve"]["explanation"]
    assert "暂停 3 小时 0 分，顺延至 11-16 13:00" in explanation


def test_reopening_a_closed_record_starts_a_new_window(client, admin, probe, db):
    record = new_probe(client, admin, "2025-09-30T16:00")
    version = 1
    for values in ({"status": "处理中"}, {"status": "已关闭", "result": "已维修"}):
        response = client.patch(f"/api/v1/records/sla_probe/{record['id']}", json={"version": version, **values},
                                headers=admin)
        assert response.status_code == 200, response.get_data(as_text=True)
        version += 1
    closed = stored(db, record["id"])
    assert closed["sla"]["resolve"]["state"] == "missed" and closed["sla_due"] is None and closed["sla_live"] == 0

    reopened = client.patch(f"/api/v1/records/sla_probe/{record['id']}", json={"version": version, "status": "重新打开"},
                            headers=admin)
    assert reopened.status_code == 200
    resolve = reopened.get_json()["sla"]["resolve"]
    assert resolve["state"] == "on_time"  # not the 2025 deadline again
    assert datetime.fromisoformat(resolve["due_at"]) > datetime.now(timezone.utc) + timedelta(days=5)


# --- workflow ------------------------------------------------------------------------------------------

def test_workflow_refuses_moves_it_does_not_allow_and_closing_without_result(client, admin, probe, db):
    record = new_probe(client, admin, "2026-11-20T09:30")
    refused = client.patch(f"/api/v1/records/sla_probe/{record['id']}", json={"version": 1, "status": "已关闭"},
                           headers=admin)
    error = assert_error(refused, 422)
    assert "不能从“待受理”改为“已关闭”" in error["message"] and "处理中" in error["message"]
    assert stored(db, record["id"])["status"] == "待受理"

    moved = client.patch(f"/api/v1/records/sla_probe/{record['id']}", json={"version": 1, "status": "处理中"},
                         headers=admin)
    assert moved.status_code == 200
    no_result = client.patch(f"/api/v1/records/sla_probe/{record['id']}", json={"version": 2, "status": "已关闭"},
                             headers=admin)
    error = assert_error(no_result, 422)
    assert error["fields"] == {"result": "关闭前请填写“处理结果”"}
    assert stored(db, record["id"])["status"] == "处理中"
    events = [e["text"] for e in db.record_events.find({"record_id": ObjectId(record["id"]), "kind": "status"})]
    assert events == ["待受理 → 处理中"]


def test_invalid_sla_and_workflow_sections_are_refused_in_chinese(client, admin, calendar, db):
    broken = copy.deepcopy(PROBE)
    broken["sla"][0]["within"] = {"weeks": 1}
    broken["sla"][1]["start"] = "level"
    broken["workflow"]["pausing"] = ["午休"]
    error = assert_error(client.post("/api/v1/types", json=broken, headers=admin), 422)
    assert "单位“weeks”不存在" in error["fields"]["sla"]
    assert "start 应为 created、status:状态、field:字段=值、field:字段 或一个日期时间字段" in error["fields"]["sla"]
    assert "“午休”不在 statuses 中" in error["fields"]["workflow"]
    assert db.record_types.count_documents({"key": "sla_probe"}) == 0


# --- calendar edits and the shipped complaint -----------------------------------------------------------

def test_editing_the_calendar_moves_open_deadlines(app, client, admin, probe, db):
    from rq import SimpleWorker

    from kefu.calendar.workcalendar import set_range

    record = new_probe(client, admin, "2026-12-28T09:00")
    assert stored(db, record["id"])["sla"]["resolve"]["due_at"] == local("2027-01-07T23:59:59")

    with app.test_request_context():
        set_range(date(2027, 1, 4), date(2027, 1, 5), "holiday", "公司年假")
    with app.app_context():  # the edit queued the recompute (jobs.calendar): a worker does it
        SimpleWorker(["default"], connection=app.extensions["kefu_redis"]).work(burst=True, with_scheduler=False)

    assert stored(db, record["id"])["sla"]["resolve"]["due_at"] == local("2027-01-11T23:59:59")


def test_shipped_complaint_carries_the_handbook_deadlines(client, agent, calendar, db, sign_in):
    from seed.demo import DEMO_PASSWORD

    record = create(client, agent, received_at="2025-09-30T16:00", level="一般")
    clocks = record["sla"]
    assert clocks["forward"]["due_at"] == "2025-09-30T19:00:00+08:00"  # 3 hours
    assert clocks["verify"]["due_at"] == "2025-10-01T16:00:00+08:00"  # engineering: 24 hours
    assert clocks["plan"]["due_at"] == "2025-10-02T16:00:00+08:00"  # 48 hours
    assert clocks["resolve"]["due_at"] == "2025-10-02T16:00:00+08:00"  # general: 2 days
    assert "plan_approval" not in clocks and "important_plan" not in clocks

    sign_in("agent", DEMO_PASSWORD)
    page = client.get(f"/admin/records/complaint/details/?id={record['id']}").get_data(as_text=True)
    assert "9-30 16:00 起 3 小时 → 9-30 19:00 截止" in page and "已逾期" in page
