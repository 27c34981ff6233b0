"""Saved views (built-in and saved, checked against the current definition) and exports of exactly what is on
screen: XLSX opened with openpyxl, CSV with the csv module; large exports in the background."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from tests.conftest import csrf_token, token_headers
from tests.test_records_api import MASKED_PHONE, PHONE, assert_error, create


def web_sign_in(client, username):
    token = csrf_token(client, "/login")
    assert client.post("/login", data={"username": username, "password": "kefu-demo",
                                       "csrf_token": token}).status_code == 302


@pytest.fixture
def cases(client, agent, supervisor, calendar, db):
    """Complaints of the agent and the supervisor, some overdue, with money, dates and a multi-line text."""
    users = {u["username"]: str(u["_id"]) for u in db.users.find({}, {"username": 1})}
    old = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    made = {
        "mine_late": create(client, agent, received_at=old, assignee=users["agent"], claim_amount="1234.5",
                            content="第一行\n第二行，含逗号, 和\"引号\""),
        "mine_new": create(client, agent, assignee=users["agent"], owner_name="=1+1"),
        "other_late": create(client, agent, received_at=old, assignee=users["supervisor"], category="销售承诺"),
        "major": create(client, agent, level="重大", claim_amount="25000"),
    }
    return made


def ids(body) -> set[str]:
    return {item["id"] for item in body["items"]}


# -- built-in views ---------------------------------------------------------------------------------------------

def test_builtin_views_list_what_their_names_say(client, agent, cases, db):
    listed = client.get("/api/v1/views/complaint", headers=agent).get_json()["items"]
    names = [v["name"] for v in listed if v["builtin"]]
    assert names == ["我的待办", "我的逾期", "本部门逾期", "24 小时内到期", "我的今日到期", "重大投诉", "本月新增",
                     "今日新增"]

    def view(key):
        response = client.get(f"/api/v1/records/complaint?view=builtin:{key}", headers=agent)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    assert ids(view("my_todo")) == {cases["mine_late"]["id"], cases["mine_new"]["id"]}
    assert ids(view("my_overdue")) == {cases["mine_late"]["id"]}
    assert ids(view("dept_overdue")) == set()  # registered without a department
    assert ids(view("major")) == {cases["major"]["id"]}
    assert ids(view("new_this_month")) >= {cases["mine_new"]["id"], cases["major"]["id"]}
    # 24 小时内到期: the next running deadline falls within a day (the fresh complaints' 3-hour forwarding).
    within = view("due_24h")
    assert cases["mine_new"]["id"] in ids(within) and cases["mine_late"]["id"] not in ids(within)
    assert within["view"]["name"] == "24 小时内到期" and within["view"]["dropped"] == []
    assert_error(client.get("/api/v1/records/complaint?view=builtin:nope", headers=agent), 404)


def test_major_view_is_offered_only_where_the_level_has_it(client, agent, seeded):
    listed = client.get("/api/v1/views/consultation", headers=agent).get_json()["items"]
    assert "重大投诉" not in [v["name"] for v in listed]



def test_major_view_filters_on_whichever_field_holds_the_level(client, agent, seeded, db):
    admin = token_headers(client, "admin")
    graded = {"key": "graded_probe", "name": "分级测试", "number_prefix": "GP",
              "fields": [{"key": "grade", "label": "分级", "type": "choice", "choices": ["一般", "重要", "重大"]},
                         {"key": "content", "label": "内容", "type": "textarea"}],
              "levels": {"field": "grade", "order": ["一般", "重要", "重大"], "rules": []}}
    response = client.post("/api/v1/types", json=graded, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    made = {grade: client.post("/api/v1/records/graded_probe", json={"grade": grade, "content": "测试"},
                               headers=admin).get_json()["id"] for grade in ("一般", "重大")}
    listed = client.get("/api/v1/views/graded_probe", headers=agent).get_json()["items"]
    major = next(v for v in listed if v["name"] == "重大投诉")
    assert ["grade", "eq", "重大"] in major["filters"]
    found = client.get("/api/v1/records/graded_probe?view=builtin:major", headers=agent).get_json()
    assert [item["id"] for item in found["items"]] == [made["重大"]] and found["view"]["dropped"] == []
    assert db.records.find_one({"_id": ObjectId(made["重大"])})["data"]["grade"] == "重大"


def test_the_top_level_view_is_named_after_the_top_level_of_a_type_without_level_rules(client, agent, seeded, db):
    """Without a ``levels:`` section the top level is the last choice of the ``level`` field (``top_level``)."""
    admin = token_headers(client, "admin")
    urgency = {"key": "urgency_probe", "name": "紧急程度测试", "number_prefix": "UP",
               "fields": [{"key": "level", "label": "紧急程度", "type": "choice", "choices": ["一般", "紧急", "特急"]},
                          {"key": "content", "label": "内容", "type": "textarea"}]}
    assert client.post("/api/v1/types", json=urgency, headers=admin).status_code == 201
    made = {level: client.post("/api/v1/records/urgency_probe", json={"level": level, "content": "测试"},
                               headers=admin).get_json()["id"] for level in ("紧急", "特急")}

    listed = client.get("/api/v1/views/urgency_probe", headers=agent).get_json()["items"]

    top = next(v for v in listed if v["id"] == "builtin:major")
    assert top["name"] == "特急投诉" and ["level", "eq", "特急"] in top["filters"]
    found = client.get("/api/v1/records/urgency_probe?view=builtin:major", headers=agent).get_json()
    assert [item["id"] for item in found["items"]] == [made["特急"]] and found["view"]["name"] == "特急投诉"
    assert db.records.find_one({"_id": ObjectId(made["特急"])})["data"]["level"] == "特急"

# -- saved views ---------------------------------------------------------------------------------------------------

def test_a_saved_view_keeps_filters_columns_and_sort_and_survives_a_removed_field(client, agent, supervisor, cases,
                                                                                  db):
    admin = token_headers(client, "admin")
    response = client.post("/api/v1/views/complaint", headers=agent, json={
        "name": "工程质量", "filters": [["category", "eq", "工程质量"], ["claim_amount", "gte", "1000"]],
        "columns": ["number", "claim_amount", "category"], "sort": "-claim_amount", "default": True})
    assert response.status_code == 201, response.get_data(as_text=True)
    view = response.get_json()
    assert view["default"] is True and view["mine"] is True and view["shared"] is False
    stored = db.saved_views.find_one({"_id": ObjectId(view["id"])})
    assert stored["filters"] == [["category", "eq", "工程质量"], ["claim_amount", "gte", "1000"]]
    listed = client.get(f"/api/v1/records/complaint?view={view['id']}", headers=agent).get_json()
    assert [i["id"] for i in listed["items"]] == [cases["major"]["id"], cases["mine_late"]["id"]]
    # Private: the supervisor cannot open it; an agent cannot share.
    assert_error(client.get(f"/api/v1/records/complaint?view={view['id']}", headers=supervisor), 404)
    assert_error(client.post("/api/v1/views/complaint", headers=agent, json={
        "name": "共享", "filters": [], "shared": True}), 403)
    assert_error(client.post("/api/v1/views/complaint", headers=agent, json={
        "name": "坏的", "filters": [["no_such_field", "eq", "1"]]}), 422)

    # The administrator takes 索赔金额 off the type: the view still opens and says what it dropped.
    definition = client.get("/api/v1/types/complaint", headers=admin).get_json()
    for field in definition["fields"]:
        if field["key"] == "claim_amount":
            field["active"] = False
    assert client.put("/api/v1/types/complaint", json=definition, headers=admin).status_code == 200
    listed = client.get(f"/api/v1/records/complaint?view={view['id']}", headers=agent).get_json()
    assert ids(listed) == {cases["mine_late"]["id"], cases["mine_new"]["id"], cases["major"]["id"]}
    dropped = " ".join(listed["view"]["dropped"])
    assert "claim_amount" in dropped and "已忽略" in dropped
    assert listed["view"]["columns"] == ["number", "category"]


def test_the_list_opens_with_the_default_view_and_shows_its_columns(app, client, agent, cases, db):
    response = client.post("/api/v1/views/complaint", headers=agent, json={
        "name": "我的简表", "filters": [["assignee", "eq", "$me"]], "columns": ["number", "owner_name", "status"],
        "default": True})
    view_id = response.get_json()["id"]
    web_sign_in(client, "agent")
    opened = client.get("/admin/records/complaint/")
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"?view={view_id}")
    page = client.get(f"/admin/records/complaint/?view={view_id}").get_data(as_text=True)
    headers = re.findall(r'<th class="column-header[^"]*">\s*(?:<a [^>]*>)?\s*([^<\s][^<]*?)\s*<', page)
    assert headers[:3] == ["编号", "业主姓名", "状态"] and "类别" not in headers
    assert cases["mine_new"]["number"] in page and cases["other_late"]["number"] not in page
    assert "视图：我的简表" in page
    # 全部记录 leaves the default for this visit.
    page = client.get("/admin/records/complaint/?view=").get_data(as_text=True)
    assert cases["other_late"]["number"] in page


def test_saving_the_current_list_as_a_view_from_the_admin(app, client, supervisor, cases, db):
    web_sign_in(client, "supervisor")
    listing = client.get("/admin/records/complaint/").get_data(as_text=True)
    state = re.search(r'name="state" value="([^"]*)"', listing).group(1)
    token = csrf_token(client, "/admin/records/complaint/")
    response = client.post("/admin/records/complaint/views/save/", data={
        "csrf_token": token, "name": "本组全部", "state": state.replace("&#34;", '"').replace("&quot;", '"'),
        "columns": ["number", "status", "category"], "shared": "1"})
    assert response.status_code == 302
    stored = db.saved_views.find_one({"name": "本组全部"})
    assert stored["shared"] is True and stored["columns"] == ["number", "status", "category"]
    other = app.test_client()  # the agent, in a browser of their own
    agent_headers = token_headers(other, "agent")
    shared = [v for v in other.get("/api/v1/views/complaint", headers=agent_headers).get_json()["items"]
              if v["name"] == "本组全部"]
    assert shared and shared[0]["shared"] and not shared[0]["mine"]


# -- exports ----------------------------------------------------------------------------------------------------

def test_xlsx_export_is_exactly_the_list_on_screen(app, client, agent, cases, db):
    from openpyxl import load_workbook

    response = client.post("/api/v1/views/complaint", headers=agent, json={
        "name": "逾期", "filters": [["sla", "overdue", True]],
        "columns": ["number", "received_at", "claim_amount", "owner_name", "phone", "content", "sla"],
        "sort": "sla_due"})
    view_id = response.get_json()["id"]
    web_sign_in(client, "agent")
    listed = client.get(f"/api/v1/records/complaint?view={view_id}", headers=agent).get_json()
    exported = client.get(f"/admin/records/complaint/export/?fmt=xlsx&view={view_id}")
    assert exported.status_code == 200, exported.get_data(as_text=True)[:500]
    disposition = exported.headers["Content-Disposition"]
    today = datetime.now(timezone.utc).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
    name = unquote(disposition.split("filename*=UTF-8''")[1])
    assert name == f"投诉_逾期_{today}.xlsx", name
    book = load_workbook(io.BytesIO(exported.get_data()))
    sheet = book["投诉"]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == ["编号", "受理时间", "索赔金额", "业主姓名", "联系电话", "投诉内容", "时限"]
    # The two received 3 days ago; the major one registered now has 30 minutes to be forwarded (004 投诉处理 1).
    assert len(rows) - 1 == listed["total"] == 2
    by_number = {row[0]: row for row in rows[1:]}
    late = by_number[cases["mine_late"]["number"]]
    assert isinstance(late[1], datetime) and late[2] == 1234.5 and late[4] == MASKED_PHONE
    assert late[5] == "第一行\n第二行，含逗号, 和\"引号\"" and late[6].startswith("已逾期")
    money = sheet.cell(row=2 + list(by_number).index(cases["mine_late"]["number"]), column=3)
    assert "¥" in money.number_format and sheet.cell(row=2, column=2).number_format == "yyyy-mm-dd hh:mm"
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:G3"
    assert sheet.column_dimensions["F"].width >= 40
    about = {row[0]: row[1] for row in book["导出说明"].iter_rows(values_only=True)}
    assert about["导出人"] == "林晓雯" and about["行数"] == 2 and "视图：逾期" in about["筛选条件"]
    assert "逾期：是" in about["筛选条件"]
    entry = db.audit_log.find_one({"action": "export"})
    assert entry["by"] == db.users.find_one({"username": "agent"})["_id"] and entry["rows"] == 2
    assert entry["view"] == view_id and entry["columns"][0] == "number" and "逾期：是" in entry["description"]


def test_csv_export_has_a_bom_keeps_line_breaks_and_neutralises_formulas(app, client, agent, cases, db):
    exported = client.get("/api/v1/records/complaint/export.csv", headers=agent)  # every field
    raw = exported.get_data()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    headers = rows[0]
    total = client.get("/api/v1/records/complaint", headers=agent).get_json()["total"]
    assert len(rows) - 1 == total == 4
    contents = {row[headers.index("投诉内容")] for row in rows[1:]}
    assert "第一行\n第二行，含逗号, 和\"引号\"" in contents
    assert "'=1+1" in {row[headers.index("业主姓名")] for row in rows[1:]}
    assert PHONE not in raw.decode("utf-8-sig")


def test_a_large_export_runs_in_the_background_and_lands_in_the_inbox(app, client, agent, supervisor, cases, db):
    from rq import SimpleWorker

    app.config["KEFU_EXPORT_ASYNC_ROWS"] = 2
    response = client.get("/api/v1/records/complaint/export.xlsx", headers=agent)
    assert response.status_code == 202, response.get_data(as_text=True)
    job = response.get_json()["export"]
    assert job["status"] == "queued" and job["total"] == 4
    with app.app_context():
        SimpleWorker(["default"], connection=app.extensions["kefu_redis"]).work(burst=True, with_scheduler=False)
    status = client.get(f"/api/v1/exports/{job['id']}", headers=agent).get_json()
    assert status["status"] == "done" and status["rows_done"] == 4 and status["percent"] == 100
    note = db.notifications.find_one({"kind": "export_ready"})
    assert note["user"] == db.users.find_one({"username": "agent"})["_id"] and "共 4 行" in note["body"]
    downloaded = client.get(status["download_url"], headers=agent)
    assert downloaded.status_code == 200 and downloaded.get_data()[:2] == b"PK"
    assert "filename*=UTF-8''" in downloaded.headers["Content-Disposition"]
    assert_error(client.get(status["download_url"], headers=supervisor), 404)  # only whoever asked

    web_sign_in(client, "agent")
    redirected = client.get("/admin/records/complaint/export/?fmt=csv")
    assert redirected.status_code == 302 and redirected.headers["Location"].endswith("/admin/exports/")
    page = client.get("/admin/exports/").get_data(as_text=True)
    assert "排队中" in page and "已完成" in page


def test_a_background_export_of_an_account_disabled_or_removed_meanwhile_fails_saying_why(app, client, agent,
                                                                                          supervisor, cases, db):
    """The worker reads with the roles of the owner as they are when it runs: nothing is written for an account
    disabled (or removed) since it asked."""
    from rq import SimpleWorker

    from kefu.org.users import User, set_active

    app.config["KEFU_EXPORT_ASYNC_ROWS"] = 2
    disabled = client.get("/api/v1/records/complaint/export.csv", headers=agent).get_json()["export"]
    removed = client.get("/api/v1/records/complaint/export.xlsx", headers=supervisor).get_json()["export"]
    with app.app_context():
        set_active(User.objects(username="agent").first(), False)
        db.users.delete_one({"username": "supervisor"})
        SimpleWorker(["default"], connection=app.extensions["kefu_redis"]).work(burst=True, with_scheduler=False)
    reason = "发起导出的账号已停用或已删除，导出已取消"
    for job in (disabled, removed):
        stored = db.export_jobs.find_one({"_id": ObjectId(job["id"])})
        assert stored["status"] == "failed" and stored["error"] == reason and stored["finished_at"] is not None
        assert stored.get("file_id") is None and stored["rows_done"] == 0
    assert db["exports.files"].count_documents({}) == 0 and db["exports.chunks"].count_documents({}) == 0
    assert db.notifications.count_documents({"kind": "export_ready"}) == 0
    with app.app_context():
        set_active(User.objects(username="agent").first(), True)
    shown = client.get(f"/api/v1/exports/{disabled['id']}", headers=token_headers(client, "agent")).get_json()
    assert shown["status"] == "failed" and shown["error"] == reason and shown["download_url"] is None


def test_background_exports_are_removed_after_seven_days(app, client, agent, cases, db):
    from rq import SimpleWorker

    from kefu.schedule.routines import remove_old_exports

    app.config["KEFU_EXPORT_ASYNC_ROWS"] = 2
    job = client.get("/api/v1/records/complaint/export.csv", headers=agent).get_json()["export"]
    with app.app_context():
        SimpleWorker(["default"], connection=app.extensions["kefu_redis"]).work(burst=True, with_scheduler=False)
    assert db["exports.files"].count_documents({}) == 1
    with app.app_context():
        assert remove_old_exports(datetime.now(timezone.utc) + timedelta(days=6)) == "exports removed: 0; imports removed: 0"
        assert remove_old_exports(datetime.now(timezone.utc) + timedelta(days=8)) == "exports removed: 1; imports removed: 0"
    assert db.export_jobs.count_documents({}) == 0 and db["exports.files"].count_documents({}) == 0
    assert db["exports.chunks"].count_documents({}) == 0
    assert client.get(f"/api/v1/exports/{job['id']}", headers=agent).status_code == 404
