"""逾期督办 (/admin/overdue/): counts per group, the list by lateness, filters, bulk reassign, the record lists'
逾期 / 即将到期 filters and 时限 column, and the index behind every query.

The records are created through the API on two small record types with SLA clocks (the PROBE of test_sla and
a copy of it), on the seeded working-day calendar; the clock that matters here is the 24-hour 首次响应, so
"received N hours ago" makes a record overdue by N - 24 hours. Every test checks the HTTP response and what is
stored.
"""
from __future__ import annotations

import copy
import html
import re
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId
from bson.codec_options import CodecOptions, DatetimeConversion

from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token
from tests.test_record_types import column_header, filter_groups
from tests.test_sla import PROBE, SHANGHAI, probe  # noqa: F401  (fixtures)

PROBE_TWO = {**copy.deepcopy(PROBE), "key": "sla_probe_two", "name": "时限测试二", "number_prefix": "SQ"}


def hours_ago(hours: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(hours=hours)).astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


def new_record(client, headers, type_key: str, received_hours_ago: float, **values) -> dict:
    response = client.post(f"/api/v1/records/{type_key}", json={"received_at": hours_ago(received_hours_ago),
                                                                 **values}, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture
def cases(client, admin, probe, db):
    """Five records with known lateness, assignee, department and level.

    - ``late``: sla_probe_two, received 100 h ago → 首次响应 overdue by 76 h; nobody assigned, 工程部, 一般
    - ``important``: sla_probe, 重要 (处理完成 within 1 hour), received 50 h ago → overdue by 49 h; supervisor, 客服中心
    - ``recent``: sla_probe, received 30 h ago → overdue by 6 h; agent, 客服中心, 一般
    - ``soon``: sla_probe_two, received 21 h ago → due soon (the last 4.8 h of 24); agent, 工程部
    - ``fresh``: sla_probe, received 1 h ago → on time
    """
    response = client.post("/api/v1/types", json=PROBE_TWO, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    later = hours_ago(-400)  # an agreed deadline far ahead: only the 24-hour clock runs out
    made = {
        "late": new_record(client, admin, "sla_probe_two", 100, agreed=later, department="工程部"),
        "important": new_record(client, admin, "sla_probe", 50, level="重要", assignee="supervisor",
                                department="客服中心"),
        "recent": new_record(client, admin, "sla_probe", 30, agreed=later, assignee="agent", department="客服中心"),
        "soon": new_record(client, admin, "sla_probe_two", 21, agreed=later, assignee="agent", department="工程部"),
        "fresh": new_record(client, admin, "sla_probe", 1, agreed=later),
    }
    return {name: record["id"] for name, record in made.items()}


@pytest.fixture
def as_supervisor(client, cases, sign_in):
    sign_in("supervisor", DEMO_PASSWORD)
    return client


def listed_ids(page: str) -> list[str]:
    return re.findall(r'<tr data-id="([0-9a-f]{24})">', page)


def counts_of(client, page: str) -> dict[str, dict[str, int]]:
    """The counts panel the page loads (its ``data-kefu-load`` URL), as ``{group: {value: n}}``."""
    url = html.unescape(re.search(r'<div class="kefu-overdue-counts" data-kefu-load="([^"]+)"', page).group(1))
    response = client.get(url)
    assert response.status_code == 200
    counts = {}
    for group, body in re.findall(r'data-group="(\w+)">(.*?)</ul>', response.get_data(as_text=True), flags=re.S):
        counts[group] = {value: int(n) for value, n in re.findall(r'data-value="([^"]*)" data-count="(\d+)"', body)}
    return counts


def user_id(db, username: str) -> str:
    return str(db.users.find_one({"username": username})["_id"])


def department_id(db, name: str) -> str:
    return str(db.departments.find_one({"name": name})["_id"])


# --- the page ----------------------------------------------------------------------------------------------

def test_counts_per_group_and_the_list_sorted_by_lateness(as_supervisor, cases, db):
    response = as_supervisor.get("/admin/overdue/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)

    assert listed_ids(page) == [cases["late"], cases["important"], cases["recent"]]
    assert "共 3 条" in page
    assert counts_of(as_supervisor, page) == {
        "type": {"sla_probe": 2, "sla_probe_two": 1},
        "department": {department_id(db, "客服中心"): 2, department_id(db, "工程部"): 1},
        "assignee": {user_id(db, "supervisor"): 1, user_id(db, "agent"): 1, "none": 1},
        "level": {"一般": 2, "重要": 1},
    }
    important = db.records.find_one({"_id": ObjectId(cases["important"])})
    row = re.search(rf'<tr data-id="{cases["important"]}">(.*?)</tr>', page, flags=re.S).group(1)
    assert f'href="/admin/records/sla_probe/details/?id={cases["important"]}"' in row
    assert important["number"] in row and "时限测试" in row and "待受理" in row and "陈立峰" in row
    assert "客服中心" in row and "重要" in row
    assert "处理完成" in row  # the 1-hour clock, late since 49 hours (首次响应 only since 26)
    assert "逾期 2 天 1 小时" in row
    late_row = re.search(rf'<tr data-id="{cases["late"]}">(.*?)</tr>', page, flags=re.S).group(1)
    assert "首次响应" in late_row and "逾期 3 天 4 小时" in late_row and "工程部" in late_row


def test_filters_narrow_the_list_and_the_counts(as_supervisor, cases, db):
    def shown(**query):
        response = as_supervisor.get("/admin/overdue/", query_string=query)
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        return listed_ids(page), counts_of(as_supervisor, page)

    ids, counts = shown(type="sla_probe")
    assert ids == [cases["important"], cases["recent"]] and counts["type"] == {"sla_probe": 2}
    ids, counts = shown(department=department_id(db, "工程部"))
    assert ids == [cases["late"]] and counts["department"] == {department_id(db, "工程部"): 1}
    assert shown(assignee=user_id(db, "agent"))[0] == [cases["recent"]]
    assert shown(assignee="none")[0] == [cases["late"]]
    assert shown(level="重要")[0] == [cases["important"]]
    assert shown(type="sla_probe", level="一般", department=department_id(db, "客服中心"))[0] == [cases["recent"]]
    assert shown(type="sla_probe_two", assignee=user_id(db, "supervisor")) == ([], {g: {} for g in (
        "type", "department", "assignee", "level")})

    response = as_supervisor.get("/admin/overdue/", query_string={"type": "nope", "assignee": "x"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and len(listed_ids(page)) == 3  # unknown values are dropped, and said so
    assert "没有记录类型“nope”" in page and "筛选条件“x”无效" in page


def test_counts_panel_is_a_fragment_loaded_with_the_lists_filters(as_supervisor, client, cases, db, sign_in):
    engineering = department_id(db, "工程部")
    page = as_supervisor.get("/admin/overdue/", query_string={"department": engineering, "type": "nope"}
                             ).get_data(as_text=True)
    assert "没有记录类型“nope”" in page and 'src="/static/kefu_load.js"' in page
    url = html.unescape(re.search(r'data-kefu-load="([^"]+)"', page).group(1))
    assert url == f"/admin/overdue/counts/overdue/?department={engineering}"  # the dropped filter is not passed on
    fragment = as_supervisor.get(url + "&type=nope").get_data(as_text=True)
    assert "<html" not in fragment and "kefu-count-list" in fragment
    assert f'href="/admin/overdue/?department={engineering}&amp;type=sla_probe_two"' in fragment  # links keep filters
    # The fragment said nothing: the next page shows no message left over from it.
    assert "没有记录类型" not in as_supervisor.get("/admin/overdue/").get_data(as_text=True)

    due_soon = as_supervisor.get("/admin/overdue/due-soon/").get_data(as_text=True)
    assert 'data-kefu-load="/admin/overdue/counts/due_soon/"' in due_soon
    assert as_supervisor.get("/admin/overdue/counts/late/").status_code == 404
    as_supervisor.post("/logout", data={"csrf_token": csrf_token(as_supervisor, "/admin/")})
    sign_in("approver", DEMO_PASSWORD)  # approves, reads no records of their own
    assert client.get("/admin/overdue/counts/overdue/").status_code == 403


def test_a_type_keeping_its_level_elsewhere_is_counted_shown_and_filtered_by_it(as_supervisor, app, admin, cases, db):
    api = app.test_client()  # the Bearer token's own client: the other one is signed in as the supervisor
    graded = copy.deepcopy(PROBE)
    graded.update(key="sla_graded", name="分级时限测试", number_prefix="SG",
                  levels={"field": "grade", "order": ["一般", "重要", "重大"], "rules": []})
    graded["fields"] = [{**f, "key": "grade", "label": "分级"} if f["key"] == "level" else f for f in graded["fields"]]
    graded["sla"] = [{k: v for k, v in clock.items() if k != "by_level"} for clock in graded["sla"]]
    response = api.post("/api/v1/types", json=graded, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    major = new_record(api, admin, "sla_graded", 40, grade="重大", agreed=hours_ago(-400))["id"]
    stored = db.records.find_one({"_id": ObjectId(major)})
    assert stored["data"]["grade"] == "重大" and "level" not in stored["data"] and stored["sla_due"] is not None

    page = as_supervisor.get("/admin/overdue/").get_data(as_text=True)
    row = re.search(rf'<tr data-id="{major}">(.*?)</tr>', page, flags=re.S).group(1)
    assert "分级时限测试" in row and "<td>重大</td>" in row
    assert counts_of(as_supervisor, page)["level"] == {"一般": 2, "重要": 1, "重大": 1}
    assert '<option value="重大">重大</option>' in page

    def listed(**query):
        return listed_ids(as_supervisor.get("/admin/overdue/", query_string=query).get_data(as_text=True))

    assert listed(level="重大") == [major]
    assert listed(level="一般") == [cases["late"], cases["recent"]]  # the graded record's 一般 would be in grade
    assert listed(type="sla_graded", level="重大") == [major] and listed(type="sla_graded", level="一般") == []
    assert listed(level="none") == []
    filtered = counts_of(as_supervisor, as_supervisor.get("/admin/overdue/?level=重大").get_data(as_text=True))
    assert filtered["type"] == {"sla_graded": 1} and filtered["level"] == {"重大": 1}


def test_due_soon_tab_lists_the_records_in_their_last_stretch(as_supervisor, cases, db):
    response = as_supervisor.get("/admin/overdue/due-soon/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert listed_ids(page) == [cases["soon"]]
    assert counts_of(as_supervisor, page)["type"] == {"sla_probe_two": 1}
    row = re.search(rf'<tr data-id="{cases["soon"]}">(.*?)</tr>', page, flags=re.S).group(1)
    assert "首次响应" in row and re.search(r"剩余 [23] 小时 \d+ 分钟", row)


def test_pages_of_fifty_with_the_total(as_supervisor, cases, db):
    stored = db.records.find_one({"_id": ObjectId(cases["recent"])})
    due = stored["sla_due"]
    copies = []
    for n in range(55):
        copies.append({**{k: v for k, v in stored.items() if k != "_id"}, "number": f"SP-COPY-{n:03d}",
                       "sla_due": due + timedelta(seconds=n + 1)})
    db.records.insert_many(copies)

    first = as_supervisor.get("/admin/overdue/").get_data(as_text=True)
    second = as_supervisor.get("/admin/overdue/?page=2").get_data(as_text=True)
    assert "共 58 条" in first and len(listed_ids(first)) == 50 and len(listed_ids(second)) == 8
    assert listed_ids(first)[:3] == [cases["late"], cases["important"], cases["recent"]]
    assert not set(listed_ids(first)) & set(listed_ids(second))
    assert "SP-COPY-054" in second


def test_agent_follows_up_without_reassigning(client, cases, sign_in, db):
    """Every role that reads records opens the page (the records registered at the customer-service centre are
    the agent's department's); only a role that reassigns gets the checkboxes and the form."""
    sign_in("agent", DEMO_PASSWORD)
    response = client.get("/admin/overdue/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert listed_ids(page) == [cases["late"], cases["important"], cases["recent"]]
    assert 'name="record"' not in page and "将勾选的记录转派给" not in page
    assert 'href="/admin/overdue/"' in client.get("/admin/").get_data(as_text=True)


def test_approver_gets_403_and_no_menu_entry(client, cases, sign_in):
    sign_in("approver", DEMO_PASSWORD)
    response = client.get("/admin/overdue/")
    assert response.status_code == 403
    assert "此页面需要“查看”记录的权限" in response.get_data(as_text=True)
    assert client.get("/admin/overdue/due-soon/").status_code == 403
    assert "逾期督办" not in client.get("/admin/").get_data(as_text=True)


def test_menu_entry_for_supervisors(as_supervisor):
    page = as_supervisor.get("/admin/").get_data(as_text=True)
    assert "逾期督办" in page and 'href="/admin/overdue/"' in page


def test_signed_out_is_sent_to_the_login_page(client, cases):
    response = client.get("/admin/overdue/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- bulk reassign -----------------------------------------------------------------------------------------

def reassign(client, records: dict, assignee: str, next_path="/admin/overdue/"):
    token = csrf_token(client, "/admin/overdue/")
    return client.post("/admin/overdue/reassign/", data={
        "csrf_token": token, "assignee": assignee, "next": next_path,
        "record": [f"{record_id}:{version}" for record_id, version in records.items()]})


def test_bulk_reassign_changes_the_assignee_with_audit_and_timeline(as_supervisor, cases, db):
    handler = user_id(db, "handler")
    picked = [cases["late"], cases["recent"]]
    response = reassign(as_supervisor, {i: 1 for i in picked}, handler, next_path=f"/admin/overdue/?assignee={handler}")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/admin/overdue/?assignee={handler}")

    supervisor = db.users.find_one({"username": "supervisor"})
    for record_id in picked:
        stored = db.records.find_one({"_id": ObjectId(record_id)})
        assert stored["assignee"] == ObjectId(handler) and stored["version"] == 2
        assert stored["updated_by"] == supervisor["_id"]
        audit = db.audit_log.find_one({"record_id": ObjectId(record_id), "action": "update"})
        assert audit["by"] == supervisor["_id"]
        assert [(c["field"], c["after"]) for c in audit["changes"]] == [("assignee", "王志刚（handler）")]
        event = db.record_events.find_one({"record_id": ObjectId(record_id), "kind": "assign"})
        assert event["by"] == supervisor["_id"] and event["text"].endswith("→ 王志刚（handler）")
    assert db.record_events.find_one({"record_id": ObjectId(cases["recent"]), "kind": "assign"})["text"] == (
        "转派：林晓雯（agent） → 王志刚（handler）")
    assert db.records.find_one({"_id": ObjectId(cases["important"])})["version"] == 1  # not picked, not touched

    page = as_supervisor.get(response.headers["Location"]).get_data(as_text=True)
    numbers = [db.records.find_one({"_id": ObjectId(i)})["number"] for i in picked]
    assert f"已将 2 条记录转派给 王志刚（handler）：{'、'.join(numbers)}" in page
    assert counts_of(as_supervisor, page)["assignee"] == {handler: 2}
    details = as_supervisor.get(f"/admin/records/sla_probe/details/?id={cases['recent']}").get_data(as_text=True)
    assert "转派：林晓雯（agent） → 王志刚（handler）" in details


def test_bulk_reassign_reports_records_changed_meanwhile(as_supervisor, client, cases, db, admin):
    changed = client.patch(f"/api/v1/records/sla_probe/{cases['recent']}", json={"version": 1, "level": "重大"},
                           headers=admin)
    assert changed.status_code == 200
    handler = user_id(db, "handler")
    response = reassign(as_supervisor, {cases["important"]: 1, cases["recent"]: 1}, handler)
    assert response.status_code == 302

    assert db.records.find_one({"_id": ObjectId(cases["important"])})["assignee"] == ObjectId(handler)
    stale = db.records.find_one({"_id": ObjectId(cases["recent"])})
    assert stale["assignee"] == ObjectId(user_id(db, "agent")) and stale["version"] == 2
    assert db.record_events.count_documents({"record_id": stale["_id"], "kind": "assign"}) == 0
    page = as_supervisor.get("/admin/overdue/").get_data(as_text=True)
    assert "已将 1 条记录转派给 王志刚（handler）" in page
    assert f"1 条记录未转派：{stale['number']}（已被他人修改（当前版本 2），请查看最新内容后再保存）" in page


def test_bulk_reassign_needs_a_user_a_selection_and_a_csrf_token(as_supervisor, cases, db):
    response = reassign(as_supervisor, {}, user_id(db, "handler"))
    assert response.status_code == 302
    for elsewhere in ("https://evil.example/admin/overdue/", "//evil.example/admin/overdue/",
                      "/admin/records/complaint/"):
        response = reassign(as_supervisor, {}, user_id(db, "handler"), next_path=elsewhere)
        assert response.headers["Location"].endswith("/admin/overdue/"), elsewhere  # back to the page, not there
    assert "请先勾选要转派的记录" in as_supervisor.get("/admin/overdue/").get_data(as_text=True)

    response = reassign(as_supervisor, {cases["late"]: 1}, "")
    assert "请选择新负责人" in as_supervisor.get(response.headers["Location"]).get_data(as_text=True)

    disabled = db.users.find_one({"username": "approver"})
    db.users.update_one({"_id": disabled["_id"]}, {"$set": {"active": False}})
    response = reassign(as_supervisor, {cases["late"]: 1}, str(disabled["_id"]))
    assert "提交失败" in as_supervisor.get(response.headers["Location"]).get_data(as_text=True)

    response = as_supervisor.post("/admin/overdue/reassign/", data={
        "assignee": user_id(db, "handler"), "record": f"{cases['late']}:1"})
    assert response.status_code == 302
    assert "CSRF" in as_supervisor.get("/admin/overdue/").get_data(as_text=True)
    assert db.records.find_one({"_id": ObjectId(cases["late"])})["assignee"] is None
    assert db.record_events.count_documents({"kind": "assign"}) == 0


def test_reassign_is_refused_without_permission(app, client, cases, db, sign_in):
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.records.write import reassign as reassign_records

    sign_in("agent", DEMO_PASSWORD)
    response = client.post("/admin/overdue/reassign/", data={
        "csrf_token": csrf_token(client, "/admin/records/sla_probe/"), "assignee": user_id(db, "agent"),
        "record": f"{cases['late']}:1"})
    assert response.status_code == 403
    assert "您没有“改派”记录的权限" in response.get_data(as_text=True)

    with app.test_request_context():
        for username in ("agent", "handler", "approver"):
            actor = user_actor(User.objects(username=username).first())
            done, refused = reassign_records([cases["late"]], user_id(db, username), actor)
            assert (done, refused) == ([], [(cases["late"], "记录不存在")]), username  # as if it were not there
    assert db.records.find_one({"_id": ObjectId(cases["late"])})["assignee"] is None
    assert db.record_events.count_documents({"kind": "assign"}) == 0


def test_reassign_service_reports_each_record(app, cases, db):
    from kefu.core.errors import ValidationFailed
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.records.write import reassign as reassign_records

    with app.test_request_context():
        actor = user_actor(User.objects(username="manager").first())
        with pytest.raises(ValidationFailed):
            reassign_records([cases["late"]], "not-a-user", actor)
        done, refused = reassign_records([cases["important"], str(ObjectId()), "bad-id"], user_id(db, "supervisor"),
                                         actor)
    number = db.records.find_one({"_id": ObjectId(cases["important"])})["number"]
    assert done == [number]  # already the supervisor's: nothing to change, no event
    assert [reason for _id, reason in refused] == ["记录不存在", "记录不存在"]
    assert db.record_events.count_documents({"kind": "assign"}) == 0


# --- the record lists ---------------------------------------------------------------------------------------

def test_record_lists_filter_overdue_and_due_soon(as_supervisor, cases, db):
    listing = as_supervisor.get("/admin/records/sla_probe_two/").get_data(as_text=True)
    groups = filter_groups(listing)
    overdue_arg = groups["逾期"][0]["arg"]
    due_soon_arg = groups["即将到期"][0]["arg"]
    assert [o[0] for o in groups["逾期"][0]["options"]] == ["1"]

    numbers = {name: db.records.find_one({"_id": ObjectId(i)})["number"] for name, i in cases.items()}
    overdue_page = as_supervisor.get(f"/admin/records/sla_probe_two/?flt0_{overdue_arg}=1").get_data(as_text=True)
    assert numbers["late"] in overdue_page and numbers["soon"] not in overdue_page
    soon_page = as_supervisor.get(f"/admin/records/sla_probe_two/?flt0_{due_soon_arg}=1").get_data(as_text=True)
    assert numbers["soon"] in soon_page and numbers["late"] not in soon_page
    # The export link carries the same filter.
    assert re.search(rf'href="/admin/records/sla_probe_two/export/\?[^"]*flt0_{overdue_arg}=1', overdue_page)
    assert re.search(rf'href="/admin/records/sla_probe_two/export/\?[^"]*flt0_{due_soon_arg}=1', soon_page)

    listing = as_supervisor.get("/admin/records/sla_probe/").get_data(as_text=True)
    overdue_arg = filter_groups(listing)["逾期"][0]["arg"]
    overdue_page = as_supervisor.get(f"/admin/records/sla_probe/?flt0_{overdue_arg}=1").get_data(as_text=True)
    assert numbers["important"] in overdue_page and numbers["recent"] in overdue_page
    assert numbers["fresh"] not in overdue_page


def test_record_list_shows_the_nearest_clock_state(as_supervisor, cases, db):
    page = as_supervisor.get("/admin/records/sla_probe_two/").get_data(as_text=True)
    assert column_header(page, "sla") == "时限"
    cells = dict(re.findall(r'<td class="col-number">\s*(SQ-\d{6}-\d{4})\s*</td>.*?<td class="col-sla">\s*(.*?)\s*</td>', page,
                            flags=re.S))
    late, soon = (db.records.find_one({"_id": ObjectId(cases[name])})["number"] for name in ("late", "soon"))
    assert 'class="badge kefu-sla-overdue"' in cells[late] and "已逾期" in cells[late]
    assert 'class="badge kefu-sla-due_soon"' in cells[soon] and "即将到期" in cells[soon]

    by_lateness = as_supervisor.get("/admin/records/sla_probe/?sort=2").get_data(as_text=True)
    order = [db.records.find_one({"number": n})["_id"] for n in re.findall(r"(SP-\d{6}-\d{4})", by_lateness)]
    assert list(dict.fromkeys(str(i) for i in order)) == [cases["important"], cases["recent"], cases["fresh"]]


# --- indexes ------------------------------------------------------------------------------------------------

def plan_stages(plan) -> list[str]:
    """Every ``stage`` named anywhere in an explain output."""
    if isinstance(plan, dict):
        return ([plan["stage"]] if "stage" in plan else []) + [s for v in plan.values() for s in plan_stages(v)]
    if isinstance(plan, list):
        return [s for v in plan for s in plan_stages(v)]
    return []


def test_overdue_page_queries_use_indexes(app, cases, db):
    from kefu.insight import overdue
    from kefu.insight.scope import readable_filter
    from kefu.org.access import policy_for
    from kefu.org.users import User
    from kefu.records.actor import system_actor
    from kefu.records.query import RecordQuery, build_filter, sort_spec
    from kefu.records.types import get_record_type

    explaining = db.with_options(codec_options=CodecOptions(tz_aware=True,
                                                            datetime_conversion=DatetimeConversion.DATETIME_AUTO))
    now = datetime.now(timezone.utc)
    queries = {
        "overdue": overdue.SlaListQuery(),
        "overdue of a type": overdue.SlaListQuery(type="sla_probe"),
        "overdue of a department": overdue.SlaListQuery(department=ObjectId(department_id(db, "工程部"))),
        "overdue of nobody": overdue.SlaListQuery(assignee=overdue.NONE),
        "overdue by level": overdue.SlaListQuery(level="重要"),
        "due soon": overdue.SlaListQuery(kind=overdue.DUE_SOON),
        "due soon of a type": overdue.SlaListQuery(kind=overdue.DUE_SOON, type="sla_probe_two"),
        **{f"overdue as the {name}": overdue.SlaListQuery(scope=readable_filter(policy_for(
            User.objects(username=name).first()))) for name in ("agent", "handler")},
        "due soon as the agent": overdue.SlaListQuery(kind=overdue.DUE_SOON, scope=readable_filter(policy_for(
            User.objects(username="agent").first()))),
    }
    plans = {}
    for name, query in queries.items():
        mongo_filter = overdue.list_filter(query, now)
        listed = explaining.records.find(mongo_filter).sort(overdue.SORT).limit(50).explain()
        counted = explaining.command("explain", {"aggregate": "records", "pipeline": [
            {"$match": mongo_filter}, {"$group": {"_id": 1, "n": {"$sum": 1}}}], "cursor": {}},
            codec_options=explaining.codec_options)
        grouped = explaining.command("explain", {"aggregate": "records", "pipeline": overdue.counts_pipeline(
            query, now), "cursor": {}}, codec_options=explaining.codec_options)
        plans[name] = plan_stages(listed) + plan_stages(counted) + plan_stages(grouped)
    with app.test_request_context():
        actor = system_actor()
        for type_key in ("sla_probe", "sla_probe_two"):
            record_type = get_record_type(type_key)
            for flag in ("overdue", "due_soon"):  # the API's ?overdue=true&sort=sla_due and the list filters
                query = RecordQuery(sort="sla_due", **{flag: True})
                listed = explaining.records.find(build_filter(record_type, query, actor)).sort(
                    sort_spec(record_type, query.sort)).limit(50).explain()
                plans[f"{type_key} {flag}"] = plan_stages(listed)
    assert all(stages for stages in plans.values())
    assert {name: stages for name, stages in plans.items() if "COLLSCAN" in stages} == {}
    assert all("IXSCAN" in stages or "COUNT_SCAN" in stages for stages in plans.values())
    assert "SORT" not in plan_stages(explaining.records.find(overdue.list_filter(queries["overdue"], now)).sort(
        overdue.SORT).limit(50).explain()["queryPlanner"]["winningPlan"])  # pages come in index order
