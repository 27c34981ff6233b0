"""装修 pack (002 装饰装修工程公司客服部管理手册): the handbook's deadlines and approvals run on the shipped types.

Records are registered through the API on the seeded working-day calendar; each test asserts the stored ``sla`` (or
``approval``) state and cites its clause.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from seed.demo import DEMO_PASSWORD
from tests.test_pack_commercial import (  # noqa: F401  (ready: a fixture)
    SHANGHAI, ago, change, clock, local, new, overdue_ids, ready, stored,
)


def reno_complaint(**values) -> dict:
    return {"customer_name": "张三", "phone": "13612345678", "content": "墙面开裂", **values}


def test_002_complaint_forwarded_to_the_department_within_3_hours(client, agent, ready, db):
    """002 客户投诉处理流程: 客服专员 records the complaint and passes it on within 3 hours."""
    record = new(client, agent, "reno_complaint", **reno_complaint(received_at="2026-11-16T09:00"))
    forward = clock(db, record["id"], "forward")
    assert forward["due_at"] == local("2026-11-16T12:00") and forward["state"] == "overdue"
    assert set(record["sla"]) == {"forward"}  # the later steps start when the earlier ones are done


def test_002_complaint_steps_24_24_48_hours_each_from_the_last(client, agent, ready, db):
    """002 客户投诉处理流程: 24 h the department phones the customer, 24 h it reports its solution and visit time,
    48 h it is on site."""
    record = new(client, agent, "reno_complaint", **reno_complaint(received_at=ago(hours=1)))
    change(client, agent, "reno_complaint", record["id"], status="已转部门")
    document = stored(db, record["id"])
    assert document["sla"]["forward"]["state"] == "met"
    call = document["sla"]["call_customer"]
    assert call["started_at"] == document["status_at"]["已转部门"] and call["due_at"] - call["started_at"] == \
        timedelta(hours=24)
    change(client, agent, "reno_complaint", record["id"], status="已核实")
    solution = clock(db, record["id"], "solution")
    assert solution["due_at"] - solution["started_at"] == timedelta(hours=24)
    assert clock(db, record["id"], "call_customer")["state"] == "met"
    change(client, agent, "reno_complaint", record["id"], status="待上门", visit_at=ago(hours=-20))
    assert clock(db, record["id"], "solution")["state"] == "met"
    on_site = clock(db, record["id"], "on_site")
    assert on_site["due_at"] - on_site["started_at"] == timedelta(hours=48)
    change(client, agent, "reno_complaint", record["id"], visited_at=ago(minutes=1))
    assert clock(db, record["id"], "on_site")["state"] == "met"


def test_002_major_complaint_on_site_within_2_working_days_of_the_escalation(client, agent, ready, db):
    """002 重大客诉处理程序: escalated to 客服经理 (told at once), who agrees a visit within 2 working days — counted
    from the escalation, not from intake."""
    record = new(client, agent, "reno_complaint", **reno_complaint(received_at=ago(days=5)))
    assert "major_on_site" not in record["sla"]
    change(client, agent, "reno_complaint", record["id"], level="重大")
    document = stored(db, record["id"])
    major = document["sla"]["major_on_site"]
    # routing (客服经理 takes a 重大 case) saves again right after the escalation: the clock dates from the escalation
    assert document["created_at"] < major["started_at"] <= document["updated_at"] and major["window"] == {"working_days": 2}
    assert major["state"] != "overdue" and document["sla_next"] <= major["started_at"]  # the sweep tells 客服经理
    assert not major.get("announced")
    assert "on_site" not in document["sla"]


def test_002_major_on_site_deadline_skips_the_weekend(client, agent, ready, db):
    """002 重大客诉处理程序: 2 working days — a case escalated on Friday is due on Tuesday."""
    from kefu.core import clock as kefu_clock

    with kefu_clock.at(local("2026-11-13T10:00")):
        record = new(client, agent, "reno_complaint", **reno_complaint(received_at="2026-11-13T10:00", level="重大"))
    assert clock(db, record["id"], "major_on_site")["due_at"] == local("2026-11-17T23:59:59")


def test_002_compensation_goes_through_supervisor_review_and_leadership_approval(client, agent, ready, db):
    """002 重大客诉处理程序: compensation → reviewed by 公司主管, approved and signed by 公司领导; it makes the
    complaint 重大."""
    record = new(client, agent, "reno_complaint", **reno_complaint(received_at=ago(hours=2)))
    change(client, agent, "reno_complaint", record["id"], status="已核实")
    response = change(client, agent, "reno_complaint", record["id"], status="待审批", compensation_amount="3000")
    assert response["level"] == "重大"
    request = stored(db, record["id"])["approval"]
    assert request["state"] == "pending" and request["approver"] == "公司领导" and request["reviewers"] == ["公司主管"]
    closing = client.get(f"/api/v1/records/reno_complaint/{record['id']}", headers=agent).get_json()
    refused = client.patch(f"/api/v1/records/reno_complaint/{record['id']}", headers=agent,
                           json={"version": closing["version"], "status": "待回访"})
    assert refused.status_code == 422 and stored(db, record["id"])["status"] == "待审批"


def test_002_repair_crew_on_site_within_8_hours(client, agent, ready, db):
    """002 保修期间维修处理 (1): the responsible crew reaches the site within 8 hours."""
    record = new(client, agent, "reno_repair", customer_name="张三", phone="13612345678", problem="卫生间漏水",
                 reported_at="2026-11-16T09:00")
    on_site = clock(db, record["id"], "on_site")
    assert on_site["due_at"] == local("2026-11-16T17:00")
    change(client, agent, "reno_repair", record["id"], arrived_at="2026-11-16T15:00")
    assert clock(db, record["id"], "on_site")["met_at"] is not None


def test_002_drawing_review_within_2_days(client, agent, ready, db):
    """002 图纸审核流程: 审核记录（2天之内）."""
    designer = str(db.users.find_one({"username": "agent"})["_id"])
    record = new(client, agent, "drawing_review", customer_name="张三", designer=designer,
                 submitted_at="2026-11-16T09:00")
    review = clock(db, record["id"], "review")
    assert review["due_at"] == local("2026-11-18T09:00") and review["state"] == "overdue"
    change(client, agent, "drawing_review", record["id"], conclusion="合格", score=90)
    assert clock(db, record["id"], "review")["met_at"] is not None


def test_002_drawing_review_penalties_are_derived(client, agent, ready, db):
    """002 图纸审核奖惩办法 (一) score below 80 → 一次警告; (二) signed without fixing → 1 % of the commission and a
    一般过失单 for the branch manager; not all fixed → 0.5 % — derived, not typed by hand."""
    designer = str(db.users.find_one({"username": "agent"})["_id"])
    record = new(client, agent, "drawing_review", customer_name="张三", designer=designer, score=75,
                 commission="12000")
    data = stored(db, record["id"])["data"]
    assert data["designer_warning"] == "一次警告" and data["penalty"] == "无" and data["branch_fault"] is False
    answer = change(client, agent, "drawing_review", record["id"], rectification="未修改即签约")
    data = stored(db, record["id"])["data"]
    assert data["penalty"] == "扣除1%提成并通报批评" and data["branch_fault"] is True
    assert data["deduction"].to_decimal() == Decimal("120.00") and answer["deduction"] == "120.00"
    change(client, agent, "drawing_review", record["id"], rectification="未全部修改", score=85)
    data = stored(db, record["id"])["data"]
    assert data["penalty"] == "扣除0.5%提成" and data["deduction"].to_decimal() == Decimal("60.00")
    assert data["designer_warning"] == "无" and data["branch_fault"] is False
    typed = client.post("/api/v1/records/drawing_review", headers=agent,
                        json={"customer_name": "李四", "designer": designer, "penalty": "无"})
    assert typed.status_code == 422 and "penalty" in typed.get_json()["error"]["fields"]


def test_002_third_failed_pre_acceptance_derives_the_penalty(client, agent, ready, db):
    """002 工程预验收流程: the third failed inspection → new foreman, ¥500, 3-month stop, serious fault for the
    project manager."""
    first = new(client, agent, "pre_acceptance", customer_name="张三", foreman="王工", inspection_date="2026-11-19",
                result="不合格")
    data = stored(db, first["id"])["data"]
    assert data["fine"].to_decimal() == Decimal("0.00") and data["replace_foreman"] is False
    assert data.get("penalty") is None
    third = new(client, agent, "pre_acceptance", customer_name="张三", foreman="王工", inspection_date="2026-12-03",
                attempt="第三次验收", result="不合格")
    data = stored(db, third["id"])["data"]
    assert data["penalty"] == "更换工长；罚款 500 元；停单 3 个月；项目经理严重过失处罚"
    assert data["fine"].to_decimal() == Decimal("500.00") and data["suspend_months"] == 3
    assert data["replace_foreman"] is True and data["pm_serious_fault"] is True


def test_002_failed_pre_acceptance_rectified_by_the_notice_deadline(client, agent, ready, db):
    """002 工程预验收流程: 不合格 → 《限期整改通知单》 with a deadline; the deadline is the clock."""
    record = new(client, agent, "pre_acceptance", customer_name="张三", foreman="王工", inspection_date="2026-11-19")
    assert "rectify" not in record["sla"]
    change(client, agent, "pre_acceptance", record["id"], result="不合格", rectification_deadline="2026-11-26")
    rectify = clock(db, record["id"], "rectify")
    assert rectify["due_at"] == local("2026-11-26T23:59:59") and rectify["state"] == "overdue"
    change(client, agent, "pre_acceptance", record["id"], rectified_at="2026-11-25T10:00")
    assert clock(db, record["id"], "rectify")["met_at"] is not None


def test_002_termination_responsibility_loss_fee_notice_and_gm_approval(client, agent, ready, db):
    """002 退单工作流程图: responsibility in 3 working days; 施工队 or 设计师 responsible → 《退单损失费通知单》;
    财务部 reviews and 总经理 approves; the whole process in 7 working days."""
    record = new(client, agent, "termination", customer_name="张三", reason="工期拖延",
                 applied_at="2026-11-16T09:00", contract_amount="80000")
    document = stored(db, record["id"])
    assert document["sla"]["responsibility"]["due_at"] == local("2026-11-19T23:59:59")
    assert document["sla"]["whole"]["due_at"] == local("2026-11-25T23:59:59")
    assert "loss_fee_notice" not in document["sla"]
    change(client, agent, "termination", record["id"], status="核实中", responsible_party="施工队")
    assert clock(db, record["id"], "responsibility")["met_at"] is not None
    assert clock(db, record["id"], "loss_fee_notice")["due_at"] == local("2026-11-25T23:59:59")
    change(client, agent, "termination", record["id"], status="待审批", loss_fee="5000")
    document = stored(db, record["id"])
    assert document["sla"]["loss_fee_notice"]["met_at"] is not None
    assert document["approval"]["approver"] == "总经理" and document["approval"]["reviewers"] == ["财务部经理"]


def test_a_renovation_company_sees_its_overdue_complaint_on_the_overdue_page(client, agent, ready, db, sign_in):
    """002 客户投诉处理流程: a complaint not passed on in 3 hours is listed on 逾期督办."""
    late = new(client, agent, "reno_complaint", **reno_complaint(received_at=ago(hours=5)))
    fresh = new(client, agent, "reno_complaint", **reno_complaint(received_at=ago(minutes=1), phone="13612345679"))
    assert stored(db, late["id"])["sla_due"] < datetime.now(timezone.utc)
    sign_in("supervisor", DEMO_PASSWORD)
    listed = overdue_ids(client, "reno_complaint")
    assert late["id"] in listed and fresh["id"] not in listed


def job(client, agent, **values) -> dict:
    return new(client, agent, "construction_job", customer_name="张三", phone="13612345678", foreman="王工",
               customer_grade="A", **values)


def test_002_site_callbacks_are_made_when_the_job_reaches_each_stage(client, agent, ready, db):
    """002 在施工程电话回访制度 二: 开工 / 隐蔽工程 / 中期 / 完工 — a callback made at each stage, at least 4 per job."""
    record = job(client, agent)
    for stage in ("开工", "隐蔽工程", "中期", "完工"):
        change(client, agent, "construction_job", record["id"], status=stage)
    made = list(db.records.find({"spawned_from.id": stored(db, record["id"])["_id"]}).sort("created_at", 1))
    assert [m["data"]["checkpoint"] for m in made] == ["开工", "隐蔽工程", "中期", "完工"]
    assert {m["type"] for m in made} == {"construction_checkpoint"}
    first = made[0]
    assert first["data"]["customer_name"] == "张三" and first["data"]["customer_grade"] == "A"
    started = stored(db, record["id"])["status_at"]["开工"].astimezone(SHANGHAI).date()
    assert first["data"]["planned_date"].date() > started  # the next working day
    assert len(stored(db, record["id"])["spawned"]) == 4


def test_002_failed_inspections_are_attempts_of_one_job_and_the_third_derives_the_penalty(client, agent, ready, db):
    """002 工程预验收流程: each failed inspection → a rectification record, attempt 1–3 linked to one job; the third
    failure → new foreman, ¥500, 3-month stop, serious fault for the project manager."""
    record = job(client, agent, inspection_date="2026-11-19")
    for result in ("不合格", "合格", "不合格", "合格", "不合格"):
        change(client, agent, "construction_job", record["id"], inspection_result=result)
    made = list(db.records.find({"spawned_from.id": stored(db, record["id"])["_id"]}).sort("created_at", 1))
    assert [m["type"] for m in made] == ["pre_acceptance"] * 3
    assert [m["data"]["attempt"] for m in made] == ["第一次验收", "第二次验收", "第三次验收"]
    assert made[0]["data"]["fine"].to_decimal() == Decimal("0.00") and made[0]["data"].get("penalty") is None
    third = made[2]["data"]
    assert third["penalty"] == "更换工长；罚款 500 元；停单 3 个月；项目经理严重过失处罚"
    assert third["fine"].to_decimal() == Decimal("500.00") and third["pm_serious_fault"] is True
