"""Working-hours clocks (N 工作小时): time counted only inside the company's working hours on working days, the hours
kept and edited with the calendar (issue 18: "what teams that do not work nights expect")."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from kefu.calendar import workcalendar
from kefu.calendar.arithmetic import WorkCalendar
from kefu.calendar.working_hours import WorkingHours
from kefu.core.errors import ValidationFailed
from kefu.rules.clock_preview import preview_clock
from kefu.rules.shapes import Window
from tests.conftest import csrf_token

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def package_calendar():
    return WorkCalendar({day: (kind, name) for day, kind, name in workcalendar.package_entries()})


@pytest.mark.parametrize("start, hours, due", [
    (local(2026, 11, 16, 11, 0), 2, local(2026, 11, 16, 14, 0)),   # the lunch break is skipped
    (local(2026, 11, 16, 10, 0), 2, local(2026, 11, 16, 12, 0)),   # up to the lunch break exactly
    (local(2026, 11, 16, 17, 0), 2, local(2026, 11, 17, 10, 0)),   # the night is skipped
    (local(2026, 11, 16, 20, 0), 8, local(2026, 11, 17, 18, 0)),   # a whole day ends at 18:00, not 09:00 next day
    (local(2026, 11, 20, 16, 0), 4, local(2026, 11, 23, 11, 0)),   # Friday → Monday over the weekend
    (local(2025, 9, 30, 17, 0), 2, local(2025, 10, 9, 10, 0)),     # 国庆节+中秋节 2025: 10-1…10-8 off
    (local(2025, 9, 27, 10, 0), 1, local(2025, 9, 28, 10, 0)),     # Sunday 9-28 is a make-up workday
    (local(2026, 11, 16, 10, 0), 0, local(2026, 11, 16, 10, 0)),
])
def test_working_hours_count_only_working_time(package_calendar, start, hours, due):
    assert package_calendar.add_working_hours(start, hours, SHANGHAI) == due.astimezone(timezone.utc)
    assert Window.model_validate({"working_hours": hours}).due(start, package_calendar, SHANGHAI) == due


def test_hours_without_lunch_and_a_long_window(package_calendar):
    calendar = WorkCalendar(package_calendar.entries, hours=WorkingHours.parse({"start": "08:30", "end": "17:30"}))
    assert calendar.hours.seconds_per_day == 9 * 3600
    assert calendar.add_working_hours(local(2026, 11, 16, 12, 0), 1, SHANGHAI) == local(2026, 11, 16, 13, 0)
    # 90 hours = 10 working days from Monday 08:30: the 10th working day ends at 17:30.
    assert calendar.add_working_hours(local(2026, 11, 16, 8, 30), 90, SHANGHAI) == local(2026, 11, 27, 17, 30)


@pytest.mark.parametrize("data, where", [
    ({"start": "9点", "end": "18:00"}, "start"),
    ({"start": "18:00", "end": "09:00"}, "end"),
    ({"start": "09:00", "end": "18:00", "lunch_start": "12:00"}, "lunch_end"),
    ({"start": "09:00", "end": "18:00", "lunch_start": "19:00", "lunch_end": "20:00"}, "lunch_start"),
])
def test_bad_working_hours_are_refused_at_their_field(data, where):
    with pytest.raises(ValidationFailed) as refused:
        WorkingHours.parse(data)
    assert where in refused.value.fields


def test_the_clock_preview_shows_working_hours(package_calendar):
    answer = preview_clock({"start": "field:level=重大", "start_label": "等级", "within": {"working_hours": 2},
                            "sample": "2026-11-16T17:00"}, package_calendar, SHANGHAI)
    line = answer["lines"][0]
    assert line["due_at"] == "2026-11-17T10:00:00+08:00"
    assert line["text"].startswith("“等级”变为“重大”于 11-16 17:00 → 截止 11-17 10:00")
    assert "09:00–12:00、13:00–18:00" in line["text"]


def test_the_unit_picker_offers_working_hours():
    assert "working_hours" in Window.units
    assert str(Window.model_fields["working_hours"].title) == "工作小时"


def test_admin_edits_the_working_hours_on_the_calendar_screen(app, client, make_user, sign_in, calendar, db):
    make_user("boss", role="admin")
    sign_in("boss")
    page = client.get("/admin/calendar/")
    assert page.status_code == 200 and "保存工作时间" in page.get_data(as_text=True)
    token = csrf_token(client, "/admin/calendar/")
    refused = client.post("/admin/calendar/hours/", data={"csrf_token": token, "start": "18:00", "end": "09:00"})
    assert refused.status_code == 200 and "下班时间应晚于上班时间" in refused.get_data(as_text=True)
    assert not (db.calendar_state.find_one({"_id": "calendar"}) or {}).get("working_hours")
    saved = client.post("/admin/calendar/hours/", data={"csrf_token": token, "start": "08:30", "end": "17:30",
                                                        "lunch_start": "", "lunch_end": ""})
    assert saved.status_code == 302
    assert db.calendar_state.find_one({"_id": "calendar"})["working_hours"] == {
        "start": "08:30", "end": "17:30", "lunch_start": None, "lunch_end": None}
    with app.app_context():
        assert workcalendar.get_calendar().hours.text() == "08:30–17:30"


def test_admin_marks_a_year_complete_on_the_calendar_screen(app, client, make_user, sign_in, calendar, db):
    # issue 18 "Wrong today": a year counts as entered only when an admin marks it complete.
    make_user("boss", role="admin")
    sign_in("boss")
    assert "2027 年已录入完整" in client.get("/admin/calendar/").get_data(as_text=True)
    token = csrf_token(client, "/admin/calendar/")
    done = client.post("/admin/calendar/complete/", data={"csrf_token": token, "year": "2027", "complete": "1"})
    assert done.status_code == 302
    assert 2027 in db.calendar_state.find_one({"_id": "calendar"})["complete_years"]
    with app.app_context():
        assert workcalendar.get_calendar().is_workday(date(2027, 1, 1))
