"""Validators and maskers for Chinese contact and identity data.

Every ``normalize_*`` function takes what a person typed and returns the
canonical form that is stored, or raises :class:`InvalidValue` with a short
Simplified Chinese sentence that can be shown next to the field as it is.
Every ``mask_*`` function turns a stored value into what a user without the
right to see personal data may read. :func:`check_typable` refuses text holding
characters nobody types (control characters, lone surrogates).
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta

from kefu.core.clock import utcnow
from kefu.core.i18n import _, _l


class InvalidValue(ValueError):
    """A value a person entered is not acceptable; ``str(exc)`` says why, in the user's language."""


# --- characters nobody types ----------------------------------------------------

# C0 and C1 control characters (NUL, BEL, ESC …) come from broken imports or probing, never from a keyboard; tab and
# line breaks are typed in multi-line text. Lone UTF-16 surrogates ("\ud800" in JSON) are not text at all: neither
# MongoDB nor a UTF-8 response can hold them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_TAB_AND_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def check_typable(text: str, *, multiline: bool = True) -> str:
    """``text`` unchanged when a person could have typed it; :class:`InvalidValue` otherwise.

    Refused: lone surrogates, and control characters other than tab and line
    breaks (those too when ``multiline`` is false). The message names the
    position and code point of the first such character.
    """
    surrogate = _SURROGATE.search(text)
    if surrogate:
        raise InvalidValue(_("第 %(n)s 个字符无效（不成对的代理项 U+%(code)04X），请检查文本编码",
                             n=surrogate.start() + 1, code=ord(surrogate.group())))
    control = (_CONTROL_BUT_TAB_AND_LINE_BREAKS if multiline else _CONTROL).search(text)
    if control:
        raise InvalidValue(_("不能含有控制字符（第 %(n)s 个字符为 U+%(code)04X），请删除后再提交",
                             n=control.start() + 1, code=ord(control.group())))
    return text


def _typed_text(text) -> str:
    """What the person typed, with full-width characters folded and blanks trimmed.

    Chinese input methods produce full-width digits, letters, "＋", "－" and
    "＠"; NFKC folds them to ASCII so they are not rejected for how they look.
    ``None`` counts as blank.
    """
    if text is None:
        return ""
    return unicodedata.normalize("NFKC", str(text)).strip()


def _mask_middle(text: str, keep_start: int, keep_end: int) -> str:
    """``text`` with everything except its first and last few characters replaced by "*".

    When the text is too short to keep both ends, all of it is hidden.
    """
    if len(text) <= keep_start + keep_end:
        return "*" * len(text)
    return text[:keep_start] + "*" * (len(text) - keep_start - keep_end) + text[len(text) - keep_end:]


# --- phone numbers ----------------------------------------------------------

# Mainland mobile numbers: the country code is optional and dropped.
_MOBILE = re.compile(r"(?:\+86|0086|86)?(1\d{10})", re.ASCII)
# Mobile numbers are issued only in the 13–19 ranges.
_MOBILE_SECOND_DIGITS = "3456789"
# Nationwide 400/800 service numbers, written 400-xxx-xxxx.
_SERVICE = re.compile(r"([48]00)(\d{3})(\d{4})", re.ASCII)
# Landlines: Beijing (010) and the 02x cities have three-character area codes,
# every other area code has four, so the split between area code and local
# number is never ambiguous even when the number is typed without a dash.
_LANDLINE = re.compile(
    r"\(?(0(?:10|2\d|[3-9]\d{2}))\)?-?([1-9]\d{6,7})(?:(?:-|转|分机)(\d{1,6}))?",
    re.ASCII,
)
# Characters a phone number may be typed with; anything else is reported.
_PHONE_NOISE = re.compile(r"[\d+\-()]|转|分机", re.ASCII)
_COUNTRY_CODE = re.compile(r"^(?:\+86|0086|86)")

MOBILE_FORMAT_MESSAGE = _l("手机号码格式不正确，应为 11 位数字，以 1 开头")
MOBILE_PREFIX_MESSAGE = _l("手机号码格式不正确，前两位应为 13–19")
LANDLINE_FORMAT_MESSAGE = _l("座机号码格式不正确，应为区号加 7–8 位号码，如 0571-87654321")
SERVICE_FORMAT_MESSAGE = _l("400/800 号码格式不正确，应为 10 位数字，如 400-123-4567")
PHONE_FORMAT_MESSAGE = _l("电话号码格式不正确，请填写 11 位手机号码或带区号的座机号码，如 0571-87654321")


def normalize_phone(text) -> str:
    """Canonical form of a mainland mobile, landline or 400/800 service number.

    Accepted input and what is returned:

    * mobile ``1[3-9]`` + 9 digits, optionally prefixed by ``+86``/``0086``/``86``
      and broken up by spaces or dashes: returned as 11 digits, ``13812345678``;
    * landline, area code (``010``, ``02x`` or ``0xxx``) then a 7–8 digit local
      number, optionally in parentheses or followed by ``-`` and an extension
      written ``-123``, ``转123`` or ``分机123``: returned as ``0571-87654321``
      or ``0571-87654321-123``;
    * service numbers ``400``/``800`` + 7 digits: returned as ``400-123-4567``.

    Full-width characters are accepted. Raises :class:`InvalidValue` when the
    text is blank, contains other characters or fits none of the forms; the
    message names the form the number appeared to be meant as.
    """
    typed = _typed_text(text)
    compact = re.sub(r"\s+", "", typed)
    if not compact:
        raise InvalidValue(_("请填写电话号码"))
    stray = _PHONE_NOISE.sub("", compact)
    if stray:
        raise InvalidValue(_("电话号码中含有无法识别的字符“%(char)s”", char=stray[0]))

    digits_and_plus = re.sub(r"[\-()]", "", compact)
    mobile = _MOBILE.fullmatch(digits_and_plus)
    if mobile:
        number = mobile.group(1)
        if number[1] not in _MOBILE_SECOND_DIGITS:
            raise InvalidValue(str(MOBILE_PREFIX_MESSAGE))
        return number
    service = _SERVICE.fullmatch(digits_and_plus)
    if service:
        return "-".join(service.groups())
    landline = _LANDLINE.fullmatch(compact)
    if landline:
        area_code, local_number, extension = landline.groups()
        canonical = f"{area_code}-{local_number}"
        return f"{canonical}-{extension}" if extension else canonical

    # Nothing matched: say what the number looks like it was meant to be.
    national = _COUNTRY_CODE.sub("", digits_and_plus)
    if national.startswith("1"):
        raise InvalidValue(str(MOBILE_FORMAT_MESSAGE))
    if national.startswith(("400", "800")):
        raise InvalidValue(str(SERVICE_FORMAT_MESSAGE))
    if national.startswith("0"):
        raise InvalidValue(str(LANDLINE_FORMAT_MESSAGE))
    raise InvalidValue(str(PHONE_FORMAT_MESSAGE))


def mask_phone(phone) -> str:
    """A phone number with its private digits hidden, for users without ``view_pii``.

    Mobile ``13812345678`` becomes ``138****5678``; landline
    ``0571-87654321-123`` becomes ``0571-****4321-123`` (the area code and
    extension only say where the line is). 400/800 numbers belong to companies
    and are returned canonical but unmasked. A value that is not a valid phone
    number (legacy data) keeps only its last four characters; blank gives "".
    """
    typed = _typed_text(phone)
    if not typed:
        return ""
    try:
        canonical = normalize_phone(typed)
    except InvalidValue:
        return _mask_middle(typed, 0, 4)
    if canonical[0] == "1":
        return _mask_middle(canonical, 3, 4)
    if canonical.startswith(("400-", "800-")):
        return canonical
    area_code, local_number, *extension = canonical.split("-")
    return "-".join([area_code, _mask_middle(local_number, 0, 4), *extension])


# --- resident ID numbers (GB 11643-1999) --------------------------------------

# Province-level codes that appear as the first two digits of an ID number;
# 71 is Taiwan, and 81, 82 and 83 begin the residence permits of Hong Kong,
# Macao and Taiwan residents, which share the ID number format.
_PROVINCE_CODES = frozenset(
    [*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47), *range(50, 55),
     *range(61, 66), 71, 81, 82, 83]
)
# ISO 7064 MOD 11-2: weight of each of the first 17 digits, and the check
# character for each remainder of the weighted sum divided by 11.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_SHAPE = re.compile(r"\d{17}[\dX]", re.ASCII)
_EARLIEST_BIRTH_YEAR = 1900
# Mainland China has kept UTC+8 all year since 1991, so a fixed offset gives
# the local date without needing the tz database.
_CHINA_UTC_OFFSET = timedelta(hours=8)


def china_today() -> date:
    """Today's date in mainland China (UTC+8)."""
    return (utcnow() + _CHINA_UTC_OFFSET).date()


def id_number_check_digit(first17: str) -> str:
    """The check character ("0"–"9" or "X") completing the 17 digits ``first17``.

    Raises :class:`InvalidValue` when ``first17`` is not exactly 17 digits.
    """
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise InvalidValue(_("身份证号码本体应为 17 位数字"))
    weighted_sum = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS))
    return _ID_CHECK_CHARS[weighted_sum % 11]


def normalize_id_number(text, *, today: date | None = None) -> str:
    """Canonical form of an 18-digit resident ID number: 17 digits and "0"–"9" or "X".

    Spaces are removed and a lowercase or full-width "x" is upper-cased. The
    number must have a valid province code in its first two digits, a real
    birth date (digits 7–14) between 1900-01-01 and ``today`` (default: today
    in China), and a correct MOD 11-2 check character. Raises
    :class:`InvalidValue` with a different message for each of: blank, wrong
    length, wrong characters, unknown region, impossible birth date and wrong
    check character.
    """
    compact = re.sub(r"\s+", "", _typed_text(text)).upper()
    if not compact:
        raise InvalidValue(_("请填写身份证号码"))
    if len(compact) != 18:
        raise InvalidValue(_("身份证号码应为 18 位，当前为 %(n)s 位", n=len(compact)))
    if not _ID_SHAPE.fullmatch(compact):
        raise InvalidValue(_("身份证号码前 17 位应为数字，最后一位为数字或 X"))
    if int(compact[:2]) not in _PROVINCE_CODES:
        raise InvalidValue(_("身份证号码前两位“%(code)s”不是有效的省份代码", code=compact[:2]))

    birth_digits = compact[6:14]
    try:
        birth_date = date(int(birth_digits[:4]), int(birth_digits[4:6]), int(birth_digits[6:]))
    except ValueError:
        raise InvalidValue(_("身份证号码中的出生日期“%(date)s”不是有效日期", date=birth_digits)) from None
    if birth_date.year < _EARLIEST_BIRTH_YEAR:
        raise InvalidValue(_("身份证号码中的出生日期“%(date)s”早于 1900 年", date=birth_digits))
    if birth_date > (today or china_today()):
        raise InvalidValue(_("身份证号码中的出生日期“%(date)s”晚于今天", date=birth_digits))

    if id_number_check_digit(compact[:17]) != compact[17]:
        raise InvalidValue(_("身份证号码校验位不正确，请核对是否输错"))
    return compact


def mask_id_number(idn) -> str:
    """An ID number with the birth date and sequence hidden: ``330106********1234``.

    The first six digits (region) and last four are kept whatever the length,
    so legacy 15-digit numbers are masked the same way; blank gives "".
    """
    return _mask_middle(re.sub(r"\s+", "", _typed_text(idn)).upper(), 6, 4)


# --- e-mail addresses -------------------------------------------------------

# Deliberately the common subset of RFC 5322 that real mailboxes use: an
# unquoted local part of dot-separated atoms and an ASCII host name with a
# letter-only (or punycode, such as .中国 = xn--fiqs8s) top-level domain.
# Quoted local parts and IP-literal domains are legal but in practice only
# appear through typing mistakes and abuse.
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TOP_LEVEL_DOMAIN = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_EMAIL_MAX_LENGTH = 254
_EMAIL_LOCAL_MAX_LENGTH = 64

EMAIL_FORMAT_MESSAGE = _l("邮箱地址格式不正确，应类似 name@example.com")


def normalize_email(text) -> str:
    """Canonical form of an e-mail address: as typed, with the domain lower-cased.

    Full-width characters (such as "＠") are folded to ASCII and surrounding
    blanks removed. The local part keeps its case because some mail servers
    treat it as significant. Raises :class:`InvalidValue` when the text is
    blank, has no "@" or more than one, is longer than 254 characters, or the
    local part or domain is malformed.
    """
    typed = _typed_text(text)
    if not typed:
        raise InvalidValue(_("请填写邮箱地址"))
    if "@" not in typed:
        raise InvalidValue(_("邮箱地址缺少“@”，应类似 name@example.com"))
    if len(typed) > _EMAIL_MAX_LENGTH:
        raise InvalidValue(_("邮箱地址过长，最多 %(n)s 个字符", n=_EMAIL_MAX_LENGTH))
    local_part, _at, domain = typed.rpartition("@")
    domain = domain.lower()
    labels = domain.split(".")
    if (
        len(local_part) > _EMAIL_LOCAL_MAX_LENGTH
        or not _EMAIL_LOCAL.fullmatch(local_part)
        or len(labels) < 2
        or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        or not _TOP_LEVEL_DOMAIN.fullmatch(labels[-1])
    ):
        raise InvalidValue(str(EMAIL_FORMAT_MESSAGE))
    return f"{local_part}@{domain}"
