"""Record screens generated from record-type definitions at request time.

Flask-Admin builds forms, columns and filters when a view is constructed and
views cannot be added after the first request. So one view is registered at
``/admin/records/<type_key>/``; for each request it hands the work to a
*screen* — an instance of the same class built from the type's current
definition — cached by (type key, definition version, language). A changed
definition has a new version, so every web process builds the new screen on
its next request; a new type is served without a restart.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict

from flask import Response, abort, flash, g, redirect, request, stream_with_context, url_for
from flask_admin import expose
from flask_admin.babel import gettext as admin_gettext
from flask_admin.form import SecureForm
from flask_admin.helpers import get_redirect_target, set_current_view
from flask_admin.model import BaseModelView
from flask_admin.model.filters import BaseFilter
from flask_babel import get_locale
from flask_login import current_user
from markupsafe import Markup
from wtforms import FileField, HiddenField, SelectField, TextAreaField
from wtforms.validators import InputRequired, Optional

from admin_views.base import AccessControlled
from kefu.core.clock import utcnow
from kefu.core.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from kefu.core.i18n import _, _l
from kefu.insight import export_jobs, exports, views
from kefu.org.roles import VIEW_PII, Role
from kefu.records.actor import Actor
from kefu.records.core_fields import core_field, core_fields
from kefu.records.fields import OPERATOR_LABELS, get_field_type
from kefu.records.query import SLA_SORT, Condition, RecordQuery, find_records
from kefu.records.store import get_record
from kefu.records.timeline import EVENT_KINDS, MANUAL_EVENT_KINDS, add_event, record_audit, record_events
from kefu.records.types import RecordType, get_record_type
from kefu.records.values import core_values, project_id_for, read_values
from kefu.records.write import create_record, update_record
from kefu.rules import approvals, callbacks, levels, sla
from kefu.rules.workflow import workflow_of
from web.actor import current_actor
from web.auth import safe_next_url

FILTER_WIDGETS = {"date": "datepicker", "datetime": "datetimepicker"}
SLA_COLUMN = "sla"  # the list column 时限: the nearest running clock's state
SORT_FIELDS = {SLA_COLUMN: SLA_SORT}  # list columns that sort by another key
SCREEN_CACHE_SIZE = 64

RECORD_ROLES = (Role.ADMIN.value, Role.MANAGER.value, Role.SUPERVISOR.value, Role.AGENT.value,
                Role.HANDLER.value, Role.APPROVER.value)


class FieldFilter(BaseFilter):
    """A list filter ``[field, op, value]``; the query itself is built by ``kefu.records.store``."""

    def __init__(self, definition, op: str, label: str, options=None):
        field_type = definition.type
        if op in ("empty", "not_empty"):
            options = (("1", _("是")), ("0", _("否")))
        super().__init__(label, options=options, data_type=None if options else FILTER_WIDGETS.get(field_type))
        self.field_key = definition.key
        self.op = op

    def operation(self):
        return OPERATOR_LABELS[self.op]

    def apply(self, query: RecordQuery, value) -> RecordQuery:
        """Add this filter's condition to the query ``find_records`` runs."""
        query.conditions.append(self.condition(value))
        return query

    def condition(self, value) -> Condition:
        if self.op in ("empty", "not_empty") and value == "0":
            return Condition(self.field_key, "not_empty" if self.op == "empty" else "empty")
        return Condition(self.field_key, self.op, value)


class SlaFilter(BaseFilter):
    """逾期 / 即将到期（是）: sets ``RecordQuery.overdue`` / ``due_soon`` — the API's ``overdue`` / ``due_soon``."""

    LABELS = {"overdue": _l("逾期"), "due_soon": _l("即将到期")}

    def __init__(self, flag: str):
        super().__init__(str(self.LABELS[flag]), options=(("1", _("是")),))
        self.flag = flag

    def operation(self):
        return OPERATOR_LABELS["eq"]

    def apply(self, query: RecordQuery, value) -> RecordQuery:
        if value == "1":
            setattr(query, self.flag, True)
        return query


class ViewForm(SecureForm):
    """CSRF for the saved-view buttons; the view's content comes as plain form fields."""


class RecordRow:
    """A stored record as a screen shows it: Python values of core and configured fields."""

    def __init__(self, record_type: RecordType, document: dict, actor: Actor):
        self.document = document
        self.id = str(document["_id"])
        self.version = document["version"]
        self.values = {**core_values(document), **read_values(record_type, document, actor)}


def _label(definition) -> str:
    if str(get_locale()) == "en" and getattr(definition, "label_en", None):
        return definition.label_en
    return str(definition.label)


class RecordView(AccessControlled, BaseModelView):
    """CRUD for the records of one record type; see the module docstring for the routing."""

    allowed_roles = RECORD_ROLES
    form_base_class = SecureForm
    can_view_details = True
    can_delete = False  # records are closed, never deleted: the handbooks keep every case
    can_export = False  # exports go through /records/<type>/export (streamed, audited)
    page_size = 50
    details_template = "admin/record_details.html"
    list_template = "admin/record_list.html"

    def __init__(self, record_type: RecordType | None = None, **kwargs):
        self.record_type = record_type
        self._screens: OrderedDict = OrderedDict()
        self._screens_lock = threading.Lock()
        super().__init__(dict, **kwargs)

    # -- routing -----------------------------------------------------------
    def is_visible(self) -> bool:
        return False  # the menu lists record types itself (templates/admin/kefu_base.html)

    def create_blueprint(self, admin):
        blueprint = super().create_blueprint(admin)

        @blueprint.url_defaults
        def current_type(endpoint, values):
            if "type_key" not in values and g.get("kefu_record_type"):
                values["type_key"] = g.kefu_record_type

        return blueprint

    def _run_view(self, fn, *args, **kwargs):
        type_key = kwargs.pop("type_key", None)
        if self.record_type is not None or type_key is None:
            return fn(self, *args, **kwargs)
        try:
            record_type = get_record_type(type_key)
        except NotFound:
            abort(404)
        g.kefu_record_type = record_type.key
        screen = self._screen_for(record_type)
        set_current_view(screen)
        return fn(screen, *args, **kwargs)

    def _screen_for(self, record_type: RecordType) -> "RecordView":
        cache_key = (record_type.key, record_type.version, str(get_locale()))
        with self._screens_lock:
            screen = self._screens.get(cache_key)
            if screen is not None:
                self._screens.move_to_end(cache_key)
                return screen
        screen = type(self)(record_type, name=record_type.name, endpoint=self.endpoint,
                            category=self.category, menu_class_name=self.menu_class_name)
        screen.admin, screen.url, screen.blueprint = self.admin, self.url, self.blueprint
        screen.static_url_path = self.static_url_path
        with self._screens_lock:
            self._screens[cache_key] = screen
            while len(self._screens) > SCREEN_CACHE_SIZE:
                self._screens.popitem(last=False)
        return screen

    # -- definition-driven scaffolding ---------------------------------------
    def _definitions(self):
        if self.record_type is None:
            return []
        return [*core_fields(self.record_type), *self.record_type.active_fields]

    def _editable_core(self):
        return [f for f in core_fields(self.record_type) if f.editable]

    def _definition(self, key):
        return core_field(self.record_type, key) or self.record_type.field(key)

    def get_pk_value(self, model):
        return model.id

    def scaffold_list_columns(self):
        if self.record_type is None:
            return ["number"]
        configured = [f.key for f in self.record_type.active_fields if f.list]
        clocks = [SLA_COLUMN] if sla.clocks_of(self.record_type) else []
        return ["number", "status", *clocks, *configured, "assignee", "created_at"]

    def get_column_name(self, field):
        if field == SLA_COLUMN:
            return _("时限")
        definition = self._definition(field) if self.record_type else None
        return _label(definition) if definition is not None else field

    def get_details_columns(self):
        return []  # the details template lays out every field itself

    def scaffold_sortable_columns(self):
        sortable = {}
        for key in self.scaffold_list_columns():
            definition = self._definition(key) if self.record_type else None
            if definition is not None and not definition.sensitive and definition.type not in (
                    "attachments", "multi_choice"):
                sortable[key] = key
        if SLA_COLUMN in self.scaffold_list_columns():
            sortable[SLA_COLUMN] = SLA_SORT  # the earliest running deadline: the most overdue first
        return sortable

    def init_search(self):
        return self.record_type is not None

    def search_placeholder(self):
        if self.record_type is None:
            return None
        names = [_label(f) for f in self.record_type.active_fields if f.search]
        return _("搜索：编号、%(fields)s", fields="、".join(names)) if names else _("搜索编号")

    def get_filters(self):
        if self.record_type is None:
            return None
        filters = []
        core_filters = ("status", "assignee", "department", "created_at")
        for definition in [*(core_field(self.record_type, k) for k in core_filters),
                           *(f for f in self.record_type.active_fields if f.filter)]:
            field_type = get_field_type(definition.type)
            options = [(c, c) for c in definition.choices] if getattr(definition, "choices", None) else None
            for op in field_type.operators:
                if definition.sensitive and op not in ("eq", "empty"):
                    continue
                if op == "not_empty":
                    continue  # offered as 为空：是/否
                filters.append(FieldFilter(definition, op, _label(definition), options if op in ("eq", "ne") else None))
        # Last, so the URL numbers of the field filters stay as they were.
        filters.extend(SlaFilter(flag) for flag in ("overdue", "due_soon"))
        return filters

    def scaffold_form(self, context=None):
        """The form class for the type; per request (``_form_class``) it is built with that request's context."""
        class RecordForm(self.form_base_class):
            version = HiddenField()

        if self.record_type is None:
            return RecordForm
        # The type's own fields first, as the handbook's form reads; who handles it last.
        for definition in [*self.record_type.active_fields, *self._editable_core()]:
            field_type = get_field_type(definition.type)
            field = field_type.form_field(definition, context)
            field.kwargs["label"] = _label(definition)
            kind = getattr(field_type, "kind_name", None)
            if kind:  # reference fields get autocomplete from /api/v1/refs/<kind>
                field.kwargs["render_kw"] = {**(field.kwargs.get("render_kw") or {}), "data-ref-kind": kind,
                                             "autocomplete": "off", "list": f"ref-{definition.key}"}
            setattr(RecordForm, definition.key, field)
        return RecordForm

    def _form_class(self):
        # Built per request: the field validators need this user (defaults,
        # uploads) and the project chosen in this very form (unit names).
        actor = self._actor()
        project = request.form.get("project") if request.method == "POST" else None
        context = actor.field_context(project_id=project_id_for(self.record_type, project, actor))
        return self.scaffold_form(context)

    def create_form(self, obj=None):
        form = self._form_class()(request.form if request.method == "POST" else None)
        if request.method != "POST":
            form.status.data = workflow_of(self.record_type).initial
        return form

    @property
    def extra_js(self):
        return [url_for("static", filename="kefu.js")]

    def scaffold_list_form(self, widget=None, validators=None):
        return self.scaffold_form()

    # -- reading -------------------------------------------------------------
    def _actor(self) -> Actor:
        return current_actor()

    # -- saved views (kefu.insight.views) ------------------------------------------------
    def _active_view(self) -> views.Resolved | None:
        """The view named by ``?view=`` for this request (resolved once; dropped filters flashed once)."""
        key = request.args.get("view")
        if not key:
            return None
        if g.get("kefu_view_key") != key:
            g.kefu_view_key = key
            try:
                g.kefu_view = views.resolve(self.record_type, key, self._actor())
            except NotFound as exc:
                g.kefu_view = None
                flash(str(exc), "error")
            for message in (g.kefu_view.dropped if g.kefu_view else []):
                flash(message, "warning")
        return g.kefu_view

    def _visible_columns(self) -> list[tuple[str, str]]:
        """``(key, label)`` of the list's columns: the active view's, else the type's list columns."""
        view = self._active_view()
        if view is not None and view.columns:
            return [(key, self.get_column_name(key)) for key in view.columns]
        return self._list_columns

    def _get_column_by_idx(self, idx):
        columns = self._visible_columns()
        if idx is None or idx < 0 or idx >= len(columns):
            return None
        return columns[idx]

    def _list_query(self, page, sort_field, sort_desc, search, filters, page_size=None) -> RecordQuery:
        sort_field = SORT_FIELDS.get(sort_field, sort_field)
        query = RecordQuery(
            q=search, sort=(f"-{sort_field}" if sort_desc else sort_field) if sort_field else None,
            page=(page or 0) + 1, per_page=page_size or self.page_size,
        )
        for index, _name, value in filters or []:
            query = self._filters[index].apply(query, value)
        view = self._active_view()
        return view.apply(query) if view is not None else query

    @expose("/")
    def index_view(self):
        if not request.args and self.record_type is not None:
            default = views.default_key(current_user.pk, self.record_type.key)
            if default:
                return redirect(self.get_url(".index_view", view=default))
        return super().index_view()

    def get_list(self, page, sort_field, sort_desc, search, filters, execute=True, page_size=None):
        actor = self._actor()
        query = self._list_query(page, sort_field, sort_desc, search, filters, page_size)
        try:
            total, documents = find_records(self.record_type.key, query, actor, record_type=self.record_type)
        except ValidationFailed as exc:
            flash(str(exc), "error")
            return 0, []
        return total, [RecordRow(self.record_type, d, actor) for d in documents]

    def get_one(self, id):
        try:
            document = get_record(self.record_type.key, id)
        except NotFound:
            return None
        return RecordRow(self.record_type, document, self._actor())

    def _get_list_value(self, context, model, name, column_formatters, column_type_formatters):
        if name == SLA_COLUMN:
            return self.sla_badge(model)
        return self.display_value(model, name)

    def sla_badge(self, row: RecordRow) -> Markup:
        """The state of the record's nearest running clock (else how its clocks ended), as a badge."""
        clocks, now = row.document.get("sla") or {}, utcnow()
        running = [entry for entry in row.document.get("sla_open") or [] if entry.get("clock") in clocks]
        if running:
            nearest = clocks[min(running, key=lambda entry: entry["due_at"])["clock"]]
        elif clocks:
            ended = list(clocks.values())
            nearest = next((c for c in ended if sla.state_at(c, now) == "missed"), ended[-1])
        else:
            return Markup("")
        state = sla.state_at(nearest, now)
        return Markup('<span class="badge kefu-sla-{}" title="{}">{}</span>').format(
            state, nearest.get("name", ""), sla.STATE_LABELS[state])

    def display_value(self, row: RecordRow, key: str) -> str:
        definition = self._definition(key)
        value = row.values.get(key)
        if value in (None, "", []):
            return ""
        field_type = get_field_type(definition.type)
        if definition.sensitive and not current_user.can(VIEW_PII):
            return field_type.mask(value)
        return field_type.display(value, self._actor().tz)

    def render(self, template, **kwargs):
        if template == self.list_template and self.record_type is not None:
            kwargs["list_columns"] = self._visible_columns()
            kwargs["export_args"] = dict(request.args)
            kwargs["view_menu"] = views.views_for(self.record_type, current_user)
            kwargs["active_view"] = self._active_view()
            kwargs["view_state"] = json.dumps(self._view_state(), ensure_ascii=False)
            kwargs["view_columns"] = [(key, self.get_column_name(key)) for key in self._column_choices()]
            kwargs["can_share_views"] = current_user.has_role(*views.SHARING_ROLES)
            kwargs["view_form"] = ViewForm()
        return super().render(template, **kwargs)

    def _column_choices(self) -> list[str]:
        """Every column a view may show: core fields, 时限, the active fields."""
        keys = [f.key for f in core_fields(self.record_type)]
        if sla.clocks_of(self.record_type):
            keys.insert(2, SLA_COLUMN)
        return [*keys, *(f.key for f in self.record_type.active_fields if f.type != "attachments")]

    def _view_state(self) -> dict:
        """The list as it is now — filters ``[field, op, value]``, sort, columns — for 保存视图."""
        view_args = self._get_list_extra_args()
        filters = []
        view = self._active_view()
        if view is not None:
            filters += [[c.field, c.op, c.value] for c in view.conditions]
            filters += [[views.SLA_FIELD, flag, True] for flag in ("overdue", "due_soon") if getattr(view, flag)]
            if view.due_within is not None:
                filters.append([views.SLA_FIELD, "due_within", view.due_within.total_seconds() / 3600])
        for index, _name, value in view_args.filters or []:
            flt = self._filters[index]
            if isinstance(flt, SlaFilter):
                if value == "1":
                    filters.append([views.SLA_FIELD, flt.flag, True])
                continue
            condition = flt.condition(value)
            filters.append([condition.field, condition.op, condition.value])
        column = self._get_column_by_idx(view_args.sort)
        sort = (("-" if view_args.sort_desc else "") + SORT_FIELDS.get(column[0], column[0])) if column else (
            view.sort if view is not None else None)
        return {"filters": filters, "sort": sort, "columns": [key for key, _label in self._visible_columns()]}

    @expose("/export/")
    def export_view(self):
        """The list as it is on screen — filters, view, search, sort, columns — as XLSX or CSV; a large one is
        built in the background and lands in the user's inbox."""
        fmt = request.args.get("fmt", "xlsx")
        if fmt not in exports.FORMATS:
            flash(_("导出格式应为 csv 或 xlsx"), "error")
            return redirect(self.get_url(".index_view"))
        actor = self._actor()
        view_args = self._get_list_extra_args()
        column = self._get_column_by_idx(view_args.sort)
        query = self._list_query(0, column[0] if column else None, view_args.sort_desc, view_args.search,
                                 view_args.filters)
        columns = [key for key, _label in self._visible_columns()]
        try:
            total = exports.count_rows(self.record_type, query, actor)
        except ValidationFailed as exc:
            flash(str(exc), "error")
            return redirect(self.get_url(".index_view", **{k: v for k, v in request.args.items() if k != "fmt"}))
        if total > export_jobs.async_threshold():
            job = export_jobs.start(self.record_type, query, actor, fmt, total=total, columns=columns,
                                    view=self._active_view(), filters_text=request.query_string.decode())
            if job.status == "failed":
                flash(job.error, "error")
            else:
                flash(_("共 %(n)s 行，导出已在后台进行；完成后会通知您，也可在“我的导出”查看进度", n=total), "info")
            return redirect(url_for("exports.index"))
        export = exports.export_records(self.record_type, query, actor, fmt, filters_text=request.query_string.decode(),
                                        columns=columns, view=self._active_view())
        return Response(stream_with_context(export.chunks), mimetype=export.mimetype,
                        headers={"Content-Disposition": export.content_disposition})

    @expose("/views/save/", methods=("POST",))
    def save_view_view(self):
        form = ViewForm(request.form)
        back = safe_next_url(request.form.get("back"), self.get_url(".index_view"))
        if not form.validate():
            flash(_("页面已过期，请刷新后重试"), "error")
            return redirect(back)
        try:
            state = json.loads(request.form.get("state") or "{}")
            columns = request.form.getlist("columns") or state.get("columns") or []
            view = views.save_view(self.record_type, current_user, request.form.get("name", ""), state.get("filters"),
                                   columns=columns, sort=state.get("sort"), shared=bool(request.form.get("shared")))
            if request.form.get("default"):
                views.set_default(self.record_type, self._actor(), str(view.pk))
        except (ValueError, AttributeError):
            flash(_("视图内容格式不正确"), "error")
            return redirect(back)
        except DomainError as exc:
            flash(_("视图未保存：%(reason)s", reason=str(exc)), "error")
            return redirect(back)
        flash(_("视图“%(name)s”已保存", name=view.name), "success")
        return redirect(self.get_url(".index_view", view=str(view.pk)))

    @expose("/views/default/", methods=("POST",))
    def default_view_view(self):
        back = safe_next_url(request.form.get("back"), self.get_url(".index_view"))
        if ViewForm(request.form).validate():
            key = request.form.get("view") or None
            try:
                views.set_default(self.record_type, self._actor(), key)
                flash(_("已设为默认视图") if key else _("已取消默认视图"), "success")
            except DomainError as exc:
                flash(str(exc), "error")
        return redirect(back)

    @expose("/views/delete/", methods=("POST",))
    def delete_view_view(self):
        if ViewForm(request.form).validate():
            try:
                views.delete_view(self.record_type, current_user, request.form.get("view", ""))
                flash(_("视图已删除"), "success")
            except DomainError as exc:
                flash(str(exc), "error")
        return redirect(self.get_url(".index_view"))

    # -- forms ---------------------------------------------------------------
    def _masked_keys(self) -> set[str]:
        """Sensitive fields this user may not read: their edit inputs start empty and empty means "unchanged"."""
        if current_user.can(VIEW_PII):
            return set()
        return {d.key for d in self.record_type.active_fields if d.sensitive}

    def edit_form(self, obj=None):
        form = self._form_class()(request.form if request.method == "POST" else None)
        masked = self._masked_keys()
        if obj is not None and request.method != "POST":
            form.version.data = obj.version
            tz = self._actor().tz
            for definition in [*self._editable_core(), *self.record_type.active_fields]:
                if definition.key in form and definition.key not in masked:
                    value = obj.values.get(definition.key)
                    form[definition.key].data = None if value is None else get_field_type(
                        definition.type).form_data(value, tz)
        for definition in self.record_type.active_fields:
            field = form[definition.key] if definition.key in form else None
            if field is None:
                continue
            if definition.readonly:
                field.render_kw = {**(field.render_kw or {}), "readonly": True}
            if definition.key in masked:
                # The stored value never reaches this user's browser; leaving the input empty keeps it.
                shown = self.display_value(obj, definition.key) if obj is not None else ""
                field.render_kw = {**(field.render_kw or {}),
                                   "placeholder": _("%(masked)s（留空则不修改）", masked=shown or "-")}
                field.validators = [Optional(), *(v for v in field.validators if not isinstance(v, InputRequired))]
                field.flags.required = False
        return form

    def _values_from(self, form, row: RecordRow | None = None) -> dict:
        """The validated form's values; on edit only those that differ from the stored record."""
        values = {}
        for definition in [*self._editable_core(), *self.record_type.active_fields]:
            if definition.key not in form:
                continue
            data = form[definition.key].data
            if row is not None and definition.key in self._masked_keys() and data in (None, "", []):
                continue
            if row is None:
                if data not in (None, "", []):
                    values[definition.key] = data
            elif not definition.readonly and not self._shown_alike(definition, data, row.values.get(definition.key)):
                values[definition.key] = data
        return values

    def _shown_alike(self, definition, submitted, stored) -> bool:
        """True when the submitted value is the stored one as the form showed it (a time to the minute)."""
        if submitted == stored:
            return True
        field_type, tz = get_field_type(definition.type), self._actor().tz
        return None not in (submitted, stored) and field_type.form_data(submitted, tz) == field_type.form_data(
            stored, tz)

    def _show_errors(self, form, exc: DomainError) -> None:
        shown = False
        for key, message in exc.fields.items():
            if key in form:
                form[key].errors = [*form[key].errors, str(message)] if isinstance(form[key].errors, list) else [
                    str(message)]
                shown = True
        flash(str(exc) if not shown else _("请修改标红的字段"), "error")

    def create_model(self, form):
        try:
            document = create_record(self.record_type.key, self._values_from(form), self._actor())
        except DomainError as exc:
            self._show_errors(form, exc)
            return False
        return RecordRow(self.record_type, document, self._actor())

    def update_model(self, form, model):
        try:
            document = update_record(self.record_type.key, model.id, self._values_from(form, model),
                                             self._actor(), version=form.version.data)
        except Conflict as exc:
            current = RecordRow(self.record_type, exc.current, self._actor())
            shown = "；".join(f"{_label(self._definition(k))}：{self.display_value(current, k) or '-'}"
                             for k in self._values_from(form, model) if self._definition(k) is not None)
            flash(_("已被他人修改，未保存。当前内容：%(values)s。请刷新后重新编辑。", values=shown or "-"), "error")
            return False
        except DomainError as exc:
            self._show_errors(form, exc)
            return False
        model.document = document
        return True

    def delete_model(self, model):  # pragma: no cover - can_delete is False
        return False

    # -- timeline ------------------------------------------------------------
    @expose("/details/")
    def details_view(self):
        return_url = get_redirect_target() or self.get_url(".index_view")
        row = self.get_one(request.args.get("id", ""))
        if row is None:
            flash(admin_gettext("Record does not exist."), "error")
            return redirect(return_url)
        stored_only = [f for f in self.record_type.fields if not f.active and f.key in row.values]
        return self.render(
            self.details_template, model=row, record_type=self.record_type, return_url=return_url,
            core_fields=[core_field(self.record_type, k) for k in ("number", "status", "assignee", "department",
                                                           "customer", "created_by", "created_at", "updated_at")],
            fields=self.record_type.active_fields, stored_only=stored_only, label=_label,
            events=record_events(row.id), audit=record_audit(row.id),
            event_form=EventForm(), event_kinds=EVENT_KINDS, display=self.display_value,
            approval=approvals.panel(self.record_type, row.document, current_user, self._actor().tz),
            approval_form=ApprovalForm(), links=callbacks.links_of(row.document, self._actor().tz),
            clocks=sla.clocks_json(row.document, self._actor().tz), sla_states=sla.STATE_LABELS,
            rejection=levels.rejection_preview(self.record_type, row.document), reject_form=RejectForm(),
        )

    def _record_action(self, form, act, done: str):
        """A POST from the details page: validate ``form``, run ``act(record_id)``, say how it went, go back.
        A refusal for lack of rights is the 403 page; any other refusal a message."""
        record_id = request.args.get("id", "")
        target = self.get_url(".details_view", id=record_id)
        if not form.validate():
            flash(_("提交失败：%(errors)s", errors="；".join(e for errs in form.errors.values() for e in errs)), "error")
            return redirect(target)
        try:
            act(record_id)
        except PermissionDenied as exc:
            abort(403, str(exc.message))
        except DomainError as exc:
            flash(str(exc), "error")
        else:
            flash(done, "success")
        return redirect(target)

    @expose("/event/", methods=("POST",))
    def add_event_view(self):
        form = EventForm(request.form)
        return self._record_action(form, lambda record_id: add_event(
            self.record_type.key, record_id, form.kind.data, form.text.data, self._actor(),
            files=[f for f in request.files.getlist("files") if f and f.filename]), _("已记录"))

    @expose("/reject/", methods=("POST",))
    def reject_view(self):
        """The customer does not accept the result (``kefu.rules.levels.customer_rejected``): one level up, back to rework."""
        form = RejectForm(request.form)
        return self._record_action(form, lambda record_id: levels.customer_rejected(
            self.record_type.key, record_id, self._actor(), form.note.data), _("已退回重新处理"))

    @expose("/approval/", methods=("POST",))
    def approval_view(self):
        """Review, approve or reject the record's approval request (``kefu.rules.approvals.act``); refused → 403 page."""
        form = ApprovalForm(request.form)
        return self._record_action(form, lambda record_id: approvals.act(
            self.record_type.key, record_id, form.action.data, self._actor(), comment=form.comment.data,
            request_id=form.request_id.data or None),
            _("已%(action)s", action=approvals.ACTION_LABELS.get(form.action.data, form.action.data or "")))


class RejectForm(SecureForm):
    note = TextAreaField(_l("客户不接受的原因"), validators=[InputRequired()])


class ApprovalForm(SecureForm):
    action = SelectField(_l("审批操作"), choices=lambda: [(k, str(v)) for k, v in approvals.ACTION_LABELS.items()],
                         validators=[InputRequired()])
    comment = TextAreaField(_l("意见"))
    request_id = HiddenField()


class EventForm(SecureForm):
    kind = SelectField(_l("类型"), choices=lambda: [(k, str(EVENT_KINDS[k])) for k in MANUAL_EVENT_KINDS],
                       validators=[InputRequired()])
    text = TextAreaField(_l("内容"))
    files = FileField(_l("附件"))
