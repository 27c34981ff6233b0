"""满意度调查 (issue 19; 000 §五, 001 §六3, 004 满意度调查): plan approved 20 days ahead, distribution with answer
links, phone entry, return rate against its target, scores, corrective actions that go overdue, the report."""
from __future__ import annotations

import re
from datetime import date, timedelta, timezone
from io import BytesIO
from zoneinfo import ZoneInfo

from bson import ObjectId
from openpyxl import load_workbook

from kefu.core.clock import utcnow
from kefu.org.customers import create_customer
from kefu.org.structure import Project
from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token

SHANGHAI = ZoneInfo("Asia/Shanghai")


def policy_of(user):
    from kefu.org.access import policy_for

    return policy_for(user)

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
    # Prepared links are not distributed until sent: the rate counts what the distribution list sent.
    assert 'data-figure="distribution">0.0%' in boss.get(page).get_data(as_text=True)
    listed = boss.get(f"{page}distribution.xlsx")
    assert listed.status_code == 200
    rows = list(load_workbook(BytesIO(listed.data)).active.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 4 and rows[0][0] == "业主1" and rows[0][2].endswith(f"/s/{tokens[0]}")
    assert db.survey_answers.count_documents({"survey": survey["_id"], "sent_at": {"$ne": None}}) == 4

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
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.surveys import answers, plans

    project = _project_with_customers(2)
    with app.test_request_context():
        runner = user_actor(User.objects.get(username="supervisor"))  # the survey is in the supervisor's scope
        survey = plans.create_survey({**_plan(project), "projects": [str(project.pk)]}, runner)
        plans.approve(survey["_id"], runner)
        answers.prepare_links(survey["_id"], runner)
        for respondent, score in zip(answers.respondents(survey["_id"]), ("1", "3")):
            answers.submit(respondent["token"], {"q1": score, "q2": "5", "q3": "愿意"})
    boss = _signed_in(app, "supervisor")
    page = f"/admin/surveys/{survey['_id']}/"
    refused = _post(boss, f"{page}actions/", {"owner": "nobody-here", "deadline": "2026-01-01"}, page)
    assert "整改负责人" in boss.get(refused.headers["Location"]).get_data(as_text=True)
    assert db.records.count_documents({"type": "corrective_action"}) == 0
    assert db.surveys.find_one({"_id": survey["_id"]})["actions"] == {}  # no item left claimed
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

    from kefu.org.roles import Capability
    from kefu.org.users import User

    april, may = (datetime(2027, month, 1, 1, 0, tzinfo=timezone.utc) for month in (4, 5))
    december = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)
    consumer, merchant = DUTY_BY_NAME["consumer_survey"], DUTY_BY_NAME["merchant_survey"]
    runners = {u.pk for u in User.objects(active=True) if policy_of(u).has(Capability.VIEW_REPORTS.value)}
    assert runners
    with app.app_context():
        # 004 满意度调查 1: approved 20 days before the survey month, so reminded on 1 April for May …
        assert "notifications created: %d" % len(runners) in consumer.function(april, **consumer.options)
        assert "no survey next month" in consumer.function(may, **consumer.options)
        assert "no survey next month" in merchant.function(april, **merchant.options)
        # … and on 1 December for the January quarter's merchant survey.
        assert "notifications created: %d" % len(runners) in merchant.function(december, **merchant.options)
        sent = list(db.notifications.find({"kind": "survey_reminder"}))
        for kind in ("consumer", "merchant"):  # exactly one notification per recipient and run
            assert sorted(str(n["user"]) for n in sent if f":{kind}:" in n["key"]) == sorted(map(str, runners))
        assert "2027-05" in next(n for n in sent if ":consumer:" in n["key"])["key"]
        assert "notifications created: 0" in consumer.function(april, **consumer.options)  # a second run
    assert db.notifications.count_documents({"kind": "survey_reminder"}) == 2 * len(runners)


def _approved_survey(app, db, customers: int = 2) -> dict:
    """A survey planned and approved by the demo supervisor (客服中心), its links prepared."""
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.surveys import answers, plans

    project = _project_with_customers(customers)
    with app.test_request_context():
        runner = user_actor(User.objects.get(username="supervisor"))
        survey = plans.create_survey({**_plan(project), "projects": [str(project.pk)]}, runner)
        plans.approve(survey["_id"], runner)
        answers.prepare_links(survey["_id"], runner)
    return db.surveys.find_one({"_id": survey["_id"]})


def test_missing_or_expired_csrf_token_on_the_answer_page_asks_to_reload(app, db, seeded):
    survey = _approved_survey(app, db, 1)
    token = db.survey_answers.find_one({"survey": survey["_id"]})["token"]
    visitor = app.test_client()
    for sent in ({}, {"csrf_token": "expired-or-forged"}):
        answered = visitor.post(f"/s/{token}", data={"q1": "5", "q2": "5", "q3": "愿意", **sent})
        assert answered.status_code == 400 and "页面已过期，请刷新后重新填写" in answered.get_data(as_text=True)
    assert db.survey_answers.find_one({"token": token})["answered_at"] is None


def test_surveys_of_another_department_are_out_of_scope(app, db, seeded, make_user):
    """A supervisor or agent of another department neither sees nor changes the 客服中心's survey (404)."""
    survey = _approved_survey(app, db)
    make_user("sup_eng", role="supervisor", department="工程部", password=DEMO_PASSWORD)
    make_user("agent_eng", role="agent", department="工程部", password=DEMO_PASSWORD)
    other, other_agent = _signed_in(app, "sup_eng"), _signed_in(app, "agent_eng")
    page = f"/admin/surveys/{survey['_id']}/"
    respondent = db.survey_answers.find_one({"survey": survey["_id"]})
    assert str(survey["_id"]) not in other.get("/admin/surveys/").get_data(as_text=True)
    assert str(survey["_id"]) in _signed_in(app, "supervisor").get("/admin/surveys/").get_data(as_text=True)
    token = csrf_token(other, "/admin/surveys/new/")
    for path in ("close/", "distribute/", "actions/", f"sent/{respondent['_id']}/"):
        assert other.post(f"{page}{path}", data={"csrf_token": token, "owner": "sup_eng",
                                                 "deadline": "2030-01-01"}).status_code == 404
    for path in ("", "report.xlsx", "distribution.xlsx"):
        assert other.get(f"{page}{path}").status_code == 404
    phone = f"{page}phone/{respondent['_id']}/"
    assert other_agent.get(phone).status_code == 404
    assert other_agent.post(phone, data={"q1": "1", "q2": "1", "csrf_token": csrf_token(other_agent, "/admin/")
                                         }).status_code == 404
    stored = db.survey_answers.find_one({"_id": respondent["_id"]})
    assert stored["answered_at"] is None and stored["sent_at"] is None
    assert db.surveys.find_one({"_id": survey["_id"]})["status"] == "approved"


def test_answer_links_are_for_runners_and_staff_answer_by_phone(app, db, seeded):
    """Agents see no answer link (they mark a row sent and enter phone answers); a signed-in staff member cannot
    answer through a customer's link."""
    survey = _approved_survey(app, db)
    page = f"/admin/surveys/{survey['_id']}/"
    first = db.survey_answers.find_one({"survey": survey["_id"]}, sort=[("customer_name", 1)])
    agent = _signed_in(app, "agent")
    shown = agent.get(page).get_data(as_text=True)
    assert first["token"] not in shown and "电话录入" in shown
    assert first["token"] in _signed_in(app, "supervisor").get(page).get_data(as_text=True)
    assert _post(agent, f"{page}sent/{first['_id']}/", {}, page).status_code == 302
    stored = db.survey_answers.find_one({"_id": first["_id"]})
    assert stored["sent_via"] == "manual" and stored["sent_by"] is not None
    assert 'data-figure="distribution">50.0%' in agent.get(page).get_data(as_text=True)

    refused = agent.post(f"/s/{first['token']}", data={"q1": "5", "q2": "5", "csrf_token": csrf_token(agent, page)})
    assert refused.status_code == 403 and "电话录入" in refused.get_data(as_text=True)
    assert db.survey_answers.find_one({"_id": first["_id"]})["answered_at"] is None


def test_a_refused_plan_record_update_leaves_the_survey_unchanged(app, db, seeded):
    """Survey and plan record move in one transaction: when the record's update is refused, the survey stays."""
    from kefu.core.errors import DomainError
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.surveys import plans

    project = _project_with_customers(1)
    with app.test_request_context():
        runner = user_actor(User.objects.get(username="supervisor"))
        survey = plans.create_survey({**_plan(project), "projects": [str(project.pk)]}, runner)
        db.records.update_one({"_id": survey["plan_record"]["id"]}, {"$set": {"status": "已归档"}})
        try:
            plans.approve(survey["_id"], runner)
        except DomainError:
            pass
        else:
            raise AssertionError("the plan record cannot move from 已归档 to 已批准")
    stored = db.surveys.find_one({"_id": survey["_id"]})
    assert stored["status"] == "draft" and "approved_at" not in stored
    assert db.records.find_one({"_id": survey["plan_record"]["id"]})["status"] == "已归档"


def test_plan_numbers_and_local_deadlines(app, db, seeded):
    """Whole sample sizes, a return target of at least 70 % (004 满意度调查), late judged on local dates."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from kefu.surveys import plans

    project = _project_with_customers(1)
    boss = _signed_in(app, "supervisor")
    bad = _post(boss, "/admin/surveys/new/", _plan(project, planned="12.5", return_target="60"),
                "/admin/surveys/new/")
    text = bad.get_data(as_text=True)
    assert bad.status_code == 200 and "计划样本数须为 1 到 1000000 之间的整数" in text
    assert "回收率目标须为 70–100 之间的百分数" in text and db.surveys.count_documents({}) == 0
    assert _post(boss, "/admin/surveys/new/", _plan(project, planned="12", return_target="70"),
                 "/admin/surveys/new/").status_code == 302
    assert db.surveys.find_one({})["planned"] == 12 and db.surveys.find_one({})["return_target"] == 0.7
    # 17:30 UTC on 10 April is 01:30 on 11 April in Shanghai: a day after an approve_by of 10 April.
    survey = {"approve_by": "2027-04-10", "approved_at": datetime(2027, 4, 10, 17, 30, tzinfo=timezone.utc),
              "archive_by": "2027-04-10", "archived_at": datetime(2027, 4, 9, 17, 30, tzinfo=timezone.utc)}
    shanghai = ZoneInfo("Asia/Shanghai")
    assert plans.approval_late(survey, date(2027, 4, 1), shanghai)
    assert not plans.archive_late(survey, date(2027, 4, 30), shanghai)


def test_survey_list_rates_in_one_query_and_capped(app, db, seeded):
    from kefu.surveys import answers, plans

    survey = _approved_survey(app, db, 3)
    db.survey_answers.update_one({"survey": survey["_id"]}, {"$set": {"sent_at": utcnow()}})
    progress = answers.rates_of([survey])[survey["_id"]]
    assert (progress.planned, progress.prepared, progress.distributed, progress.answered) == (3, 3, 1, 0)
    db.surveys.insert_many([{**survey, "_id": ObjectId(), "title": f"旧调查{n}", "starts_on": "2000-01-01"}
                            for n in range(plans.LIST_LIMIT)])
    listed = _signed_in(app, "admin").get("/admin/surveys/").get_data(as_text=True)
    assert listed.count("data-survey=") == plans.LIST_LIMIT and f'data-capped="{plans.LIST_LIMIT}"' in listed
    assert str(survey["_id"]) in listed  # the latest first


def test_records_not_archived_within_5_days_of_the_end_are_overdue(app, db, seeded):
    """004 满意度调查 统计分析 4: 相关资料在调查结束 5 日内归档 — the plan record's ``archive`` clock is due at the end
    of end + 5 days; a survey ended 10 days ago and never archived is overdue, archiving it meets the clock."""
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.surveys import plans

    project = _project_with_customers(1)
    ended = date.today() - timedelta(days=10)
    with app.test_request_context():
        runner = user_actor(User.objects.get(username="supervisor"))
        survey = plans.create_survey({**_plan(project, starts_on=(ended - timedelta(days=7)).isoformat(),
                                              ends_on=ended.isoformat()), "projects": [str(project.pk)]}, runner)
        plans.approve(survey["_id"], runner)
        plans.close(survey["_id"], runner)
        late = db.records.find_one({"_id": survey["plan_record"]["id"]})["sla"]["archive"]
        plans.archive(survey["_id"], runner)
    archived = db.records.find_one({"_id": survey["plan_record"]["id"]})
    due = late["due_at"].replace(tzinfo=timezone.utc).astimezone(SHANGHAI)
    assert (due.date(), due.hour, due.minute) == (ended + timedelta(days=5), 23, 59)
    assert late["state"] == "overdue" and late["met_at"] is None
    assert archived["status"] == "已归档" and archived["sla"]["archive"]["met_at"] is not None
