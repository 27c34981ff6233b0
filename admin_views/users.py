"""Admin screen for user accounts; every change goes through ``kefu.org.users``.

A user's phone is personal data like a customer's: to an editor without ``view_customer_pii`` the edit input starts
empty with the number masked as its placeholder, and an empty input keeps the stored number."""
from __future__ import annotations

from flask import request
from flask_admin.contrib.mongoengine.filters import FilterEqual
from markupsafe import Markup
from wtforms import PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional

from admin_views.base import SecureModelView
from kefu.core.errors import DomainError
from kefu.core.i18n import _, _l
from kefu.core.validation import mask_phone
from kefu.org import users
from kefu.org.roles import Capability, role_keys, role_label
from web.actor import current_actor
from web.i18n import LANGUAGES


class RolesField(SelectMultipleField):
    """Roles with their Chinese names; choices are built per request so the language follows the user."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, choices=lambda: [(r, role_label(r)) for r in role_keys()], **kwargs)


class ApprovalTitlesField(StringField):
    """Approval titles typed as one line, 财务总监、项目总监; the data is the list ``kefu.org.users`` keeps."""

    def process_formdata(self, valuelist):
        self.data = []
        try:
            self.data = users.clean_approval_titles(valuelist[0]) if valuelist else []
        except DomainError as exc:
            raise ValueError(str(exc.message)) from exc

    def _value(self):
        return "、".join(self.data or [])


def _language(locale: str | None) -> Markup | str:
    """A user's language by its own name, marked with its ``lang``."""
    for code, name, lang in LANGUAGES:
        if code == locale:
            return Markup(f'<span lang="{lang}">{name}</span>')
    return locale or ""


class UserView(SecureModelView):
    import_target = "users"
    required_capability = Capability.MANAGE_SYSTEM.value
    can_delete = False  # accounts are disabled, never deleted: records keep pointing at them
    column_list = ("username", "display_name", "roles", "approval_titles", "department", "active", "last_login_at")
    column_searchable_list = ("username", "display_name")
    column_filters = ("department", "active",
                      FilterEqual(users.User.roles, _l("角色"), options=lambda: [(r, role_label(r)) for r in role_keys()]))
    column_details_exclude_list = ("password_hash", "phone_enc")
    column_formatters = {"roles": lambda view, context, model, name: "、".join(role_label(r) for r in model.roles),
                         "approval_titles": lambda view, context, model, name: "、".join(model.approval_titles or [])}
    column_formatters_detail = {**column_formatters, "locale": lambda view, context, model, name: _language(model.locale)}
    form_columns = ("username", "display_name", "new_password", "roles", "approval_titles", "department", "email",
                    "phone", "locale", "active")
    form_overrides = {"roles": RolesField, "approval_titles": ApprovalTitlesField}
    form_args = {"approval_titles": {"description": _l(
        "审批人的职务，如：项目总监、财务总监；多个用顿号分隔。须与记录类型审批规则（approvals）中的职务一致")}}
    form_extra_fields = {
        "new_password": PasswordField(_l("新密码"), validators=[Optional()],
                                      description=_l("新建账号时必填；编辑时留空表示不修改")),
        "phone": StringField(_l("电话"), validators=[Optional()]),  # stored encrypted by kefu.org.users
        # Each language by its own name (中文 / English), marked with its lang, not by its code (zh_Hans_CN).
        "locale": SelectField(users.User.locale.verbose_name, validators=[Optional()], choices=[
            SelectChoice(code, name, render_kw={"lang": lang}) for code, name, lang in LANGUAGES]),
    }
    form_widget_args = {"username": {"autocomplete": "off"}}

    def on_form_prefill(self, form, id):
        form.username.render_kw = {"readonly": True}

    @staticmethod
    def _unmasked() -> bool:
        return current_actor().access.has(Capability.VIEW_CUSTOMER_PII.value)

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        if self._unmasked():
            return form
        if request.method != "POST":
            form.phone.data = ""  # the stored number never reaches this editor's browser
        masked = mask_phone(obj.phone) if obj is not None else ""
        form.phone.render_kw = {**(form.phone.render_kw or {}),
                                "placeholder": _("%(masked)s（留空则不修改）", masked=masked or "-")}
        return form

    def _phone(self, form, model) -> str | None:
        """The phone to store: what was typed; a masked input left empty keeps the stored number."""
        if form.phone.data or self._unmasked():
            return form.phone.data or None
        return model.phone

    def create_model(self, form):
        try:
            user = users.create_user(
                username=form.username.data, password=form.new_password.data, roles=form.roles.data,
                department=form.department.data, display_name=form.display_name.data,
                email=form.email.data or None, phone=form.phone.data or None, locale=form.locale.data or None,
                approval_titles=form.approval_titles.data,
            )
            if not form.active.data:
                users.set_active(user, False)
        except Exception as exc:
            if not self.handle_view_exception(exc):
                raise
            return False
        return user

    def update_model(self, form, model):
        try:
            users.update_user(
                model, display_name=form.display_name.data, roles=form.roles.data,
                department=form.department.data, email=form.email.data or None,
                phone=self._phone(form, model), locale=form.locale.data or None,
                approval_titles=form.approval_titles.data or [],
            )
            users.set_active(model, bool(form.active.data))
            if form.new_password.data:
                users.set_password(model, form.new_password.data)
        except Exception as exc:
            if not self.handle_view_exception(exc):
                raise
            return False
        return True
