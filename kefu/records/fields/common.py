"""What every field type shares: the cleaning context, the limits, and small parsing helpers."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from bson import ObjectId

from kefu.core.config import DEFAULT_TIMEZONE
from kefu.core.i18n import _
from kefu.core.validation import InvalidValue, check_typable

DEFAULT_NOW = "now"
DEFAULT_CURRENT_USER = "current_user"
DEFAULT_KEYWORDS = (DEFAULT_NOW, DEFAULT_CURRENT_USER)
"""Defaults that are not values but are resolved when a record is made (each type says which it takes)."""

MAX_CANDIDATES = 10
"""At most this many matches are listed when a name is ambiguous."""
MAX_FILTER_VALUES = 200
MAX_CONTAINS_LENGTH = 100

OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
"""An id as text: 24 hex digits."""
_LIST_SEPARATORS = re.compile(r"[,，、;；]")


@dataclass(frozen=True)
class FieldContext:
    """What cleaning may depend on besides the value and its definition.

    ``tz``: the zone local dates and times are read and shown in. ``user``: the
    acting user (a ``User`` or its id), for the ``current_user`` default.
    ``project_id``: restricts unit names to that project. ``attachments``: an
    object with ``store(file_storage, max_bytes) -> AttachmentInfo | id`` used
    when uploaded files are cleaned. ``access``: the acting user's
    ``kefu.org.access.AccessPolicy`` (None: the system's), for what a reference
    may find and show. ``current``: the edited record's values (key → Python
    value; None while creating): a stored value sent back unchanged is kept even
    when the definition no longer accepts it (``FieldType.clean_keeping``), and
    a form offers it (a removed choice, marked 已停用).
    """

    tz: ZoneInfo
    user: Any = None
    project_id: Any = None
    attachments: Any = None
    access: Any = None
    current: Any = None

    @property
    def user_id(self) -> ObjectId | None:
        """The acting user's id, or None."""
        if self.user is None:
            return None
        user_id = getattr(self.user, "pk", self.user)
        return user_id if isinstance(user_id, ObjectId) else ObjectId(str(user_id))


def context_or_default(context: FieldContext | None) -> FieldContext:
    """``context``, or one for the default time zone when None."""
    return context if context is not None else FieldContext(ZoneInfo(DEFAULT_TIMEZONE))


# --- small helpers ----------------------------------------------------------

def option_value(definition, name: str):
    """The definition's option ``name``, or None when missing or blank."""
    value = getattr(definition, name, None) if definition is not None else None
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (list, tuple)) and not value:
        return None
    return value


def label_of(definition) -> str:
    """The field's label for messages (its key when it has none)."""
    return str(option_value(definition, "label") or option_value(definition, "key") or "?")


def is_blank(raw) -> bool:
    """None, a blank string or an empty list: "nothing entered"."""
    if raw is None:
        return True
    if isinstance(raw, str):
        return not raw.strip()
    if isinstance(raw, (list, tuple)):
        return not raw
    return False


def fold(text: str) -> str:
    """Full-width digits, letters and punctuation folded to ASCII (NFKC), trimmed."""
    return unicodedata.normalize("NFKC", text).strip()


def single_value_error() -> InvalidValue:
    """The refusal of a list or an object where one value belongs."""
    return InvalidValue(_("请填写单个值，不能是列表或对象"))


def scalar_text(raw) -> str:
    """``raw`` as stripped text: strings as typed, numbers written out; anything else is refused.

    Dicts, lists, booleans, bytes and other objects raise :class:`InvalidValue`
    (so a value such as ``{"$gt": ""}`` never reaches a query), and so does text
    with control characters other than tab and line breaks, or lone surrogates
    (``check_typable``). A float that is a whole number (spreadsheets give
    13812345678.0) loses its ".0".
    """
    if isinstance(raw, str):
        return check_typable(raw.strip())
    if isinstance(raw, bool):
        raise single_value_error()
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float) and raw == raw and raw not in (float("inf"), float("-inf")):
        return str(int(raw)) if raw.is_integer() else repr(raw)
    if isinstance(raw, Decimal) and raw.is_finite():
        return format(raw, "f")
    raise single_value_error()


def split_values(raw) -> list:
    """A list of values from a list or from text separated by commas or "、"."""
    if isinstance(raw, (list, tuple)):
        values = list(raw)
    elif isinstance(raw, str):
        values = _LIST_SEPARATORS.split(raw)
    elif isinstance(raw, dict):
        raise single_value_error()
    else:
        values = [raw]
    return [value for value in values if not is_blank(value)]


def plain_number(number: Decimal) -> str:
    """``number`` without trailing zeros or exponent: 0.50 → "0.5", 20000.00 → "20000"."""
    if number == number.to_integral_value():
        return str(number.quantize(Decimal(1)))
    return format(number.normalize(), "f")


def list_text(values) -> str:
    """Values as a Chinese list: "a、b、c"."""
    return "、".join(str(value) for value in values)


def format_message(template, **variables) -> str:
    """A message template marked with ``_l`` (class attribute), translated now and filled in."""
    return str(template) % variables

