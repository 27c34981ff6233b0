"""中介 pack (001 房地产中介公司客户关系优化制度): answered within 24 hours, every service step on its time node,
complaints on the promised deadline with a follow-up callback — on the shipped types, through the API."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from seed.demo import DEMO_PASSWORD
from tests.test_pack_commercial import (  # noqa: F401  (ready: a fixture)
    ago, change, clock, local, new, overdue_ids, ready, stored,
)


def agency_complaint(**values) -> dict:
    return {"complainant_name": "周八", "phone": "13512345678", "content": "带看迟到一小时",
            "promised_at": "2026-11-20T18:00", **values}


@pytest.mark.parametrize("type_key, values", [
    ("need", {"customer_name": "吴九", "phone": "13512345679", "business_type": "买卖", "district": "西湖区"}),
    ("agency_complaint", agency_complaint()),
])
def test_001_3_3_every_channel_answered_within_24_hours(client, agent, ready, db, type_key, values):
    """001 §三3: whatever the channel, the customer gets an effective response within 24 hours."""
    record = new(client, agent, type_key, received_at="2026-11-16T09:00", **values)
    respond = clock(db, record["id"], "respond")
    assert respond["due_at"] == local("2026-11-17T09:00") and respond["state"] == "overdue"
    change(client, agent, type_key, record["id"], status="处理中")
    assert clock(db, record["id"], "respond")["met_at"] is not None


def test_001_4_1_each_service_step_has_a_time_node_that_goes_overdue(client, agent, ready, db):
    """001 §四1: every step (需求分析 → 房源匹配 → 带看 → 谈判 → 签约) has an owner and a time node."""
    responsible = str(db.users.find_one({"username": "agent"})["_id"])
    late = new(client, agent, "service_step", step="带看", responsible=responsible, planned_at=ago(hours=2))
    ahead = new(client, agent, "service_step", step="谈判", responsible=responsible, planned_at="2099-01-05T10:00")
    assert clock(db, late["id"], "time_node")["state"] == "overdue"
    assert clock(db, late["id"], "time_node")["until"] is True
    assert clock(db, ahead["id"], "time_node")["due_at"] == local("2099-01-05T10:00")
    change(client, agent, "service_step", late["id"], done_at=ago(minutes=1), result="客户看房满意")
    assert clock(db, late["id"], "time_node")["state"] == "missed"


def test_001_5_1_complaint_deadline_is_the_one_promised_to_the_customer(client, agent, ready, db):
    """001 §五1: the handling deadline promised to the customer is required and is the clock (§五2: solved within)."""
    missing = client.post("/api/v1/records/agency_complaint", headers=agent,
                          json={**agency_complaint(), "promised_at": None})
    assert missing.status_code == 422 and "promised_at" in missing.get_json()["error"]["fields"]
    record = new(client, agent, "agency_complaint", **agency_complaint(received_at="2026-11-16T09:00"))
    promised = clock(db, record["id"], "promised")
    assert promised["due_at"] == local("2026-11-20T18:00") and promised["until"] is True


def test_001_5_3_closing_a_complaint_creates_the_follow_up_callback(client, agent, supervisor, ready, db):
    """001 §五3: after handling, a follow-up callback (跟踪回访) — created on closing, due in 7 working days."""
    record = new(client, agent, "agency_complaint", **agency_complaint(received_at=ago(hours=3)))
    change(client, supervisor, "agency_complaint", record["id"], status="处理中")
    change(client, supervisor, "agency_complaint", record["id"], status="已关闭", result="已向客户致歉并调整带看安排")
    callback = db.records.find_one({"source.id": stored(db, record["id"])["_id"]})
    assert callback is not None and callback["type"] == "callback"
    assert callback["data"]["callback_type"] == "投诉回访" and callback["data"]["customer_name"] == "周八"
    closed_at = stored(db, record["id"])["status_at"]["已关闭"]
    assert timedelta(days=7) <= callback["data"]["due_at"] - closed_at <= timedelta(days=21)
    assert clock(db, record["id"], "promised")["met_at"] is not None


def test_an_agency_sees_its_overdue_step_on_the_overdue_page(client, agent, ready, db, sign_in):
    """001 §四1: a step past its time node is listed on 逾期督办."""
    responsible = str(db.users.find_one({"username": "agent"})["_id"])
    late = new(client, agent, "service_step", step="签约", responsible=responsible, planned_at=ago(days=1))
    ahead = new(client, agent, "service_step", step="签约", responsible=responsible, planned_at=ago(days=-3))
    assert stored(db, late["id"])["sla_due"] < datetime.now(timezone.utc)
    sign_in("supervisor", DEMO_PASSWORD)
    listed = overdue_ids(client, "service_step")
    assert late["id"] in listed and ahead["id"] not in listed
