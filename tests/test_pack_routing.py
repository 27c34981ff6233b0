"""Routing and approvers as data (issue 18): the ``routing:`` section (kefu/rules/routing.py) in the commercial and
renovation packs, approvers by category (``approver_by``, kefu/rules/approvers.py), the GM's notice and the 重要
sub-steps of the developer pack. Each test names its clause; records go through the API on the seeded calendar,
and the response and the stored document are asserted.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from bson import ObjectId

from tests.conftest import token_headers
from tests.test_pack_commercial import (  # noqa: F401  (ready: a fixture)
    ago, change, clock, complaint as mall_complaint, new, ready, stored,
)
from tests.test_records_api import assert_error, complaint

PASSWORD = "route-2026-ok"


def department_id(db, name):
    return db.departments.find_one({"name": name})["_id"]


def events(db, record_id, kind="assign") -> list[str]:
    return [e.get("text") or "" for e in db.record_events.find({"record_id": ObjectId(record_id), "kind": kind})
            .sort("at", 1)]


# --- 004 投诉处理: goods and staff complaints → 营运部, property ones → 物业管理部 ----------------------------

def test_004_complaint_goods_and_staff_to_operations_property_to_property_management(client, agent, ready, db):
    """004 投诉处理 (《相关方投诉处理表》转相关部门): 商品 and 营业员 complaints go to 营运部, 物业管理 ones to
    物业管理部 — on registration and when the category changes; a person's reassignment in between is kept."""
    record = new(client, agent, "mall_complaint", **mall_complaint(category="商品"))
    document = stored(db, record["id"])
    assert document["department"] == department_id(db, "营运部")
    assert record["department"] in ("营运部", str(department_id(db, "营运部")))
    assert any("按规则转派" in text and "营运部" in text for text in events(db, record["id"]))

    change(client, agent, "mall_complaint", record["id"], department="客服中心")  # a person reassigns it
    change(client, agent, "mall_complaint", record["id"], content="营业员态度差，商品也有问题")
    assert stored(db, record["id"])["department"] == department_id(db, "客服中心")  # kept: category unchanged

    moved = change(client, agent, "mall_complaint", record["id"], category="物业管理")
    assert stored(db, record["id"])["department"] == department_id(db, "物业管理部")
    assert moved["department"] in ("物业管理部", str(department_id(db, "物业管理部")))

    staff = new(client, agent, "mall_complaint", **mall_complaint(category="营业员"))
    assert stored(db, staff["id"])["department"] == department_id(db, "营运部")
    other = new(client, agent, "mall_complaint", **mall_complaint(category="其他"))
    assert stored(db, other["id"]).get("department") is None and not events(db, other["id"])


# --- 002 重大客诉: handled by 客服经理 ---------------------------------------------------------------------

def test_002_major_complaint_is_handled_by_the_customer_service_manager(app, client, agent, ready, db):
    """002 重大客诉处理程序: a case escalated to 重大 is handed to 客服经理 — the record's 负责人 becomes the one user
    holding the approval title 客服经理; with two such users it is left as it is and the timeline says why."""
    record = new(client, agent, "reno_complaint", customer_name="张三", phone="13612345678", content="墙面开裂")
    assert stored(db, record["id"]).get("assignee") is None
    change(client, agent, "reno_complaint", record["id"], level="重大")
    manager = db.users.find_one({"username": "manager"})
    assert stored(db, record["id"])["assignee"] == manager["_id"]
    assert any("按规则转派" in text and "负责人 → 周海燕" in text and "客服经理" in text
               for text in events(db, record["id"]))

    from kefu.org.users import create_user
    with app.app_context():
        create_user("second_manager", PASSWORD, ["manager"], department="客服中心", display_name="第二经理",
                    approval_titles=["客服经理"])
    other = new(client, agent, "reno_complaint", customer_name="李四", phone="13612345679", content="地砖空鼓",
                level="重大")
    assert stored(db, other["id"]).get("assignee") is None
    why = events(db, other["id"])
    assert any("按规则转派未执行" in text and "2 位用户" in text and "客服经理" in text for text in why), why


# --- 003 §4.2–§4.3: approvers by category, the GM's notice ----------------------------------------------

APPROVERS = {"yingxiao": ["营销总监"], "yanfa": ["研发总监"], "xiangmu": ["项目总监"]}


@pytest.fixture
def titled(app, client, ready):
    from kefu.org.users import create_user

    with app.app_context():
        for username, titles in APPROVERS.items():
            create_user(username, PASSWORD, ["approver"], department="客服中心", display_name=username,
                        approval_titles=titles)
    return {username: token_headers(client, username, PASSWORD) for username in APPROVERS}


def to_approval(client, headers, category, amount) -> str:
    record = new(client, headers, "complaint", **complaint(category=category))
    change(client, headers, "complaint", record["id"], status="处理中")
    change(client, headers, "complaint", record["id"], status="待审批", compensation_amount=amount)
    return record["id"]


def test_003_4_2_sales_compensation_approved_by_the_marketing_director(client, supervisor, titled, db):
    """003 §4.2: a sales complaint's compensation below 5,000 is approved by the 营销总监 (not the 项目总监); 5,000 and
    more is reviewed by the 营销总监 too. 003 §4.3: a design one by the 研发总监 after the 项目研发经理 and 项目总监."""
    sales = to_approval(client, supervisor, "销售承诺", "3000")
    request = stored(db, sales)["approval"]
    assert (request["approver"], request["reviewers"]) == ("营销总监", [])
    refused = client.post(f"/api/v1/records/complaint/{sales}/approval", headers=titled["xiangmu"],
                          json={"action": "approve"})
    assert refused.status_code == 404  # an approver reads the records awaiting their title: not the 项目总监's
    assert stored(db, sales)["approval"]["state"] == "pending"
    approved = client.post(f"/api/v1/records/complaint/{sales}/approval", headers=titled["yingxiao"],
                           json={"action": "approve"})
    assert approved.status_code == 200 and approved.get_json()["approval"]["state"] == "approved"
    assert stored(db, sales)["approval"]["state"] == "approved"

    design = to_approval(client, supervisor, "规划设计", "3000")
    shown = client.get(f"/api/v1/records/complaint/{design}/approval", headers=titled["yanfa"]).get_json()
    assert shown["approval"]["approver"] == "研发总监"
    assert shown["approval"]["pending_reviewers"] == ["项目研发经理", "项目总监"]
    engineering = to_approval(client, supervisor, "工程质量", "3000")
    assert stored(db, engineering)["approval"]["approver"] == "项目总监"  # the band as written

    larger = to_approval(client, supervisor, "销售承诺", "8000")
    request = stored(db, larger)["approval"]
    assert (request["approver"], request["reviewers"]) == ("区域总经理", ["营销总监", "财务总监", "项目总监"])
    change(client, supervisor, "complaint", larger, category="规划设计")  # pending: the new category's titles
    request = stored(db, larger)["approval"]
    assert request["state"] == "pending" and request["reviewers"] == ["研发总监", "财务总监", "项目总监"]


def test_003_4_2_gm_notifies_the_group_and_brand_department_of_a_major_case(client, agent, ready, db):
    """003 §3.4, §4.2–§4.3 (重大投诉, 2 万元以上): the general manager notifies the group's GM and 战略及品牌部 — a
    tracked item that starts with the case becoming 重大 (a claim of 20,000 raises it), tells 总经理 at once and is
    done when the notice time (通报时间) is entered."""
    record = new(client, agent, "complaint", **complaint(claim_amount="20000"))
    document = stored(db, record["id"])
    assert document["data"]["level"] == "重大"
    notice = clock(db, record["id"], "group_notice")
    assert notice["window"] == {"working_days": 1} and notice["state"] != "met"
    assert document["sla_next"] <= notice["started_at"]  # due for the sweep at once: 总经理 is told
    change(client, agent, "complaint", record["id"], group_notified_at=ago(minutes=1))
    assert clock(db, record["id"], "group_notice")["state"] == "met"
    ordinary = new(client, agent, "complaint", **complaint())
    assert "group_notice" not in stored(db, ordinary["id"]).get("sla", {})


# --- 003 §4.1.3: the 重要 sub-steps ----------------------------------------------------------------------

def test_003_4_1_3_important_register_and_situation_each_one_working_day_from_the_last(client, agent, ready, db):
    """003 §4.1.3 (重要投诉): registered within 1 working day of the moment the level became 重要, the situation
    learned within 1 more working day of the registration — not counted from intake."""
    record = new(client, agent, "complaint", **complaint(received_at=ago(days=20)))
    assert "important_register" not in record["sla"]
    change(client, agent, "complaint", record["id"], level="重要")
    document = stored(db, record["id"])
    register = clock(db, record["id"], "important_register")
    assert register["started_at"] == document["updated_at"] and register["window"] == {"working_days": 1}
    assert register["state"] != "overdue" and "important_situation" not in document["sla"]
    change(client, agent, "complaint", record["id"], registered_at=ago(minutes=1))
    assert clock(db, record["id"], "important_register")["state"] == "met"
    situation = clock(db, record["id"], "important_situation")
    assert situation["window"] == {"working_days": 1} and situation["state"] != "overdue"
    assert situation["started_at"] >= register["started_at"]
    change(client, agent, "complaint", record["id"], situation_learned_at=ago(minutes=1))
    assert clock(db, record["id"], "important_situation")["state"] == "met"
    assert clock(db, record["id"], "important_plan")["window"] == {"working_days": 5}  # the whole still runs


# --- the routing section's validation ---------------------------------------------------------------------

def test_a_bad_routing_section_is_refused_at_each_entry(client, ready, db):
    """routing: an unknown field, a value that is no choice and an unknown department are refused, each naming
    its entry, and nothing is stored."""
    admin = token_headers(client, "admin")
    definition = client.get("/api/v1/types/mall_complaint", headers=admin).get_json()
    version = db.record_types.find_one({"key": "mall_complaint"})["version"]
    definition["routing"] = [{"when": {"colour": "红"}, "department": "营运部"},
                             {"when": {"category": "家电"}, "department": "营运部"},
                             {"when": {"category": "商品"}, "department": "不存在部"}]
    response = client.put("/api/v1/types/mall_complaint", headers=admin, json=definition)
    message = assert_error(response, 422, "validation_failed")["fields"]["routing"]
    assert "routing 第 1 条" in message and "colour" in message
    assert "routing 第 2 条" in message and "“家电”不是“category”的可选项" in message
    assert "routing 第 3 条" in message and "不存在部" in message
    assert db.record_types.find_one({"key": "mall_complaint"})["version"] == version


@pytest.mark.parametrize("routing, words", [
    ([{"when": {"category": "商品"}}], ["department", "assignee_title"]),
    ([{"when": {}, "department": "营运部"}], ["when", "不能为空"]),
    ([{"when": {"department": "*"}, "department": "营运部"}], ["department", "不存在"]),
    ([{"when": {"status": "已完成"}, "department": "营运部"}], ["已完成", "可选项"]),
])
def test_routing_section_shapes_are_checked(app, ready, routing, words):
    """routing: an entry sets something, names a condition, never reads what routing writes, and a status is one
    of the workflow's."""
    from kefu.records.definitions import shipped_definitions
    from kefu.records.sections import definition_problems

    definition = next(d for _pack, d in shipped_definitions() if d["key"] == "mall_complaint")
    with app.app_context():
        problems = definition_problems({**definition, "routing": routing})
    assert "routing" in problems, problems
    for word in words:
        assert word in problems["routing"], problems["routing"]


def test_approver_by_is_checked(app, ready):
    """approvals.approver_by: its field is a single choice (a multi-choice value never names one approver), its values
    are among the choices, and a value's titles stay distinct."""
    from kefu.records.definitions import shipped_definitions
    from kefu.records.sections import definition_problems

    definition = next(d for _pack, d in shipped_definitions() if d["key"] == "complaint")
    approvals = definition["approvals"]
    with app.app_context():
        wrong_field = definition_problems({**definition, "approvals": {
            **approvals, "approver_by": {"field": "content", "values": {"x": "营销总监"}}}})
        wrong_value = definition_problems({**definition, "approvals": {
            **approvals, "approver_by": {"field": "category", "values": {"家电": "营销总监"}}}})
        several = next(f for f in definition["fields"] if f["type"] == "multi_choice")  # a list never matches
        multiple = definition_problems({**definition, "approvals": {**approvals, "approver_by": {
            "field": several["key"], "values": {several["choices"][0]: "营销总监"}}}})
        clash = definition_problems({**definition, "approvals": {**approvals, "bands": [
            {"approver": "项目总监", "approver_by": {"field": "category", "reviewers": {"销售承诺": "项目总监、财务总监"}}}]}})
    assert "有可选项的字段" in wrong_field["approvals"] and "content" in wrong_field["approvals"]
    assert "“家电”不是字段“category”的可选项" in wrong_value["approvals"]
    assert "有可选项的字段" in multiple["approvals"] and several["key"] in multiple["approvals"].split("不是")[0]
    assert "不能同时是审核人" in clash["approvals"] and "销售承诺" in clash["approvals"]
