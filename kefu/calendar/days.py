"""What a calendar day can be, and where the entries are stored.

Saturdays and Sundays are off unless entered as a make-up workday (调休上班);
dated entries (``CalendarDay``, collection ``calendar_days``) make a day a
holiday (法定节假日, or a company day off) or a make-up workday, each with a
name (国庆节, 春节 …). ``CalendarState`` holds the calendar's version, bumped by
every edit (``kefu.calendar.workcalendar``), the years seeded from the
``chinesecalendar`` package, the years an admin marked complete, and the
company's working hours (``kefu.calendar.working_hours``).
"""
from __future__ import annotations

from datetime import date
from enum import Enum

from mongoengine import DateField, DateTimeField, DictField, Document, IntField, ListField, StringField

from kefu.core.clock import utcnow
from kefu.core.i18n import _l

STATE_ID = "calendar"
FIRST_YEAR, LAST_YEAR = 2000, 2100
MAX_NAME_LENGTH = 40
SEED_SOURCE = "chinesecalendar"
ADMIN_SOURCE = "admin"

# A holiday entry whose name contains one of these is a statutory one (抗战: the one-off 2015 day).
STATUTORY_KEYWORDS = ("元旦", "春节", "清明", "劳动", "端午", "中秋", "国庆", "抗战")
# The festivals every year has: a year whose holiday entries name all of them counts as entered.
YEARLY_FESTIVALS = ("元旦", "春节", "清明", "劳动", "端午", "中秋", "国庆")

WEEKDAY_NAMES = (_l("星期一"), _l("星期二"), _l("星期三"), _l("星期四"), _l("星期五"), _l("星期六"), _l("星期日"))


class DayKind(str, Enum):
    """What a dated entry makes of its day."""

    HOLIDAY = "holiday"   # 放假: a statutory holiday or a company day off
    WORKDAY = "workday"   # 调休上班: a Saturday or Sunday that is worked


KIND_LABELS = {DayKind.HOLIDAY: _l("节假日（放假）"), DayKind.WORKDAY: _l("调休上班")}


def kind_label(kind: str) -> str:
    """The person-readable name of ``kind`` in the current language."""
    try:
        return str(KIND_LABELS[DayKind(kind)])
    except ValueError:
        return kind


def weekday_name(day: date) -> str:
    return str(WEEKDAY_NAMES[day.weekday()])


def is_statutory(name: str) -> bool:
    """Whether a holiday named ``name`` is a statutory one."""
    return any(keyword in (name or "") for keyword in STATUTORY_KEYWORDS)


def festival_of(name: str) -> str | None:
    """The yearly festival (``YEARLY_FESTIVALS``) a holiday named ``name`` belongs to, if any."""
    return next((keyword for keyword in YEARLY_FESTIVALS if keyword in (name or "")), None)


class CalendarDay(Document):
    """One dated entry: the day is off (holiday) or worked (make-up workday)."""

    day = DateField(required=True, unique=True, verbose_name=_l("日期"))
    year = IntField(required=True, verbose_name=_l("年份"))
    kind = StringField(required=True, choices=[k.value for k in DayKind], verbose_name=_l("类型"))
    name = StringField(required=True, max_length=MAX_NAME_LENGTH, verbose_name=_l("名称"))
    source = StringField(default=ADMIN_SOURCE, verbose_name=_l("来源"))
    updated_at = DateTimeField(default=utcnow, verbose_name=_l("更新时间"))
    updated_by = StringField(verbose_name=_l("更新人"))

    meta = {"collection": "calendar_days", "ordering": ["day"], "indexes": [("year", "day"), "kind"]}

    def clean(self) -> None:
        if isinstance(self.day, date):
            self.year = self.day.year

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.name}"


class CalendarState(Document):
    """The single document holding the calendar version, the years seeded from the package (complete: the
    package lists every holiday of its years), the years an admin marked complete, and the working hours
    (``WorkingHours.to_dict``; empty: the default 09:00–18:00 with lunch 12:00–13:00)."""

    id = StringField(primary_key=True, default=STATE_ID)
    version = IntField(default=0)
    seeded_years = ListField(IntField())
    complete_years = ListField(IntField())
    working_hours = DictField()
    updated_at = DateTimeField(default=utcnow)
    updated_by = StringField()

    meta = {"collection": "calendar_state"}


def stored_version() -> int:
    """The calendar version in the database (0 before the first edit)."""
    row = CalendarState.objects(pk=STATE_ID).only("version").as_pymongo().first()
    return row.get("version", 0) if row else 0
