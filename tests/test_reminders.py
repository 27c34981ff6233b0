"""The SLA sweep: due-soon and overdue alerts, the follow-up ladder, re-arming, reopening, quiet hours — each
alert once, on the real calendar and a real MongoDB; the sweep runs at fixed moments (``sweep(now=…)``)."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

SHANGHAI = ZoneInfo("Asia/Shanghai")

PROBE = {
    "key": "remind_probe", "name": "提醒测试", "number_prefix": "RP",
    "fields": [
        {"key": "received_at", "label": "受理时间", "type": "datetime", "required": True},
        {"key": "level", "label": "等级", "type": "choice", "choices": ["一般", "重要", "重大"], "default": "一般"},
        {"key": "agreed", "label": "约定期限", "type": "datetime"},
        {"key": "content", "label": "内容", "type": "textarea"},
    ],
    "workflow": {"statuses": ["待受理", "处理中", "等待客户", "已关闭", "重新打开"], "closed": ["已关闭"],
                 "pausing": ["等待客户"]},
    "sla": [{"key": "resolve", "name": "处理完成", "start": "received_at", "within": {"hours": 24},
             "until": "agreed", "done_when": {"status": ["已关闭"]}}],
    "reminders": {"ladder": {"at": "09:00", "manager_after": 2}},
}


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture
def probe(client, admin, calendar):
    response = client.post("/api/v1/types", json=PROBE, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)


@pytest.fixture
def users(db, seeded):
    return {u["username"]: u["_id"] for u in db.users.find({}, {"username": 1})}


def new_record(client, headers, received_at: datetime, users, **values) -> dict:
    body = {"received_at": received_at.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M"),
            "assignee": str(users["agent"]), "content": "卫生间漏水", **values}
    response = client.post("/api/v1/records/remind_probe", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def sweep_at(app, now: datetime):
    from kefu.notify.reminders import sweep

    with app.app_context():
        return sweep(now.astimezone(timezone.utc))


def notes(db, record_id=None, **query) -> list[dict]:
    if record_id is not None:
        query["record_id"] = ObjectId(record_id)
    return list(db.notifications.find(query).sort([("created_at", 1), ("_id", 1)]))


def recipients(items, users) -> dict[str, set]:
    names = {v: k for k, v in users.items()}
    result: dict[str, set] = {}
    for item in items:
        result.setdefault(item["kind"], set()).add(names[item["user"]])
    return result


def test_due_soon_then_overdue_each_once_to_the_right_people(app, client, admin, probe, users, db):
    received = local("2026-11-16T10:00")  # Monday; due 11-17 10:00; due soon from 11-17 05:12
    record = new_record(client, admin, received, users)
    stored = db.records.find_one({"_id": ObjectId(record["id"])})
    assert stored["sla_next"] == stored["sla"]["resolve"]["warn_at"]

    assert sweep_at(app, local("2026-11-17T04:00")).notifications == 0
    result = sweep_at(app, local("2026-11-17T06:00"))
    assert result.alerts == {"due_soon": 1} and result.notifications == 1
    assert recipients(notes(db, record["id"]), users) == {"due_soon": {"agent"}}
    stored = db.records.find_one({"_id": ObjectId(record["id"])})
    assert stored["sla"]["resolve"]["state"] == "due_soon" and stored["sla"]["resolve"]["alerts"]["due_soon"]
    assert stored["sla_next"] == stored["sla"]["resolve"]["due_at"]
    assert sweep_at(app, local("2026-11-17T07:00")).notifications == 0  # nothing twice

    result = sweep_at(app, local("2026-11-17T10:05"))
    assert result.alerts == {"overdue": 1}
    assert recipients(notes(db, record["id"]), users) == {"due_soon": {"agent"}, "overdue": {"agent", "supervisor"}}
    overdue = notes(db, record["id"], kind="overdue")[0]
    assert overdue["title"] == f"【已逾期】提醒测试 {record['number']}：处理完成"
    assert "已于 2026-11-17 10:00 到期，现已逾期 5 分钟" in overdue["body"]
    assert f"/admin/records/remind_probe/details/?id={record['id']}" in overdue["body"]
    assert db.records.find_one({"_id": ObjectId(record["id"])})["sla"]["resolve"]["state"] == "overdue"
    assert sweep_at(app, local("2026-11-17T11:00")).notifications == 0
    assert db.notifications.count_documents({}) == 3


def test_overdue_ladder_every_working_day_at_nine_and_the_manager_from_day_two(app, client, admin, probe, users,
                                                                               db):
    received = local("2025-09-29T15:00")  # Monday; due Tuesday 9-30 15:00, then National Day 10-1…10-8
    record = new_record(client, admin, received, users)
    sweep_at(app, local("2025-09-30T16:00"))
    assert recipients(notes(db, record["id"]), users) == {"overdue": {"agent", "supervisor"}}

    assert sweep_at(app, local("2025-10-01T09:30")).alerts == {}  # a holiday: no follow-up
    result = sweep_at(app, local("2025-10-09T09:01"))  # first working day after the deadline
    assert result.alerts == {"ladder": 1}
    first = notes(db, record["id"], kind="ladder")
    assert {n["user"] for n in first} == {users["agent"]} and "第 1 个工作日" in first[0]["title"]
    assert sweep_at(app, local("2025-10-09T17:00")).alerts == {}

    result = sweep_at(app, local("2025-10-10T09:00"))
    assert result.alerts == {"ladder": 1}
    second = [n for n in notes(db, record["id"], kind="ladder") if "第 2 个工作日" in n["title"]]
    # The next level: whoever may reassign the record anywhere (the shipped manager and admin roles).
    assert {n["user"] for n in second} == {users["agent"], users["manager"], users["admin"]}
    # Saturday 10-11 is a make-up workday (调休上班): the ladder goes on.
    assert sweep_at(app, local("2025-10-11T09:00")).alerts == {"ladder": 1}
    assert sweep_at(app, local("2025-10-12T09:00")).alerts == {}  # Sunday


def test_after_an_outage_only_the_latest_step_is_sent(app, client, admin, probe, users, db):
    received = local("2026-11-02T10:00")  # due Tuesday 11-03 10:00
    record = new_record(client, admin, received, users)
    result = sweep_at(app, local("2026-11-09T12:00"))  # the sweep was down for a week
    assert result.alerts == {"overdue": 1}
    # Four working days have passed the deadline already: the manager hears of it at once, once.
    assert recipients(notes(db, record["id"]), users) == {"overdue": {"agent", "supervisor", "manager", "admin"}}
    assert sweep_at(app, local("2026-11-09T13:00")).alerts == {}
    assert sweep_at(app, local("2026-11-10T09:00")).alerts == {"ladder": 1}


def test_a_record_overdue_since_2012_gets_its_ladder_step_at_once(app, client, admin, probe, users, db):
    """Fourteen years overdue: the sweep counts the follow-up step directly (the one a day-by-day walk of the
    calendar finds), sends one overdue alert with the managers, then the next step the next working morning."""
    from kefu.calendar.workcalendar import get_calendar

    record = new_record(client, admin, local("2012-03-05T10:00"), users)  # Monday; due Tuesday 03-06 10:00
    with app.app_context():
        calendar = get_calendar()
    day, walked = date(2012, 3, 6), 0
    while day < date(2026, 11, 10):  # the working days after the deadline's day, up to Tuesday 11-10
        day += timedelta(days=1)
        walked += calendar.is_workday(day)

    result = sweep_at(app, local("2026-11-10T09:30"))  # 09:00 of 11-10 has come: it counts
    assert result.alerts == {"overdue": 1}
    assert recipients(notes(db, record["id"]), users) == {"overdue": {"agent", "supervisor", "manager", "admin"}}
    stored = db.records.find_one({"_id": ObjectId(record["id"])})
    alerts = stored["sla"]["resolve"]["alerts"]
    assert alerts["ladder"] == walked and walked > 3500
    assert alerts["for_due"] == local("2012-03-06T10:00")
    assert stored["sla_next"] == local("2026-11-11T09:00")

    assert sweep_at(app, local("2026-11-10T18:00")).alerts == {}
    assert sweep_at(app, local("2026-11-11T09:00")).alerts == {"ladder": 1}
    ladder = notes(db, record["id"], kind="ladder")
    assert {n["user"] for n in ladder} == {users["agent"], users["manager"], users["admin"]}
    assert ladder[0]["title"] == f"【逾期跟进·第 {walked + 1} 个工作日】提醒测试 {record['number']}：处理完成"
    assert db.records.find_one({"_id": ObjectId(record["id"])})["sla"]["resolve"]["alerts"]["ladder"] == walked + 1


def test_a_deadline_moved_later_re_arms_its_reminders(app, client, admin, probe, users, db):
    received = local("2026-11-16T10:00")
    record = new_record(client, admin, received, users)
    sweep_at(app, local("2026-11-17T10:30"))
    assert [n["kind"] for n in notes(db, record["id"])] == ["overdue", "overdue"]

    # The customer agreed to a later date: a new deadline, its own reminders.
    response = client.patch(f"/api/v1/records/remind_probe/{record['id']}", headers=admin,
                            json={"agreed": "2026-11-20T18:00", "version": record["version"]})
    assert response.status_code == 200, response.get_data(as_text=True)
    stored = db.records.find_one({"_id": ObjectId(record["id"])})
    assert stored["sla"]["resolve"]["alerts"] == {}
    assert stored["sla_next"] == stored["sla"]["resolve"]["warn_at"]
    assert sweep_at(app, local("2026-11-18T10:00")).alerts == {}
    assert sweep_at(app, local("2026-11-20T17:00")).alerts == {"due_soon": 1}
    assert sweep_at(app, local("2026-11-20T18:01")).alerts == {"overdue": 1}
    assert [n["kind"] for n in notes(db, record["id"])].count("overdue") == 4  # two per deadline


def test_reopening_a_closed_record_does_not_fire_the_old_deadline(app, client, admin, probe, users, db):
    received = datetime.now(timezone.utc) - timedelta(hours=30)
    record = new_record(client, admin, received, users)
    for status in ("已关闭", "重新打开"):
        current = client.get(f"/api/v1/records/remind_probe/{record['id']}", headers=admin).get_json()
        response = client.patch(f"/api/v1/records/remind_probe/{record['id']}", headers=admin,
                                json={"status": status, "version": current["version"]})
        assert response.status_code == 200, response.get_data(as_text=True)
    stored = db.records.find_one({"_id": ObjectId(record["id"])})
    assert stored["sla"]["resolve"]["due_at"] > datetime.now(timezone.utc) + timedelta(hours=23)
    assert sweep_at(app, datetime.now(timezone.utc)).alerts == {}
    assert notes(db, record["id"]) == []  # the deadline 6 hours ago was met by closing; nothing stale fires


def test_a_paused_record_is_not_reminded(app, client, admin, probe, users, db):
    record = new_record(client, admin, datetime.now(timezone.utc) - timedelta(hours=30), users, status="等待客户")
    assert db.records.find_one({"_id": ObjectId(record["id"])})["sla_next"] is None
    assert sweep_at(app, datetime.now(timezone.utc) + timedelta(days=3)).alerts == {}


def test_no_assignee_tells_the_supervisors(app, client, admin, probe, users, db):
    response = client.post("/api/v1/records/remind_probe", headers=admin, json={
        "received_at": "2026-11-16T10:00", "content": "无人负责"})
    record = response.get_json()
    sweep_at(app, local("2026-11-17T06:00"))
    assert recipients(notes(db, record["id"]), users) == {"due_soon": {"supervisor"}}


def test_a_company_role_that_may_reassign_across_the_department_is_told_like_the_supervisor(app, client, admin,
                                                                                           probe, users, db,
                                                                                           make_user):
    """Who supervises a record is read from the roles' permissions: a company's 组长 allowed to reassign the type
    within the department hears of it as the shipped supervisor does; a role that may only edit it does not."""
    from kefu.org.roles import save_role

    with app.app_context():
        save_role({"key": "team_lead", "name": "组长", "grants": [
            {"record_type": "remind_probe", "actions": ["read", "edit", "reassign"], "scope": "department"}]},
            {"remind_probe"})
        save_role({"key": "clerk", "name": "文员", "grants": [
            {"record_type": "remind_probe", "actions": ["read", "edit"], "scope": "department"}]}, {"remind_probe"})
        lead, clerk = make_user("lead1", role="team_lead").pk, make_user("clerk1", role="clerk").pk
    record = new_record(client, admin, local("2026-11-16T10:00"), users)
    assert sweep_at(app, local("2026-11-17T10:05")).alerts == {"overdue": 1}
    told = {n["user"] for n in notes(db, record["id"], kind="overdue")}
    assert told == {users["agent"], users["supervisor"], lead} and clerk not in told


def test_two_sweeps_at_once_write_each_alert_once(app, client, admin, probe, users, db):
    received = local("2026-11-16T10:00")
    created = [new_record(client, admin, received, users) for _ in range(30)]
    now = local("2026-11-17T10:30")
    results, errors = [], []

    def run():
        try:
            results.append(sweep_at(app, now))
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert db.notifications.count_documents({"kind": "overdue"}) == 2 * len(created)
    assert sum(r.notifications for r in results) == 2 * len(created)
    assert len(db.notifications.distinct("key")) == db.notifications.count_documents({})


def test_a_sweep_that_read_a_record_before_another_marked_it_leaves_the_newer_marks(app, client, admin, probe,
                                                                                      users, db):
    # The prompt sweep and the minute duty run on different workers: one may write its marks for a record after
    # the other, which read it later, has written newer ones (the next alert time further on).
    from kefu.records.engine_state import mark_alerts

    record = new_record(client, admin, local("2026-11-16T10:00"), users)
    before = db.records.find_one({"_id": ObjectId(record["id"])})
    assert sweep_at(app, local("2026-11-18T09:30")).alerts == {"overdue": 1}
    marked = db.records.find_one({"_id": ObjectId(record["id"])})
    assert marked["sla_next"] > before["sla_next"]

    with app.app_context():
        stale = mark_alerts([(before["_id"], before["sla_rev"], before["sla_next"], {"sla_next": before["sla_next"]})])
    assert stale == 0
    assert db.records.find_one({"_id": ObjectId(record["id"])})["sla_next"] == marked["sla_next"]


def test_sweep_queries_use_the_sla_next_index(app, client, admin, probe, users, db):
    new_record(client, admin, local("2026-11-16T10:00"), users)
    plan = db.records.find({"sla_next": {"$lte": datetime.now(timezone.utc), "$type": "date"}}).sort(
        "sla_next", 1).explain()["queryPlanner"]["winningPlan"]
    assert "IXSCAN" in str(plan) and "sla_next" in str(plan) and "COLLSCAN" not in str(plan)


# -- quiet hours ----------------------------------------------------------------------------------------------

@pytest.fixture
def email_on(app, users, db):
    """SMTP configured (to a host never contacted here: deliveries are only queued) and addresses for users."""
    from kefu.notify.channels import save_settings

    with app.app_context():
        save_settings({"smtp_host": "127.0.0.1", "smtp_port": 2, "smtp_from": "kefu@example.com"},
                      app.extensions["kefu_cipher"])
    for username in ("agent", "supervisor", "manager"):
        db.users.update_one({"username": username}, {"$set": {"email": f"{username}@example.com"}})


def test_quiet_hours_hold_email_until_the_next_working_morning(app, client, admin, probe, users, db, email_on):
    record = new_record(client, admin, local("2026-11-19T22:00"), users)  # Thursday; due Friday 22:00
    sweep_at(app, local("2026-11-20T22:30"))
    deliveries = list(db.deliveries.find({"record_id": ObjectId(record["id"])}))
    assert {d["target"] for d in deliveries} == {"agent@example.com", "supervisor@example.com"}
    # Friday night → Monday 09:00 (the weekend is off); the inbox has them at once.
    assert {d["not_before"].astimezone(SHANGHAI) for d in deliveries} == {local("2026-11-23T09:00")}
    assert db.notifications.count_documents({"record_id": ObjectId(record["id"])}) == 2
    with app.app_context():
        from kefu.notify.notifications import due_deliveries

        assert due_deliveries(local("2026-11-21T10:00").astimezone(timezone.utc)) == []
        assert len(due_deliveries(local("2026-11-23T09:00").astimezone(timezone.utc))) == 2


def test_major_items_go_out_at_once_even_at_night(app, client, admin, probe, users, db, email_on):
    record = new_record(client, admin, local("2026-11-19T22:00"), users, level="重大")
    now = local("2026-11-20T22:30")
    sweep_at(app, now)
    deliveries = list(db.deliveries.find({"record_id": ObjectId(record["id"])}))
    assert deliveries and all(d["urgent"] and d["not_before"].astimezone(SHANGHAI) == now for d in deliveries)


def test_next_send_time_follows_the_company_calendar(app, calendar):
    from kefu.calendar.workcalendar import get_calendar
    from kefu.notify.channels import NotificationSettings, next_send_time

    settings = NotificationSettings()
    with app.app_context():
        cal = get_calendar()

        def at(text):
            return next_send_time(local(text).astimezone(timezone.utc), settings, cal, SHANGHAI).astimezone(SHANGHAI)

        assert at("2025-09-30T19:00") == local("2025-10-09T09:00")  # National Day: 10-1…10-8 off
        assert at("2025-10-11T08:00") == local("2025-10-11T09:00")  # Saturday make-up workday
        assert at("2026-11-18T12:00") == local("2026-11-18T12:00")  # inside the window: now
        settings.quiet_enabled = False
        assert at("2026-11-21T03:00") == local("2026-11-21T03:00")


def test_a_bad_reminders_section_is_refused_with_a_chinese_message(client, admin, calendar, db):
    bad = {**PROBE, "reminders": {"ladder": {"at": "9点", "manager_after": 0}, "daily": 5}}
    response = client.post("/api/v1/types", json=bad, headers=admin)
    assert response.status_code == 422
    message = response.get_json()["error"]["fields"]["reminders"]
    assert "不认识的项：daily" in message and "09:00" in message and "manager_after" in message
    assert db.record_types.count_documents({"key": "remind_probe"}) == 0


def test_sweep_command_prints_what_it_did(app, client, admin, probe, users, db):
    new_record(client, admin, datetime.now(timezone.utc) - timedelta(hours=30), users)
    result = app.test_cli_runner().invoke(args=["kefu", "sweep"])
    assert result.exit_code == 0, result.output
    assert "records swept: 1; alerts: overdue 1; notifications created: 2" in result.output
    assert db.notifications.count_documents({}) == 2
