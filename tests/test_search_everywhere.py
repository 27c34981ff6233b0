"""Search everywhere (issue 19): one text from the navigation bar finds customers and records of every type — by
record number, customer name, exact phone, a unit typed as people type it — grouped, within the user's scope,
personal data masked per role; blank and junk queries get a clear message, never a 500."""
from __future__ import annotations

import re

import pytest
from bson import ObjectId
from redis import Redis

from seed.demo import DEMO_PASSWORD
from tests.conftest import token_headers

PHONE = "13900001111"
MASKED = "139****1111"
RECORD_PHONE = "13700002222"  # the number the complaints were given: found through the records' own blind index
NAME = "欧阳清和"
UNIT_TYPED = ("3幢2单元1201", "3-2-1201", "3栋2单元1201室")


@pytest.fixture
def world(app, db, seeded):
    """A customer of 钱塘·星澜苑 3幢2单元1201 with one complaint registered by the demo agent (客服中心), and one
    complaint of the same customer registered by an agent of 工程部 — out of the demo agent's department scope."""
    from kefu.org.customers import create_customer
    from kefu.org.structure import Project, Unit
    from kefu.org.users import User, create_user
    from kefu.records.actor import user_actor
    from kefu.records.write import create_record

    with app.test_request_context():
        project = Project.objects(code="QTXLY").first()
        unit = Unit.objects(project=project, label="3幢2单元1201").first()
        customer = create_customer({"name": NAME, "phone": PHONE, "project": project, "unit": unit})
        other = create_user("agent_b", "correct-horse", ["agent"], department="工程部")
        values = {"channel": ["来电"], "project": str(project.pk), "unit": str(unit.pk), "owner_name": NAME,
                  "phone": RECORD_PHONE, "content": "外墙渗水", "category": "工程质量", "customer": str(customer.pk)}
        mine = create_record("complaint", values, user_actor(User.objects(username="agent").first()))
        theirs = create_record("complaint", {**values, "content": "车库积水"}, user_actor(other))
    return {"customer": str(customer.pk), "unit": str(unit.pk), "mine": mine, "theirs": theirs}


def _groups(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)
    return {group["key"]: group for group in response.get_json()["groups"]}


def _numbers(groups: dict, type_key: str = "complaint") -> set[str]:
    return {item["number"] for item in groups.get(type_key, {"items": []})["items"]}


def test_number_name_phone_and_unit_find_the_customer_and_the_records(client, db, world):
    admin = token_headers(client, "admin")
    mine, theirs = world["mine"]["number"], world["theirs"]["number"]
    assert db.records.count_documents({"number": {"$in": [mine, theirs]}, "customer": ObjectId(world["customer"])}) == 2

    by_number = _groups(client.get(f"/api/v1/search?q={mine}", headers=admin))
    assert _numbers(by_number) == {mine}
    by_prefix = _groups(client.get(f"/api/v1/search?q={mine[:-2]}&limit=50", headers=admin))
    assert {mine, theirs} <= _numbers(by_prefix)
    assert "number" in client.get(f"/api/v1/search?q={mine}", headers=admin).get_json()["read_as"]

    by_name = _groups(client.get(f"/api/v1/search?q={NAME[:2]}", headers=admin))
    assert world["customer"] in {item["id"] for item in by_name["customers"]["items"]}
    assert {mine, theirs} <= _numbers(by_name)
    record = next(item for item in by_name["complaint"]["items"] if item["number"] == mine)
    assert record["customer"] == {"id": world["customer"], "name": NAME}

    by_phone = _groups(client.post("/api/v1/search", headers=admin, json={"q": "139 0000 1111"}))
    assert [item["phone"] for item in by_phone["customers"]["items"]] == [PHONE]  # admin sees it in clear
    assert {mine, theirs} <= _numbers(by_phone)
    by_record_phone = _groups(client.post("/api/v1/search", headers=admin, json={"q": RECORD_PHONE}))
    assert "customers" not in by_record_phone and {mine, theirs} <= _numbers(by_record_phone)
    partial = _groups(client.post("/api/v1/search", headers=admin, json={"q": PHONE[:7]}))
    assert "customers" not in partial and not _numbers(partial)  # exact only, never a part of a number

    in_url = client.get(f"/api/v1/search?q={PHONE}", headers=admin)
    assert in_url.status_code == 400 and "POST" in in_url.get_json()["error"]["message"]

    for typed in UNIT_TYPED:
        by_unit = _groups(client.post("/api/v1/search", headers=admin, json={"q": typed}))
        assert [item["id"] for item in by_unit["customers"]["items"]] == [world["customer"]], typed
        assert {mine, theirs} <= _numbers(by_unit), typed


def test_the_unit_parser_reads_what_people_type():
    from kefu.org.unit_text import UnitText, parse_unit_text

    for typed in (*UNIT_TYPED, "３幢２单元１２０１", "3号楼2单元1201", "3 - 2 - 1201"):
        assert parse_unit_text(typed) == UnitText("3", "2", "1201"), typed
    assert parse_unit_text("A座1201") == UnitText("A", None, "1201")
    for not_a_unit in ("1201", PHONE, "3幢漏水", "31201", "TS-202611-0001", ""):
        assert parse_unit_text(not_a_unit) is None, not_a_unit


def test_each_role_finds_only_what_it_may_read_and_personal_data_masked(app, client, world):
    agent, supervisor, handler = (token_headers(client, name) for name in ("agent", "supervisor", "handler"))
    mine, theirs = world["mine"]["number"], world["theirs"]["number"]

    as_agent = _groups(client.post("/api/v1/search", headers=agent, json={"q": PHONE}))
    assert _numbers(as_agent) == {mine}  # 工程部's complaint is outside the agent's department
    assert [item["phone"] for item in as_agent["customers"]["items"]] == [MASKED]
    assert _numbers(_groups(client.get(f"/api/v1/search?q={theirs}", headers=agent))) == set()

    as_supervisor = _groups(client.post("/api/v1/search", headers=supervisor, json={"q": PHONE}))
    assert [item["phone"] for item in as_supervisor["customers"]["items"]] == [PHONE]

    as_handler = _groups(client.get(f"/api/v1/search?q={NAME}", headers=handler))
    assert "customers" not in as_handler  # the archive is not theirs to open
    assert _numbers(as_handler) == {theirs}  # registered by 工程部, the handler's department; not the agent's

    with app.app_context():
        from kefu.org.users import User

        agent_id = User.objects(username="agent").first().pk
    lookups = Redis.from_url(app.config["REDIS_URL"]).get(f"kefu:customer-lookups:{agent_id}")
    assert int(lookups) == 1  # a phone search is counted like every phone lookup


def test_blank_junk_and_oversized_queries_answer_clearly(client, world):
    admin = token_headers(client, "admin")
    for query, status in (("", 422), ("   ", 422), ("x" * 101, 422), ("\x01", 400)):
        response = client.get("/api/v1/search", query_string={"q": query}, headers=admin)
        assert response.status_code == status, (query, response.get_data(as_text=True))
        assert "q" in response.get_json()["error"]["fields"]
    assert client.get("/api/v1/search?q=a&limit=0", headers=admin).get_json()["error"]["fields"]["limit"]
    assert client.post("/api/v1/search", headers=admin, json={"q": 5}).status_code == 400
    junk = client.get("/api/v1/search", query_string={"q": "!@#$%^&*()"}, headers=admin)
    assert junk.status_code == 200 and junk.get_json()["groups"] == []


def test_the_navbar_box_posts_and_the_page_links_without_the_phone(client, sign_in, world):
    assert sign_in("agent", DEMO_PASSWORD).status_code == 302
    home = client.get("/admin/").get_data(as_text=True)
    assert 'id="kefu-navbar-search"' in home and "kefu_search.js" in home
    token = re.search(r'<input type="hidden" name="csrf_token" value="([^"]+)">', home).group(1)  # the navbar form's

    page = client.post("/admin/search/", data={"q": PHONE, "csrf_token": token})
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    assert f'href="/admin/customers/{world["customer"]}"' in html, re.sub(r"\s+", " ", html)[-3000:]
    assert f'?id={world["mine"]["_id"]}' in html and world["theirs"]["number"] not in html
    assert MASKED in html and PHONE not in html  # masked for the agent, and never in the page's URLs
    assert all(PHONE not in link for link in re.findall(r'href="([^"]*)"', html))

    refused = client.get(f"/admin/search/?q={PHONE}")
    assert refused.status_code == 200 and "kefu-search-problem" in refused.get_data(as_text=True)
    expired = client.post("/admin/search/", data={"q": NAME})
    assert expired.status_code == 200 and "kefu-search-problem" in expired.get_data(as_text=True)
    empty = client.get("/admin/search/?q=")
    assert empty.status_code == 200 and "kefu-search-problem" in empty.get_data(as_text=True)

    by_unit = client.get("/admin/search/?q=3-2-1201").get_data(as_text=True)
    assert world["mine"]["number"] in by_unit and "search=3-2-1201" in by_unit  # "see all" keeps a non-phone text

    assert client.get("/locale/en?next=/admin/").status_code == 302
    english = client.get(f"/admin/search/?q={NAME}").get_data(as_text=True)
    assert "Complaint" in english and world["mine"]["number"] in english


def test_a_busy_unit_keeps_every_readable_record_and_counts_each_type(app, client, db, world):
    """工程部 registered 120 complaints naming the unit (linked to nobody) before the demo agent registered one:
    the agent's is found and counted, the admin's count stops at the cap."""
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.records.write import create_record

    stored = db.records.find_one({"_id": world["theirs"]["_id"]})
    stored.pop("customer")
    db.records.insert_many([{**stored, "_id": ObjectId(), "number": f"{stored['number']}-{i:03d}"}
                            for i in range(120)])
    with app.test_request_context():
        values = {"channel": ["来电"], "project": str(stored["data"]["project"]), "unit": world["unit"], "owner_name": "路人",
                  "phone": "13700003333", "content": "楼道灯不亮", "category": "工程质量"}
        late = create_record("complaint", values, user_actor(User.objects(username="agent").first()))
    assert db.records.count_documents({"data.unit": ObjectId(world["unit"])}) == 123

    as_agent = _groups(client.post("/api/v1/search", headers=token_headers(client, "agent"), json={"q": "3-2-1201"}))
    assert _numbers(as_agent) == {world["mine"]["number"], late["number"]}
    assert as_agent["complaint"]["total"] == 2 and as_agent["complaint"]["exact"] is True
    as_admin = _groups(client.post("/api/v1/search", headers=token_headers(client, "admin"), json={"q": "3-2-1201"}))
    assert as_admin["complaint"]["total"] == 100 and as_admin["complaint"]["exact"] is False
