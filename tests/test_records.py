"""The record write path (kefu.records.write) directly and through the admin screens.

Encryption at rest with a blind index, masking by role, numbers under
concurrency, optimistic locking in the admin form, the audit log, the
timeline, Chinese substring search, and that every list query uses an index.
"""
from __future__ import annotations

import re
import threading
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import bson
import pytest
from bson import ObjectId

from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token, token_headers
from tests.test_records_api import MASKED_PHONE, PHONE, complaint, create

SHANGHAI = ZoneInfo("Asia/Shanghai")


class AdminForm(HTMLParser):
    """The values a browser would submit for the page's ``admin-form`` (no JavaScript)."""

    def __init__(self, page: str):
        super().__init__()
        self.fields: dict = {}
        self._select = self._textarea = None
        self._inside = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form" and "admin-form" in (attributes.get("class") or ""):
            self._inside = True
        if not self._inside:
            return
        name = attributes.get("name")
        if tag == "input" and name and attributes.get("type") not in ("file", "submit"):
            if attributes.get("type") == "checkbox":
                if "checked" in attributes:
                    self.fields[name] = attributes.get("value") or "y"
            else:
                self.fields.setdefault(name, attributes.get("value") or "")
        elif tag == "select":
            self._select = name
            self.fields[name] = [] if "multiple" in attributes else ""
        elif tag == "option" and self._select and "selected" in attributes:
            if isinstance(self.fields[self._select], list):
                self.fields[self._select].append(attributes.get("value"))
            else:
                self.fields[self._select] = attributes.get("value")
        elif tag == "textarea":
            self._textarea = name
            self.fields[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            # A browser drops the newline right after <textarea>.
            self.fields[self._textarea] = re.sub(r"^\r?\n", "", self.fields[self._textarea])
            self._textarea = None
        elif tag == "form":
            self._inside = False

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data


def edit_form(client, record_id) -> dict:
    response = client.get(f"/admin/records/complaint/edit/?id={record_id}")
    assert response.status_code == 200
    fields = AdminForm(response.get_data(as_text=True)).fields
    assert fields["version"] and fields["csrf_token"]
    return fields


def signed_in_client(app, username):
    other = app.test_client()
    token = csrf_token(other, "/login")
    response = other.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return other


def actor_for(app, username, can_view_pii=True):
    """An actor for ``username`` the access rules do not restrict (the system acting on their behalf)."""
    from kefu.org.access import MASKED_SYSTEM_POLICY, SYSTEM_POLICY
    from kefu.org.users import User
    from kefu.records.actor import Actor

    return Actor(user=User.objects(username=username).first(), tz=SHANGHAI, cipher=app.extensions["kefu_cipher"],
                 access=SYSTEM_POLICY if can_view_pii else MASKED_SYSTEM_POLICY)


def python_complaint(db, **overrides) -> dict:
    project = db.projects.find_one({"code": "YQJNF"})
    values = complaint(project=str(project["_id"]), unit="1幢1单元101")
    values.update(overrides)
    return values


# --- encryption and masking ---------------------------------------------------------------


def test_phone_is_encrypted_at_rest_yet_searchable(client, agent, supervisor, db, sign_in):
    record = create(client, agent, phone="+86 138 1234 5678")
    other = create(client, agent, phone="13987654321", owner_name="李四")

    raw = db.records.find_one({"_id": ObjectId(record["id"])})
    encoded = bson.encode(raw)
    for plain in (PHONE, "12345678", "1381234"):
        assert plain not in str(raw) and plain.encode() not in encoded, plain
    assert "phone" not in raw["data"] and isinstance(raw["pii"]["phone"], bytes) and raw["bidx"]["phone"]
    assert not any(re.search(r"\d{5,}", gram) for gram in raw["grams"] if not gram.startswith("ts"))
    for collection in ("audit_log", "record_events", "counters"):
        for document in db[collection].find():
            assert PHONE not in str(document), collection
    # The same number is indexed the same way, a different one differently.
    assert raw["bidx"]["phone"] != db.records.find_one({"_id": ObjectId(other["id"])})["bidx"]["phone"]

    # ... and the supervisor reads it back in clear, so it really is there.
    assert client.get(f"/api/v1/records/complaint/{record['id']}", headers=supervisor).get_json()["phone"] == PHONE

    for query in (f"q={PHONE}", f"phone={PHONE}", "q=138 1234 5678", "phone=138-1234-5678"):
        found = client.get(f"/api/v1/records/complaint?{query}", headers=agent).get_json()
        assert [item["id"] for item in found["items"]] == [record["id"]], query
    assert client.get("/api/v1/records/complaint?q=13800000000", headers=agent).get_json()["total"] == 0

    sign_in("agent", DEMO_PASSWORD)
    page = client.get(f"/admin/records/complaint/?search={PHONE}").get_data(as_text=True)
    assert record["number"] in page and other["number"] not in page


@pytest.fixture
def phone_listed(app, seeded):
    """The complaint type edited by an admin so that the phone is a list column."""
    from kefu.records.definitions import save_definition
    from kefu.records.types import get_record_type

    with app.app_context():
        definition = get_record_type("complaint").to_dict()
        for field in definition["fields"]:
            if field["key"] == "phone":
                field["list"] = True
        save_definition(definition, by="admin", key="complaint")


def test_admin_list_and_details_mask_the_phone_for_agents_only(app, client, agent, db, phone_listed, sign_in):
    record = create(client, agent)
    sign_in("agent", DEMO_PASSWORD)
    listing = client.get("/admin/records/complaint/")
    assert listing.status_code == 200
    page = listing.get_data(as_text=True)
    assert "联系电话" in page and MASKED_PHONE in page and PHONE not in page  # the new column is there, masked
    details = client.get(f"/admin/records/complaint/details/?id={record['id']}").get_data(as_text=True)
    assert f'<th>联系电话</th><td class="kefu-value">{MASKED_PHONE}</td>' in details
    assert PHONE not in details

    supervisor = signed_in_client(app, "supervisor")
    page = supervisor.get("/admin/records/complaint/").get_data(as_text=True)
    assert PHONE in page
    details = supervisor.get(f"/admin/records/complaint/details/?id={record['id']}").get_data(as_text=True)
    assert f'<th>联系电话</th><td class="kefu-value">{PHONE}</td>' in details


def test_agent_edit_form_does_not_reveal_the_phone(client, agent, db, sign_in):
    """An agent may not see personal data: the edit form must not carry the phone in clear either."""
    record = create(client, agent)
    sign_in("agent", DEMO_PASSWORD)
    page = client.get(f"/admin/records/complaint/edit/?id={record['id']}").get_data(as_text=True)
    assert PHONE not in page


def test_agent_saving_the_edit_form_keeps_the_phone_it_cannot_see(client, agent, db, sign_in):
    """The hidden phone arrives empty from the agent's form; empty means "unchanged", not "erase"."""
    record = create(client, agent)
    before = db.records.find_one({"_id": ObjectId(record["id"])})
    sign_in("agent", DEMO_PASSWORD)
    form = edit_form(client, record["id"])
    assert form["phone"] == ""
    form["owner_name"] = "王五"
    response = client.post(f"/admin/records/complaint/edit/?id={record['id']}", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    after = db.records.find_one({"_id": ObjectId(record["id"])})
    assert after["data"]["owner_name"] == "王五" and after["version"] == 2
    assert after["pii"]["phone"] == before["pii"]["phone"] and after["bidx"]["phone"] == before["bidx"]["phone"]

# --- numbers --------------------------------------------------------------------------------


def test_numbers_stay_unique_and_consecutive_under_concurrent_creation(app, seeded, db):
    from kefu.records.write import create_record

    threads_count, per_thread = 8, 10
    values = python_complaint(db)
    start = threading.Barrier(threads_count)
    numbers, errors = [], []
    lock = threading.Lock()

    def work():
        try:
            with app.app_context():
                actor = actor_for(app, "agent")
                start.wait()
                for _ in range(per_thread):
                    document = create_record("complaint", dict(values), actor)
                    with lock:
                        numbers.append(document["number"])
        except Exception as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert errors == []
    total = threads_count * per_thread
    assert len(numbers) == total and len(set(numbers)) == total
    prefix = numbers[0].rsplit("-", 1)[0]
    assert re.fullmatch(r"TS-\d{6}", prefix)
    assert sorted(numbers) == [f"{prefix}-{n:04d}" for n in range(1, total + 1)]
    stored = [d["number"] for d in db.records.find({"type": "complaint"}, {"number": 1})]
    assert sorted(stored) == sorted(numbers)
    assert db.counters.find_one({"_id": prefix})["seq"] == total


def test_concurrent_updates_of_the_same_version_let_exactly_one_win(app, seeded, db):
    from kefu.core.errors import Conflict
    from kefu.records.write import create_record, update_record

    with app.app_context():
        record_id = create_record("complaint", python_complaint(db), actor_for(app, "agent"))["_id"]
    start = threading.Barrier(8)
    outcomes = []

    def work(n):
        with app.app_context():
            actor = actor_for(app, "supervisor")
            start.wait()
            try:
                update_record("complaint", record_id, {"owner_name": f"业主{n}"}, actor, version=1)
                outcomes.append(("ok", n))
            except Conflict:
                outcomes.append(("conflict", n))

    workers = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    winners = [n for outcome, n in outcomes if outcome == "ok"]
    assert len(outcomes) == 8 and len(winners) == 1
    stored = db.records.find_one({"_id": record_id})
    assert stored["version"] == 2 and stored["data"]["owner_name"] == f"业主{winners[0]}"
    assert db.audit_log.count_documents({"record_id": record_id, "action": "update"}) == 1


# --- admin forms ------------------------------------------------------------------------------


def test_admin_creates_a_record_through_the_form(client, seeded, db, sign_in):
    sign_in("agent", DEMO_PASSWORD)
    token = csrf_token(client, "/admin/records/complaint/new/")
    response = client.post("/admin/records/complaint/new/", data={
        "csrf_token": token, "status": "待受理", "received_at": "2026-11-20T09:30", "channel": ["来电", "来访"],
        "project": "拱宸·桥西里", "unit": "1幢1单元101", "owner_name": "钱七", "phone": "139 0000 1111",
        "content": "阳台推拉门关不严", "category": "工程质量", "level": "一般", "households": "1",
        "claim_amount": "1,500"})
    assert response.status_code == 302, response.get_data(as_text=True)
    stored = db.records.find_one({"data.owner_name": "钱七"})
    project = db.projects.find_one({"code": "GCQXL"})
    assert stored["number"].startswith("TS-") and stored["version"] == 1
    assert stored["data"]["project"] == project["_id"]
    assert stored["data"]["unit"] == db.units.find_one({"project": project["_id"], "label": "1幢1单元101"})["_id"]
    assert stored["data"]["channel"] == ["来电", "来访"] and str(stored["data"]["claim_amount"]) == "1500.00"
    assert "13900001111" not in str(stored) and stored["created_by"] == db.users.find_one({"username": "agent"})["_id"]


def test_admin_form_shows_field_messages_and_saves_nothing(client, seeded, db, sign_in):
    sign_in("agent", DEMO_PASSWORD)
    token = csrf_token(client, "/admin/records/complaint/new/")
    response = client.post("/admin/records/complaint/new/", data={
        "csrf_token": token, "received_at": "2026-11-20T09:30", "channel": ["来电"], "project": "云栖·江南府",
        "unit": "1幢1单元101", "owner_name": "钱七", "phone": "123", "content": "x", "category": "工程质量",
        "level": "一般", "claim_amount": "1.234"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "金额最多保留两位小数" in page
    assert db.records.count_documents({}) == 0


def test_stale_admin_edit_is_refused_with_the_current_values(app, client, agent, db, sign_in):
    record = create(client, agent)
    sign_in("agent", DEMO_PASSWORD)
    form = edit_form(client, record["id"])
    assert form["version"] == "1" and form["owner_name"] == "张三"

    other = app.test_client()
    saved = other.patch(f"/api/v1/records/complaint/{record['id']}", headers=token_headers(other, "supervisor"),
                        json={"version": 1, "owner_name": "李四"})
    assert saved.status_code == 200

    form["owner_name"] = "王五"
    response = client.post(f"/admin/records/complaint/edit/?id={record['id']}", data=form)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "已被他人修改" in page and "李四" in page
    stored = db.records.find_one({"_id": ObjectId(record["id"])})
    assert stored["version"] == 2 and stored["data"]["owner_name"] == "李四"
    assert [e["by_name"] for e in db.audit_log.find({"action": "update"})] == ["陈立峰"]


def test_admin_edit_saves_the_change_and_bumps_the_version(client, agent, db, sign_in):
    record = create(client, agent, received_at="2026-11-20 09:30")
    sign_in("agent", DEMO_PASSWORD)
    form = edit_form(client, record["id"])
    form["owner_name"] = "王五"
    response = client.post(f"/admin/records/complaint/edit/?id={record['id']}", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    stored = db.records.find_one({"_id": ObjectId(record["id"])})
    assert stored["version"] == 2 and stored["data"]["owner_name"] == "王五"
    assert stored["data"]["content"] == "卫生间漏水严重" and stored["bidx"]["phone"]


def test_admin_edit_without_changes_changes_nothing(client, agent, db, sign_in):
    """Opening the edit form and saving it untouched must not rewrite the record or the audit log."""
    record = create(client, agent)  # received_at defaults to now, with seconds
    before = db.records.find_one({"_id": ObjectId(record["id"])})
    sign_in("agent", DEMO_PASSWORD)
    response = client.post(f"/admin/records/complaint/edit/?id={record['id']}", data=edit_form(client, record["id"]))
    assert response.status_code == 302, response.get_data(as_text=True)
    after = db.records.find_one({"_id": ObjectId(record["id"])})
    assert after["data"]["received_at"] == before["data"]["received_at"]
    assert after["version"] == 1
    assert db.audit_log.count_documents({"action": "update"}) == 0


# --- audit and timeline ---------------------------------------------------------------------------


def test_audit_log_keeps_field_level_before_and_after_with_sensitive_values_masked(client, agent, supervisor, db,
                                                                                    sign_in):
    record = create(client, agent, claim_amount="100")
    created = db.audit_log.find_one({"action": "create"})
    assert created["record_id"] == ObjectId(record["id"]) and created["number"] == record["number"]
    shown = {c["field"]: c for c in created["changes"]}
    assert shown["phone"]["after"] == MASKED_PHONE and shown["phone"]["before"] is None
    assert shown["owner_name"]["after"] == "张三" and shown["owner_name"]["label"] == "业主姓名"

    response = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=supervisor, json={
        "version": 1, "owner_name": "李四", "phone": "13900000000", "claim_amount": "300", "status": "处理中",
        "content": "卫生间漏水严重"})  # unchanged value: no audit line
    assert response.status_code == 200
    entry = db.audit_log.find_one({"action": "update"})
    assert entry["by"] == db.users.find_one({"username": "supervisor"})["_id"] and entry["by_name"] == "陈立峰"
    assert entry["record_type"] == "complaint" and entry["number"] == record["number"]
    changes = {c["field"]: (c["label"], c["before"], c["after"]) for c in entry["changes"]}
    assert changes == {
        "owner_name": ("业主姓名", "张三", "李四"),
        "phone": ("联系电话", MASKED_PHONE, "139****0000"),
        "claim_amount": ("索赔金额", "¥100.00", "¥300.00"),
        "status": ("状态", "待受理", "处理中"),
    }
    for document in db.audit_log.find():
        assert PHONE not in str(document) and "13900000000" not in str(document)

    sign_in("agent", DEMO_PASSWORD)
    page = client.get(f"/admin/records/complaint/details/?id={record['id']}").get_data(as_text=True)
    assert "业主姓名：张三 → 李四" in page and "联系电话：138****5678 → 139****0000" in page


def test_timeline_records_creation_status_changes_and_comments_from_the_detail_page(client, agent, db, sign_in):
    record = create(client, agent)
    record_id = ObjectId(record["id"])
    created = db.record_events.find_one({"record_id": record_id})
    assert created["kind"] == "created" and record["number"] in created["text"]

    response = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=agent,
                            json={"version": 1, "status": "处理中"})
    assert response.status_code == 200
    status = db.record_events.find_one({"record_id": record_id, "kind": "status"})
    assert status["text"] == "待受理 → 处理中"

    sign_in("agent", DEMO_PASSWORD)
    details = f"/admin/records/complaint/details/?id={record['id']}"
    refused = client.post(f"/admin/records/complaint/event/?id={record['id']}",
                          data={"kind": "comment", "text": "没有令牌的备注"})
    assert refused.status_code == 302
    assert db.record_events.count_documents({"kind": "comment"}) == 0

    token = csrf_token(client, details)
    response = client.post(f"/admin/records/complaint/event/?id={record['id']}",
                           data={"csrf_token": token, "kind": "comment", "text": "已联系工程部，明日上门查看"})
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/records/complaint/details/")
    comment = db.record_events.find_one({"record_id": record_id, "kind": "comment"})
    assert comment["text"] == "已联系工程部，明日上门查看"
    assert comment["by"] == db.users.find_one({"username": "agent"})["_id"] and comment["by_name"] == "林晓雯"

    page = client.get(details).get_data(as_text=True)
    assert "已记录" in page
    timeline = page[page.index("kefu-timeline"):page.index("kefu-audit")]
    assert timeline.index("登记") < timeline.index("待受理 → 处理中") < timeline.index("已联系工程部，明日上门查看")
    assert "备注" in timeline and "状态变更" in timeline
    assert [e["kind"] for e in db.record_events.find({"record_id": record_id}).sort("at", 1)] == [
        "created", "status", "comment"]


# --- search ------------------------------------------------------------------------------------


def test_chinese_substring_search(client, agent, db, sign_in):
    leak = create(client, agent, content="卫生间漏水严重", owner_name="欧阳娜娜")
    power = create(client, agent, content="厨房漏电跳闸", owner_name="司马光")
    names = {leak["id"]: "leak", power["id"]: "power"}

    def found(q):
        body = client.get("/api/v1/records/complaint", query_string={"q": q}, headers=agent).get_json()
        return sorted(names[item["id"]] for item in body["items"])

    assert found("漏水") == ["leak"]
    assert found("水严") == ["leak"]
    assert found("卫生间 漏水") == ["leak"]
    assert found("漏电") == ["power"]
    assert found("漏") == ["leak", "power"]
    assert found("阳娜") == ["leak"]
    assert found("严重漏水") == []
    assert found("漏气") == []
    assert set(query for query in ("漏水", "水严") if query in db.records.find_one(
        {"_id": ObjectId(leak["id"])})["grams"]) == {"漏水", "水严"}

    sign_in("agent", DEMO_PASSWORD)
    page = client.get("/admin/records/complaint/", query_string={"search": "水严"}).get_data(as_text=True)
    assert leak["number"] in page and power["number"] not in page
    page = client.get("/admin/records/complaint/", query_string={"search": "漏电"}).get_data(as_text=True)
    assert power["number"] in page and leak["number"] not in page


def test_search_does_not_match_scattered_character_pairs(client, agent):
    """``q`` means "contains this text": sharing all its character pairs elsewhere is not a match."""
    first = create(client, agent, content="外墙渗水")
    second = create(client, agent, content="楼上漏水，水严重影响吊顶")  # has 漏水, 水严 and 严重, not 漏水严重
    exact = create(client, agent, content="卫生间漏水严重")
    names = {first["id"]: "first", second["id"]: "second", exact["id"]: "exact"}

    def found(q):
        body = client.get("/api/v1/records/complaint", query_string={"q": q}, headers=agent).get_json()
        return sorted(names[item["id"]] for item in body["items"])

    results = {"number": found(second["number"]), "phrase": found("漏水严重")}
    # TS-…-0001 holds every pair of TS-…-0002 ("02" is in "2026"); "楼上漏水，水严重" every pair of "漏水严重".
    assert results == {"number": ["second"], "phrase": ["exact"]}


# --- indexes -----------------------------------------------------------------------------------


def _stages(plan) -> list[str]:
    """Every ``stage`` named anywhere in an explain plan."""
    found = []
    if isinstance(plan, dict):
        if "stage" in plan:
            found.append(plan["stage"])
        for value in plan.values():
            found.extend(_stages(value))
    elif isinstance(plan, list):
        for value in plan:
            found.extend(_stages(value))
    return found


def test_list_queries_never_scan_the_whole_collection(app, seeded, db):
    from kefu.records.query import Condition, RecordQuery, build_filter, sort_spec
    from kefu.records.types import get_record_type
    from kefu.records.write import create_record

    with app.app_context():
        actor = actor_for(app, "supervisor")
        numbers = []
        for n in range(30):
            document = create_record("complaint", python_complaint(
                db, category=("工程质量", "销售承诺", "物业管理")[n % 3], claim_amount=str(n * 1000),
                content=("卫生间漏水严重", "车位承诺未兑现")[n % 2], phone=f"139{n:08d}", status=("待受理", "处理中")[n % 2],
            ), actor)
            numbers.append(document["number"])
        record_type = get_record_type("complaint")
        queries = {
            "type only": RecordQuery(),
            "status": RecordQuery(conditions=[Condition("status", "eq", "处理中")]),
            "category": RecordQuery(conditions=[Condition("category", "eq", "工程质量")]),
            "money range": RecordQuery(conditions=[Condition("claim_amount", "gte", "5000"),
                                                   Condition("claim_amount", "lte", "20000")]),
            "search": RecordQuery(q="漏水"),
            "phone search": RecordQuery(q="13900000007"),
            "phone filter": RecordQuery(conditions=[Condition("phone", "eq", "13900000007")]),
            "number search": RecordQuery(q=numbers[3]),
            "category sorted by money": RecordQuery(conditions=[Condition("category", "eq", "销售承诺")],
                                                    sort="-claim_amount"),
            "category and search": RecordQuery(conditions=[Condition("category", "eq", "工程质量")], q="漏水"),
        }
        scans = {}
        for name, query in queries.items():
            mongo_filter = build_filter(record_type, query, actor)
            sort = sort_spec(record_type, query.sort)
            plan = db.records.find(mongo_filter).sort(sort).limit(50).explain()
            count_plan = db.command({"explain": {"count": "records", "query": mongo_filter},
                                     "verbosity": "queryPlanner"})
            stages = _stages(plan["queryPlanner"]["winningPlan"]) + _stages(
                count_plan["queryPlanner"]["winningPlan"])
            assert stages, name
            if "COLLSCAN" in stages:
                scans[name] = stages
            assert db.records.count_documents(mongo_filter) >= 1, name  # each query does match records
    assert scans == {}


def test_default_list_order_is_served_by_an_index(app, seeded, db):
    """The screens' default order (newest first) comes from an index, not an in-memory sort of every record."""
    from kefu.records.query import Condition, RecordQuery, build_filter, sort_spec
    from kefu.records.types import get_record_type
    from kefu.records.write import create_record

    with app.app_context():
        actor = actor_for(app, "supervisor")
        for n in range(20):
            create_record("complaint", python_complaint(db, status=("待受理", "处理中")[n % 2]), actor)
        record_type = get_record_type("complaint")
        sorted_in_memory = {}
        for name, query in {"type only": RecordQuery(),
                            "status": RecordQuery(conditions=[Condition("status", "eq", "处理中")])}.items():
            plan = db.records.find(build_filter(record_type, query, actor)).sort(
                sort_spec(record_type, query.sort)).limit(50).explain()
            stages = _stages(plan["queryPlanner"]["winningPlan"])
            if "SORT" in stages:
                sorted_in_memory[name] = stages
    assert sorted_in_memory == {}


def test_a_save_by_someone_who_cannot_see_sensitive_values_never_changes_them(client, seeded, db, sign_in):
    """A sensitive checkbox arrives unticked and a sensitive field with a default arrives empty from the agent's
    form (the values are hidden from them): both mean "unchanged", never "false" or the default."""
    admin = token_headers(client, "admin")
    definition = {"key": "vip_visit", "name": "贵宾来访", "number_prefix": "GB", "fields": [
        {"key": "note", "label": "备注", "type": "text", "list": True},
        {"key": "vip", "label": "贵宾", "type": "boolean", "sensitive": True},
        {"key": "id_note", "label": "证件说明", "type": "text", "sensitive": True, "default": "未核验"}]}
    assert client.post("/api/v1/types", json=definition, headers=admin).status_code == 201
    agent = token_headers(client, "agent")
    created = client.post("/api/v1/records/vip_visit", json={"note": "来访", "vip": True, "id_note": "身份证已核"},
                          headers=agent)
    assert created.status_code == 201, created.get_data(as_text=True)
    record_id = created.get_json()["id"]
    before = db.records.find_one({"_id": ObjectId(record_id)})
    sign_in("agent", DEMO_PASSWORD)
    page = client.get(f"/admin/records/vip_visit/edit/?id={record_id}")
    assert page.status_code == 200
    form = AdminForm(page.get_data(as_text=True)).fields
    assert "vip" not in form and form["id_note"] == ""  # unticked, empty: nothing of the hidden values shown
    form["note"] = "来访（已接待）"
    response = client.post(f"/admin/records/vip_visit/edit/?id={record_id}", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    after = db.records.find_one({"_id": ObjectId(record_id)})
    assert after["data"]["note"] == "来访（已接待）" and after["version"] == before["version"] + 1
    assert after["pii"] == before["pii"] and after["bidx"] == before["bidx"]
