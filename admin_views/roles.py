"""系统设置 → 角色权限: the roles, what each may do outside the records (capabilities) and with each record type
(a grid of types × actions with a scope per type).

Thin: the list reads ``kefu.org.roles``; a save goes through ``kefu.org.roles.save_role`` (which validates), a
deletion through ``kefu.org.roles.delete_role`` (which refuses shipped roles and roles someone holds).
"""
from __future__ import annotations

from typing import NamedTuple

from flask import abort, flash, redirect, request
from flask_admin import BaseView, expose
from flask_babel import get_locale
from flask_login import current_user

from admin_views.base import AccessControlled
from admin_views.inbox import ActionForm
from kefu.core.errors import DomainError, NotFound
from kefu.core.i18n import _, _l
from kefu.org.roles import (
    ACTION_LABELS, ANY_TYPE, CAPABILITY_LABELS, SCOPE_LABELS, AccessRole, Action, Capability, Scope, delete_role,
    holder_counts, save_role,
)
from kefu.records.types import RecordType, type_name

ANY_TYPE_LABEL = _l("全部类型")


class GridRow(NamedTuple):
    """One row of the grants grid: a record type (or ``*``) and its name."""

    key: str
    name: str


def _grid_rows() -> list[GridRow]:
    """``*`` and then every record type (disabled ones too: a role keeps their grants), in menu order."""
    types = RecordType.objects.only("key", "name", "name_en", "active").order_by("sort_order", "key")
    locale = str(get_locale())
    rows = [GridRow(ANY_TYPE, f"{ANY_TYPE_LABEL} *")]
    for t in types:
        name = type_name({"name": t.name, "name_en": t.name_en}, locale)
        rows.append(GridRow(t.key, name if t.active else _("%(name)s（已停用）", name=name)))
    return rows


def _draft_of(role: AccessRole | None) -> dict:
    """The editor's values of a stored role (empty for a new one)."""
    if role is None:
        return {"key": "", "name": "", "description": "", "capabilities": [], "grants": []}
    return {"key": role.key, "name": role.name, "description": role.description or "",
            "capabilities": list(role.capabilities),
            "grants": [{"record_type": g.record_type, "actions": list(g.actions), "scope": g.scope}
                       for g in role.grants]}


def _draft_from_form(form, rows: list[GridRow]) -> dict:
    """The editor's values as posted: a grid row with neither actions nor a scope has no grant of its own."""
    grants = []
    for row in rows:
        actions, scope = form.getlist(f"actions-{row.key}"), form.get(f"scope-{row.key}", "")
        if actions or scope:
            grants.append({"record_type": row.key, "actions": actions, "scope": scope})
    return {"key": form.get("key", "").strip(), "name": form.get("name", ""),
            "description": form.get("description", ""), "capabilities": form.getlist("capabilities"),
            "grants": grants}


def grant_summary(role: AccessRole, names: dict[str, str]) -> list[str]:
    """The role's grants as lines: ``全部类型：查看、登记（本部门）``, ``投诉：无权限``."""
    lines = []
    for grant in role.grants:
        name = names.get(grant.record_type, grant.record_type)
        if grant.actions:
            actions = "、".join(str(ACTION_LABELS[Action(a)]) for a in grant.actions)
            lines.append(_("%(type)s：%(actions)s（%(scope)s）", type=name, actions=actions,
                           scope=SCOPE_LABELS[Scope(grant.scope)]))
        else:
            lines.append(_("%(type)s：无权限", type=name))
    return lines


class RoleView(AccessControlled, BaseView):
    """``/admin/roles/`` (the list), ``/admin/roles/new/``, ``/admin/roles/edit/?key=``,
    ``POST /admin/roles/delete/``."""

    required_capability = Capability.MANAGE_SYSTEM.value

    @expose("/")
    def index(self):
        rows = _grid_rows()
        names = {row.key: (str(ANY_TYPE_LABEL) if row.key == ANY_TYPE else row.name) for row in rows}
        stored = list(AccessRole.objects.order_by("-shipped", "key"))
        return self.render("admin/roles.html", roles=stored, holders=holder_counts(), form=ActionForm(),
                           summaries={role.key: grant_summary(role, names) for role in stored},
                           capability_labels={c.value: label for c, label in CAPABILITY_LABELS.items()})

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        return self._editor(None)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        role = AccessRole.objects(key=request.args.get("key", "")).first()
        if role is None:
            abort(404, _("没有代码为“%(key)s”的角色", key=request.args.get("key", "")))
        return self._editor(role)

    @expose("/delete/", methods=("POST",))
    def delete_view(self):
        if not ActionForm(request.form).validate():
            flash(_("页面已过期，请刷新后重试"), "error")
        else:
            try:
                delete_role(request.form.get("key", ""))
            except DomainError as exc:
                flash(_("未删除：%(reason)s", reason=str(exc)), "error")
            else:
                flash(_("角色已删除"), "success")
        return redirect(self.get_url(".index"))

    def _editor(self, role: AccessRole | None):
        rows = _grid_rows()
        form, errors = ActionForm(request.form if request.method == "POST" else None), {}
        draft = _draft_of(role)
        if request.method == "POST":
            draft = _draft_from_form(request.form, rows)
            if not form.validate():
                flash(_("页面已过期，请刷新后重试"), "error")
            else:
                try:
                    saved = save_role(draft, {row.key for row in rows[1:]}, key=role.key if role else None,
                                      by=current_user.username)
                except NotFound:
                    abort(404)
                except DomainError as exc:
                    errors = {key: str(message) for key, message in exc.fields.items()} or {"": str(exc)}
                    flash(_("保存失败：%(errors)s", errors="；".join(errors.values())), "error")
                else:
                    flash(_("角色“%(name)s”已保存，立即生效", name=saved.name), "success")
                    return redirect(self.get_url(".index"))
        grants = {grant["record_type"]: grant for grant in draft["grants"]}
        return self.render("admin/role_edit.html", role=role, draft=draft, grants=grants, rows=rows, form=form,
                           errors=errors, any_type=ANY_TYPE,
                           capabilities=[(c.value, label) for c, label in CAPABILITY_LABELS.items()],
                           actions=[(a.value, label) for a, label in ACTION_LABELS.items()],
                           scopes=[(s.value, label) for s, label in SCOPE_LABELS.items()])
