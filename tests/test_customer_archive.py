"""一户一档 (issue 19): the 360° archive lists every record of every type linked to a customer, each record links back,
and merging two archives of the same person keeps every link."""
from __future__ import annotations

import pytest

from seed.demo import DEMO_PASSWORD


@pytest.fixture
def linked(app, seeded):
    """Two demo customers; a complaint and a consultation linked to the first, a complaint to the second."""
    from kefu.org.customers import Customer
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.records.write import create_record

    with app.test_request_context():
        first, second = Customer.objects(archived__ne=True).order_by("created_at")[:2]
        agent = user_actor(User.objects(username="agent").get())

        def complaint(customer):
            return create_record("complaint", {
                "channel": ["来电"], "project": str(customer.project.pk), "owner_name": customer.name,
                "phone": "13900001111", "content": "渗水", "category": "工程质量", "customer": str(customer.pk)}, agent)

        records = [complaint(first), create_record("consultation", {
            "customer_name": first.name, "question": "交房时间？", "customer": str(first.pk)}, agent), complaint(second)]
        return {"first": first.pk, "second": second.pk, "records": records}


def test_archive_lists_records_of_several_types_newest_first(client, supervisor, linked, db):
    response = client.get(f"/api/v1/customers/{linked['first']}", headers=supervisor)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["customer"]["id"] == str(linked["first"]) and body["customer"]["grade"] in ("A", "B", "C")
    assert [item["type"] for item in body["timeline"]] == ["consultation", "complaint"]
    assert body["counts"] == {"consultation": 1, "complaint": 1}
    assert {"tier", "points"} <= set(body["customer"]) and body["total"] == 2
    assert db.records.count_documents({"customer": linked["first"]}) == 2


def test_archive_page_and_record_pages_link_to_each_other(client, sign_in, linked):
    sign_in("supervisor", DEMO_PASSWORD)
    complaint = linked["records"][0]
    page = client.get(f"/admin/customers/{linked['first']}").get_data(as_text=True)
    assert complaint["number"] in page and f"/admin/records/complaint/details/?id={complaint['_id']}" in page
    details = client.get(f"/admin/records/complaint/details/?id={complaint['_id']}").get_data(as_text=True)
    assert f'href="/admin/customers/{linked["first"]}"' in details
    listing = client.get("/admin/customers/?search=" + details.split('kefu-customer-link')[1].split(">")[1].split("<")[0])
    assert f'/admin/customers/{linked["first"]}"' in listing.get_data(as_text=True)


def test_bad_ids_answer_404_with_a_message(client, supervisor, sign_in, linked):
    for bad in ("nope", "0" * 24):
        response = client.get(f"/api/v1/customers/{bad}", headers=supervisor)
        assert response.status_code == 404 and response.get_json()["error"]["message"]
    sign_in("supervisor", DEMO_PASSWORD)
    assert client.get("/admin/customers/nope").status_code == 404


def test_merge_relinks_every_record_and_archives_the_removed_one(app, linked, db):
    from kefu.core.errors import PermissionDenied
    from kefu.insight.customer_merge import merge_customers
    from kefu.org.users import User
    from kefu.records.actor import user_actor

    with app.test_request_context():
        handler = user_actor(User.objects(username="handler").get())
        with pytest.raises(PermissionDenied):
            merge_customers(linked["first"], linked["second"], handler)
        result = merge_customers(linked["first"], linked["second"], user_actor(User.objects(username="agent").get()))
    moved = linked["records"][2]["_id"]
    assert result["moved"] == [str(moved)]
    assert db.records.count_documents({"customer": linked["first"]}) == 3
    assert db.records.count_documents({"customer": linked["second"]}) == 0
    removed = db.customers.find_one({"_id": linked["second"]})
    assert removed["archived"] is True and removed["merged_into"] == linked["first"]
    assert db.record_events.find_one({"record_id": moved, "text": {"$regex": "客户档案合并"}}) is not None
    assert db.audit_log.find_one({"action": "customer_merge", "customer_removed": linked["second"]}) is not None


def test_merge_moves_points_balance_and_survey_answers_and_recomputes_the_tier(client, sign_in, supervisor, linked,
                                                                                db):
    from bson import ObjectId

    from kefu.insight.customer_merge import SURVEY_ANSWERS
    from kefu.org import loyalty
    from kefu.surveys.answers import ANSWERS
    from tests.conftest import csrf_token

    assert SURVEY_ANSWERS == ANSWERS
    first, second = linked["first"], linked["second"]
    # 银卡 (1 deal) and 2 deals of 1,500,000: together 3 deals and 3,000,100 yuan, 金卡 (≥ 3 deals).
    loyalty.grant_deal(first, {"type": "deal", "id": ObjectId(), "number": "CJ-1"}, "a", 100, 10_000)
    for n in (2, 3):
        loyalty.grant_deal(second, {"type": "deal", "id": ObjectId(), "number": f"CJ-{n}"}, "a", 250,
                           150_000_000)
    assert db.loyalty_accounts.find_one({"_id": first})["tier"] == "银卡"
    asked, both = ObjectId(), ObjectId()
    db[ANSWERS].insert_many([
        {"survey": asked, "customer": second, "customer_name": "旧档案", "token": "t-asked", "answered_at": None},
        {"survey": both, "customer": second, "customer_name": "旧档案", "token": "t-both-2", "answered_at": None},
        {"survey": both, "customer": first, "customer_name": "保留", "token": "t-both-1", "answered_at": None}])

    sign_in("supervisor", DEMO_PASSWORD)
    response = client.post("/admin/customers/action/", data={
        "csrf_token": csrf_token(client, "/admin/customers/"), "action": "merge",
        "rowid": [str(first), str(second)]}, follow_redirects=True)
    assert response.status_code == 200 and "转移记录 1 条" in response.get_data(as_text=True)
    account = db.loyalty_accounts.find_one({"_id": first})
    assert (account["balance"], account["deals"], account["amount_cents"], account["tier"]) == \
        (600, 3, 300_010_000, "金卡")
    assert db.loyalty_accounts.find_one({"_id": second}) is None
    assert db.points_entries.count_documents({"customer": first}) == 3
    assert db.points_entries.count_documents({"customer": second}) == 0
    moved = db[ANSWERS].find_one({"token": "t-asked"})
    assert moved["customer"] == first and moved["customer_name"] == db.customers.find_one({"_id": first})["name"]
    assert db[ANSWERS].find_one({"token": "t-both-2"})["customer"] == second  # one respondent per survey
    audit = db.audit_log.find_one({"action": "customer_merge", "customer_removed": second})
    assert (audit["points_entries"], audit["survey_answers"]) == (2, 1)
    body = client.get(f"/api/v1/customers/{first}", headers=supervisor).get_json()
    assert (body["customer"]["points"], body["customer"]["tier"]) == (600, "金卡")
    assert {e["reason"] for e in body["points_history"]} >= {"成交 CJ-2", "成交 CJ-3"}

    # The merged archive redeems nothing: a message at the customer, nothing written.
    refused = client.post(f"/api/v1/customers/{second}/redeem", json={"points": 10, "reason": "礼品"},
                          headers=supervisor)
    assert refused.status_code == 422 and "已合并到其他档案" in refused.get_json()["error"]["fields"]["customer"]
    archive_page = client.get(f"/admin/customers/{second}").get_data(as_text=True)
    assert "kefu-redeem-form" not in archive_page and "kefu-redeem-closed" in archive_page
    assert db.points_entries.count_documents({"kind": "redeem"}) == 0


def _copies(db, record: dict, n: int, **changes) -> None:
    """``n`` stored copies of ``record`` (numbers of their own), written straight to the collection: data, not
    what is tested."""
    from bson import ObjectId

    stored = db.records.find_one({"_id": record["_id"]})
    db.records.insert_many([{**stored, **changes, "_id": ObjectId(), "number": f"{stored['number']}-{i:03d}"}
                            for i in range(n)])


def test_a_long_timeline_says_how_many_and_each_type_opens_its_own(client, supervisor, sign_in, linked, db):
    _copies(db, linked["records"][0], 205)  # 206 complaints and 1 consultation linked to the first customer
    body = client.get(f"/api/v1/customers/{linked['first']}", headers=supervisor).get_json()
    assert len(body["timeline"]) == 200 and body["total"] == 207
    assert body["counts"] == {"complaint": 206, "consultation": 1}
    assert db.records.count_documents({"customer": linked["first"]}) == 207
    one_type = client.get(f"/api/v1/customers/{linked['first']}?type=consultation", headers=supervisor).get_json()
    assert [item["type"] for item in one_type["timeline"]] == ["consultation"] and one_type["total"] == 1
    bad = client.get(f"/api/v1/customers/{linked['first']}?type=nope", headers=supervisor)
    assert bad.status_code == 422 and bad.get_json()["error"]["fields"]["type"]

    sign_in("supervisor", DEMO_PASSWORD)
    page = client.get(f"/admin/customers/{linked['first']}").get_data(as_text=True)
    assert "kefu-archive-capped" in page and "207" in page
    assert f'href="/admin/customers/{linked["first"]}?type=consultation"' in page
    filtered = client.get(f"/admin/customers/{linked['first']}?type=consultation").get_data(as_text=True)
    assert linked["records"][1]["number"] in filtered and "kefu-archive-capped" not in filtered
    assert client.get(f"/admin/customers/{linked['first']}?type=nope").status_code == 302
