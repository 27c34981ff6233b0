"""The base of every field type (:class:`FieldType`), of the ordered ones (:class:`OrderedType`), and the one
table of filter operators."""
from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from markupsafe import escape
from wtforms.validators import InputRequired

from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _, _l
from kefu.core.validation import InvalidValue
from kefu.records.fields.common import (
    DEFAULT_KEYWORDS, MAX_CONTAINS_LENGTH, MAX_FILTER_VALUES, FieldContext, context_or_default, format_message,
    is_blank, label_of, option_value, scalar_text, split_values,
)
from kefu.records.fields.forms import CleanValue, OptionalValue, TypedStringField
from kefu.records.fields.spec import FIELD_KEY_PATTERN, OPTION_NAMES


def _plain(value):
    """Text with its line breaks made "\\n" and stripped; any other value as it is."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip() if isinstance(value, str) else value


@dataclass(frozen=True)
class Operator:
    """A filter operator as people read it: ``label`` names it where the allowed operators are listed ("不小于"),
    ``reads`` is how a filter using it reads in lists and the export's 导出说明 sheet ("不早于/不小于")."""

    label: object
    reads: object


OPERATORS = {
    "eq": Operator(_l("等于"), _l("等于")),
    "ne": Operator(_l("不等于"), _l("不等于")),
    "in": Operator(_l("属于其中之一"), _l("属于")),
    "gte": Operator(_l("不小于"), _l("不早于/不小于")),
    "lte": Operator(_l("不大于"), _l("不晚于/不大于")),
    "contains": Operator(_l("包含"), _l("包含")),
    "empty": Operator(_l("为空"), _l("为空")),
    "not_empty": Operator(_l("不为空"), _l("不为空")),
}
"""Every filter operator (the ``op`` of ``[field, op, value]``); ``FieldType.operators`` names those a type has."""


class FieldType:
    """Everything about one type of field. Subclasses set the class attributes and override the hooks.

    Class attributes: ``name`` (registry key), ``label`` (Chinese name),
    ``options`` (the :data:`OPTION_NAMES` the type accepts), ``operators``
    (filter operators, keys of :data:`OPERATORS`), ``default_keywords``
    (special defaults such as ``"now"``), ``export_number_format`` (Excel
    number format of :meth:`export_cell` values, or None).

    What the engine does differently per type is asked of the type, never
    decided by its name: ``sortable`` (lists may sort by the stored value),
    ``holds_files`` (values are attachment ids, linked to the record when it
    is saved; never a list column), ``narrows_units`` (a value names a project
    that unit names are then looked up in), ``narrowed_by_project`` (a value
    is a unit, looked up in that project), ``report_dimension`` (the monthly
    report counts records by its values), ``export_width`` (spreadsheet column
    width in characters) and ``export_dates`` (:meth:`export_cell` gives dates
    or times, written as spreadsheet dates).

    What a value is, for the rule sections that name fields by what they hold:
    ``holds_numbers`` (a number: amounts, counts), ``holds_dates`` (a calendar
    day, with or without a time), ``has_time_of_day`` (a moment: a day and a
    time), ``holds_yes_no`` (是/否), ``single_choice`` (one of the definition's
    ``choices``), ``multiple`` (a list of several of them; counted one by one),
    ``one_line_text`` (free text on one line: a name, a short category — not a
    phone number or an e-mail), ``identifies_customer`` (the same value on two
    records means the same customer: a customer link, a phone number, an ID
    number, an e-mail or a name) and ``identifies_caller`` (the number a person
    got in touch from: repeat complainants are found by it).
    """

    name = ""
    label = _l("字段")
    options: tuple[str, ...] = ("default",)
    operators: tuple[str, ...] = ("eq", "empty", "not_empty")
    default_keywords: tuple[str, ...] = ()
    export_number_format: str | None = None
    sortable = True
    holds_files = False
    narrows_units = False
    narrowed_by_project = False
    report_dimension = False
    holds_numbers = False
    holds_dates = False
    has_time_of_day = False
    holds_yes_no = False
    single_choice = False
    multiple = False
    one_line_text = False
    identifies_customer = False
    identifies_caller = False
    export_width = 14
    export_dates = False
    # A few values only (choices, yes/no): how one is shown can be remembered per export column.
    finite_values = False
    form_class = TypedStringField
    required_text = _l("请填写%(label)s")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    # --- definitions --------------------------------------------------------

    def check_definition(self, definition) -> list[str]:
        """Problems with ``definition`` for this type, as Chinese sentences naming the field; [] when fine.

        Checks the key's form, that only options of this type are set, the
        type's own options (:meth:`_option_problems`) and, when those are
        sound, that the default is acceptable.
        """
        label = label_of(definition)
        problems = []
        key = getattr(definition, "key", None)
        if not isinstance(key, str) or not FIELD_KEY_PATTERN.match(key):
            problems.append(_("字段“%(label)s”的标识“%(key)s”无效：须以小写字母开头，只含小写字母、数字和下划线，最多 40 位",
                              label=label, key=key if key is not None else ""))
        if option_value(definition, "label") is None:
            problems.append(_("字段“%(label)s”缺少显示名称", label=label))
        for option in OPTION_NAMES:
            if option_value(definition, option) is not None and option not in self.options:
                problems.append(_("字段“%(label)s”：%(type)s类型不支持选项 %(option)s",
                                  label=label, type=self.label, option=option))
        problems.extend(
            _("字段“%(label)s”：%(problem)s", label=label, problem=problem)
            for problem in self._option_problems(definition)
        )
        if not problems:
            problems.extend(self._default_problems(definition))
        return problems

    def _option_problems(self, definition) -> list[str]:
        """The type's own option checks, as messages without the field name. Override."""
        return []

    def _default_problems(self, definition) -> list[str]:
        default = option_value(definition, "default")
        if default is None or "default" not in self.options:
            return []
        label = label_of(definition)
        keyword = default.strip() if isinstance(default, str) else None
        if keyword in DEFAULT_KEYWORDS and keyword not in self.default_keywords:
            return [_("字段“%(label)s”：默认值“%(default)s”不适用于%(type)s类型",
                      label=label, default=keyword, type=self.label)]
        try:
            self.default_value(definition, None)
        except InvalidValue as exc:
            return [_("字段“%(label)s”的默认值无效：%(problem)s", label=label, problem=str(exc))]
        return []

    def default_value(self, definition, context: FieldContext | None = None):
        """The value a new record starts with: the cleaned literal default, or a keyword's value, or None."""
        default = option_value(definition, "default")
        if default is None:
            return None
        context = context_or_default(context)
        if isinstance(default, str) and default.strip() in self.default_keywords:
            return self._keyword_default(default.strip(), context)
        return self.clean(default, definition, context)

    def _keyword_default(self, keyword: str, context: FieldContext):
        raise NotImplementedError  # pragma: no cover - only types with default_keywords

    # --- values -------------------------------------------------------------

    def clean(self, raw, definition, context: FieldContext | None = None):
        """The Python value for ``raw`` (form or JSON input); None when blank.

        Enforces the definition's options (range, length, pattern, choices)
        but not ``required`` — the engine does. Raises :class:`InvalidValue`
        with a Chinese message that can be shown next to the field.
        """
        if is_blank(raw):
            return None
        context = context_or_default(context)
        value = self.parse(raw, definition, context)
        if value is not None:
            self.check_value(value, definition, context)
        return value

    def clean_keeping(self, raw, stored, definition, context: FieldContext | None = None):
        """:meth:`clean` of input to a record holding ``stored``; when the definition refuses ``raw`` but it is
        ``stored`` sent back unchanged (a choice since removed, a value from before a stricter limit), ``stored``
        is kept as it is: a save that did not touch a field never changes it."""
        try:
            return self.clean(raw, definition, context)
        except InvalidValue:
            if stored is not None and self.same_as_stored(raw, stored, context_or_default(context).tz):
                return stored
            raise

    def same_as_stored(self, raw, stored, tz: ZoneInfo) -> bool:
        """Whether input ``raw`` is the value ``stored`` as the API returns it or the edit form shows it; text is
        compared with its line breaks as "\\n" and without the blanks around it (a browser posts a textarea's line
        breaks as "\\r\\n")."""
        return any(_plain(raw) == _plain(shown) for shown in (stored, self.to_json(stored, tz),
                                                              self.form_data(stored, tz)))

    def same_choice(self, value: str, definition) -> list[str]:
        """The stored values meaning ``value`` (text a rule names, ``kefu.rules.sla``): only itself, but for the
        choice types, where a renamed choice's old name means its new one."""
        return [value]

    def from_json(self, raw, definition, context: FieldContext | None = None):
        """Same as :meth:`clean`: the API accepts what the form accepts."""
        return self.clean(raw, definition, context)

    def parse(self, raw, definition, context: FieldContext):
        """Non-blank input to the value, without the definition's limits. Override."""
        raise NotImplementedError  # pragma: no cover

    def check_value(self, value, definition, context: FieldContext) -> None:
        """Raise :class:`InvalidValue` when a parsed value breaks the definition's limits. Override."""

    def missing_message(self, definition) -> str:
        """What to say when a required field was left blank: "请填写索赔金额"."""
        return format_message(self.required_text, label=label_of(definition))

    def to_storage(self, value):
        """The BSON-safe form of a clean value (None stays None)."""
        return value

    def from_storage(self, stored):
        """The Python value of what :meth:`to_storage` stored (None stays None)."""
        return stored

    def to_json(self, value, tz: ZoneInfo | None = None):
        """The JSON-safe form of a value for the API (None stays None)."""
        return value

    def display(self, value, tz: ZoneInfo | None = None) -> str:
        """The value as text for list and detail pages ("" for None)."""
        return "" if value is None else str(value)

    def mask(self, value) -> str:
        """The value as shown to users without the right to see sensitive fields."""
        return "" if value is None else "******"

    def export_cell(self, value, tz: ZoneInfo | None = None):
        """The value for a spreadsheet cell (None for an empty cell); see ``export_number_format``."""
        return None if value is None else self.display(value, tz)

    # --- forms --------------------------------------------------------------

    def form_field(self, definition, context: FieldContext | None = None):
        """An unbound WTForms field for the definition.

        Label and description come from the definition; ``InputRequired`` or
        ``Optional`` from ``required``; a validator runs :meth:`clean` (same
        messages as the API) and leaves the clean value in ``field.data``;
        readonly fields render ``readonly``. The default is the definition's
        default, resolved when the form is made.
        """
        context = context_or_default(context)
        render_kw = dict(self._render_kw(definition))
        if getattr(definition, "readonly", False):
            render_kw["readonly"] = True
        return self.form_class(
            label=label_of(definition),
            # Escaped here: Flask-Admin renders a description as markup (``field.description|safe``).
            description=escape(str(option_value(definition, "help") or "")),
            validators=[*self._presence_validators(definition), CleanValue(self, definition, context)],
            render_kw=render_kw or None,
            default=lambda: self._form_default(definition, context),
            **self._form_kwargs(definition, context),
        )

    def _form_default(self, definition, context):
        try:
            return self.form_data(self.default_value(definition, context), context.tz)
        except InvalidValue:
            return None  # a broken default is check_definition's business, not the form's

    def _presence_validators(self, definition) -> list:
        if getattr(definition, "required", False):
            return [InputRequired(message=self.missing_message(definition))]
        return [OptionalValue()]

    def _render_kw(self, definition) -> dict:
        return {}

    def _form_kwargs(self, definition, context: FieldContext) -> dict:
        return {}

    def form_data(self, value, tz: ZoneInfo | None = None):
        """What to put into the form field when editing a stored value."""
        return value

    def filter_options(self, definition) -> list[tuple[str, str]] | None:
        """``(value, label)`` pairs a list filter offers to pick from, or None for a typed filter value."""
        return None

    # --- filters ------------------------------------------------------------

    def query(self, path: str, op: str, raw, definition, context: FieldContext | None = None) -> dict:
        """A MongoDB filter fragment on ``path`` for ``[field, op, raw]``.

        Values go through :meth:`clean` and :meth:`to_storage`, so they compare
        as stored. ``in`` takes a list or "a,b". Raises ``ValidationFailed``
        when the type has no such operator (listing the allowed ones) or the
        value is invalid (its message, keyed by the field key, in ``fields``).
        """
        if op not in self.operators:
            allowed = "、".join(f"{OPERATORS[name].label}（{name}）" for name in self.operators)
            message = _("“%(label)s”不支持筛选条件“%(op)s”，可用：%(allowed)s",
                        label=label_of(definition), op=op, allowed=allowed)
            raise ValidationFailed(message, {getattr(definition, "key", "") or "": message})
        context = context_or_default(context)
        try:
            return getattr(self, f"_query_{op}")(path, raw, definition, context)
        except InvalidValue as exc:
            raise ValidationFailed(
                _("“%(label)s”的筛选值无效：%(problem)s", label=label_of(definition), problem=str(exc)),
                {getattr(definition, "key", "") or "": str(exc)},
            ) from exc

    def _filter_parse(self, raw, definition, context):
        """One filter value as a Python value; blank is refused.

        Parsed like input, but range, length and pattern limits are not applied
        (looking for values outside them is legitimate); :meth:`check_filter`
        adds the checks that do matter for filters (choices).
        """
        value = None if is_blank(raw) else self.parse(raw, definition, context)
        if value is None:
            raise InvalidValue(_("请填写筛选值"))
        self.check_filter(value, definition, context)
        return value

    def check_filter(self, value, definition, context) -> None:
        """Raise :class:`InvalidValue` for a filter value that can never match. Override."""

    def _filter_value(self, raw, definition, context):
        """One filter value, parsed and in stored form."""
        return self.to_storage(self._filter_parse(raw, definition, context))

    def _filter_values(self, raw, definition, context) -> list:
        values = split_values(raw)
        if not values:
            raise InvalidValue(_("请填写筛选值"))
        if len(values) > MAX_FILTER_VALUES:
            raise InvalidValue(_("筛选值最多 %(n)s 个", n=MAX_FILTER_VALUES))
        return [self._filter_value(value, definition, context) for value in values]

    def _query_eq(self, path, raw, definition, context):
        return {path: self._filter_value(raw, definition, context)}

    def _query_ne(self, path, raw, definition, context):
        return {path: {"$ne": self._filter_value(raw, definition, context)}}

    def _query_in(self, path, raw, definition, context):
        return {path: {"$in": self._filter_values(raw, definition, context)}}

    def _query_gte(self, path, raw, definition, context):
        return {path: {"$gte": self._filter_value(raw, definition, context)}}

    def _query_lte(self, path, raw, definition, context):
        return {path: {"$lte": self._filter_value(raw, definition, context)}}

    def _query_contains(self, path, raw, definition, context):
        needle = self._contains_text(raw)
        if not needle:
            raise InvalidValue(_("请填写筛选值"))
        if len(needle) > MAX_CONTAINS_LENGTH:
            raise InvalidValue(_("筛选文字最多 %(n)s 个字符", n=MAX_CONTAINS_LENGTH))
        return {path: {"$regex": re.escape(needle), "$options": "i"}}

    def _contains_text(self, raw) -> str:
        return scalar_text(raw)

    def _query_empty(self, path, raw, definition, context):
        return {path: {"$in": [None, "", []]}}

    def _query_not_empty(self, path, raw, definition, context):
        return {path: {"$nin": [None, "", []]}}

    # --- API schema ---------------------------------------------------------

    def json_schema(self, definition) -> dict:
        """JSON Schema (OpenAPI 3.1) of the value in the API; nullable unless required."""
        schema = self._value_schema(definition)
        if not getattr(definition, "required", False):
            schema["type"] = [schema["type"], "null"]
            if "enum" in schema:
                schema["enum"] = [*schema["enum"], None]
        schema["title"] = label_of(definition)
        help_text = option_value(definition, "help")
        if help_text is not None:
            schema["description"] = str(help_text)
        if getattr(definition, "readonly", False):
            schema["readOnly"] = True
        return schema

    def _value_schema(self, definition) -> dict:
        return {"type": "string"}


class OrderedType(FieldType):
    """Values with an order: ``min`` / ``max`` are written like values and checked inclusively."""

    options = ("default", "min", "max")
    operators = ("eq", "gte", "lte", "empty", "not_empty")
    below_text = _l("不能小于 %(bound)s")
    above_text = _l("不能大于 %(bound)s")

    def bound_text(self, value, tz: ZoneInfo) -> str:
        """How a bound is written in a message."""
        return self.display(value, tz)

    def _bound(self, definition, name: str, context: FieldContext):
        option = option_value(definition, name)
        if option is None:
            return None
        try:
            return self.parse(option, definition, context)
        except InvalidValue:
            return None  # check_definition reports it

    def check_value(self, value, definition, context):
        low = self._bound(definition, "min", context)
        if low is not None and value < low:
            raise InvalidValue(format_message(self.below_text, bound=self.bound_text(low, context.tz)))
        high = self._bound(definition, "max", context)
        if high is not None and value > high:
            raise InvalidValue(format_message(self.above_text, bound=self.bound_text(high, context.tz)))

    def _option_problems(self, definition):
        context = context_or_default(None)
        problems, bounds = [], {}
        for name, option_label in (("min", _("最小值")), ("max", _("最大值"))):
            option = option_value(definition, name)
            if option is None:
                continue
            try:
                bounds[name] = self.parse(option, definition, context)
            except InvalidValue as exc:
                problems.append(_("%(option)s %(name)s“%(value)s”无效：%(problem)s",
                                  option=option_label, name=name, value=option, problem=str(exc)))
        if len(bounds) == 2 and bounds["min"] > bounds["max"]:
            problems.append(_("最小值 %(min)s 大于最大值 %(max)s",
                              min=self.bound_text(bounds["min"], context.tz),
                              max=self.bound_text(bounds["max"], context.tz)))
        return problems
