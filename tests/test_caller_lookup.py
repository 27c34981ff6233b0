"""来电弹屏 (issue 19): ``GET /api/v1/lookup?phone=`` and ``/admin/caller/?phone=`` find the caller's archive and every
record linked to them or carrying their number, within the reader's scope and masked per role; the number never
reaches a log."""
from __future__ import annotations

import logging

import pytest
from redis import Redis

from seed.demo import DEMO_PASSWORD

PHONE = "13912345678"


@pytest.fixture
def calls(app, seeded):
    """A demo customer with a known phone, a complaint linked to them and a consultation carrying only their number,
    both registered by the demo agent (客服中心)."""
    from kefu.org.customers import Customer, update_customer
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.records.write import create_record

    with app.test_request_context():
        customer = Customer.objects(archived__ne=True).first()
        update_customer(customer, {"phone": PHONE})
        agent = user_actor(User.objects(username="agent").get())
        complaint = create_record("complaint", {
            "channel": ["来电"], "project": str(customer.project.pk), "owner_name": customer.name, "phone": PHONE,
            "content": "地下车库渗水", "category": "工程质量", "customer": str(customer.pk)}, agent)
        consultation = create_record("consultation", {
            "customer_name": customer.name, "question": "交房时间？", "phone": "139 1234 5678"}, agent)
        return {"customer": str(customer.pk), "name": customer.name, "complaint": complaint,
                "consultation": consultation}


def test_lookup_finds_the_customer_and_every_record_unmasked_for_a_supervisor(client, supervisor, calls, db):
    response = client.get(f"/api/v1/lookup?phone={PHONE}", headers=supervisor)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert [c["id"] for c in body["customers"]] == [calls["customer"]]
    assert body["customers"][0]["phone"] == PHONE
    found = {r["id"]: r for r in body["records"]}
    assert set(found) == {str(calls["complaint"]["_id"]), str(calls["consultation"]["_id"])}
    complaint = found[str(calls["complaint"]["_id"])]
    assert complaint["number"] == calls["complaint"]["number"] and complaint["open"] is True
    assert complaint["customer"] == calls["customer"]
    stored = db.records.find_one({"_id": calls["complaint"]["_id"]})
    assert str(stored["customer"]) == calls["customer"]  # linked through the core field, as the lookup read it


def test_lookup_is_masked_without_personal_data_and_scoped_to_the_readers_records(client, agent, calls, make_user):
    body = client.get(f"/api/v1/lookup?phone={PHONE}", headers=agent).get_json()
    assert body["customers"][0]["phone"] != PHONE and "*" in body["customers"][0]["phone"]
    assert len(body["records"]) == 2  # the agent's own department registered both

    make_user("agent_elsewhere", role="agent", department="工程部")
    token = client.post("/api/v1/auth/token", json={"username": "agent_elsewhere", "password": "correct-horse"})
    elsewhere = {"Authorization": f"Bearer {token.get_json()['token']}"}
    body = client.get(f"/api/v1/lookup?phone={PHONE}", headers=elsewhere).get_json()
    assert body["records"] == []
    assert PHONE not in str(body)


def test_lookup_of_unknown_and_malformed_numbers(client, supervisor, calls, make_user):
    unknown = client.get("/api/v1/lookup?phone=13700000000", headers=supervisor)
    assert unknown.status_code == 200 and unknown.get_json() == {"customers": [], "records": [], "contacts": []}
    bad = client.get("/api/v1/lookup?phone=not-a-phone", headers=supervisor)
    assert bad.status_code == 422 and bad.get_json()["error"]["fields"].get("phone")
    make_user("handler1", role="handler")
    token = client.post("/api/v1/auth/token", json={"username": "handler1", "password": "correct-horse"})
    refused = client.get(f"/api/v1/lookup?phone={PHONE}",
                         headers={"Authorization": f"Bearer {token.get_json()['token']}"})
    assert refused.status_code == 403


def test_caller_page_shows_the_card_open_records_and_prefilled_buttons(client, sign_in, calls):
    sign_in("supervisor", DEMO_PASSWORD)
    page = client.get(f"/admin/caller/?phone={PHONE}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert calls["name"] in html and calls["complaint"]["number"] in html
    assert f"/admin/records/complaint/new/?customer={calls['customer']}" in html
    assert f"/admin/customers/{calls['customer']}" in html
    form = client.get(f"/admin/records/complaint/new/?customer={calls['customer']}").get_data(as_text=True)
    assert calls["name"] in form or calls["customer"] in form  # the customer is filled in

    unknown = client.get("/admin/caller/?phone=13700000000").get_data(as_text=True)
    assert "新来电" in unknown and "/admin/customers/new/?phone=13700000000" in unknown
    created = client.get("/admin/customers/new/?phone=13700000000").get_data(as_text=True)
    assert 'value="13700000000"' in created

    client.get("/locale/en")
    english = client.get("/admin/caller/?phone=13700000000")
    # The page's own strings read English once translations/ has their msgids (listed for the lead).
    assert english.status_code == 200 and "Customer Service Management" in english.get_data(as_text=True)


def test_the_callers_number_reaches_no_log(client, sign_in, supervisor, calls, caplog):
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from kefu.runtime.launcher import ACCESS_LOG_FORMAT

    caplog.set_level(logging.DEBUG)
    client.get(f"/api/v1/lookup?phone={PHONE}", headers=supervisor)
    sign_in("supervisor", DEMO_PASSWORD)
    client.get(f"/admin/caller/?phone={PHONE}")
    assert PHONE not in caplog.text

    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", ACCESS_LOG_FORMAT)
    lines = []
    logger = Logger(config)
    logger.access_log.info = lambda line, *args, **kwargs: lines.append(line % args[0] if args else line)
    uri = f"/admin/caller/?phone={PHONE}"
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": uri, "PATH_INFO": "/admin/caller/", "QUERY_STRING": f"phone={PHONE}",
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.8", "HTTP_REFERER": f"https://kefu{uri}",
               "HTTP_USER_AGENT": "softphone"}
    request = SimpleNamespace(method="GET", uri=uri, path="/admin/caller/", query=f"phone={PHONE}", version=(1, 1),
                              headers=[])
    response = SimpleNamespace(status="200 OK", status_code=200, response_length=10, sent=10, headers=[])
    logger.access(response, request, environ, timedelta(milliseconds=5))
    assert lines and "/admin/caller/" in lines[0] and PHONE not in lines[0], lines


UNIT = "3幢2单元1201"


@pytest.fixture
def household(app, seeded):
    """A customer of 钱塘·星澜苑 3幢2单元1201; a complaint naming the unit and no customer (registered by the demo
    agent), an answered callback linked to the customer, then a newer complaint linked to them."""
    from kefu.org.customers import create_customer
    from kefu.org.structure import Project, Unit
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.records.write import create_record

    with app.test_request_context():
        project = Project.objects(code="QTXLY").first()
        unit = Unit.objects(project=project, label=UNIT).first()
        customer = create_customer({"name": "司马可心", "phone": "13955556666", "project": project, "unit": unit})
        agent = user_actor(User.objects(username="agent").get())
        base = {"channel": ["来电"], "project": str(project.pk), "unit": str(unit.pk), "owner_name": "司马可心",
                "phone": "13955556666", "content": "门窗漏风", "category": "工程质量"}
        unlinked = create_record("complaint", base, agent)
        called = create_record("callback", {"callback_type": "投诉回访", "customer_name": "司马可心",
                                            "customer": str(customer.pk), "result": "满意"}, agent)
        newest = create_record("complaint", {**base, "customer": str(customer.pk)}, agent)
        return {"customer": str(customer.pk), "unlinked": unlinked, "called": called, "newest": newest}


def test_lookup_by_unit_finds_the_household_and_every_record_naming_the_unit(client, supervisor, household, db,
                                                                            make_user):
    response = client.get("/api/v1/lookup", query_string={"unit": "3-2-1201"}, headers=supervisor)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert household["customer"] in [c["id"] for c in body["customers"]]
    ids = {r["id"] for r in body["records"]}
    assert {str(household[k]["_id"]) for k in ("unlinked", "called", "newest")} <= ids
    stored = db.records.find_one({"_id": household["unlinked"]["_id"]})
    assert stored.get("customer") is None and str(stored["data"]["unit"])  # found by its unit field alone
    # 最近联系: the answered callback, not the newer complaint
    assert [(c["id"], c["result"]) for c in body["contacts"] if c["customer"] == household["customer"]] == [
        (str(household["called"]["_id"]), "满意")]

    make_user("agent_elsewhere", role="agent", department="工程部")
    token = client.post("/api/v1/auth/token", json={"username": "agent_elsewhere", "password": "correct-horse"})
    elsewhere = client.get("/api/v1/lookup", query_string={"unit": UNIT},
                           headers={"Authorization": f"Bearer {token.get_json()['token']}"}).get_json()
    assert household["customer"] in [c["id"] for c in elsewhere["customers"]]
    assert elsewhere["records"] == [] and elsewhere["contacts"] == []  # scoped: 客服中心 registered them

    bad = client.get("/api/v1/lookup", query_string={"unit": "3幢漏水"}, headers=supervisor)
    assert bad.status_code == 422 and bad.get_json()["error"]["fields"].get("unit")


def test_caller_page_by_unit_shows_last_contacts_with_their_result(client, sign_in, household):
    sign_in("supervisor", DEMO_PASSWORD)
    page = client.get("/admin/caller/", query_string={"unit": UNIT})
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    contacts = html.split("最近联系")[1]
    assert household["called"]["number"] in contacts and "kefu-contact-result" in contacts and "满意" in contacts
    assert household["newest"]["number"] not in contacts
    assert household["unlinked"]["number"] in html  # names the unit, linked to nobody


def test_a_lookup_only_role_gets_the_card_from_the_counted_lookup_and_no_archive(app, client, calls, make_user,
                                                                                   sign_in):
    from kefu.org.roles import save_role
    from kefu.records.types import type_summaries

    with app.test_request_context():
        save_role({"key": "operator", "name": "话务员", "capabilities": ["lookup_customers"],
                   "grants": [{"record_type": "*", "actions": ["read"], "scope": "department"}]},
                  [s["key"] for s in type_summaries()])
    make_user("operator1", role="operator")
    token = client.post("/api/v1/auth/token", json={"username": "operator1", "password": "correct-horse"})
    operator = {"Authorization": f"Bearer {token.get_json()['token']}"}
    by_id = client.get(f"/api/v1/customers/{calls['customer']}", headers=operator)
    assert by_id.status_code == 403 and by_id.get_json()["error"]["message"]
    looked_up = client.get(f"/api/v1/lookup?phone={PHONE}", headers=operator)
    assert looked_up.status_code == 200 and [c["id"] for c in looked_up.get_json()["customers"]] == [calls["customer"]]

    sign_in("operator1")
    page = client.get(f"/admin/caller/?phone={PHONE}").get_data(as_text=True)
    assert calls["name"] in page and f"/admin/customers/{calls['customer']}" not in page  # no link that answers 403
    assert client.get(f"/admin/customers/{calls['customer']}").status_code == 403
    with app.app_context():
        from kefu.org.users import User

        user_id = User.objects(username="operator1").first().pk
    assert int(Redis.from_url(app.config["REDIS_URL"]).get(f"kefu:customer-lookups:{user_id}")) == 2
