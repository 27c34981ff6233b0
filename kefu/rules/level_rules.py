"""The rules of the ``levels:`` section (``kefu.rules.levels``), one model each: what they read and when they hold
is evaluated there; here is their shape, the kinds of field they may name and their default timeline text."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BeforeValidator, Field, StrictInt, StrictStr

from kefu.core.i18n import _l
from kefu.records.sections import SectionModel, refuse
from kefu.rules.shapes import DATES, NUMBERS, FieldKind, Name, named_kind, picker

YES_NO = named_kind("yes_no", FieldKind(lambda t: t.holds_yes_no, ("boolean",)))
# What "the same issue" is read from: one choice, or a short text.
SAME_VALUES = named_kind("same_values", FieldKind(lambda t: t.single_choice or t.one_line_text, ("choice", "text")))
PROJECTS = named_kind("project", FieldKind(lambda t: t.narrows_units, ("project",)))
UNITS = named_kind("unit", FieldKind(lambda t: t.narrowed_by_project, ("unit",)))
CUSTOMERS = named_kind("customer", FieldKind(lambda t: t.identifies_customer,
                                             ("customer", "phone", "id_number", "email", "text")))
# What the editors call each rule (their kind picker), in the order they offer them.
RULE_TITLES = {"at_least": _l("金额达到"), "flag": _l("勾选项"), "same_issue_units": _l("同项目同类 N 户"),
               "repeat_customer": _l("同一客户重复"), "communications": _l("沟通次数"),
               "open_longer": _l("超过 N 个月未结")}
WITHIN_DAYS = _l("统计天数（不填则不限）")


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
    level: StrictStr = Field(title=_l("升至等级"), json_schema_extra=picker("level"))
    reason: Name | None = Field(None, title=_l("说明"), description=_l("时间线上的说明；默认按规则生成"))

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
    field: StrictStr = Field(title=_l("金额字段"), json_schema_extra=picker("field", "number"))
    value: Annotated[Decimal, BeforeValidator(_positive)] = Field(title=_l("达到"))

    def default_reason(self, label):
        return _l("“%(label)s”达到 %(value)s", label=label, value=self.value)


class Flag(Rule):
    """The yes/no field ``field`` is 是."""

    field_kinds: ClassVar = {"field": YES_NO}
    rule: Literal["flag"]
    field: StrictStr = Field(title=_l("勾选字段"), json_schema_extra=picker("field", "yes_no"))

    def default_reason(self, label):
        return _l("“%(label)s”为是", label=label)


class SameIssueUnits(Rule):
    """Records with the same ``field`` in the same project come from ``units`` different units."""

    field_kinds: ClassVar = {"field": SAME_VALUES, "project_field": PROJECTS, "unit_field": UNITS}
    rule: Literal["same_issue_units"]
    field: StrictStr = Field(title=_l("同类按字段"), json_schema_extra=picker("field", "same_values"))
    project_field: StrictStr = Field(title=_l("项目字段"), json_schema_extra=picker("field", "project"))
    unit_field: StrictStr = Field(title=_l("户位字段"), json_schema_extra=picker("field", "unit"))
    units: StrictInt = Field(ge=2, title=_l("户数达到"))
    within_days: StrictInt | None = Field(None, ge=1, title=WITHIN_DAYS)

    def default_reason(self, label):
        return _l("同一项目同类投诉来自 %(n)s 户及以上", n=self.units)


class RepeatCustomer(Rule):
    """The same customer has ``count`` records with the same ``field``."""

    field_kinds: ClassVar = {"field": SAME_VALUES, "customer_field": CUSTOMERS}
    rule: Literal["repeat_customer"]
    field: StrictStr = Field(title=_l("同类按字段"), json_schema_extra=picker("field", "same_values"))
    customer_field: StrictStr = Field(title=_l("客户按字段"), json_schema_extra=picker("field", "customer",
                                                                                   core="customer"))
    count: StrictInt = Field(ge=2, title=_l("次数达到"))
    within_days: StrictInt | None = Field(None, ge=1, title=WITHIN_DAYS)

    def default_reason(self, label):
        return _l("同一客户 %(n)s 次及以上投诉同类问题", n=self.count)


class Communications(Rule):
    """``count`` timeline events of ``kinds`` while the record is open."""

    rule: Literal["communications"]
    kinds: tuple[StrictStr, ...] = Field(min_length=1, title=_l("沟通方式"), json_schema_extra=picker("event_kinds"))
    count: StrictInt = Field(ge=1, title=_l("次数达到"))

    def default_reason(self, label):
        return _l("沟通 %(n)s 次仍未协调一致", n=self.count)


class OpenLonger(Rule):
    """At level ``from`` and still open ``months`` after ``start`` (default: registration)."""

    field_kinds: ClassVar = {"start": DATES}
    rule: Literal["open_longer"]
    from_: StrictStr = Field(alias="from", title=_l("当前等级"), json_schema_extra=picker("level"))
    months: StrictInt = Field(ge=1, title=_l("超过月数"))
    start: StrictStr | None = Field(None, title=_l("起算字段（不填按登记时间）"), json_schema_extra=picker("field", "date"))

    def default_reason(self, label):
        return _l("“%(level)s”超过 %(n)s 个月未关闭", level=self.from_, n=self.months)


AnyRule = Annotated[Union[AtLeast, Flag, SameIssueUnits, RepeatCustomer, Communications, OpenLonger],
                    Field(discriminator="rule")]
