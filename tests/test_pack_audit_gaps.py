"""The audit's cheap gaps (docs/handbook-audit.md): rules whose data was shipped or nearly so, now each run by a test
naming its clause — 000 §三(一)3, §三(三)1, §三(三)3; 001 §二3, §五1, §五2; 002 在施工程电话回访制度 五, 客户投诉处理流程 (回访, 月末汇总分析), 保修期间维修处理 (3);
003 §4.1.3 (当日告知); 004 投诉处理 管理控制 2, 受理业户报修 2.

One module-scoped database holds the demo data and the working-day calendar; ``world`` builds every record through
the services (``kefu.records.write``) as the demo supervisor, in the order the handbooks' steps happen, and keeps the
documents each step stored; the tests assert on them.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from pymongo import MongoClient

from tests.conftest import TEST_DATA_KEY, TEST_SECRET_KEY, load_snapshot
from tests.test_callbacks import working_days_after

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)  # the need_review duty's run in the test


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def end_of(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T23:59:59").replace(tzinfo=SHANGHAI)


class Steps:
    """Creates and changes records as one user, keeping each stored document (``kefu.records.write``)."""

    def __init__(self, actor):
        from kefu.records.write import create_record, update_record

        self.actor, self.create_record, self.update_record = actor, create_record, update_record

    def new(self, type_key: str, **values) -> dict:
        return self.create_record(type_key, values, self.actor)

    def change(self, document: dict, **values) -> dict:
        return self.update_record(document["type"], document["_id"], values, self.actor, version=document["version"])

    def callback_of(self, document: dict) -> dict:
        from kefu.core.db import get_database

        return get_database().records.find_one({"source.id": document["_id"]})

    def reload(self, document: dict) -> dict:
        from kefu.core.db import get_database

        return get_database().records.find_one({"_id": document["_id"]})


def _consultations(steps: Steps) -> dict:
    question = {"customer_name": "钱十", "question": "办理产权证的流程和时间？", "complexity": "较为复杂的问题",
                "received_at": "2026-11-16T09:00"}  # a Monday
    return {"complex": steps.new("consultation", **question),
            "promised": steps.new("consultation", promised_reply_at="2026-11-16T15:00", **question)}


def _suggestions(steps: Steps) -> dict:
    from kefu.core.errors import ValidationFailed

    valuable = steps.new("suggestion", customer_name="钱十", content="建议增加充电桩", value_rating="有价值")
    ordinary = steps.new("suggestion", customer_name="孙一", content="建议换个门牌颜色", value_rating="一般")
    raised = steps.change(ordinary, value_rating="有价值")
    try:
        steps.new("suggestion", customer_name="李二", content="建议增加绿化", value_rating="一般", reward_due=True)
        typed = None
    except ValidationFailed as exc:
        typed = exc
    return {"valuable": valuable, "ordinary": ordinary, "raised": raised, "typed": typed}


def _repair(steps: Steps) -> dict:
    # Reported two hours ago: a clock is met when its condition is saved, so the steps happen now, on time.
    at = (datetime.now(timezone.utc) - timedelta(hours=2)).astimezone(SHANGHAI).replace(second=0, microsecond=0)
    reported = steps.new("repair", reported_at=at.strftime("%Y-%m-%dT%H:%M"), contact_name="李四",
                         phone="13912345678", project="云栖·江南府", unit="1幢1单元101", problem="交房验房发现厨房水管渗水")
    dispatched = steps.change(reported, status="已派工")
    arrived = steps.change(dispatched, arrived_at=(at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    return {"at": at, "reported": reported, "dispatched": dispatched, "arrived": arrived}


def _needs(steps: Steps) -> dict:
    from kefu.schedule.duties import claim, current_duty, run

    need = {"customer_name": "周八", "phone": "13600000001", "business_type": "租赁", "district": "西湖区"}
    stale = steps.new("need", reviewed_at="2026-10-10", **need)
    fresh = steps.new("need", reviewed_at="2026-11-20", **need)
    registered = steps.new("need", **need)
    moment = MONDAY.astimezone(timezone.utc)
    assert claim(current_duty("need_review"), moment, moment)
    return {"stale": stale, "fresh": fresh, "registered": registered, "result": run("need_review", moment, moment)}


def _agency_complaint(steps: Steps) -> dict:
    received = steps.new("agency_complaint", received_at="2026-11-16T09:00", complainant_name="周八",
                         phone="13600000002", content="带看时经纪人迟到一小时", promised_at="2026-11-20T18:00")
    handed = steps.change(received, responsible_department="营销部", status="处理中")
    closed = steps.change(handed, status="已关闭", result="已向客户致歉并调整带看安排")
    callback = steps.callback_of(closed)
    rejected = steps.change(callback, result="不满意", called_at="2026-11-24T10:00", opinion="仍未解决")
    return {"received": received, "handed": handed, "callback": callback, "rejected": rejected,
            "after": steps.reload(closed)}


def _mall_complaint(steps: Steps) -> dict:
    complaint = steps.new("mall_complaint", channel="来电", complainant_name="王五", phone="13712345670",
                          category="商品", content="购买的商品有质量问题")
    closed = steps.change(complaint, status="已关闭", result="已退货")
    callback = steps.callback_of(closed)
    steps.change(callback, result="不满意", called_at="2026-11-24T10:00", opinion="退货手续太慢")
    return {"callback": callback, "after": steps.reload(closed)}


def _work_order(steps: Steps) -> dict:
    order = steps.new("work_order", reported_at="2026-11-16T09:00", reporter_name="赵六", phone="13712345679",
                      content="店铺空调不制冷")
    picked = steps.change(order, picked_up_at="2026-11-16T09:20")
    closed = steps.change(picked, status="已关闭", fixed_at="2026-11-17T15:00", repair_result="更换压缩机电容")
    return {"closed": closed, "callback": steps.callback_of(closed)}


def _engineering_complaints(steps: Steps) -> dict:
    complaint = {"channel": ["来电"], "project": "云栖·江南府", "owner_name": "吴九", "content": "卫生间墙面渗水",
                 "category": "工程质量"}
    monday = steps.new("complaint", received_at="2026-11-16T09:00", phone="13500000001", **complaint)
    saturday = steps.new("complaint", received_at="2026-11-21T10:00", phone="13500000002", **complaint)
    property_one = steps.new("complaint", received_at="2026-11-16T09:00", phone="13500000003",
                             **{**complaint, "category": "物业管理"})
    return {"monday": monday, "saturday": saturday, "property": property_one,
            "forwarded": steps.change(monday, status="已转办")}


def _reno_complaints(steps: Steps) -> dict:
    from kefu.insight.reports import complaint_analysis
    from kefu.records.types import get_record_type

    complaint = {"customer_name": "郑十", "phone": "13800000001", "content": "墙面开裂", "respondent": "施工队",
                 "stage": "售中"}
    received = steps.new("reno_complaint", **complaint)
    steps.new("reno_complaint", **complaint)
    steps.new("reno_complaint", **{**complaint, "respondent": "设计师", "stage": "售前"})
    handled = steps.change(steps.change(received, status="已转部门"), status="待回访", result="已修补墙面")
    callback = steps.callback_of(handled)
    steps.change(callback, result="不满意", called_at="2026-11-24T10:00", opinion="裂缝又出现了")
    month = received["created_at"].astimezone(SHANGHAI).strftime("%Y-%m")
    return {"handled": handled, "callback": callback, "after": steps.reload(handled),
            "analysis": complaint_analysis(get_record_type("reno_complaint"), month)}


def _reno_repair(steps: Steps) -> dict:
    repair = steps.new("reno_repair", customer_name="冯十一", phone="13800000002", problem="厨房吊顶开裂",
                       crew="张家工队")
    fixed = steps.change(steps.change(repair, status="处理中"), status="已解决", fixed_at="2026-11-24T15:00",
                         satisfaction="满意")
    callback = steps.callback_of(fixed)
    steps.change(callback, result="满意", called_at="2026-11-25T10:00")
    return {"fixed": fixed, "callback": callback, "answered": steps.reload(callback), "after": steps.reload(fixed)}


def _callback_analysis(steps: Steps) -> dict:
    from kefu.core import clock as kefu_clock
    from kefu.schedule.duties import claim, current_duty, run

    checkpoint = {"customer_name": "褚十二", "phone": "13800000003", "checkpoint": "开工"}
    made = {}
    for name, moment in (("last_week", "2026-11-23T10:00"), ("older", "2026-11-10T10:00"),
                         ("run_day", "2026-11-24T08:00")):
        with kefu_clock.at(local(moment)):
            made[name] = steps.new("construction_checkpoint", **checkpoint)
    tuesday = local("2026-11-24T09:00").astimezone(timezone.utc)
    assert claim(current_duty("callback_analysis"), tuesday, tuesday)
    return {**made, "result": run("callback_analysis", tuesday, tuesday)}


def _inspections(steps: Steps) -> dict:
    """Two jobs listed for Thursday 19 November: one inspected that day, one never (the clock is dated by the day)."""
    job = {"customer_name": "吴九", "foreman": "张工", "attempt": "第一次验收", "inspection_date": "2026-11-19"}
    done = steps.change(steps.new("pre_acceptance", **job), result="合格")
    return {"done": done, "missed": steps.new("pre_acceptance", **job)}


@pytest.fixture(scope="module")
def world(mongo_server, redis_server, seed_snapshot):
    """Every record the tests look at, built once through the services on the demo data and the calendar."""
    from app import create_app
    from kefu.calendar.workcalendar import seed_calendar
    from kefu.core.db import get_database
    from kefu.org.users import User
    from kefu.records.actor import user_actor

    name = f"kefu_test_gaps_{uuid.uuid4().hex[:8]}"
    app = create_app({"TESTING": True, "MONGODB_URI": mongo_server.uri, "MONGODB_DB": name,
                      "REDIS_URL": redis_server.url, "SECRET_KEY": TEST_SECRET_KEY, "KEFU_DATA_KEY": TEST_DATA_KEY,
                      "KEFU_LOCALE": "zh_Hans_CN", "KEFU_TIMEZONE": "Asia/Shanghai"})
    with app.app_context():
        database = get_database()
        load_snapshot(database, seed_snapshot)
        seed_calendar()
        steps = Steps(user_actor(User.objects.get(username="supervisor")))
        built = SimpleNamespace(
            db=database, consultation=_consultations(steps), suggestion=_suggestions(steps), repair=_repair(steps),
            need=_needs(steps), agency=_agency_complaint(steps), mall=_mall_complaint(steps),
            work_order=_work_order(steps), engineering=_engineering_complaints(steps),
            reno=_reno_complaints(steps), reno_repair=_reno_repair(steps), analysis=_callback_analysis(steps),
            inspection=_inspections(steps),
            supervisor=User.objects.get(username="supervisor").pk)
    yield built
    MongoClient(mongo_server.uri).drop_database(name)


def test_000_3_1_3_complex_consultation_answered_within_1_working_day_or_by_the_promised_time(world):
    """000 §三(一)3: 较为复杂的问题在规定时间内（如一个工作日）回复，并告知客户预计回复时间 — the answer clock is due at
    the end of the next working day, or at the reply time promised to the customer once it is written."""
    complex_one = world.consultation["complex"]["sla"]["answer"]
    assert complex_one["due_at"] == end_of("2026-11-17") and complex_one["window"] == {"working_days": 1}
    assert not complex_one.get("until")
    promised = world.consultation["promised"]["sla"]["answer"]
    assert promised["due_at"] == local("2026-11-16T15:00") and promised["until"] is True


def test_000_3_3_3_a_valuable_suggestion_is_due_praise_and_a_reward(world):
    """000 §三(三)3: 对客户提出的有价值的建议给予表扬和奖励 — ``reward_due`` is derived from the value judgement
    (computed ``by_value``), follows a changed judgement and cannot be typed by hand."""
    assert world.suggestion["valuable"]["data"]["reward_due"] is True
    assert world.suggestion["ordinary"]["data"]["reward_due"] is False
    assert world.suggestion["raised"]["data"]["reward_due"] is True
    typed = world.suggestion["typed"]
    assert typed is not None and "reward_due" in typed.fields


def test_000_3_3_1_a_handover_repair_is_picked_up_in_30_minutes_and_on_site_in_8_hours(world):
    """000 §三(三)1 (及时转交工程部门, no time given): the 报修's clocks borrow 004 受理业户报修 1 (半小时内接单) and
    002 保修期间维修处理 (1) (8 小时内到达现场) — dispatching meets the first, the arrival time the second."""
    reported, at = world.repair["reported"]["sla"], world.repair["at"]
    assert reported["pickup"]["due_at"] == at + timedelta(minutes=30)
    assert reported["on_site"]["due_at"] == at + timedelta(hours=8)
    assert world.repair["dispatched"]["sla"]["pickup"]["met_at"] is not None
    assert world.repair["dispatched"]["sla"]["on_site"]["met_at"] is None
    assert world.repair["arrived"]["sla"]["on_site"]["state"] == "met"
    assert world.repair["arrived"]["sla"]["on_site"]["met_at"] is not None


def test_001_2_3_needs_not_reviewed_for_30_days_are_listed_every_monday(world):
    """001 §二3 定期回访和更新客户信息: the agency pack's ``need_review`` list duty names the open needs last reviewed
    30 days to a year ago to the supervisors; a need registered without a date counts as reviewed that day."""
    assert world.need["result"].startswith("records: 1;")
    note = world.db.notifications.find_one({"key": {"$regex": "^list:need_review:2026-11-23:"}})
    assert note is not None and note["title"].startswith("需求定期回访")
    assert world.need["stale"]["number"] in note["body"] and world.need["fresh"]["number"] not in note["body"]
    assert world.supervisor in {n["user"] for n in world.db.notifications.find({"key": {"$regex": "^list:need_"}})}
    registered_on = world.need["registered"]["data"]["reviewed_at"]
    assert registered_on.date() == world.need["registered"]["created_at"].astimezone(SHANGHAI).date()


def test_001_5_1_the_complaint_is_handed_to_the_responsible_department(world):
    """001 §五1 及时将投诉信息传递给相关责任部门: the ``hand_over`` clock (3 hours, 002's figure — 001 gives none)
    runs from receipt until the responsible department is named."""
    clock = world.agency["received"]["sla"]["hand_over"]
    assert clock["due_at"] == local("2026-11-16T12:00") and clock["met_at"] is None
    assert world.agency["handed"]["sla"]["hand_over"]["met_at"] is not None


def test_001_5_2_an_unsatisfied_agency_customer_gets_the_complaint_handled_again(world):
    """001 §五2 客户不满意，调整方案直至满意: a 不满意 follow-up callback sends the 中介投诉 back to 处理中, one level up."""
    assert world.agency["callback"]["type"] == "callback"
    assert world.agency["rejected"]["status"] == "已关闭" and world.agency["rejected"]["outcome"]["rejected"] is True
    after = world.agency["after"]
    assert after["status"] == "处理中" and after["data"]["level"] == "重要"


def test_004_a_rejected_mall_callback_raises_the_complaint_one_level_and_reopens_it(world):
    """004 投诉处理 管理控制 2 投诉人不接受处理结果的，将投诉性质升级再次处理: a 不满意 商业回访 sends the 商业投诉
    back to 处理中 one level up."""
    assert world.mall["callback"]["type"] == "mall_callback"
    after = world.mall["after"]
    assert after["status"] == "处理中" and after["data"]["level"] == "重要"
    assert after["callbacks"][0]["result"] == "不满意"


def test_004_closing_a_work_order_creates_its_mall_callback(world):
    """004 受理业户报修 2 收到处理完毕返还的《维修工作单》后进行回访: closing the work order creates one 商业回访
    (维修回访), linked to it and due 3 working days after the closing (《回访工作指引》)."""
    callback, closed = world.work_order["callback"], world.work_order["closed"]
    assert callback is not None and callback["type"] == "mall_callback"
    assert callback["data"]["callback_type"] == "维修回访" and callback["data"]["customer_name"] == "赵六"
    assert callback["data"]["target_number"] == closed["number"]
    assert callback["data"]["due_at"] == working_days_after(closed["status_at"]["已关闭"], 3)
    assert callback["sla"]["callback_due"]["due_at"] == callback["data"]["due_at"]


def test_003_4_1_3_the_engineer_is_told_the_same_working_day(world):
    """003 §4.1.3 (一般投诉 2): 物业客服中心在当日告知项目工程部专业工程师 — an 工程质量 complaint's ``engineer_told``
    clock (``working_days: 0``) ends at 23:59 of the intake's working day, of the next working day when it came in
    on a Saturday; forwarding meets it; other categories carry none."""
    monday = world.engineering["monday"]["sla"]["engineer_told"]
    assert monday["due_at"] == end_of("2026-11-16") and monday["window"] == {"working_days": 0}
    assert world.engineering["saturday"]["sla"]["engineer_told"]["due_at"] == end_of("2026-11-23")
    assert "engineer_told" not in world.engineering["property"]["sla"]
    assert world.engineering["forwarded"]["sla"]["engineer_told"]["met_at"] is not None


def test_002_a_handled_renovation_complaint_is_called_back_and_unsatisfied_goes_back_to_the_department(world):
    """002 客户投诉处理流程: 客服回访客户解决情况，满意结案，不满意反馈相关部门 — reaching 待回访 makes one 投诉回访
    due 3 working days later; 不满意 sends the 装修投诉 back to 已转部门, escalated to 重大 (重大客诉处理程序)."""
    callback, handled = world.reno["callback"], world.reno["handled"]
    assert callback["type"] == "callback" and callback["data"]["callback_type"] == "投诉回访"
    assert callback["data"]["target_number"] == handled["number"] and callback["data"]["customer_name"] == "郑十"
    assert callback["data"]["due_at"] == working_days_after(handled["status_at"]["待回访"], 3)
    assert callback["sla"]["callback_due"]["due_at"] == callback["data"]["due_at"]
    after = world.reno["after"]
    assert after["status"] == "已转部门" and after["data"]["level"] == "重大"
    assert after["callbacks"][0]["result"] == "不满意"


def test_002_month_end_complaint_analysis_counts_by_respondent_and_stage(world):
    """002 客户投诉处理流程 (月末): 月末将汇总分析后的客诉报表转相关部门，总结问题存在的根源 — the 装修投诉 analysis
    counts its top issues by 被投诉对象 and 阶段 (``report.issue_fields``)."""
    analysis = world.reno["analysis"]
    assert [f["key"] for f in analysis["issue_fields"]] == ["respondent", "stage"]
    assert analysis["top_issues"][:2] == [{"respondent": "施工队", "stage": "售中", "count": 2},
                                          {"respondent": "设计师", "stage": "售前", "count": 1}]


def test_002_a_finished_repair_is_called_back_about_the_result(world):
    """002 保修期间维修处理 (3): 维修处理完毕后电话回访，询问是否对维修结果满意 — marking the 装修报修 已解决 makes one
    报修回访 due 3 working days later; a 满意 answer closes the callback and leaves the repair as it is."""
    callback, fixed = world.reno_repair["callback"], world.reno_repair["fixed"]
    assert callback["type"] == "callback" and callback["data"]["callback_type"] == "报修回访"
    assert callback["data"]["target_number"] == fixed["number"]
    assert callback["data"]["due_at"] == working_days_after(fixed["status_at"]["已解决"], 3)
    assert world.reno_repair["answered"]["status"] == "已关闭"
    assert world.reno_repair["after"]["status"] == "已解决"


def test_002_the_weekly_callback_analysis_goes_out_every_tuesday(world):
    """002 在施工程电话回访制度 五: 客服专员每周要对电话回访情况分析、汇总，提交“周回访情况分析表”，于每周二上报部门经理
    — the renovation pack's ``callback_analysis`` list duty, run on Tuesday 24 November, lists the week's 在施工程节点回访
    (17–23 November) to the type's supervisors, not the older one nor that day's."""
    assert world.analysis["result"].startswith("records: 1;")
    note = world.db.notifications.find_one({"key": {"$regex": "^list:callback_analysis:2026-11-24:"}})
    assert note is not None and note["kind"] == "callback_analysis" and note["title"].startswith("周回访情况分析")
    assert world.analysis["last_week"]["number"] in note["body"]
    assert world.analysis["older"]["number"] not in note["body"]
    assert world.analysis["run_day"]["number"] not in note["body"]
    assert world.supervisor in {n["user"] for n in world.db.notifications.find(
        {"key": {"$regex": "^list:callback_analysis:"}})}


def test_002_listed_jobs_are_inspected_on_their_thursday(world):
    """002 工程预验收流程: 客服监察部每周四预验收 — each job on Wednesday's list carries the day it is inspected; the
    ``inspect`` clock is due at that day's end, met once the result is written, overdue when nobody inspected."""
    done, missed = world.inspection["done"]["sla"]["inspect"], world.inspection["missed"]["sla"]["inspect"]
    assert done["due_at"] == missed["due_at"] == end_of("2026-11-19") and done["until"] is True
    assert done["met_at"] is not None and done["state"] != "overdue"
    assert missed["met_at"] is None and missed["state"] == "overdue"
