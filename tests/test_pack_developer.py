"""房开 / 龙湖 pack (003 杭州龙湖投诉管理制度): sales-promise and planning/design complaints get their own
24/24/24/48-hour steps (§4.2, §4.3), chosen by the complaint's category — on the shipped 投诉 type, through the API."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from seed.demo import DEMO_PASSWORD
from tests.test_pack_commercial import (  # noqa: F401  (ready: a fixture)
    ago, change, clock, local, new, overdue_ids, ready, stored,
)
from tests.test_records_api import complaint

SALES = ("sales_contact", "sales_verify", "sales_plan")
DESIGN = ("design_contact", "design_team", "design_materials", "design_plan")


def test_003_4_2_sales_complaint_steps_24_24_48_hours(client, agent, ready, db):
    """003 §4.2: 24 h to contact the project marketing manager, 24 h for the manager to verify, 48 h for a plan."""
    record = new(client, agent, "complaint", **complaint(received_at="2026-11-16T09:00", category="销售承诺"))
    assert clock(db, record["id"], "sales_contact")["due_at"] == local("2026-11-17T09:00")
    assert not set(DESIGN) & set(record["sla"]) and "verify" not in record["sla"]  # engineering-only clocks
    change(client, agent, "complaint", record["id"], status="已转办")
    verify = clock(db, record["id"], "sales_verify")
    assert verify["due_at"] - verify["started_at"] == timedelta(hours=24)
    assert clock(db, record["id"], "sales_contact")["met_at"] is not None
    change(client, agent, "complaint", record["id"], status="处理中")
    plan = clock(db, record["id"], "sales_plan")
    assert plan["due_at"] - plan["started_at"] == timedelta(hours=48)
    change(client, agent, "complaint", record["id"], plan="按合同补足交付标准差额")
    assert clock(db, record["id"], "sales_plan")["state"] == "met"


def test_003_4_3_design_complaint_steps_24_24_24_48_hours(client, agent, ready, db):
    """003 §4.3: 24 h the property contacts the customer manager, 24 h the manager contacts marketing and R&D,
    24 h R&D collects the drawings and records, 48 h R&D proposes a solution."""
    record = new(client, agent, "complaint", **complaint(received_at="2026-11-16T09:00", category="规划设计"))
    assert clock(db, record["id"], "design_contact")["due_at"] == local("2026-11-17T09:00")
    assert not set(SALES) & set(record["sla"])
    change(client, agent, "complaint", record["id"], status="已转办")
    team = clock(db, record["id"], "design_team")
    assert team["due_at"] - team["started_at"] == timedelta(hours=24)
    change(client, agent, "complaint", record["id"], status="处理中")
    materials, plan = clock(db, record["id"], "design_materials"), clock(db, record["id"], "design_plan")
    assert materials["due_at"] - materials["started_at"] == timedelta(hours=24)
    assert plan["due_at"] - plan["started_at"] == timedelta(hours=48)
    change(client, agent, "complaint", record["id"], materials_collected=True)
    assert clock(db, record["id"], "design_materials")["state"] == "met"
    assert clock(db, record["id"], "design_plan")["met_at"] is None


def test_a_developer_sees_its_overdue_sales_complaint_on_the_overdue_page(client, agent, ready, db, sign_in):
    """003 §4.2: a sales complaint nobody took to the marketing manager in 24 hours is listed on 逾期督办."""
    late = new(client, agent, "complaint", **complaint(received_at=ago(hours=30), category="销售承诺"))
    assert clock(db, late["id"], "sales_contact")["state"] == "overdue"
    assert stored(db, late["id"])["sla_due"] < datetime.now(timezone.utc)
    sign_in("supervisor", DEMO_PASSWORD)
    assert late["id"] in overdue_ids(client, "complaint")


def test_004_major_complaint_short_clock_instead_of_0_hours(client, agent, ready, db):
    """004 投诉处理 1 (Wrong today: "0 小时" → 已逾期 at registration): 重大 forwards within 30 minutes, the
    project director and the 客服经理 are told at once, handling starts within 30 minutes of becoming 重大."""
    record = new(client, agent, "complaint", **complaint(received_at=ago(minutes=5), claim_amount="30000"))
    assert record["level"] == "重大"
    document = stored(db, record["id"])
    forward, major = document["sla"]["forward"], document["sla"]["major_start"]
    assert forward["due_at"] - forward["started_at"] == timedelta(minutes=30) and forward["state"] != "overdue"
    assert major["due_at"] - major["started_at"] == timedelta(minutes=30) and document["sla_next"] <= \
        major["started_at"]
    change(client, agent, "complaint", record["id"], status="已转办")
    assert clock(db, record["id"], "forward")["state"] == "met"


def test_003_4_1_3_important_steps_count_from_becoming_important(client, agent, ready, db):
    """003 §4.1.3 (Wrong today): register 1 + situation 1 + plan and approval 3 working days, from the moment the
    level became 重要 — a complaint of last month raised today is not overdue at once."""
    record = new(client, agent, "complaint", **complaint(received_at=ago(days=30), phone="13800000001"))
    assert "important_plan" not in record["sla"]
    change(client, agent, "complaint", record["id"], level="重要")
    document = stored(db, record["id"])
    plan = document["sla"]["important_plan"]
    assert plan["started_at"] == document["updated_at"] and plan["window"] == {"working_days": 5}
    assert plan["state"] == "on_time" and "major_plan" not in document["sla"]


def test_003_4_1_3_a_complaint_major_from_intake_gets_the_plan_deadline(client, agent, ready, db):
    """003 §4.1.3 (索赔): a complaint 重大 from the start (claim >= 20,000) has the 5-working-day plan deadline."""
    record = new(client, agent, "complaint", **complaint(claim_amount="20000", phone="13800000002"))
    plan = clock(db, record["id"], "major_plan")
    registered = stored(db, record["id"])["created_at"]  # raised by the level rule in the same registration
    assert timedelta(0) <= plan["started_at"] - registered < timedelta(seconds=5)
    assert plan["window"] == {"working_days": 5} and "important_plan" not in record["sla"]


def test_003_4_1_3_plan_approval_runs_only_once_a_plan_exists(client, agent, ready, db):
    """003 §4.1.3: plan approval within 12 hours of receiving the plan — no plan, no clock."""
    record = new(client, agent, "complaint", **complaint(phone="13800000003"))
    change(client, agent, "complaint", record["id"], status="处理中")
    change(client, agent, "complaint", record["id"], status="待审批", compensation_amount="3000")
    assert "plan_approval" not in stored(db, record["id"])["sla"]
    change(client, agent, "complaint", record["id"], plan="更换卫生间防水层")
    approval = clock(db, record["id"], "plan_approval")
    assert approval["due_at"] - approval["started_at"] == timedelta(hours=12)


def test_004_consultation_forward_clock_only_when_another_department_is_needed(client, agent, ready, db):
    """004 受理咨询 (Wrong today): the 1-hour 《内部工作联系函》 clock applies only when another department must
    help; a complex question answered on the spot has the 000 §三(一)3 answer clock only."""
    values = {"customer_name": "钱十", "question": "办理产权证的流程和时间？", "complexity": "较为复杂的问题",
              "received_at": "2026-11-16T09:00"}
    on_the_spot = new(client, agent, "consultation", **values)
    assert "forward" not in on_the_spot["sla"] and "answer" in on_the_spot["sla"]
    forwarded = new(client, agent, "consultation", needs_department=True, **values)
    forward = clock(db, forwarded["id"], "forward")
    assert forward["due_at"] == local("2026-11-16T10:00") and forward["state"] == "overdue"


def test_000_3_3_3_suggestion_answered_by_the_deadline_set_when_forwarding(client, agent, ready, db):
    """000 §三(三)3: forwarded with an explicit deadline (明确处理期限); the department answers within it."""
    record = new(client, agent, "suggestion", customer_name="钱十", content="建议增加充电桩",
                 received_at="2026-11-16T09:00")
    assert "department_result" not in record["sla"]
    change(client, agent, "suggestion", record["id"], deadline="2026-11-20T17:00")
    result = clock(db, record["id"], "department_result")
    assert result["due_at"] == local("2026-11-20T17:00") and result["until"] is True
