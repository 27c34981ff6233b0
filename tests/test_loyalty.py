"""Tiers and points as data (issue 19; 001 §六2) and the grade's callback script and frequency (002 第五章)."""
from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from pymongo import monitoring

from seed.demo import DEMO_PASSWORD

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class FindLog(monitoring.CommandListener):
    """The ``find`` commands sent to one database, by collection (registered at import: every app built later
    reports to it)."""

    def __init__(self):
        self.database, self.seen = None, []

    def started(self, event):
        if event.database_name == self.database and event.command_name == "find":
            self.seen.append(event.command["find"])

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


FINDS = FindLog()
monitoring.register(FINDS)


@pytest.fixture
def crm(app, seeded, db):
    """A demo customer, the supervisor's actor and a helper that saves deals and moves them."""
    from kefu.org.customers import Customer
    from kefu.org.loyalty import ensure_indexes
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.records.write import create_record, update_record

    with app.test_request_context():
        ensure_indexes()
        customer = Customer.objects(archived__ne=True).order_by("created_at").first()
        actor = user_actor(User.objects(username="admin").get())

    def deal(amount, status="已成交"):
        with app.test_request_context():
            made = create_record("deal", {"kind": "买卖", "amount": amount, "customer": str(customer.pk),
                                          "customer_name": customer.name}, actor)
            return move(made, status) if status != made["status"] else made

    def move(document, status):
        with app.test_request_context():
            stored = db.records.find_one({"_id": document["_id"]})
            return update_record("deal", str(document["_id"]), {"status": status}, actor, version=stored["version"])

    return {"customer": customer.pk, "deal": deal, "move": move}


def test_completed_deal_gives_points_once_and_reopening_takes_them_back(app, client, admin, crm, db):
    record = crm["deal"]("1,250,000", status="洽谈中")
    assert db.points_entries.count_documents({"customer": crm["customer"]}) == 0
    record = crm["move"](record, "已成交")
    # A retried hook (a transaction retried after a write conflict) writes nothing more.
    from kefu.records.types import get_record_type
    from kefu.rules.loyalty import LoyaltySection
    with app.test_request_context():
        from kefu.records.actor import system_actor
        from kefu.records.sections import parsed
        deal_type = get_record_type("deal")
        LoyaltySection().after_save(deal_type, parsed(deal_type, "loyalty"), db.records.find_one({"_id": record["_id"]}),
                                    {"status": "洽谈中"}, {"status"}, system_actor())
    entries = list(db.points_entries.find({"customer": crm["customer"]}))
    assert [(e["points"], e["kind"]) for e in entries] == [(100 + 10 * 125, "deal")]  # 100 + 10 per 10,000
    body = client.get(f"/api/v1/customers/{crm['customer']}", headers=admin).get_json()
    assert body["customer"]["points"] == 1350 and body["customer"]["tier"] == "银卡"
    assert body["points_history"][0]["record"]["number"] == record["number"]

    crm["move"](record, "洽谈中")  # reopened: the points are taken back, the deal no longer counts
    account = db.loyalty_accounts.find_one({"_id": crm["customer"]})
    assert (account["balance"], account["deals"], account["tier"]) == (0, 0, "普通")
    assert db.points_entries.count_documents({"customer": crm["customer"], "kind": "reversal", "points": -1350}) == 1


def test_tier_moves_up_by_count_and_by_amount(app, crm, db):
    crm["deal"]("100")
    assert db.loyalty_accounts.find_one({"_id": crm["customer"]})["tier"] == "银卡"  # ≥ 1 deal
    crm["deal"]("2,999,900")
    assert db.loyalty_accounts.find_one({"_id": crm["customer"]})["tier"] == "金卡"  # ≥ 3,000,000 in amount
    crm["deal"]("100")
    crm["deal"]("100")
    crm["deal"]("100")
    account = db.loyalty_accounts.find_one({"_id": crm["customer"]})
    assert (account["deals"], account["tier"]) == (5, "钻石卡")  # ≥ 5 deals


def test_redemption_within_and_over_the_balance(client, admin, crm, db, sign_in):
    crm["deal"]("0")  # 100 points
    url = f"/api/v1/customers/{crm['customer']}/redeem"
    over = client.post(url, json={"points": 101, "reason": "礼品"}, headers=admin)
    assert over.status_code == 422 and "积分不足" in over.get_json()["error"]["fields"]["points"]
    assert db.points_entries.count_documents({"kind": "redeem"}) == 0
    assert db.loyalty_accounts.find_one({"_id": crm["customer"]})["balance"] == 100
    assert client.post(url, json={"points": 0, "reason": ""}, headers=admin).get_json()["error"]["fields"].keys() == \
        {"points", "reason"}
    done = client.post(url, json={"points": 60, "reason": "服务优惠券"}, headers=admin)
    assert done.status_code == 200 and done.get_json()["points"] == 40
    entry = db.points_entries.find_one({"kind": "redeem"})
    assert entry["points"] == -60 and "服务优惠券" in entry["reason"] and entry["by"] is not None

    sign_in("admin", DEMO_PASSWORD)
    page = client.get(f"/admin/customers/{crm['customer']}").get_data(as_text=True)
    token = TOKEN.search(page.split("kefu-redeem-form")[1]).group(1)
    refused = client.post(f"/admin/loyalty/redeem/{crm['customer']}", data={"csrf_token": token, "points": "41",
                                                                            "reason": "礼品"}, follow_redirects=True)
    assert "积分不足：当前余额 40" in refused.get_data(as_text=True) and "kefu-points-history" in refused.get_data(as_text=True)
    assert db.points_entries.count_documents({"kind": "redeem"}) == 1


def test_concurrent_redemptions_cannot_overdraw(app, crm, db):
    from kefu.core.errors import ValidationFailed
    from kefu.org.loyalty import redeem

    crm["deal"]("0")  # 100 points
    outcomes, barrier = [], threading.Barrier(4)

    def attempt():
        with app.app_context():
            barrier.wait()
            try:
                redeem(crm["customer"], 40, "礼品")
                outcomes.append("ok")
            except ValidationFailed:
                outcomes.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "ok", "refused", "refused"]
    assert db.loyalty_accounts.find_one({"_id": crm["customer"]})["balance"] == 20
    assert db.points_entries.count_documents({"kind": "redeem"}) == 2


def test_grade_duty_creates_callbacks_at_the_grades_frequency_once_per_period(app, crm, db):
    from kefu.core.clock import utcnow
    from kefu.rules.loyalty import grade_callbacks, save_settings
    from kefu.org.loyalty import settings

    with app.test_request_context():
        current = settings()
        current["grades"] = {"A": {"script": "A 类话术", "every_days": 7}, "B": {"script": "B 类话术", "every_days": 30},
                             "C": {"script": "C 类话术", "every_days": 30}}
        current["callback"] = {**current["callback"], "script_field": "opinion"}
        save_settings(current)
        db.customers.update_many({}, {"$set": {"grade": "C"}})
        db.customers.update_one({"_id": crm["customer"]}, {"$set": {"grade": "A"}})
        customers = db.customers.count_documents({"archived": {"$ne": True}})
        now = utcnow()
        grade_callbacks(now)
        grade_callbacks(now)  # the same run again: nothing more
        made = list(db.records.find({"grade_callback": {"$exists": True}}))
        assert len(made) == customers
        mine = next(d for d in made if d["customer"] == crm["customer"])
        assert mine["grade_callback"]["script"] == "A 类话术" and mine["data"]["opinion"] == "A 类话术"
        assert mine["data"]["callback_type"] == "定期回访" and mine["type"] == "callback"
        # the demo's setting sends them to 客服中心, whose supervisors see them (department scope)
        assert mine["department"] == db.departments.find_one({"name": "客服中心"})["_id"]
        assert db.loyalty_settings.find_one()["callback"]["values"]["department"] == "客服中心"
        grade_callbacks(now + timedelta(days=3))
        assert db.records.count_documents({"grade_callback": {"$exists": True}}) == customers
        grade_callbacks(now + timedelta(days=8))  # A's 7 days are over, C's 30 are not
        later = list(db.records.find({"grade_callback": {"$exists": True}, "_id": {"$nin": [d["_id"] for d in made]}}))
        assert [d["customer"] for d in later] == [crm["customer"]]


def test_bad_settings_get_messages_at_the_field_in_english(client, sign_in, db, seeded):
    sign_in("admin", DEMO_PASSWORD)
    shipped = db.loyalty_settings.find_one()  # stored at start (kefu.runtime.storage)
    page = client.get("/admin/loyalty/").get_data(as_text=True)
    token = TOKEN.search(page.split("kefu-loyalty-form")[1]).group(1)
    form = {"csrf_token": token, "tiers": "普通\n银卡 | x", "callback_type": "nope", "callback_name_field": "",
            "callback_script_field": "", "callback_values": "", "every_days_A": "0", "every_days_B": "30",
            "every_days_C": "30", "script_A": "", "script_B": "", "script_C": ""}
    answer = client.post("/admin/loyalty/", data=form).get_data(as_text=True)
    assert "第 2 行：成交笔数应为" in answer and "记录类型“nope”不存在" in answer
    assert answer.count("invalid-feedback") >= 3 or answer.count("is-invalid") >= 3
    assert list(db.loyalty_settings.find()) == [shipped]
    client.get("/locale/en?next=/admin/")
    english = client.get("/admin/loyalty/").get_data(as_text=True)
    assert "Membership tiers and callbacks by grade" in english and "会员等级与客户分级回访" not in english


def test_customer_list_shows_the_tier(client, sign_in, crm, db):
    crm["deal"]("100")
    sign_in("admin", DEMO_PASSWORD)
    assert "普通" in client.get("/admin/customers/").get_data(as_text=True)
    name = db.customers.find_one({"_id": crm["customer"]})["name"]
    found = client.get("/admin/customers/", query_string={"search": name}).get_data(as_text=True)
    assert '<td class="col-tier">' in found.replace("\n", "") or "银卡" in found
    assert "银卡" in found


def test_customer_list_reads_the_tiers_once_per_page(client, sign_in, crm, db):
    crm["deal"]("100")
    sign_in("admin", DEMO_PASSWORD)
    FINDS.database, FINDS.seen = db.name, []
    try:
        page = client.get("/admin/customers/").get_data(as_text=True)
    finally:
        FINDS.database = None
    assert page.count('class="col-tier"') >= 20  # a full page of customers (of 200), each with its tier
    assert FINDS.seen.count("loyalty_accounts") == 1 and FINDS.seen.count("loyalty_settings") == 1


def test_grade_callback_key_is_unique_and_a_racing_run_makes_each_once(app, crm, db):
    from kefu.core.clock import utcnow
    from kefu.rules.loyalty import grade_callbacks

    index = db.records.index_information()["grade_callback"]
    assert index["unique"] and index["key"] == [("grade_callback.key", 1)]
    db.customers.update_many({}, {"$set": {"grade": "X"}})  # no frequency: left alone
    chosen = [c["_id"] for c in db.customers.find({"archived": {"$ne": True}}, {"_id": 1}).limit(6)]
    db.customers.update_many({"_id": {"$in": chosen}}, {"$set": {"grade": "A"}})
    now, outcomes, barrier = utcnow(), [], threading.Barrier(2)

    def run():
        with app.test_request_context():
            barrier.wait()
            try:
                outcomes.append(grade_callbacks(now))
            except Exception as exc:  # noqa: BLE001 - a duplicate key escaping the duty is the failure shown
                outcomes.append(repr(exc))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(o.startswith("grade callbacks created") and o.endswith("failed: 0") for o in outcomes), outcomes
    made = sorted(d["customer"] for d in db.records.find({"grade_callback": {"$exists": True}}, {"customer": 1}))
    assert made == sorted(chosen)
    assert sum(int(re.search(r"created: (\d+)", o).group(1)) for o in outcomes) == 6


def test_history_links_only_deals_the_reader_may_read(app, client, sign_in, crm, db, make_user):
    from tests.conftest import csrf_token

    record = crm["deal"]("100")
    link = f"/admin/records/deal/details/?id={record['_id']}"
    # An agent of another department keeps the archive but may not read the centre's deal: the number, no link.
    make_user("engineer_agent", role="agent", department="工程部")
    sign_in("engineer_agent")
    response = client.get(f"/admin/customers/{crm['customer']}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and f"成交 {record['number']}" in page and link not in page
    assert db.points_entries.find_one({"customer": crm["customer"]})["record"]["id"] == record["_id"]
    admin = app.test_client()
    admin.post("/login", data={"username": "admin", "password": DEMO_PASSWORD,
                               "csrf_token": csrf_token(admin, "/login")})
    assert link in admin.get(f"/admin/customers/{crm['customer']}").get_data(as_text=True)
