"""Language and time zone: Simplified Chinese by default, English on request."""
from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, has_request_context, session
from flask_babel import Babel, get_locale
from flask_login import current_user

from kefu.core.config import SUPPORTED_LOCALES
from kefu.org.roles import role_label

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"


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
        return {"kefu_locales": (("zh_Hans_CN", "中文"), ("en", "English")),
                "html_lang": "en" if str(get_locale()) == "en" else "zh-CN"}

    @app.template_filter("role_names")
    def role_names(roles) -> str:
        return "、".join(role_label(role) for role in roles or ())
