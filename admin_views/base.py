"""The base admin views: sign-in required, role check, CSRF, and the 403 page."""
from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_admin.contrib.mongoengine import ModelView
from flask_admin.contrib.mongoengine.ajax import QueryAjaxModelLoader
from flask_admin.contrib.mongoengine.filters import FilterConverter, ReferenceObjectIdFilter
from flask_admin.form import SecureForm
from flask_admin.model import typefmt
from flask_login import current_user
from markupsafe import Markup, escape
from mongoengine import NotUniqueError, Q, ValidationError

from kefu.calendar import workcalendar
from kefu.core.clock import utcnow
from kefu.core.errors import DomainError
from kefu.core.i18n import _, _l
from kefu.core.validation import InvalidValue, check_typable
from kefu.insight import dashboard
from kefu.insight.scope import allowed_somewhere
from kefu.org.roles import CAPABILITY_LABELS, Action, Capability, role_label
from web.actor import current_actor
from web.api.base import MAX_PAGE


class AdminForm(SecureForm):
    """Flask-Admin's session-CSRF form that renders its own hidden fields itself: without ``hidden_tag`` Flask-Admin's
    form macro adds Flask-WTF's ``csrf_token()`` (CSRFProtect guards the API) before the form's own token, and the
    form would read that one."""

    def hidden_tag(self) -> Markup:
        return Markup("".join(str(field) for field in self if getattr(field.widget, "input_type", None) == "hidden"))


class AccessControlled:
    """Mixin: signed-out → login page; signed in without ``required_capability`` (``kefu.org.roles.Capability``,
    granted by a role) → 403 naming it. ``required_capability`` None means any signed-in user."""

    required_capability: str | None = None

    def is_accessible(self) -> bool:
        if not current_user.is_authenticated:
            return False
        return self.required_capability is None or current_actor().access.has(self.required_capability)

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
        abort(403, _("此页面需要“%(capability)s”权限。您的角色：%(mine)s",
                     capability=CAPABILITY_LABELS[Capability(self.required_capability)],
                     mine="、".join(role_label(r) for r in current_user.roles) or "-"))


def local_time(view, value, name=None) -> str:
    """A stored (UTC) datetime as ``YYYY-MM-DD HH:MM`` in ``KEFU_TIMEZONE``."""
    return value.astimezone(ZoneInfo(current_app.config["KEFU_TIMEZONE"])).strftime("%Y-%m-%d %H:%M")


def yes_no_icon(view, value, name=None) -> Markup:
    """A yes/no value as Flask-Admin's check or minus icon, titled in the user's language (Flask-Admin's own
    title is ``active: true``)."""
    icon = "fa-check-circle" if value else "fa-minus-circle"
    title = f"{view.get_column_name(name)}：{_('是') if value else _('否')}" if name else (_("是") if value else _("否"))
    return Markup(f'<span class="fa {icon}" title="{escape(title)}"></span>')


def yes_no(view, value, name=None) -> str:
    """A yes/no value as 是 / 否 in the user's language (Flask-Admin's details page shows ``True``)."""
    return _("是") if value else _("否")


LOCAL_TIME_FORMATTERS = {**typefmt.BASE_FORMATTERS, datetime: local_time, bool: yes_no_icon}
LOCAL_TIME_DETAIL_FORMATTERS = {**typefmt.DETAIL_FORMATTERS, datetime: local_time, bool: yes_no}
MAX_FILTER_OPTIONS = 500  # a reference filter offers names to pick; past this, the list would not be read


class NamedReferenceFilter(ReferenceObjectIdFilter):
    """A filter on a reference (project, department …) picking the document by its name: Flask-Admin's own asks
    for an ObjectId to be typed. Its names are read with each list page (``SecureModelView._get_filter_groups``),
    not when Flask-Admin makes the view at start-up: a project added since is offered, and start-up reads nothing."""

    def __init__(self, column, name, document_type):
        super().__init__(column, name)
        self.document_type = document_type

    def current_options(self) -> list[tuple[str, str]]:
        return [(str(document.pk), str(document)) for document in self.document_type.objects.limit(MAX_FILTER_OPTIONS)]

    def operation(self):
        return _l("为")


class NamedFilterConverter(FilterConverter):
    """Flask-Admin's filters, with :class:`NamedReferenceFilter` for references."""

    def convert(self, type_name, column, name):
        if type_name == "ReferenceField":
            return [NamedReferenceFilter(column.name, name, column.document_type)]
        return super().convert(type_name, column, name)


def page_number(raw) -> int:
    """A list's page (from 1) from ``?page=``: 1 when it is not a whole number, at most :data:`MAX_PAGE` (past the
    last page a list is empty; a page of 30 digits would overflow the database's skip)."""
    try:
        return min(max(int(raw), 1), MAX_PAGE)
    except (TypeError, ValueError):
        return 1


class BoundedPaging:
    """Mixin for Flask-Admin list views: ``?page=`` is kept within 1–:data:`MAX_PAGE` (Flask-Admin counts from 0)."""

    def _get_list_extra_args(self):
        view_args = super()._get_list_extra_args()
        view_args.page = page_number(view_args.page + 1) - 1
        return view_args


class TextLookup(QueryAjaxModelLoader):
    """The loader behind a form's ajax pick list (``form_ajax_refs``): documents whose ``fields`` contain the typed
    text, case-insensitively and as text (regex characters escaped), at most ``page_size`` of them. Flask-Admin's
    own MongoEngine loader fails on any text typed; text no person types (control characters) finds nothing."""

    def get_list(self, query, offset=0, limit=None):
        page_size = self.options.get("page_size", 10)
        documents = self.model.objects
        text = (query or "").strip()
        if text:
            try:
                check_typable(text)
            except InvalidValue:
                return []
            criteria = Q()
            for field in self._cached_fields:
                criteria |= Q(**{f"{field.name}__icontains": text})
            documents = documents.filter(criteria)
        offset, limit = min(max(offset or 0, 0), MAX_PAGE), min(max(limit or page_size, 1), page_size)
        return list(documents.skip(offset).limit(limit))


class SecureModelView(AccessControlled, BoundedPaging, ModelView):
    """A MongoEngine model view with CSRF on every form, role-based access and local times."""

    form_base_class = AdminForm
    column_type_formatters = LOCAL_TIME_FORMATTERS
    column_type_formatters_detail = LOCAL_TIME_DETAIL_FORMATTERS
    filter_converter = NamedFilterConverter()
    page_size = 50
    can_view_details = True
    list_template = "admin/kefu_model_list.html"
    # What the list's 从 Excel 导入 link imports into (a target of kefu.insight.imports), shown to whoever may create.
    import_target: str | None = None

    def get_column_name(self, field: str) -> str:
        """A column's header: its ``column_labels`` entry, else the model field's ``verbose_name`` (the label its
        form shows), else Flask-Admin's prettified attribute name (English: every field should have a label)."""
        if self.column_labels and field in self.column_labels:
            return self.column_labels[field]
        return self._field_label(field) or super().get_column_name(field)

    def _get_filter_groups(self):
        """Flask-Admin's filter groups, the names of the reference filters read now (see NamedReferenceFilter)."""
        groups = super()._get_filter_groups()
        for items in (groups or {}).values():
            for item in items:
                found = self._filters[item["index"]]
                if isinstance(found, NamedReferenceFilter):
                    item["options"] = found.current_options()
        return groups

    def search_placeholder(self) -> str | None:
        """The search box says what it searches (Flask-Admin leaves it to each view and shows ``None``)."""
        if not self.column_searchable_list:
            return None
        names = "、".join(str(self.get_column_name(getattr(c, "name", c))) for c in self.column_searchable_list)
        return _("搜索：%(columns)s", columns=names)

    def _create_ajax_loader(self, name, options):
        reference = getattr(self.model, name)
        reference = getattr(reference, "field", reference)  # a list of references: the reference its items are
        return TextLookup(name, reference.document_type, **options)

    def handle_view_exception(self, exc: Exception) -> bool:
        """Flash a person-readable message for the errors a user can cause; True when handled."""
        if isinstance(exc, DomainError):
            for message in exc.fields.values() or [exc.message]:
                flash(str(message), "error")
            return True
        if isinstance(exc, ValidationError):
            errors = exc.to_dict() or {exc.field_name or "": exc.message}
            for name, message in errors.items():
                label = self._field_label(name) or name
                flash(f"{label}：{message}" if label else str(message), "error")
            return True
        if isinstance(exc, NotUniqueError):
            flash(_("保存失败：已存在相同的记录（名称或编码重复）"), "error")
            return True
        return super().handle_view_exception(exc)

    def _field_label(self, name: str) -> str | None:
        field = self.model._fields.get(name)
        return field.verbose_name if field is not None and field.verbose_name else None


class HomeView(AccessControlled, AdminIndexView):
    """The admin home: the dashboard's figures over the records the user may read (``kefu.insight.dashboard``);
    warns when the working-day calendar lacks this year's or next year's holidays (deadlines there use the
    fixed-date fallback)."""

    @expose("/")
    def index(self):
        tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
        now = utcnow()
        missing_years = workcalendar.get_calendar().missing_years(now.astimezone(tz).date())
        access = current_actor().access
        figures = dashboard.build(current_user, access, now, tz)
        charts = {"trend": {**figures.trend, "legend": [_("新增"), _("关闭")]},
                  "overdue_by_department": {
                      "names": [name or _("未指定部门") for _id, name, _n in reversed(figures.overdue_by_department)],
                      "counts": [n for _id, _name, n in reversed(figures.overdue_by_department)]}}
        # The bell shows the unread count the figures hold (the layout would count them again).
        return self.render("admin/kefu_index.html", calendar_missing_years=missing_years, figures=figures,
                           per_type=figures.per_type, unread_notifications=lambda: figures.unread,
                           follows_up=allowed_somewhere(access, Action.READ.value),
                           manages_system=access.has(Capability.MANAGE_SYSTEM.value),
                           charts_json=json.dumps(charts, ensure_ascii=False).replace("</", "<\\/"))
