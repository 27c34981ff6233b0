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
    assert {"tier", "points"} <= set(body["customer"])
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
