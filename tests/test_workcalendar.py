"""The working-day calendar: seeded holidays, deadlines counted on it, the admin screen, versions, listeners.

Expected values come from the State Council notices (as carried by chinesecalendar 1.11.0):
2025 国庆节+中秋节 10月1日至8日放假，9月28日（周日）、10月11日（周六）上班；
2026 春节 2月15日至23日放假，2月14日（周六）、2月28日（周六）上班；
2024 端午节 6月10日（周一）放假，与周末连休（6月8日至10日）。
"""
from __future__ import annotations

import time
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from kefu.calendar import workcalendar
from kefu.calendar.arithmetic import WorkCalendar
from kefu.calendar.days import CalendarDay
from kefu.calendar.workcalendar import CalendarCache, get_calendar, seed_calendar
from kefu.core.errors import Conflict, NotFound, ValidationFailed
from tests.conftest import csrf_token

SHANGHAI = ZoneInfo("Asia/Shanghai")
PACKAGE_ENTRIES = 621 + 150  # chinesecalendar 1.11.0: holidays + make-up workdays, 2004–2026


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def end_of_day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=SHANGHAI).astimezone(timezone.utc)


@pytest.fixture
def seeded(app):
    """The calendar seeded from chinesecalendar (what the launcher does at start)."""
    with app.app_context():
        assert seed_calendar() == PACKAGE_ENTRIES
    return app


@pytest.fixture(scope="module")
def seeded_calendar(mongo_server, redis_server):
    """A WorkCalendar loaded from a database seeded from chinesecalendar; one database for the module's
    read-only computation tests (the snapshot is pure in-memory, so later apps may reconnect freely)."""
    import uuid

    from pymongo import MongoClient

    from app import create_app
    from tests.conftest import TEST_DATA_KEY, TEST_SECRET_KEY

    name = f"kefu_test_calendar_{uuid.uuid4().hex[:8]}"
    app = create_app({"TESTING": True, "MONGODB_URI": mongo_server.uri, "MONGODB_DB": name,
                      "REDIS_URL": redis_server.url, "SECRET_KEY": TEST_SECRET_KEY, "KEFU_DATA_KEY": TEST_DATA_KEY})
    with app.app_context():
        assert seed_calendar() == PACKAGE_ENTRIES
        calendar = WorkCalendar.load()
    yield calendar
    MongoClient(mongo_server.uri).drop_database(name)


@pytest.fixture
def calls():
    """Records the listener calls of calendar edits."""
    seen = []

    def listener(first, last):
        seen.append((first, last))

    workcalendar.on_change(listener)
    yield seen
    workcalendar.remove_listener(listener)


@pytest.fixture
def admin_client(client, make_user, sign_in):
    make_user("calendar_admin", role="admin")
    assert sign_in("calendar_admin").status_code == 302
    return client


# -- seeding ----------------------------------------------------------------------------------------

def test_seed_enters_every_year_the_package_knows_in_one_bulk_insert(app, db):
    with app.app_context():
        started = time.perf_counter()
        created = seed_calendar()
        seconds = time.perf_counter() - started
    assert created == PACKAGE_ENTRIES
    assert seconds < 1.0, f"seeding took {seconds:.2f} s"
    assert db.calendar_days.count_documents({}) == PACKAGE_ENTRIES
    assert sorted(db.calendar_state.find_one({"_id": "calendar"})["seeded_years"]) == list(range(2004, 2027))
    national_day = {row["day"].date(): (row["kind"], row["name"]) for row in
                    db.calendar_days.find({"year": 2025, "day": {"$gte": datetime(2025, 9, 28),
                                                                 "$lte": datetime(2025, 10, 11)}})}
    assert national_day == {
        date(2025, 9, 28): ("workday", "国庆节"),
        **{date(2025, 10, d): ("holiday", "国庆节") for d in (1, 2, 3, 4, 5, 7, 8)},
        date(2025, 10, 6): ("holiday", "中秋节"),
        date(2025, 10, 11): ("workday", "国庆节"),
    }


def test_get_calendar_does_not_seed_an_empty_calendar(app, db):
    with app.app_context():
        calendar = get_calendar()
    assert calendar.entered_years() == set()
    assert db.calendar_days.count_documents({}) == 0


def test_seeding_again_adds_nothing_and_keeps_admin_edits_and_deletions(seeded, db):
    with seeded.app_context():
        workcalendar.set_day(date(2025, 10, 6), "holiday", "中秋节（公司）", by="boss")
        workcalendar.remove_day(date(2025, 10, 7), by="boss")
        version = workcalendar.stored_version()
        assert seed_calendar() == 0
        assert workcalendar.stored_version() == version  # nothing changed: no bump
    assert db.calendar_days.count_documents({}) == PACKAGE_ENTRIES - 1
    assert db.calendar_days.find_one({"day": datetime(2025, 10, 7)}) is None
    edited = db.calendar_days.find_one({"day": datetime(2025, 10, 6)})
    assert (edited["name"], edited["source"], edited["updated_by"]) == ("中秋节（公司）", "admin", "boss")


def test_seed_keeps_a_day_an_admin_entered_before_seeding(app, db):
    with app.app_context():
        workcalendar.set_day(date(2026, 10, 8), "holiday", "公司调休", by="boss")   # not in the package
        workcalendar.set_day(date(2026, 10, 7), "holiday", "公司假期", by="boss")   # in the package (国庆节)
        assert seed_calendar() == PACKAGE_ENTRIES - 1
    assert db.calendar_days.find_one({"day": datetime(2026, 10, 7)})["name"] == "公司假期"
    assert db.calendar_days.find_one({"day": datetime(2026, 10, 8)})["name"] == "公司调休"


# -- computations on the seeded calendar ------------------------------------------------------------

def test_national_day_2025(seeded_calendar):
    calendar = seeded_calendar
    assert calendar.is_workday(date(2025, 9, 28))      # Sunday, 调休上班
    assert calendar.is_workday(date(2025, 10, 11))     # Saturday, 调休上班
    assert not any(calendar.is_workday(date(2025, 10, d)) for d in range(1, 9))
    assert not calendar.is_workday(date(2025, 10, 12))  # plain Sunday
    assert calendar.day_entry(date(2025, 10, 1)) == ("holiday", "国庆节")
    assert calendar.day_entry(date(2025, 9, 28)) == ("workday", "国庆节")
    assert calendar.day_entry(date(2025, 10, 9)) is None

    due = calendar.add_working_days(local(2025, 9, 30, 16, 0), 7, SHANGHAI)
    assert due == local(2025, 10, 16, 23, 59, 59) and due.tzinfo == timezone.utc
    explained = calendar.explain_working_days(local(2025, 9, 30, 16, 0), 7, SHANGHAI)
    assert explained == {
        "due_at": due,
        "skipped": [{"first": date(2025, 10, 1), "last": date(2025, 10, 8), "name": "国庆节"},
                    {"first": date(2025, 10, 12), "last": date(2025, 10, 12), "name": "周末"}],
        "makeup": [{"day": date(2025, 10, 11), "name": "国庆节"}],
        "fallback_years": [],
    }
    # The same instant given in UTC (08:00 UTC = 16:00 Shanghai) and as a naive UTC value.
    assert calendar.add_working_days(datetime(2025, 9, 30, 8, 0, tzinfo=timezone.utc), 7, SHANGHAI) == due
    assert calendar.add_working_days(datetime(2025, 9, 30, 8, 0), 7, SHANGHAI) == due
    # 17:00 UTC on 9-30 is already 10-01 in Shanghai: the count starts from the holiday.
    assert calendar.add_working_days(datetime(2025, 9, 30, 17, 0, tzinfo=timezone.utc), 1, SHANGHAI) \
        == end_of_day(date(2025, 10, 9))


def test_spring_festival_2026(seeded_calendar):
    calendar = seeded_calendar
    assert calendar.is_workday(date(2026, 2, 14)) and calendar.is_workday(date(2026, 2, 28))  # Saturdays
    assert not any(calendar.is_workday(date(2026, 2, d)) for d in range(15, 24))
    assert calendar.add_working_days(local(2026, 2, 13, 10, 0), 1, SHANGHAI) == end_of_day(date(2026, 2, 14))
    assert calendar.add_working_days(local(2026, 2, 13, 10, 0), 2, SHANGHAI) == end_of_day(date(2026, 2, 24))
    # (2-13, 2-28]: 2-14, 2-24, 2-25, 2-26, 2-27, 2-28
    assert calendar.working_days_between(date(2026, 2, 13), date(2026, 2, 28)) == 6
    assert calendar.working_days_between(date(2026, 2, 28), date(2026, 2, 13)) == -6
    assert calendar.working_days_between(date(2026, 2, 16), date(2026, 2, 16)) == 0
    explained = calendar.explain_working_days(local(2026, 2, 13, 10, 0), 2, SHANGHAI)
    assert explained["skipped"] == [{"first": date(2026, 2, 15), "last": date(2026, 2, 23), "name": "春节"}]
    assert explained["makeup"] == [{"day": date(2026, 2, 14), "name": "春节"}]


def test_weekend_next_to_a_monday_holiday_joins_its_run(seeded_calendar):
    calendar = seeded_calendar
    explained = calendar.explain_working_days(local(2024, 6, 7, 9, 0), 1, SHANGHAI)
    assert explained["due_at"] == end_of_day(date(2024, 6, 11))
    assert explained["skipped"] == [{"first": date(2024, 6, 8), "last": date(2024, 6, 10), "name": "端午节"}]
    assert explained["makeup"] == []


def test_zero_working_days_end_today_or_on_the_next_working_day(seeded_calendar):
    calendar = seeded_calendar
    assert calendar.add_working_days(local(2025, 10, 9, 8, 0), 0, SHANGHAI) == end_of_day(date(2025, 10, 9))
    assert calendar.add_working_days(local(2025, 10, 4, 8, 0), 0, SHANGHAI) == end_of_day(date(2025, 10, 9))
    explained = calendar.explain_working_days(local(2025, 10, 4, 8, 0), 0, SHANGHAI)
    assert explained["skipped"] == [{"first": date(2025, 10, 4), "last": date(2025, 10, 8), "name": "国庆节"}]
    with pytest.raises(ValueError):
        calendar.add_working_days(local(2025, 10, 4, 8, 0), -1, SHANGHAI)


def test_an_unentered_year_falls_back_to_weekends_and_fixed_holidays(seeded_calendar):
    calendar = seeded_calendar
    assert calendar.entered_years() == set(range(2004, 2027))
    assert calendar.missing_years(date(2026, 11, 22)) == [2027]
    assert calendar.missing_years(date(2025, 3, 1)) == []
    assert calendar.day_entry(date(2027, 1, 1)) == ("holiday", "元旦")
    assert not calendar.is_workday(date(2027, 1, 1))       # Friday, 元旦
    assert calendar.is_workday(date(2027, 1, 4))           # Monday
    assert [calendar.is_workday(date(2027, 10, d)) for d in range(1, 5)] == [False, False, False, True]
    assert not calendar.is_workday(date(2027, 5, 1))
    # A deadline in January 2027 is computed today without a crash.
    explained = calendar.explain_working_days(local(2026, 12, 31, 10, 0), 1, SHANGHAI)
    assert explained == {
        "due_at": end_of_day(date(2027, 1, 4)),
        "skipped": [{"first": date(2027, 1, 1), "last": date(2027, 1, 3), "name": "元旦"}],
        "makeup": [],
        "fallback_years": [2027],
    }


def test_a_company_day_off_alone_does_not_make_a_year_entered(app):
    with app.app_context():
        workcalendar.set_day(date(2027, 2, 3), "holiday", "公司年会", by="boss")
        calendar = get_calendar()
        assert calendar.missing_years(date(2026, 11, 22)) == [2026, 2027]
        assert not calendar.is_workday(date(2027, 2, 3)) and not calendar.is_workday(date(2027, 1, 1))


def test_one_festival_entered_keeps_the_year_missing_and_the_other_fallbacks(app, db):
    # issue 18 "Wrong today": a single 2027 holiday must not mark the whole year as entered.
    with app.app_context():
        workcalendar.set_range(date(2027, 10, 1), date(2027, 10, 7), "holiday", "国庆节", by="boss")
        calendar = get_calendar()
        assert calendar.missing_years(date(2026, 11, 22)) == [2026, 2027]
        assert not calendar.is_workday(date(2027, 1, 1))   # 元旦 not entered: its fallback stays
        assert not calendar.is_workday(date(2027, 10, 7))  # the entered run counts as entered
        assert calendar.festivals_entered(2027) == {"国庆"}
        # 元旦 entered on other days: its 1 January fallback gives way to the entries.
        workcalendar.set_range(date(2027, 1, 2), date(2027, 1, 3), "holiday", "元旦", by="boss")
        assert get_calendar().is_workday(date(2027, 1, 1))
        workcalendar.set_year_complete(2027, by="boss")
        calendar = get_calendar()
    assert calendar.missing_years(date(2026, 11, 22)) == [2026]
    assert db.calendar_state.find_one({"_id": "calendar"})["complete_years"] == [2027]
    assert calendar.explain_working_days(local(2027, 4, 30, 9, 0), 1, SHANGHAI)["fallback_years"] == []


def test_an_import_covering_every_festival_enters_the_year(app, db):
    rows = [(date(2027, 1, 1), date(2027, 1, 1), "holiday", "元旦"), (date(2027, 2, 6), date(2027, 2, 13), "holiday", "春节"),
            (date(2027, 4, 5), date(2027, 4, 5), "holiday", "清明节"), (date(2027, 5, 1), date(2027, 5, 5), "holiday", "劳动节"),
            (date(2027, 6, 9), date(2027, 6, 9), "holiday", "端午节"), (date(2027, 9, 15), date(2027, 9, 15), "holiday", "中秋节")]
    with app.app_context():
        workcalendar.load_entries(rows, by="boss")
        assert get_calendar().missing_years(date(2027, 3, 1)) == [2027, 2028]  # 国庆节 still missing
        workcalendar.load_entries([(date(2027, 10, 1), date(2027, 10, 7), "holiday", "国庆节")], by="boss")
        calendar = get_calendar()
    assert calendar.missing_years(date(2027, 3, 1)) == [2028]
    assert db.calendar_days.count_documents({"year": 2027}) == 24


def test_marking_a_year_complete_is_checked_and_undone(app, db):
    with app.app_context():
        with pytest.raises(ValidationFailed) as refused:
            workcalendar.set_year_complete(1999, by="boss")
        assert "2000" in str(refused.value.message)
        assert not get_calendar().is_workday(date(2027, 1, 1))  # Friday: the 元旦 fallback
        workcalendar.set_year_complete(2027, by="boss")
        assert get_calendar().is_workday(date(2027, 1, 1))      # complete: no fallback at all
        workcalendar.set_year_complete(2027, False, by="boss")
        assert 2027 not in get_calendar().entered_years()
        assert not get_calendar().is_workday(date(2027, 1, 1))
    assert db.calendar_state.find_one({"_id": "calendar"})["complete_years"] == []


def test_the_in_memory_calendar_matches_the_package():
    import chinese_calendar

    calendar = WorkCalendar({day: (kind, name) for day, kind, name in workcalendar.package_entries()})
    day = date(2004, 1, 1)
    while day <= date(2026, 12, 31):
        assert calendar.is_workday(day) == chinese_calendar.is_workday(day), day
        day = date.fromordinal(day.toordinal() + 1)


# -- edits: refusals, version, listeners, caches ----------------------------------------------------

def test_refusals_say_what_is_wrong(app, db):
    with app.app_context():
        with pytest.raises(ValidationFailed) as refused:
            workcalendar.set_day(date(2027, 10, 12), "workday", "国庆节")
        assert "2027-10-12 是星期二" in str(refused.value) and "只能设在星期六或星期日" in str(refused.value)
        with pytest.raises(ValidationFailed):
            workcalendar.set_day(date(2027, 10, 9), "holiday", "  ")
        with pytest.raises(ValidationFailed):
            workcalendar.set_day(date(2027, 10, 9), "off", "国庆节")
        with pytest.raises(ValidationFailed):
            workcalendar.set_day(date(1999, 10, 9), "holiday", "国庆节")
        workcalendar.add_day(date(2027, 10, 9), "workday", "国庆节")  # Saturday: fine
        with pytest.raises(Conflict) as duplicate:
            workcalendar.add_day(date(2027, 10, 9), "holiday", "国庆节")
        assert "2027-10-09 已有条目" in str(duplicate.value)
        with pytest.raises(ValidationFailed) as backwards:
            workcalendar.set_range(date(2027, 10, 7), date(2027, 10, 1), "holiday", "国庆节")
        assert "结束日期不能早于开始日期" in str(backwards.value)
        with pytest.raises(ValidationFailed) as weekdays:
            workcalendar.set_range(date(2027, 9, 25), date(2027, 9, 27), "workday", "国庆节")
        assert "2027-09-27" in str(weekdays.value)
        with pytest.raises(NotFound):
            workcalendar.remove_day(date(2027, 10, 1))
    assert db.calendar_days.count_documents({}) == 1


def test_every_edit_bumps_the_version_and_calls_the_listeners(app, calls):
    with app.app_context():
        assert workcalendar.stored_version() == 0
        workcalendar.set_day(date(2027, 1, 1), "holiday", "元旦", by="boss")
        assert workcalendar.stored_version() == 1 and calls == [(date(2027, 1, 1), date(2027, 1, 1))]
        assert get_calendar().version == 1 and get_calendar().day_entry(date(2027, 1, 1)) == ("holiday", "元旦")
        workcalendar.set_range(date(2027, 10, 1), date(2027, 10, 7), "holiday", "国庆节", by="boss")
        assert workcalendar.stored_version() == 2 and calls[-1] == (date(2027, 10, 1), date(2027, 10, 7))
        workcalendar.remove_day(date(2027, 10, 7), by="boss")
        assert workcalendar.stored_version() == 3 and calls[-1] == (date(2027, 10, 7), date(2027, 10, 7))
        entry = CalendarDay.objects(day=date(2027, 10, 6)).get()
        workcalendar.update_day(entry, date(2027, 10, 9), "workday", "国庆节", by="boss")  # moved to a Saturday
        assert workcalendar.stored_version() == 4 and calls[-1] == (date(2027, 10, 6), date(2027, 10, 9))
        assert seed_calendar() == PACKAGE_ENTRIES
        assert workcalendar.stored_version() == 5 and calls[-1] == (date(2004, 1, 1), date(2026, 10, 10))
        assert len(calls) == 5
        with pytest.raises(ValidationFailed):
            workcalendar.set_day(date(2027, 10, 12), "workday", "国庆节")
        assert workcalendar.stored_version() == 5 and len(calls) == 5  # a refused edit changes nothing


def test_a_failing_listener_does_not_undo_the_edit(app, calls, caplog):
    def broken(first, last):
        raise RuntimeError("recompute failed")

    workcalendar.on_change(broken)
    try:
        with app.app_context():
            workcalendar.set_day(date(2027, 1, 1), "holiday", "元旦")
            assert get_calendar().day_entry(date(2027, 1, 1)) == ("holiday", "元旦")
    finally:
        workcalendar.remove_listener(broken)
    assert calls == [(date(2027, 1, 1), date(2027, 1, 1))]
    assert "recompute failed" in caplog.text


def test_another_process_sees_an_edit_after_its_next_version_check(app):
    now = [1000.0]
    other_process = CalendarCache(max_age=2.0, clock=lambda: now[0])
    with app.app_context():
        before = other_process.get()
        assert before.is_workday(date(2027, 2, 5))
        workcalendar.set_day(date(2027, 2, 5), "holiday", "公司年会")
        assert get_calendar().day_entry(date(2027, 2, 5)) == ("holiday", "公司年会")  # this process: at once
        now[0] += 1.0
        assert other_process.get() is before              # checked less than 2 s ago: no query
        now[0] += 1.5
        after = other_process.get()                        # version moved: reloaded
        assert after.version == before.version + 1 and not after.is_workday(date(2027, 2, 5))
        now[0] += 5.0
        assert other_process.get() is after               # version unchanged: the same snapshot


# -- admin screen -----------------------------------------------------------------------------------

def test_admin_creates_edits_and_deletes_a_day(admin_client, db, calls):
    client = admin_client
    token = csrf_token(client, "/admin/calendar/new/")
    response = client.post("/admin/calendar/new/", data={
        "csrf_token": token, "day": "2027-02-06", "kind": "workday", "name": "春节"})
    assert response.status_code == 302, response.get_data(as_text=True)
    stored = db.calendar_days.find_one({"day": datetime(2027, 2, 6)})
    assert (stored["kind"], stored["name"], stored["year"], stored["updated_by"]) == \
        ("workday", "春节", 2027, "calendar_admin")
    page = client.get("/admin/calendar/").get_data(as_text=True)
    assert "2027-02-06 星期六" in page and "调休上班" in page

    entry_id = str(stored["_id"])
    token = csrf_token(client, f"/admin/calendar/edit/?id={entry_id}")
    response = client.post(f"/admin/calendar/edit/?id={entry_id}", data={
        "csrf_token": token, "day": "2027-02-07", "kind": "workday", "name": "春节调休"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert db.calendar_days.find_one({"day": datetime(2027, 2, 6)}) is None
    assert db.calendar_days.find_one({"_id": stored["_id"]})["name"] == "春节调休"

    token = csrf_token(client, "/admin/calendar/")
    response = client.post("/admin/calendar/delete/", data={"csrf_token": token, "id": entry_id})
    assert response.status_code == 302
    assert db.calendar_days.count_documents({}) == 0
    assert db.calendar_state.find_one({"_id": "calendar"})["version"] == 3
    assert calls == [(date(2027, 2, 6), date(2027, 2, 6)), (date(2027, 2, 6), date(2027, 2, 7)),
                     (date(2027, 2, 7), date(2027, 2, 7))]


BAD_DAYS = [
    ("2027-10-12", "workday", "2027-10-12 是星期二，本来就上班：调休上班只能设在星期六或星期日"),
    ("2027-02-30", "holiday", "日期格式不正确：请按 YYYY-MM-DD 填写一个存在的日期"),
    ("十月一日", "holiday", "日期格式不正确：请按 YYYY-MM-DD 填写一个存在的日期"),
    ("", "holiday", "请填写日期"),
    ("2027-10-01", "holiday", "2027-10-01 已有条目“国庆节”"),
]


def test_admin_form_refuses_bad_input_with_a_clear_message(admin_client, db):
    with admin_client.application.app_context():
        workcalendar.set_day(date(2027, 10, 1), "holiday", "国庆节")
    for day, kind, expected in BAD_DAYS:
        token = csrf_token(admin_client, "/admin/calendar/new/")
        response = admin_client.post("/admin/calendar/new/", data={
            "csrf_token": token, "day": day, "kind": kind, "name": "公司假期"})
        assert response.status_code == 200, day
        page = response.get_data(as_text=True)
        assert expected in page and "Traceback" not in page, day
    assert [(row["day"].date(), row["name"]) for row in db.calendar_days.find()] == [(date(2027, 10, 1), "国庆节")]

    # A holiday on a weekend is fine and needs no comment.
    token = csrf_token(admin_client, "/admin/calendar/new/")
    response = admin_client.post("/admin/calendar/new/", data={
        "csrf_token": token, "day": "2027-10-02", "kind": "holiday", "name": "国庆节"})
    assert response.status_code == 302
    assert db.calendar_days.find_one({"day": datetime(2027, 10, 2)})["kind"] == "holiday"


def test_admin_enters_a_range_and_filters_the_list_by_year(admin_client, db, calls):
    client = admin_client
    token = csrf_token(client, "/admin/calendar/range/")
    response = client.post("/admin/calendar/range/", data={
        "csrf_token": token, "first": "2027-10-01", "last": "2027-10-07", "kind": "holiday", "name": "国庆节"})
    assert response.status_code == 302, response.get_data(as_text=True)
    days = sorted(row["day"].date() for row in db.calendar_days.find({"name": "国庆节"}))
    assert days == [date(2027, 10, d) for d in range(1, 8)]
    assert calls == [(date(2027, 10, 1), date(2027, 10, 7))]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "已录入 7 天：2027-10-01 至 2027-10-07 国庆节" in page
    assert "2027-10-07 星期四" in page

    with client.application.app_context():
        workcalendar.set_day(date(2026, 10, 1), "holiday", "国庆节")
    page = client.get("/admin/calendar/?flt0_0=2026").get_data(as_text=True)
    assert "2026-10-01" in page and "2027-10-01" not in page
    page = client.get("/admin/calendar/?flt0_1=workday").get_data(as_text=True)
    assert "2026-10-01" not in page and "2027-10-01" not in page

    # Refused ranges say why and write nothing.
    for first, last, kind, expected in [
        ("2027-09-25", "2027-09-27", "workday", "调休上班只能设在星期六或星期日；范围内的 2027-09-27 是工作日"),
        ("2027-05-05", "2027-05-01", "holiday", "结束日期不能早于开始日期"),
        ("2027-05-01", "2027-5-5x", "holiday", "日期格式不正确"),
    ]:
        token = csrf_token(client, "/admin/calendar/range/")
        response = client.post("/admin/calendar/range/", data={
            "csrf_token": token, "first": first, "last": last, "kind": kind, "name": "劳动节"})
        assert response.status_code == 200 and expected in response.get_data(as_text=True), expected
    assert db.calendar_days.count_documents({}) == 8
    assert len(calls) == 2


def test_only_admins_open_the_calendar(client, make_user, sign_in):
    make_user("agent7", role="agent")
    sign_in("agent7")
    assert client.get("/admin/calendar/").status_code == 403
    assert client.get("/admin/calendar/range/").status_code == 403


# -- the home warning -------------------------------------------------------------------------------

def test_home_warns_about_next_year_until_it_is_entered(seeded, admin_client, monkeypatch):
    monkeypatch.setattr(workcalendar, "utcnow", lambda: datetime(2026, 11, 22, 4, 0, tzinfo=timezone.utc))
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert "工作日历尚未录入 2027 年的法定节假日" in page
    assert "/admin/calendar/" in page
    with seeded.app_context():
        workcalendar.set_range(date(2027, 2, 6), date(2027, 2, 13), "holiday", "春节")
    # issue 18: one festival entered is not the whole year — the warning stays until the year is complete.
    assert "工作日历尚未录入 2027 年的法定节假日" in admin_client.get("/admin/").get_data(as_text=True)
    with seeded.app_context():
        workcalendar.set_year_complete(2027)
    assert "工作日历尚未录入" not in admin_client.get("/admin/").get_data(as_text=True)


def test_home_warns_about_both_years_on_an_empty_calendar(client, make_user, sign_in, monkeypatch):
    monkeypatch.setattr(workcalendar, "utcnow", lambda: datetime(2026, 11, 22, 4, 0, tzinfo=timezone.utc))
    make_user("agent8", role="agent")
    sign_in("agent8")
    page = client.get("/admin/").get_data(as_text=True)
    assert "工作日历尚未录入 2026、2027 年的法定节假日" in page
    assert 'href="/admin/calendar/"' not in page  # agents cannot open the screen: no link


# -- command line -----------------------------------------------------------------------------------

def test_load_calendar_command_seeds_then_loads_a_file(runner, db, tmp_path):
    result = runner.invoke(args=["kefu", "load-calendar"])
    assert result.exit_code == 0, result.output
    assert f"calendar entries created: {PACKAGE_ENTRIES}" in result.output
    assert "calendar entries created: 0" in runner.invoke(args=["kefu", "load-calendar"]).output

    notice = tmp_path / "2027.csv"
    notice.write_text("# 2027 国庆节\n2027-10-01..2027-10-07,holiday,国庆节\n2027-09-26,workday,国庆节\n",
                      encoding="utf-8")
    result = runner.invoke(args=["kefu", "load-calendar", "--file", str(notice)])
    assert result.exit_code == 0, result.output
    assert "calendar days written: 8" in result.output
    assert db.calendar_days.count_documents({"year": 2027}) == 8

    notice.write_text("2027-01-01,holiday,元旦\n2027-01-05,workday,元旦\n", encoding="utf-8")
    result = runner.invoke(args=["kefu", "load-calendar", "--file", str(notice)])
    assert result.exit_code != 0
    assert "第 2 行" in result.output and "2027-01-05 是星期二" in result.output
    assert db.calendar_days.find_one({"day": datetime(2027, 1, 1)}) is None  # nothing written
