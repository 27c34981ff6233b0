"""The rules of the ``levels:`` section (``kefu.rules.levels``), one model each: what they read and when they hold
is evaluated there; here is their shape, the kinds of field they may name and their default timeline text."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BeforeValidator, Field, StrictInt, StrictStr

from kefu.core.i18n import _l
from kefu.records.sections import SectionModel, refuse
from kefu.rules.shapes import DATES, NUMBERS, FieldKind, Name

YES_NO = FieldKind(lambda t: t.holds_yes_no, ("boolean",))
# What "the same issue" is read from: one choice, or a short text.
SAME_VALUES = FieldKind(lambda t: t.single_choice or t.one_line_text, ("choice", "text"))
PROJECTS = FieldKind(lambda t: t.narrows_units, ("project",))
UNITS = FieldKind(lambda t: t.narrowed_by_project, ("unit",))
CUSTOMERS = FieldKind(lambda t: t.identifies_customer, ("customer", "phone", "id_number", "email", "text"))


def _field_label(record_type, key) -> str:
    definition = record_type.field(key) if key else None
    return definition.label if definition is not None else str(key or "")


def _positive(value) -> Decimal:
    try:
        number = Decimal(str(value)) if not isinstance(value, bool) and isinstance(value, (int, float, str)) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number <= 0:
        raise refuse(_l("应为大于 0 的数"))
    return number


class Rule(SectionModel):
    """One entry of ``levels.rules``: when it holds, the record rises to ``level``."""

    # key → the kind of field it may name (checked against the definition's fields).
    field_kinds: ClassVar[dict[str, FieldKind]] = {}
    rule: str
    level: StrictStr
    reason: Name | None = Field(None, description="时间线上的说明；默认按规则生成")

    @property
    def id(self) -> str:
        """Stable while the rule means the same: its name, what it reads and the level it raises to."""
        reads = getattr(self, "field", None) or "+".join(getattr(self, "kinds", ())) or getattr(self, "from_", "")
        return f"{self.rule}:{reads}:{self.level}"

    def keys(self) -> set[str]:
        """The record keys whose change makes a save evaluate this rule."""
        return {getattr(self, key) for key in ("field", "project_field", "unit_field", "customer_field")
                if getattr(self, key, None)}

    def reason_text(self, record_type) -> str:
        """The timeline's text for a raise: ``reason`` as written, else the rule's own wording."""
        if self.reason:
            return str(self.reason)
        return str(self.default_reason(_field_label(record_type, getattr(self, "field", None))))

    def default_reason(self, label: str):
        """The rule's wording naming ``label`` (the label of the field it reads); each rule defines it."""
        raise NotImplementedError


class AtLeast(Rule):
    """The number field ``field`` is at least ``value``."""

    field_kinds: ClassVar = {"field": NUMBERS}
    rule: Literal["at_least"]
    field: StrictStr
    value: Annotated[Decimal, BeforeValidator(_positive)]

    def default_reason(self, label):
        return _l("“%(label)s”达到 %(value)s", label=label, value=self.value)


class Flag(Rule):
    """The yes/no field ``field`` is 是."""

    field_kinds: ClassVar = {"field": YES_NO}
    rule: Literal["flag"]
    field: StrictStr

    def default_reason(self, label):
        return _l("“%(label)s”为是", label=label)


class SameIssueUnits(Rule):
    """Records with the same ``field`` in the same project come from ``units`` different units."""

    field_kinds: ClassVar = {"field": SAME_VALUES, "project_field": PROJECTS, "unit_field": UNITS}
    rule: Literal["same_issue_units"]
    field: StrictStr
    project_field: StrictStr
    unit_field: StrictStr
    units: StrictInt = Field(ge=2)
    within_days: StrictInt | None = Field(None, ge=1)

    def default_reason(self, label):
        return _l("同一项目同类投诉来自 %(n)s 户及以上", n=self.units)


class RepeatCustomer(Rule):
    """The same customer has ``count`` records with the same ``field``."""

    field_kinds: ClassVar = {"field": SAME_VALUES, "customer_field": CUSTOMERS}
    rule: Literal["repeat_customer"]
    field: StrictStr
    customer_field: StrictStr
    count: StrictInt = Field(ge=2)
    within_days: StrictInt | None = Field(None, ge=1)

    def default_reason(self, label):
        return _l("同一客户 %(n)s 次及以上投诉同类问题", n=self.count)


class Communications(Rule):
    """``count`` timeline events of ``kinds`` while the record is open."""

    rule: Literal["communications"]
    kinds: tuple[StrictStr, ...] = Field(min_length=1)
    count: StrictInt = Field(ge=1)

    def default_reason(self, label):
        return _l("沟通 %(n)s 次仍未协调一致", n=self.count)


class OpenLonger(Rule):
    """At level ``from`` and still open ``months`` after ``start`` (default: registration)."""

    field_kinds: ClassVar = {"start": DATES}
    rule: Literal["open_longer"]
    from_: StrictStr = Field(alias="from")
    months: StrictInt = Field(ge=1)
    start: StrictStr | None = None

    def default_reason(self, label):
        return _l("“%(level)s”超过 %(n)s 个月未关闭", level=self.from_, n=self.months)


AnyRule = Annotated[Union[AtLeast, Flag, SameIssueUnits, RepeatCustomer, Communications, OpenLonger],
                    Field(discriminator="rule")]
