"""逾期督办: overdue and due-soon records of every type, their counts, and bulk reassign (supervisors and up).

The page is thin: ``kefu.overdue`` finds and counts the records (index-backed,
most overdue first), ``kefu.records.reassign`` writes. Names of types, users
and departments on a page are loaded with one query each.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from bson import ObjectId
from bson.errors import InvalidId
from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_admin.form import SecureForm
from flask_admin.helpers import is_safe_url
from flask_babel import get_locale
from wtforms import SelectField
from wtforms.validators import InputRequired

from admin_views.base import AccessControlled
from kefu import overdue, records
from kefu.clock import utcnow
from kefu.errors import PermissionDenied, ValidationFailed
from kefu.fields import get_field_type
from kefu.i18n import _, _l
from kefu.org import Department
from kefu.roles import Role
from kefu.users import User
from web.actor import current_actor

SUPERVISOR_ROLES = (Role.ADMIN.value, Role.MANAGER.value, Role.SUPERVISOR.value)
ENDPOINTS = {overdue.OVERDUE: ".index", overdue.DUE_SOON: ".due_soon_view", overdue.DUE_TODAY: ".due_today_view"}


class ReassignForm(SecureForm):
    """Bulk reassign: the checked rows arrive as ``record=<id>:<version>``; the users are set per request."""

    assignee = SelectField(_l("新负责人"), choices=[], validators=[InputRequired(message=_l("请选择新负责人"))])


def _type_name(summary: dict) -> str:
    if str(get_locale()) == "en" and summary["name_en"]:
        return summary["name_en"]
    return summary["name"]


class OverdueView(AccessControlled, BaseView):
    """``/admin/overdue/`` (overdue) and ``/admin/overdue/due-soon/``; ``POST /admin/overdue/reassign/``."""

    allowed_roles = SUPERVISOR_ROLES
    page_size = 50

    # -- reading -----------------------------------------------------------------------------------------
    @expose("/")
    def index(self):
        return self._list(overdue.OVERDUE)

    @expose("/due-soon/")
    def due_soon_view(self):
        return self._list(overdue.DUE_SOON)

    @expose("/due-today/")
    def due_today_view(self):
        return self._list(overdue.DUE_TODAY)

    def _list(self, kind: str):
        types = {t["key"]: t for t in overdue.type_summaries()}
        query = self._query(kind, types)
        now = utcnow()
        counts = overdue.counts(query, now)
        total, rows = overdue.find(query, now, total=counts.total)
        users = {u.pk: u for u in User.objects(active=True).only("id", "username", "display_name")
                 .order_by("display_name")}
        departments = {d.pk: d for d in Department.objects(active__ne=False).only("id", "name")}
        names = self._names(types, rows, counts)
        form = ReassignForm()
        form.assignee.choices = [("", _("请选择"))] + [(str(pk), str(user)) for pk, user in users.items()]
        pages = max(1, (total + query.per_page - 1) // query.per_page)
        filters = query.filters()
        endpoint = ENDPOINTS[kind]

        def url(page=None, **changes):
            args = {k: str(v) for k, v in {**filters, **changes}.items() if v not in (None, "")}
            if page and page > 1:
                args["page"] = page
            return self.get_url(endpoint, **args)

        return self.render(
            "admin/overdue.html", kind=kind, kinds=overdue.KIND_LABELS, endpoints=ENDPOINTS, query=query,
            filters=filters,
            total=total, page=query.page, pages=pages, rows=[self._row(row, types, names) for row in rows],
            counts=[(group, overdue.GROUP_LABELS[group], [(value, names[group].get(value, value), n)
                                                           for value, n in counts.by[group]])
                    for group in overdue.GROUPS],
            type_options=[(key, _type_name(t)) for key, t in types.items()],
            department_options=[(str(pk), d.name) for pk, d in departments.items()],
            user_options=[(str(pk), str(user)) for pk, user in users.items()],
            level_options=self._levels(types.values()), unset=overdue.NONE, form=form, url=url,
            page_url=lambda p: url(page=p + 1), current_path=request.full_path,
        )

    def _query(self, kind: str, types: dict) -> overdue.SlaListQuery:
        """The page's query from the URL; a filter value that names nothing is dropped with a message."""
        args = request.args
        query = overdue.SlaListQuery(kind=kind, per_page=self.page_size)
        if kind == overdue.DUE_TODAY:
            tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
            tomorrow = utcnow().astimezone(tz).date() + timedelta(days=1)
            query.until = datetime.combine(tomorrow, time(0, 0), tzinfo=tz).astimezone(timezone.utc)
        type_key = args.get("type", "").strip()
        if type_key:
            if type_key in types:
                query.type = type_key
            else:
                flash(_("没有记录类型“%(key)s”，已忽略此筛选", key=type_key), "error")
        for group in ("department", "assignee"):
            raw = args.get(group, "").strip()
            if not raw:
                continue
            if raw == overdue.NONE:
                setattr(query, group, overdue.NONE)
                continue
            try:
                setattr(query, group, ObjectId(raw))
            except (InvalidId, TypeError):
                flash(_("筛选条件“%(value)s”无效，已忽略", value=raw), "error")
        query.level = args.get("level", "").strip() or None
        try:
            query.page = max(1, int(args.get("page", 1)))
        except ValueError:
            query.page = 1
        return query

    def _names(self, types: dict, rows, counts) -> dict[str, dict]:
        """Display names of every type, user and department on the page: one query per kind."""
        user_ids = {r.document.get("assignee") for r in rows} | {v for v, _n in counts.by["assignee"]}
        department_ids = {r.document.get("department") for r in rows} | {v for v, _n in counts.by["department"]}
        return {
            "type": {key: _type_name(t) for key, t in types.items()},
            "assignee": {**get_field_type("user").labels(v for v in user_ids if v is not None), None: _("未分配")},
            "department": {**get_field_type("department").labels(v for v in department_ids if v is not None),
                           None: _("未指定部门")},
            "level": {None: _("无等级")},
        }

    @staticmethod
    def _levels(types) -> list[str]:
        """The level values the types offer (their field ``level``), in the order first met."""
        return list(dict.fromkeys(level for summary in types for level in summary["levels"]))

    def _row(self, row: overdue.Row, types: dict, names: dict) -> dict:
        document = row.document
        type_key = document["type"]
        assignee, department = document.get("assignee"), document.get("department")
        return {
            "id": row.id, "version": document["version"], "number": document["number"],
            "url": url_for("records.details_view", type_key=type_key, id=row.id),
            "type": names["type"].get(type_key, type_key), "status": document.get("status") or "",
            "assignee": names["assignee"].get(assignee, "") if assignee is not None else "",
            "department": names["department"].get(department, "") if department is not None else "",
            "level": row.level or "", "clock": row.clock_name, "late": overdue.lateness_text(row),
        }

    # -- writing -------------------------------------------------------------------------------------------
    @expose("/reassign/", methods=("POST",))
    def reassign_view(self):
        """Reassign the checked records to the chosen user, each through ``kefu.records.reassign``."""
        target = request.form.get("next", "")
        if not target.startswith(self.url) or not is_safe_url(target):
            target = self.get_url(".index")
        form = ReassignForm(request.form)
        form.assignee.choices = [(str(u.pk), str(u)) for u in User.objects(active=True).only("id", "username",
                                                                                              "display_name")]
        if not form.validate():
            flash(_("提交失败：%(errors)s", errors="；".join(str(e) for errs in form.errors.values() for e in errs)),
                  "error")
            return redirect(target)
        versions = {}
        for item in request.form.getlist("record"):
            record_id, _sep, version = item.partition(":")
            versions[record_id] = version or None
        if not versions:
            flash(_("请先勾选要转派的记录"), "error")
            return redirect(target)
        try:
            done, refused = records.reassign(
                list(versions), form.assignee.data, current_actor(),
                versions={k: v for k, v in versions.items() if v is not None})
        except PermissionDenied as exc:
            abort(403, str(exc.message))
        except ValidationFailed as exc:
            flash(str(exc), "error")
            return redirect(target)
        name = dict(form.assignee.choices).get(form.assignee.data, "")
        if done:
            flash(_("已将 %(n)s 条记录转派给 %(name)s：%(numbers)s", n=len(done), name=name, numbers="、".join(done)),
                  "success")
        if refused:
            flash(_("%(n)s 条记录未转派：%(items)s", n=len(refused),
                    items="；".join(f"{number}（{reason}）" for number, reason in refused)), "error")
        return redirect(target)
