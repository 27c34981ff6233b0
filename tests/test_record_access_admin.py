"""The admin screens honour each demo user's roles (issue 14): the record list, details and edit forms, the buttons
they offer, personal data in every place, 逾期督办 and its counts, the dashboard and the inbox.

The scene: four complaints received 100 hours ago (overdue), registered through the services — one by the demo
agent at the customer-service centre, three by a manager of 营销部 (one forwarded to 工程部, one kept in
营销部, one kept there and waiting on the approval title 项目总监 of the demo approver). Who may read which follows
from the shipped roles: admin and manager every record, supervisor and agent their department's (客服中心), the
handler 工程部's, the approver what waits on their title.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from kefu.org.roles import SHIPPED_ROLES, Scope
from tests.conftest import csrf_token
from tests.test_records import AdminForm, signed_in_client
from tests.test_records_api import MASKED_PHONE, PHONE, SHANGHAI, complaint

SEES = {
    "admin": {"centre", "engineering", "marketing", "pending"},
    "manager": {"centre", "engineering", "marketing", "pending"},
    "supervisor": {"centre"},
    "agent": {"centre"},
    "handler": {"engineering"},
    "approver": {"pending"},
}
LIST = "/admin/records/complaint/"


@pytest.fixture
def scene(app, seeded, db, make_user):
    """``{name: stored document}`` of the four complaints (see the module's docstring)."""
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.records.write import create_record, update_record

    marketing = make_user("marketing", role="manager", department="营销部")
    received = (datetime.now(timezone.utc) - timedelta(hours=100)).astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")
    with app.test_request_context():
        agent = user_actor(User.objects(username="agent").first())
        manager = user_actor(marketing)
        made = {
            "centre": create_record("complaint", complaint(received_at=received), agent),
            "engineering": create_record("complaint", complaint(received_at=received, department="工程部"), manager),
            "marketing": create_record("complaint", complaint(received_at=received, department="营销部"), manager),
        }
        pending = create_record("complaint", complaint(department="营销部", category="工程质量"), manager)
        pending = update_record("complaint", pending["_id"], {"status": "处理中"}, manager, version=pending["version"])
        made["pending"] = update_record("complaint", pending["_id"], {
            "status": "待审批", "compensation_amount": "1000"}, manager, version=pending["version"])
    stored = {name: db.records.find_one({"_id": document["_id"]}) for name, document in made.items()}
    assert stored["pending"]["approval"]["state"] == "pending" and stored["pending"]["approval"]["approver"] == "项目总监"
    assert stored["centre"]["created_department"] == db.users.find_one({"username": "agent"})["department"]
    return stored


def problems(response) -> list[str]:
    """The messages and field errors of a page that did not save (for a failing assertion to show)."""
    page = response.get_data(as_text=True)
    return re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>|class="help-block[^"]*"[^>]*>(.*?)<', page, re.S)


def shows(page: str, number: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(number)}(?![\w-])", page) is not None


def scope_of(db, username: str) -> dict:
    """The shipped rule for what ``username`` may read, written out (not the code under test): their role's scope
    over assignee / registered by / department / registering department."""
    user = db.users.find_one({"username": username})
    grant = next(role for role in SHIPPED_ROLES if role["key"] == user["roles"][0])["grants"][0]
    if grant["scope"] == Scope.ALL.value:
        return {}
    mine = [{"assignee": user["_id"]}, {"created_by": user["_id"]}]
    if grant["scope"] == Scope.DEPARTMENT.value:
        mine += [{"department": user["department"]}, {"created_department": user["department"]}]
    return {"$or": mine}


# --- the record screens -------------------------------------------------------------------------------------

def test_each_role_lists_reads_and_edits_only_its_records(app, scene, db):
    for username, seen in SEES.items():
        client = signed_in_client(app, username)
        listing = client.get(LIST)
        assert listing.status_code == 200, username
        page = listing.get_data(as_text=True)
        for name, record in scene.items():
            readable = name in seen
            assert shows(page, record["number"]) == readable, (username, name)
            details = client.get(f"{LIST}details/?id={record['_id']}")
            assert details.status_code == (200 if readable else 404), (username, name)
            if not readable:
                assert client.get(f"{LIST}edit/?id={record['_id']}").status_code == 404, (username, name)
        # A record that does not exist answers as one out of scope does.
        assert client.get(f"{LIST}details/?id={ObjectId()}").status_code == 404
        assert client.get(f"{LIST}edit/?id=not-an-id").status_code == 404


def test_a_refused_edit_leaves_the_stored_record_unchanged(app, scene, db):
    agent = signed_in_client(app, "agent")
    form = AdminForm(agent.get(f"{LIST}edit/?id={scene['centre']['_id']}").get_data(as_text=True)).fields
    handler = signed_in_client(app, "handler")  # not in 工程部's scope: as if it did not exist
    response = handler.post(f"{LIST}edit/?id={scene['centre']['_id']}", data={
        **form, "content": "被改掉了", "csrf_token": csrf_token(handler, LIST)})
    assert response.status_code == 404

    approver = signed_in_client(app, "approver")  # reads what waits on them, changes it only by deciding
    pending = scene["pending"]
    page = approver.get(f"{LIST}details/?id={pending['_id']}").get_data(as_text=True)
    assert pending["number"] in page
    refused = approver.get(f"{LIST}edit/?id={pending['_id']}")
    assert refused.status_code == 403 and "您没有“修改”此记录的权限" in refused.get_data(as_text=True)
    response = approver.post(f"{LIST}edit/?id={pending['_id']}", data={
        "version": "3", "content": "被改掉了", "csrf_token": csrf_token(approver, "/admin/")})
    assert response.status_code == 403
    response = approver.post(f"{LIST}event/?id={pending['_id']}", data={
        "kind": "comment", "text": "我来补充", "csrf_token": csrf_token(approver, "/admin/")})
    assert response.status_code == 403
    for name in ("centre", "pending"):
        stored = db.records.find_one({"_id": scene[name]["_id"]})
        assert stored["version"] == scene[name]["version"] and stored["data"]["content"] == "卫生间漏水严重", name
    assert db.record_events.count_documents({"record_id": pending["_id"], "kind": "comment"}) == 0

    response = agent.post(f"{LIST}edit/?id={scene['centre']['_id']}", data={**form, "content": "卫生间漏水，已报修"})
    assert response.status_code == 302, problems(response)
    stored = db.records.find_one({"_id": scene["centre"]["_id"]})
    assert stored["version"] == 2 and stored["data"]["content"] == "卫生间漏水，已报修"


def test_the_screens_offer_only_what_the_user_may_do(app, scene, db):
    approver = signed_in_client(app, "approver")
    page = approver.get(LIST).get_data(as_text=True)
    assert f'href="{LIST}new/' not in page and f"{LIST}edit/" not in page and f"{LIST}export/" not in page
    details = approver.get(f"{LIST}details/?id={scene['pending']['_id']}").get_data(as_text=True)
    assert f"{LIST}edit/" not in details and f"{LIST}event/" not in details and f'href="{LIST}new/' not in details
    refused = approver.get(f"{LIST}new/")
    assert refused.status_code == 403 and "您没有“登记”“投诉”的权限" in refused.get_data(as_text=True)
    refused = approver.get(f"{LIST}export/?fmt=csv")
    assert refused.status_code == 403 and "您没有“导出”“投诉”的权限" in refused.get_data(as_text=True)

    handler = signed_in_client(app, "handler")  # reads and edits 工程部's records; registers and exports nothing
    page = handler.get(LIST).get_data(as_text=True)
    assert f'href="{LIST}new/' not in page and f"{LIST}export/" not in page
    assert f"{LIST}edit/?id={scene['engineering']['_id']}" in page
    assert handler.get(f"{LIST}export/?fmt=csv").status_code == 403
    details = handler.get(f"{LIST}details/?id={scene['engineering']['_id']}").get_data(as_text=True)
    assert f"{LIST}edit/?id={scene['engineering']['_id']}" in details and f"{LIST}event/" in details

    agent = signed_in_client(app, "agent")
    page = agent.get(LIST).get_data(as_text=True)
    assert f'href="{LIST}new/' in page and f"{LIST}export/?fmt=csv" in page
    assert f"{LIST}edit/?id={scene['centre']['_id']}" in page
    export = agent.get(f"{LIST}export/?fmt=csv")
    assert export.status_code == 200
    exported = export.get_data(as_text=True)
    assert scene["centre"]["number"] in exported and scene["marketing"]["number"] not in exported


def test_only_a_role_that_reassigns_may_change_the_assignee(app, scene, db):
    handler_id = db.users.find_one({"username": "handler"})["_id"]
    agent = signed_in_client(app, "agent")
    page = agent.get(f"{LIST}edit/?id={scene['centre']['_id']}").get_data(as_text=True)
    assignee = re.search(r'<input[^>]*name="assignee"[^>]*>', page).group(0)
    assert "disabled" in assignee
    form = AdminForm(page).fields
    response = agent.post(f"{LIST}edit/?id={scene['centre']['_id']}", data={
        **form, "assignee": str(handler_id), "content": "已联系业主"})  # a browser would not send it: ignored
    assert response.status_code == 302
    stored = db.records.find_one({"_id": scene["centre"]["_id"]})
    assert stored["assignee"] is None and stored["data"]["content"] == "已联系业主" and stored["version"] == 2

    supervisor = signed_in_client(app, "supervisor")
    page = supervisor.get(f"{LIST}edit/?id={scene['centre']['_id']}").get_data(as_text=True)
    assert "disabled" not in re.search(r'<input[^>]*name="assignee"[^>]*>', page).group(0)
    response = supervisor.post(f"{LIST}edit/?id={scene['centre']['_id']}", data={
        **AdminForm(page).fields, "assignee": str(handler_id)})
    assert response.status_code == 302
    assert db.records.find_one({"_id": scene["centre"]["_id"]})["assignee"] == handler_id


def saved_view_with_phone(client) -> str:
    """The list in a view of the user's own showing the number and the phone; its page."""
    response = client.post(f"{LIST}views/save/", data={
        "csrf_token": csrf_token(client, LIST), "name": "带电话", "state": '{"filters": []}',
        "columns": ["number", "phone"], "back": LIST})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client.get(response.headers["Location"]).get_data(as_text=True)


def test_personal_data_is_masked_for_the_agent_and_plain_for_the_supervisor(app, scene, db):
    record = scene["centre"]
    agent, supervisor = signed_in_client(app, "agent"), signed_in_client(app, "supervisor")
    for path in (f"{LIST}details/?id={record['_id']}", f"{LIST}edit/?id={record['_id']}"):
        masked, plain = agent.get(path).get_data(as_text=True), supervisor.get(path).get_data(as_text=True)
        assert MASKED_PHONE in masked and PHONE not in masked, path
        assert PHONE in plain, path
    listing = saved_view_with_phone(agent)
    assert record["number"] in listing and MASKED_PHONE in listing and PHONE not in listing
    assert PHONE in saved_view_with_phone(supervisor)
    # The agent's edit form: the phone input is empty (empty keeps the stored number).
    form = AdminForm(agent.get(f"{LIST}edit/?id={record['_id']}").get_data(as_text=True)).fields
    assert form["phone"] == ""
    assert agent.post(f"{LIST}edit/?id={record['_id']}", data={**form, "demand": "尽快维修"}).status_code == 302
    assert PHONE in supervisor.get(f"{LIST}details/?id={record['_id']}").get_data(as_text=True)
    assert db.records.find_one({"_id": record["_id"]})["version"] == 2


def test_a_conflict_shows_the_current_values_masked(app, scene, db):
    record = scene["centre"]
    agent, supervisor = signed_in_client(app, "agent"), signed_in_client(app, "supervisor")
    stale = AdminForm(agent.get(f"{LIST}edit/?id={record['_id']}").get_data(as_text=True)).fields
    fresh = AdminForm(supervisor.get(f"{LIST}edit/?id={record['_id']}").get_data(as_text=True)).fields
    assert supervisor.post(f"{LIST}edit/?id={record['_id']}", data={**fresh, "phone": "13912345678"}).status_code == 302
    response = agent.post(f"{LIST}edit/?id={record['_id']}", data={**stale, "phone": "13700001111"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "已被他人修改，未保存" in page
    assert "139****5678" in page and "13912345678" not in page and PHONE not in page
    assert db.records.find_one({"_id": record["_id"]})["version"] == 2


# --- 逾期督办, the dashboard, the inbox -------------------------------------------------------------------------

def test_overdue_page_counts_what_each_role_may_read(app, scene, db):
    now = datetime.now(timezone.utc)
    seen = {}
    for username in ("admin", "supervisor", "agent", "handler"):
        client = signed_in_client(app, username)
        page = client.get("/admin/overdue/").get_data(as_text=True)
        expected = {str(document["_id"]) for document in db.records.find(
            {"sla_due": {"$lte": now}, **scope_of(db, username)}, {"_id": 1})}
        listed = set(re.findall(r'<tr data-id="([0-9a-f]{24})">', page))
        assert listed == expected and f"共 {len(expected)} 条" in page, username
        counts_url = re.search(r'data-kefu-load="([^"]+)"', page).group(1).replace("&amp;", "&")
        fragment = client.get(counts_url).get_data(as_text=True)
        by_type = re.search(r'data-group="type">(.*?)</ul>', fragment, re.S).group(1)
        assert sum(int(n) for n in re.findall(r'data-count="(\d+)"', by_type)) == len(expected), username
        assert ('name="record"' in page) == (username in ("admin", "supervisor")), username  # reassign
        seen[username] = listed
    ids = {name: str(record["_id"]) for name, record in scene.items()}
    assert seen["agent"] == seen["supervisor"] == {ids["centre"]}
    assert seen["handler"] == {ids["engineering"]}
    assert {ids["centre"], ids["engineering"], ids["marketing"]} <= seen["admin"]
    refused = signed_in_client(app, "approver").get("/admin/overdue/")
    assert refused.status_code == 403


def overdue_departments(page: str) -> dict[str, int]:
    items = re.search(r'<ul class="list-unstyled mb-0 small kefu-overdue-departments">(.*?)</ul>', page, re.S).group(1)
    return {re.sub(r"<[^>]+>", "", name).strip(): int(n)
            for name, n in re.findall(r"<li>(.*?) <span class=\"badge badge-danger\">(\d+)</span></li>", items)}


def test_dashboard_counts_what_the_user_may_read_and_everything_for_reports(app, scene, db):
    now = datetime.now(timezone.utc)
    agent_page = signed_in_client(app, "agent").get("/admin/").get_data(as_text=True)
    assert overdue_departments(agent_page) == {"未指定部门": 1}  # only the centre's own complaint
    assert 'href="/admin/overdue/?department=none"' in agent_page
    handler_page = signed_in_client(app, "handler").get("/admin/").get_data(as_text=True)
    assert overdue_departments(handler_page) == {"工程部": 1}
    figure = re.search(r'data-figure="overdue_team">.*?>(\d+)</a>', handler_page, re.S)
    assert int(figure.group(1)) == db.records.count_documents(
        {"sla_due": {"$lte": now}, "department": db.departments.find_one({"name": "工程部"})["_id"],
         **scope_of(db, "handler")}) == 1
    # The supervisor reads the reports: the figures cover every record.
    supervisor_page = signed_in_client(app, "supervisor").get("/admin/").get_data(as_text=True)
    assert overdue_departments(supervisor_page) == {"未指定部门": 1, "工程部": 1, "营销部": 1}


def test_inbox_and_tasks_withhold_records_out_of_scope(app, scene, db):
    from kefu.notify.notifications import Alert, Outbox, add_tasks, task_day

    agent_id = db.users.find_one({"username": "agent"})["_id"]
    with app.test_request_context():
        outbox = Outbox(datetime.now(timezone.utc))
        for name in ("centre", "marketing"):
            record = scene[name]
            outbox.add(Alert(key=f"test:{name}", kind="overdue", subject=f"【已逾期】投诉 {record['number']}",
                             body=f"业主张三：{name} 的投诉内容", recipients=[agent_id], webhook=None,
                             record={"id": record["_id"], "type": "complaint", "number": record["number"]}))
        assert outbox.flush() == 2
        today = datetime.now(SHANGHAI).date()
        add_tasks([{"key": f"task:{name}", "user": agent_id, "kind": "follow_up", "title": f"跟进 {name} 的投诉",
                    "record_id": scene[name]["_id"], "record_type": "complaint",
                    "record_number": scene[name]["number"], "day": task_day(today, SHANGHAI)}
                   for name in ("centre", "marketing")])
    agent = signed_in_client(app, "agent")
    page = agent.get("/admin/inbox/").get_data(as_text=True)
    assert "centre 的投诉内容" in page and scene["centre"]["number"] in page
    assert "marketing 的投诉内容" not in page and scene["marketing"]["number"] not in page
    assert "此消息所关联的记录不在您的查看范围内" in page
    hidden = db.notifications.find_one({"record_id": scene["marketing"]["_id"]})
    response = agent.post(f"/admin/inbox/open/{hidden['_id']}/",
                          data={"csrf_token": csrf_token(agent, "/admin/inbox/")})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/inbox/")
    assert db.notifications.find_one({"_id": hidden["_id"]})["read_at"] is not None
    tasks = agent.get("/admin/tasks/").get_data(as_text=True)
    assert "跟进 centre 的投诉" in tasks and scene["centre"]["number"] in tasks
    assert "跟进 marketing 的投诉" not in tasks and scene["marketing"]["number"] not in tasks
    assert "此任务所关联的记录不在您的查看范围内" in tasks
