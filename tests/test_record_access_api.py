"""Who reads and changes which records over the API, as the shipped roles say (issue 14, ``kefu.org.access``).

The demo people of ``kefu seed`` — admin, manager, supervisor and agent (客服中心), handler (工程部), approver (营销部,
审批职务 项目总监) — and one more agent of 物业服务中心 (``wuye``) meet four complaints:

- ``desk``: registered by the demo agent (客服中心's own);
- ``other``: registered by ``wuye`` (物业服务中心's; 客服中心 and 工程部 never see it);
- ``forwarded``: registered by ``wuye`` and forwarded to 工程部 (the handler's department);
- ``assigned``: registered by ``wuye``, assigned to the handler (the handler's own).

Every case goes through real HTTP requests with bearer tokens (or a signed-in session for ``/attachments``) and
checks the answer and what is stored: a refused write leaves the record's document exactly as it was.
"""
from __future__ import annotations

import io

import pytest
from bson import ObjectId

from tests.conftest import csrf_token, token_headers
from tests.test_attachments import png_bytes
from tests.test_records_api import CHINESE, MASKED_PHONE, PHONE, assert_error, complaint, read_csv

WUYE_PASSWORD = "wuye-2026-ok"
RECORDS = ("desk", "other", "forwarded", "assigned")
PEOPLE = ("admin", "manager", "supervisor", "agent", "handler", "approver", "wuye")
# username → the records they may read (and, for these roles, edit: read and edit share their scope).
READS = {
    "admin": set(RECORDS), "manager": set(RECORDS),
    "supervisor": {"desk"}, "agent": {"desk"},
    "handler": {"forwarded", "assigned"},
    "approver": set(),  # nothing awaits their title yet
    "wuye": {"other", "forwarded", "assigned"},
}
EXPORTS = {"admin", "manager", "supervisor", "agent", "wuye"}  # handler and approver have no export


@pytest.fixture
def world(app, client, seeded):
    """Bearer headers of everybody in ``PEOPLE`` and the ids and numbers of the four complaints."""
    from kefu.org.users import create_user

    with app.app_context():
        create_user("wuye", WUYE_PASSWORD, ["agent"], department="物业服务中心", display_name="物业客服")
    headers = {name: token_headers(client, name) for name in PEOPLE if name != "wuye"}
    headers["wuye"] = token_headers(client, "wuye", WUYE_PASSWORD)
    made = {
        "desk": (headers["agent"], {}),
        "other": (headers["wuye"], {"owner_name": "物业业主"}),
        "forwarded": (headers["wuye"], {"department": "工程部", "owner_name": "转办业主"}),
        "assigned": (headers["wuye"], {"assignee": "handler", "owner_name": "指派业主"}),
    }
    records = {}
    for name, (by, values) in made.items():
        response = client.post("/api/v1/records/complaint", json=complaint(**values), headers=by)
        assert response.status_code == 201, response.get_data(as_text=True)
        records[name] = response.get_json()
    return {"headers": headers, "records": records}


def stored(db, record_id) -> dict:
    return db.records.find_one({"_id": ObjectId(record_id)})


def event_count(db, record_id) -> int:
    return db.record_events.count_documents({"record_id": ObjectId(record_id)})


def test_the_records_are_stored_with_the_departments_the_scopes_read(world, db):
    departments = {d["name"]: d["_id"] for d in db.departments.find()}
    desk, other = stored(db, world["records"]["desk"]["id"]), stored(db, world["records"]["other"]["id"])
    assert desk["created_department"] == departments["客服中心"]
    assert other["created_department"] == departments["物业服务中心"]
    assert stored(db, world["records"]["forwarded"]["id"])["department"] == departments["工程部"]
    handler = db.users.find_one({"username": "handler"})["_id"]
    assert stored(db, world["records"]["assigned"]["id"])["assignee"] == handler


@pytest.mark.parametrize("who", PEOPLE)
def test_list_shows_exactly_the_records_in_scope(client, world, who):
    response = client.get("/api/v1/records/complaint?per_page=100", headers=world["headers"][who])

    assert response.status_code == 200, response.get_data(as_text=True)
    ids = {item["id"] for item in response.get_json()["items"]}
    assert ids == {world["records"][name]["id"] for name in READS[who]}
    assert response.get_json()["total"] == len(READS[who])


@pytest.mark.parametrize("who", PEOPLE)
def test_get_answers_404_out_of_scope_with_the_body_of_a_missing_record(client, world, who):
    missing = client.get(f"/api/v1/records/complaint/{ObjectId()}", headers=world["headers"][who])
    for name, record in world["records"].items():
        response = client.get(f"/api/v1/records/complaint/{record['id']}", headers=world["headers"][who])

        if name in READS[who]:
            assert response.status_code == 200 and response.get_json()["number"] == record["number"], name
        else:
            assert_error(response, 404, "not_found")
            assert response.get_json() == missing.get_json(), name
            assert record["number"] not in response.get_data(as_text=True)


@pytest.mark.parametrize("who", PEOPLE)
def test_patch_changes_only_what_is_in_scope_and_a_refusal_writes_nothing(client, world, db, who):
    for name, record in world["records"].items():
        before = stored(db, record["id"])

        response = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=world["headers"][who],
                                json={"version": before["version"], "content": f"{who} 补充：卫生间仍在漏水"})

        if name in READS[who]:
            assert response.status_code == 200, (name, response.get_data(as_text=True))
            after = stored(db, record["id"])
            assert after["version"] == before["version"] + 1
            assert after["data"]["content"] == f"{who} 补充：卫生间仍在漏水"
        else:
            assert_error(response, 404, "not_found")
            assert stored(db, record["id"]) == before, name


@pytest.mark.parametrize("who", PEOPLE)
def test_events_are_added_only_in_scope(client, world, db, who):
    for name, record in world["records"].items():
        before, events = stored(db, record["id"]), event_count(db, record["id"])

        response = client.post(f"/api/v1/records/complaint/{record['id']}/events", headers=world["headers"][who],
                               json={"kind": "call", "text": "电话联系业主，约定明日上门"})

        if name in READS[who]:
            assert response.status_code == 201, (name, response.get_data(as_text=True))
            assert event_count(db, record["id"]) == events + 1
        else:
            assert_error(response, 404, "not_found")
            assert event_count(db, record["id"]) == events and stored(db, record["id"]) == before, name


@pytest.mark.parametrize("who", PEOPLE)
def test_export_holds_the_records_in_scope_or_is_refused_without_export(client, world, db, who):
    response = client.get("/api/v1/records/complaint/export.csv", headers=world["headers"][who])

    if who not in EXPORTS:
        error = assert_error(response, 403, "forbidden")
        assert "导出" in error["message"] and "投诉" in error["message"]
        assert db.audit_log.count_documents({"action": "export"}) == 0
        return
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = read_csv(response)
    column = rows[0].index("编号")
    assert {row[column] for row in rows[1:]} == {world["records"][name]["number"] for name in READS[who]}
    assert db.audit_log.find_one({"action": "export"})["rows"] == len(READS[who])


def test_a_background_export_holds_only_the_records_in_scope_of_whoever_asked(app, client, world, db):
    from rq import SimpleWorker

    app.config["KEFU_EXPORT_ASYNC_ROWS"] = 2
    wuye = world["headers"]["wuye"]
    response = client.get("/api/v1/records/complaint/export.csv", headers=wuye)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["export"]["total"] == 3
    with app.app_context():  # the worker acts as the person who asked, within their scope
        SimpleWorker(["default"], connection=app.extensions["kefu_redis"]).work(burst=True, with_scheduler=False)

    status = client.get(response.get_json()["status_url"], headers=wuye).get_json()
    assert status["status"] == "done" and status["rows_done"] == 3
    rows = read_csv(client.get(status["download_url"], headers=wuye))
    column = rows[0].index("编号")
    assert {row[column] for row in rows[1:]} == {world["records"][name]["number"] for name in READS["wuye"]}
    assert db.audit_log.find_one({"action": "export"})["rows"] == 3


@pytest.mark.parametrize("who", ["handler", "approver"])
def test_a_role_without_create_cannot_register_a_record(client, world, db, who):
    count = db.records.count_documents({})

    response = client.post("/api/v1/records/complaint", json=complaint(), headers=world["headers"][who])

    error = assert_error(response, 403, "forbidden")
    assert "登记" in error["message"] and "投诉" in error["message"]
    assert db.records.count_documents({}) == count


def test_a_stale_patch_shows_the_current_record_masked_as_its_reader_may_see_it(client, world, db):
    record = world["records"]["desk"]
    stale = {"version": record["version"], "content": "第一次修改"}
    assert client.patch(f"/api/v1/records/complaint/{record['id']}", headers=world["headers"]["agent"],
                        json=stale).status_code == 200

    for who, phone in (("agent", MASKED_PHONE), ("supervisor", PHONE)):
        before = stored(db, record["id"])
        response = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=world["headers"][who],
                                json={**stale, "content": f"{who} 的过期修改"})
        assert_error(response, 409, "conflict")
        current = response.get_json()["error"]["current"]
        assert current["phone"] == phone and current["content"] == "第一次修改"
        assert stored(db, record["id"]) == before


# -- the approver: what awaits their title ------------------------------------------------------------------------

@pytest.fixture
def awaiting(client, world):
    """A complaint of 客服中心 in 待审批 for 3,000 元: the demo approver's title (项目总监) decides it."""
    supervisor = world["headers"]["supervisor"]
    record = client.post("/api/v1/records/complaint", json=complaint(), headers=supervisor).get_json()
    for values in ({"status": "处理中"}, {"status": "待审批", "compensation_amount": "3000"}):
        current = client.get(f"/api/v1/records/complaint/{record['id']}", headers=supervisor).get_json()
        response = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=supervisor,
                                json={"version": current["version"], **values})
        assert response.status_code == 200, response.get_data(as_text=True)
    return record


def test_the_approver_reads_what_awaits_their_title_and_changes_it_only_by_deciding(client, world, db, awaiting):
    approver, path = world["headers"]["approver"], f"/api/v1/records/complaint/{awaiting['id']}"
    before, events = stored(db, awaiting["id"]), event_count(db, awaiting["id"])

    assert client.get(path, headers=approver).status_code == 200
    listed = client.get("/api/v1/records/complaint", headers=approver).get_json()["items"]
    assert [item["id"] for item in listed] == [awaiting["id"]]
    edit = client.patch(path, headers=approver, json={"version": before["version"], "status": "处理中"})
    assert "修改" in assert_error(edit, 403, "forbidden")["message"]
    note = client.post(f"{path}/events", headers=approver, json={"kind": "comment", "text": "同意"})
    assert "修改" in assert_error(note, 403, "forbidden")["message"]
    rejected = client.post(f"{path}/reject", headers=approver, json={"note": "客户不接受"})
    assert_error(rejected, 403, "forbidden")
    assert stored(db, awaiting["id"]) == before and event_count(db, awaiting["id"]) == events

    decided = client.post(f"{path}/approval", headers=approver, json={"action": "approve", "comment": "同意赔付"})

    assert decided.status_code == 200, decided.get_data(as_text=True)
    assert stored(db, awaiting["id"])["approval"]["state"] == "approved"
    assert stored(db, awaiting["id"])["status"] == "处理中"
    # Decided: no longer awaiting them, the record is out of their sight again.
    assert_error(client.get(path, headers=approver), 404, "not_found")
    assert client.get("/api/v1/records/complaint", headers=approver).get_json()["items"] == []


def test_the_handler_of_another_department_does_not_see_a_record_awaiting_approval(client, world, awaiting):
    handler = world["headers"]["handler"]
    assert_error(client.get(f"/api/v1/records/complaint/{awaiting['id']}", headers=handler), 404)
    assert_error(client.get(f"/api/v1/records/complaint/{awaiting['id']}/approval", headers=handler), 404)
    response = client.post(f"/api/v1/records/complaint/{awaiting['id']}/approval", headers=handler,
                           json={"action": "approve"})
    assert_error(response, 404)


# -- the caller, references, views, notifications ----------------------------------------------------------------

@pytest.mark.parametrize("who, capabilities", [
    ("admin", {"manage_system", "view_reports", "manage_customers", "lookup_customers", "view_customer_pii",
               "archive_customers", "share_views", "manage_knowledge"}),
    ("agent", {"manage_customers", "lookup_customers"}),
    ("handler", set()),
    ("approver", set()),
])
def test_me_names_the_roles_and_what_they_grant(client, world, who, capabilities):
    body = client.get("/api/v1/me", headers=world["headers"][who]).get_json()
    assert body["roles"] == [who] and set(body["capabilities"]) == capabilities


@pytest.mark.parametrize("who, status", [("agent", 200), ("supervisor", 200), ("handler", 403), ("approver", 403)])
def test_customers_are_looked_up_by_phone_only_by_roles_that_may(client, world, who, status):
    response = client.post("/api/v1/refs/customer", headers=world["headers"][who], json={"q": "13900000000"})
    if status == 200:
        assert response.status_code == 200 and response.get_json()["items"] == []
    else:
        assert CHINESE.search(assert_error(response, status)["message"])
    projects = client.get("/api/v1/refs/project?q=云栖", headers=world["headers"][who])
    assert [item["label"] for item in projects.get_json()["items"]] == ["云栖·江南府（YQJNF）"]


def test_a_role_that_reads_no_record_of_a_type_gets_no_views_list_or_record_of_it(app, client, world, db):
    from kefu.org.roles import AccessRole, TypeGrant
    from kefu.org.users import create_user

    with app.app_context():
        AccessRole(key="qiantai", name="前台", capabilities=[],
                   grants=[TypeGrant(record_type="repair", actions=["read", "create"], scope="own")]).save()
        create_user("qiantai1", WUYE_PASSWORD, ["qiantai"], department="客服中心", display_name="前台一")
    front = token_headers(client, "qiantai1", WUYE_PASSWORD)
    desk = world["records"]["desk"]["id"]

    assert client.get("/api/v1/views/repair", headers=front).status_code == 200
    for response in (client.get("/api/v1/views/complaint", headers=front),
                     client.post("/api/v1/views/complaint", headers=front, json={"name": "我的", "filters": []}),
                     client.get("/api/v1/records/complaint", headers=front),
                     client.post("/api/v1/records/complaint", headers=front, json=complaint())):
        assert "投诉" in assert_error(response, 403, "forbidden")["message"]
    assert_error(client.get(f"/api/v1/records/complaint/{desk}", headers=front), 404)
    assert db.saved_views.count_documents({}) == 0
    assert client.get("/api/v1/me", headers=front).get_json()["capabilities"] == []


def test_notifications_are_each_users_own_and_their_links_do_not_open_records_out_of_scope(app, client, world, db):
    from kefu.notify.notifications import Notification

    other = world["records"]["other"]
    with app.app_context():
        for username in ("agent", "wuye"):
            Notification(key=f"test:{username}", user=db.users.find_one({"username": username})["_id"], kind="assigned",
                         title=f"{other['number']} 已转派", record_id=ObjectId(other["id"]), record_type="complaint",
                         record_number=other["number"]).save()
    agent, wuye = world["headers"]["agent"], world["headers"]["wuye"]

    mine = client.get("/api/v1/notifications", headers=agent).get_json()["items"]
    theirs = client.get("/api/v1/notifications", headers=wuye).get_json()["items"]

    assert [n["kind"] for n in mine] == ["assigned"] and mine[0]["id"] != theirs[0]["id"]
    # The agent may not read that record: the notification says so instead of showing it.
    assert mine[0]["withheld"] and other["number"] not in str(mine[0]) and mine[0]["record_number"] is None
    assert not theirs[0]["withheld"] and theirs[0]["title"] == f"{other['number']} 已转派"
    assert_error(client.post(f"/api/v1/notifications/{theirs[0]['id']}/read", headers=agent), 404)
    assert db.notifications.find_one({"_id": ObjectId(theirs[0]["id"])}).get("read_at") is None
    assert_error(client.get(f"/api/v1/records/complaint/{mine[0]['record_id']}", headers=agent), 404)
    assert client.get(f"/api/v1/records/complaint/{theirs[0]['record_id']}", headers=wuye).status_code == 200


# -- attachments ---------------------------------------------------------------------------------------------------

def signed_in(app, username, password):
    session = app.test_client()
    response = session.post("/login", data={"username": username, "password": password,
                                            "csrf_token": csrf_token(session, "/login")})
    assert response.status_code == 302, response.get_data(as_text=True)
    return session


def test_an_attachment_opens_for_whoever_may_read_its_record(app, client, world, db):
    from seed.demo import DEMO_PASSWORD

    record = world["records"]["desk"]
    response = client.post(f"/api/v1/records/complaint/{record['id']}/events", headers=world["headers"]["agent"],
                           data={"kind": "visit", "text": "现场照片", "files": (io.BytesIO(png_bytes()), "现场.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_data(as_text=True)
    file_id = response.get_json()["attachments"][0]
    assert db["attachments.files"].find_one({"_id": ObjectId(file_id)})["metadata"]["record_id"] == \
        ObjectId(record["id"])

    for username, status in (("agent", 200), ("supervisor", 200), ("admin", 200), ("handler", 404),
                             ("approver", 404), ("wuye", 404)):
        password = WUYE_PASSWORD if username == "wuye" else DEMO_PASSWORD
        served = signed_in(app, username, password).get(f"/attachments/{file_id}")
        assert served.status_code == status, (username, served.status_code)
        if status == 200:
            assert served.get_data() == png_bytes()
        else:
            assert png_bytes() not in served.get_data()


def test_an_upload_not_attached_yet_opens_only_for_its_uploader(app, client, world, db):
    from werkzeug.datastructures import FileStorage

    from kefu.records.attachments import store_upload
    from seed.demo import DEMO_PASSWORD

    agent_id = db.users.find_one({"username": "agent"})["_id"]
    with app.app_context():  # a save in progress: uploaded, not yet linked to its record
        info = store_upload(FileStorage(io.BytesIO(png_bytes()), filename="草稿.png"), max_bytes=1024 * 1024,
                            uploaded_by=agent_id)

    assert signed_in(app, "agent", DEMO_PASSWORD).get(f"/attachments/{info.id}").status_code == 200
    for username in ("supervisor", "admin"):
        assert signed_in(app, username, DEMO_PASSWORD).get(f"/attachments/{info.id}").status_code == 404


def test_roles_that_neither_keep_nor_look_up_customers_cannot_list_the_archive(client, seeded):
    from tests.conftest import token_headers

    for username in ("handler", "approver"):
        error = assert_error(client.get("/api/v1/refs/customer?q=", headers=token_headers(client, username)), 403)
        assert "客户档案" in error["message"]
    listed = client.get("/api/v1/refs/customer?q=", headers=token_headers(client, "agent"))
    assert listed.status_code == 200 and listed.get_json()["items"]
