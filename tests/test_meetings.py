"""座谈会 and its 议定事项 (004 顾客沟通): a meeting's agreed items are records of their own with an owner and a deadline,
linked to the meeting by the item type's ``parent:`` section (kefu.rules.parent), listed on the meeting's page and
overdue on 逾期督办 when late; the anchor stores and merchants are contacted every month (kefu.schedule.contacts).
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest

from seed.demo import DEMO_PASSWORD
from tests.test_pack_commercial import SHANGHAI, new, overdue_ids, stored


def meeting(**values) -> dict:
    return {"title": "2026 年第四季度商户座谈会", "counterpart": "商户", "held_at": "2026-12-01T14:00",
            "attendees": "营运部经理、商户代表 12 人", "minutes": "商户反映停车收费与促销安排", **values}


def day(offset: int) -> str:
    return (datetime.now(timezone.utc).astimezone(SHANGHAI).date() + timedelta(days=offset)).isoformat()


@pytest.fixture
def held(client, supervisor, seeded, calendar):
    """A meeting with two agreed items: one due next week (owner: the handler), one due yesterday (late)."""
    record = new(client, supervisor, "meeting", **meeting())
    on_time = new(client, supervisor, "meeting_item", meeting=record["number"], content="调整停车收费公示",
                  deadline=day(7), assignee="handler")
    late = new(client, supervisor, "meeting_item", meeting=record["number"], content="促销活动方案报营运部",
               deadline=day(-1))
    return {"meeting": record, "on_time": on_time, "late": late}


def test_004_meeting_lists_its_agreed_items_with_status_deadline_and_owner(client, sign_in, db, held):
    """004 顾客沟通 1 (跟踪会议议定事项的落实): the meeting's page lists both items, with owner, status, deadline and
    clock state, and offers 添加议定事项 linked to the item form prefilled with the meeting's number."""
    number = held["meeting"]["number"]
    assert {d["number"] for d in db.records.find({"type": "meeting_item", "data.meeting": number})} == {
        held["on_time"]["number"], held["late"]["number"]}
    sign_in("supervisor", DEMO_PASSWORD)
    page = client.get(f"/admin/records/meeting/details/?id={held['meeting']['id']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    section = html[html.index('data-child-type="meeting_item"'):]
    assert held["on_time"]["number"] in section and held["late"]["number"] in section
    assert "王志刚" in section                          # the owner of the first item
    assert "待落实" in section and day(7) in section and day(-1) in section
    assert "kefu-sla-overdue" in section                # the late one, marked
    assert "添加议定事项" in section
    assert f"/admin/records/meeting_item/new/?meeting={number}" in section.replace("&amp;", "&")


def test_004_add_button_opens_the_item_form_prefilled(client, sign_in, held):
    """The add button's link prefills the meeting's number; a number of no meeting is not prefilled."""
    sign_in("supervisor", DEMO_PASSWORD)
    number = held["meeting"]["number"]
    assert meeting_input(client, f"/admin/records/meeting_item/new/?meeting={number}") == number
    assert meeting_input(client, "/admin/records/meeting_item/new/?meeting=ZTH-209901-0001") == ""


def meeting_input(client, path: str) -> str:
    """The value the create form's 所属座谈会 input starts with."""
    response = client.get(path)
    assert response.status_code == 200
    tag = re.search(r'<input[^>]*\bid="meeting"[^>]*>', response.get_data(as_text=True)).group(0)
    value = re.search(r'\bvalue="([^"]*)"', tag)
    return value.group(1) if value else ""


def test_004_late_item_is_overdue_on_the_overdue_page(client, sign_in, db, held):
    """004 顾客沟通 1: an item past its deadline is overdue (stored clock, until its deadline) and on 逾期督办; the
    one due next week is not."""
    late = stored(db, held["late"]["id"])["sla"]["deliver"]
    assert late["until"] is True and late["state"] == "overdue"
    assert late["due_at"].replace(tzinfo=timezone.utc).astimezone(SHANGHAI).date().isoformat() == day(-1)
    assert stored(db, held["on_time"]["id"])["sla"]["deliver"]["state"] != "overdue"
    sign_in("supervisor", DEMO_PASSWORD)
    listed = overdue_ids(client, "meeting_item")
    assert held["late"]["id"] in listed and held["on_time"]["id"] not in listed


def test_004_item_bad_input_is_named_at_its_field(client, supervisor, db, held):
    """A number of no meeting, a malformed number and a missing deadline: 422 naming each field; nothing stored."""
    before = db.records.count_documents({"type": "meeting_item"})
    response = client.post("/api/v1/records/meeting_item", headers=supervisor,
                           json={"meeting": "ZTH-209901-0001", "content": "x", "deadline": day(3)})
    assert response.status_code in (400, 422)
    assert "没有编号为“ZTH-209901-0001”的座谈会" in response.get_json()["error"]["fields"]["meeting"]
    response = client.post("/api/v1/records/meeting_item", headers=supervisor,
                           json={"meeting": "第一次座谈会", "content": "x"})
    fields = response.get_json()["error"]["fields"]
    assert response.status_code in (400, 422) and fields["meeting"] and fields["deadline"]
    assert db.records.count_documents({"type": "meeting_item"}) == before


def test_parent_section_is_checked_when_a_type_is_saved(client, admin):
    """A ``parent:`` naming no text field or no type is refused with a message naming the section."""
    response = client.post("/api/v1/types", headers=admin, json={
        "key": "meeting_note", "name": "会议备忘", "name_en": "Meeting note", "number_prefix": "HYBW",
        "parent": {"type": "no_such_type", "field": "deadline"},
        "fields": [{"key": "deadline", "label": "期限", "label_en": "Deadline", "type": "date"}]})
    assert response.status_code in (400, 422)
    text = response.get_data(as_text=True)
    assert "parent.field" in text and "no_such_type" in text


def test_004_monthly_contacts_once_per_month(app, db, seeded, calendar):
    """004 沟通对象 1, 2: every month one contact per anchor store (grade A → 主力店, 物业管理部) and merchant
    (商户, 营运部) of the named mall projects, due by the month's last day; a second run that month makes none."""
    from kefu.org.customers import create_customer
    from kefu.org.structure import Project
    from kefu.schedule.duties import DUTY_BY_NAME

    duty = DUTY_BY_NAME["monthly_contacts"]
    with app.app_context():
        mall = Project(name="湖滨·银泰", code="HBYT").save()
        anchor = create_customer({"name": "银泰超市", "phone": "13911110001", "project": mall, "grade": "A"})
        for index, name in enumerate(("星巴克", "优衣库")):
            create_customer({"name": name, "phone": f"1391111010{index}", "project": mall, "grade": "B"})
        options = {**duty.options, "projects": ["HBYT"]}
        december = datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)
        assert duty.function(december, **duty.options).startswith("no commercial project")  # none by default
        first = duty.function(december, **options)
        again = duty.function(december + timedelta(days=3), **options)
        january = duty.function(datetime(2027, 1, 1, 1, 0, tzinfo=timezone.utc), **options)
    assert first.startswith("contacts created: 3") and again.startswith("contacts created: 0; already made this month: 3")
    assert january.startswith("contacts created: 3")
    made = list(db.records.find({"type": "meeting", "scheduled_contact.month": "2026-12"}))
    departments = {d["_id"]: d["name"] for d in db.departments.find()}
    by_customer = {d["customer"]: d for d in made}
    assert by_customer[anchor.id]["data"]["counterpart"] == "主力店"
    assert departments[by_customer[anchor.id]["department"]] == "物业管理部"
    assert sorted(d["data"]["counterpart"] for d in made) == ["主力店", "商户", "商户"]
    assert {departments[d["department"]] for d in made if d["data"]["counterpart"] == "商户"} == {"营运部"}
    due = by_customer[anchor.id]["sla"]["contact"]["due_at"].replace(tzinfo=timezone.utc).astimezone(SHANGHAI)
    assert due.date() == date(2026, 12, 31)


def test_meeting_page_in_english(client, sign_in, db, held):
    """The meeting's page after switching to English: the type, its fields and the items' group in English."""
    sign_in("supervisor", DEMO_PASSWORD)
    client.get("/locale/en?next=/admin/")
    html = client.get(f"/admin/records/meeting/details/?id={held['meeting']['id']}").get_data(as_text=True)
    fields = html[html.index("kefu-record"):html.index("</table>", html.index("kefu-record"))]
    assert "Counterpart" in fields and "Minutes" in fields and "沟通对象" not in fields and "会议纪要" not in fields
    children = html[html.index('data-child-type="meeting_item"'):]
    assert "Agreed item" in children and "Status" in children and "议定事项" not in children.split("</h5>")[0]


def test_004_the_mall_projects_and_anchor_grades_are_chosen_on_the_schedule_screen(app, client, sign_in, db, seeded,
                                                                                  calendar):
    """004 沟通对象: which projects' customers are merchants, and which grades are anchor stores, is data an admin
    picks on 定时任务 (a bad project code is refused at its field, nothing stored); the duty then runs with it."""
    from kefu.org.customers import create_customer
    from kefu.org.structure import Project
    from kefu.schedule.duties import current_duty
    from tests.conftest import csrf_token

    with app.app_context():
        mall = Project(name="湖滨·银泰", code="HBYT").save()
        create_customer({"name": "银泰超市", "phone": "13911110001", "project": mall, "grade": "B"})
    sign_in("admin", DEMO_PASSWORD)
    path = "/admin/schedules/monthly_contacts/"
    page = client.get(path).get_data(as_text=True)
    assert "湖滨·银泰" in page and "主力店的客户等级" in page
    form = {"csrf_token": csrf_token(client, path), "at": "09:00", "monthday": "1", "enabled": "y",
            "projects": ["HBYT", "NOPE"], "anchor_grades": ["B"]}
    refused = client.post(path, data=form).get_data(as_text=True)
    assert "项目不存在：NOPE" in refused and db.duty_schedules.count_documents({"_id": "monthly_contacts"}) == 0

    saved = client.post(path, data={**form, "projects": ["HBYT"]})

    assert saved.status_code == 302
    assert db.duty_schedules.find_one({"_id": "monthly_contacts"})["options"] == {"projects": ["HBYT"],
                                                                                 "anchor_grades": ["B"]}
    with app.app_context():
        duty = current_duty("monthly_contacts")
        assert duty.function(datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc), **duty.options).startswith(
            "contacts created: 1")
    assert db.records.find_one({"type": "meeting", "scheduled_contact.month": "2026-12"})["data"]["counterpart"] == \
        "主力店"
