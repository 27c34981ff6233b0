"""The monthly complaint analysis checked against a fixture month with known answers, its page and XLSX, and the
dashboard on the admin home. The fixture records are registered through the services at their own times
(``kefu.core.clock.at``)."""
from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import csrf_token, token_headers

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def web_sign_in(client, username):
    token = csrf_token(client, "/login")
    assert client.post("/login", data={"username": username, "password": "kefu-demo",
                                       "csrf_token": token}).status_code == 302


@pytest.fixture
def month_of_complaints(app, seeded, db):
    """September: 2 complaints; October 2026: 4 complaints, 3 forwarded (one within 3 hours), 2 closed for good
    (after 10 and 30 hours), 2 callbacks answered in October (满意; 不满意, which reopens the third closed one),
    one customer complaining twice."""
    from kefu.calendar.workcalendar import seed_calendar
    from kefu.core import clock
    from kefu.org.access import SYSTEM_POLICY
    from kefu.org.users import User
    from kefu.records.actor import Actor
    from kefu.records.store import get_record
    from kefu.records.write import create_record, update_record

    with app.test_request_context():
        seed_calendar()
        agent = User.objects(username="agent").first()
        actor = Actor(user=agent, tz=SHANGHAI, cipher=app.extensions["kefu_cipher"], access=SYSTEM_POLICY)
        projects = {p["code"]: str(p["_id"]) for p in db.projects.find()}
        made = {}

        def complaint(name, at, project, category, channel, phone, owner="张三"):
            with clock.at(local(at)):
                made[name] = create_record("complaint", {
                    "received_at": at, "channel": channel, "project": projects[project], "owner_name": owner,
                    "phone": phone, "content": "测试投诉", "category": category}, actor)

        def move(name, at, **values):
            with clock.at(local(at)):
                current = get_record(made[name]["type"], made[name]["_id"])
                made[name] = update_record(current["type"], current["_id"], values, actor,
                                           version=current["version"])

        complaint("sep1", "2026-09-10T10:00", "YQJNF", "工程质量", ["来电"], "13800001001")
        complaint("sep2", "2026-09-20T10:00", "YQJNF", "工程质量", ["来电"], "13800001002")
        complaint("oct1", "2026-10-08T09:00", "YQJNF", "工程质量", ["来电"], "13800002001", owner="李四")
        complaint("oct2", "2026-10-12T09:00", "YQJNF", "工程质量", ["来电", "网络"], "13800002001", owner="李四")
        complaint("oct3", "2026-10-15T09:00", "QTXLY", "工程质量", ["来电"], "13800002003")
        complaint("oct4", "2026-10-20T09:00", "QTXLY", "销售承诺", ["网络"], "13800002004")
        move("oct1", "2026-10-08T10:00", status="已转办")  # forwarded within 3 hours
        move("oct1", "2026-10-08T15:00", status="处理中")
        move("oct1", "2026-10-08T19:00", status="已关闭", result="已修复")  # closed after 10 hours
        move("oct3", "2026-10-15T13:00", status="已转办")  # forwarded after 4 hours: late
        move("oct3", "2026-10-16T09:00", status="处理中")
        move("oct3", "2026-10-16T15:00", status="已关闭", result="已修复")  # closed after 30 hours
        move("oct4", "2026-10-20T14:00", status="已转办")  # late too
        move("oct4", "2026-10-21T09:00", status="处理中")
        move("oct4", "2026-10-22T11:00", status="已关闭", result="已说明")
        # oct4's customer does not accept the result: it goes back to work (no longer closed).
        for name, result, at in (("oct1", "满意", "2026-10-10T10:00"), ("oct4", "不满意", "2026-10-25T10:00")):
            callback = db.records.find_one({"source.id": made[name]["_id"]})
            with clock.at(local(at)):
                update_record("callback", callback["_id"], {"result": result}, actor, version=callback["version"])
    return made


def test_the_analysis_of_a_fixture_month(app, month_of_complaints, db):
    from kefu.insight.reports import complaint_analysis
    from kefu.records.types import get_record_type

    with app.test_request_context():
        analysis = complaint_analysis(get_record_type("complaint"), "2026-10")
    assert analysis["total"] == 4 and analysis["previous"] == 2 and analysis["change"] == 1.0
    by = {d["key"]: {r["value"]: (r["count"], r["previous"]) for r in d["rows"]} for d in analysis["by"]}
    assert by["category"] == {"工程质量": (3, 2), "销售承诺": (1, 0)}
    assert by["channel"] == {"来电": (3, 2), "网络": (2, 0)}  # a complaint by phone and online counts in both
    assert by["project"]["云栖·江南府"] == (2, 2) and sum(n for n, _p in by["project"].values()) == 4
    assert sum(n for n, _p in by["level"].values()) == 4
    assert by["level"].get("重要", (0, 0))[0] >= 1  # 李四's second 工程质量 complaint (repeat customer rule)
    clocks = {c["clock"]: c for c in analysis["clocks"]}
    assert (clocks["forward"]["done"], clocks["forward"]["on_time"]) == (3, 1) and clocks["forward"]["rate"] == 0.3333
    assert analysis["handling"] == {"closed": 2, "average_hours": 20.0, "p90_hours": 30.0}
    assert analysis["satisfaction"]["answers"] == {"满意": 1, "不满意": 1} and analysis["satisfaction"]["rate"] == 0.5
    assert analysis["repeats"]["complainants"] == 1
    assert analysis["repeats"]["top"][0]["name"] == "李四" and analysis["repeats"]["top"][0]["count"] == 2
    assert analysis["top_issues"][0] == {"project": "云栖·江南府", "category": "工程质量", "count": 2}


def test_report_queries_read_the_type_created_index(app, month_of_complaints, db):
    from kefu.insight.reports import month_bounds

    start, end = month_bounds("2026-10", SHANGHAI)
    plan = db.command("explain", {"aggregate": "records", "pipeline": [
        {"$match": {"type": "complaint", "created_at": {"$gte": start, "$lt": end}}},
        {"$group": {"_id": "$data.category", "n": {"$sum": 1}}}], "cursor": {}})
    text = str(plan)
    assert "IXSCAN" in text and "COLLSCAN" not in text


def test_report_page_charts_and_xlsx(app, client, month_of_complaints, db):
    from openpyxl import load_workbook

    web_sign_in(client, "manager")
    page = client.get("/admin/reports/monthly/?month=2026-10&type=complaint").get_data(as_text=True)
    assert "2026-10 投诉月度分析报告" in page and "按需计算" in page
    assert re.search(r'data-figure="total">4<', page) and re.search(r'data-figure="satisfaction">50.0%<', page)
    assert 'data-chart="category"' in page and "vendor/echarts/echarts.min.js" in page
    assert "cdn" not in page.lower()
    workbook = client.get("/admin/reports/monthly.xlsx?month=2026-10&type=complaint")
    assert workbook.status_code == 200 and "filename*=UTF-8''" in workbook.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(workbook.get_data()))
    overview = {row[0]: row[1] for row in book["概览"].iter_rows(values_only=True)}
    assert overview["本月登记"] == 4 and overview["上月登记"] == 2 and overview["平均处理时长（小时）"] == 20.0
    categories = {row[0]: row[1] for row in book["按类别"].iter_rows(min_row=2, values_only=True)}
    assert categories == {"工程质量": 3, "销售承诺": 1}
    assert client.get("/admin/reports/monthly/?month=2026-13").status_code == 200  # falls back with a message


def repeats_table(page: str) -> list[list[str]]:
    """The rows of the report page's 重复投诉客户 table, as text."""
    body = re.search(r'<table class="table table-sm mb-0 kefu-report-repeats">.*?<tbody>(.*?)</tbody>', page, re.S)
    return [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body.group(1))]


def test_the_report_names_only_the_records_the_reader_may_read(app, client, month_of_complaints, db):
    """The supervisor reads the reports: the figures cover every record, but of a repeat complainant the page
    lists only the records the supervisor may read (their department's), and no name for one none of whose
    records they may read; the manager reads every record."""
    url = "/admin/reports/monthly/?month=2026-10&type=complaint"
    oct1, oct2 = (month_of_complaints[name] for name in ("oct1", "oct2"))
    elsewhere = {"created_by": None, "created_department": db.departments.find_one({"name": "法务部"})["_id"]}
    web_sign_in(client, "supervisor")
    assert repeats_table(client.get(url).get_data(as_text=True)) == [["李四", "2", f"{oct1['number']}、{oct2['number']}"]]

    db.records.update_one({"_id": oct2["_id"]}, {"$set": elsewhere})  # as registered by the legal department
    page = client.get(url).get_data(as_text=True)
    assert re.search(r'data-figure="total">4<', page) and re.search(r'data-figure="repeats">1<', page)
    assert repeats_table(page) == [["李四", "2", oct1["number"]]]
    db.records.update_one({"_id": oct1["_id"]}, {"$set": elsewhere})
    assert repeats_table(client.get(url).get_data(as_text=True)) == [["（不在您的查看范围内）", "2", ""]]
    sheet = xlsx_sheet(client, "/admin/reports/monthly.xlsx?month=2026-10&type=complaint", "重复投诉")
    assert sheet == [("客户", "次数", "编号"), ("（不在您的查看范围内）", 2, None)]

    manager = app.test_client()
    web_sign_in(manager, "manager")
    assert repeats_table(manager.get(url).get_data(as_text=True)) == [
        ["李四", "2", f"{oct1['number']}、{oct2['number']}"]]
    assert db.records.count_documents({"_id": {"$in": [oct1["_id"], oct2["_id"]]}, **elsewhere}) == 2


def top_issues_table(page: str) -> tuple[str, list[list[str]]]:
    """The top-issues card of the report page: its title and its table's rows (the header first), as text."""
    card = re.search(r'<div class="card-header py-1">([^<]*)</div><div class="card-body p-2">\s*'
                     r'<table class="table table-sm mb-0 kefu-report-top">(.*?)</table>', page, re.S)
    rows = [re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", card.group(2))]
    return card.group(1), rows


def xlsx_sheet(client, url: str, title: str) -> list[tuple]:
    from openpyxl import load_workbook

    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return list(load_workbook(io.BytesIO(response.get_data()))[title].iter_rows(values_only=True))


def test_the_shipped_top_issues_are_by_project_and_category_also_in_an_earlier_archive(app, client,
                                                                                       month_of_complaints, db):
    from kefu.insight.reports import archive_monthly

    web_sign_in(client, "manager")
    title, rows = top_issues_table(client.get("/admin/reports/monthly/?month=2026-10&type=complaint").get_data(
        as_text=True))
    assert title == "主要问题（项目 × 类别）"
    assert rows[:2] == [["项目", "类别", "件数"], ["云栖·江南府", "工程质量", "2"]] and len(rows) == 4
    sheet = xlsx_sheet(client, "/admin/reports/monthly.xlsx?month=2026-10&type=complaint", "主要问题")
    assert sheet[:2] == [("项目", "类别", "件数"), ("云栖·江南府", "工程质量", 2)]
    # A report archived before the top issues named their columns shows the same table.
    with app.test_request_context():
        archive_monthly("2026-10")
    db.reports.update_one({"_id": "monthly:2026-10"}, {"$unset": {"analyses.complaint.issue_fields": ""}})
    page = client.get("/admin/reports/monthly/?month=2026-10&type=complaint").get_data(as_text=True)
    assert "已归档" in page and top_issues_table(page) == (title, rows)


def test_top_issues_are_counted_by_the_types_own_issue_fields(app, client, seeded, db):
    """A type whose ``report.issue_fields`` is one choice field: the page and the XLSX show that column, labelled in
    the reader's language."""
    admin = token_headers(client, "admin")
    noise = {"key": "noise", "name": "噪音投诉", "number_prefix": "ZY", "fields": [
        {"key": "level", "label": "等级", "type": "choice", "choices": ["一般", "重大"], "default": "一般"},
        {"key": "source", "label": "噪音来源", "label_en": "Noise source", "type": "choice",
         "choices": ["施工", "设备", "邻居"]},
        {"key": "content", "label": "内容", "type": "textarea"}],
        "levels": {"field": "level", "order": ["一般", "重大"]}, "report": {"issue_fields": ["source"]}}
    assert client.post("/api/v1/types", json=noise, headers=admin).status_code == 201
    for source in ("施工", "施工", "设备"):
        assert client.post("/api/v1/records/noise", json={"source": source, "content": "夜间噪音"},
                           headers=admin).status_code == 201
    month = db.records.find_one({"type": "noise"})["created_at"].replace(tzinfo=timezone.utc).astimezone(
        SHANGHAI).strftime("%Y-%m")
    web = app.test_client()
    web_sign_in(web, "manager")

    page = web.get(f"/admin/reports/monthly/?month={month}&type=noise")

    assert page.status_code == 200
    assert top_issues_table(page.get_data(as_text=True)) == (
        "主要问题（噪音来源）", [["噪音来源", "件数"], ["施工", "2"], ["设备", "1"]])
    assert xlsx_sheet(web, f"/admin/reports/monthly.xlsx?month={month}&type=noise", "主要问题") == [
        ("噪音来源", "件数"), ("施工", 2), ("设备", 1)]
    web.get("/locale/en")
    assert top_issues_table(web.get(f"/admin/reports/monthly/?month={month}&type=noise").get_data(as_text=True)) == (
        "Top issues (Noise source)", [["Noise source", "Count"], ["施工", "2"], ["设备", "1"]])


def test_the_fifth_archives_the_report(app, client, month_of_complaints, db):
    from kefu.schedule.routines import monthly_report

    with app.test_request_context():
        monthly_report(local("2026-11-05T08:00").astimezone(timezone.utc))
    archived = db.reports.find_one({"_id": "monthly:2026-10"})
    assert archived["analyses"]["complaint"]["total"] == 4
    note = db.notifications.find_one({"kind": "monthly_report"})
    assert note["url"].endswith("/admin/reports/monthly/?month=2026-10") and "投诉：4 件" in note["body"]
    web_sign_in(client, "manager")
    assert "已归档" in client.get("/admin/reports/monthly/?month=2026-10").get_data(as_text=True)
    other = app.test_client()
    web_sign_in(other, "agent")
    assert other.get("/admin/reports/monthly/").status_code == 403


def test_dashboard_numbers_match_the_records_and_link_to_the_lists(app, client, demo_records, db):
    web_sign_in(client, "agent")
    page = client.get("/admin/").get_data(as_text=True)
    agent_id = db.users.find_one({"username": "agent"})["_id"]
    now = datetime.now(timezone.utc)
    overdue_mine = db.records.count_documents({"assignee": agent_id, "sla_due": {"$lte": now}})
    figure = re.search(r'data-figure="overdue_mine">.*?<a class="h2[^"]*" href="([^"]+)">(\d+)<.*?</div></div></div>',
                       page, re.S)
    assert int(figure.group(2)) == overdue_mine > 0
    # Every role that reads records follows up on 逾期督办: the figure opens it with the same records.
    assert f"共 {overdue_mine} 条" in client.get(figure.group(1).replace("&amp;", "&")).get_data(as_text=True)
    # Per type, the number links to that type's list in its 我的逾期 view, which lists exactly those records.
    links = re.findall(r'<a href="(/admin/records/(\w+)/\?view=builtin:my_overdue)" data-type="\w+">[^<]* (\d+)</a>',
                       figure.group(0))
    assert sum(int(n) for _u, _t, n in links) == overdue_mine
    url, type_key, n = links[0]
    agent = {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
        "username": "agent", "password": "kefu-demo"}).get_json()["token"]}
    other = app.test_client()
    listed = other.get(f"/api/v1/records/{type_key}?view=builtin:my_overdue", headers=agent).get_json()
    assert listed["total"] == int(n)
    assert f"{listed['total']} 条" in client.get(url).get_data(as_text=True) or listed["total"] <= 50
    today = now.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    new_today = re.search(r'data-figure="new_today_team">.*?class="h2[^"]*"[^>]*>(\d+)<', page, re.S)
    department = db.users.find_one({"username": "agent"})["department"]
    assert int(new_today.group(1)) == db.records.count_documents({"created_at": {"$gte": today},
                                                                  "department": department})
    assert 'data-chart="trend"' in page and 'id="kefu-dashboard-data"' in page
    assert '"created": [' in page and '"closed": [' in page
    # The supervisor's numbers open the 逾期督办 page with the same count.
    boss = app.test_client()
    web_sign_in(boss, "supervisor")
    page = boss.get("/admin/").get_data(as_text=True)
    team = re.search(r'data-figure="overdue_team">.*?<a class="h2[^"]*" href="([^"]+)">(\d+)<', page, re.S)
    listing = boss.get(team.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert f"共 {team.group(2)} 条" in listing
