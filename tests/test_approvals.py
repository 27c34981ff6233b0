"""Approval by amount (kefu.rules.approvals, the ``approvals:`` section of the shipped complaint template).

Bands (003 §3, domain §5): below 5,000 the project director approves; 5,000–20,000 the regional GM after the
finance and project directors reviewed; 20,000 and above the group committee after finance, project director
and GM reviewed. Every test drives the real app over HTTP against a real mongod and checks the response and
the stored record and timeline.
"""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from bson import ObjectId

from tests.conftest import csrf_token, token_headers
from tests.test_records_api import CHINESE, assert_error, complaint

PASSWORD = "approve-2026-ok"
# username → (roles, approval titles)
APPROVERS = {
    "xiangmu": (["approver"], ["项目总监"]),
    "quyu": (["approver"], ["区域总经理"]),
    "caiwu": (["approver"], ["财务总监"]),
    "zongjingli": (["approver"], ["总经理"]),
    "jituan": (["approver"], ["集团赔付委员会"]),
    "titled_handler": (["handler"], ["区域总经理"]),  # has the title but not the approver role
}


@pytest.fixture
def people(app, client, seeded):
    """Bearer headers of the approvers above, of the demo agent, and of the demo approver (role, no title)."""
    from kefu.org.users import create_user

    with app.app_context():
        for username, (roles, titles) in APPROVERS.items():
            create_user(username, PASSWORD, roles, department="客服中心", display_name=username,
                        approval_titles=titles)
    headers = {username: token_headers(client, username, PASSWORD) for username in APPROVERS}
    headers["agent"] = token_headers(client, "agent")
    headers["supervisor"] = token_headers(client, "supervisor")
    headers["approver"] = token_headers(client, "approver")
    return headers


def patch(client, headers, record_id, **values):
    current = client.get(f"/api/v1/records/complaint/{record_id}", headers=headers).get_json()
    return client.patch(f"/api/v1/records/complaint/{record_id}", headers=headers,
                        json={"version": current["version"], **values})


def pending_complaint(client, people, amount) -> str:
    """A complaint in 待审批 with ``amount`` as its compensation; returns its id."""
    created = client.post("/api/v1/records/complaint", json=complaint(), headers=people["supervisor"])
    assert created.status_code == 201, created.get_data(as_text=True)
    record_id = created.get_json()["id"]
    assert patch(client, people["supervisor"], record_id, status="处理中").status_code == 200
    response = patch(client, people["supervisor"], record_id, status="待审批", compensation_amount=amount)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "待审批"
    return record_id


def act(client, headers, record_id, action, comment=""):
    return client.post(f"/api/v1/records/complaint/{record_id}/approval", headers=headers,
                       json={"action": action, "comment": comment})


def stored(db, record_id) -> dict:
    return db.records.find_one({"_id": ObjectId(record_id)})


def approval_events(db, record_id) -> list[dict]:
    return list(db.record_events.find({"record_id": ObjectId(record_id), "kind": "approval"}).sort("at", 1))


BANDS = [
    # amount, band, approver, reviewers (the order they review in)
    ("4999.99", 0, "xiangmu", []),
    ("5000", 1, "quyu", ["caiwu", "xiangmu"]),
    ("19999.99", 1, "quyu", ["caiwu", "xiangmu"]),
    ("20000", 2, "jituan", ["caiwu", "xiangmu", "zongjingli"]),
]
TITLES = {username: titles[0] for username, (_roles, titles) in APPROVERS.items()}


@pytest.mark.parametrize("amount, band, approver, reviewers", BANDS)
def test_each_band_is_approved_by_its_title_after_its_reviewers(client, people, db, amount, band, approver,
                                                                  reviewers):
    record_id = pending_complaint(client, people, amount)

    request = stored(db, record_id)["approval"]
    assert request["state"] == "pending" and request["band"] == band
    assert request["amount"].to_decimal() == Decimal(amount)
    assert request["approver"] == TITLES[approver]
    assert request["reviewers"] == [TITLES[r] for r in reviewers] and request["reviews"] == []
    opened, = approval_events(db, record_id)
    assert opened["data"]["action"] == "open" and opened["data"]["band"] == band
    assert TITLES[approver] in opened["text"]

    for position, reviewer in enumerate(reviewers, start=1):
        response = act(client, people[reviewer], record_id, "review", comment="同意")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["approval"]["reviews"][-1]["title"] == TITLES[reviewer]
        assert len(stored(db, record_id)["approval"]["reviews"]) == position

    response = act(client, people[approver], record_id, "approve", comment="按方案赔付")

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["approval"]["state"] == "approved" and body["approval"]["pending_reviewers"] == []
    assert body["record"]["status"] == "处理中"
    document = stored(db, record_id)
    assert document["status"] == "处理中"
    assert document["approval"]["state"] == "approved" and document["approval"]["comment"] == "按方案赔付"
    assert document["approval"]["decided_by"] == db.users.find_one({"username": approver})["_id"]
    events = approval_events(db, record_id)
    assert [e["data"]["action"] for e in events] == ["open", *["review"] * len(reviewers), "approve"]
    decision = events[-1]
    assert Decimal(decision["data"]["amount"]) == Decimal(amount) and decision["data"]["band"] == band
    assert decision["data"]["comment"] == "按方案赔付" and "按方案赔付" in decision["text"]
    status_event = db.record_events.find_one({"record_id": ObjectId(record_id), "kind": "status"},
                                             sort=[("at", -1)])
    assert status_event["text"] == "待审批 → 处理中"


def test_the_approver_must_wait_for_every_reviewer(client, people, db):
    record_id = pending_complaint(client, people, "8000")

    early = act(client, people["quyu"], record_id, "approve")
    error = assert_error(early, 409, "conflict")
    assert "财务总监" in error["message"] and "项目总监" in error["message"]
    assert stored(db, record_id)["approval"]["state"] == "pending"
    assert stored(db, record_id)["status"] == "待审批"

    assert act(client, people["caiwu"], record_id, "review").status_code == 200
    again = act(client, people["caiwu"], record_id, "review")  # the same title twice
    assert_error(again, 403, "forbidden")
    still_early = assert_error(act(client, people["quyu"], record_id, "approve"), 409)
    assert "项目总监" in still_early["message"] and "财务总监" not in still_early["message"]

    assert act(client, people["xiangmu"], record_id, "review").status_code == 200
    assert act(client, people["quyu"], record_id, "approve").status_code == 200
    assert [r["title"] for r in stored(db, record_id)["approval"]["reviews"]] == ["财务总监", "项目总监"]


@pytest.mark.parametrize("who, action, words", [
    ("agent", "approve", ["审批“投诉”的权限", "客服专员"]),           # reads the record, no approve on the type
    ("titled_handler", "approve", ["审批“投诉”的权限", "部门处理人"]),  # the title, but not approve on the type
    ("approver", "approve", ["区域总经理", "项目总监"]),      # the demo approver: a reviewer's title, not the band's
    ("xiangmu", "approve", ["区域总经理", "项目总监"]),        # another band's title
    ("caiwu", "reject", ["区域总经理", "财务总监"]),           # a reviewer cannot decide
])
def test_without_the_permission_or_the_title_it_is_403_with_the_reason_and_nothing_is_stored(client, people, db, who,
                                                                                           action, words):
    record_id = pending_complaint(client, people, "8000")
    before = stored(db, record_id)

    response = act(client, people[who], record_id, action, comment="试图操作")

    error = assert_error(response, 403, "forbidden")
    for word in words:
        assert word in error["message"], error
    after = stored(db, record_id)
    assert after["approval"] == before["approval"] and after["status"] == "待审批"
    assert after["version"] == before["version"]
    assert len(approval_events(db, record_id)) == 1  # only the opening


def test_an_approver_whose_title_is_not_asked_does_not_see_the_record(client, people, db):
    """总经理 reviews only from 20,000: an 8,000 request is not theirs to see (404, as a missing record)."""
    record_id = pending_complaint(client, people, "8000")
    before = stored(db, record_id)

    for response in (act(client, people["zongjingli"], record_id, "review", comment="试图操作"),
                     client.get(f"/api/v1/records/complaint/{record_id}", headers=people["zongjingli"]),
                     client.get(f"/api/v1/records/complaint/{record_id}/approval", headers=people["zongjingli"])):
        assert assert_error(response, 404, "not_found")["message"] == "记录不存在"
    after = stored(db, record_id)
    assert after["approval"] == before["approval"] and after["status"] == "待审批"
    assert after["version"] == before["version"]
    assert len(approval_events(db, record_id)) == 1  # only the opening


def test_rejecting_needs_a_reason_and_sends_the_plan_back(client, people, db):
    record_id = pending_complaint(client, people, "3000")

    error = assert_error(act(client, people["xiangmu"], record_id, "reject"), 422, "validation_failed")
    assert "comment" in error["fields"]
    assert stored(db, record_id)["approval"]["state"] == "pending"

    response = act(client, people["xiangmu"], record_id, "reject", comment="赔付金额偏高，请重新协商")

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["approval"]["state"] == "rejected"
    document = stored(db, record_id)
    # The decision's own move into 处理中 (past the approval point by default) is not held back.
    assert document["status"] == "处理中" and document["approval"]["state"] == "rejected"
    decision = approval_events(db, record_id)[-1]
    assert decision["data"]["action"] == "reject" and "赔付金额偏高" in decision["text"]
    # Nothing pending any more: the record is no longer the approver's to see; its registrar's side gets 409.
    assert_error(act(client, people["xiangmu"], record_id, "approve"), 404)
    assert "没有待审批的申请" in assert_error(act(client, people["supervisor"], record_id, "approve"), 409)["message"]

    # The revised plan goes back to approval: a fresh request for the new amount.
    reopened = patch(client, people["supervisor"], record_id, status="待审批", compensation_amount="2500")
    assert reopened.status_code == 200
    request = stored(db, record_id)["approval"]
    assert request["state"] == "pending" and request["amount"].to_decimal() == Decimal("2500")


def test_entering_approval_without_an_amount_is_refused(client, people, db):
    created = client.post("/api/v1/records/complaint", json=complaint(), headers=people["supervisor"]).get_json()
    assert patch(client, people["supervisor"], created["id"], status="处理中").status_code == 200

    response = patch(client, people["supervisor"], created["id"], status="待审批")

    error = assert_error(response, 422, "validation_failed")
    assert "赔付/整改金额" in error["message"] and "compensation_amount" in error["fields"]
    document = stored(db, created["id"])
    assert document["status"] == "处理中" and "approval" not in document


def test_a_pending_request_is_left_only_by_a_decision_and_a_new_amount_reopens_it(client, people, db):
    record_id = pending_complaint(client, people, "3000")
    first = stored(db, record_id)["approval"]

    leave = patch(client, people["supervisor"], record_id, status="处理中")
    assert "status" in assert_error(leave, 422)["fields"]
    assert stored(db, record_id)["status"] == "待审批"
    clear = patch(client, people["supervisor"], record_id, compensation_amount=None)
    assert "compensation_amount" in assert_error(clear, 422)["fields"]

    raised = patch(client, people["supervisor"], record_id, compensation_amount="25000")

    assert raised.status_code == 200
    request = stored(db, record_id)["approval"]
    assert request["id"] != first["id"] and request["band"] == 2 and request["approver"] == "集团赔付委员会"
    assert [e["data"]["action"] for e in approval_events(db, record_id)] == ["open", "open"]
    assert "重新发起审批" in approval_events(db, record_id)[-1]["text"]
    assert_error(act(client, people["xiangmu"], record_id, "approve"), 403)  # the old band's title no longer fits


# -- approval cannot be skipped ---------------------------------------------------------------------------------

def unchanged(db, record_id, before: dict) -> None:
    """The refused save wrote nothing: same version, status, amount and request."""
    after = stored(db, record_id)
    for key in ("version", "status", "approval", "data", "updated_at"):
        assert after.get(key) == before.get(key), key


def in_progress_with_amount(client, people, db, amount="3000") -> str:
    """A complaint in 处理中 whose compensation was filled in there (no request: it never went to 待审批)."""
    created = client.post("/api/v1/records/complaint", json=complaint(), headers=people["supervisor"])
    record_id = created.get_json()["id"]
    assert patch(client, people["supervisor"], record_id, status="处理中").status_code == 200
    response = patch(client, people["supervisor"], record_id, compensation_amount=amount)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "approval" not in stored(db, record_id)
    return record_id


def test_a_record_with_an_amount_cannot_close_without_approval(client, people, db):
    record_id = in_progress_with_amount(client, people, db)
    before = stored(db, record_id)

    response = patch(client, people["supervisor"], record_id, status="已关闭", result="已赔付，业主认可")

    error = assert_error(response, 422, "validation_failed")
    assert set(error["fields"]) == {"status"}
    for words in ("赔付/整改金额", "3,000", "已关闭", "待审批"):
        assert words in error["fields"]["status"], error
    unchanged(db, record_id, before)
    # The shipped complaint also guards the callback step before closing (approvals.requires_approval).
    through = patch(client, people["supervisor"], record_id, status="待回访")
    assert "待回访" in assert_error(through, 422)["fields"]["status"]
    unchanged(db, record_id, before)


def test_without_an_amount_nothing_waits_for_approval(client, people, db):
    created = client.post("/api/v1/records/complaint", json=complaint(), headers=people["supervisor"]).get_json()
    assert patch(client, people["supervisor"], created["id"], status="处理中").status_code == 200

    response = patch(client, people["supervisor"], created["id"], status="已关闭", result="解释清楚，业主认可")

    assert response.status_code == 200, response.get_data(as_text=True)
    assert stored(db, created["id"])["status"] == "已关闭" and "approval" not in stored(db, created["id"])


def test_the_amount_cannot_be_raised_on_the_way_past_the_approval_point(client, people, db):
    """Approved for 3,000, then 30,000 and 已关闭 in one save: refused, the 3,000 approval does not cover it."""
    record_id = pending_complaint(client, people, "3000")
    assert act(client, people["xiangmu"], record_id, "approve").status_code == 200
    before = stored(db, record_id)

    response = patch(client, people["supervisor"], record_id, status="已关闭", result="已赔付",
                     compensation_amount="30000")

    assert "30,000" in assert_error(response, 422)["fields"]["status"]
    unchanged(db, record_id, before)


def test_an_approved_amount_passes_and_a_changed_one_must_be_approved_again(client, people, db):
    record_id = pending_complaint(client, people, "3000")
    assert act(client, people["xiangmu"], record_id, "approve").status_code == 200
    assert patch(client, people["supervisor"], record_id, status="待回访").status_code == 200
    first = stored(db, record_id)["approval"]

    changed = patch(client, people["supervisor"], record_id, compensation_amount="4000")

    assert changed.status_code == 200, changed.get_data(as_text=True)
    request = stored(db, record_id)["approval"]
    assert request["state"] == "pending" and request["id"] != first["id"]
    assert request["amount"].to_decimal() == Decimal("4000") and request["approver"] == "项目总监"
    assert "重新发起审批" in approval_events(db, record_id)[-1]["text"]
    before = stored(db, record_id)
    refused = patch(client, people["supervisor"], record_id, status="已关闭", result="已赔付")
    message = assert_error(refused, 422)["fields"]["status"]
    assert "尚未通过" in message and "项目总监" in message
    unchanged(db, record_id, before)

    # The approver decides where the record stands: it stays in 待回访, and may now close.
    decided = act(client, people["xiangmu"], record_id, "approve", comment="同意 4000")
    assert decided.status_code == 200, decided.get_data(as_text=True)
    assert stored(db, record_id)["status"] == "待回访"
    assert stored(db, record_id)["approval"]["state"] == "approved"
    closed = patch(client, people["supervisor"], record_id, status="已关闭", result="已赔付 4000 元")
    assert closed.status_code == 200, closed.get_data(as_text=True)
    assert stored(db, record_id)["status"] == "已关闭"


def test_the_statuses_past_the_approval_point_are_data(client, people, db):
    admin = token_headers(client, "admin")
    definition = client.get("/api/v1/types/complaint", headers=admin).get_json()
    definition["approvals"]["requires_approval"] = ["待回访", "已关闭"]
    assert client.put("/api/v1/types/complaint", headers=admin, json=definition).status_code == 200
    created = client.post("/api/v1/records/complaint", json=complaint(), headers=people["supervisor"]).get_json()
    forwarded = patch(client, people["supervisor"], created["id"], status="已转办", compensation_amount="800")
    assert forwarded.status_code == 200, forwarded.get_data(as_text=True)

    # 处理中 (the approved_status) is no longer held back; 待回访 now is.
    assert patch(client, people["supervisor"], created["id"], status="处理中").status_code == 200
    refused = patch(client, people["supervisor"], created["id"], status="待回访")

    assert "待回访" in assert_error(refused, 422)["fields"]["status"]
    assert stored(db, created["id"])["status"] == "处理中"


def test_get_tells_each_caller_what_they_may_do(client, people, db):
    record_id = pending_complaint(client, people, "8000")

    mine = client.get(f"/api/v1/records/complaint/{record_id}/approval", headers=people["caiwu"]).get_json()
    boss = client.get(f"/api/v1/records/complaint/{record_id}/approval", headers=people["quyu"]).get_json()

    assert mine["approval"]["pending_reviewers"] == ["财务总监", "项目总监"]
    assert mine["actions"]["review"] is None and CHINESE.search(mine["actions"]["approve"])
    assert boss["actions"]["reject"] is None and "财务总监" in boss["actions"]["approve"]


def test_unknown_action_is_422(client, people, db):
    record_id = pending_complaint(client, people, "100")
    error = assert_error(act(client, people["xiangmu"], record_id, "sign"), 422)
    assert "approve" in error["message"]


# -- the section is checked when a definition is saved ----------------------------------------------------

@pytest.mark.parametrize("change, words", [
    (lambda s: s["bands"][1].update({"from": 6000}), ["第 2 档", "5,000"]),
    (lambda s: s["bands"][2].update({"below": 90000}), ["最后一档"]),
    (lambda s: s["bands"][0].pop("approver"), ["approver"]),
    (lambda s: s.update({"on_status": "审批中"}), ["审批中", "不在流程状态中"]),
    (lambda s: s.update({"amount_field": "owner_name"}), ["owner_name", "金额"]),
    (lambda s: s.update({"amount_field": "no_such"}), ["no_such", "不存在"]),
    (lambda s: s.update({"approver": "总经理"}), ["不认识"]),
    (lambda s: s.update({"bands": []}), ["bands"]),
    (lambda s: s.update({"requires_approval": ["已结案"]}), ["requires_approval", "已结案", "不在流程状态中"]),
    (lambda s: s.update({"requires_approval": ["待审批", "已关闭"]}), ["requires_approval", "on_status"]),
])
def test_a_bad_approvals_section_is_refused_with_a_chinese_message(client, seeded, db, change, words):
    admin = token_headers(client, "admin")
    definition = client.get("/api/v1/types/complaint", headers=admin).get_json()
    version = db.record_types.find_one({"key": "complaint"})["version"]
    change(definition["approvals"])

    response = client.put("/api/v1/types/complaint", headers=admin, json=definition)

    error = assert_error(response, 422, "validation_failed")
    message = error["fields"]["approvals"]
    for word in words:
        assert word in message, message
    assert db.record_types.find_one({"key": "complaint"})["version"] == version


def test_a_sound_section_is_saved_and_used(client, seeded, people, db):
    admin = token_headers(client, "admin")
    definition = client.get("/api/v1/types/complaint", headers=admin).get_json()
    definition["approvals"]["bands"] = [{"below": 1000, "approver": "项目总监"},
                                        {"from": 1000, "approver": "总经理", "reviewers": ["财务总监"]}]

    assert client.put("/api/v1/types/complaint", headers=admin, json=definition).status_code == 200
    record_id = pending_complaint(client, people, "3000")

    request = stored(db, record_id)["approval"]
    assert request["approver"] == "总经理" and request["reviewers"] == ["财务总监"]


def test_a_section_wide_approver_by_chooses_the_approver_by_category(client, seeded, people, db):
    """003 §4.2–§4.3: ``approver_by`` for every band without its own — an 工程质量 complaint is approved by the
    区域总经理 instead of the band's 项目总监; the others keep the band's approver."""
    admin = token_headers(client, "admin")
    definition = client.get("/api/v1/types/complaint", headers=admin).get_json()
    definition["approvals"]["bands"] = [{"below": 1000, "approver": "项目总监"},
                                        {"from": 1000, "approver": "总经理", "reviewers": ["财务总监"]}]
    definition["approvals"]["approver_by"] = {"field": "category", "values": {"工程质量": "区域总经理"}}
    saved = client.put("/api/v1/types/complaint", headers=admin, json=definition)
    assert saved.status_code == 200, saved.get_data(as_text=True)
    assert db.record_types.find_one({"key": "complaint"})["approvals"]["approver_by"]["values"] == {"工程质量": "区域总经理"}

    record_id = pending_complaint(client, people, "3000")  # 工程质量
    request = stored(db, record_id)["approval"]
    assert request["approver"] == "区域总经理" and request["reviewers"] == ["财务总监"]
    reviewed = act(client, people["caiwu"], record_id, "review")
    assert reviewed.status_code == 200
    approved = act(client, people["quyu"], record_id, "approve")
    assert approved.status_code == 200 and stored(db, record_id)["approval"]["state"] == "approved"


def test_an_approver_by_naming_no_choice_is_refused(client, seeded, db):
    admin = token_headers(client, "admin")
    definition = client.get("/api/v1/types/complaint", headers=admin).get_json()
    version = db.record_types.find_one({"key": "complaint"})["version"]
    definition["approvals"]["approver_by"] = {"field": "category", "values": {"家电": "营销总监"}}

    response = client.put("/api/v1/types/complaint", headers=admin, json=definition)

    message = assert_error(response, 422, "validation_failed")["fields"]["approvals"]
    assert "“家电”不是字段“category”的可选项" in message
    assert db.record_types.find_one({"key": "complaint"})["version"] == version


# -- the admin screens --------------------------------------------------------------------------------------

def signed_in(app, username, password=PASSWORD):
    client = app.test_client()
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def test_details_page_panel_and_its_buttons(app, client, people, db):
    record_id = pending_complaint(client, people, "3000")
    details = f"/admin/records/complaint/details/?id={record_id}"
    approver = signed_in(app, "xiangmu")
    outsider = signed_in(app, "agent", _demo_password())  # reads the department's records, may not approve

    page = approver.get(details).get_data(as_text=True)
    assert "kefu-approval" in page and "项目总监" in page and 'value="approve"' in page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.split("kefu-approval", 1)[1]).group(1)

    refused = outsider.post(f"/admin/records/complaint/approval/?id={record_id}",
                            data={"csrf_token": csrf_token(outsider, details), "action": "approve"})
    assert refused.status_code == 403
    assert "审批“投诉”的权限" in refused.get_data(as_text=True) and "客服专员" in refused.get_data(as_text=True)
    assert stored(db, record_id)["approval"]["state"] == "pending"
    assert signed_in(app, "caiwu").get(details).status_code == 404  # not a title this request asks

    response = approver.post(f"/admin/records/complaint/approval/?id={record_id}",
                             data={"csrf_token": token, "action": "approve", "comment": "同意",
                                   "request_id": stored(db, record_id)["approval"]["id"]})

    assert response.status_code == 302
    document = stored(db, record_id)
    assert document["approval"]["state"] == "approved" and document["status"] == "处理中"
    assert "已通过" in approver.get(response.headers["Location"]).get_data(as_text=True)


def _demo_password():
    from seed.demo import DEMO_PASSWORD

    return DEMO_PASSWORD


def test_admin_gives_users_their_approval_titles(app, seeded, db):
    admin = signed_in(app, "admin", _demo_password())
    user = db.users.find_one({"username": "approver"})
    edit = f"/admin/users/edit/?id={user['_id']}"
    page = admin.get(edit).get_data(as_text=True)
    assert "审批职务" in page

    response = admin.post(edit, data={
        "csrf_token": csrf_token(admin, edit), "username": "approver", "display_name": user["display_name"],
        "roles": ["approver"], "approval_titles": "财务总监、 项目总监，财务总监", "department": str(user["department"]),
        "email": "", "phone": "", "locale": "", "active": "y",
    })

    assert response.status_code == 302, response.get_data(as_text=True)
    assert user["approval_titles"] == ["项目总监"]  # the demo approver's, from the seed
    assert db.users.find_one({"_id": user["_id"]})["approval_titles"] == ["财务总监", "项目总监"]
    assert "财务总监、项目总监" in admin.get(edit).get_data(as_text=True)


def test_an_amount_given_after_the_approval_point_must_be_approved_first(client, people, db):
    """Closed without an amount, then given one: refused at the amount, nothing stored (no way around approval)."""
    created = client.post("/api/v1/records/complaint", json=complaint(), headers=people["supervisor"]).get_json()
    assert patch(client, people["supervisor"], created["id"], status="处理中").status_code == 200
    assert patch(client, people["supervisor"], created["id"], status="已关闭", result="解释清楚").status_code == 200
    before = stored(db, created["id"])

    response = patch(client, people["supervisor"], created["id"], compensation_amount="90000")

    error = assert_error(response, 422, "validation_failed")
    assert "已关闭" in error["fields"]["compensation_amount"] and "待审批" in error["fields"]["compensation_amount"]
    unchanged(db, created["id"], before)
