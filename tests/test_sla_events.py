"""Clocks that start on an event (a field taking a value, a field first filled in) and clocks that tell people
when they start (``notify_at_start``), asserted on the HTTP answers and the stored records (issue 18)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from tests.test_records_api import assert_error

EVENTS = {
    "key": "event_probe", "name": "事件时限测试", "number_prefix": "EV",
    "fields": [
        {"key": "level", "label": "等级", "type": "choice", "choices": ["一般", "重要", "重大"], "default": "一般"},
        {"key": "plan", "label": "处理方案", "type": "textarea"},
    ],
    "sla": [
        # 003 §4.1.3: the 重要 steps count from the moment the level became 重要, not from intake.
        {"key": "important_register", "name": "重要投诉登记", "start": "field:level=重要",
         "within": {"working_days": 1}, "when": {"level": "重要"}},
        # 003 §4.1.3: plan approval within 12 h only once a plan exists.
        {"key": "plan_approval", "name": "方案审批", "start": "field:plan", "within": {"hours": 12}},
        # 004 投诉处理: a 重大 complaint — the project manager and the manager are told at once, a short clock.
        {"key": "major_start", "name": "重大投诉启动处理", "start": "field:level=重大", "within": {"minutes": 30},
         "when": {"level": "重大"}, "notify_at_start": ["项目总监", "manager"]},
    ],
}


@pytest.fixture
def probe(client, admin, calendar):
    response = client.post("/api/v1/types", json=EVENTS, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)


def create(client, headers, **values) -> dict:
    response = client.post("/api/v1/records/event_probe", json=values, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def patch(client, headers, record: dict, **values) -> dict:
    response = client.patch(f"/api/v1/records/event_probe/{record['id']}", json={"version": record["version"], **values},
                            headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def stored(db, record_id) -> dict:
    return db.records.find_one({"_id": ObjectId(record_id)})


def test_a_level_clock_starts_when_the_level_becomes_important(client, admin, probe, db):
    # 003 §4.1.3: a complaint that becomes 重要 later is not overdue from intake.
    record = create(client, admin, level="一般")
    assert "important_register" not in record["sla"]
    document = stored(db, record["id"])
    assert "important_register" not in document["sla"] and document["sla_marks"] == []

    raised = patch(client, admin, record, level="重要")
    document = stored(db, record["id"])
    clock = document["sla"]["important_register"]
    assert clock["started_at"] == document["updated_at"] > document["created_at"]
    assert raised["sla"]["important_register"]["state"] == "on_time"
    assert document["sla_marks"] == [{"event": "level=重要", "at": document["updated_at"], "on": True}]

    lowered = patch(client, admin, raised, level="一般")
    document = stored(db, record["id"])
    assert "important_register" not in document["sla"]  # its `when` no longer holds
    assert document["sla_marks"][0]["on"] is False
    first_at = document["sla_marks"][0]["at"]

    again = patch(client, admin, lowered, level="重要")
    document = stored(db, record["id"])
    assert document["sla_marks"][0]["at"] == document["updated_at"] > first_at  # last took the value: restarts
    assert document["sla"]["important_register"]["started_at"] == document["updated_at"]
    assert again["sla"]["important_register"]["state"] == "on_time"


def test_a_clock_on_a_field_starts_when_it_is_first_filled(client, admin, probe, db):
    # 003 §4.1.3: plan approval within 12 h once a plan exists.
    record = create(client, admin)
    assert "plan_approval" not in stored(db, record["id"])["sla"]
    planned = patch(client, admin, record, plan="上门维修并补偿")
    document = stored(db, record["id"])
    first = document["updated_at"]
    assert document["sla"]["plan_approval"]["started_at"] == first
    assert document["sla"]["plan_approval"]["due_at"] == first + timedelta(hours=12)
    emptied = patch(client, admin, planned, plan="")
    patch(client, admin, emptied, plan="改为更换")
    assert stored(db, record["id"])["sla"]["plan_approval"]["started_at"] == first  # first filled: kept


def test_bad_field_events_are_refused_at_the_start(client, admin, calendar, db):
    definition = {**EVENTS, "key": "event_bad", "sla": [
        {"key": "a", "name": "甲", "start": "field:nothing=1", "within": {"hours": 1}},
        {"key": "b", "name": "乙", "start": "field:level=特急", "within": {"hours": 1}},
    ]}
    response = client.post("/api/v1/types", json=definition, headers=admin)
    message = assert_error(response, 422)["fields"]["sla"]
    assert "sla.a.start 的字段“nothing”不存在或为敏感字段" in message
    assert "sla.b.start 的值“特急”不在字段“level”的可选项中" in message
    assert db.record_types.find_one({"key": "event_bad"}) is None


@pytest.fixture
def users(db, seeded):
    return {u["username"]: u["_id"] for u in db.users.find({}, {"username": 1})}


def sweep_at(app, now: datetime):
    from kefu.notify.reminders import sweep

    with app.app_context():
        return sweep(now)


def test_a_major_complaint_tells_the_titles_and_roles_once_when_its_clock_starts(app, client, admin, probe, users,
                                                                                   db):
    # 004 投诉处理: "immediately" = notify the project manager (approval title) and the manager (role) at once.
    record = create(client, admin, level="重大")
    document = stored(db, record["id"])
    started = document["sla"]["major_start"]["started_at"]
    assert document["sla_next"] == started  # the sweep is due at once
    now = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert sweep_at(app, now).alerts.get("clock_started") == 1
    told = {n["user"] for n in db.notifications.find({"record_id": ObjectId(record["id"]), "kind": "clock_started"})}
    assert told == {users["approver"], users["manager"]}
    assert stored(db, record["id"])["sla"]["major_start"]["announced"] == started
    assert not sweep_at(app, now + timedelta(seconds=1)).alerts.get("clock_started")  # once per start
    assert db.notifications.count_documents({"record_id": ObjectId(record["id"]), "kind": "clock_started"}) == 2


def test_a_start_announced_late_is_noted_without_telling(app, client, admin, probe, users, db):
    record = create(client, admin, level="重大")
    started = stored(db, record["id"])["sla"]["major_start"]["started_at"]
    result = sweep_at(app, started + timedelta(days=2))
    assert not result.alerts.get("clock_started")
    assert stored(db, record["id"])["sla"]["major_start"]["announced"] == started
    assert db.notifications.count_documents({"kind": "clock_started"}) == 0
