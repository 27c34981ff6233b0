"""Settings: one frozen :class:`Settings`, read once by ``create_app`` (``Settings.load``), then ``app.config``.

Precedence, highest first: the ``overrides`` passed to ``create_app``, the
process environment (an empty variable counts as unset), and in embedded mode
the files the launcher keeps under ``var/`` (``var/embedded.json`` with the
servers' addresses, ``var/secret_key``). Every variable of the README's
Configuration table is a field here, except the two the launcher and
``kefu.sh`` read before any app exists (``KEFU_PORT``, ``KEFU_VENV``). The rest
of the code reads ``current_app.config`` (filled from ``Settings.flask_config``)
and never the environment.

A frozen dataclass rather than pydantic-settings: the precedence above, the
embedded fallbacks and the one-line ``ConfigError`` messages naming the variable
are ours, and pydantic's multi-line validation errors would have to be
translated back into those lines.
"""
from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

PROJECT_ROOT = Path(__file__).resolve().parents[2]

SUPPORTED_LOCALES = ("zh_Hans_CN", "en")
DEFAULT_LOCALE = "zh_Hans_CN"
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_DATABASE = "kefu"
DEFAULT_BASE_URL = "http://127.0.0.1:5000"
DEFAULT_RETRY_INTERVALS = "30,120,600"
DEFAULT_EXPORT_ASYNC_ROWS = 20_000
DEFAULT_TICK_SECONDS = 60
# A worker's lease on itself and its running job (kefu.runtime.worker): a killed worker's job is abandoned after it.
DEFAULT_WORKER_LEASE_SECONDS = 30
# Above a normal replica-set election (~11 s): a request waits for the new primary instead of failing.
DEFAULT_MONGODB_TIMEOUT_MS = 15_000
# Uploads: attachments may be up to 100 MB each (videos of site visits).
DEFAULT_MAX_CONTENT_LENGTH = 210 * 1024 * 1024


class ConfigError(RuntimeError, click.ClickException):
    """The configuration cannot work; the message is one readable line for the operator.

    A click exception too: ``flask --app app:create_app kefu …`` (whose app, built first, may raise it) prints
    ``[kefu] cannot start: …`` and exits 1 instead of a traceback.
    """

    def __init__(self, message: str):
        click.ClickException.__init__(self, message)

    def show(self, file=None) -> None:
        click.echo(f"[kefu] cannot start: {self.format_message()}", file=file, err=file is None)


def redact_uri(uri: str) -> str:
    """``uri`` with any password replaced by ``***`` (safe to print or log)."""
    return re.sub(r"(?<=://)([^:/@]+):([^@]*)@", r"\1:***@", uri)


def uri_hosts(uri: str) -> str:
    """The ``host:port`` part of a MongoDB or Redis URI, without credentials."""
    match = re.match(r"^[a-z+]+://(?:[^@/]*@)?([^/?]+)", uri)
    return match.group(1) if match else redact_uri(uri)


def environment_value(name: str) -> str | None:
    """The process environment's ``name``, None when unset or empty.

    With ``var_dir`` the only reading of the environment outside the launcher: ``Settings.load`` and, for
    callers given no app config, ``kefu.core.crypto`` go through it.
    """
    return os.environ.get(name) or None


def var_dir() -> Path:
    """Where embedded mode keeps its data: ``KEFU_VAR_DIR``, else ``./var``."""
    return Path(environment_value("KEFU_VAR_DIR") or PROJECT_ROOT / "var")


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


def _intervals(value) -> tuple[int, ...]:
    """``"30,120,600"`` (or a list) as seconds between delivery retries."""
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    try:
        return tuple(int(part) for part in str(value).split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"KEFU_RETRY_INTERVALS={value!r} should be seconds separated by commas, e.g. 30,120,600") \
            from exc


def _whole_number(name: str, value, example: int) -> int:
    """``value`` as an int of 0 or more; ``ConfigError`` naming ``name`` otherwise."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise ConfigError(f"{name}={value!r} should be a whole number, e.g. {example}")
    return number


def _count(name: str, value, example: int) -> int:
    """``value`` as an int of 1 or more; ``ConfigError`` naming ``name`` otherwise."""
    number = _whole_number(name, value, example)
    if number < 1:
        raise ConfigError(f"{name}={value!r} should be at least 1, e.g. {example}")
    return number


def _switch(value) -> bool:
    """The ``1`` of a switch variable (``KEFU_DEMO=1``); overrides may pass ``True``."""
    return value is True or value == "1"


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"KEFU_TIMEZONE={name!r} is not a known time zone (e.g. Asia/Shanghai)") from exc
    return name


def _redis_url(url: str) -> str:
    if not re.match(r"^(redis|rediss|unix)://", url):
        raise ConfigError(f"REDIS_URL={redact_uri(url)!r} should look like redis://host:6379/0 (or rediss://, unix://)")
    return url


def _locale(name: str) -> str:
    if name not in SUPPORTED_LOCALES:
        raise ConfigError(f"KEFU_LOCALE={name!r} is not supported; use one of {', '.join(SUPPORTED_LOCALES)}")
    return name


@dataclass(frozen=True)
class Settings:
    """Every setting of the product, each named after its variable in the README (Configuration)."""

    mongodb_uri: str                      # MONGODB_URI: the database is the URI's path, else MONGODB_DB, else kefu
    redis_url: str                        # REDIS_URL
    secret_key: str                       # SECRET_KEY
    mongodb_db: str | None = None         # MONGODB_DB (the tests give each test its own)
    data_key: str | None = None           # KEFU_DATA_KEY, checked when the cipher is built (kefu.core.crypto)
    data_key_old: str | None = None       # KEFU_DATA_KEY_OLD: the old keys of a rotation, separated by commas
    timezone: str = DEFAULT_TIMEZONE      # KEFU_TIMEZONE
    locale: str = DEFAULT_LOCALE          # KEFU_LOCALE
    demo: bool = False                    # KEFU_DEMO
    embedded: bool = False                # KEFU_EMBEDDED (set by the launcher) or its var/embedded.json
    base_url: str = DEFAULT_BASE_URL      # KEFU_BASE_URL
    smtp_host: str | None = None          # KEFU_SMTP_*: the admin's 通知设置 win over these
    smtp_port: int | None = None
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None
    smtp_security: str | None = None
    tick_seconds: int = DEFAULT_TICK_SECONDS                 # KEFU_TICK_SECONDS
    worker_lease_seconds: int = DEFAULT_WORKER_LEASE_SECONDS  # KEFU_WORKER_LEASE_SECONDS
    retry_intervals: tuple[int, ...] = (30, 120, 600)        # KEFU_RETRY_INTERVALS
    export_async_rows: int = DEFAULT_EXPORT_ASYNC_ROWS       # KEFU_EXPORT_ASYNC_ROWS
    mongodb_timeout_ms: int = DEFAULT_MONGODB_TIMEOUT_MS     # MONGODB_TIMEOUT_MS
    session_cookie_secure: bool = False                      # SESSION_COOKIE_SECURE (on anyway for an https base URL)
    trusted_proxies: int = 0                                 # KEFU_TRUSTED_PROXIES
    sign_in_limit_per_address: int = 50                      # KEFU_SIGN_IN_LIMIT_PER_ADDRESS
    sign_in_limit_per_name: int = 5                          # KEFU_SIGN_IN_LIMIT_PER_NAME
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH     # MAX_CONTENT_LENGTH
    extra: Mapping = field(default_factory=dict)  # overrides that are not settings (TESTING …), kept as given

    @classmethod
    def load(cls, overrides: Mapping | None = None) -> "Settings":
        """The settings from ``overrides``, the environment and the launcher's files; raises ``ConfigError``.

        Embedded mode (``KEFU_EMBEDDED=1``, set by the launcher, or a ``var/embedded.json`` left by a running
        launcher) fills in the server URIs and the secret key; otherwise ``MONGODB_URI``, ``REDIS_URL`` and
        ``SECRET_KEY`` are required.
        """
        overrides = dict(overrides or {})

        def setting(name: str, default=None):
            if name in overrides:
                return overrides[name]
            return environment_value(name) or default

        embedded = read_embedded_addresses()
        mongodb_uri = setting("MONGODB_URI") or embedded.get("MONGODB_URI")
        redis_url = setting("REDIS_URL") or embedded.get("REDIS_URL")
        if not mongodb_uri:
            raise ConfigError("MONGODB_URI is not set (start the product with ./kefu.sh up, or set MONGODB_URI)")
        if not redis_url:
            raise ConfigError("REDIS_URL is not set (start the product with ./kefu.sh up, or set REDIS_URL)")
        embedded_mode = bool(embedded) or _switch(setting("KEFU_EMBEDDED"))
        secret_key = setting("SECRET_KEY")
        if not secret_key:
            if not embedded_mode:
                raise ConfigError("SECRET_KEY is not set: it is required when MONGODB_URI points at your own MongoDB")
            secret_key = embedded_secret_key()
        smtp_port = setting("KEFU_SMTP_PORT")
        settings = cls(
            mongodb_uri=mongodb_uri, redis_url=_redis_url(redis_url), secret_key=secret_key,
            mongodb_db=setting("MONGODB_DB"),
            data_key=setting("KEFU_DATA_KEY"), data_key_old=setting("KEFU_DATA_KEY_OLD"),
            timezone=_timezone(setting("KEFU_TIMEZONE", DEFAULT_TIMEZONE)),
            locale=_locale(setting("KEFU_LOCALE", DEFAULT_LOCALE)),
            demo=_switch(setting("KEFU_DEMO")), embedded=embedded_mode,
            base_url=setting("KEFU_BASE_URL", DEFAULT_BASE_URL),
            smtp_host=setting("KEFU_SMTP_HOST"),
            smtp_port=_whole_number("KEFU_SMTP_PORT", smtp_port, 465) if smtp_port else None,
            smtp_user=setting("KEFU_SMTP_USER"), smtp_password=setting("KEFU_SMTP_PASSWORD"),
            smtp_from=setting("KEFU_SMTP_FROM"), smtp_security=setting("KEFU_SMTP_SECURITY"),
            tick_seconds=_whole_number("KEFU_TICK_SECONDS", setting("KEFU_TICK_SECONDS", DEFAULT_TICK_SECONDS), 60),
            worker_lease_seconds=_count("KEFU_WORKER_LEASE_SECONDS",
                                        setting("KEFU_WORKER_LEASE_SECONDS", DEFAULT_WORKER_LEASE_SECONDS), 30),
            retry_intervals=_intervals(setting("KEFU_RETRY_INTERVALS", DEFAULT_RETRY_INTERVALS)),
            export_async_rows=_whole_number("KEFU_EXPORT_ASYNC_ROWS",
                                            setting("KEFU_EXPORT_ASYNC_ROWS", DEFAULT_EXPORT_ASYNC_ROWS), 20000),
            mongodb_timeout_ms=_whole_number("MONGODB_TIMEOUT_MS",
                                             setting("MONGODB_TIMEOUT_MS", DEFAULT_MONGODB_TIMEOUT_MS), 10000),
            session_cookie_secure=_switch(setting("SESSION_COOKIE_SECURE")),
            trusted_proxies=_whole_number("KEFU_TRUSTED_PROXIES", setting("KEFU_TRUSTED_PROXIES", 0), 1),
            sign_in_limit_per_address=_count("KEFU_SIGN_IN_LIMIT_PER_ADDRESS",
                                             setting("KEFU_SIGN_IN_LIMIT_PER_ADDRESS", 50), 50),
            sign_in_limit_per_name=_count("KEFU_SIGN_IN_LIMIT_PER_NAME", setting("KEFU_SIGN_IN_LIMIT_PER_NAME", 5), 5),
            max_content_length=_whole_number("MAX_CONTENT_LENGTH",
                                             setting("MAX_CONTENT_LENGTH", DEFAULT_MAX_CONTENT_LENGTH),
                                             DEFAULT_MAX_CONTENT_LENGTH),
        )
        named = settings.flask_config()
        return replace(settings, extra=MappingProxyType({k: v for k, v in overrides.items() if k not in named}))

    def flask_config(self) -> dict:
        """The entries of ``app.config``: every setting under its variable's name, Flask's own, then ``extra``."""
        config = {
            "MONGODB_URI": self.mongodb_uri,
            "MONGODB_DB": self.mongodb_db,
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": self.secret_key,
            "KEFU_TIMEZONE": self.timezone,
            "KEFU_LOCALE": self.locale,
            "KEFU_DEMO": self.demo,
            "KEFU_EMBEDDED": self.embedded,
            "KEFU_DATA_KEY": self.data_key,
            "KEFU_DATA_KEY_OLD": self.data_key_old,
            "MONGODB_TIMEOUT_MS": self.mongodb_timeout_ms,
            # Background work: seconds between scheduler ticks; links in messages; retry backoff of deliveries;
            # exports with more rows than this are built by a worker.
            "KEFU_TICK_SECONDS": self.tick_seconds,
            "KEFU_WORKER_LEASE_SECONDS": self.worker_lease_seconds,
            "KEFU_BASE_URL": self.base_url,
            "KEFU_RETRY_INTERVALS": list(self.retry_intervals),
            "KEFU_EXPORT_ASYNC_ROWS": self.export_async_rows,
            "KEFU_SMTP_HOST": self.smtp_host,
            "KEFU_SMTP_PORT": self.smtp_port,
            "KEFU_SMTP_USER": self.smtp_user,
            "KEFU_SMTP_PASSWORD": self.smtp_password,
            "KEFU_SMTP_FROM": self.smtp_from,
            "KEFU_SMTP_SECURITY": self.smtp_security,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            # A browser that reached us over https never sends the session over plain http.
            "SESSION_COOKIE_SECURE": self.session_cookie_secure or self.base_url.startswith("https://"),
            # How many reverse proxies stand in front: their X-Forwarded-For names the client (sign-in limits count
            # per client address); 0 trusts no such header.
            "KEFU_TRUSTED_PROXIES": self.trusted_proxies,
            # Failed sign-ins allowed in 15 minutes from one address, and for one login name from one address.
            "KEFU_SIGN_IN_LIMIT_PER_ADDRESS": self.sign_in_limit_per_address,
            "KEFU_SIGN_IN_LIMIT_PER_NAME": self.sign_in_limit_per_name,
            "REMEMBER_COOKIE_HTTPONLY": True,
            "REMEMBER_COOKIE_SAMESITE": "Lax",
            "MAX_CONTENT_LENGTH": self.max_content_length,
            "BABEL_DEFAULT_LOCALE": self.locale,
            "BABEL_DEFAULT_TIMEZONE": "UTC",
        }
        config.update(self.extra)
        return config
