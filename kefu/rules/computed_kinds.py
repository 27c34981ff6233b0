"""The kinds of calculation of the ``computed:`` section (``kefu.rules.computed`` describes the section): one
pydantic model per kind, tagged by ``kind``, each computing its targets' values from a record's values — pure, no
database access, no expressions."""
from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BeforeValidator, Field, StrictBool, StrictInt, StrictStr, model_validator

from kefu.core.i18n import _l
from kefu.records.fields import FieldType
from kefu.records.fields.numbers import IntegerType
from kefu.records.fields.text import NormalizedTextType, TextType
from kefu.records.sections import SectionModel, refuse
from kefu.rules.shapes import MOMENTS, NUMBERS, SINGLE_CHOICE, ClockTime, FieldKind, named_kind, picker

CENT = Decimal("0.01")

# The fields an amount is written to: exact amounts (money, decimal), never a whole number that would drop fen.
AMOUNTS = named_kind("amount", FieldKind(lambda t: t.holds_numbers and not isinstance(t, IntegerType),
                                         ("money", "decimal")))
# The fields a ``set`` literal is written to: numbers, yes/no, one choice, free text.
SETTABLE = named_kind("settable", FieldKind(
    lambda t: t.holds_numbers or t.holds_yes_no or t.single_choice
    or isinstance(t, TextType) and not isinstance(t, NormalizedTextType),
    ("money", "decimal", "integer", "boolean", "choice", "text", "textarea")))
# An attempt: a counter (integer) or one of the choices naming the attempts (第一次验收 …).
ATTEMPTS = named_kind("attempt", FieldKind(lambda t: isinstance(t, IntegerType) or t.single_choice,
                                           ("integer", "choice")))
# A value a table is looked up by.
KEYS = named_kind("lookup", FieldKind(
    lambda t: isinstance(t, IntegerType) or t.single_choice or t.holds_yes_no or t.one_line_text,
    ("integer", "choice", "boolean", "text")))


def _number(value):
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise refuse(_l("应为数字"))
    return Decimal(str(value))


Number = Annotated[Decimal, BeforeValidator(_number)]
Literals = dict[StrictStr, Any]


def amount(value: Decimal) -> Decimal:
    """``value`` rounded half up to the fen."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# Each kind's name for a person: its picker in the rule editor, and messages ("computed 第 1 条（时长计费）").
KIND_NAMES = {"duration_fee": _l("时长计费"), "by_attempt": _l("按次数"), "below_threshold": _l("低于阈值"),
              "by_value": _l("按字段值"), "percent_of": _l("百分比")}


class Entry(SectionModel):
    """What every kind has: ``when`` (it applies only while that holds; ``kefu.rules.computed`` checks it), its
    targets, the fields it reads, its targets' values when it does not apply (``fallback``) and when it does
    (``applied``)."""

    # Setting name → the kind of field it must name (its value is a field key).
    reads: ClassVar[dict[str, FieldKind]] = {}

    when: dict[StrictStr, Any] = Field({}, title=_l("适用条件"), description=_l("只在字段取这些值时计算；“*”表示已填写"),
                                       json_schema_extra=picker("conditions"))

    def targets(self) -> tuple[str, ...]:
        raise NotImplementedError

    def sources(self) -> dict[str, str]:
        """Setting name → the field key it reads (the settings left empty omitted)."""
        return {name: getattr(self, name) for name in self.reads if getattr(self, name) is not None}

    def fallback(self) -> dict:
        """The targets' values when the entry does not apply: emptied."""
        return dict.fromkeys(self.targets())

    def applied(self, values: dict) -> dict:
        """Each target's value for a record holding ``values`` (Python values by field key)."""
        raise NotImplementedError


class DurationFee(Entry):
    """A fee for the time between two moments, once it is over the free time (004 有偿服务)."""

    reads: ClassVar = {"start": MOMENTS, "end": MOMENTS, "rate_field": NUMBERS, "per": NUMBERS}
    kind: Literal["duration_fee"] = Field(title=KIND_NAMES["duration_fee"])
    target: StrictStr = Field(title=_l("费用字段"), json_schema_extra=picker("field", "amount"))
    start: StrictStr = Field(title=_l("开始时间字段"), json_schema_extra=picker("field", "moment"))
    end: StrictStr = Field(title=_l("结束时间字段"), json_schema_extra=picker("field", "moment"))
    over: ClockTime = Field(ClockTime(hours=0), title=_l("免费时长"), description=_l("不超过这个时长不收费"),
                            json_schema_extra=picker("window", units=list(ClockTime.units)))
    unit: ClockTime = Field(ClockTime(hours=1), title=_l("计费单位"), description=_l("费率按每个单位计"),
                            json_schema_extra=picker("window", units=list(ClockTime.units)))
    rounding: Literal["up", "down", "exact"] = Field(
        "up", title=_l("不足一个单位"), description=_l("up：不足一个单位按一个单位计；down：不计；exact：按比例计"))
    charge: Literal["whole", "excess"] = Field(
        "whole", title=_l("计费时长"), description=_l("whole：超过免费时长后全程计费；excess：只计超出部分"))
    rate: Number | None = Field(None, title=_l("费率（元/单位）"))
    rate_field: StrictStr | None = Field(None, title=_l("费率字段"), json_schema_extra=picker("field", "number"))
    per: StrictStr | None = Field(None, title=_l("数量字段"), description=_l("费用再乘以这个字段的值（如借用数量）"),
                                  json_schema_extra=picker("field", "number"))

    @model_validator(mode="after")
    def _one_rate(self):
        if (self.rate is None) == (self.rate_field is None):
            raise refuse(_l(" 应恰好写 rate 或 rate_field 之一"))
        if self.rate is not None and self.rate < 0:
            raise refuse(_l(".rate 不能为负数"))
        if self.unit.amount == 0:
            raise refuse(_l(".unit 应大于 0"))
        return self

    def targets(self):
        return (self.target,)

    def applied(self, values):
        start, end = values.get(self.start), values.get(self.end)
        rate = self.rate if self.rate is not None else values.get(self.rate_field)
        count = values.get(self.per) if self.per else 1
        if None in (start, end, rate, count):
            return self.fallback()
        seconds = max((end - start).total_seconds(), 0)
        free = _seconds(self.over)
        if seconds <= free:
            return {self.target: amount(Decimal(0))}
        charged = Decimal(str(seconds - free if self.charge == "excess" else seconds))
        units = charged / Decimal(str(_seconds(self.unit)))
        if self.rounding != "exact":
            units = units.to_integral_value(rounding=ROUND_CEILING if self.rounding == "up" else ROUND_FLOOR)
        return {self.target: amount(units * Decimal(str(rate)) * Decimal(str(count)))}


def _seconds(window: ClockTime) -> float:
    return timedelta(**{window.unit: window.amount}).total_seconds()


class Row(SectionModel):
    """One row of a table: the values its ``set`` gives the targets."""

    values: Literals = Field(alias="set", min_length=1, title=_l("设置字段值"), json_schema_extra=picker("pairs"))


class AttemptRow(Row):
    attempt: StrictInt | StrictStr = Field(title=_l("第几次"), description=_l("整数字段写次数；选项字段写选项文字"))


class ValueRow(Row):
    value: StrictBool | StrictInt | StrictStr = Field(title=_l("字段值"))


class Table(Entry):
    """A table of rows, the one matching the value of ``field`` giving the targets their values."""

    reads: ClassVar = {"field": KEYS}
    field: StrictStr = Field(title=_l("依据字段"), json_schema_extra=picker("field", "lookup"))
    otherwise: Literals = Field({}, title=_l("其余情况"), description=_l("没有一行适用时各字段的值；未写的字段清空"),
                                json_schema_extra=picker("pairs"))

    def targets(self):
        keys = [key for row in self.table for key in row.values] + list(self.otherwise)
        return tuple(dict.fromkeys(keys))

    def fallback(self):
        return {key: self.otherwise.get(key) for key in self.targets()}

    def row_for(self, value):
        return next((row for row in self.table if row.value == value and type(row.value) is type(value)), None)

    def applied(self, values):
        value = values.get(self.field)
        row = None if value is None else self.row_for(value)
        return self.fallback() if row is None else {**self.fallback(), **row.values}

    def row_keys(self) -> list:
        return [row.value for row in self.table]


class ByValue(Table):
    """002 图纸审核奖惩办法（二）: a value (未全部修改 …) gives the targets their values."""

    kind: Literal["by_value"] = Field(title=KIND_NAMES["by_value"])
    table: tuple[ValueRow, ...] = Field(min_length=1, title=_l("对照表"))


class ByAttempt(Table):
    """002 工程预验收流程: the attempt number (第三次验收) gives the targets their values."""

    reads: ClassVar = {"field": ATTEMPTS}
    kind: Literal["by_attempt"] = Field(title=KIND_NAMES["by_attempt"])
    field: StrictStr = Field(title=_l("次数字段"), json_schema_extra=picker("field", "attempt"))
    table: tuple[AttemptRow, ...] = Field(min_length=1, title=_l("按次数对照表"))

    def row_for(self, value):
        """A choice's row names its text; for a counter, the row with the highest attempt not above it."""
        if isinstance(value, int):
            reached = [row for row in self.table if isinstance(row.attempt, int) and row.attempt <= value]
            return max(reached, key=lambda row: row.attempt, default=None)
        return next((row for row in self.table if row.attempt == value), None)

    def row_keys(self):
        return [row.attempt for row in self.table]


class BelowThreshold(Entry):
    """002 图纸审核奖惩办法（一）: a number below ``below`` sets the targets to ``set``, else to ``otherwise``."""

    reads: ClassVar = {"field": NUMBERS}
    kind: Literal["below_threshold"] = Field(title=KIND_NAMES["below_threshold"])
    field: StrictStr = Field(title=_l("分数字段"), json_schema_extra=picker("field", "number"))
    below: Number = Field(title=_l("低于"))
    values: Literals = Field(alias="set", min_length=1, title=_l("低于时设置"), json_schema_extra=picker("pairs"))
    otherwise: Literals = Field({}, title=_l("其余情况"), description=_l("不低于或未填写时各字段的值；未写的字段清空"),
                                json_schema_extra=picker("pairs"))

    def targets(self):
        return tuple(dict.fromkeys([*self.values, *self.otherwise]))

    def fallback(self):
        return {key: self.otherwise.get(key) for key in self.targets()}

    def applied(self, values):
        value = values.get(self.field)
        if value is None or Decimal(str(value)) >= self.below:
            return self.fallback()
        return {**self.fallback(), **self.values}


class PercentOf(Entry):
    """An amount: ``percent`` % of a number field (002 图纸审核奖惩办法: 扣除 0.5% / 1% 提成)."""

    reads: ClassVar = {"base": NUMBERS, "percent_field": NUMBERS}
    kind: Literal["percent_of"] = Field(title=KIND_NAMES["percent_of"])
    target: StrictStr = Field(title=_l("结果字段"), json_schema_extra=picker("field", "amount"))
    base: StrictStr = Field(title=_l("基数字段"), json_schema_extra=picker("field", "number"))
    percent: Number | None = Field(None, title=_l("百分比"))
    percent_field: StrictStr | None = Field(None, title=_l("百分比字段"), json_schema_extra=picker("field", "number"))

    @model_validator(mode="after")
    def _one_percent(self):
        if (self.percent is None) == (self.percent_field is None):
            raise refuse(_l(" 应恰好写 percent 或 percent_field 之一"))
        return self

    def targets(self):
        return (self.target,)

    def applied(self, values):
        base = values.get(self.base)
        percent = self.percent if self.percent is not None else values.get(self.percent_field)
        if base is None or percent is None:
            return self.fallback()
        return {self.target: amount(Decimal(str(base)) * Decimal(str(percent)) / 100)}


AnyEntry = Annotated[Union[DurationFee, ByAttempt, BelowThreshold, ByValue, PercentOf], Field(discriminator="kind")]


def literal_fits(field_type: FieldType, field: dict, value) -> bool:
    """Whether ``value`` (a ``set`` / ``otherwise`` literal, None empties) is a value of ``field`` (as written)."""
    if value is None:
        return True
    if field_type.holds_numbers:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if isinstance(field_type, IntegerType) and value != int(value):
            return False
        low, high = field.get("min"), field.get("max")
        return (low is None or value >= low) and (high is None or value <= high)
    if field_type.holds_yes_no:
        return isinstance(value, bool)
    if SINGLE_CHOICE.accepts(field_type):
        return value in (field.get("choices") or [])
    return isinstance(value, str)
