"""Follow-through records the shipped packs create by themselves (the ``spawn:`` sections, ``kefu.rules.spawn``):
004 沟通事项's confirmation of an important notice with every target, 002 日常流程's care after a store visit.

Records are registered through the API on the seeded working-day calendar; each test asserts the responses and the
stored documents (the spawned records, their clocks, 逾期督办 and the reminder sweep) and cites its clause.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bson import ObjectId

from kefu.core import clock as kefu_clock

from seed.demo import DEMO_PASSWORD
from tests.test_callbacks import working_days_after
from tests.test_pack_commercial import (  # noqa: F401  (ready: a fixture)
    SHANGHAI, change, clock, new, overdue_ids, ready, stored,
)


def spawned(db, record_id, rule: str | None = None) -> list[dict]:
    query = {"spawned_from.id": ObjectId(record_id), **({"spawned_from.rule": rule} if rule else {})}
    return list(db.records.find(query).sort("number", 1))


def days_ago(days: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=days)


IMPORTANT = {"title": "春节期间营业时间调整", "importance": "重要通知", "body": "春节期间商场营业时间调整为 10:00–20:00。",
             "targets": ["商户", "业户"], "methods": ["集中公告"]}


def test_004_an_important_notice_makes_one_confirmation_per_target(client, agent, ready, db):
    """004 沟通事项 2: 重要通知必须保证及时传达到告知对象 — publishing an important notice makes one 通知确认 per
    target, each with a clock until it is confirmed; 采用集中公告方式通知业户时，应再次电话确认 — for 业户 of a
    collective notice only a confirmation by 电话 meets the second clock. A general notice makes none."""
    notice = new(client, agent, "notice", **IMPORTANT)
    made = {m["data"]["target"]: m for m in spawned(db, notice["id"], "confirm_targets")}
    assert set(made) == {"商户", "业户"}
    source = stored(db, notice["id"])
    assert sorted(e["each"] for e in source["spawned"]) == sorted(made)
    for target, confirmation in made.items():
        link = confirmation["spawned_from"]
        assert confirmation["type"] == "notice_confirmation" and link["each"] == target
        assert confirmation["data"]["notice_title"] == IMPORTANT["title"]
        assert confirmation["data"]["notice_methods"] == ["集中公告"]
        assert confirmation["data"]["due_at"] == working_days_after(link["at"], 1) == link["due_at"]
        assert confirmation["sla"]["confirm"]["due_at"] == confirmation["data"]["due_at"]
        assert confirmation["assignee"] == source["created_by"]
    assert "phone_confirm" in made["业户"]["sla"] and "phone_confirm" not in made["商户"]["sla"]
    shown = client.get(f"/api/v1/records/notice_confirmation/{made['业户']['_id']}", headers=agent)
    assert shown.status_code == 200 and shown.get_json()["target"] == "业户"

    # Signed for by the merchant: confirmed. The 业户 signed too, but a collective notice needs their phone call.
    done = change(client, agent, "notice_confirmation", str(made["商户"]["_id"]), method="签收",
                  confirmed_at="2026-11-17T10:00")
    assert done["sla"]["confirm"]["state"] in ("met", "missed")
    change(client, agent, "notice_confirmation", str(made["业户"]["_id"]), method="签收",
           confirmed_at="2026-11-17T10:00")
    owners = stored(db, made["业户"]["_id"])["sla"]
    assert owners["confirm"]["met_at"] is not None and owners["phone_confirm"]["met_at"] is None
    change(client, agent, "notice_confirmation", str(made["业户"]["_id"]), method="电话")
    assert clock(db, made["业户"]["_id"], "phone_confirm")["met_at"] is not None

    # A target added later gets its confirmation from the same publication; a general notice gets none.
    change(client, agent, "notice", notice["id"], targets=["商户", "业户", "主力店"])
    assert sorted(m["data"]["target"] for m in spawned(db, notice["id"])) == sorted(["商户", "业户", "主力店"])
    general = new(client, agent, "notice", **{**IMPORTANT, "importance": "一般通知"})
    assert spawned(db, general["id"]) == [] and "spawned" not in stored(db, general["id"])


def test_004_an_unconfirmed_target_goes_overdue_and_is_chased(app, client, agent, ready, db, sign_in):
    """004 沟通事项 2: an unconfirmed target is overdue on 逾期督办 and chased — the overdue alert, then the reminder
    ladder every working day at 09:00 (the manager from the 2nd working day)."""
    from kefu.notify.reminders import sweep

    with kefu_clock.at(days_ago(12)):  # published 12 days ago: 1 working day has passed whatever the holidays
        notice = new(client, agent, "notice", **{**IMPORTANT, "targets": ["业委会"]})
    confirmation, = spawned(db, notice["id"])
    late = stored(db, confirmation["_id"])
    assert late["sla_due"] == late["sla"]["confirm"]["due_at"] < datetime.now(timezone.utc)

    assert sign_in("supervisor", DEMO_PASSWORD).status_code == 302
    assert str(confirmation["_id"]) in overdue_ids(client, "notice_confirmation")

    due = late["sla"]["confirm"]["due_at"]
    later = working_days_after(due, 2).replace(hour=9, minute=5, second=0)
    with app.app_context():
        sweep(due + timedelta(minutes=1))
        sweep(later)
    kinds = {n["kind"] for n in db.notifications.find({"record_id": confirmation["_id"]})}
    assert {"overdue", "ladder"} <= kinds
    chased = {n["user"] for n in db.notifications.find({"record_id": confirmation["_id"], "kind": "ladder"})}
    assert db.users.find_one({"username": "manager"})["_id"] in chased


CARE = {"send_off": ("送出门", timedelta(hours=1)), "day_3": ("3天", timedelta(days=3)),
        "day_5": ("5天", timedelta(days=5)), "week": ("一周", timedelta(days=7)),
        "half_month": ("半月", timedelta(days=15))}


def test_002_care_after_a_visit_at_send_off_3_5_7_and_15_days(app, client, agent, ready, db, sign_in):
    """002 日常流程 (客服部日常工作流程 1(2)): 上门客户进店咨询 … 不间断的跟进：送出门、3天、5天、一周、半月 — recording the
    send-off makes five 到访关怀 records due at those offsets, each with a clock that goes overdue when missed."""
    visit = new(client, agent, "store_visit", customer_name="陈女士", phone="13912345678", community="滨江花园")
    assert spawned(db, visit["id"]) == []  # still in the store: nothing yet

    with kefu_clock.at(days_ago(4 / 24)):  # the send-off recorded 4 hours ago
        change(client, agent, "store_visit", visit["id"], left_at="2026-11-18T15:30")
    made = {m["spawned_from"]["rule"]: m for m in spawned(db, visit["id"])}
    assert set(made) == set(CARE)
    for rule, (point, offset) in CARE.items():
        care = made[rule]
        assert care["type"] == "visit_care" and care["data"]["care_point"] == point
        assert care["data"]["customer_name"] == "陈女士" and "phone" in care["pii"]
        assert care["data"]["due_at"] == care["spawned_from"]["at"] + offset == care["sla"]["care"]["due_at"]
    assert len(stored(db, visit["id"])["spawned"]) == 5
    shown = client.get(f"/api/v1/records/visit_care/{made['day_3']['_id']}", headers=agent).get_json()
    assert shown["care_point"] == "3天" and shown["customer_name"] == "陈女士"

    # Saved again with the send-off still recorded: no second round of care.
    change(client, agent, "store_visit", visit["id"], needs="三居室全包")
    assert len(spawned(db, visit["id"])) == 5

    # The send-off message not sent within its hour is overdue on 逾期督办; the 3-day one, sent, meets its clock.
    assert stored(db, made["send_off"]["_id"])["sla_due"] < datetime.now(timezone.utc)
    assert sign_in("supervisor", DEMO_PASSWORD).status_code == 302
    assert str(made["send_off"]["_id"]) in overdue_ids(client, "visit_care")
    sent = change(client, agent, "visit_care", str(made["day_3"]["_id"]), sent_at="2026-11-21T10:00")
    assert sent["sla"]["care"]["state"] == "met"
    assert clock(db, made["day_3"]["_id"], "care")["met_at"] is not None
