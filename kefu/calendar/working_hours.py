"""The company's working hours (工作时间) and counting working hours on the working-day calendar.

A working-hours clock (``{working_hours: N}``) counts only the time inside the working hours of working days:
by default 09:00–18:00 with a lunch break 12:00–13:00 (8 hours a day). The hours are kept with the calendar
(``CalendarState.working_hours``) and edited on the calendar screen.

Counting does not walk the hours: the rest of the start's day is taken first, then the whole days still needed
are jumped over with the working-day index (``WorkCalendar.nth_workday_after``: O(log n)), and the remainder is
placed in the due day's periods. A deadline that uses up a period exactly ends at its end (18:00, not 09:00 of
the next working day).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _, _l

TIME_FORMAT = "%H:%M"


def _parse(value, where: str, problems: dict) -> time | None:
    if value in (None, ""):
        return None
    try:
        return datetime.strptime(str(value).strip(), TIME_FORMAT).time()
    except ValueError:
        problems[where] = _l("时间格式应为 HH:MM，如 09:00")
        return None


@dataclass(frozen=True)
class WorkingHours:
    """One working day's hours: ``start``–``end``, without the optional lunch break ``lunch_start``–``lunch_end``."""

    start: time = time(9, 0)
    end: time = time(18, 0)
    lunch_start: time | None = time(12, 0)
    lunch_end: time | None = time(13, 0)

    @classmethod
    def from_dict(cls, data: dict | None) -> "WorkingHours":
        """The hours as stored (``to_dict``); an empty or missing document gives the default hours."""
        if not data:
            return cls()
        return cls.parse(data)

    @classmethod
    def parse(cls, data: dict) -> "WorkingHours":
        """Hours from ``{start, end, lunch_start, lunch_end}`` ("HH:MM"; the lunch break may be left empty);
        ``ValidationFailed`` with a message at the field at fault."""
        problems: dict = {}
        start = _parse(data.get("start"), "start", problems)
        end = _parse(data.get("end"), "end", problems)
        lunch_start = _parse(data.get("lunch_start"), "lunch_start", problems)
        lunch_end = _parse(data.get("lunch_end"), "lunch_end", problems)
        if start is None and "start" not in problems:
            problems["start"] = _l("请填写上班时间")
        if end is None and "end" not in problems:
            problems["end"] = _l("请填写下班时间")
        if not problems and end <= start:
            problems["end"] = _l("下班时间应晚于上班时间")
        if not problems and (lunch_start is None) != (lunch_end is None):
            where = "lunch_end" if lunch_end is None else "lunch_start"
            problems[where] = _l("午休须同时填写开始和结束时间，或都不填")
        if not problems and lunch_start is not None and not start < lunch_start < lunch_end < end:
            problems["lunch_start"] = _l("午休应在上班时间之内，且开始早于结束")
        if problems:
            raise ValidationFailed(next(iter(problems.values())), problems)
        return cls(start, end, lunch_start, lunch_end)

    def to_dict(self) -> dict:
        def text(value):
            return value.strftime(TIME_FORMAT) if value is not None else None

        return {"start": text(self.start), "end": text(self.end), "lunch_start": text(self.lunch_start),
                "lunch_end": text(self.lunch_end)}

    @property
    def periods(self) -> tuple[tuple[time, time], ...]:
        if self.lunch_start is None:
            return ((self.start, self.end),)
        return ((self.start, self.lunch_start), (self.lunch_end, self.end))

    @property
    def seconds_per_day(self) -> int:
        return sum(_seconds(last) - _seconds(first) for first, last in self.periods)

    def text(self) -> str:
        """"09:00–12:00、13:00–18:00"."""
        return _("、").join(f"{first:%H:%M}–{last:%H:%M}" for first, last in self.periods)


def _seconds(moment: time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def _place(day: date, after: datetime | None, seconds: int, hours: WorkingHours, tz: ZoneInfo):
    """Spend up to ``seconds`` of ``day``'s working time from ``after`` (None: the day's start): ``(the moment
    they run out, 0)``, or ``(None, the seconds left)`` when the day's periods end first."""
    for first, last in hours.periods:
        begin = datetime.combine(day, first, tzinfo=tz)
        if after is not None:
            begin = max(begin, after)
        end = datetime.combine(day, last, tzinfo=tz)
        if begin >= end:
            continue
        span = int((end - begin).total_seconds())
        if seconds <= span:
            return begin + timedelta(seconds=seconds), 0
        seconds -= span
    return None, seconds


def add_working_hours(calendar, start: datetime, amount: int, tz: ZoneInfo) -> datetime:
    """The deadline ``amount`` working hours after ``start`` (aware; naive is taken as UTC) on ``calendar``
    (``WorkCalendar``: its working days and ``hours``), as an aware UTC datetime. ``amount == 0``: ``start``."""
    if amount < 0:
        raise ValueError("amount must be 0 or more")
    start = start.replace(tzinfo=timezone.utc) if start.tzinfo is None else start
    if amount == 0:
        return start.astimezone(timezone.utc)
    hours: WorkingHours = calendar.hours
    local = start.astimezone(tz)
    seconds = amount * 3600
    if calendar.is_workday(local.date()):
        due, seconds = _place(local.date(), local, seconds, hours, tz)
        if due is not None:
            return due.astimezone(timezone.utc)
    per_day = hours.seconds_per_day
    days = -(-seconds // per_day)  # whole working days after the start's day, the last one partly used
    due_day = calendar.nth_workday_after(local.date(), days)
    due, _left = _place(due_day, None, seconds - (days - 1) * per_day, hours, tz)
    return due.astimezone(timezone.utc)
