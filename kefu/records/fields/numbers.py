"""Number field types: integers, exact decimals and money (CNY, two places)."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from bson import Decimal128

from kefu.core.i18n import _, _l
from kefu.core.validation import InvalidValue
from kefu.records.fields.base import OrderedType
from kefu.records.fields.common import context_or_default, fold, plain_number, single_value_error

_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_DECIMAL128_DIGITS = 34
_CENT = Decimal("0.01")


class NumberType(OrderedType):
    """Numbers typed as text ("20,000", full-width digits) or given as JSON numbers; booleans refused."""

    invalid_text = _l("请输入数字")
    export_number_format = None
    holds_numbers = True

    def _decimal(self, raw) -> Decimal:
        """``raw`` as a finite Decimal, or InvalidValue."""
        if isinstance(raw, (dict, list, tuple, set)):
            raise single_value_error()
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
            raw = self._strip_number_text(fold(raw))
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
        return plain_number(Decimal(value))

    def _render_kw(self, definition):
        return {"inputmode": "decimal"}

    def form_data(self, value, tz=None):
        return None if value is None else format(value, "f")


class IntegerType(NumberType):
    """Whole number within MongoDB's 64-bit range; "1.0" is accepted, "1.5" is not."""

    name = "integer"
    label = _l("整数")
    export_width = 10
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
            bound = self._bound(definition, name, context_or_default(None))
            if bound is not None:
                schema[keyword] = bound
        return schema


class DecimalType(NumberType):
    """Exact decimal number (Python ``Decimal``, stored as ``Decimal128``, JSON as a string); at most 34 digits."""

    name = "decimal"
    label = _l("小数")
    export_width = 12
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
    export_width = 14
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
