"""Value shapes the section models share: names, field keys, non-negative counts and time windows; and the
kinds of field a section may name (``NUMBERS``, ``DATES`` …), told by what their field types hold."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, ClassVar
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field, StrictInt, StrictStr, model_validator

from kefu.core.i18n import _, _l
from kefu.records.fields import FIELD_TYPES, FieldType
from kefu.records.sections import SectionModel, refuse


@dataclass(frozen=True)
class FieldKind:
    """The fields a section's setting may name: those whose field type ``accepts`` (a question asked of the type,
    never of its name). ``shown`` is how messages list those types ("money/decimal/integer"), in the order they
    always have; a test keeps it naming exactly the accepted types.

    ``type_name in kind`` asks the named type; iterating gives ``shown``."""

    accepts: Callable[[FieldType], bool]
    shown: tuple[str, ...]

    def __contains__(self, type_name) -> bool:
        field_type = FIELD_TYPES.get(type_name) if isinstance(type_name, str) else None
        return field_type is not None and self.accepts(field_type)

    def __iter__(self) -> Iterator[str]:
        return iter(self.shown)


NUMBERS = FieldKind(lambda t: t.holds_numbers, ("money", "decimal", "integer"))
DATES = FieldKind(lambda t: t.holds_dates, ("datetime", "date"))
MOMENTS = FieldKind(lambda t: t.has_time_of_day, ("datetime",))
SINGLE_CHOICE = FieldKind(lambda t: t.single_choice, ("choice",))


def not_blank(value: str) -> str:
    if not value.strip():
        raise refuse(_l("不能为空"))
    return value


Name = Annotated[StrictStr, AfterValidator(not_blank)]
NonNegative = Annotated[StrictInt, Field(ge=0)]


class Window(SectionModel):
    """An amount of exactly one unit, as written: ``{working_days: 7}``. Minutes, hours and days are clock time;
    N working days end at 23:59:59 local time of the N-th working day after the start date."""

    units: ClassVar[tuple[str, ...]] = ("minutes", "hours", "days", "working_days")
    model_config = {"json_schema_extra": {"minProperties": 1, "maxProperties": 1}}

    minutes: NonNegative | None = None
    hours: NonNegative | None = None
    days: NonNegative | None = None
    working_days: NonNegative | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_unit(cls, data):
        names = " / ".join(cls.units)
        if not isinstance(data, dict) or len(data) != 1:
            raise refuse(_l("应恰好写一个单位：%(units)s", units=names))
        (unit, _amount), = data.items()
        if unit not in cls.units:
            raise refuse(_l("的单位“%(unit)s”不存在；可用：%(units)s", unit=unit, units=names))
        return data

    @property
    def unit(self) -> str:
        return next(unit for unit in self.units if getattr(self, unit) is not None)

    @property
    def amount(self) -> int:
        return getattr(self, self.unit)

    @classmethod
    def from_dict(cls, data: dict) -> "Window":
        return cls.model_validate(data)

    def to_dict(self) -> dict:
        return {self.unit: self.amount}

    def text(self) -> str:
        return {"minutes": _("%(n)s 分钟", n=self.amount), "hours": _("%(n)s 小时", n=self.amount),
                "days": _("%(n)s 天", n=self.amount),
                "working_days": _("%(n)s 个工作日", n=self.amount)}[self.unit]

    def due(self, start: datetime, calendar, tz: ZoneInfo) -> datetime:
        if self.unit == "working_days":
            return calendar.add_working_days(start, self.amount, tz)
        return start + timedelta(**{self.unit: self.amount})


class ClockTime(Window):
    """A window of clock time only (no working days)."""

    units: ClassVar[tuple[str, ...]] = ("minutes", "hours", "days")


class CallbackWindow(Window):
    units: ClassVar[tuple[str, ...]] = ("working_days", "days", "hours")
