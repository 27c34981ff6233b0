"""The JSON API under /api/v1: tokens, record types, records, filters, references, events, exports.

Every test drives the real app over HTTP against a real mongod and checks both
the response and what is stored, on the demo data of ``kefu seed`` (the
``seeded`` fixture in conftest).
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import gridfs
import pytest
from bson import Decimal128, ObjectId

from seed.demo import DEMO_PASSWORD
from tests.conftest import token_headers
from tests.test_attachments import png_bytes

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHINESE = re.compile(r"[\u4e00-\u9fff]")
PHONE = "13812345678"
MASKED_PHONE = "138****5678"


# --- requests ---------------------------------------------------------------------------

def complaint(**overrides) -> dict:
    """A valid complaint as an integration sends it; ``None`` removes a field."""
    values = {"channel": ["来电"], "project": "云栖·江南府", "unit": "1幢1单元101", "owner_name": "张三",
              "phone": PHONE, "content": "卫生间漏水严重", "category": "工程质量"}
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def customer_and_phone(app, db) -> tuple[dict, str]:
    """The first seeded customer by name and their phone (stored encrypted: read through the model)."""
    from kefu.org.customers import Customer

    customer = db.customers.find_one({}, sort=[("name", 1)])
    with app.app_context():
        return customer, Customer.objects(pk=customer["_id"]).first().phone


def create(client, headers, type_key="complaint", **overrides) -> dict:
    response = client.post(f"/api/v1/records/{type_key}", json=complaint(**overrides) if type_key == "complaint"
                           else overrides, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is the one JSON error shape with a Chinese message; returns ``error``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert set(error) >= {"code", "message", "fields"}
    assert isinstance(error["fields"], dict)
    assert CHINESE.search(error["message"]), error
    if code is not None:
        assert error["code"] == code, error
    return error


# --- tokens -----------------------------------------------------------------------------


def test_token_is_issued_for_a_password_and_bearer_authenticates(client, seeded, db):
    response = client.post("/api/v1/auth/token", json={"username": "agent", "password": DEMO_PASSWORD,
                                                        "name": "热线对接"})
    assert response.status_code == 201
    body = response.get_json()
    token = body["token"]
    assert len(token) >= 32
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(timezone.utc) <= timedelta(days=30)

    stored = db.api_tokens.find_one({})
    assert stored["digest"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(stored)  # only the digest is kept
    assert stored["user"] == db.users.find_one({"username": "agent"})["_id"]
    assert stored["name"] == "热线对接" and stored["revoked"] is False

    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.get_json()["username"] == "agent" and me.get_json()["roles"] == ["agent"]
    assert db.api_tokens.find_one({})["last_used_at"] is not None


def test_wrong_password_is_401_json_and_no_token_is_issued(client, seeded, db):
    response = client.post("/api/v1/auth/token", json={"username": "agent", "password": "not-the-password"})
    error = assert_error(response, 401, "login_failed")
    assert db.api_tokens.count_documents({}) == 0
    unknown = client.post("/api/v1/auth/token", json={"username": "nobody", "password": "whatever-1234"})
    assert assert_error(unknown, 401, "login_failed")["message"] == error["message"]  # no hint the account exists
    assert db.api_tokens.count_documents({}) == 0


def test_revoked_token_is_refused(app, client, seeded, db):
    headers = token_headers(client, "agent")
    assert client.get("/api/v1/types", headers=headers).status_code == 200
    from kefu.org.tokens import revoke_token

    with app.app_context():
        revoke_token(db.api_tokens.find_one({})["_id"])
    assert db.api_tokens.find_one({})["revoked"] is True
    assert_error(client.get("/api/v1/types", headers=headers), 401, "unauthorized")
    assert_error(client.post("/api/v1/records/complaint", json=complaint(), headers=headers), 401)
    assert db.records.count_documents({}) == 0


def test_expired_token_is_refused(client, seeded, db):
    headers = token_headers(client, "agent")
    db.api_tokens.update_one({}, {"$set": {"expires_at": datetime.now(timezone.utc) - timedelta(seconds=1)}})
    assert_error(client.get("/api/v1/records/complaint", headers=headers), 401, "unauthorized")


def test_token_of_a_disabled_user_is_refused(client, seeded, db):
    headers = token_headers(client, "agent")
    db.users.update_one({"username": "agent"}, {"$set": {"active": False}})
    assert_error(client.get("/api/v1/types", headers=headers), 401)


UNAUTHENTICATED_ROUTES = [
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/types"),
    ("GET", "/api/v1/types/complaint"),
    ("POST", "/api/v1/types"),
    ("PUT", "/api/v1/types/complaint"),
    ("GET", "/api/v1/records/complaint"),
    ("POST", "/api/v1/records/complaint"),
    ("GET", "/api/v1/records/complaint/{id}"),
    ("PATCH", "/api/v1/records/complaint/{id}"),
    ("POST", "/api/v1/records/complaint/{id}/events"),
    ("GET", "/api/v1/records/complaint/export.csv"),
    ("GET", "/api/v1/records/complaint/export.xlsx"),
    ("GET", "/api/v1/refs/project?q=云栖"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/no-such-route"),
]


def test_every_route_without_valid_auth_is_401_json(client, seeded, agent, db):
    record = create(client, agent)
    count = db.records.count_documents({})
    for bearer in (None, "Bearer not-a-real-token", "Bearer ", "Basic YWdlbnQ6a2VmdS1kZW1v"):
        headers = {"Authorization": bearer} if bearer else {}
        for method, path in UNAUTHENTICATED_ROUTES:
            response = client.open(path.format(id=record["id"]), method=method, headers=headers,
                                   json={"version": 1, "owner_name": "黑客", "kind": "comment", "text": "x"})
            assert response.status_code == 401, (bearer, method, path, response.status_code)
            assert_error(response, 401, "unauthorized")
            assert "items" not in response.get_json() and PHONE not in response.get_data(as_text=True), path
    assert db.records.count_documents({}) == count
    assert db.records.find_one({})["data"]["owner_name"] == "张三"
    assert db.record_events.count_documents({"kind": "comment"}) == 0
    assert db.audit_log.count_documents({"action": "export"}) == 0


# --- record types -----------------------------------------------------------------------


def test_types_lists_every_active_type_and_describes_one(client, agent, db):
    response = client.get("/api/v1/types", headers=agent)
    assert response.status_code == 200
    keys = [item["key"] for item in response.get_json()["items"]]
    assert sorted(keys) == sorted(t["key"] for t in db.record_types.find({"active": True}))
    assert len(keys) == 29 and "complaint" in keys

    described = client.get("/api/v1/types/complaint", headers=agent).get_json()
    assert described["name"] == "投诉" and described["number_prefix"] == "TS"
    fields = {f["key"]: f for f in described["fields"]}
    assert fields["phone"]["type"] == "phone" and fields["phone"]["sensitive"] and fields["phone"]["search"]
    assert fields["claim_amount"]["type"] == "money"
    assert fields["category"]["choices"] == ["规划设计", "工程质量", "销售承诺", "物业管理", "其他"]
    assert [f["key"] for f in described["fields"]] == [f["key"] for f in db.record_types.find_one(
        {"key": "complaint"})["fields"]]

    assert_error(client.get("/api/v1/types/no_such_type", headers=agent), 404, "not_found")


def test_disabled_type_is_not_listed_and_cannot_take_records(app, client, agent, db):
    from kefu.records.definitions import set_type_active

    with app.app_context():
        set_type_active("suggestion", False)
    keys = [item["key"] for item in client.get("/api/v1/types", headers=agent).get_json()["items"]]
    assert "suggestion" not in keys and "complaint" in keys
    assert_error(client.post("/api/v1/records/suggestion", json={}, headers=agent), 404)
    assert db.records.count_documents({}) == 0


# --- create and read --------------------------------------------------------------------


def test_create_returns_the_record_and_stores_it(client, agent, db):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    response = client.post("/api/v1/records/complaint", headers=agent, json=complaint(
        claim_amount="¥19,800", demand="赔偿维修费用", channel="来电、网络", level="重要"))  # below 重大 (kefu.rules.levels)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()

    created = datetime.fromisoformat(body["created_at"])
    assert created.utcoffset() == timedelta(hours=8)
    month = created.astimezone(SHANGHAI).strftime("%Y%m")
    assert body["number"] == f"TS-{month}-0001"
    assert body["version"] == 1 and body["type"] == "complaint" and body["status"] == "待受理"
    assert ObjectId.is_valid(body["id"])
    assert body["owner_name"] == "张三" and body["content"] == "卫生间漏水严重"
    assert body["claim_amount"] == "19800.00" and body["channel"] == ["来电", "网络"]
    assert body["level"] == "重要" and body["households"] == 1 and body["safety_risk"] is False
    assert body["phone"] == MASKED_PHONE  # the agent may not see personal data
    assert body["updated_at"] == body["created_at"]
    assert datetime.fromisoformat(body["received_at"]) >= before

    agent_id = db.users.find_one({"username": "agent"})["_id"]
    project = db.projects.find_one({"code": "YQJNF"})
    unit = db.units.find_one({"project": project["_id"], "label": "1幢1单元101"})
    stored = db.records.find_one({"_id": ObjectId(body["id"])})
    assert stored["type"] == "complaint" and stored["number"] == body["number"] and stored["version"] == 1
    assert stored["status"] == "待受理" and stored["created_by"] == agent_id and stored["updated_by"] == agent_id
    assert stored["created_at"] >= before and stored["created_at"] == stored["updated_at"]
    data = stored["data"]
    assert data["owner_name"] == "张三" and data["demand"] == "赔偿维修费用"
    assert data["claim_amount"] == Decimal128("19800.00")
    assert data["channel"] == ["来电", "网络"] and data["category"] == "工程质量" and data["level"] == "重要"
    assert data["project"] == project["_id"] and data["unit"] == unit["_id"]
    assert "phone" not in data and stored["pii"]["phone"] and stored["bidx"]["phone"]
    assert body["project"] == str(project["_id"]) and body["unit"] == str(unit["_id"])

    second = create(client, agent)
    assert second["number"] == f"TS-{month}-0002"
    assert db.records.count_documents({"type": "complaint"}) == 2


def test_get_returns_the_record_with_its_timeline(client, agent, supervisor, db):
    record = create(client, agent)
    response = client.get(f"/api/v1/records/complaint/{record['id']}", headers=agent)
    assert response.status_code == 200
    body = response.get_json()
    assert body["number"] == record["number"] and body["phone"] == MASKED_PHONE
    assert [e["kind"] for e in body["events"]] == ["created"]
    assert record["number"] in body["events"][0]["text"] and body["events"][0]["by_name"] == "林晓雯"
    assert client.get(f"/api/v1/records/complaint/{record['id']}", headers=supervisor).get_json()["phone"] == PHONE


def test_unknown_records_and_types_are_404_json(client, agent, db):
    record = create(client, agent)
    missing = str(ObjectId())
    for method, path in [
        ("GET", f"/api/v1/records/complaint/{missing}"),
        ("GET", "/api/v1/records/complaint/not-an-id"),
        ("PATCH", f"/api/v1/records/complaint/{missing}"),
        ("POST", f"/api/v1/records/complaint/{missing}/events"),
        ("GET", f"/api/v1/records/repair/{record['id']}"),  # a complaint's id under another type
        ("GET", "/api/v1/records/no_such_type"),
        ("POST", "/api/v1/records/no_such_type"),
        ("GET", f"/api/v1/records/no_such_type/{record['id']}"),
        ("GET", "/api/v1/records/no_such_type/export.csv"),
        ("GET", "/api/v1/types/no_such_type"),
        ("GET", "/api/v1/nothing/here"),
    ]:
        response = client.open(path, method=method, headers=agent,
                               json={"version": 1, "owner_name": "x", "kind": "comment", "text": "x"})
        assert_error(response, 404)
    assert db.records.count_documents({}) == 1
    assert db.record_events.count_documents({}) == 1


# --- lists and filters ------------------------------------------------------------------


@pytest.fixture
def four_complaints(client, agent):
    """A, B, C, D with different categories, amounts, channels and receiving dates."""
    made = {
        "A": create(client, agent, category="工程质量", claim_amount="500", channel=["来电"], owner_name="张三",
                    received_at="2026-11-01 09:00", content="卫生间漏水严重"),
        "B": create(client, agent, category="工程质量", claim_amount="20000", channel=["来访", "网络"],
                    owner_name="李四", received_at="2026-11-10 09:00", content="外墙渗水"),
        "C": create(client, agent, category="销售承诺", claim_amount="8000.50", channel=["网络"], owner_name="王五",
                    received_at="2026-11-20 09:00", content="车位承诺未兑现"),
        "D": create(client, agent, category="物业管理", channel=["来函"], owner_name="赵六",
                    received_at="2026-10-15 09:00", content="电梯经常停运"),
    }
    return {name: record["id"] for name, record in made.items()}


LIST_CASES = [
    ("category=工程质量", {"A", "B"}, {"data.category": "工程质量"}),
    ("claim_amount__gte=8000", {"B", "C"}, {"data.claim_amount": {"$gte": Decimal128("8000")}}),
    ("claim_amount__lte=8000.50", {"A", "C"}, {"data.claim_amount": {"$lte": Decimal128("8000.50")}}),
    ("claim_amount__gte=1000&claim_amount__lte=10000", {"C"},
     {"data.claim_amount": {"$gte": Decimal128("1000"), "$lte": Decimal128("10000")}}),
    ("category__in=销售承诺,物业管理", {"C", "D"}, {"data.category": {"$in": ["销售承诺", "物业管理"]}}),
    ("channel=网络", {"B", "C"}, {"data.channel": "网络"}),
    ("channel__in=来函,来电", {"A", "D"}, {"data.channel": {"$in": ["来函", "来电"]}}),
    ("received_at__gte=2026-11-05", {"B", "C"}, None),
    ("received_at__lte=2026-11-10", {"A", "B", "D"}, None),  # the whole day is included
    ("status=待受理", {"A", "B", "C", "D"}, {"status": "待受理"}),
    ("q=漏水", {"A"}, None),
    ("q=王五", {"C"}, None),
    ("category=工程质量&q=李四", {"B"}, None),
    ("owner_name__contains=赵", {"D"}, {"data.owner_name": "赵六"}),
    ("", {"A", "B", "C", "D"}, {}),
]


def test_list_filters(client, agent, db, four_complaints):
    names = {record_id: name for name, record_id in four_complaints.items()}
    wrong = []
    for query, expected, stored_filter in LIST_CASES:
        response = client.get(f"/api/v1/records/complaint?{query}", headers=agent)
        if response.status_code != 200:
            wrong.append((query, response.status_code, response.get_data(as_text=True)))
            continue
        body = response.get_json()
        found = {names[item["id"]] for item in body["items"]}
        if found != expected or body["total"] != len(expected):
            wrong.append((query, sorted(found), body["total"]))
        if stored_filter is not None:  # the same question asked of MongoDB directly
            assert db.records.count_documents({"type": "complaint", **stored_filter}) == len(expected), query
    assert wrong == []


def test_list_sorts_and_pages(client, agent, four_complaints):
    def page(query):
        response = client.get(f"/api/v1/records/complaint?{query}", headers=agent)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    names = {record_id: name for name, record_id in four_complaints.items()}
    descending = page("sort=-claim_amount")
    assert [names[i["id"]] for i in descending["items"]] == ["B", "C", "A", "D"]
    ascending = page("sort=claim_amount")
    assert [names[i["id"]] for i in ascending["items"]] == ["D", "A", "C", "B"]
    first, second, third = (page(f"sort=claim_amount&per_page=2&page={n}") for n in (1, 2, 3))
    assert [names[i["id"]] for i in first["items"]] == ["D", "A"]
    assert [names[i["id"]] for i in second["items"]] == ["C", "B"]
    assert third["items"] == [] and first["total"] == second["total"] == third["total"] == 4
    newest_first = page("")
    assert [names[i["id"]] for i in newest_first["items"]] == ["D", "C", "B", "A"]  # default: -created_at
    assert page("per_page=200")["total"] == 4


BAD_LIST_QUERIES = [
    "per_page=201", "per_page=0", "page=0", "page=abc", "per_page=ten",
    "no_such_field=1", "category__gte=工程质量", "category__regex=.*", "claim_amount__between=1,2",
    "sort=no_such_field", "sort=-no_such_field", "sort=phone", "phone__contains=138", "phone__gte=1",
    "category=不存在的类别", "claim_amount__gte=abc", "received_at__gte=昨天", "channel=不存在",
]


def test_bad_list_parameters_are_400(client, agent, four_complaints):
    wrong = []
    for query in BAD_LIST_QUERIES:
        response = client.get(f"/api/v1/records/complaint?{query}", headers=agent)
        if response.status_code != 400:
            wrong.append((query, response.status_code))
            continue
        assert_error(response, 400, "bad_request")
        assert "items" not in response.get_json()
    assert wrong == []


INJECTED_QUERIES = [
    'category={"$gt": ""}', 'owner_name={"$ne": null}', "owner_name=$ne", 'category__in=["工程质量"]',
    "owner_name[$ne]=x", "data.owner_name=张三", "$where=1", 'phone={"$exists": true}', "number=$regex",
]


def test_operators_in_query_values_are_400_and_nothing_leaks(client, agent, four_complaints, db):
    wrong = []
    for query in INJECTED_QUERIES:
        for path in ("/api/v1/records/complaint", "/api/v1/records/complaint/export.csv"):
            response = client.get(f"{path}?{query}", headers=agent)
            if response.status_code != 400:
                wrong.append((path, query, response.status_code))
                continue
            assert_error(response, 400)
            assert "items" not in response.get_json() and "张三" not in response.get_data(as_text=True)
    assert wrong == []
    assert db.audit_log.count_documents({"action": "export"}) == 0


def test_operators_in_json_values_are_422_and_nothing_is_stored(client, agent, db):
    keys = ["owner_name", "phone", "project", "unit", "category", "claim_amount", "channel", "status", "assignee"]
    for key in keys:
        response = client.post("/api/v1/records/complaint", headers=agent, json=complaint(**{key: {"$gt": ""}}))
        error = assert_error(response, 422, "validation_failed")
        assert key in error["fields"] and CHINESE.search(error["fields"][key]), key
    assert db.records.count_documents({}) == 0

    record = create(client, agent)
    for key in keys:
        patched = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=agent,
                               json={"version": 1, key: {"$ne": None}})
        error = assert_error(patched, 422)
        assert key in error["fields"], key
    stored = db.records.find_one({"_id": ObjectId(record["id"])})
    assert stored["version"] == 1 and stored["data"]["owner_name"] == "张三"
    assert db.audit_log.count_documents({"action": "update"}) == 0


def test_operator_as_version_changes_nothing(client, agent, db):
    record = create(client, agent)
    response = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=agent,
                            json={"version": {"$gt": 0}, "owner_name": "李四"})
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)
    stored = db.records.find_one({})
    assert stored["version"] == 1 and stored["data"]["owner_name"] == "张三"


def test_body_that_is_not_a_json_object_is_400(client, agent, db):
    for data, content_type in [("[1, 2]", "application/json"), ("not json", "application/json"),
                               ("owner_name=张三", "text/plain")]:
        response = client.post("/api/v1/records/complaint", headers=agent, data=data.encode(),
                               content_type=content_type)
        assert_error(response, 400, "bad_request")
    assert db.records.count_documents({}) == 0


# --- updates ----------------------------------------------------------------------------


def test_patch_with_the_current_version_updates_and_bumps_it(client, agent, db):
    record = create(client, agent)
    response = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=agent,
                            json={"version": 1, "owner_name": "李四", "status": "处理中", "claim_amount": "300.5"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["version"] == 2 and body["owner_name"] == "李四" and body["status"] == "处理中"
    assert body["claim_amount"] == "300.50" and body["number"] == record["number"]
    assert body["updated_at"] >= body["created_at"]
    stored = db.records.find_one({"_id": ObjectId(record["id"])})
    assert stored["version"] == 2 and stored["data"]["owner_name"] == "李四" and stored["status"] == "处理中"
    assert stored["data"]["claim_amount"] == Decimal128("300.50")
    assert stored["data"]["content"] == "卫生间漏水严重"  # untouched fields stay
    assert stored["updated_at"] >= stored["created_at"]

    again = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=agent,
                         json={"version": 2, "owner_name": "王五"})
    assert again.status_code == 200 and again.get_json()["version"] == 3
    assert db.records.find_one({})["version"] == 3


def test_stale_patch_is_409_with_the_current_record_and_overwrites_nothing(client, agent, supervisor, db):
    record = create(client, agent)
    first = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=supervisor,
                         json={"version": 1, "owner_name": "李四", "phone": "13900000000"})
    assert first.status_code == 200
    stale = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=agent,
                         json={"version": 1, "owner_name": "王五", "content": "覆盖别人的修改"})
    error = assert_error(stale, 409, "conflict")
    assert "已被他人修改" in error["message"]
    assert "version" in error["fields"]
    current = error["current"]
    assert current["version"] == 2 and current["owner_name"] == "李四" and current["content"] == "卫生间漏水严重"
    assert current["phone"] == "139****0000"  # still masked for the agent
    stored = db.records.find_one({"_id": ObjectId(record["id"])})
    assert stored["version"] == 2 and stored["data"]["owner_name"] == "李四"
    assert stored["data"]["content"] == "卫生间漏水严重"
    assert db.audit_log.count_documents({"action": "update"}) == 1


def test_patch_without_version_is_400(client, agent, db):
    record = create(client, agent)
    response = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=agent, json={"owner_name": "李四"})
    error = assert_error(response, 400)
    assert "version" in error["fields"]
    stored = db.records.find_one({})
    assert stored["version"] == 1 and stored["data"]["owner_name"] == "张三"


def test_patch_refuses_system_fields_and_bad_values(client, agent, db):
    record = create(client, agent)
    response = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=agent,
                            json={"version": 1, "number": "TS-000000-9999", "created_at": "2020-01-01",
                                  "category": "不存在", "no_such_field": 1})
    error = assert_error(response, 422)
    assert set(error["fields"]) == {"number", "created_at", "category", "no_such_field"}
    stored = db.records.find_one({})
    assert stored["number"] == record["number"] and stored["version"] == 1
    assert stored["data"]["category"] == "工程质量"


# --- references -------------------------------------------------------------------------


def test_references_by_id_name_code_and_unit_label_within_the_project(client, agent, db):
    projects = {p["code"]: p for p in db.projects.find()}
    qt = projects["QTXLY"]
    qt_unit = db.units.find_one({"project": qt["_id"], "label": "1幢1单元101"})

    by_name = create(client, agent, project="钱塘·星澜苑", unit="1幢1单元101")
    by_code = create(client, agent, project="qtxly", unit="1幢1单元101")
    by_id = create(client, agent, project=str(qt["_id"]), unit=str(qt_unit["_id"]))
    by_handle = create(client, agent, project="钱塘·星澜苑", unit="钱塘·星澜苑 1幢1单元101")
    for record in (by_name, by_code, by_id, by_handle):
        stored = db.records.find_one({"_id": ObjectId(record["id"])})
        assert stored["data"]["project"] == qt["_id"] and stored["data"]["unit"] == qt_unit["_id"]
        assert record["project"] == str(qt["_id"]) and record["unit"] == str(qt_unit["_id"])

    department = create(client, agent, responsible_department="工程部", assignee="handler")
    stored = db.records.find_one({"_id": ObjectId(department["id"])})
    assert stored["data"]["responsible_department"] == db.departments.find_one({"name": "工程部"})["_id"]
    assert stored["assignee"] == db.users.find_one({"username": "handler"})["_id"]


def test_ambiguous_unit_label_without_a_project_lists_the_candidates(client, agent, db):
    response = client.post("/api/v1/records/complaint", headers=agent, json=complaint(project=None))
    error = assert_error(response, 422)
    message = error["fields"]["unit"]
    for project in db.projects.find():
        assert f"{project['name']} 1幢1单元101" in message
    assert "对应多个户位" in message and "1幢1单元101" in error["message"]
    assert db.records.count_documents({}) == 0


def test_unknown_references_are_422(client, agent, db):
    for key, value, expected in [
        ("project", "不存在的项目", "找不到项目“不存在的项目”"),
        ("project", str(ObjectId()), "找不到项目"),
        ("unit", "99幢9单元999", "找不到户位“99幢9单元999”"),
        ("responsible_department", "不存在的部门", "找不到部门“不存在的部门”"),
        ("assignee", "nobody", "找不到用户“nobody”"),
        ("customer", "13000000000", "找不到客户“13000000000”"),
    ]:
        response = client.post("/api/v1/records/complaint", headers=agent, json=complaint(**{key: value}))
        error = assert_error(response, 422)
        assert expected in error["fields"][key], (key, error)
    assert db.records.count_documents({}) == 0


def test_unit_of_another_project_is_refused_on_create(client, agent, db):
    other = db.units.find_one({"project": db.projects.find_one({"code": "QTXLY"})["_id"]})
    response = client.post("/api/v1/records/complaint", headers=agent,
                           json=complaint(project="云栖·江南府", unit=str(other["_id"])))
    error = assert_error(response, 422)
    assert "不属于所选项目" in error["fields"]["unit"]
    assert db.records.count_documents({}) == 0


def test_patch_unit_is_resolved_within_the_records_project(client, agent, db):
    """A PATCH naming only the unit must use the record's stored project (it is the project "given")."""
    record = create(client, agent, project="云栖·江南府", unit="1幢1单元101")
    yq = db.projects.find_one({"code": "YQJNF"})
    response = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=agent,
                            json={"version": 1, "unit": "1幢1单元102"})
    assert response.status_code == 200, response.get_data(as_text=True)
    stored = db.records.find_one({})
    assert stored["data"]["unit"] == db.units.find_one({"project": yq["_id"], "label": "1幢1单元102"})["_id"]


def test_patch_cannot_move_the_unit_into_another_project(client, agent, db):
    record = create(client, agent, project="云栖·江南府", unit="1幢1单元101")
    other = db.units.find_one({"project": db.projects.find_one({"code": "QTXLY"})["_id"], "label": "1幢1单元102"})
    response = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=agent,
                            json={"version": 1, "unit": str(other["_id"])})
    error = assert_error(response, 422)
    assert "不属于所选项目" in error["fields"]["unit"]
    stored = db.records.find_one({})
    assert stored["version"] == 1 and stored["data"]["unit"] != other["_id"]


def test_reference_lookup_of_projects_users_and_departments(client, agent, db):
    for kind, q, expected in [
        ("project", "江南", ["云栖·江南府（YQJNF）"]),
        ("project", "qtxly", ["钱塘·星澜苑（QTXLY）"]),
        ("project", "", ["云栖·江南府（YQJNF）", "钱塘·星澜苑（QTXLY）", "拱宸·桥西里（GCQXL）"]),
        ("user", "林晓雯", ["林晓雯（agent）"]),
        ("user", "handler", ["王志刚（handler）"]),
        ("department", "工程", ["工程部"]),
    ]:
        response = client.get(f"/api/v1/refs/{kind}?q={q}", headers=agent)
        assert response.status_code == 200
        items = response.get_json()["items"]
        assert sorted(i["label"] for i in items) == sorted(expected), (kind, q, items)
        assert all(ObjectId.is_valid(i["id"]) for i in items)
    project = client.get("/api/v1/refs/project?q=江南", headers=agent).get_json()["items"][0]
    assert project["id"] == str(db.projects.find_one({"code": "YQJNF"})["_id"])


def test_reference_lookup_of_units_and_customers(app, client, agent, db):
    units = client.get("/api/v1/refs/unit?q=1幢1单元101", headers=agent).get_json()["items"]
    assert sorted(u["label"] for u in units) == sorted(f"{p['name']} 1幢1单元101" for p in db.projects.find())
    project = db.projects.find_one({"code": "GCQXL"})
    only = client.get(f"/api/v1/refs/unit?q=1幢1单元101&project={project['_id']}", headers=agent).get_json()["items"]
    assert [u["id"] for u in only] == [str(db.units.find_one({"project": project["_id"],
                                                              "label": "1幢1单元101"})["_id"])]

    customer, phone = customer_and_phone(app, db)
    found = client.post("/api/v1/refs/customer", json={"q": phone}, headers=agent).get_json()["items"]
    assert str(customer["_id"]) in [c["id"] for c in found]  # by phone: POST, never in a URL
    assert all(phone not in c["label"] for c in found)  # the label masks the phone
    by_name = client.get(f"/api/v1/refs/customer?q={customer['name']}", headers=agent).get_json()["items"]
    assert str(customer["_id"]) in [c["id"] for c in by_name]

    nothing = client.get("/api/v1/refs/project?q=.*", headers=agent)  # text, not a pattern
    assert nothing.status_code == 200 and nothing.get_json()["items"] == []
    assert_error(client.get("/api/v1/refs/projects?q=x", headers=agent), 400)


# --- OpenAPI ------------------------------------------------------------------------------


def test_openapi_lists_every_active_type_with_its_field_schema(app, client, agent, db):
    from kefu.records.definitions import set_type_active

    with app.app_context():
        set_type_active("notice", False)
    response = client.get("/api/v1/openapi.json", headers=agent)
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    active = [t for t in db.record_types.find({"active": True})]
    assert len(active) == 28
    for record_type in active:
        key = record_type["key"]
        assert f"/api/v1/records/{key}" in document["paths"], key
        assert {"get", "post"} <= set(document["paths"][f"/api/v1/records/{key}"])
        assert {"get", "patch"} <= set(document["paths"][f"/api/v1/records/{key}/{{record_id}}"])
        schema = document["components"]["schemas"][f"{key}_input"]
        active_fields = [f for f in record_type["fields"] if f.get("active", True)]
        assert {f["key"] for f in active_fields} <= set(schema["properties"]), key
        assert sorted(schema.get("required", [])) == sorted(f["key"] for f in active_fields if f.get("required"))
    assert "/api/v1/records/notice" not in document["paths"]
    assert "/api/v1/auth/token" in document["paths"]

    properties = document["components"]["schemas"]["complaint_input"]["properties"]
    assert properties["phone"]["type"] == "string" and "pattern" in properties["phone"]
    assert properties["claim_amount"]["pattern"] == r"^-?\d+\.\d{2}$"
    assert properties["category"]["enum"] == ["规划设计", "工程质量", "销售承诺", "物业管理", "其他"]
    assert properties["channel"]["type"] == "array"
    assert properties["project"]["x-kefu-reference"] == "project"
    assert properties["received_at"]["format"] == "date-time"
    assert properties["owner_name"]["maxLength"] == 40 and properties["owner_name"]["title"] == "业主姓名"


# --- timeline events ----------------------------------------------------------------------


def test_event_as_json_is_added_to_the_timeline(client, agent, db):
    record = create(client, agent)
    response = client.post(f"/api/v1/records/complaint/{record['id']}/events", headers=agent,
                           json={"kind": "call", "text": "已电话联系业主，约定明天上门"})
    assert response.status_code == 201, response.get_data(as_text=True)
    event = response.get_json()
    assert event["kind"] == "call" and event["text"] == "已电话联系业主，约定明天上门"
    assert event["by_name"] == "林晓雯" and event["attachments"] == []
    stored = db.record_events.find_one({"_id": ObjectId(event["id"])})
    assert stored["record_id"] == ObjectId(record["id"]) and stored["record_type"] == "complaint"
    assert stored["by"] == db.users.find_one({"username": "agent"})["_id"] and stored["kind"] == "call"
    timeline = client.get(f"/api/v1/records/complaint/{record['id']}", headers=agent).get_json()["events"]
    assert [e["kind"] for e in timeline] == ["created", "call"]


def test_bad_events_are_422(client, agent, db):
    record = create(client, agent)
    for body, field in [
        ({"kind": "created", "text": "伪造的登记"}, "kind"),
        ({"kind": "status", "text": "伪造的状态变更"}, "kind"),
        ({"kind": "nonsense", "text": "x"}, "kind"),
        ({"kind": {"$ne": ""}, "text": "x"}, "kind"),
        ({"kind": "comment", "text": "   "}, "text"),
    ]:
        response = client.post(f"/api/v1/records/complaint/{record['id']}/events", headers=agent, json=body)
        error = assert_error(response, 422)
        assert field in error["fields"], body
    assert_error(client.post(f"/api/v1/records/complaint/{record['id']}/events", headers=agent, data=b"[]",
                             content_type="application/json"), 400)
    assert db.record_events.count_documents({}) == 1  # only "created"


def test_event_with_a_png_attachment_is_stored_in_gridfs_and_linked(client, agent, db):
    record = create(client, agent)
    picture = png_bytes(3, 2)
    response = client.post(
        f"/api/v1/records/complaint/{record['id']}/events", headers=agent, content_type="multipart/form-data",
        data={"kind": "visit", "text": "上门查看，拍照留存", "files": (io.BytesIO(picture), "现场照片.png")})
    assert response.status_code == 201, response.get_data(as_text=True)
    event = response.get_json()
    assert event["kind"] == "visit" and len(event["attachments"]) == 1
    file_id = ObjectId(event["attachments"][0])

    stored_file = db["attachments.files"].find_one({"_id": file_id})
    assert stored_file is not None and stored_file["length"] == len(picture)
    assert stored_file["metadata"]["record_id"] == ObjectId(record["id"])
    assert stored_file["metadata"]["content_type"] == "image/png" and stored_file["metadata"]["kind"] == "image"
    assert gridfs.GridFSBucket(db, "attachments").open_download_stream(file_id).read() == picture
    stored_event = db.record_events.find_one({"_id": ObjectId(event["id"])})
    assert stored_event["attachments"] == [file_id] or stored_event["attachments"] == [str(file_id)]

    refused = client.post(
        f"/api/v1/records/complaint/{record['id']}/events", headers=agent, content_type="multipart/form-data",
        data={"kind": "visit", "text": "假图片", "files": (io.BytesIO(b"MZ\x90\x00 not a png"), "照片.png")})
    assert_error(refused, 422)
    assert db["attachments.files"].count_documents({}) == 1
    assert db.record_events.count_documents({"kind": "visit"}) == 1


def test_record_created_as_multipart_stores_its_attachments(client, agent, db):
    picture = png_bytes()
    values = complaint(channel="来电")
    response = client.post("/api/v1/records/complaint", headers=agent, content_type="multipart/form-data",
                           data={**values, "attachments": (io.BytesIO(picture), "渗水.png")})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert len(body["attachments"]) == 1
    stored = db.records.find_one({"_id": ObjectId(body["id"])})
    file_id = stored["data"]["attachments"][0]
    assert db["attachments.files"].find_one({"_id": file_id})["metadata"]["record_id"] == stored["_id"]


# --- every field type ---------------------------------------------------------------------

EVERY_TYPE = {
    "key": "every_type", "name": "全字段测试", "number_prefix": "QZD",
    "fields": [
        {"key": "title", "label": "标题", "type": "text", "max_length": 5},
        {"key": "notes", "label": "说明", "type": "textarea", "max_length": 10},
        {"key": "count", "label": "数量", "type": "integer", "min": 1, "max": 100},
        {"key": "ratio", "label": "比例", "type": "decimal"},
        {"key": "amount", "label": "金额", "type": "money", "min": 0},
        {"key": "due", "label": "到期日", "type": "date"},
        {"key": "happened", "label": "发生时间", "type": "datetime"},
        {"key": "colour", "label": "颜色", "type": "choice", "choices": ["红", "绿"]},
        {"key": "tags", "label": "标签", "type": "multi_choice", "choices": ["甲", "乙", "丙"]},
        {"key": "urgent", "label": "紧急", "type": "boolean"},
        {"key": "mobile", "label": "手机", "type": "phone"},
        {"key": "id_card", "label": "身份证", "type": "id_number"},
        {"key": "mail", "label": "邮箱", "type": "email"},
        {"key": "client", "label": "客户", "type": "customer"},
        {"key": "project", "label": "项目", "type": "project"},
        {"key": "unit", "label": "户位", "type": "unit"},
        {"key": "owner", "label": "处理人", "type": "user"},
        {"key": "team", "label": "处理部门", "type": "department"},
        {"key": "files", "label": "附件", "type": "attachments"},
    ],
}


def valid_id_number(first17="11010519491231002") -> str:
    from kefu.core.validation import id_number_check_digit

    return first17 + id_number_check_digit(first17)


@pytest.fixture
def every_type(app, seeded):
    from kefu.records.definitions import save_definition

    with app.app_context():
        save_definition(EVERY_TYPE, by="test")
    return "every_type"


def test_every_field_type_round_trips(app, client, agent, every_type, db):
    from werkzeug.datastructures import FileStorage

    from kefu.records.attachments import store_upload

    with app.app_context():
        upload = store_upload(FileStorage(io.BytesIO(png_bytes()), filename="图.png"), max_bytes=1024 * 1024)
    customer, phone = customer_and_phone(app, db)
    project = db.projects.find_one({"code": "YQJNF"})
    response = client.post(f"/api/v1/records/{every_type}", headers=agent, json={
        "title": "短标题", "notes": "第一行\r\n第二行", "count": "7", "ratio": "3.14", "amount": "¥20,000",
        "due": "2026年11月22日", "happened": "2026-11-22 14:05", "colour": "红", "tags": "丙、甲",
        "urgent": "是", "mobile": "+86 138-1234-5678", "id_card": valid_id_number(), "mail": "Zhang@Example.COM",
        "client": phone, "project": "YQJNF", "unit": "1幢1单元101", "owner": "agent", "team": "工程部",
        "files": [upload.id],
    })
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["number"].startswith("QZD-") and body["number"].endswith("-0001")
    assert body["title"] == "短标题" and body["notes"] == "第一行\n第二行" and body["count"] == 7
    assert body["ratio"] == "3.14" and body["amount"] == "20000.00" and body["due"] == "2026-11-22"
    assert body["happened"] == "2026-11-22T14:05:00+08:00" and body["colour"] == "红"
    assert body["tags"] == ["甲", "丙"] and body["urgent"] is True and body["mobile"] == PHONE
    assert body["mail"] == "Zhang@example.com" and body["files"] == [upload.id]

    data = db.records.find_one({"_id": ObjectId(body["id"])})["data"]
    assert data["count"] == 7 and data["ratio"] == Decimal128("3.14") and data["amount"] == Decimal128("20000.00")
    assert data["due"] == datetime(2026, 11, 22, tzinfo=timezone.utc)
    assert data["happened"] == datetime(2026, 11, 22, 6, 5, tzinfo=timezone.utc)
    assert data["tags"] == ["甲", "丙"] and data["urgent"] is True and data["mobile"] == PHONE
    assert data["id_card"] == valid_id_number() and data["client"] == customer["_id"]
    assert data["project"] == project["_id"]
    assert data["unit"] == db.units.find_one({"project": project["_id"], "label": "1幢1单元101"})["_id"]
    assert data["owner"] == db.users.find_one({"username": "agent"})["_id"]
    assert data["team"] == db.departments.find_one({"name": "工程部"})["_id"]
    assert data["files"] == [ObjectId(upload.id)]
    assert db["attachments.files"].find_one({"_id": ObjectId(upload.id)})["metadata"]["record_id"] == ObjectId(
        body["id"])


BAD_VALUES = [
    ("title", "六个字的标题", "最多 5 个字符，当前 6 个"),
    ("notes", "一二三四五六七八九十十一", "最多 10 个字符"),
    ("count", "abc", "请输入整数"),
    ("count", "1.5", "请输入整数"),
    ("count", 0, "不能小于 1"),
    ("count", True, "请输入整数"),
    ("ratio", "1.2.3", "请输入数字"),
    ("ratio", "NaN", "请输入数字"),
    ("amount", "12.345", "金额最多保留两位小数"),
    ("amount", 12.345, "金额最多保留两位小数"),
    ("amount", "-5", "不能小于 0"),
    ("due", "2026-02-30", "“2026-02-30”不是有效日期"),
    ("due", "下周一", "日期格式应为"),
    ("happened", "garbage", "时间格式应为"),
    ("happened", "2026-11-22 25:00", "不是有效时间"),
    ("colour", "紫", "“紫”不是可选项，可选：红、绿"),
    ("tags", ["甲", "丁"], "“丁”不是可选项"),
    ("tags", 5, "请选择一个或多个可选项"),
    ("urgent", "maybe", "请选择“是”或“否”"),
    ("mobile", "123", None),
    ("mobile", "1381234567a", "无法识别的字符"),
    ("id_card", valid_id_number()[:-1] + ("0" if valid_id_number()[-1] != "0" else "1"), "校验位不正确"),
    ("id_card", "12345", "应为 18 位"),
    ("mail", "a@", None),
    ("mail", "no-at-sign", "缺少“@”"),
    ("client", "查无此人", "找不到客户“查无此人”"),
    ("project", "不存在的项目", "找不到项目“不存在的项目”"),
    ("unit", "99幢9单元999", "找不到户位"),
    ("owner", "nobody", "找不到用户“nobody”"),
    ("team", "不存在的部门", "找不到部门“不存在的部门”"),
    ("files", "nope", "附件编号“nope”无效"),
    ("files", [{"id": "x"}], "附件应为"),
    ("title", ["列表"], "请填写单个值"),
    ("count", {"$gt": 0}, None),
]


def test_bad_value_of_every_field_type_is_422_with_a_field_message(client, agent, every_type, db):
    wrong = []
    for key, value, expected in BAD_VALUES:
        response = client.post(f"/api/v1/records/{every_type}", headers=agent, json={key: value})
        if response.status_code != 422:
            wrong.append((key, value, response.status_code, response.get_data(as_text=True)[:200]))
            continue
        error = assert_error(response, 422, "validation_failed")
        message = error["fields"].get(key, "")
        if list(error["fields"]) != [key] or not CHINESE.search(message) or (expected and expected not in message):
            wrong.append((key, value, error["fields"]))
        assert message in error["message"]
    assert wrong == []
    covered = {key for key, _value, _expected in BAD_VALUES}
    assert covered == {f["key"] for f in EVERY_TYPE["fields"]}  # every field type has a bad value
    assert db.records.count_documents({}) == 0
    assert db.counters.count_documents({}) == 0  # no number was used up


def test_unknown_attachment_id_is_a_field_error_not_a_404(client, agent, every_type, db):
    """A well-formed id of no stored file is bad input in the body (422 on the field), not a missing route."""
    missing = str(ObjectId())
    response = client.post(f"/api/v1/records/{every_type}", headers=agent, json={"files": [missing]})
    error = assert_error(response, 422)
    assert "files" in error["fields"] and "不存在" in error["fields"]["files"]
    assert db.records.count_documents({}) == 0


def test_required_fields_are_reported_together(client, agent, db):
    response = client.post("/api/v1/records/complaint", headers=agent, json={})
    error = assert_error(response, 422)
    assert set(error["fields"]) == {"channel", "project", "owner_name", "phone", "content", "category"}
    assert error["fields"]["owner_name"] == "请填写“业主姓名”"
    assert db.records.count_documents({}) == 0


# --- exports -------------------------------------------------------------------------------


@pytest.fixture
def export_data(client, agent):
    made = [
        create(client, agent, category="工程质量", owner_name="=HYPERLINK(\"http://evil\")", claim_amount="100"),
        create(client, agent, category="工程质量", owner_name="+cmd|' /C calc'!A0", phone="13900001111"),
        create(client, agent, category="工程质量", owner_name="@SUM(1)", content="-2+3"),
        create(client, agent, category="销售承诺", owner_name="李四"),
        create(client, agent, category="物业管理", owner_name="王五"),
    ]
    return made


def read_csv(response) -> list[list[str]]:
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_csv_export_honours_filters_masks_for_agents_and_neutralises_formulas(client, agent, export_data, db):
    query = "category=工程质量&sort=-created_at"
    total = client.get(f"/api/v1/records/complaint?{query}", headers=agent).get_json()["total"]
    assert total == 3
    response = client.get(f"/api/v1/records/complaint/export.csv?{query}", headers=agent)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    headers, body = rows[0], rows[1:]
    assert len(body) == total
    assert headers[:2] == ["编号", "状态"]
    for label in ("业主姓名", "联系电话", "投诉内容", "索赔金额", "类别", "项目", "户位"):
        assert label in headers
    assert not any(re.fullmatch(r"[a-z_]+", h) for h in headers)  # labels, not keys
    column = {label: headers.index(label) for label in headers}
    assert {row[column["类别"]] for row in body} == {"工程质量"}
    assert {row[column["联系电话"]] for row in body} == {MASKED_PHONE, "139****1111"}
    text = response.get_data(as_text=True)
    assert PHONE not in text and "13900001111" not in text
    owners = {row[column["业主姓名"]] for row in body}
    assert owners == {"'=HYPERLINK(\"http://evil\")", "'+cmd|' /C calc'!A0", "'@SUM(1)"}
    assert "'-2+3" in {row[column["投诉内容"]] for row in body}
    assert [row[column["编号"]] for row in body] == [r["number"] for r in reversed(export_data[:3])]
    assert {row[column["项目"]] for row in body} == {"云栖·江南府"}

    entry = db.audit_log.find_one({"action": "export"})
    assert entry["record_type"] == "complaint" and entry["format"] == "csv" and entry["rows"] == 3
    assert entry["by"] == db.users.find_one({"username": "agent"})["_id"]
    assert "category=" in entry["filters"]


def test_csv_export_shows_phones_to_supervisors(client, supervisor, export_data, db):
    response = client.get("/api/v1/records/complaint/export.csv", headers=supervisor)
    rows = read_csv(response)
    column = rows[0].index("联系电话")
    assert sorted(row[column] for row in rows[1:]) == sorted([PHONE] * 4 + ["13900001111"])
    assert len(rows) - 1 == db.records.count_documents({"type": "complaint"})
    assert db.audit_log.find_one({"action": "export"})["rows"] == 5


def test_xlsx_export_honours_filters_and_masks(client, agent, export_data, db):
    from openpyxl import load_workbook

    query = "category__in=销售承诺,物业管理"
    total = client.get(f"/api/v1/records/complaint?{query}", headers=agent).get_json()["total"]
    response = client.get(f"/api/v1/records/complaint/export.xlsx?{query}", headers=agent)
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    rows = list(sheet.iter_rows(values_only=True))
    headers, body = list(rows[0]), rows[1:]
    assert len(body) == total == 2
    assert "联系电话" in headers and "业主姓名" in headers
    assert {row[headers.index("联系电话")] for row in body} == {MASKED_PHONE}
    assert {row[headers.index("业主姓名")] for row in body} == {"李四", "王五"}
    entry = db.audit_log.find_one({"action": "export"})
    assert entry["format"] == "xlsx" and entry["rows"] == 2


def test_xlsx_export_neutralises_formulas(client, agent, export_data):
    from openpyxl import load_workbook

    response = client.get("/api/v1/records/complaint/export.xlsx?category=工程质量", headers=agent)
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    rows = list(sheet.iter_rows(values_only=True))
    owners = {row[list(rows[0]).index("业主姓名")] for row in rows[1:]}
    assert all(isinstance(o, str) and o.startswith("'") for o in owners), owners
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f", cell.value


def test_export_rejects_bad_formats_and_filters(client, agent, export_data, db):
    assert_error(client.get("/api/v1/records/complaint/export.pdf", headers=agent), 400)
    assert_error(client.get("/api/v1/records/complaint/export.csv?no_such_field=1", headers=agent), 400)
    assert_error(client.get("/api/v1/records/complaint/export.csv?phone__contains=138", headers=agent), 400)
    assert db.audit_log.count_documents({"action": "export"}) == 0
