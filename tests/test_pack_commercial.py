"""商业物业 pack (004 销售管理与客户关系方案): every handbook deadline of the shipped commercial types runs as data.

Each test registers records through the API on the seeded working-day calendar and asserts the response and the
stored ``sla`` state; its name or comment cites the clause. The helpers here are shared by the other pack tests
(tests/test_pack_renovation.py, test_pack_agency.py, test_pack_developer.py).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from seed.demo import DEMO_PASSWORD

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    """A Shanghai wall-clock time as an aware datetime ("2026-11-16T09:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def ago(**delta) -> str:
    """The form/API text of a moment that long before now (local time, minutes)."""
    return (datetime.now(timezone.utc) - timedelta(**delta)).astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def stored(db, record_id) -> dict:
    return db.records.find_one({"_id": ObjectId(record_id)})


def new(client, headers, type_key: str, **values) -> dict:
    response = client.post(f"/api/v1/records/{type_key}", json=values, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def change(client, headers, type_key: str, record_id: str, **values) -> dict:
    current = client.get(f"/api/v1/records/{type_key}/{record_id}", headers=headers).get_json()
    response = client.patch(f"/api/v1/records/{type_key}/{record_id}", headers=headers,
                            json={"version": current["version"], **values})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def clock(db, record_id, key: str) -> dict:
    """The stored state of one clock (fails when the record has no such clock)."""
    clocks = stored(db, record_id).get("sla") or {}
    assert key in clocks, f"no clock {key!r}: {sorted(clocks)}"
    return clocks[key]


def overdue_ids(client, type_key: str) -> list[str]:
    """The records 逾期督办 (/admin/overdue/) lists for ``type_key``; ``client`` is signed in."""
    response = client.get("/admin/overdue/", query_string={"type": type_key})
    assert response.status_code == 200
    return re.findall(r'<tr data-id="([0-9a-f]{24})">', response.get_data(as_text=True))


def complaint(**values) -> dict:
    return {"channel": "来电", "complainant_name": "王五", "phone": "13712345678", "category": "商品",
            "content": "购买的商品有质量问题", **values}


@pytest.fixture
def ready(seeded, calendar):
    """Demo data (the shipped types, users) and the working-day calendar."""


# --- 商业投诉 (004 投诉处理) -------------------------------------------------------------------------------

def test_004_complaint_major_starts_within_30_minutes_not_at_once(client, agent, ready, db):
    """004 投诉处理 1 (重大 即时报告项目经理): a short clock, not "0 小时" — forwarded in 5 minutes is on time — and the
    project manager and the 客服经理 are told at once (the reminder sweep is due at the start)."""
    record = new(client, agent, "mall_complaint", **complaint(received_at=ago(minutes=5), level="重大"))
    document = stored(db, record["id"])
    major = document["sla"]["major_start"]
    assert major["due_at"] - major["started_at"] == timedelta(minutes=30)
    assert major["started_at"] == document["created_at"] and document["sla_next"] == major["started_at"]
    assert record["sla"]["major_start"]["state"] != "overdue"
    assert "important_start" not in record["sla"] and "resolve" not in record["sla"]
    change(client, agent, "mall_complaint", record["id"], status="处理中")
    assert clock(db, record["id"], "major_start")["state"] == "met"


def test_004_major_complaint_tells_the_manager_once(app, client, agent, ready, db):
    """004 投诉处理 1: "即时报告" — the sweep tells the 客服经理 (role manager) once when the clock starts."""
    from kefu.notify.reminders import sweep

    record = new(client, agent, "mall_complaint", **complaint(level="重大"))
    with app.app_context():
        sweep(datetime.now(timezone.utc) + timedelta(seconds=1))
    told = {n["user"] for n in db.notifications.find({"record_id": ObjectId(record["id"]), "kind": "clock_started"})}
    assert db.users.find_one({"username": "manager"})["_id"] in told


def test_004_complaint_important_counts_from_becoming_important(client, agent, ready, db):
    """004 投诉处理 2: 重要 — the department head starts within 1 hour, counted from the moment it became 重要
    (a complaint received yesterday and raised now is not overdue at once)."""
    record = new(client, agent, "mall_complaint", **complaint(received_at=ago(days=1)))
    assert "important_start" not in record["sla"]
    change(client, agent, "mall_complaint", record["id"], level="重要")
    document = stored(db, record["id"])
    important = document["sla"]["important_start"]
    assert important["started_at"] == document["updated_at"] and important["state"] != "overdue"
    assert important["due_at"] - important["started_at"] == timedelta(hours=1)
    assert "resolve" not in document["sla"]  # the 2-day clock is the general complaint's


def test_004_complaint_general_resolved_within_2_days_or_the_agreed_deadline(client, agent, ready, db):
    """004 投诉处理 3: 一般 — within 2 days, or within the deadline the complainant asked for (until)."""
    plain = new(client, agent, "mall_complaint", **complaint(received_at="2026-11-16T09:00"))
    assert plain["level"] == "一般"  # (a second complaint of the same phone and category would be 重要)
    assert clock(db, plain["id"], "resolve")["due_at"] == local("2026-11-18T09:00")
    agreed = new(client, agent, "mall_complaint", **complaint(received_at="2026-11-16T09:00", phone="13712345679",
                                                             agreed_deadline="2026-11-25T17:00"))
    resolve = clock(db, agreed["id"], "resolve")
    assert resolve["due_at"] == local("2026-11-25T17:00") and resolve["until"] is True


def test_004_complaint_waiting_for_the_complainant_pauses_the_clock(client, agent, ready, db):
    """004 投诉处理 3 (按照相关方要求): while waiting for the complainant the 2-day clock stands still."""
    record = new(client, agent, "mall_complaint", **complaint(received_at=ago(hours=1)))
    change(client, agent, "mall_complaint", record["id"], status="处理中")
    change(client, agent, "mall_complaint", record["id"], status="等待投诉人")
    document = stored(db, record["id"])
    assert document["paused_since"] is not None and document["sla_open"] == []


# --- 维修工作单 (004 受理业户报修) -----------------------------------------------------------------------

def work_order(**values) -> dict:
    return {"reporter_name": "李四", "phone": "13812345678", "content": "店铺空调不制冷", **values}


def test_004_work_order_picked_up_within_30_minutes(client, agent, ready, db):
    """004 受理业户报修 1: 物业管理部 picks the 《维修工作单》 up within half an hour."""
    record = new(client, agent, "work_order", **work_order(reported_at="2026-11-16T09:00"))
    pickup = clock(db, record["id"], "pickup")
    assert pickup["due_at"] == local("2026-11-16T09:30") and pickup["state"] == "overdue"
    assert "repair" not in record["sla"]  # no completion time agreed yet: nothing to chase
    change(client, agent, "work_order", record["id"], picked_up_at="2026-11-16T09:20")
    assert clock(db, record["id"], "pickup")["met_at"] is not None


def test_004_work_order_late_repair_is_chased(client, agent, ready, db):
    """004 受理业户报修 管理控制 2: a repair not done by the agreed time is overdue (and so chased daily)."""
    record = new(client, agent, "work_order", **work_order(reported_at=ago(hours=30), picked_up_at=ago(hours=29),
                                                           promised_fix_at=ago(hours=6)))
    repair = clock(db, record["id"], "repair")
    assert repair["until"] is True and repair["state"] == "overdue"
    assert stored(db, record["id"])["sla_next"] is not None  # the reminder ladder has an alert scheduled


# --- 服务申请 (004 各类服务申请) --------------------------------------------------------------------------

def test_004_service_request_handed_back_within_1_working_day_of_approval(client, agent, ready, db):
    """004 各类服务申请 3: the approved 《服务申请单》 goes back to the applicant within 1 working day, counted from
    the moment it was approved."""
    record = new(client, agent, "service_request", applicant="赵六", service_item="延时营业",
                 applied_at="2026-11-12T10:00")
    assert "hand_back" not in record["sla"]  # not approved yet
    change(client, agent, "service_request", record["id"], approval="同意")
    document = stored(db, record["id"])
    hand_back = document["sla"]["hand_back"]
    assert hand_back["started_at"] == document["updated_at"] and hand_back["window"] == {"working_days": 1}
    due = hand_back["due_at"].astimezone(SHANGHAI)
    assert (due.hour, due.minute) == (23, 59) and due.date() > hand_back["started_at"].astimezone(SHANGHAI).date()
    change(client, agent, "service_request", record["id"], handed_back_at=ago(minutes=1))
    assert clock(db, record["id"], "hand_back")["state"] == "met"


# --- 借用物品 (004 有偿服务) -------------------------------------------------------------------------------

def loan(**values) -> dict:
    return {"borrower": "孙七", "phone": "13912345678", "item": "梯子", **values}


def test_004_item_loan_due_back_at_the_agreed_time_else_after_the_free_hour(client, agent, ready, db):
    """004 有偿服务 2–3: due back at the agreed time (借用物品登记表); without one, after the free hour."""
    agreed = new(client, agent, "item_loan", **loan(lent_at="2026-11-16T09:00", due_back_at="2026-11-16T15:00"))
    assert clock(db, agreed["id"], "due_back")["due_at"] == local("2026-11-16T15:00")
    plain = new(client, agent, "item_loan", **loan(lent_at="2026-11-16T09:00"))
    assert clock(db, plain["id"], "due_back")["due_at"] == local("2026-11-16T10:00")
    assert clock(db, plain["id"], "due_back")["state"] == "overdue"  # not returned: chased (督促归还)


def test_004_item_loan_deposit_refunded_on_return(client, agent, ready, db):
    """004 有偿服务 4: a deposit taken is refunded on return, against the receipt."""
    record = new(client, agent, "item_loan", **loan(lent_at=ago(hours=3), deposit="100", due_back_at=ago(hours=1)))
    assert "deposit_refund" not in record["sla"]  # not returned yet
    change(client, agent, "item_loan", record["id"], returned_at=ago(minutes=10))
    refund = clock(db, record["id"], "deposit_refund")
    assert refund["due_at"] - refund["started_at"] == timedelta(hours=1) and refund["met_at"] is None
    assert clock(db, record["id"], "due_back")["state"] == "missed"  # returned two hours after the agreed time
    change(client, agent, "item_loan", record["id"], deposit_refunded=True)
    assert clock(db, record["id"], "deposit_refund")["state"] == "met"


def test_004_item_loan_fee_over_one_hour_at_the_published_rate(client, agent, ready, db):
    """004 有偿服务 2: a loan longer than 1 hour is charged at the published rate — computed, not typed."""
    short = new(client, agent, "item_loan", **loan(lent_at="2026-11-16T09:00", returned_at="2026-11-16T09:50",
                                                   hourly_rate="10"))
    assert stored(db, short["id"])["data"]["fee"].to_decimal() == Decimal("0.00")
    record = new(client, agent, "item_loan", **loan(lent_at="2026-11-16T09:00", hourly_rate="10", quantity=2))
    assert stored(db, record["id"])["data"].get("fee") is None  # not returned yet
    answer = change(client, agent, "item_loan", record["id"], returned_at="2026-11-16T11:10")
    assert answer["fee"] == "60.00"  # 3 started hours × ¥10 × 2 items
    assert stored(db, record["id"])["data"]["fee"].to_decimal() == Decimal("60.00")
    typed = client.post("/api/v1/records/item_loan", headers=agent, json=loan(fee="5"))
    assert typed.status_code == 422 and "fee" in typed.get_json()["error"]["fields"]


# --- 通知 (004 沟通事项) -----------------------------------------------------------------------------------

def test_004_collective_important_notice_needs_phone_confirmation(client, agent, ready, db):
    """004 沟通事项 2: an important notice announced collectively to 业户 is confirmed again by phone."""
    values = {"title": "停水通知", "body": "周二 22:00 起停水", "targets": ["业户"]}
    confirm = new(client, agent, "notice", importance="重要通知", methods=["集中公告"], published_at="2026-11-16T10:00",
                  **values)
    assert clock(db, confirm["id"], "phone_confirm")["due_at"] == local("2026-11-17T23:59:59")
    general = new(client, agent, "notice", importance="一般通知", methods=["集中公告"], **values)
    assert "phone_confirm" not in general["sla"]
    change(client, agent, "notice", confirm["id"], phone_confirmed=True)
    assert clock(db, confirm["id"], "phone_confirm")["met_at"] is not None


# --- 逾期督办 -----------------------------------------------------------------------------------------------

def test_a_mall_company_sees_its_overdue_complaint_on_the_overdue_page(client, agent, ready, db, sign_in):
    """The issue's case: a 重大 商业投诉 registered three days ago and never started is listed on 逾期督办."""
    from kefu.core import clock as kefu_clock

    three_days_ago = datetime.now(timezone.utc) - timedelta(days=3)
    with kefu_clock.at(three_days_ago):
        late = new(client, agent, "mall_complaint", **complaint(received_at=ago(days=3), level="重大"))
    fresh = new(client, agent, "mall_complaint", **complaint(received_at=ago(minutes=1), phone="13712345670"))
    major = clock(db, late["id"], "major_start")
    assert major["started_at"] < datetime.now(timezone.utc) - timedelta(days=2)  # registered back then
    assert major["due_at"] < datetime.now(timezone.utc) and stored(db, late["id"])["sla_due"] == major["due_at"]
    sign_in("supervisor", DEMO_PASSWORD)
    listed = overdue_ids(client, "mall_complaint")
    assert late["id"] in listed and fresh["id"] not in listed


def test_004_a_missed_callback_stays_overdue(app, client, agent, supervisor, ready, db):
    """004 跟踪并反馈 4 (closed → called back within 3 working days): the 商业回访 carries a clock until its due date,
    so a missed callback stays on 逾期督办 instead of disappearing after its due day."""
    from kefu.records.types import get_record_type
    from kefu.rules import sla

    record = new(client, agent, "mall_complaint", **complaint(phone="13712345671"))
    change(client, supervisor, "mall_complaint", record["id"], status="已关闭", result="已退货")
    callback = db.records.find_one({"source.id": ObjectId(record["id"])})
    due = callback["data"]["due_at"]
    assert callback["type"] == "mall_callback" and callback["sla"]["callback_due"]["due_at"] == due
    with app.app_context():
        sla.refresh(get_record_type("mall_callback"), callback["_id"], now=due + timedelta(days=3))
    late = db.records.find_one({"_id": callback["_id"]})
    assert late["sla"]["callback_due"]["state"] == "overdue" and late["sla_live"] == 1
