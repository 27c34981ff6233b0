"""Language and time zone: Simplified Chinese by default, English on request."""
from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, has_request_context, session
from babel.dates import get_day_names, get_month_names
from flask_babel import Babel, get_locale
from flask_login import current_user

from kefu.core.config import SUPPORTED_LOCALES
from kefu.core.i18n import _
from kefu.org.roles import role_label

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"
# Each language by its own name, and its HTML ``lang`` (a language's name is written in that language, so the
# menu's 中文 / English are marked as such).
LANGUAGES = (("zh_Hans_CN", "中文", "zh-CN"), ("en", "English", "en"))


def html_lang(locale: str) -> str:
    """The HTML ``lang`` of ``locale``."""
    return next((lang for code, _name, lang in LANGUAGES if code == locale), "zh-CN")


def admin_locale() -> dict:
    """The words of Flask-Admin's date pickers (bootstrap-daterangepicker) and pick lists (select2) in the
    request's language, for static/kefu_admin.js: both scripts have English built in. ``{n}`` stands for a
    number. Weeks start on Monday, as the company's working week does."""
    locale = get_locale()
    days = get_day_names("narrow" if locale.language == "zh" else "short", locale=locale)
    months = get_month_names("abbreviated", locale=locale)
    return {
        "lang": html_lang(str(locale)),
        "picker": {"applyLabel": _("确定"), "cancelLabel": _("取消"), "fromLabel": _("从"), "toLabel": _("至"),
                   "weekLabel": _("周"), "customRangeLabel": _("自定义"),
                   "daysOfWeek": [days[6], *(days[i] for i in range(6))],  # from Sunday, as moment counts
                   "monthNames": [months[i] for i in range(1, 13)], "firstDay": 1},
        "select2": {"noMatches": _("没有匹配的选项"), "searching": _("正在查找…"), "loadMore": _("正在加载更多…"),
                    "ajaxError": _("加载失败"), "inputTooShort": _("请再输入 {n} 个字符"),
                    "inputTooLong": _("请删去 {n} 个字符"), "selectionTooBig": _("最多只能选择 {n} 项"),
                    "matches": _("有 {n} 个结果，用上下方向键选择")},
    }


def select_locale() -> str:
    """The signed-in user's language, else the one chosen this session, else ``KEFU_LOCALE``."""
    if not has_request_context():  # CLI commands and jobs speak the configured language
        return current_app.config["KEFU_LOCALE"]
    user_locale = getattr(current_user, "locale", None) if current_user else None
    if user_locale in SUPPORTED_LOCALES:
        return user_locale
    chosen = session.get("locale")
    if chosen in SUPPORTED_LOCALES:
        return chosen
    return current_app.config["KEFU_LOCALE"]


def select_timezone() -> str:
    return current_app.config["KEFU_TIMEZONE"]


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone)

    @app.context_processor
    def language_choices():
        return {"kefu_locales": LANGUAGES, "html_lang": html_lang(str(get_locale())), "admin_locale": admin_locale}

    @app.template_filter("role_names")
    def role_names(roles) -> str:
        return "、".join(role_label(role) for role in roles or ())
