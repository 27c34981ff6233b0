"""Saved views of the record list (``kefu.insight.views``): the one named by ``?view=``, saving the list as it is
now, choosing the default view, deleting a view."""
from __future__ import annotations

import json

from flask import flash, g, redirect, request
from flask_admin import expose
from flask_admin.form import SecureForm
from flask_login import current_user

from admin_views.records.filters import SlaFilter
from admin_views.records.rows import SORT_FIELDS
from kefu.core.errors import DomainError, NotFound
from kefu.core.i18n import _
from kefu.insight import views
from kefu.records.core_fields import core_fields
from kefu.records.fields import get_field_type
from kefu.rules import sla
from kefu.rules.sla import SLA_COLUMN
from web.auth import safe_next_url


class ViewForm(SecureForm):
    """CSRF for the saved-view buttons; the view's content comes as plain form fields."""


class SavedViews:
    """Saved views for ``RecordView`` (which provides ``record_type``, ``_actor`` and the list's columns)."""

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

    def _column_choices(self) -> list[str]:
        """Every column a view may show: core fields, 时限, the active fields."""
        keys = [f.key for f in core_fields(self.record_type)]
        if sla.clocks_of(self.record_type):
            keys.insert(2, SLA_COLUMN)
        return [*keys, *(f.key for f in self.record_type.active_fields if not get_field_type(f.type).holds_files)]

    def _view_state(self) -> dict:
        """The list as it is now — filters ``[field, op, value]``, sort, columns — for 保存视图."""
        view_args = self._get_list_extra_args()
        filters = []
        view = self._active_view()
        if view is not None:
            filters += [[c.field, c.op, c.value] for c in view.conditions]
            filters += [[SLA_COLUMN, flag, True] for flag in ("overdue", "due_soon") if getattr(view, flag)]
            if view.due_within is not None:
                filters.append([SLA_COLUMN, "due_within", view.due_within.total_seconds() / 3600])
        for index, _name, value in view_args.filters or []:
            flt = self._filters[index]
            if isinstance(flt, SlaFilter):
                if value == "1":
                    filters.append([SLA_COLUMN, flt.flag, True])
                continue
            condition = flt.condition(value)
            filters.append([condition.field, condition.op, condition.value])
        column = self._get_column_by_idx(view_args.sort)
        sort = (("-" if view_args.sort_desc else "") + SORT_FIELDS.get(column[0], column[0])) if column else (
            view.sort if view is not None else None)
        return {"filters": filters, "sort": sort, "columns": [key for key, _label in self._visible_columns()]}

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
