"""Delivery channels beyond the in-app inbox: email over SMTP and group-robot webhooks, and quiet hours.

Settings live in one document (``notification_settings``, admin 通知设置); SMTP
may instead come from the app's settings (``KEFU_SMTP_HOST``, ``KEFU_SMTP_PORT``,
``KEFU_SMTP_USER``, ``KEFU_SMTP_PASSWORD``, ``KEFU_SMTP_FROM``,
``KEFU_SMTP_SECURITY`` = none / starttls / ssl); a value set in the admin wins.
The SMTP password set in the admin is stored encrypted with the data key.

Webhooks post JSON in the shape the group robots accept:
WeCom (企业微信) ``{"msgtype": "text", "text": {"content", "mentioned_mobile_list"}}``,
DingTalk (钉钉) ``{"msgtype": "text", "text": {"content"}, "at": {"atMobiles"}}``.
A robot that answers HTTP 200 with a non-zero ``errcode`` has refused the
message: that is a failure too (retried like a network error).

Quiet hours: staff reminders go out only inside the working window (default:
working days of the company calendar, 09:00–18:00 local); outside it they wait
for the window's next start. Urgent ones go out at once: records at one of the ``urgent_levels`` an admin lists in
通知设置, or — while that list is empty, as it starts — at their type's top level (``kefu.rules.levels.top_level``:
重大 in the shipped packs).
"""
from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from flask import current_app
from mongoengine import BooleanField, DateTimeField, Document, IntField, ListField, StringField, ValidationError

from kefu.core.clock import TIME_OF_DAY, time_of_day, utcnow
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l
from kefu.rules.levels import top_level

SETTINGS_ID = "notifications"
SECURITY_MODES = ("none", "starttls", "ssl")
WEBHOOK_FORMATS = ("wecom", "dingtalk")
WEBHOOK_TIMEOUT = 10
SMTP_TIMEOUT = 15


class ChannelError(Exception):
    """A channel could not deliver; the message says why (logged on the delivery, then retried)."""


class NotificationSettings(Document):
    """The one settings document of the channels and quiet hours."""

    id = StringField(primary_key=True, default=SETTINGS_ID)
    email_enabled = BooleanField(default=True, verbose_name=_l("启用邮件"))
    smtp_host = StringField(max_length=200, verbose_name=_l("SMTP 服务器"))
    smtp_port = IntField(min_value=1, max_value=65535, verbose_name=_l("SMTP 端口"))
    smtp_user = StringField(max_length=200, verbose_name=_l("SMTP 用户名"))
    smtp_password_encrypted = StringField(verbose_name=_l("SMTP 密码（已加密）"))
    smtp_from = StringField(max_length=200, verbose_name=_l("发件人地址"))
    smtp_security = StringField(choices=SECURITY_MODES, verbose_name=_l("SMTP 加密方式"))
    webhook_enabled = BooleanField(default=True, verbose_name=_l("启用群机器人"))
    staff_webhook_url = StringField(max_length=500, verbose_name=_l("员工提醒群机器人地址"))
    care_webhook_url = StringField(max_length=500, verbose_name=_l("客户关怀消息地址"))
    webhook_format = StringField(choices=WEBHOOK_FORMATS, default="wecom", verbose_name=_l("机器人格式"))
    quiet_enabled = BooleanField(default=True, verbose_name=_l("非工作时间不发送"))
    window_start = StringField(default="09:00", regex=TIME_OF_DAY, verbose_name=_l("发送时段开始"))
    window_end = StringField(default="18:00", regex=TIME_OF_DAY, verbose_name=_l("发送时段结束"))
    working_days_only = BooleanField(default=True, verbose_name=_l("仅工作日发送"))
    # Empty: each type's top level (``urgent_for``).
    urgent_levels = ListField(StringField(max_length=20), verbose_name=_l("立即发送的等级"))
    base_url = StringField(max_length=200, verbose_name=_l("系统访问地址"))
    updated_at = DateTimeField(default=utcnow)

    meta = {"collection": "notification_settings"}

    def clean(self) -> None:
        for name in ("staff_webhook_url", "care_webhook_url", "base_url"):
            value = (getattr(self, name) or "").strip()
            setattr(self, name, value or None)
            if value and not value.startswith(("http://", "https://")):
                message = str(_l("地址应以 http:// 或 https:// 开头"))
                raise ValidationError(message, errors={name: message})
        if self.window_start and self.window_end and self.window_start >= self.window_end:
            message = str(_l("发送时段的开始时间应早于结束时间"))
            raise ValidationError(message, errors={"window_end": message})
        self.updated_at = utcnow()

    def __str__(self) -> str:
        return str(_l("通知设置"))

    def urgent_for(self, record_type) -> tuple[str, ...]:
        """The levels whose records of ``record_type`` are sent at once: the listed ``urgent_levels``, else the
        type's top level (none when the type has no levels)."""
        if self.urgent_levels:
            return tuple(self.urgent_levels)
        top = top_level(record_type)
        return (top,) if top is not None else ()


def get_settings() -> NotificationSettings:
    """The settings document (created with the defaults when missing)."""
    settings = NotificationSettings.objects(pk=SETTINGS_ID).first()
    if settings is None:
        settings = NotificationSettings.objects(pk=SETTINGS_ID).modify(upsert=True, new=True,
                                                                        set_on_insert__updated_at=utcnow())
    return settings


# -- quiet hours -------------------------------------------------------------------------------------------

def next_send_time(now: datetime, settings: NotificationSettings, calendar, tz) -> datetime:
    """``now`` when it is inside the sending window, else the window's next start (UTC)."""
    if not settings.quiet_enabled:
        return now
    start, end = time_of_day(settings.window_start or "09:00"), time_of_day(settings.window_end or "18:00")
    local = now.astimezone(tz)
    day = local.date()
    for _offset in range(370):
        allowed_day = not settings.working_days_only or calendar.is_workday(day)
        if allowed_day:
            opens = datetime.combine(day, start, tzinfo=tz)
            closes = datetime.combine(day, end, tzinfo=tz)
            if local < opens:
                return opens.astimezone(timezone.utc)
            if local < closes:
                return now
        day += timedelta(days=1)
        local = datetime.combine(day, time(0, 0), tzinfo=tz)
    return now  # no working day in a year: never hold a message forever


# -- email -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None
    password: str | None
    sender: str
    security: str

    @property
    def configured(self) -> bool:
        return bool(self.host and self.sender)


def smtp_settings(settings: NotificationSettings, cipher) -> SmtpSettings:
    """The admin's SMTP settings, each missing one taken from the app's ``KEFU_SMTP_*`` settings."""
    config = current_app.config
    security = settings.smtp_security or config.get("KEFU_SMTP_SECURITY") or "none"
    password = None
    if settings.smtp_password_encrypted:
        password = cipher.decrypt(bytes.fromhex(settings.smtp_password_encrypted), context="smtp.password")
    port = settings.smtp_port or config.get("KEFU_SMTP_PORT") or (465 if security == "ssl" else 25)
    return SmtpSettings(host=settings.smtp_host or config.get("KEFU_SMTP_HOST") or "", port=port,
                        user=settings.smtp_user or config.get("KEFU_SMTP_USER") or None,
                        password=password or config.get("KEFU_SMTP_PASSWORD") or None,
                        sender=settings.smtp_from or config.get("KEFU_SMTP_FROM") or "", security=security)


def encrypt_smtp_password(password: str, cipher) -> str:
    """The form the settings document keeps the SMTP password in."""
    return cipher.encrypt(password, context="smtp.password").hex()


def send_email(smtp: SmtpSettings, to: str, subject: str, body: str) -> str:
    """Send a plain-text UTF-8 message; return its Message-ID. ``ChannelError`` when the server refuses."""
    if not smtp.configured:
        raise ChannelError("SMTP is not configured (KEFU_SMTP_HOST / KEFU_SMTP_FROM or 通知设置)")
    message = EmailMessage()
    message["From"] = formataddr(("客服管理系统", smtp.sender))
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=smtp.sender.partition("@")[2] or "kefu.local")
    message.set_content(body, charset="utf-8")
    try:
        if smtp.security == "ssl":
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=SMTP_TIMEOUT, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=SMTP_TIMEOUT)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if smtp.user:
                client.login(smtp.user, smtp.password or "")
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise ChannelError(f"SMTP {smtp.host}:{smtp.port}: {type(exc).__name__}: {exc}") from exc
    return message["Message-ID"]


# -- webhooks ----------------------------------------------------------------------------------------------

def webhook_payload(fmt: str, text: str, mobiles: list[str] | None = None) -> dict:
    """The robot's JSON for a text message mentioning ``mobiles``."""
    mobiles = [m for m in (mobiles or []) if m]
    if fmt == "dingtalk":
        return {"msgtype": "text", "text": {"content": text}, "at": {"atMobiles": mobiles, "isAtAll": False}}
    return {"msgtype": "text", "text": {"content": text, "mentioned_mobile_list": mobiles}}


def post_webhook(url: str, payload: dict) -> str:
    """POST ``payload`` as JSON; return the answer's text. ``ChannelError`` for a network error, a non-2xx
    status or a robot's non-zero ``errcode``."""
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
            answer = response.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        raise ChannelError(f"webhook answered HTTP {exc.code}") from exc
    except (OSError, ValueError) as exc:
        raise ChannelError(f"webhook not reachable: {type(exc).__name__}: {exc}") from exc
    try:
        parsed = json.loads(answer) if answer.strip() else {}
    except ValueError:
        parsed = {}
    if isinstance(parsed, dict) and parsed.get("errcode") not in (None, 0):
        raise ChannelError(f"webhook refused the message: errcode {parsed.get('errcode')} {parsed.get('errmsg', '')}")
    return answer[:500]


def redact_url(url: str | None) -> str:
    """A webhook address for logs and screens: the robot's key is a secret."""
    if not url:
        return ""
    base, _sep, query = url.partition("?")
    return f"{base}?…" if query else base


SETTING_FIELDS = ("email_enabled", "smtp_host", "smtp_port", "smtp_user", "smtp_from", "smtp_security",
                  "webhook_enabled", "staff_webhook_url", "care_webhook_url", "webhook_format", "quiet_enabled",
                  "window_start", "window_end", "working_days_only", "urgent_levels", "base_url")


def save_settings(values: dict, cipher, *, smtp_password: str | None = None,
                  clear_password: bool = False) -> NotificationSettings:
    """Change the settings named in ``values`` (``SETTING_FIELDS``); a non-empty ``smtp_password`` replaces the
    stored one (encrypted), ``clear_password`` removes it. ``ValidationFailed`` naming the field at fault."""
    settings = get_settings()
    for name in SETTING_FIELDS:
        if name in values:
            value = values[name]
            setattr(settings, name, value.strip() if isinstance(value, str) else value)
    if clear_password:
        settings.smtp_password_encrypted = None
    elif smtp_password:
        settings.smtp_password_encrypted = encrypt_smtp_password(smtp_password, cipher)
    try:
        settings.save()
    except ValidationError as exc:
        errors = {name: str(message) for name, message in (exc.to_dict() or {exc.field_name or "settings": exc.message}
                                                            ).items()}
        raise ValidationFailed("；".join(errors.values()), errors) from None
    return settings
