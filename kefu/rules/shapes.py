"""Value shapes the section models share: names, field keys, non-negative counts and time windows; the
kinds of field a section may name (``NUMBERS``, ``DATES`` …), told by what their field types hold; and the hints
the record-type screen's rule editors read from the models' JSON Schemas (``picker``)."""
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


# The kinds a ``picker`` hint may name, by name: the editors offer the fields whose type is one of ``shown``.
PICKED_KINDS: dict[str, FieldKind] = {}


def named_kind(name: str, kind: FieldKind) -> FieldKind:
    """``kind``, offered by the editors' field pickers as ``name`` (``picker("field", "number")``)."""
    PICKED_KINDS[name] = kind
    return kind


def picker(widget: str, kind: str | None = None, **more) -> dict:
    """A model field's hint for the rule editors (``json_schema_extra``): ``x-kefu-picker`` is the control —
    ``field`` / ``fields`` (one or several of the definition's fields of ``kind``), ``status`` / ``statuses``,
    ``level`` / ``levels``, ``window``, ``conditions`` (field = value), ``event_kinds``, ``record_type``,
    ``time``, ``pairs`` (key → value), ``hidden`` — and ``x-kefu-kind`` the kind of field offered."""
    return {"x-kefu-picker": widget, **({"x-kefu-kind": kind} if kind else {}),
            **{f"x-kefu-{key.replace('_', '-')}": value for key, value in more.items()}}


NUMBERS = named_kind("number", FieldKind(lambda t: t.holds_numbers, ("money", "decimal", "integer")))
DATES = named_kind("date", FieldKind(lambda t: t.holds_dates, ("datetime", "date")))
MOMENTS = named_kind("moment", FieldKind(lambda t: t.has_time_of_day, ("datetime",)))
SINGLE_CHOICE = named_kind("choice", FieldKind(lambda t: t.single_choice, ("choice",)))


def not_blank(value: str) -> str:
    if not value.strip():
        raise refuse(_l("不能为空"))
    return value


Name = Annotated[StrictStr, AfterValidator(not_blank)]
NonNegative = Annotated[StrictInt, Field(ge=0)]


class Window(SectionModel):
    """An amount of exactly one unit, as written: ``{working_days: 7}``. Minutes, hours and days are clock time;
    N working days end at 23:59:59 local time of the N-th working day after the start date; N working hours count
    only the company's working hours on working days (``kefu.calendar.working_hours``)."""

    units: ClassVar[tuple[str, ...]] = ("minutes", "hours", "days", "working_days", "working_hours")
    model_config = {"json_schema_extra": {"minProperties": 1, "maxProperties": 1}}

    minutes: NonNegative | None = Field(None, title=_l("分钟"))
    hours: NonNegative | None = Field(None, title=_l("小时"))
    days: NonNegative | None = Field(None, title=_l("天"))
    working_days: NonNegative | None = Field(None, title=_l("工作日"))
    working_hours: NonNegative | None = Field(None, title=_l("工作小时"))

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
                "working_days": _("%(n)s 个工作日", n=self.amount),
                "working_hours": _("%(n)s 工作小时", n=self.amount)}[self.unit]

    def due(self, start: datetime, calendar, tz: ZoneInfo) -> datetime:
        if self.unit == "working_days":
            return calendar.add_working_days(start, self.amount, tz)
        if self.unit == "working_hours":
            return calendar.add_working_hours(start, self.amount, tz)
        return start + timedelta(**{self.unit: self.amount})


class ClockTime(Window):
    """A window of clock time only (no working days)."""

    units: ClassVar[tuple[str, ...]] = ("minutes", "hours", "days")


class CallbackWindow(Window):
    units: ClassVar[tuple[str, ...]] = ("working_days", "days", "hours")
