"""The field-type registry: one class per type of field a record type can have.

Record types are data: a list of field *definitions* (key, label, type, options)
that an admin edits. Field *types* are code: each :class:`FieldType` owns
everything about its type — checking a definition's options, cleaning input,
the stored (BSON) and JSON forms, display and spreadsheet export, the WTForms
field, the filter operators and their MongoDB fragments, and the JSON Schema —
so the rest of the engine never branches on a type name::

    field_type = get_field_type(definition.type)
    value = field_type.clean(raw, definition, context)      # InvalidValue says why
    stored = field_type.to_storage(value)                   # BSON-safe
    fragment = field_type.query("data.claim_amount", "gte", "5000", definition, context)

A *definition* is any object with the attributes ``key, label, type, required,
default, min, max, max_length, pattern, choices, sensitive, readonly, help,
max_size_mb``; a missing attribute, ``None``, ``""`` and an empty list all mean
"unset". Field types are stateless singletons held in :data:`FIELD_TYPES`.

Every message meant for a person is Simplified Chinese through ``kefu.core.i18n``.
Input problems raise :class:`kefu.core.validation.InvalidValue` (its text goes next
to the field as is); problems with a filter or with the registry itself raise
:class:`kefu.core.errors.ValidationFailed`.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from zoneinfo import ZoneInfo

from bson import DBRef, Decimal128, ObjectId
from markupsafe import Markup
from mongoengine import Document
from werkzeug.datastructures import FileStorage
from wtforms import (
    BooleanField, DateField, DateTimeLocalField, MultipleFileField, SelectField, SelectMultipleField, StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Optional, StopValidation, ValidationError
from wtforms.widgets import FileInput

from kefu.core.clock import utcnow
from kefu.core.config import DEFAULT_TIMEZONE
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _, _l
from kefu.core.validation import (
    InvalidValue, mask_id_number, mask_phone, normalize_email, normalize_id_number, normalize_phone,
)
from kefu.org.customers import Customer
from kefu.org.structure import Department, Project, Unit
from kefu.org.users import User

__all__ = [
    "AmbiguousReference", "FieldContext", "FieldType", "FIELD_TYPES", "FIELD_KEY_PATTERN", "OPERATORS",
    "OPTION_NAMES", "REFERENCE_KINDS", "ReferenceKind", "check_definition", "default_value",
    "field_type_choices", "get_field_type",
]

FIELD_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
"""What a field key must look like; it becomes part of the storage path ``data.<key>``."""

OPTION_NAMES = ("default", "min", "max", "max_length", "pattern", "choices", "max_size_mb")
"""The type-specific options of a definition; ``FieldType.options`` names those a type accepts.

The flags ``required``, ``readonly``, ``sensitive``, ``help`` (and the engine's
``list``, ``filter``, ``search``, ``required_on_close``) apply to every type.
"""

DEFAULT_NOW = "now"
DEFAULT_CURRENT_USER = "current_user"
DEFAULT_KEYWORDS = (DEFAULT_NOW, DEFAULT_CURRENT_USER)

OPERATORS = {
    "eq": _l("等于"),
    "ne": _l("不等于"),
    "in": _l("属于其中之一"),
    "gte": _l("不小于"),
    "lte": _l("不大于"),
    "contains": _l("包含"),
    "empty": _l("为空"),
    "not_empty": _l("不为空"),
}
"""Every filter operator, with the Chinese name shown to people."""

MAX_CANDIDATES = 10
"""At most this many matches are listed when a name is ambiguous."""
MAX_FILTER_VALUES = 200
MAX_CONTAINS_LENGTH = 100
MAX_ATTACHMENTS = 50
DEFAULT_MAX_SIZE_MB = 20
MAX_SIZE_MB_LIMIT = 100

_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
_LIST_SEPARATORS = re.compile(r"[,，、;；]")
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_DECIMAL128_DIGITS = 34
_CENT = Decimal("0.01")


# --- errors and context -----------------------------------------------------

OPERATOR_LABELS = {
    "eq": _l("等于"), "ne": _l("不等于"), "in": _l("属于"), "gte": _l("不早于/不小于"), "lte": _l("不晚于/不大于"),
    "contains": _l("包含"), "empty": _l("为空"), "not_empty": _l("不为空"),
}
"""How filters read for a person (list filters, the export's 导出说明 sheet)."""


class AmbiguousReference(InvalidValue):
    """A name matched several records; ``candidates`` lists them as ``{"id", "label"}`` (at most 10)."""

    def __init__(self, message, candidates: list[dict]):
        super().__init__(message)
        self.candidates = candidates


@dataclass(frozen=True)
class FieldContext:
    """What cleaning may depend on besides the value and its definition.

    ``tz``: the zone local dates and times are read and shown in. ``user``: the
    acting user (a ``User`` or its id), for the ``current_user`` default.
    ``project_id``: restricts unit names to that project. ``attachments``: an
    object with ``store(file_storage, max_bytes) -> AttachmentInfo | id`` used
    when uploaded files are cleaned.
    """

    tz: ZoneInfo
    user: Any = None
    project_id: Any = None
    attachments: Any = None

    @property
    def user_id(self) -> ObjectId | None:
        """The acting user's id, or None."""
        if self.user is None:
            return None
        user_id = getattr(self.user, "pk", self.user)
        return user_id if isinstance(user_id, ObjectId) else ObjectId(str(user_id))


def _context(context: FieldContext | None) -> FieldContext:
    return context if context is not None else FieldContext(ZoneInfo(DEFAULT_TIMEZONE))


# --- small helpers ----------------------------------------------------------

def _option(definition, name: str):
    """The definition's option ``name``, or None when missing or blank."""
    value = getattr(definition, name, None) if definition is not None else None
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (list, tuple)) and not value:
        return None
    return value


def _label(definition) -> str:
    """The field's label for messages (its key when it has none)."""
    return str(_option(definition, "label") or _option(definition, "key") or "?")


def _is_blank(raw) -> bool:
    """None, a blank string or an empty list: "nothing entered"."""
    if raw is None:
        return True
    if isinstance(raw, str):
        return not raw.strip()
    if isinstance(raw, (list, tuple)):
        return not raw
    return False


def _fold(text: str) -> str:
    """Full-width digits, letters and punctuation folded to ASCII (NFKC), trimmed."""
    return unicodedata.normalize("NFKC", text).strip()


def _single_value_error() -> InvalidValue:
    return InvalidValue(_("请填写单个值，不能是列表或对象"))


def _scalar_text(raw) -> str:
    """``raw`` as stripped text: strings as typed, numbers written out; anything else is refused.

    Dicts, lists, booleans, bytes and other objects raise :class:`InvalidValue`
    (so a value such as ``{"$gt": ""}`` never reaches a query). A float that
    is a whole number (spreadsheets give 13812345678.0) loses its ".0".
    """
    if isinstance(raw, str):
        return raw.strip()
    if isinstance(raw, bool):
        raise _single_value_error()
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float) and raw == raw and raw not in (float("inf"), float("-inf")):
        return str(int(raw)) if raw.is_integer() else repr(raw)
    if isinstance(raw, Decimal) and raw.is_finite():
        return format(raw, "f")
    raise _single_value_error()


def _split_values(raw) -> list:
    """A list of values from a list or from text separated by commas or "、"."""
    if isinstance(raw, (list, tuple)):
        values = list(raw)
    elif isinstance(raw, str):
        values = _LIST_SEPARATORS.split(raw)
    elif isinstance(raw, dict):
        raise _single_value_error()
    else:
        values = [raw]
    return [value for value in values if not _is_blank(value)]


def _plain_number(number: Decimal) -> str:
    """``number`` without trailing zeros or exponent: 0.50 → "0.5", 20000.00 → "20000"."""
    if number == number.to_integral_value():
        return str(number.quantize(Decimal(1)))
    return format(number.normalize(), "f")


def _list_text(values) -> str:
    return "、".join(str(value) for value in values)


def _format(template, **variables) -> str:
    """A message template marked with ``_l`` (class attribute), translated now and filled in."""
    return str(template) % variables


# --- WTForms glue -----------------------------------------------------------

class _KeepsTypedText:
    """Mixin for WTForms fields whose text our ``clean`` parses.

    ``process_formdata`` keeps what was typed as ``data`` (no parsing with
    English messages); the :class:`_CleanValue` validator turns it into the
    value. A re-shown form shows what the person typed.
    """

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = valuelist[0]

    def _value(self):
        if self.raw_data:
            return str(self.raw_data[0])
        return super()._value()


class TypedStringField(_KeepsTypedText, StringField):
    """A text input cleaned by its field type."""

    def _value(self):
        if self.raw_data:
            return str(self.raw_data[0])
        return "" if self.data is None else str(self.data)


class TypedTextAreaField(_KeepsTypedText, TextAreaField):
    """A text area cleaned by its field type."""


class TypedDateField(_KeepsTypedText, DateField):
    """An ``<input type="date">`` cleaned by :class:`DateType`."""


class TypedDateTimeLocalField(_KeepsTypedText, DateTimeLocalField):
    """An ``<input type="datetime-local">`` cleaned by :class:`DateTimeType` (local time of the context's zone)."""


class _AttachmentsInput(FileInput):
    """A multiple file input, followed by hidden inputs keeping the attachments already there."""

    def __init__(self):
        super().__init__(multiple=True)

    def __call__(self, field, **kwargs):
        html = super().__call__(field, **kwargs)
        kept = [value for value in (field.data or []) if isinstance(value, str)]
        hidden = Markup("").join(
            Markup('<input type="hidden" name="{}" value="{}">').format(field.name, value) for value in kept
        )
        return html + hidden


class AttachmentsFormField(MultipleFileField):
    """Uploads plus the ids of attachments kept from before (hidden inputs of the same name)."""

    widget = _AttachmentsInput()

    def process_formdata(self, valuelist):
        self.data = list(valuelist)


class _OptionalValue(Optional):
    """``Optional`` that also makes a blank field's ``data`` None (not "")."""

    def __call__(self, form, field):
        try:
            super().__call__(form, field)
        except StopValidation:
            field.data = None
            raise


class _CleanValue:
    """WTForms validator: run the field type's ``clean`` and keep its result as ``field.data``.

    The form thus shows exactly the message the API gives for the same input,
    and ``form.data`` holds cleaned values.
    """

    def __init__(self, field_type: "FieldType", definition, context: FieldContext):
        self.field_type, self.definition, self.context = field_type, definition, context

    def __call__(self, form, field):
        try:
            field.data = self.field_type.clean(field.data, self.definition, self.context)
        except InvalidValue as exc:
            raise ValidationError(str(exc)) from exc
        if field.data is None and getattr(self.definition, "required", False):
            raise StopValidation(self.field_type.missing_message(self.definition))


# --- the base type ----------------------------------------------------------

class FieldType:
    """Everything about one type of field. Subclasses set the class attributes and override the hooks.

    Class attributes: ``name`` (registry key), ``label`` (Chinese name),
    ``options`` (the :data:`OPTION_NAMES` the type accepts), ``operators``
    (filter operators, keys of :data:`OPERATORS`), ``default_keywords``
    (special defaults such as ``"now"``), ``export_number_format`` (Excel
    number format of :meth:`export_cell` values, or None).
    """

    name = ""
    label = _l("字段")
    options: tuple[str, ...] = ("default",)
    operators: tuple[str, ...] = ("eq", "empty", "not_empty")
    default_keywords: tuple[str, ...] = ()
    export_number_format: str | None = None
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
        label = _label(definition)
        problems = []
        key = getattr(definition, "key", None)
        if not isinstance(key, str) or not FIELD_KEY_PATTERN.match(key):
            problems.append(_("字段“%(label)s”的标识“%(key)s”无效：须以小写字母开头，只含小写字母、数字和下划线，最多 40 位",
                              label=label, key=key if key is not None else ""))
        if _option(definition, "label") is None:
            problems.append(_("字段“%(label)s”缺少显示名称", label=label))
        for option in OPTION_NAMES:
            if _option(definition, option) is not None and option not in self.options:
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
        default = _option(definition, "default")
        if default is None or "default" not in self.options:
            return []
        label = _label(definition)
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
        default = _option(definition, "default")
        if default is None:
            return None
        context = _context(context)
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
        if _is_blank(raw):
            return None
        context = _context(context)
        value = self.parse(raw, definition, context)
        if value is not None:
            self.check_value(value, definition, context)
        return value

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
        return _format(self.required_text, label=_label(definition))

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
        context = _context(context)
        render_kw = dict(self._render_kw(definition))
        if getattr(definition, "readonly", False):
            render_kw["readonly"] = True
        return self.form_class(
            label=_label(definition),
            description=str(_option(definition, "help") or ""),
            validators=[*self._presence_validators(definition), _CleanValue(self, definition, context)],
            render_kw=render_kw or None,
            default=lambda: self._form_default(definition, context),
            **self._form_kwargs(definition),
        )

    def _form_default(self, definition, context):
        try:
            return self.form_data(self.default_value(definition, context), context.tz)
        except InvalidValue:
            return None  # a broken default is check_definition's business, not the form's

    def _presence_validators(self, definition) -> list:
        if getattr(definition, "required", False):
            return [InputRequired(message=self.missing_message(definition))]
        return [_OptionalValue()]

    def _render_kw(self, definition) -> dict:
        return {}

    def _form_kwargs(self, definition) -> dict:
        return {}

    def form_data(self, value, tz: ZoneInfo | None = None):
        """What to put into the form field when editing a stored value."""
        return value

    # --- filters ------------------------------------------------------------

    def query(self, path: str, op: str, raw, definition, context: FieldContext | None = None) -> dict:
        """A MongoDB filter fragment on ``path`` for ``[field, op, raw]``.

        Values go through :meth:`clean` and :meth:`to_storage`, so they compare
        as stored. ``in`` takes a list or "a,b". Raises ``ValidationFailed``
        when the type has no such operator (listing the allowed ones) or the
        value is invalid (its message, keyed by the field key, in ``fields``).
        """
        if op not in self.operators:
            allowed = "、".join(f"{OPERATORS[name]}（{name}）" for name in self.operators)
            message = _("“%(label)s”不支持筛选条件“%(op)s”，可用：%(allowed)s",
                        label=_label(definition), op=op, allowed=allowed)
            raise ValidationFailed(message, {getattr(definition, "key", "") or "": message})
        context = _context(context)
        try:
            return getattr(self, f"_query_{op}")(path, raw, definition, context)
        except InvalidValue as exc:
            raise ValidationFailed(
                _("“%(label)s”的筛选值无效：%(problem)s", label=_label(definition), problem=str(exc)),
                {getattr(definition, "key", "") or "": str(exc)},
            ) from exc

    def _filter_parse(self, raw, definition, context):
        """One filter value as a Python value; blank is refused.

        Parsed like input, but range, length and pattern limits are not applied
        (looking for values outside them is legitimate); :meth:`check_filter`
        adds the checks that do matter for filters (choices).
        """
        value = None if _is_blank(raw) else self.parse(raw, definition, context)
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
        values = _split_values(raw)
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
        return _scalar_text(raw)

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
        schema["title"] = _label(definition)
        help_text = _option(definition, "help")
        if help_text is not None:
            schema["description"] = str(help_text)
        if getattr(definition, "readonly", False):
            schema["readOnly"] = True
        return schema

    def _value_schema(self, definition) -> dict:
        return {"type": "string"}


# --- text -------------------------------------------------------------------

class TextType(FieldType):
    """Single-line text: stripped; ``max_length`` (default 200) and an optional full-match ``pattern``."""

    name = "text"
    label = _l("单行文本")
    options = ("default", "max_length", "pattern")
    operators = ("eq", "ne", "in", "contains", "empty", "not_empty")
    default_max_length = 200

    def parse(self, raw, definition, context):
        return _scalar_text(raw) or None

    def _max_length(self, definition) -> int:
        max_length = _option(definition, "max_length")
        valid = isinstance(max_length, int) and not isinstance(max_length, bool) and max_length > 0
        return max_length if valid else self.default_max_length

    def check_value(self, value, definition, context):
        max_length = self._max_length(definition)
        if len(value) > max_length:
            raise InvalidValue(_("最多 %(max)s 个字符，当前 %(length)s 个", max=max_length, length=len(value)))
        pattern = _option(definition, "pattern") if "pattern" in self.options else None
        if pattern is not None:
            try:
                matched = re.fullmatch(pattern, value)
            except re.error:
                return  # check_definition reports the broken pattern
            if not matched:
                raise InvalidValue(_("格式不正确，应符合 %(pattern)s", pattern=pattern))

    def _option_problems(self, definition):
        problems = []
        max_length = _option(definition, "max_length")
        if max_length is not None and "max_length" in self.options and (
            not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1
        ):
            problems.append(_("最大长度 max_length 应为正整数，当前为 %(value)s", value=max_length))
        pattern = _option(definition, "pattern")
        if pattern is not None and "pattern" in self.options:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                problems.append(_("格式规则 pattern “%(pattern)s”不是有效的正则表达式：%(error)s",
                                  pattern=pattern, error=str(exc)))
        return problems

    def _render_kw(self, definition):
        return {"maxlength": self._max_length(definition)}

    def _value_schema(self, definition):
        schema = {"type": "string", "maxLength": self._max_length(definition)}
        pattern = _option(definition, "pattern") if "pattern" in self.options else None
        if pattern is not None:
            schema["pattern"] = f"^(?:{pattern})$"
        return schema


class TextareaType(TextType):
    """Multi-line text: stripped, line endings made "\\n"; ``max_length`` (default 5000)."""

    name = "textarea"
    label = _l("多行文本")
    options = ("default", "max_length")
    default_max_length = 5000
    form_class = TypedTextAreaField

    def parse(self, raw, definition, context):
        return _scalar_text(raw).replace("\r\n", "\n").replace("\r", "\n") or None


class NormalizedTextType(TextType):
    """Text with one canonical form produced by ``normalizer`` (from :mod:`kefu.core.validation`)."""

    options = ("default",)
    normalizer: Callable[[str], str] = staticmethod(lambda text: text)
    value_pattern: str | None = None

    def parse(self, raw, definition, context):
        return type(self).normalizer(_scalar_text(raw))

    def check_value(self, value, definition, context):
        """The normaliser already decided."""

    def _contains_text(self, raw) -> str:
        return re.sub(r"\s+", "", _fold(_scalar_text(raw)))

    def _render_kw(self, definition):
        return {}

    def _value_schema(self, definition):
        schema = {"type": "string"}
        if self.value_pattern:
            schema["pattern"] = self.value_pattern
        return schema


class PhoneType(NormalizedTextType):
    """Phone number: mobile, landline or 400/800, stored canonical (``normalize_phone``)."""

    name = "phone"
    label = _l("电话")
    normalizer = staticmethod(normalize_phone)
    value_pattern = r"^(?:1[3-9]\d{9}|0\d{2,3}-\d{7,8}(?:-\d{1,6})?|[48]00-\d{3}-\d{4})$"

    def mask(self, value) -> str:
        return mask_phone(value)

    def _render_kw(self, definition):
        return {"inputmode": "tel"}


class IdNumberType(NormalizedTextType):
    """18-digit resident ID number with region, birth date and check digit verified (``normalize_id_number``)."""

    name = "id_number"
    label = _l("身份证号")
    normalizer = staticmethod(normalize_id_number)
    value_pattern = r"^\d{17}[\dX]$"

    def mask(self, value) -> str:
        return mask_id_number(value)


class EmailType(NormalizedTextType):
    """E-mail address, domain lower-cased (``normalize_email``)."""

    name = "email"
    label = _l("邮箱")
    normalizer = staticmethod(normalize_email)

    def mask(self, value) -> str:
        if not value:
            return ""
        local_part, _at, domain = str(value).rpartition("@")
        return f"{local_part[:1]}***@{domain}"

    def _render_kw(self, definition):
        return {"inputmode": "email"}

    def _value_schema(self, definition):
        return {"type": "string", "format": "email"}


# --- ordered values: numbers, dates, times ------------------------------------

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
        option = _option(definition, name)
        if option is None:
            return None
        try:
            return self.parse(option, definition, context)
        except InvalidValue:
            return None  # check_definition reports it

    def check_value(self, value, definition, context):
        low = self._bound(definition, "min", context)
        if low is not None and value < low:
            raise InvalidValue(_format(self.below_text, bound=self.bound_text(low, context.tz)))
        high = self._bound(definition, "max", context)
        if high is not None and value > high:
            raise InvalidValue(_format(self.above_text, bound=self.bound_text(high, context.tz)))

    def _option_problems(self, definition):
        context = _context(None)
        problems, bounds = [], {}
        for name, option_label in (("min", _("最小值")), ("max", _("最大值"))):
            option = _option(definition, name)
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


class NumberType(OrderedType):
    """Numbers typed as text ("20,000", full-width digits) or given as JSON numbers; booleans refused."""

    invalid_text = _l("请输入数字")
    export_number_format = None

    def _decimal(self, raw) -> Decimal:
        """``raw`` as a finite Decimal, or InvalidValue."""
        if isinstance(raw, (dict, list, tuple, set)):
            raise _single_value_error()
        if isinstance(raw, bool):
            raise InvalidValue(str(self.invalid_text))
        if isinstance(raw, Decimal128):
            raw = raw.to_decimal()
        if isinstance(raw, int):
            return Decimal(raw)
        if isinstance(raw, float):
            raw = repr(raw)
        elif isinstance(raw, Decimal):
            raw = format(raw, "f") if raw.is_finite() else "x"
        elif isinstance(raw, str):
            raw = self._strip_number_text(_fold(raw))
        else:
            raise InvalidValue(str(self.invalid_text))
        if not re.fullmatch(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", raw):
            raise InvalidValue(str(self.invalid_text))
        try:
            number = Decimal(raw)
        except InvalidOperation:
            raise InvalidValue(str(self.invalid_text)) from None
        if not number.is_finite():
            raise InvalidValue(str(self.invalid_text))
        return number

    def _strip_number_text(self, text: str) -> str:
        """Thousands separators and spaces removed."""
        return re.sub(r"[,\s]", "", text)

    def bound_text(self, value, tz) -> str:
        return _plain_number(Decimal(value))

    def _render_kw(self, definition):
        return {"inputmode": "decimal"}

    def form_data(self, value, tz=None):
        return None if value is None else format(value, "f")


class IntegerType(NumberType):
    """Whole number within MongoDB's 64-bit range; "1.0" is accepted, "1.5" is not."""

    name = "integer"
    label = _l("整数")
    invalid_text = _l("请输入整数")

    def parse(self, raw, definition, context):
        number = self._decimal(raw)
        if number != number.to_integral_value():
            raise InvalidValue(_("请输入整数"))
        value = int(number)
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise InvalidValue(_("数值超出范围"))
        return value

    def to_storage(self, value):
        return None if value is None else int(value)

    def from_storage(self, stored):
        return None if stored is None else int(stored)

    def export_cell(self, value, tz=None):
        return value

    def form_data(self, value, tz=None):
        return None if value is None else str(value)

    def _render_kw(self, definition):
        return {"inputmode": "numeric"}

    def _value_schema(self, definition):
        schema = {"type": "integer"}
        for name, keyword in (("min", "minimum"), ("max", "maximum")):
            bound = self._bound(definition, name, _context(None))
            if bound is not None:
                schema[keyword] = bound
        return schema


class DecimalType(NumberType):
    """Exact decimal number (Python ``Decimal``, stored as ``Decimal128``, JSON as a string); at most 34 digits."""

    name = "decimal"
    label = _l("小数")
    json_pattern = r"^-?\d+(?:\.\d+)?$"

    def parse(self, raw, definition, context):
        number = self._decimal(raw)
        if len(number.as_tuple().digits) > _DECIMAL128_DIGITS:
            raise InvalidValue(_("数字位数过多，最多 %(n)s 位", n=_DECIMAL128_DIGITS))
        return number

    def to_storage(self, value):
        return None if value is None else Decimal128(value)

    def from_storage(self, stored):
        if stored is None:
            return None
        if isinstance(stored, Decimal128):
            return stored.to_decimal()
        return Decimal(repr(stored) if isinstance(stored, float) else str(stored))  # legacy numbers

    def to_json(self, value, tz=None):
        return None if value is None else format(value, "f")

    def display(self, value, tz=None) -> str:
        return "" if value is None else format(value, "f")

    def export_cell(self, value, tz=None):
        return value

    def _value_schema(self, definition):
        return {"type": "string", "pattern": self.json_pattern, "examples": ["3.14"]}


class MoneyType(DecimalType):
    """Amount in CNY: a ``Decimal`` with exactly two places ("¥20,000", "20000元" accepted); never a float.

    More than two significant decimal places are refused rather than rounded.
    """

    name = "money"
    label = _l("金额")
    export_number_format = '"¥"#,##0.00'
    json_pattern = r"^-?\d+\.\d{2}$"

    def _strip_number_text(self, text: str) -> str:
        text = super()._strip_number_text(text)
        text = re.sub(r"^(?:[¥￥]|RMB|CNY)", "", text, flags=re.IGNORECASE)
        return re.sub(r"元$", "", text)

    def parse(self, raw, definition, context):
        number = super().parse(raw, definition, context)
        try:
            cents = number.quantize(_CENT)
        except InvalidOperation:
            raise InvalidValue(_("数值超出范围")) from None
        if cents != number:
            raise InvalidValue(_("金额最多保留两位小数"))
        return cents

    def from_storage(self, stored):
        value = super().from_storage(stored)
        return None if value is None else value.quantize(_CENT)

    def display(self, value, tz=None) -> str:
        if value is None:
            return ""
        sign = "-" if value < 0 else ""
        return f"{sign}¥{abs(value):,.2f}"

    def _value_schema(self, definition):
        return {"type": "string", "pattern": self.json_pattern, "examples": ["20000.00"]}


_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?|(\d{4})(\d{2})(\d{2})")
_DATETIME = re.compile(
    r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
    r"(?:(?:T|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)


class DateType(OrderedType):
    """Calendar date. Accepts 2026-11-22, 2026/11/22, 2026年11月22日, 20261122 and ``date`` objects.

    A ``datetime`` is read in the context's zone. Stored as the UTC midnight of
    that date; JSON "2026-11-22". Default "now" means today in the context's zone.
    """

    name = "date"
    label = _l("日期")
    default_keywords = (DEFAULT_NOW,)
    below_text = _l("不能早于 %(bound)s")
    above_text = _l("不能晚于 %(bound)s")
    export_number_format = "yyyy-mm-dd"
    form_class = TypedDateField
    required_text = _l("请选择%(label)s")

    def parse(self, raw, definition, context):
        if isinstance(raw, datetime):
            return (raw.astimezone(context.tz) if raw.tzinfo else raw).date()
        if isinstance(raw, date):
            return raw
        text = _fold(_scalar_text(raw))
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
        return self.parse(stored, None, _context(None))

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


class DateTimeType(OrderedType):
    """Moment in time: ISO 8601 with or without offset, "2026-11-22 14:05", or ``datetime`` objects.

    Text or a naive ``datetime`` without an offset is local time of the
    context's zone. Kept as an aware UTC ``datetime`` truncated to
    milliseconds (what MongoDB stores); JSON is ISO 8601 with the offset of
    the requested zone. A date alone means its local midnight; in filters it
    means the whole day. Default "now" is the current time.
    """

    name = "datetime"
    label = _l("日期时间")
    default_keywords = (DEFAULT_NOW,)
    below_text = _l("不能早于 %(bound)s")
    above_text = _l("不能晚于 %(bound)s")
    export_number_format = "yyyy-mm-dd hh:mm"
    form_class = TypedDateTimeLocalField
    required_text = _l("请选择%(label)s")

    def parse(self, raw, definition, context):
        return self._moment(raw, context)[0]

    def _moment(self, raw, context) -> tuple[datetime, bool]:
        """``(aware UTC datetime, whether only a date was given)``."""
        if isinstance(raw, datetime):
            moment, date_only = raw, False
        elif isinstance(raw, date):
            moment, date_only = datetime.combine(raw, time()), True
        else:
            text = _fold(_scalar_text(raw))
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
        return value.astimezone(tz or _context(None).tz)

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

    def _form_kwargs(self, definition):
        return {"format": ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]}

    def _day_or_moment(self, raw, definition, context) -> tuple[datetime, bool]:
        if _is_blank(raw):
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


# --- choices and yes/no -------------------------------------------------------

class ChoicesMixin:
    """Shared by single and multiple choice: the ``choices`` option and membership."""

    finite_values = True

    def _choices(self, definition) -> list[str]:
        choices = _option(definition, "choices")
        return [str(choice) for choice in choices] if isinstance(choices, (list, tuple)) else []

    def _not_a_choice(self, value, definition) -> InvalidValue:
        return InvalidValue(_("“%(value)s”不是可选项，可选：%(choices)s",
                              value=value, choices=_list_text(self._choices(definition))))

    def _option_problems(self, definition):
        choices = _option(definition, "choices")
        if choices is None:
            return [_("%(type)s类型必须填写可选项 choices", type=self.label)]
        if not isinstance(choices, (list, tuple)):
            return [_("可选项 choices 应为列表")]
        problems = []
        if any(not isinstance(choice, str) or not choice.strip() for choice in choices):
            problems.append(_("可选项 choices 中每一项都应为非空文字"))
        duplicates = sorted({str(choice) for choice in choices if list(choices).count(choice) > 1})
        if duplicates:
            problems.append(_("可选项重复：%(choices)s", choices=_list_text(duplicates)))
        return problems

    def _form_kwargs(self, definition):
        return {"choices": [(choice, choice) for choice in self._choices(definition)], "validate_choice": False}


class ChoiceType(ChoicesMixin, FieldType):
    """One of ``choices`` (exact text after trimming)."""

    name = "choice"
    label = _l("单选")
    options = ("default", "choices")
    operators = ("eq", "ne", "in", "empty", "not_empty")
    form_class = SelectField
    required_text = _l("请选择%(label)s")

    def parse(self, raw, definition, context):
        return _scalar_text(raw) or None

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
    options = ("default", "choices")
    operators = ("eq", "in", "empty", "not_empty")
    form_class = SelectMultipleField
    required_text = _l("请选择%(label)s")

    def parse(self, raw, definition, context):
        choices = self._choices(definition)
        if isinstance(raw, str) and raw.strip() in choices:
            items = [raw]
        elif isinstance(raw, (str, list, tuple)):
            items = _split_values(raw)
        else:
            raise InvalidValue(_("请选择一个或多个可选项"))
        picked = {_scalar_text(item) for item in items}
        for item in (_scalar_text(item) for item in items):
            if item not in choices:
                raise self._not_a_choice(item, definition)
        return [choice for choice in choices if choice in picked] or None

    def _one_option(self, raw, definition) -> str:
        option = _scalar_text(raw)
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
        return "" if value is None else _list_text(value)

    def form_data(self, value, tz=None):
        return None if value is None else list(value)

    def _query_eq(self, path, raw, definition, context):
        return {path: self._one_option(raw, definition)}

    def _query_in(self, path, raw, definition, context):
        options = [self._one_option(item, definition) for item in _split_values(raw)]
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
    operators = ("eq", "empty", "not_empty")
    form_class = BooleanField

    def parse(self, raw, definition, context):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        if isinstance(raw, str):
            word = _fold(raw).lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
        if isinstance(raw, (dict, list, tuple)):
            raise _single_value_error()
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


# --- references -------------------------------------------------------------

def _describe_customer(customer: Customer) -> str:
    detail = mask_phone(customer.phone) if customer.phone else _("编号 %(id)s", id=str(customer.pk)[-6:])
    return f"{customer.name}（{detail}）"


def _unit_handle(unit: Unit) -> str:
    return f"{unit.project.name} {unit.label}" if unit.project else unit.label


@dataclass(frozen=True)
class ReferenceKind:
    """How one kind of target is found by what people call it.

    ``match``: ``(field, normaliser)`` pairs tried in order; the first field
    with any match decides (a normaliser raising ``InvalidValue`` skips its
    field). ``describe``: a candidate's label. ``handle``: the text a form shows
    for a target (checked to find that target again, else the id is shown).
    ``active_only``: names match only documents whose ``active`` is not False
    (ids still resolve, so records keep pointing at disabled targets).
    """

    document: type[Document]
    noun: Any
    match: tuple[tuple[str, Callable[[str], str] | None], ...]
    describe: Callable[[Any], str] = str
    handle: Callable[[Any], str | None] = str
    active_only: bool = False


REFERENCE_KINDS: dict[str, ReferenceKind] = {
    "customer": ReferenceKind(
        Customer, _l("客户"), (("phone", normalize_phone), ("name", None)),
        describe=_describe_customer, handle=lambda customer: customer.phone,
    ),
    "project": ReferenceKind(
        Project, _l("项目"), (("name", None), ("code", lambda text: _fold(text).upper())),
        describe=lambda project: f"{project.name}（{project.code}）", handle=lambda project: project.name,
        active_only=True,
    ),
    "unit": ReferenceKind(
        Unit, _l("户位"), (("label", lambda text: re.sub(r"\s+", "", _fold(text))),),
        describe=str, handle=_unit_handle,
    ),
    "user": ReferenceKind(
        User, _l("用户"), (("username", None), ("display_name", None)),
        describe=str, handle=lambda user: user.username, active_only=True,
    ),
    "department": ReferenceKind(
        Department, _l("部门"), (("name", None),), handle=lambda department: department.name, active_only=True,
    ),
}
"""Reference kind → document class and how its records are named; the one lookup table for references."""


class ReferenceType(FieldType):
    """A reference to one record of :attr:`kind`: its id (ObjectId or 24 hex digits) or an unambiguous name.

    The value is the target's ``ObjectId`` (stored as is, JSON as a string).
    A name matching nothing raises ``InvalidValue`` ("找不到项目“X”"); one
    matching several raises :class:`AmbiguousReference` with the candidates.
    """

    kind_name = ""
    operators = ("eq", "in", "empty", "not_empty")

    @property
    def kind(self) -> ReferenceKind:
        return REFERENCE_KINDS[self.kind_name]

    def parse(self, raw, definition, context):
        kind = self.kind
        if isinstance(raw, kind.document):
            return self._in_scope(raw, str(raw), context).pk
        if isinstance(raw, DBRef):
            raw = raw.id
        if isinstance(raw, ObjectId):
            object_id, text = raw, str(raw)
        else:
            text = re.sub(r"\s+", " ", _scalar_text(raw))
            object_id = ObjectId(text) if _OBJECT_ID.fullmatch(text) else None
        if object_id is not None:
            target = kind.document.objects(pk=object_id).first()
            if target is None:
                raise self._not_found(text)
            return self._in_scope(target, text, context).pk
        found = self._find(text, context)
        if not found:
            raise self._not_found(text)
        if len(found) > 1:
            raise self._ambiguous(text, found)
        return found[0].pk

    def _not_found(self, text) -> InvalidValue:
        return InvalidValue(_("找不到%(noun)s“%(text)s”", noun=self.kind.noun, text=text))

    def _ambiguous(self, text, found) -> AmbiguousReference:
        candidates = [{"id": str(target.pk), "label": self.kind.describe(target)} for target in found[:MAX_CANDIDATES]]
        listed = _list_text(candidate["label"] for candidate in candidates)
        if len(found) > MAX_CANDIDATES:
            listed += _("等")
        return AmbiguousReference(
            _("“%(text)s”对应多个%(noun)s：%(candidates)s，请写得更具体些或直接选择",
              text=text, noun=self.kind.noun, candidates=listed),
            candidates,
        )

    def _in_scope(self, target, text, context):
        """``target`` when the context allows it; override to restrict."""
        return target

    def _scope(self, context) -> dict:
        """Extra conditions for name lookups."""
        return {"active__ne": False} if self.kind.active_only else {}

    def _find(self, text: str, context) -> list:
        """The targets called ``text`` (at most MAX_CANDIDATES + 1)."""
        return self._match(text, self._scope(context))

    def _match(self, text: str, scope: dict) -> list:
        for field, normalise in self.kind.match:
            try:
                needle = normalise(text) if normalise else text
            except InvalidValue:
                continue
            found = list(self.kind.document.objects(**{field: needle}, **scope).limit(MAX_CANDIDATES + 1))
            if found:
                return found
        return []

    def to_storage(self, value):
        return None if value is None else getattr(value, "pk", value)

    def from_storage(self, stored):
        if stored is None:
            return None
        if isinstance(stored, DBRef):
            return stored.id
        return stored if isinstance(stored, ObjectId) else ObjectId(str(stored))

    def to_json(self, value, tz=None):
        return None if value is None else str(getattr(value, "pk", value))

    def labels(self, values) -> dict[ObjectId, str]:
        """``{id: str(target)}`` for many ids in one query (for list pages)."""
        ids = list({getattr(value, "pk", value) for value in values if value is not None})
        if not ids:
            return {}
        # select_related: the targets' own references (a unit's project) in one query per kind, not one per target.
        return {target.pk: str(target) for target in self.kind.document.objects(pk__in=ids).select_related(max_depth=1)}

    def display(self, value, tz=None) -> str:
        if value is None:
            return ""
        if isinstance(value, self.kind.document):
            return str(value)
        target = self.kind.document.objects(pk=value).first()
        return str(target) if target is not None else _("（已删除）")

    def form_data(self, value, tz=None):
        """The target's handle (name, phone …) when it finds this target again, else its id."""
        if value is None:
            return None
        target = value if isinstance(value, self.kind.document) else self.kind.document.objects(pk=value).first()
        if target is None:
            return str(value)
        handle = self.kind.handle(target)
        if handle:
            found = self._find(handle, _context(None))
            if len(found) == 1 and found[0].pk == target.pk:
                return handle
        return str(target.pk)

    def _value_schema(self, definition):
        return {"type": "string", "pattern": "^[0-9a-f]{24}$", "x-kefu-reference": self.kind_name}


class CustomerType(ReferenceType):
    """A customer: id, phone number (any typed form, compared canonical) or name."""

    name = kind_name = "customer"
    label = _l("客户")


class ProjectType(ReferenceType):
    """A project: id, name or code (case-insensitive)."""

    name = kind_name = "project"
    label = _l("项目")


class UnitType(ReferenceType):
    """A unit: id, or its label as people say it ("3幢2单元1201"), optionally after the project's name or code.

    With ``context.project_id`` only units of that project are accepted.
    """

    name = kind_name = "unit"
    label = _l("户位")

    def _scope(self, context) -> dict:
        return {"project": ObjectId(str(context.project_id))} if context.project_id else {}

    def _in_scope(self, target, text, context):
        if context.project_id and target.project and target.project.pk != ObjectId(str(context.project_id)):
            raise InvalidValue(_("户位“%(text)s”不属于所选项目", text=text))
        return target

    def _find(self, text, context):
        scope = self._scope(context)
        found = self._match(text, scope)
        if found:
            return found
        # "云栖·江南府 3幢2单元1201" / "YQJNF 3幢2单元1201": a project's name or code, then the label.
        folded = _fold(text)
        for project in Project.objects(active__ne=False).only("id", "name", "code"):
            if scope and project.pk != scope["project"]:
                continue
            for prefix in (_fold(project.name or ""), _fold(project.code or "")):
                if prefix and len(folded) > len(prefix) and folded.upper().startswith(prefix.upper()):
                    found.extend(self._match(folded[len(prefix):], {"project": project.pk}))
        return list({target.pk: target for target in found}.values())


class UserType(ReferenceType):
    """A user: id, login name or display name (active users only by name). Default "current_user"."""

    name = kind_name = "user"
    label = _l("用户")
    default_keywords = (DEFAULT_CURRENT_USER,)

    def _keyword_default(self, keyword, context):
        return context.user_id


class DepartmentType(ReferenceType):
    """A department: id or name (active departments only by name)."""

    name = kind_name = "department"
    label = _l("部门")


# --- attachments ------------------------------------------------------------

class AttachmentsType(FieldType):
    """Attachments: a list of GridFS file id strings.

    ``clean`` accepts ids of attachments already uploaded (24 hex digits) and
    werkzeug ``FileStorage`` uploads, which it stores through
    ``context.attachments.store(file, max_bytes)`` — ``max_size_mb`` per file
    (default 20). At most 50 attachments.
    """

    name = "attachments"
    label = _l("附件")
    options = ("max_size_mb",)
    operators = ("empty", "not_empty")
    form_class = AttachmentsFormField
    required_text = _l("请上传%(label)s")

    def _max_bytes(self, definition) -> int:
        size = _option(definition, "max_size_mb")
        valid = isinstance(size, (int, float)) and not isinstance(size, bool) and 0 < size <= MAX_SIZE_MB_LIMIT
        return int((size if valid else DEFAULT_MAX_SIZE_MB) * 1024 * 1024)

    def clean(self, raw, definition, context=None):
        if isinstance(raw, FileStorage):
            raw = [raw]
        return super().clean(raw, definition, context)

    def parse(self, raw, definition, context):
        ids, uploads = [], []
        for item in raw if isinstance(raw, (list, tuple)) else _split_values(raw):
            if isinstance(item, FileStorage):
                if item.filename:
                    uploads.append(item)
            elif isinstance(item, ObjectId):
                ids.append(str(item))
            elif isinstance(item, str):
                text = item.strip()
                if not text:
                    continue
                if not _OBJECT_ID.fullmatch(text):
                    raise InvalidValue(_("附件编号“%(text)s”无效", text=text[:40]))
                ids.append(text.lower())
            else:
                raise InvalidValue(_("附件应为已上传附件的编号或上传的文件"))
        if len(ids) + len(uploads) > MAX_ATTACHMENTS:
            raise InvalidValue(_("最多 %(n)s 个附件", n=MAX_ATTACHMENTS))
        if uploads:
            if context.attachments is None:
                raise InvalidValue(_("此处无法保存上传的文件，请先上传附件，再填写附件编号"))
            for upload in uploads:
                stored = context.attachments.store(upload, self._max_bytes(definition))
                ids.append(str(getattr(stored, "id", stored)))
        return list(dict.fromkeys(ids)) or None

    def _option_problems(self, definition):
        size = _option(definition, "max_size_mb")
        if size is not None and (
            not isinstance(size, (int, float)) or isinstance(size, bool) or not 0 < size <= MAX_SIZE_MB_LIMIT
        ):
            return [_("单个文件大小上限 max_size_mb 应在 0–%(limit)s 之间，当前为 %(value)s",
                      limit=MAX_SIZE_MB_LIMIT, value=size)]
        return []

    def to_storage(self, value):
        return None if value is None else [ObjectId(item) for item in value]

    def from_storage(self, stored):
        return None if stored is None else [str(item) for item in stored]

    def to_json(self, value, tz=None):
        return None if value is None else list(value)

    def display(self, value, tz=None) -> str:
        return "" if not value else _("%(n)s 个附件", n=len(value))

    def form_data(self, value, tz=None):
        return None if value is None else list(value)

    def _value_schema(self, definition):
        return {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-f]{24}$"}, "maxItems": MAX_ATTACHMENTS}


# --- the registry -----------------------------------------------------------

FIELD_TYPES: dict[str, FieldType] = {
    field_type.name: field_type
    for field_type in (
        TextType(), TextareaType(), IntegerType(), DecimalType(), MoneyType(), DateType(), DateTimeType(),
        ChoiceType(), MultiChoiceType(), BooleanType(), PhoneType(), IdNumberType(), EmailType(),
        CustomerType(), ProjectType(), UnitType(), UserType(), DepartmentType(), AttachmentsType(),
    )
}
"""Type name → the (stateless) field type."""


def get_field_type(name: str) -> FieldType:
    """The field type called ``name``; ``ValidationFailed`` lists the known types otherwise."""
    field_type = FIELD_TYPES.get(name) if isinstance(name, str) else None
    if field_type is None:
        known = "、".join(f"{key}（{field_type.label}）" for key, field_type in FIELD_TYPES.items())
        raise ValidationFailed(_("未知的字段类型“%(name)s”，可选：%(types)s", name=name, types=known))
    return field_type


def field_type_choices() -> list[tuple[str, str]]:
    """``(name, Chinese label)`` of every type, for the admin's type picker."""
    return [(name, str(field_type.label)) for name, field_type in FIELD_TYPES.items()]


def check_definition(definition) -> list[str]:
    """Problems with a definition, including an unknown type; [] when it can be used."""
    try:
        field_type = get_field_type(getattr(definition, "type", None))
    except ValidationFailed as exc:
        return [_("字段“%(label)s”：%(problem)s", label=_label(definition), problem=exc.message)]
    return field_type.check_definition(definition)


def default_value(definition, context: FieldContext | None = None):
    """The starting value of a new record's field: its literal default cleaned, "now", "current_user" or None."""
    return get_field_type(definition.type).default_value(definition, context)
