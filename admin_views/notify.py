"""Admin screens of the notification system: 通知设置, 消息模板 and 发送记录 (the delivery log).

Thin: settings are saved through ``kefu.notify.channels.save_settings``, templates through
``kefu.notify.messages.save_template``, a failed delivery is sent again through ``kefu.notify.notifications.retry_delivery``.
"""
from __future__ import annotations

from flask import current_app, flash, redirect, request
from flask_admin import BaseView, expose
from flask_admin.actions import action
from flask_admin.form import SecureForm
from flask_login import current_user
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import NumberRange, Optional

from admin_views.base import AccessControlled, SecureModelView
from jobs.deliver import dispatch
from kefu.core.errors import DomainError
from kefu.core.i18n import _, _l
from kefu.notify import channels, messages, notifications
from kefu.org.roles import Capability


class SettingsForm(SecureForm):
    email_enabled = BooleanField(_l("启用邮件"))
    smtp_host = StringField(_l("SMTP 服务器"), description=_l("留空则使用环境变量 KEFU_SMTP_HOST"))
    smtp_port = IntegerField(_l("SMTP 端口"), validators=[Optional(), NumberRange(1, 65535)])
    smtp_security = SelectField(_l("SMTP 加密方式"), choices=[("", _l("按环境变量")), ("none", _l("不加密")),
                                                           ("starttls", "STARTTLS"), ("ssl", "SSL/TLS")])
    smtp_user = StringField(_l("SMTP 用户名"))
    smtp_password = PasswordField(_l("SMTP 密码"), description=_l("留空则保持原密码；加密保存"))
    clear_password = BooleanField(_l("清除已保存的密码"))
    smtp_from = StringField(_l("发件人地址"), description=_l("如 kefu@example.com"))
    webhook_enabled = BooleanField(_l("启用群机器人"))
    webhook_format = SelectField(_l("机器人格式"), choices=[("wecom", _l("企业微信")), ("dingtalk", _l("钉钉"))])
    staff_webhook_url = StringField(_l("员工提醒群机器人地址"), description=_l("逾期、即将到期等提醒发到该群"))
    care_webhook_url = StringField(_l("客户关怀消息地址"), description=_l("交付关怀、节日问候经此发出"))
    quiet_enabled = BooleanField(_l("非工作时间不发送"), description=_l("紧急事项（见“立即发送的等级”）不受限制，立即发送"))
    working_days_only = BooleanField(_l("仅工作日发送"))
    window_start = StringField(_l("发送时段开始"), description="09:00")
    window_end = StringField(_l("发送时段结束"), description="18:00")
    urgent_levels = StringField(_l("立即发送的等级"), description=_l("多个用顿号分隔；留空即各类型的最高等级"),
                                render_kw={"placeholder": _l("各类型的最高等级")})
    base_url = StringField(_l("系统访问地址"), description=_l("消息中的链接以此开头，如 https://kefu.example.com"))


class NotificationSettingsView(AccessControlled, BaseView):
    """``/admin/notify-settings/``: one form for the channels and quiet hours."""

    required_capability = Capability.MANAGE_SYSTEM.value

    @expose("/", methods=("GET", "POST"))
    def index(self):
        settings = channels.get_settings()
        form = SettingsForm(request.form if request.method == "POST" else None, obj=settings)
        if request.method == "GET":
            form.urgent_levels.data = "、".join(settings.urgent_levels or [])
            form.smtp_security.data = settings.smtp_security or ""
        if request.method == "POST" and form.validate():
            values = {name: getattr(form, name).data for name in channels.SETTING_FIELDS if hasattr(form, name)}
            values["smtp_security"] = values.get("smtp_security") or None
            levels = form.urgent_levels.data or ""
            if not isinstance(levels, str):  # not posted: the stored list
                levels = "、".join(levels)
            values["urgent_levels"] = [v.strip() for v in levels.replace(",", "、").split("、") if v.strip()]
            try:
                channels.save_settings(values, current_app.extensions["kefu_cipher"],
                                       smtp_password=form.smtp_password.data or None,
                                       clear_password=form.clear_password.data)
            except DomainError as exc:
                for name, message in exc.fields.items():
                    if hasattr(form, name):
                        getattr(form, name).errors = [str(message)]
                flash(_("保存失败：%(errors)s", errors=str(exc)), "error")
            else:
                flash(_("通知设置已保存"), "success")
                return redirect(self.get_url(".index"))
        elif request.method == "POST":
            flash(_("保存失败：请检查标出的项目"), "error")
        smtp = channels.smtp_settings(settings, current_app.extensions["kefu_cipher"])
        return self.render("admin/notify_settings.html", form=form, smtp_ready=smtp.configured,
                           has_password=bool(settings.smtp_password_encrypted))


class MessageTemplateView(SecureModelView):
    """消息模板: one per kind, edited in place (validated in a sandbox with sample values)."""

    required_capability = Capability.MANAGE_SYSTEM.value
    can_create = False
    can_delete = False
    can_view_details = False
    column_list = ("kind", "subject", "updated_at", "updated_by")
    column_formatters = {"kind": lambda view, context, model, name: str(model)}
    form_columns = ("subject", "body")
    form_overrides = {"body": TextAreaField}
    form_widget_args = {"body": {"rows": 8}}
    column_descriptions = {"subject": _l("Jinja 模板，如 {{ number }}、{{ clock }}、{{ due_at }}；见下方说明")}

    def get_list(self, *args, **kwargs):
        messages.ensure_templates()  # every kind is listed, also those added by an upgrade
        return super().get_list(*args, **kwargs)

    def update_model(self, form, model):
        try:
            messages.save_template(model.kind, form.subject.data, form.body.data, by=current_user.username)
        except DomainError as exc:
            for message in exc.fields.values() or [exc.message]:
                flash(str(message), "error")
            return False
        return True

    def render(self, template, **kwargs):
        model = kwargs.get("model")
        if model is not None and getattr(model, "kind", None) in messages.KINDS:
            flash(_("可用变量：%(names)s", names="、".join(messages.KINDS[model.kind].variables)), "info")
        return super().render(template, **kwargs)


class DeliveryView(SecureModelView):
    """发送记录: every email and webhook delivery with its status, attempts and error; failed ones can be retried."""

    required_capability = Capability.MANAGE_SYSTEM.value
    can_create = False
    can_edit = False
    can_delete = False
    column_list = ("created_at", "channel", "target", "kind", "record_number", "subject", "status", "attempts",
                   "error", "sent_at")
    column_filters = ("status", "channel", "kind", "created_at")
    column_searchable_list = ("record_number",)
    column_default_sort = ("created_at", True)
    column_formatters = {
        "channel": lambda v, c, m, n: str(notifications.CHANNEL_LABELS.get(m.channel, m.channel)),
        "status": lambda v, c, m, n: str(notifications.STATUS_LABELS.get(m.status, m.status)),
        "kind": lambda v, c, m, n: str(notifications.KIND_LABELS.get(m.kind, m.kind)),
        "target": lambda v, c, m, n: channels.redact_url(m.target) if m.channel == "webhook" else m.target,
        "error": lambda v, c, m, n: (m.error or "")[:200],
    }
    column_details_exclude_list = ("sealed_payload",)

    @action("retry", _l("重新发送"), _l("重新发送所选的发送失败记录？"))
    def action_retry(self, ids):
        retried = 0
        for delivery_id in ids:
            try:
                notifications.retry_delivery(delivery_id)
                retried += 1
            except DomainError:
                continue
        dispatch()
        flash(_("已重新发送 %(n)s 条（只有发送失败的记录会重发）", n=retried), "success")
