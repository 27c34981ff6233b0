"""Working-day arithmetic answered from the index (``kefu.calendar.workday_index``) agrees with walking the days.

The reference below walks one day at a time and asks ``WorkCalendar.is_workday`` (the single-day rule: entries,
weekends, the fallback of an unentered year); the index must give the same answers on random calendars, random
dates 1999–2101 (across both ends of the 2000–2100 range) and distances up to ~4,000 working days, and the
ladder's current step must be the one found by trying step after step.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kefu.calendar import workcalendar
from kefu.calendar.arithmetic import WorkCalendar
from kefu.calendar.workcalendar import get_calendar
from kefu.rules.reminders import Ladder, ladder_steps, ladder_time

SHANGHAI = ZoneInfo("Asia/Shanghai")
EXAMPLES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the reference: one day at a time ---------------------------------------------------------------------------

def walk_nth(calendar: WorkCalendar, day: date, n: int) -> date:
    if n == 0:
        while not calendar.is_workday(day):
            day += timedelta(days=1)
        return day
    while n:
        day += timedelta(days=1)
        n -= calendar.is_workday(day)
    return day


def walk_between(calendar: WorkCalendar, start: date, end: date) -> int:
    sign, (low, high) = (1, (start, end)) if start <= end else (-1, (end, start))
    return sign * sum(calendar.is_workday(low + timedelta(days=k)) for k in range(1, (high - low).days + 1))


# -- random calendars --------------------------------------------------------------------------------------------

DAYS = st.dates(min_value=date(1999, 1, 1), max_value=date(2101, 12, 31))
NAMES = st.sampled_from(["国庆节", "春节", "元旦", "中秋节", "公司年会", "团建"])  # the last two: not statutory


@st.composite
def calendars(draw) -> WorkCalendar:
    """Holidays and make-up workdays in a few years (1998–2102: entries outside the range too); every other
    year stays unentered, and a year with only a company day off is unentered as well."""
    years = draw(st.lists(st.one_of(st.sampled_from([1999, 2000, 2100, 2101]), st.integers(1998, 2102)),
                          max_size=4, unique=True))
    entries = {}
    for year in years:
        for day in draw(st.lists(st.dates(date(year, 1, 1), date(year, 12, 31)), max_size=40)):
            worked = day.weekday() >= 5 and draw(st.booleans())
            entries[day] = ("workday", "调休上班") if worked else ("holiday", draw(NAMES))
    return WorkCalendar(entries, version=1)


@EXAMPLES
@given(calendar=calendars(), day=DAYS, n=st.integers(0, 4000))
@example(calendar=WorkCalendar(), day=date(1999, 12, 30), n=3)       # into the range from before it
@example(calendar=WorkCalendar(), day=date(2100, 12, 29), n=3)       # out of the range after it
@example(calendar=WorkCalendar(), day=date(2101, 12, 31), n=0)
@example(calendar=WorkCalendar({date(2101, 10, 1): ("holiday", "国庆节")}), day=date(2101, 9, 28), n=5)
def test_nth_workday_after_matches_walking(calendar, day, n):
    assert calendar.nth_workday_after(day, n) == walk_nth(calendar, day, n)


@EXAMPLES
@given(calendar=calendars(), start=DAYS, distance=st.integers(-5600, 5600))
@example(calendar=WorkCalendar(), start=date(1999, 12, 25), distance=10)
@example(calendar=WorkCalendar(), start=date(2101, 1, 5), distance=-10)
def test_working_days_between_matches_walking(calendar, start, distance):
    end = min(max(start + timedelta(days=distance), date(1999, 1, 1)), date(2101, 12, 31))
    assert calendar.working_days_between(start, end) == walk_between(calendar, start, end)


@EXAMPLES
@given(calendar=calendars(), start=st.datetimes(datetime(1999, 1, 1), datetime(2101, 6, 30)),
       n=st.integers(0, 400))
def test_add_working_days_ends_on_the_walked_day(calendar, start, n):
    start = start.replace(tzinfo=timezone.utc)
    due = walk_nth(calendar, start.astimezone(SHANGHAI).date(), n)
    expected = datetime.combine(due, time(23, 59, 59), tzinfo=SHANGHAI).astimezone(timezone.utc)
    assert calendar.add_working_days(start, n, SHANGHAI) == expected
    assert calendar.explain_working_days(start, n, SHANGHAI)["due_at"] == expected


@EXAMPLES
@given(calendar=calendars(), due=st.datetimes(datetime(1999, 1, 1), datetime(2100, 6, 30)),
       overdue=st.timedeltas(timedelta(hours=-30), timedelta(days=500)), hour=st.integers(0, 23))
def test_the_ladder_step_is_the_last_follow_up_time_passed(calendar, due, overdue, hour):
    due = due.replace(tzinfo=timezone.utc)
    now, ladder = due + overdue, Ladder(at=time(hour, 30))
    steps = ladder_steps(due, now, ladder, calendar, SHANGHAI)
    expected = 0
    while ladder_time(due, expected + 1, ladder, calendar, SHANGHAI) <= now:
        expected += 1
    assert steps == expected


def test_days_far_outside_the_range_follow_weekends_and_the_fixed_holidays():
    calendar = WorkCalendar()
    assert calendar.nth_workday_after(date(1, 1, 1), 0) == date(1, 1, 2)        # Monday 元旦 → Tuesday
    assert calendar.nth_workday_after(date(9999, 9, 30), 1) == date(9999, 10, 4)  # 国庆 1–3 Oct, then Monday
    assert calendar.working_days_between(date(1899, 12, 31), date(2200, 12, 31)) == walk_between(
        calendar, date(1899, 12, 31), date(2200, 12, 31))
    with pytest.raises(OverflowError):
        calendar.nth_workday_after(date(9999, 12, 30), 5)
    with pytest.raises(ValueError):
        calendar.nth_workday_after(date(2026, 1, 5), -1)


def test_the_shared_calendar_answers_from_a_new_index_after_an_edit(app, calendar):
    """The per-process copy is rebuilt when the version moves, and its index with it."""
    with app.app_context():
        before = get_calendar()
        assert before.nth_workday_after(date(2027, 3, 4), 1) == date(2027, 3, 5)  # Thursday → Friday
        assert before.working_days_between(date(2012, 3, 5), date(2026, 11, 10)) == walk_between(
            before, date(2012, 3, 5), date(2026, 11, 10))
        workcalendar.set_day(date(2027, 3, 5), "holiday", "公司年会", by="admin")
        after = get_calendar()
        assert after is not before and after.version > before.version
        assert after.nth_workday_after(date(2027, 3, 4), 1) == date(2027, 3, 8)  # the Friday off: Monday
        assert before.nth_workday_after(date(2027, 3, 4), 1) == date(2027, 3, 5)  # an old snapshot stays as it was
