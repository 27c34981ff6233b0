"""Choice field types: one of a list, several of a list, and yes/no."""
from __future__ import annotations

from wtforms import BooleanField, SelectField, SelectMultipleField

from kefu.core.i18n import _, _l
from kefu.core.validation import InvalidValue
from kefu.records.fields.base import FieldType
from kefu.records.fields.common import fold, list_text, option_value, scalar_text, single_value_error, split_values


class ChoicesMixin:
    """Shared by single and multiple choice: the ``choices`` option and membership."""

    finite_values = True
    report_dimension = True

    def _choices(self, definition) -> list[str]:
        choices = option_value(definition, "choices")
        return [str(choice) for choice in choices] if isinstance(choices, (list, tuple)) else []

    def _not_a_choice(self, value, definition) -> InvalidValue:
        return InvalidValue(_("“%(value)s”不是可选项，可选：%(choices)s",
                              value=value, choices=list_text(self._choices(definition))))

    def _option_problems(self, definition):
        choices = option_value(definition, "choices")
        if choices is None:
            return [_("%(type)s类型必须填写可选项 choices", type=self.label)]
        if not isinstance(choices, (list, tuple)):
            return [_("可选项 choices 应为列表")]
        problems = []
        if any(not isinstance(choice, str) or not choice.strip() for choice in choices):
            problems.append(_("可选项 choices 中每一项都应为非空文字"))
        duplicates = sorted({str(choice) for choice in choices if list(choices).count(choice) > 1})
        if duplicates:
            problems.append(_("可选项重复：%(choices)s", choices=list_text(duplicates)))
        return problems

    def _form_kwargs(self, definition):
        return {"choices": [(choice, choice) for choice in self._choices(definition)], "validate_choice": False}


class ChoiceType(ChoicesMixin, FieldType):
    """One of ``choices`` (exact text after trimming)."""

    name = "choice"
    label = _l("单选")
    single_choice = True
    export_width = 12
    options = ("default", "choices")
    operators = ("eq", "ne", "in", "empty", "not_empty")
    form_class = SelectField
    required_text = _l("请选择%(label)s")

    def parse(self, raw, definition, context):
        return scalar_text(raw) or None

    def check_value(self, value, definition, context):
        if value not in self._choices(definition):
            raise self._not_a_choice(value, definition)

    check_filter = check_value

    def _form_kwargs(self, definition):
        kwargs = super()._form_kwargs(definition)
        kwargs["choices"] = [("", _("请选择")), *kwargs["choices"]]
        return kwargs

    def _value_schema(self, definition):
        return {"type": "string", "enum": self._choices(definition)}


class MultiChoiceType(ChoicesMixin, FieldType):
    """Several of ``choices``: a list, or text separated by "," / "、"; kept in the order of ``choices``, no repeats.

    Filters: ``eq`` — has this option; ``in`` — has any of these.
    """

    name = "multi_choice"
    label = _l("多选")
    multiple = True
    sortable = False
    export_width = 18
    options = ("default", "choices")
    operators = ("eq", "in", "empty", "not_empty")
    form_class = SelectMultipleField
    required_text = _l("请选择%(label)s")

    def parse(self, raw, definition, context):
        choices = self._choices(definition)
        if isinstance(raw, str) and raw.strip() in choices:
            items = [raw]
        elif isinstance(raw, (str, list, tuple)):
            items = split_values(raw)
        else:
            raise InvalidValue(_("请选择一个或多个可选项"))
        picked = {scalar_text(item) for item in items}
        for item in (scalar_text(item) for item in items):
            if item not in choices:
                raise self._not_a_choice(item, definition)
        return [choice for choice in choices if choice in picked] or None

    def _one_option(self, raw, definition) -> str:
        option = scalar_text(raw)
        if not option:
            raise InvalidValue(_("请填写筛选值"))
        if option not in self._choices(definition):
            raise self._not_a_choice(option, definition)
        return option

    def to_storage(self, value):
        return None if value is None else [str(item) for item in value]

    def from_storage(self, stored):
        return None if stored is None else [str(item) for item in stored]

    def to_json(self, value, tz=None):
        return None if value is None else list(value)

    def display(self, value, tz=None) -> str:
        return "" if value is None else list_text(value)

    def form_data(self, value, tz=None):
        return None if value is None else list(value)

    def _query_eq(self, path, raw, definition, context):
        return {path: self._one_option(raw, definition)}

    def _query_in(self, path, raw, definition, context):
        options = [self._one_option(item, definition) for item in split_values(raw)]
        if not options:
            raise InvalidValue(_("请填写筛选值"))
        return {path: {"$in": options}}

    def _value_schema(self, definition):
        schema = {"type": "array", "items": {"type": "string", "enum": self._choices(definition)}, "uniqueItems": True}
        if getattr(definition, "required", False):
            schema["minItems"] = 1
        return schema


_TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on", "是", "对", "有", "√"})
_FALSE_WORDS = frozenset({"false", "0", "no", "n", "off", "否", "不", "错", "无", "×"})


class BooleanType(FieldType):
    """Yes or no: true/false, 1/0, yes/no, on/off, 是/否. Filter ``eq`` 否 also matches records never set."""

    name = "boolean"
    finite_values = True
    label = _l("是否")
    holds_yes_no = True
    export_width = 8
    operators = ("eq", "empty", "not_empty")
    form_class = BooleanField

    def parse(self, raw, definition, context):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        if isinstance(raw, str):
            word = fold(raw).lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
        if isinstance(raw, (dict, list, tuple)):
            raise single_value_error()
        raise InvalidValue(_("请选择“是”或“否”"))

    def to_storage(self, value):
        return None if value is None else bool(value)

    def display(self, value, tz=None) -> str:
        if value is None:
            return ""
        return _("是") if value else _("否")

    def _presence_validators(self, definition):
        return []  # an unticked box is an answer ("否"), not a blank

    def _query_eq(self, path, raw, definition, context):
        value = self._filter_value(raw, definition, context)
        return {path: True} if value else {path: {"$ne": True}}

    def _query_empty(self, path, raw, definition, context):
        return {path: None}

    def _query_not_empty(self, path, raw, definition, context):
        return {path: {"$in": [True, False]}}

    def _value_schema(self, definition):
        return {"type": "boolean"}
