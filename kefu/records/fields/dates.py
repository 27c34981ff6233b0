"""Date and date-time field types: read in the context's time zone, stored in UTC."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

from kefu.core.clock import utcnow
from kefu.core.i18n import _, _l
from kefu.core.validation import InvalidValue
from kefu.records.fields.base import OrderedType
from kefu.records.fields.common import DEFAULT_NOW, context_or_default, fold, is_blank, scalar_text
from kefu.records.fields.forms import TypedDateField, TypedDateTimeLocalField

EARLIEST_YEAR, LATEST_YEAR = 1900, 2999
"""Dates and moments are accepted in these years only: none outside is real for a customer-service case,
spreadsheets cannot hold dates before 1900, and at either end of Python's range (years 1 and 9999) a moment cannot be
moved to UTC nor a day be followed by the next."""

_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?|(\d{4})(\d{2})(\d{2})")
_DATETIME = re.compile(
    r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
    r"(?:(?:T|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)


def _check_year(day: date) -> None:
    """Raise :class:`InvalidValue` for a (local) date outside :data:`EARLIEST_YEAR`–:data:`LATEST_YEAR`."""
    if day.year < EARLIEST_YEAR:
        raise InvalidValue(_("日期应在 %(year)s 年之后，当前为 %(day)s", year=EARLIEST_YEAR, day=day.isoformat()))
    if day.year > LATEST_YEAR:
        raise InvalidValue(_("日期应在 %(year)s 年之前，当前为 %(day)s", year=LATEST_YEAR + 1, day=day.isoformat()))


class CalendarType(OrderedType):
    """What dates and moments share: picked (not typed) in forms, "now" as a default, bounds read as early/late,
    written as spreadsheet dates."""

    holds_dates = True
    default_keywords = (DEFAULT_NOW,)
    below_text = _l("不能早于 %(bound)s")
    above_text = _l("不能晚于 %(bound)s")
    export_dates = True
    required_text = _l("请选择%(label)s")


class DateType(CalendarType):
    """Calendar date from 1900 to 2999. Accepts 2026-11-22, 2026/11/22, 2026年11月22日, 20261122 and ``date`` objects.

    A ``datetime`` is read in the context's zone. Stored as the UTC midnight of
    that date; JSON "2026-11-22". Default "now" means today in the context's zone.
    """

    name = "date"
    label = _l("日期")
    export_number_format = "yyyy-mm-dd"
    export_width = 12
    form_class = TypedDateField

    def parse(self, raw, definition, context):
        day = self._day(raw, context)
        _check_year(day)
        return day

    def _day(self, raw, context) -> date:
        if isinstance(raw, datetime):
            return (raw.astimezone(context.tz) if raw.tzinfo else raw).date()
        if isinstance(raw, date):
            return raw
        text = fold(scalar_text(raw))
        match = _DATE.fullmatch(text)
        if not match:
            raise InvalidValue(_("日期格式应为 2026-11-22"))
        year, month, day = (int(part) for part in (match.groups()[:3] if match.group(1) else match.groups()[3:]))
        try:
            return date(year, month, day)
        except ValueError:
            raise InvalidValue(_("“%(text)s”不是有效日期", text=text)) from None

    def _keyword_default(self, keyword, context):
        return utcnow().astimezone(context.tz).date()

    def to_storage(self, value):
        return None if value is None else datetime(value.year, value.month, value.day, tzinfo=timezone.utc)

    def from_storage(self, stored):
        if stored is None:
            return None
        if isinstance(stored, datetime):
            return (stored.astimezone(timezone.utc) if stored.tzinfo else stored).date()
        if isinstance(stored, date):
            return stored
        return self.parse(stored, None, context_or_default(None))

    def to_json(self, value, tz=None):
        return None if value is None else value.isoformat()

    def display(self, value, tz=None) -> str:
        return "" if value is None else value.isoformat()

    def export_cell(self, value, tz=None):
        return value

    def _query_eq(self, path, raw, definition, context):
        day = self._filter_parse(raw, definition, context)
        return {path: {"$gte": self.to_storage(day), "$lt": self.to_storage(day + timedelta(days=1))}}

    def _query_lte(self, path, raw, definition, context):
        """The whole of the given day is included."""
        day = self._filter_parse(raw, definition, context)
        return {path: {"$lt": self.to_storage(day + timedelta(days=1))}}

    def _value_schema(self, definition):
        return {"type": "string", "format": "date", "examples": ["2026-11-22"]}


class DateTimeType(CalendarType):
    """Moment in time from 1900 to 2999: ISO 8601 with or without offset, "2026-11-22 14:05", or ``datetime`` objects.

    Text or a naive ``datetime`` without an offset is local time of the
    context's zone. Kept as an aware UTC ``datetime`` truncated to
    milliseconds (what MongoDB stores); JSON is ISO 8601 with the offset of
    the requested zone. A date alone means its local midnight; in filters it
    means the whole day. Default "now" is the current time.
    """

    name = "datetime"
    label = _l("日期时间")
    has_time_of_day = True
    export_number_format = "yyyy-mm-dd hh:mm"
    export_width = 17
    form_class = TypedDateTimeLocalField

    def parse(self, raw, definition, context):
        return self._moment(raw, context)[0]

    def _moment(self, raw, context) -> tuple[datetime, bool]:
        """``(aware UTC datetime, whether only a date was given)``; the year is checked before the moment is moved
        to UTC (year 1 cannot be)."""
        if isinstance(raw, datetime):
            moment, date_only = raw, False
        elif isinstance(raw, date):
            moment, date_only = datetime.combine(raw, time()), True
        else:
            text = fold(scalar_text(raw))
            match = _DATETIME.fullmatch(text)
            if not match:
                raise InvalidValue(_("时间格式应为 2026-11-22 14:05 或 2026-11-22T14:05:00+08:00"))
            year, month, day, hour, minute, second, fraction, offset = match.groups()
            date_only = hour is None
            try:
                moment = datetime(
                    int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                    int((fraction or "0").ljust(6, "0")),
                    tzinfo=self._offset(offset) if offset else None,
                )
            except ValueError:
                raise InvalidValue(_("“%(text)s”不是有效时间", text=text)) from None
        _check_year(moment.date())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=context.tz)
        moment = moment.astimezone(timezone.utc)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000), date_only

    @staticmethod
    def _offset(text: str) -> timezone:
        if text.upper() == "Z":
            return timezone.utc
        sign = -1 if text[0] == "-" else 1
        digits = text[1:].replace(":", "")
        return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))

    def _keyword_default(self, keyword, context):
        now = utcnow()
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    def to_storage(self, value):
        return value

    def from_storage(self, stored):
        if stored is None:
            return None
        return stored.astimezone(timezone.utc) if stored.tzinfo else stored.replace(tzinfo=timezone.utc)

    def _local(self, value, tz) -> datetime:
        return value.astimezone(tz or context_or_default(None).tz)

    def to_json(self, value, tz=None):
        if value is None:
            return None
        return self._local(value, tz).isoformat(timespec="milliseconds" if value.microsecond else "seconds")

    def display(self, value, tz=None) -> str:
        return "" if value is None else self._local(value, tz).strftime("%Y-%m-%d %H:%M")

    def export_cell(self, value, tz=None):
        return None if value is None else self._local(value, tz).replace(tzinfo=None)

    def form_data(self, value, tz=None):
        # To the minute, as the form shows it: an unchanged form then compares equal to what is stored.
        return None if value is None else self._local(value, tz).replace(tzinfo=None, second=0, microsecond=0)

    def _form_kwargs(self, definition, context):
        return {"format": ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]}

    def _day_or_moment(self, raw, definition, context) -> tuple[datetime, bool]:
        if is_blank(raw):
            raise InvalidValue(_("请填写筛选值"))
        return self._moment(raw, context)

    def _query_eq(self, path, raw, definition, context):
        moment, date_only = self._day_or_moment(raw, definition, context)
        if date_only:
            return {path: {"$gte": moment, "$lt": self._next_local_midnight(moment, context)}}
        return {path: moment}

    def _query_gte(self, path, raw, definition, context):
        return {path: {"$gte": self._day_or_moment(raw, definition, context)[0]}}

    def _query_lte(self, path, raw, definition, context):
        moment, date_only = self._day_or_moment(raw, definition, context)
        if date_only:
            return {path: {"$lt": self._next_local_midnight(moment, context)}}
        return {path: {"$lte": moment}}

    @staticmethod
    def _next_local_midnight(midnight: datetime, context) -> datetime:
        local_day = midnight.astimezone(context.tz).date() + timedelta(days=1)
        return datetime.combine(local_day, time(), tzinfo=context.tz).astimezone(timezone.utc)

    def _value_schema(self, definition):
        return {"type": "string", "format": "date-time", "examples": ["2026-11-22T14:05:00+08:00"]}
