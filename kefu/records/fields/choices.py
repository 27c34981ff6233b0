"""Choice field types: one of a list, several of a list, and yes/no."""
from __future__ import annotations

from wtforms import BooleanField, SelectField, SelectMultipleField

from kefu.core.i18n import _, _l
from kefu.core.validation import InvalidValue
from kefu.records.fields.base import FieldType
from kefu.records.fields.common import fold, list_text, option_value, scalar_text, single_value_error, split_values


class ChoicesMixin:
    """Shared by single and multiple choice: the ``choices`` option and membership.

    What records hold outlives the options offered: ``inactive_choices`` are values no longer offered that records
    still hold, ``renamed_choices`` pairs ``[old, new]`` of an explicit rename (records are moved to the new name in
    the background, ``kefu.records.choice_migrations``). Both are *known* values: shown (marked 已停用 / 已改名 in
    forms and filters), filterable — a filter naming either name of a renamed choice finds both — and kept when a
    record is saved without touching them; new input picks from ``choices`` only."""

    finite_values = True
    report_dimension = True

    def _choices(self, definition) -> list[str]:
        choices = option_value(definition, "choices")
        return [str(choice) for choice in choices] if isinstance(choices, (list, tuple)) else []

    def _inactive(self, definition) -> list[str]:
        inactive = option_value(definition, "inactive_choices")
        return [str(choice) for choice in inactive] if isinstance(inactive, (list, tuple)) else []

    def _renamed(self, definition) -> dict[str, str]:
        """Old name → current name of every renamed choice."""
        pairs = option_value(definition, "renamed_choices")
        if not isinstance(pairs, (list, tuple)):
            return {}
        return {str(pair[0]): str(pair[1]) for pair in pairs if isinstance(pair, (list, tuple)) and len(pair) == 2}

    def known_values(self, definition) -> list[str]:
        """Every value a record of this field may hold: the choices, the inactive ones and renamed old names."""
        return list(dict.fromkeys([*self._choices(definition), *self._inactive(definition),
                                   *self._renamed(definition)]))

    def same_choice(self, value: str, definition) -> list[str]:
        """The stored values meaning ``value``: its current name and every old name renamed to it."""
        renamed = self._renamed(definition)
        current = renamed.get(value, value)
        return [current, *(old for old, new in renamed.items() if new == current)]

    def choice_label(self, value: str, definition) -> str:
        """``value`` as a pick list shows it: marked when it is no longer offered."""
        if value in self._choices(definition):
            return value
        renamed = self._renamed(definition).get(value)
        if renamed is not None:
            return _("%(value)s（已改名为“%(new)s”）", value=value, new=renamed)
        return _("%(value)s（已停用）", value=value)

    def filter_options(self, definition):
        return [(value, self.choice_label(value, definition)) for value in self.known_values(definition)
                if value not in self._renamed(definition)]

    def _not_a_choice(self, value, definition) -> InvalidValue:
        return InvalidValue(_("“%(value)s”不是可选项，可选：%(choices)s",
                              value=value, choices=list_text(self._choices(definition))))

    def _not_known(self, value, definition) -> InvalidValue:
        return InvalidValue(_("“%(value)s”不是可选项，可选：%(choices)s",
                              value=value, choices=list_text(self.known_values(definition))))

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
        inactive = option_value(definition, "inactive_choices")
        if inactive is not None and (not isinstance(inactive, (list, tuple))
                                     or any(not isinstance(c, str) or not c.strip() for c in inactive)):
            problems.append(_("已停用的可选项 inactive_choices 应为非空文字的列表"))
        renamed = option_value(definition, "renamed_choices")
        if renamed is not None and (not isinstance(renamed, (list, tuple)) or any(
                not isinstance(pair, (list, tuple)) or len(pair) != 2
                or any(not isinstance(name, str) or not name.strip() for name in pair) for pair in renamed)):
            problems.append(_("已改名的可选项 renamed_choices 应为 [原名, 新名] 的列表"))
        return problems

    def _offered(self, definition, kept) -> list[tuple[str, str]]:
        """The pick list: the choices, then the values of ``kept`` (the edited record's) no longer offered."""
        choices = self._choices(definition)
        return [*((choice, choice) for choice in choices),
                *((value, self.choice_label(value, definition)) for value in kept if value not in choices)]

    def _value_schema_enum(self, definition) -> list[str]:
        # Responses carry what records hold (an inactive or not yet migrated value), so the schema names those too.
        return self.known_values(definition)


class ChoiceType(ChoicesMixin, FieldType):
    """One of ``choices`` (exact text after trimming)."""

    name = "choice"
    label = _l("单选")
    single_choice = True
    export_width = 12
    options = ("default", "choices", "inactive_choices", "renamed_choices")
    operators = ("eq", "ne", "in", "empty", "not_empty")
    form_class = SelectField
    required_text = _l("请选择%(label)s")

    def parse(self, raw, definition, context):
        return scalar_text(raw) or None

    def check_value(self, value, definition, context):
        if value not in self._choices(definition):
            raise self._not_a_choice(value, definition)

    def check_filter(self, value, definition, context):
        if value not in self.known_values(definition):
            raise self._not_known(value, definition)

    def _filter_values(self, raw, definition, context) -> list:
        values = super()._filter_values(raw, definition, context)
        return list(dict.fromkeys(alias for value in values for alias in self.same_choice(value, definition)))

    def _query_eq(self, path, raw, definition, context):
        values = self._filter_values([raw], definition, context)
        return {path: values[0] if len(values) == 1 else {"$in": values}}

    def _query_ne(self, path, raw, definition, context):
        values = self._filter_values([raw], definition, context)
        return {path: {"$ne": values[0]} if len(values) == 1 else {"$nin": values}}

    def _form_kwargs(self, definition, context):
        stored = (context.current or {}).get(definition.key) if context is not None else None
        kept = [stored] if isinstance(stored, str) else []
        return {"choices": [("", _("请选择")), *self._offered(definition, kept)], "validate_choice": False}

    def _value_schema(self, definition):
        return {"type": "string", "enum": self._value_schema_enum(definition)}


class MultiChoiceType(ChoicesMixin, FieldType):
    """Several of ``choices``: a list, or text separated by "," / "、"; kept in the order of ``choices``, no repeats.

    Filters: ``eq`` — has this option; ``in`` — has any of these.
    """

    name = "multi_choice"
    label = _l("多选")
    multiple = True
    sortable = False
    export_width = 18
    options = ("default", "choices", "inactive_choices", "renamed_choices")
    operators = ("eq", "in", "empty", "not_empty")
    form_class = SelectMultipleField
    required_text = _l("请选择%(label)s")

    def _items(self, raw, known) -> list[str]:
        if isinstance(raw, str) and raw.strip() in known:
            return [raw.strip()]
        if isinstance(raw, (str, list, tuple)):
            return [scalar_text(item) for item in split_values(raw)]
        raise InvalidValue(_("请选择一个或多个可选项"))

    def parse(self, raw, definition, context):
        choices = self._choices(definition)
        items = self._items(raw, choices)
        for item in items:
            if item not in choices:
                raise self._not_a_choice(item, definition)
        return [choice for choice in choices if choice in items] or None

    def clean_keeping(self, raw, stored, definition, context=None):
        """As :meth:`FieldType.clean_keeping`; besides, options the record holds that are no longer offered stay
        while others are added or removed next to them, and the same options as ``stored`` in another order (the
        choices reordered since it was stored) are ``stored`` as it is: an untouched field is not rewritten."""
        try:
            value = super().clean_keeping(raw, stored, definition, context)
        except InvalidValue:
            choices = self._choices(definition)
            held = [item for item in stored or () if item not in choices]
            items = self._items(raw, [*choices, *held]) if held else []
            kept = [item for item in held if item in items]
            if not kept:
                raise
            picked = self.clean([item for item in items if item not in kept], definition, context) or []
            value = [*picked, *kept]
        if value is not None and stored is not None and set(value) == set(stored):
            return stored
        return value

    def _one_option(self, raw, definition) -> list[str]:
        option = scalar_text(raw)
        if not option:
            raise InvalidValue(_("请填写筛选值"))
        if option not in self.known_values(definition):
            raise self._not_known(option, definition)
        return self.same_choice(option, definition)

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

    def _form_kwargs(self, definition, context):
        stored = (context.current or {}).get(definition.key) if context is not None else None
        kept = [str(item) for item in stored] if isinstance(stored, (list, tuple)) else []
        return {"choices": self._offered(definition, kept), "validate_choice": False}

    def _query_eq(self, path, raw, definition, context):
        options = self._one_option(raw, definition)
        return {path: options[0] if len(options) == 1 else {"$in": options}}

    def _query_in(self, path, raw, definition, context):
        options = [alias for item in split_values(raw) for alias in self._one_option(item, definition)]
        if not options:
            raise InvalidValue(_("请填写筛选值"))
        return {path: {"$in": list(dict.fromkeys(options))}}

    def _value_schema(self, definition):
        schema = {"type": "array", "items": {"type": "string", "enum": self._value_schema_enum(definition)},
                  "uniqueItems": True}
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
