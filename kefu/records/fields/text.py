"""Text field types: single- and multi-line text, and text with one canonical form (phone, ID number, e-mail)."""
from __future__ import annotations

import re
from typing import Callable

from kefu.core.i18n import _, _l
from kefu.core.validation import (
    InvalidValue, check_typable, mask_id_number, mask_phone, normalize_email, normalize_id_number, normalize_phone,
)
from kefu.records.fields.base import FieldType
from kefu.records.fields.common import fold, option_value, scalar_text
from kefu.records.fields.forms import TypedTextAreaField


class TextType(FieldType):
    """Single-line text: stripped, without tabs or line breaks inside; ``max_length`` (default 200) and an optional
    full-match ``pattern``."""

    name = "text"
    label = _l("单行文本")
    one_line_text = True
    identifies_customer = True  # a name; the normalised kinds below (phone, ID number, e-mail) keep it
    options = ("default", "max_length", "pattern")
    operators = ("eq", "ne", "in", "contains", "empty", "not_empty")
    default_max_length = 200

    def parse(self, raw, definition, context):
        return check_typable(scalar_text(raw), multiline=False) or None

    def _max_length(self, definition) -> int:
        max_length = option_value(definition, "max_length")
        valid = isinstance(max_length, int) and not isinstance(max_length, bool) and max_length > 0
        return max_length if valid else self.default_max_length

    def check_value(self, value, definition, context):
        max_length = self._max_length(definition)
        if len(value) > max_length:
            raise InvalidValue(_("最多 %(max)s 个字符，当前 %(length)s 个", max=max_length, length=len(value)))
        pattern = option_value(definition, "pattern") if "pattern" in self.options else None
        if pattern is not None:
            try:
                matched = re.fullmatch(pattern, value)
            except re.error:
                return  # check_definition reports the broken pattern
            if not matched:
                raise InvalidValue(_("格式不正确，应符合 %(pattern)s", pattern=pattern))

    def _option_problems(self, definition):
        problems = []
        max_length = option_value(definition, "max_length")
        if max_length is not None and "max_length" in self.options and (
            not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1
        ):
            problems.append(_("最大长度 max_length 应为正整数，当前为 %(value)s", value=max_length))
        pattern = option_value(definition, "pattern")
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
        pattern = option_value(definition, "pattern") if "pattern" in self.options else None
        if pattern is not None:
            schema["pattern"] = f"^(?:{pattern})$"
        return schema


class TextareaType(TextType):
    """Multi-line text: stripped, line endings made "\\n"; ``max_length`` (default 5000)."""

    name = "textarea"
    label = _l("多行文本")
    one_line_text = False
    identifies_customer = False
    options = ("default", "max_length")
    default_max_length = 5000
    export_width = 40
    form_class = TypedTextAreaField

    def parse(self, raw, definition, context):
        return scalar_text(raw).replace("\r\n", "\n").replace("\r", "\n") or None


class NormalizedTextType(TextType):
    """Text with one canonical form produced by ``normalizer`` (from :mod:`kefu.core.validation`)."""

    options = ("default",)
    one_line_text = False
    normalizer: Callable[[str], str] = staticmethod(lambda text: text)
    value_pattern: str | None = None

    def parse(self, raw, definition, context):
        return type(self).normalizer(scalar_text(raw))

    def check_value(self, value, definition, context):
        """The normaliser already decided."""

    def _contains_text(self, raw) -> str:
        return re.sub(r"\s+", "", fold(scalar_text(raw)))

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
    identifies_caller = True
    export_width = 15
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
    export_width = 21
    normalizer = staticmethod(normalize_id_number)
    value_pattern = r"^\d{17}[\dX]$"

    def mask(self, value) -> str:
        return mask_id_number(value)


class EmailType(NormalizedTextType):
    """E-mail address, domain lower-cased (``normalize_email``)."""

    name = "email"
    label = _l("邮箱")
    export_width = 24
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
