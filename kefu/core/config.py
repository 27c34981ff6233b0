"""Configuration: environment variables, the embedded-mode files under ``./var``, overrides.

Precedence, highest first: the ``overrides`` passed to ``create_app``, the
process environment, and in embedded mode the files the launcher keeps under
``var/`` (``var/embedded.json`` with the servers' addresses, ``var/secret_key``).
"""
from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parents[2]

SUPPORTED_LOCALES = ("zh_Hans_CN", "en")
DEFAULT_LOCALE = "zh_Hans_CN"
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_DATABASE = "kefu"


class ConfigError(RuntimeError):
    """The configuration cannot work; the message is one readable line for the operator."""


def redact_uri(uri: str) -> str:
    """``uri`` with any password replaced by ``***`` (safe to print or log)."""
    return re.sub(r"(?<=://)([^:/@]+):([^@]*)@", r"\1:***@", uri)


def uri_hosts(uri: str) -> str:
    """The ``host:port`` part of a MongoDB or Redis URI, without credentials."""
    match = re.match(r"^[a-z+]+://(?:[^@/]*@)?([^/?]+)", uri)
    return match.group(1) if match else redact_uri(uri)


def var_dir() -> Path:
    """Where embedded mode keeps its data: ``KEFU_VAR_DIR``, else ``./var``."""
    return Path(os.environ.get("KEFU_VAR_DIR") or PROJECT_ROOT / "var")


def read_embedded_addresses() -> dict[str, str]:
    """The URIs the launcher wrote for the embedded servers, or ``{}``."""
    try:
        return json.loads((var_dir() / "embedded.json").read_text())
    except (OSError, ValueError):
        return {}


def write_embedded_addresses(addresses: dict[str, str]) -> None:
    """Record the embedded servers' URIs so CLI commands in other terminals find them."""
    var_dir().mkdir(parents=True, exist_ok=True)
    (var_dir() / "embedded.json").write_text(json.dumps(addresses, indent=2))


def embedded_secret_key() -> str:
    """The secret key kept under ``var/`` in embedded mode, generated on first use."""
    key_file = var_dir() / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    var_dir().mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def _intervals(value) -> list[int]:
    """``"30,120,600"`` (or a list) as seconds between delivery retries."""
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    try:
        return [int(part) for part in str(value).split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(f"KEFU_RETRY_INTERVALS={value!r} should be seconds separated by commas, e.g. 30,120,600") \
            from exc


def load_config(overrides: dict | None = None) -> dict:
    """The app's settings as a dict for ``app.config``; raises ``ConfigError``.

    Embedded mode (``KEFU_EMBEDDED=1``, set by the launcher, or a ``var/embedded.json``
    left by a running launcher) fills in the server URIs and the secret key;
    otherwise ``MONGODB_URI``, ``REDIS_URL`` and ``SECRET_KEY`` are required.
    """
    overrides = dict(overrides or {})
    env = os.environ

    def setting(name: str, default=None):
        if name in overrides:
            return overrides[name]
        return env.get(name) or default

    embedded = read_embedded_addresses()
    mongodb_uri = setting("MONGODB_URI") or embedded.get("MONGODB_URI")
    redis_url = setting("REDIS_URL") or embedded.get("REDIS_URL")
    if not mongodb_uri:
        raise ConfigError("MONGODB_URI is not set (start the product with ./kefu.sh up, or set MONGODB_URI)")
    if not redis_url:
        raise ConfigError("REDIS_URL is not set (start the product with ./kefu.sh up, or set REDIS_URL)")

    secret_key = setting("SECRET_KEY")
    if not secret_key:
        if embedded or setting("KEFU_EMBEDDED") == "1":
            secret_key = embedded_secret_key()
        else:
            raise ConfigError("SECRET_KEY is not set: it is required when MONGODB_URI points at your own MongoDB")

    timezone_name = setting("KEFU_TIMEZONE", DEFAULT_TIMEZONE)
    try:
        ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"KEFU_TIMEZONE={timezone_name!r} is not a known time zone (e.g. Asia/Shanghai)") from exc

    locale = setting("KEFU_LOCALE", DEFAULT_LOCALE)
    if locale not in SUPPORTED_LOCALES:
        raise ConfigError(f"KEFU_LOCALE={locale!r} is not supported; use one of {', '.join(SUPPORTED_LOCALES)}")

    config = {
        "MONGODB_URI": mongodb_uri,
        "MONGODB_DB": setting("MONGODB_DB"),
        "REDIS_URL": redis_url,
        "SECRET_KEY": secret_key,
        "KEFU_TIMEZONE": timezone_name,
        "KEFU_LOCALE": locale,
        "KEFU_DEMO": setting("KEFU_DEMO") == "1",
        "KEFU_EMBEDDED": bool(embedded) or setting("KEFU_EMBEDDED") == "1",
        "KEFU_DATA_KEY": setting("KEFU_DATA_KEY"),
        "MONGODB_TIMEOUT_MS": int(setting("MONGODB_TIMEOUT_MS", 10000)),
        # Background work: seconds between scheduler ticks; links in messages; retry backoff of deliveries.
        "KEFU_TICK_SECONDS": int(setting("KEFU_TICK_SECONDS", 60)),
        "KEFU_BASE_URL": setting("KEFU_BASE_URL", "http://127.0.0.1:5000"),
        "KEFU_RETRY_INTERVALS": _intervals(setting("KEFU_RETRY_INTERVALS", "30,120,600")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": setting("SESSION_COOKIE_SECURE") == "1",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # Uploads: attachments may be up to 100 MB each (videos of site visits).
        "MAX_CONTENT_LENGTH": int(setting("MAX_CONTENT_LENGTH", 210 * 1024 * 1024)),
        "BABEL_DEFAULT_LOCALE": locale,
        "BABEL_DEFAULT_TIMEZONE": "UTC",
    }
    # Anything else the caller passed (TESTING, feature switches) is kept as given.
    for key, value in overrides.items():
        config.setdefault(key, value)
    return config
