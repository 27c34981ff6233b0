"""满意度调查 (issue 19; 000 §五, 001 §六3, 004 满意度调查): plan approved 20 days ahead, distribution with answer
links, phone entry, return rate against its target, scores, corrective actions that go overdue, the report."""
from __future__ import annotations

import re
from datetime import date, timedelta
from io import BytesIO

from bson import ObjectId
from openpyxl import load_workbook

from kefu.core.clock import utcnow
from kefu.org.customers import create_customer
from kefu.org.structure import Project
from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token

QUESTIONS = "售后|评分|报修处理是否及时？\n房屋质量|评分|房屋质量是否满意？\n整体|选择|是否愿意推荐？|愿意/不愿意\n整体|文字|其他意见"


def _project_with_customers(count: int) -> Project:
    project = Project(name="调查测试项目", code="SVTEST").save()
    for number in range(count):
        create_customer({"name": f"业主{number + 1}", "project": project})
    return project


def _plan(project, **overrides) -> dict:
    start = date.today() + timedelta(days=40)
    return {"title": "2027 年业主满意度调查", "kind": "consumer", "purpose": "了解业主满意度", "method": "问卷链接",
            "staff": "客服中心", "starts_on": start.isoformat(), "ends_on": (start + timedelta(days=10)).isoformat(),
            "projects": str(project.pk), "return_target": "70", "threshold": "3.5",
            "dimensions": "整体\n售前\n售中\n售后\n房屋质量\n物业服务", "questions": QUESTIONS, **overrides}


def _post(client, path: str, data: dict, form_path: str):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, form_path)})


def _signed_in(app, sign_in_as: str):
    client = app.test_client()
    token = csrf_token(client, "/login")
    client.post("/login", data={"username": sign_in_as, "password": DEMO_PASSWORD, "csrf_token": token})
    return client


def _answer(client, token: str, values: dict):
    page = client.get(f"/s/{token}")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    return client.post(f"/s/{token}", data={**values, "csrf_token": match.group(1) if match else ""})


def test_survey_reaches_its_return_target_with_links_and_phone_entry(app, db, seeded):
    """004 满意度调查: distribution 100 %, return ≥ 70 % shown live with the gap; one answer per link."""
    project = _project_with_customers(4)
    boss = _signed_in(app, "supervisor")
    created = _post(boss, "/admin/surveys/new/", _plan(project), "/admin/surveys/new/")
    assert created.status_code == 302, created.get_data(as_text=True)
    survey = db.surveys.find_one({"title": "2027 年业主满意度调查"})
    assert survey["status"] == "draft" and [q["kind"] for q in survey["questions"]] == ["score", "score", "choice",
                                                                                         "text"]
    assert survey["approve_by"] == (date.fromisoformat(survey["starts_on"]) - timedelta(days=20)).isoformat()
    plan = db.records.find_one({"_id": survey["plan_record"]["id"]})
    assert plan["type"] == "survey_plan" and plan["sla"]["approval"]["state"] == "on_time"
    page = f"/admin/surveys/{survey['_id']}/"
    assert _post(boss, f"{page}approve/", {}, page).status_code == 302
    assert _post(boss, f"{page}distribute/", {}, page).status_code == 302
    tokens = [a["token"] for a in db.survey_answers.find({"survey": survey["_id"]}).sort("customer_name", 1)]
    assert len(tokens) == 4 and len(set(tokens)) == 4
    assert db.records.find_one({"_id": plan["_id"]})["sla"]["approval"]["state"] == "met"

    visitor = app.test_client()
    assert _answer(visitor, tokens[0], {"q1": "2", "q2": "5", "q3": "愿意", "q4": "维修慢"}).status_code == 200
    assert _answer(visitor, tokens[1], {"q1": "3", "q2": "4", "q3": "不愿意"}).status_code == 200
    shown = boss.get(page).get_data(as_text=True)
    assert "100.0%" in shown and "50.0%" in shown and "还需回收 1 份" in shown  # 2 of 4: short of 70 % by one

    again = _answer(visitor, tokens[0], {"q1": "5", "q2": "5", "q3": "愿意"})
    assert again.status_code == 409 and "只能提交一次" in again.get_data(as_text=True)
    assert db.survey_answers.find_one({"token": tokens[0]})["answers"]["q1"] == 2
    bad = visitor.get("/s/not-a-token")
    assert bad.status_code == 404 and "链接无效" in bad.get_data(as_text=True)

    agent = _signed_in(app, "agent")
    third = db.survey_answers.find_one({"token": tokens[2]})
    phone = f"{page}phone/{third['_id']}/"
    assert agent.get(phone).status_code == 200
    entered = _post(agent, phone, {"q1": "2", "q2": "4", "q3": "愿意"}, phone)
    assert entered.status_code == 302
    stored = db.survey_answers.find_one({"_id": third["_id"]})
    assert stored["channel"] == "phone" and stored["entered_by"] is not None and stored["answers"]["q1"] == 2
    shown = boss.get(page).get_data(as_text=True)
    assert "75.0%" in shown and 'data-reached="return"' in shown
    # Scores per dimension: 售后 (q1) 2, 3, 2 → 2.33; 房屋质量 (q2) 5, 4, 4 → 4.33
    assert 'data-dimension="售后"><td>售后</td><td>2.33</td><td>3</td>' in shown
    assert 'data-dimension="房屋质量"><td>房屋质量</td><td>4.33</td>' in shown


def test_low_score_opens_a_corrective_action_that_goes_overdue(app, db, seeded):
    """000 §五, 004 满意度调查 4: the lowest items get corrective actions with owner and deadline; a late one is
    overdue on 逾期督办. The report downloads as XLSX with the numbers."""
    from kefu.records.actor import system_actor
    from kefu.surveys import answers, plans

    project = _project_with_customers(2)
    with app.test_request_context():
        survey = plans.create_survey({**_plan(project), "projects": [str(project.pk)]}, system_actor())
        plans.approve(survey["_id"], system_actor())
        answers.distribute(survey["_id"])
        for respondent, score in zip(answers.respondents(survey["_id"]), ("1", "3")):
            answers.submit(respondent["token"], {"q1": score, "q2": "5", "q3": "愿意"})
    boss = _signed_in(app, "supervisor")
    page = f"/admin/surveys/{survey['_id']}/"
    refused = _post(boss, f"{page}actions/", {"owner": "nobody-here", "deadline": "2026-01-01"}, page)
    assert "整改负责人" in boss.get(refused.headers["Location"]).get_data(as_text=True)
    assert db.records.count_documents({"type": "corrective_action"}) == 0
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    made = _post(boss, f"{page}actions/", {"owner": "supervisor", "deadline": yesterday, "measures": "加派维修人员"},
                 page)
    assert made.status_code == 302
    action = db.records.find_one({"type": "corrective_action"})
    assert action["data"]["item"] == "报修处理是否及时？" and action["data"]["survey_ref"] == str(survey["_id"])
    assert action["sla"]["rectify"]["state"] == "overdue" and action["sla_due"] <= utcnow()
    assert db.surveys.find_one({"_id": survey["_id"]})["actions"]["q1"]["number"] == action["number"]
    assert _post(boss, f"{page}actions/", {"owner": "supervisor", "deadline": yesterday}, page).status_code == 302
    assert db.records.count_documents({"type": "corrective_action"}) == 1  # one per item, never twice
    overdue = boss.get("/admin/overdue/?type=corrective_action").get_data(as_text=True)
    assert action["number"] in overdue

    report = boss.get(f"{page}report.xlsx")
    assert report.status_code == 200
    book = load_workbook(BytesIO(report.data))
    summary = {row[0]: row[1] for row in book["概况"].iter_rows(values_only=True)}
    assert summary["已发放"] == 2 and summary["已回收"] == 2 and summary["回收率"] == "100.0%"
    dimensions = {row[0]: row[1] for row in book["维度得分"].iter_rows(min_row=2, values_only=True)}
    assert dimensions["售后"] == 2 and dimensions["房屋质量"] == 5
    questions = list(book["题目得分"].iter_rows(min_row=2, values_only=True))
    assert questions[0][4] == 2 and questions[0][7] == action["number"]


def test_plan_not_approved_20_days_ahead_is_overdue(app, db, seeded):
    """004 满意度调查 1: a plan not approved by start − 20 days is overdue (its record on 逾期督办)."""
    project = _project_with_customers(1)
    boss = _signed_in(app, "supervisor")
    soon = date.today() + timedelta(days=10)
    _post(boss, "/admin/surveys/new/", _plan(project, starts_on=soon.isoformat(),
                                              ends_on=(soon + timedelta(days=5)).isoformat()), "/admin/surveys/new/")
    survey = db.surveys.find_one({})
    plan = db.records.find_one({"_id": survey["plan_record"]["id"]})
    assert plan["sla"]["approval"]["state"] == "overdue"
    assert 'data-approval="late"' in boss.get(f"/admin/surveys/{survey['_id']}/").get_data(as_text=True)
    assert plan["number"] in boss.get("/admin/overdue/?type=survey_plan").get_data(as_text=True)


def test_bad_input_is_answered_at_the_field(app, db, seeded):
    project = _project_with_customers(1)
    boss = _signed_in(app, "supervisor")
    bad = _post(boss, "/admin/surveys/new/", _plan(project, title="", ends_on="2020-01-01", projects=str(ObjectId()),
                                                   questions="售后|打分|怎么样"), "/admin/surveys/new/")
    text = bad.get_data(as_text=True)
    assert bad.status_code == 200 and "请填写调查名称" in text and "结束日期不能早于开始日期" in text
    assert "项目不存在" in text and "应为 评分、选择 或 文字" in text and db.surveys.count_documents({}) == 0
    _post(boss, "/admin/surveys/new/", _plan(project), "/admin/surveys/new/")
    survey = db.surveys.find_one({})
    page = f"/admin/surveys/{survey['_id']}/"
    assert "批准后才能发放" in boss.get(_post(boss, f"{page}distribute/", {}, page).headers["Location"]).get_data(
        as_text=True)
    _post(boss, f"{page}approve/", {}, page)
    _post(boss, f"{page}distribute/", {}, page)
    token = db.survey_answers.find_one({})["token"]
    missing = _answer(app.test_client(), token, {"q1": "9", "q3": "也许"})
    text = missing.get_data(as_text=True)
    assert missing.status_code == 400 and "请为此题打分（1–5 分）" in text and "请从选项中选择" in text
    assert db.survey_answers.find_one({})["answered_at"] is None
    assert app.test_client().get(f"/admin/surveys/{ObjectId()}/").status_code in (302, 404)
    assert boss.get(f"/admin/surveys/{ObjectId()}/").status_code == 404


def test_english_answer_page_and_admin(app, db, seeded):
    project = _project_with_customers(1)
    boss = _signed_in(app, "supervisor")
    boss.get("/locale/en")
    assert 'lang="en"' in boss.get("/admin/surveys/").get_data(as_text=True)
    visitor = app.test_client()
    visitor.get("/locale/en")
    page = visitor.get("/s/unknown-token")
    assert page.status_code == 404 and 'lang="en"' in page.get_data(as_text=True)


def test_survey_duties_remind_in_their_months(app, db, seeded):
    """000 §五, 004 满意度调查: consumers every May, merchants every quarter."""
    from datetime import datetime, timezone

    from kefu.schedule.duties import DUTY_BY_NAME

    may = datetime(2027, 5, 1, 1, 0, tzinfo=timezone.utc)
    june = datetime(2027, 6, 1, 1, 0, tzinfo=timezone.utc)
    consumer, merchant = DUTY_BY_NAME["consumer_survey"], DUTY_BY_NAME["merchant_survey"]
    with app.app_context():
        assert "notifications created" in consumer.function(may, **consumer.options)
        assert "not a survey month" in consumer.function(june, **consumer.options)
        assert "not a survey month" in merchant.function(may, **merchant.options)
    assert db.notifications.count_documents({"kind": "survey_reminder"}) >= 1
