"""Working-day arithmetic on an in-memory snapshot of the calendar (``WorkCalendar``): no query per call.

A year counts as *entered* when it is complete: seeded from the ``chinesecalendar`` package, marked complete by
an admin (``workcalendar.set_year_complete``), or holding a holiday entry for every yearly festival (元旦, 春节,
清明, 劳动, 端午, 中秋, 国庆 — an imported notice covers them all). One festival entered does not make a year
entered: until it is, the fixed-date fallback holidays (1 Jan 元旦, 1 May 劳动节, 1–3 Oct 国庆节) of the
festivals not entered yet still apply, the entries apply on top, and the admin home warns about it for this
year and the next.
"""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from datetime import time as clock_time
from datetime import timedelta, timezone
from zoneinfo import ZoneInfo

from kefu.calendar.days import (
    FIRST_YEAR, LAST_YEAR, STATE_ID, YEARLY_FESTIVALS, CalendarDay, CalendarState, DayKind, festival_of,
)
from kefu.calendar.working_hours import WorkingHours, add_working_hours
from kefu.calendar.workday_index import WorkdayIndex
from kefu.core.i18n import _

END_OF_DAY = clock_time(23, 59, 59)

# Fixed-date holidays assumed for a year nobody has entered yet: (month, day) → name.
FALLBACK_HOLIDAYS = {(1, 1): "元旦", (5, 1): "劳动节", (10, 1): "国庆节", (10, 2): "国庆节", (10, 3): "国庆节"}


def _as_utc(moment: datetime) -> datetime:
    """Aware ``moment``; a naive one is taken as UTC (how times are stored)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


class WorkCalendar:
    """A snapshot of the calendar: weekends, dated entries and the fallback for unentered years.

    Pure computation, no database access; build one with ``WorkCalendar.load()``
    or, in application code, take the shared one from ``kefu.calendar.workcalendar.get_calendar()``.
    Counting (``nth_workday_after``, ``working_days_between``, ``add_working_days``) answers from an index of
    the working days (``kefu.calendar.workday_index``) built on first use — a few milliseconds — in O(log n),
    however far apart the days are. The snapshot must not be changed after that use.
    """

    def __init__(self, entries: dict[date, tuple[str, str]] | None = None, version: int = 0,
                 complete_years=(), hours: WorkingHours | None = None):
        self.entries: dict[date, tuple[str, str]] = dict(entries or {})
        self.version = version
        self.hours = hours or WorkingHours()
        self._festivals: dict[int, set[str]] = {}  # year → the yearly festivals it has holiday entries for
        for day, (kind, name) in self.entries.items():
            festival = festival_of(name) if kind == DayKind.HOLIDAY.value else None
            if festival is not None:
                self._festivals.setdefault(day.year, set()).add(festival)
        self._entered = frozenset(complete_years) | frozenset(
            year for year, festivals in self._festivals.items() if festivals.issuperset(YEARLY_FESTIVALS))
        self._index: WorkdayIndex | None = None

    @classmethod
    def load(cls) -> "WorkCalendar":
        """The calendar as stored now (one query for the state, one for the entries)."""
        # The state is read first: an edit racing the load shows up as a newer version later.
        state = CalendarState.objects(pk=STATE_ID).as_pymongo().first() or {}
        entries = {}
        for row in CalendarDay.objects.only("day", "kind", "name").as_pymongo():
            day = row["day"]
            entries[day.date() if isinstance(day, datetime) else day] = (row["kind"], row["name"])
        return cls(entries, state.get("version", 0),
                   complete_years={*state.get("seeded_years", ()), *state.get("complete_years", ())},
                   hours=WorkingHours.from_dict(state.get("working_hours")))

    # -- single days --
    def entered_years(self) -> set[int]:
        """Years counted as entered (complete: see the module docstring)."""
        return set(self._entered)

    def festivals_entered(self, year: int) -> set[str]:
        """The yearly festivals ``year`` has holiday entries for."""
        return set(self._festivals.get(year, ()))

    def missing_years(self, today: date) -> list[int]:
        """Of this year and the next (relative to ``today``), those not entered yet."""
        return [year for year in (today.year, today.year + 1) if year not in self._entered]

    def day_entry(self, day: date) -> tuple[str, str] | None:
        """``(kind, name)`` of ``day``'s entry — or the fallback holiday of an unentered year — else None."""
        entry = self.entries.get(day)
        if entry is not None:
            return entry
        if day.year not in self._entered:
            name = FALLBACK_HOLIDAYS.get((day.month, day.day))
            if name and festival_of(name) not in self._festivals.get(day.year, ()):
                return (DayKind.HOLIDAY.value, name)
        return None

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is worked: an entry decides, else Monday–Friday."""
        entry = self.day_entry(day)
        if entry is not None:
            return entry[0] == DayKind.WORKDAY.value
        return day.weekday() < 5

    # -- counting --
    @property
    def index(self) -> WorkdayIndex:
        """The working-day index of this snapshot (built on first use; two threads racing build equal ones)."""
        index = self._index
        if index is None:
            years = {day.year for day in self.entries}
            first, last = min(years | {FIRST_YEAR}), max(years | {LAST_YEAR})
            fallback_days = [date(year, month, day) for year in range(first, last + 1)
                             for month, day in FALLBACK_HOLIDAYS]
            index = self._index = WorkdayIndex(first, last, [*self.entries, *fallback_days], self.is_workday,
                                               FALLBACK_HOLIDAYS)
        return index

    def nth_workday_after(self, day: date, n: int) -> date:
        """The n-th working day after ``day`` (``n == 0``: ``day`` itself when worked, else the next one)."""
        if n < 0:
            raise ValueError("n must be 0 or more")
        if n == 0:
            if self.is_workday(day):
                return day
            n = 1
        return date.fromordinal(self.index.nth_after(day.toordinal(), n))

    def add_working_days(self, start: datetime, n: int, tz: ZoneInfo) -> datetime:
        """The deadline ``n`` working days after ``start``: 23:59:59 local of the n-th working day after
        ``start``'s local date, as an aware UTC datetime. ``n == 0``: the end of ``start``'s day when it is a
        working day, else the end of the next working day. A naive ``start`` is taken as UTC."""
        local_day = _as_utc(start).astimezone(tz).date()
        due_day = self.nth_workday_after(local_day, n)
        return datetime.combine(due_day, END_OF_DAY, tzinfo=tz).astimezone(timezone.utc)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in ``(start, end]``; negative (the count in ``(end, start]``) when ``end`` is earlier."""
        index = self.index
        return index.count_to(end.toordinal()) - index.count_to(start.toordinal())

    def explain_working_days(self, start: datetime, n: int, tz: ZoneInfo) -> dict:
        """``add_working_days`` with the reasons: the days skipped and the make-up days counted.

        ``skipped``: runs of consecutive days off in the window, each ``{"first", "last", "name"}`` — a run
        holding holidays is named after its most frequent holiday (weekends next to 国庆节 join its run),
        a run of plain weekend days is named 周末 (in the request's language). ``makeup``: the 调休上班 days
        counted, ``{"day", "name"}``.
        ``fallback_years``: years of the window not entered yet (their fixed-date fallback was used).
        The window is the days after ``start``'s local date up to the due day (for ``n == 0`` it includes
        ``start``'s own day).
        """
        local_day = _as_utc(start).astimezone(tz).date()
        due_day = self.nth_workday_after(local_day, n)
        due_at = datetime.combine(due_day, END_OF_DAY, tzinfo=tz).astimezone(timezone.utc)
        return {"due_at": due_at, **self._reasons(local_day if n == 0 else local_day + timedelta(days=1), due_day)}

    def add_working_hours(self, start: datetime, n: int, tz: ZoneInfo) -> datetime:
        """The deadline ``n`` working hours (``self.hours`` on working days) after ``start``, aware UTC."""
        return add_working_hours(self, start, n, tz)

    def explain_working_hours(self, start: datetime, n: int, tz: ZoneInfo) -> dict:
        """``add_working_hours`` with the reasons, as ``explain_working_days`` gives them: the days off and the
        make-up days from the day after ``start``'s local date to the due day."""
        due_at = self.add_working_hours(start, n, tz)
        local_day = _as_utc(start).astimezone(tz).date()
        return {"due_at": due_at, **self._reasons(local_day + timedelta(days=1), due_at.astimezone(tz).date())}

    def _reasons(self, day: date, due_day: date) -> dict:
        """The days off (runs), the make-up days and the years not entered from ``day`` to ``due_day``."""
        skipped, makeup, years = [], [], set()
        run: list[date] = []
        names: Counter = Counter()

        def close_run():
            if run:
                name = names.most_common(1)[0][0] if names else _("周末")
                skipped.append({"first": run[0], "last": run[-1], "name": name})
                run.clear()
                names.clear()

        while day <= due_day:
            years.add(day.year)
            entry = self.day_entry(day)
            if self.is_workday(day):
                close_run()
                if entry is not None and day.weekday() >= 5:
                    makeup.append({"day": day, "name": entry[1]})
            else:
                run.append(day)
                if entry is not None:
                    names[entry[1]] += 1
            day += timedelta(days=1)
        close_run()
        return {"skipped": skipped, "makeup": makeup,
                "fallback_years": sorted(year for year in years if year not in self._entered)}
