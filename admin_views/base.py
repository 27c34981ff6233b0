"""The base admin views: sign-in required, role check, CSRF, and the 403 page."""
from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_admin.contrib.mongoengine import ModelView
from flask_admin.form import SecureForm
from flask_admin.model import typefmt
from flask_login import current_user
from mongoengine import NotUniqueError, ValidationError

from kefu.calendar import workcalendar
from kefu.core.clock import utcnow
from kefu.core.errors import DomainError
from kefu.core.i18n import _
from kefu.insight import dashboard
from kefu.org.roles import Role, role_label


class AccessControlled:
    """Mixin: signed-out → login page; signed in without one of ``allowed_roles`` → 403 naming them.

    ``allowed_roles`` empty means any signed-in user.
    """

    allowed_roles: tuple[str, ...] = ()

    def is_accessible(self) -> bool:
        if not current_user.is_authenticated:
            return False
        return not self.allowed_roles or current_user.has_role(*self.allowed_roles)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
        abort(403, _("此页面仅限以下角色访问：%(roles)s。您的角色：%(mine)s",
                     roles="、".join(role_label(r) for r in self.allowed_roles),
                     mine="、".join(role_label(r) for r in current_user.roles) or "-"))


def local_time(view, value, name=None) -> str:
    """A stored (UTC) datetime as ``YYYY-MM-DD HH:MM`` in ``KEFU_TIMEZONE``."""
    return value.astimezone(ZoneInfo(current_app.config["KEFU_TIMEZONE"])).strftime("%Y-%m-%d %H:%M")


LOCAL_TIME_FORMATTERS = {**typefmt.BASE_FORMATTERS, datetime: local_time}
LOCAL_TIME_DETAIL_FORMATTERS = {**typefmt.DETAIL_FORMATTERS, datetime: local_time}


class SecureModelView(AccessControlled, ModelView):
    """A MongoEngine model view with CSRF on every form, role-based access and local times."""

    form_base_class = SecureForm
    column_type_formatters = LOCAL_TIME_FORMATTERS
    column_type_formatters_detail = LOCAL_TIME_DETAIL_FORMATTERS
    page_size = 50
    can_view_details = True

    def handle_view_exception(self, exc: Exception) -> bool:
        """Flash a person-readable message for the errors a user can cause; True when handled."""
        if isinstance(exc, DomainError):
            for message in exc.fields.values() or [exc.message]:
                flash(str(message), "error")
            return True
        if isinstance(exc, ValidationError):
            errors = exc.to_dict() or {exc.field_name or "": exc.message}
            for name, message in errors.items():
                label = self._field_label(name)
                flash(f"{label}：{message}" if label else str(message), "error")
            return True
        if isinstance(exc, NotUniqueError):
            flash(_("保存失败：已存在相同的记录（名称或编码重复）"), "error")
            return True
        return super().handle_view_exception(exc)

    def _field_label(self, name: str) -> str:
        field = self.model._fields.get(name)
        return str(field.verbose_name) if field is not None and field.verbose_name else name


class HomeView(AccessControlled, AdminIndexView):
    """The admin home (dashboard comes with the reporting issue); warns when the working-day calendar
    lacks this year's or next year's holidays (deadlines there use the fixed-date fallback)."""

    @expose("/")
    def index(self):
        tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
        now = utcnow()
        missing_years = workcalendar.get_calendar().missing_years(now.astimezone(tz).date())
        figures = dashboard.build(current_user, now, tz)
        charts = {"trend": {**figures.trend, "legend": [_("新增"), _("关闭")]},
                  "overdue_by_department": {
                      "names": [name or _("未指定部门") for _id, name, _n in reversed(figures.overdue_by_department)],
                      "counts": [n for _id, _name, n in reversed(figures.overdue_by_department)]}}
        return self.render("admin/kefu_index.html", calendar_missing_years=missing_years, figures=figures,
                           per_type=dashboard.by_type(current_user, now, tz),
                           supervises=current_user.has_role(Role.ADMIN.value, Role.MANAGER.value,
                                                            Role.SUPERVISOR.value),
                           charts_json=json.dumps(charts, ensure_ascii=False).replace("</", "<\\/"))
