"""The working-day calendar's write path and this process's copy of it.

The dated entries (``kefu.calendar.days``) are seeded from the ``chinesecalendar``
package for every year it knows (2004–2026) and edited by admins afterwards (add
2027 once the State Council publishes it); counting runs on an in-memory snapshot
(``kefu.calendar.arithmetic.WorkCalendar``).

The functions below are the only write path. Every edit bumps the calendar
version (``calendar_state``), drops this process's cached calendar and calls
the listeners registered with ``on_change`` with the first and last day
touched (the app queues the recomputation of running deadlines there). Other
processes compare the stored version at most every 2 seconds (``get_calendar``).
"""
from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from chinese_calendar import constants
from mongoengine import NotUniqueError
from pymongo.errors import BulkWriteError

from kefu.calendar.arithmetic import WorkCalendar
from kefu.calendar.working_hours import WorkingHours
from kefu.calendar.days import (
    ADMIN_SOURCE, FIRST_YEAR, LAST_YEAR, MAX_NAME_LENGTH, SEED_SOURCE, STATE_ID, CalendarDay, CalendarState, DayKind,
    kind_label, stored_version, weekday_name,
)
from kefu.core.clock import utcnow
from kefu.core.errors import Conflict, NotFound, ValidationFailed
from kefu.core.i18n import _l
from kefu.core.versioned_cache import VersionedCache

log = logging.getLogger(__name__)

MAX_RANGE_DAYS = 366

# chinesecalendar's holiday names (the English values it stores per day) → the names people use.
PACKAGE_NAMES = {
    "New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明节", "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节", "National Day": "国庆节", "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


# -- the per-process cache --------------------------------------------------------------------------

class CalendarCache(VersionedCache[WorkCalendar]):
    """One process's calendar, reloaded when the stored version moved (checked at most every ``max_age`` s)."""

    def __init__(self, max_age: float = 2.0, clock=time.monotonic):
        super().__init__(WorkCalendar.load, stored_version, max_age=max_age, clock=clock)


_cache = CalendarCache()


def get_calendar(at_least: int = 0) -> WorkCalendar:
    """The calendar of this process; an edit made anywhere is seen within about 2 seconds, here at once.

    ``at_least``: a version known to be stored (e.g. the edit a background job works for); an older copy is
    reloaded at once instead of at its next version check. An empty calendar is not seeded here:
    ``seed_calendar`` runs at start-up (launcher, ``load-calendar``).
    """
    calendar = _cache.get()
    if calendar.version < at_least:
        _cache.clear()
        calendar = _cache.get()
    return calendar


def today_in(tz: ZoneInfo) -> date:
    """Today's date in ``tz``."""
    return utcnow().astimezone(tz).date()


# -- change listeners -------------------------------------------------------------------------------

_listeners: list = []


def on_change(callback) -> None:
    """Call ``callback(first_day, last_day)`` after every calendar edit (registering twice is a no-op).

    Runs in the editing process after the new calendar is visible through ``get_calendar()``. A listener
    that raises is logged with its traceback; the edit stays saved and the other listeners still run.
    """
    if callback not in _listeners:
        _listeners.append(callback)


def remove_listener(callback) -> None:
    if callback in _listeners:
        _listeners.remove(callback)


def _changed(first: date, last: date, by: str | None) -> int:
    """Bump the version, drop this process's cache, tell the listeners; return the new version."""
    state = CalendarState.objects(pk=STATE_ID).modify(
        upsert=True, new=True, inc__version=1, set__updated_at=utcnow(), set__updated_by=by)
    _cache.clear()
    for callback in list(_listeners):
        try:
            callback(first, last)
        except Exception:
            log.exception("calendar listener %r failed for %s…%s", callback, first, last)
    return state.version


# -- validation and writes --------------------------------------------------------------------------

def _problems(day, kind, name) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not isinstance(day, date) or isinstance(day, datetime):
        problems["day"] = _l("请填写日期，格式为 YYYY-MM-DD，如 2027-10-01")
    elif not FIRST_YEAR <= day.year <= LAST_YEAR:
        problems["day"] = _l("日期须在 %(first)s 年至 %(last)s 年之间", first=FIRST_YEAR, last=LAST_YEAR)
    if kind not in {k.value for k in DayKind}:
        problems["kind"] = _l("类型须为：%(kinds)s", kinds="、".join(kind_label(k.value) for k in DayKind))
    elif kind == DayKind.WORKDAY.value and "day" not in problems and day.weekday() < 5:
        problems["kind"] = _l("%(day)s 是%(weekday)s，本来就上班：调休上班只能设在星期六或星期日",
                              day=day.isoformat(), weekday=weekday_name(day))
    if not isinstance(name, str) or not name.strip():
        problems["name"] = _l("请填写名称，如 国庆节、春节、公司年会")
    elif len(name.strip()) > MAX_NAME_LENGTH:
        problems["name"] = _l("名称最多 %(n)s 个字", n=MAX_NAME_LENGTH)
    return problems


def _check(day, kind, name) -> None:
    problems = _problems(day, kind, name)
    if problems:
        raise ValidationFailed(next(iter(problems.values())), problems)


def _kind_value(kind) -> str:
    return kind.value if isinstance(kind, DayKind) else kind


def _write(entry: CalendarDay, day: date, kind: str, name: str, by: str | None) -> CalendarDay:
    entry.day, entry.kind, entry.name = day, kind, name.strip()
    entry.source, entry.updated_at, entry.updated_by = ADMIN_SOURCE, utcnow(), by
    try:
        entry.save()
    except NotUniqueError:
        raise Conflict(_l("%(day)s 已有条目", day=day.isoformat()),
                       {"day": _l("%(day)s 已有条目，请编辑原条目", day=day.isoformat())}) from None
    return entry


def add_day(day: date, kind: str, name: str, *, by: str | None = None) -> CalendarDay:
    """Enter a new day; ``Conflict`` when the day already has an entry (edit that one instead)."""
    kind = _kind_value(kind)
    _check(day, kind, name)
    existing = CalendarDay.objects(day=day).first()
    if existing is not None:
        message = _l("%(day)s 已有条目“%(name)s”（%(kind)s），请编辑原条目", day=day.isoformat(),
                     name=existing.name, kind=kind_label(existing.kind))
        raise Conflict(message, {"day": message})
    entry = _write(CalendarDay(), day, kind, name, by)
    _changed(day, day, by)
    return entry


def set_day(day: date, kind: str, name: str, *, by: str | None = None) -> CalendarDay:
    """Make ``day`` a holiday or a make-up workday named ``name``, replacing its entry if any.

    Refused (``ValidationFailed``): a date outside 2000–2100, an unknown kind, a make-up workday on
    Monday–Friday, an empty name. A holiday may fall on a weekend.
    """
    kind = _kind_value(kind)
    _check(day, kind, name)
    entry = _write(CalendarDay.objects(day=day).first() or CalendarDay(), day, kind, name, by)
    _changed(day, day, by)
    return entry


def update_day(entry: CalendarDay, day: date, kind: str, name: str, *, by: str | None = None) -> CalendarDay:
    """Change an entry, possibly moving it to another date (``Conflict`` when that date has one)."""
    kind = _kind_value(kind)
    _check(day, kind, name)
    old_day = entry.day
    if day != old_day:
        other = CalendarDay.objects(day=day, id__ne=entry.id).first()
        if other is not None:
            message = _l("%(day)s 已有条目“%(name)s”，请编辑原条目", day=day.isoformat(), name=other.name)
            raise Conflict(message, {"day": message})
    _write(entry, day, kind, name, by)
    _changed(min(day, old_day), max(day, old_day), by)
    return entry


def _range_days(first, last, kind, name) -> list[date]:
    problems = {key: message for key, message in _problems(first, DayKind.HOLIDAY.value, name).items()}
    last_problem = _problems(last, DayKind.HOLIDAY.value, "-").get("day")
    if last_problem:
        problems["last"] = last_problem
    if kind not in {k.value for k in DayKind}:
        problems["kind"] = _problems(first, kind, name)["kind"]
    if problems:
        raise ValidationFailed(next(iter(problems.values())), problems)
    if last < first:
        raise ValidationFailed(_l("结束日期不能早于开始日期"), {"last": _l("结束日期不能早于开始日期")})
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    if len(days) > MAX_RANGE_DAYS:
        message = _l("一次最多录入 %(n)s 天", n=MAX_RANGE_DAYS)
        raise ValidationFailed(message, {"last": message})
    if kind == DayKind.WORKDAY.value and len(days) == 1:
        _check(first, kind, name)
    elif kind == DayKind.WORKDAY.value:
        weekdays = [d for d in days if d.weekday() < 5]
        if weekdays:
            message = _l("调休上班只能设在星期六或星期日；范围内的 %(days)s 是工作日",
                         days="、".join(d.isoformat() for d in weekdays[:5]) + ("…" if len(weekdays) > 5 else ""))
            raise ValidationFailed(message, {"kind": message})
    return days


def _write_range(days: list[date], kind: str, name: str, by: str | None) -> list[CalendarDay]:
    existing = {entry.day: entry for entry in CalendarDay.objects(day__gte=days[0], day__lte=days[-1])}
    return [_write(existing.get(day) or CalendarDay(), day, kind, name, by) for day in days]


def set_range(first: date, last: date, kind: str, name: str, *, by: str | None = None) -> list[CalendarDay]:
    """Enter every day from ``first`` to ``last`` (inclusive) as ``kind`` named ``name``; replaces entries
    already there. One version bump and one listener call for the whole range. A make-up-workday range
    may hold only Saturdays and Sundays; at most 366 days at once."""
    kind = _kind_value(kind)
    days = _range_days(first, last, kind, name)
    entries = _write_range(days, kind, name, by)
    _changed(first, last, by)
    return entries


def load_entries(rows, *, by: str | None = None, numbers=None) -> int:
    """Enter several ranges ``(first, last, kind, name)`` at once (a file of a new year's notice).

    Everything is checked before anything is written; ``ValidationFailed`` names the row by its number in
    ``numbers`` (e.g. file line numbers; default 1, 2, …). Returns the number of days written. One version
    bump and one listener call.
    """
    rows = list(rows)
    checked, problems = [], {}
    for number, (first, last, kind, name) in zip(numbers or range(1, len(rows) + 1), rows):
        kind = _kind_value(kind)
        try:
            checked.append((_range_days(first, last, kind, name), kind, name))
        except ValidationFailed as exc:
            problems[f"row {number}"] = _l("第 %(n)s 行：%(message)s", n=number, message=str(exc.message))
    if problems:
        raise ValidationFailed("；".join(str(p) for p in problems.values()), problems)
    if not checked:
        return 0
    written = 0
    for days, kind, name in checked:
        written += len(_write_range(days, kind, name, by))
    _changed(min(days[0] for days, _k, _n in checked), max(days[-1] for days, _k, _n in checked), by)
    return written


def remove_days(days, *, by: str | None = None) -> int:
    """Delete the entries of ``days`` (each becomes a plain weekday or weekend); return how many.

    A deleted seeded entry is never re-added by seeding (seeding marks whole years as done).
    """
    days = sorted(set(days))
    if not days:
        return 0
    removed = CalendarDay.objects(day__in=days).delete()
    if removed:
        _changed(days[0], days[-1], by)
    return removed


def remove_day(day: date, *, by: str | None = None) -> None:
    """Delete ``day``'s entry; ``NotFound`` when it has none."""
    if not remove_days([day], by=by):
        raise NotFound(_l("%(day)s 没有日历条目", day=day.isoformat()))


def set_year_complete(year, complete: bool = True, *, by: str | None = None) -> None:
    """Mark ``year``'s holidays as completely entered (or not any more): an entered year has no fallback holidays
    and no warning. ``ValidationFailed`` for a year outside the calendar's range."""
    if not isinstance(year, int) or not FIRST_YEAR <= year <= LAST_YEAR:
        message = _l("年份须在 %(first)s 年至 %(last)s 年之间", first=FIRST_YEAR, last=LAST_YEAR)
        raise ValidationFailed(message, {"year": message})
    change = {"add_to_set__complete_years": year} if complete else {"pull__complete_years": year}
    CalendarState.objects(pk=STATE_ID).update_one(upsert=True, **change)
    _changed(date(year, 1, 1), date(year, 12, 31), by)


def set_working_hours(data: dict, *, by: str | None = None) -> WorkingHours:
    """Store the company's working hours (``WorkingHours.parse``: ``ValidationFailed`` at the field at fault); the
    running working-hours deadlines are recomputed like after any calendar edit."""
    hours = WorkingHours.parse(data)
    CalendarState.objects(pk=STATE_ID).update_one(upsert=True, set__working_hours=hours.to_dict())
    today = today_in(ZoneInfo("UTC"))
    _changed(today, today, by)
    return hours


# -- seeding from chinesecalendar -------------------------------------------------------------------

def package_entries() -> list[tuple[date, str, str]]:
    """``(day, kind, name)`` for every holiday and make-up workday the ``chinesecalendar`` package lists."""
    def name_of(english: str) -> str:
        holiday = next((h for h in constants.Holiday if h.value == english), None)
        return PACKAGE_NAMES.get(english) or (holiday.chinese if holiday else english)

    rows = [(day, DayKind.HOLIDAY.value, name_of(h)) for day, h in constants.holidays.items()]
    rows += [(day, DayKind.WORKDAY.value, name_of(h)) for day, h in constants.workdays.items()]
    return sorted(rows)


def seed_calendar() -> int:
    """Enter the package's years that were never seeded; return the entries created.

    Idempotent and respectful of admins: a seeded year is marked in ``calendar_state`` and never seeded
    again (so deleted entries stay deleted), and a day that already has an entry keeps it. Bulk insert.
    """
    state = CalendarState.objects(pk=STATE_ID).first()
    done = set(state.seeded_years) if state else set()
    rows = [row for row in package_entries() if row[0].year not in done]
    if not rows:
        return 0
    years = sorted({day.year for day, _kind, _name in rows})
    taken = {row["day"].date() for row in
             CalendarDay.objects(year__in=years).only("day").as_pymongo()}
    now = utcnow()
    documents = [
        {"day": datetime(day.year, day.month, day.day), "year": day.year, "kind": kind, "name": name,
         "source": SEED_SOURCE, "updated_at": now, "updated_by": SEED_SOURCE}
        for day, kind, name in rows if day not in taken
    ]
    created = 0
    if documents:
        collection = CalendarDay._get_collection()  # ensures the unique index on ``day`` exists
        try:
            created = len(collection.insert_many(documents, ordered=False).inserted_ids)
        except BulkWriteError as exc:  # another process seeding at the same moment: its rows stand
            created = exc.details.get("nInserted", 0)
    CalendarState.objects(pk=STATE_ID).update_one(upsert=True, add_to_set__seeded_years=years)
    if created:
        seeded_days = [day for day, _kind, _name in rows if day not in taken]
        _changed(seeded_days[0], seeded_days[-1], SEED_SOURCE)
    return created
