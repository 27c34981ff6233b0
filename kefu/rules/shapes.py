"""Value shapes the section models share: names, field keys, non-negative counts and time windows."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, ClassVar
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field, StrictInt, StrictStr, model_validator

from kefu.core.i18n import _, _l
from kefu.records.sections import SectionModel, refuse


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
