"""Callbacks (kefu.rules.callbacks, the ``callback:`` sections of the shipped complaint, repair and commercial templates).

Closing creates one 回访 linked to the original, assigned to whoever registered it and due N working days later
on the real working-day calendar (seeded from chinesecalendar): 7 for the developer pack (003), 3 for the
commercial one (004). A satisfied answer closes the callback; 不满意 sends the original back to rework one level
up (kefu.rules.levels). Every test drives the real app over HTTP against a real mongod and checks the response and
what is stored.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from bson import ObjectId

from tests.conftest import csrf_token, token_headers
from tests.test_records_api import assert_error, complaint

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def calendar(app, seeded):
    """The working-day calendar as an installation has it: every year the chinesecalendar package knows."""
    from kefu.calendar.workcalendar import seed_calendar

    with app.app_context():
        assert seed_calendar() > 0


def is_workday(day: date) -> bool:
    """Independent of kefu: the package's answer (weekends and 1 Jan / 1 May / 1–3 Oct beyond its years)."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return day.weekday() < 5 and (day.month, day.day) not in {(1, 1), (5, 1), (10, 1), (10, 2), (10, 3)}


def working_days_after(moment: datetime, n: int) -> datetime:
    day = moment.astimezone(SHANGHAI).date()
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        counted += is_workday(day)
    return datetime.combine(day, time(23, 59, 59), tzinfo=SHANGHAI)


def patch(client, headers, type_key, record_id, **values):
    current = client.get(f"/api/v1/records/{type_key}/{record_id}", headers=headers).get_json()
    return client.patch(f"/api/v1/records/{type_key}/{record_id}", headers=headers,
                        json={"version": current["version"], **values})


def closed_complaint(client, agent, supervisor, **overrides) -> dict:
    """A complaint the agent registered and the supervisor closed; returns the closing response's record."""
    created = client.post("/api/v1/records/complaint", json=complaint(**overrides), headers=agent)
    assert created.status_code == 201, created.get_data(as_text=True)
    response = patch(client, supervisor, "complaint", created.get_json()["id"], status="已关闭",
                     result="已更换防水层，业主确认")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "已关闭"
    return response.get_json()


def callbacks_of(db, record_id) -> list[dict]:
    return list(db.records.find({"source.id": ObjectId(record_id)}).sort("created_at", 1))


def test_closing_creates_exactly_one_callback_due_7_working_days_later(app, client, agent, supervisor, db,
                                                                      calendar):
    closed = closed_complaint(client, agent, supervisor)

    original = db.records.find_one({"_id": ObjectId(closed["id"])})
    callback, = callbacks_of(db, closed["id"])
    closed_at = original["status_at"]["已关闭"]
    assert callback["type"] == "callback" and callback["status"] == "待受理"
    assert callback["source"] == {"type": "complaint", "id": original["_id"], "number": original["number"],
                                  "closed_at": closed_at, "due_at": callback["data"]["due_at"],
                                  "within": {"working_days": 7}, "due_field": "due_at"}
    assert callback["data"]["due_at"] == working_days_after(closed_at, 7)
    assert callback["assignee"] == db.users.find_one({"username": "agent"})["_id"] == original["created_by"]
    assert callback["data"]["target_number"] == original["number"]
    assert callback["data"]["callback_type"] == "投诉回访" and callback["data"]["customer_name"] == "张三"
    assert callback["customer"] == original["customer"] and "phone" in callback["pii"]
    # Made by the system, seen where the complaint is: its department's supervisors follow the callback up.
    assert callback["created_department"] == original["created_department"] is not None
    assert client.get(f"/api/v1/records/callback/{callback['_id']}", headers=supervisor).status_code == 200
    assert original["callbacks"] == [{"type": "callback", "id": callback["_id"], "number": callback["number"],
                                      "closed_at": closed_at, "due_at": callback["data"]["due_at"], "result": None}]
    note = db.record_events.find_one({"record_id": original["_id"], "kind": "callback"})
    assert callback["number"] in note["text"] and "7 个工作日" in note["text"]

    # The callback reads back through the API with its deadline in local time.
    shown = client.get(f"/api/v1/records/callback/{callback['_id']}", headers=agent).get_json()
    assert shown["due_at"] == working_days_after(closed_at, 7).isoformat()
    assert shown["phone"] == "138****5678"  # the agent sees it masked, as on the original


def test_running_the_rule_again_creates_no_second_callback(app, client, agent, supervisor, db, calendar):
    from kefu.records import lifecycle
    from kefu.records.actor import system_actor
    from kefu.records.types import get_record_type
    from kefu.rules import callbacks

    closed = closed_complaint(client, agent, supervisor)
    with app.test_request_context():
        record_type = get_record_type("complaint")
        document = db.records.find_one({"_id": ObjectId(closed["id"])})
        again = callbacks.create_callback(record_type, document, system_actor())
        lifecycle.after_save(record_type, document, {"status": "待受理"}, {"status"}, system_actor())

    callback, = callbacks_of(db, closed["id"])
    assert again["_id"] == callback["_id"]
    assert len(db.records.find_one({"_id": ObjectId(closed["id"])})["callbacks"]) == 1
    assert db.records.count_documents({"type": "callback"}) == 1


def test_each_closing_gets_its_own_callback(client, agent, supervisor, db, calendar):
    closed = closed_complaint(client, agent, supervisor)
    assert patch(client, supervisor, "complaint", closed["id"], status="重新打开").status_code == 200
    assert patch(client, supervisor, "complaint", closed["id"], status="处理中").status_code == 200
    assert patch(client, supervisor, "complaint", closed["id"], status="已关闭").status_code == 200

    first, second = callbacks_of(db, closed["id"])
    assert first["source"]["closed_at"] < second["source"]["closed_at"]
    assert [c["id"] for c in db.records.find_one({"_id": ObjectId(closed["id"])})["callbacks"]] == [
        first["_id"], second["_id"]]


def test_a_satisfied_answer_closes_the_callback_and_leaves_the_original_closed(client, agent, supervisor, db,
                                                                               calendar):
    closed = closed_complaint(client, agent, supervisor)
    callback, = callbacks_of(db, closed["id"])

    response = patch(client, agent, "callback", str(callback["_id"]), result="满意", called_at="2026-11-24 10:00",
                     opinion="维修及时")

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "已关闭"
    stored = db.records.find_one({"_id": callback["_id"]})
    assert stored["status"] == "已关闭" and stored["outcome"]["result"] == "满意"
    assert stored["outcome"]["rejected"] is False
    original = db.records.find_one({"_id": ObjectId(closed["id"])})
    assert original["status"] == "已关闭" and original["data"]["level"] == "一般"
    assert original["callbacks"][0]["result"] == "满意"
    assert db.record_events.find_one({"record_id": original["_id"], "kind": "callback", "text": {"$regex": "满意"}})


def test_an_unsatisfied_answer_reopens_the_original_one_level_up(client, agent, supervisor, db, calendar):
    closed = closed_complaint(client, agent, supervisor)
    callback, = callbacks_of(db, closed["id"])

    response = patch(client, agent, "callback", str(callback["_id"]), result="不满意",
                     called_at="2026-11-24 10:00", opinion="仍然漏水")

    assert response.status_code == 200, response.get_data(as_text=True)
    original = db.records.find_one({"_id": ObjectId(closed["id"])})
    assert original["status"] == "处理中"  # the workflow's rework status
    assert original["data"]["level"] == "重要"  # one level up from 一般
    assert original["callbacks"][0]["result"] == "不满意"
    stored = db.records.find_one({"_id": callback["_id"]})
    assert stored["status"] == "已关闭" and stored["outcome"] == {**stored["outcome"], "result": "不满意",
                                                                  "rejected": True}

    # Saving the callback again does not raise the level a second time.
    assert patch(client, agent, "callback", str(callback["_id"]), opinion="仍然漏水，已再次派工").status_code == 200
    assert db.records.find_one({"_id": ObjectId(closed["id"])})["data"]["level"] == "重要"

    # Handled again and closed: the next callback is due.
    assert patch(client, supervisor, "complaint", closed["id"], status="已关闭").status_code == 200
    assert len(callbacks_of(db, closed["id"])) == 2


def test_a_repair_is_called_back_too(client, agent, supervisor, db, calendar):
    created = client.post("/api/v1/records/repair", headers=agent, json={
        "contact_name": "李四", "phone": "13912345678", "project": "云栖·江南府", "unit": "1幢1单元101",
        "problem": "厨房水管渗水"})
    assert created.status_code == 201, created.get_data(as_text=True)
    record_id = created.get_json()["id"]

    response = patch(client, supervisor, "repair", record_id, status="已关闭", fixed_at="2026-11-23 15:00",
                     repair_record="更换三通")

    assert response.status_code == 200, response.get_data(as_text=True)
    callback, = callbacks_of(db, record_id)
    original = db.records.find_one({"_id": ObjectId(record_id)})
    assert callback["data"]["callback_type"] == "报修回访" and callback["data"]["customer_name"] == "李四"
    assert callback["data"]["due_at"] == working_days_after(original["status_at"]["已关闭"], 7)


def test_a_commercial_complaint_is_called_back_within_3_working_days(client, agent, supervisor, db, calendar):
    created = client.post("/api/v1/records/mall_complaint", headers=agent, json={
        "channel": "来电", "complainant_name": "王五", "phone": "13712345678", "category": "商品",
        "content": "购买的商品有质量问题"})
    assert created.status_code == 201, created.get_data(as_text=True)
    record_id = created.get_json()["id"]

    response = patch(client, supervisor, "mall_complaint", record_id, status="已关闭", result="已退货")

    assert response.status_code == 200, response.get_data(as_text=True)
    callback, = callbacks_of(db, record_id)
    original = db.records.find_one({"_id": ObjectId(record_id)})
    assert callback["type"] == "mall_callback" and callback["number"].startswith("SYHF-")
    assert callback["data"]["due_at"] == working_days_after(original["status_at"]["已关闭"], 3)
    assert callback["data"]["customer_name"] == "王五" and callback["data"]["callback_type"] == "投诉回访"


@pytest.mark.parametrize("type_key, days, due", [
    # Closed Tuesday 30 Sep 2025 10:00: 1–8 Oct off (国庆节, 中秋节); Saturday 11 Oct is a make-up workday.
    ("complaint", 7, datetime(2025, 10, 16, 23, 59, 59, tzinfo=SHANGHAI)),
    ("mall_complaint", 3, datetime(2025, 10, 11, 23, 59, 59, tzinfo=SHANGHAI)),
])
def test_the_deadline_skips_holidays_and_counts_make_up_days(app, db, calendar, type_key, days, due):
    from kefu.records.types import get_record_type
    from kefu.rules import callbacks

    with app.app_context():
        rules = callbacks.rules_of(get_record_type(type_key))
        closed_at = datetime(2025, 9, 30, 10, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)

        assert rules.amount == days and rules.due(closed_at, SHANGHAI) == due


def test_both_details_pages_show_the_link(app, client, agent, supervisor, db, calendar):
    from seed.demo import DEMO_PASSWORD

    closed = closed_complaint(client, agent, supervisor)
    callback, = callbacks_of(db, closed["id"])
    browser = app.test_client()
    token = csrf_token(browser, "/login")
    browser.post("/login", data={"username": "agent", "password": DEMO_PASSWORD, "csrf_token": token})

    original_page = browser.get(f"/admin/records/complaint/details/?id={closed['id']}").get_data(as_text=True)
    callback_page = browser.get(f"/admin/records/callback/details/?id={callback['_id']}").get_data(as_text=True)

    assert "kefu-links" in original_page and callback["number"] in original_page
    assert f"/admin/records/callback/details/?id={callback['_id']}" in original_page
    assert "kefu-links" in callback_page and closed["number"] in callback_page
    assert f"/admin/records/complaint/details/?id={closed['id']}" in callback_page


@pytest.mark.parametrize("change, words", [
    (lambda s: s.update({"within": {"weeks": 1}}), ["working_days"]),
    (lambda s: s.update({"within": {"working_days": -1}}), ["不小于 0"]),
    (lambda s: s.update({"on_status": "归档"}), ["归档", "不在流程状态中"]),
    (lambda s: s.update({"rejected_values": ["很差"]}), ["很差", "可选项"]),
    (lambda s: s.update({"due_field": "called_on"}), ["called_on"]),
    (lambda s: s.update({"copy": {"nothing": "customer_name"}}), ["nothing"]),
    (lambda s: s.update({"type": "complaint"}), ["本类型自己"]),
])
def test_a_bad_callback_section_is_refused_with_a_chinese_message(client, seeded, db, change, words):
    admin = token_headers(client, "admin")
    definition = client.get("/api/v1/types/complaint", headers=admin).get_json()
    version = db.record_types.find_one({"key": "complaint"})["version"]
    change(definition["callback"])

    response = client.put("/api/v1/types/complaint", headers=admin, json=definition)

    message = assert_error(response, 422, "validation_failed")["fields"]["callback"]
    for word in words:
        assert word in message, message
    assert db.record_types.find_one({"key": "complaint"})["version"] == version


# The callback's deadline clock (the callback type's ``sla:``: start created, until its due field) — as the packs
# ship it; put here so the test does not depend on which pack is installed.
CALLBACK_CLOCK = [{"key": "callback_due", "name": "按期回访", "start": "created", "within": {"working_days": 7},
                   "until": "due_at", "done_when": {"status": ["已关闭"]}}]


def give_callbacks_a_clock(client, db) -> None:
    admin = token_headers(client, "admin")
    definition = client.get("/api/v1/types/callback", headers=admin).get_json()
    definition["sla"] = CALLBACK_CLOCK
    response = client.put("/api/v1/types/callback", headers=admin, json=definition)
    assert response.status_code == 200, response.get_data(as_text=True)


# 003 §4.1.3 (called back within 7 working days of closing): a callback not made by its due date stays on the
# overdue list — it does not disappear after its due day.
def test_a_missed_callback_stays_overdue(app, client, agent, supervisor, db, calendar):
    from kefu.records.types import get_record_type
    from kefu.rules import sla

    give_callbacks_a_clock(client, db)
    closed = closed_complaint(client, agent, supervisor)
    callback, = callbacks_of(db, closed["id"])
    due = callback["data"]["due_at"]
    assert callback["sla"]["callback_due"]["due_at"] == due and callback["sla_due"] == due

    with app.app_context():
        sla.refresh(get_record_type("callback"), callback["_id"], now=due + timedelta(days=3))

    late = db.records.find_one({"_id": callback["_id"]})
    assert late["sla"]["callback_due"]["state"] == "overdue" and late["sla_live"] == 1
    # Made and answered: the callback closes and its clock stops.
    answered = patch(client, agent, "callback", str(callback["_id"]), result="满意", called_at="2026-11-24 10:00")
    assert answered.status_code == 200, answered.get_data(as_text=True)
    done = db.records.find_one({"_id": callback["_id"]})
    assert done["sla"]["callback_due"]["met_at"] is not None and done["sla_live"] == 0


# The callback deadline is counted on the working-day calendar (003 §4.1.3: 7 working days): a day off entered
# after the closing moves it, on the callback, its link on the original and its clock.
def test_the_callback_due_date_follows_a_calendar_edit(app, client, agent, supervisor, db, calendar):
    from kefu.calendar import workcalendar

    give_callbacks_a_clock(client, db)
    closed = closed_complaint(client, agent, supervisor)
    callback, = callbacks_of(db, closed["id"])
    closed_at = callback["source"]["closed_at"]
    first_workday = working_days_after(closed_at, 1).date()

    with app.test_request_context():
        workcalendar.set_day(first_workday, "holiday", "公司团建")

    moved = db.records.find_one({"_id": callback["_id"]})
    assert moved["data"]["due_at"] == working_days_after(closed_at, 8)  # one working day fewer in the window
    assert moved["source"]["due_at"] == moved["data"]["due_at"] == moved["sla"]["callback_due"]["due_at"]
    original = db.records.find_one({"_id": ObjectId(closed["id"])})
    assert original["callbacks"][0]["due_at"] == moved["data"]["due_at"]
    assert db.record_events.find_one({"record_id": callback["_id"], "kind": "callback",
                                      "text": {"$regex": "工作日历已调整"}})
    shown = client.get(f"/api/v1/records/callback/{callback['_id']}", headers=agent).get_json()
    assert shown["due_at"] == working_days_after(closed_at, 8).isoformat()

    # Entered again the other way (the day worked after all), the date comes back.
    with app.test_request_context():
        workcalendar.remove_day(first_workday)
    assert db.records.find_one({"_id": callback["_id"]})["data"]["due_at"] == working_days_after(closed_at, 7)
