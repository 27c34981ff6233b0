"""逾期督办: overdue and due-soon records of every type, their counts, and bulk reassign.

Everyone whose roles read records opens it and sees the records they may read (``kefu.insight.scope``); bulk
reassign is offered to those whose roles allow ``reassign``, and each record is checked again when written.

The page is thin: ``kefu.insight.overdue`` finds and counts the records (index-backed,
most overdue first), ``kefu.records.write.reassign`` writes. The page itself reads
the page of rows with its total; the pick lists (types, users, departments,
whose names the rows reuse) are this process's copies (``kefu.core.versioned_cache``).
The counts per type, department, assignee and level are one aggregation over
every matching record, so they are a fragment of their own (``counts_view``)
that the page loads once shown.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import NamedTuple
from zoneinfo import ZoneInfo

from bson import ObjectId
from bson.errors import InvalidId
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_admin import BaseView, expose
from flask_admin.form import SecureForm
from flask_babel import get_locale
from flask_login import current_user
from wtforms import SelectField
from wtforms.validators import InputRequired

from admin_views.base import AccessControlled, page_number
from kefu.core.clock import utcnow
from kefu.core.durations import DurationWords
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _, _l
from kefu.insight import overdue
from kefu.insight.scope import allowed_somewhere, readable_filter
from kefu.org.roles import ACTION_LABELS, Action
from kefu.org.structure import active_department_names
from kefu.org.users import active_user_labels, load_active_user_labels
from kefu.records.fields import get_field_type
from kefu.records.types import type_name, type_summaries
from kefu.records.write import reassign
from web.actor import current_actor
from web.auth import safe_next_url

ENDPOINTS = {overdue.OVERDUE: ".index", overdue.DUE_SOON: ".due_soon_view", overdue.DUE_TODAY: ".due_today_view"}


class ReassignForm(SecureForm):
    """Bulk reassign: the checked rows arrive as ``record=<id>:<version>``; the users are set per request."""

    assignee = SelectField(_l("新负责人"), choices=[], validators=[InputRequired(message=_l("请选择新负责人"))])


class ListedRow(NamedTuple):
    """One row of the list as the template shows it (a tuple: Jinja reads its attributes directly)."""

    id: str
    version: int
    number: str
    url: str
    type: str
    status: str
    assignee: str
    department: str
    level: str
    clock: str
    late: str


class OverdueView(AccessControlled, BaseView):
    """``/admin/overdue/`` (overdue) and ``/admin/overdue/due-soon/``; ``POST /admin/overdue/reassign/``."""

    page_size = 50

    def is_accessible(self) -> bool:
        return current_user.is_authenticated and allowed_somewhere(current_actor().access, Action.READ.value)

    def inaccessible_callback(self, name, **kwargs):
        if current_user.is_authenticated:
            abort(403, _("此页面需要“%(action)s”记录的权限", action=ACTION_LABELS[Action.READ]))
        return super().inaccessible_callback(name, **kwargs)

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

    @expose("/counts/<kind>/")
    def counts_view(self, kind: str):
        """The counts panel of a tab, as an HTML fragment the page loads after it is shown: the aggregation
        behind it reads every matching record, so the list does not wait for it. Takes the list's filters."""
        if kind not in overdue.KINDS:
            abort(404)
        types = {t["key"]: t for t in type_summaries()}
        query, _problems = self._query(kind, types)  # the page has said what it dropped
        counts = overdue.counts(query)
        names = self._names(types, active_user_labels(), active_department_names(),
                            [v for v, _n in counts.by["assignee"]], [v for v, _n in counts.by["department"]])
        return render_template(
            "admin/overdue_counts.html", unset=overdue.NONE, url=self._list_url(kind, query.filters()),
            counts=[(group, overdue.GROUP_LABELS[group], [(value, names[group].get(value, value), n)
                                                           for value, n in counts.by[group]])
                    for group in overdue.GROUPS])

    def _list(self, kind: str):
        types = {t["key"]: t for t in type_summaries()}
        query, problems = self._query(kind, types)
        for problem in problems:
            flash(problem, "error")
        total, rows = overdue.find(query)
        users, departments = active_user_labels(), active_department_names()
        names = self._names(types, users, departments, [r.document.get("assignee") for r in rows],
                            [r.document.get("department") for r in rows])
        form = ReassignForm()
        form.assignee.choices = [("", _("请选择"))] + [(str(pk), label) for pk, label in users.items()]
        pages = max(1, (total + query.per_page - 1) // query.per_page)
        filters = query.filters()
        url = self._list_url(kind, filters)
        access = current_actor().access
        return self.render(
            "admin/overdue.html", kind=kind, kinds=overdue.KIND_LABELS, endpoints=ENDPOINTS, query=query,
            filters=filters, total=total, page=query.page, pages=pages,
            rows=self._rows(rows, names), can_reassign=allowed_somewhere(access, Action.REASSIGN.value),
            counts_url=self.get_url(".counts_view", kind=kind, **{k: str(v) for k, v in filters.items()}),
            type_options=[(key, type_name(t, str(get_locale()))) for key, t in types.items()
                          if access.allows(key, Action.READ.value)],
            department_options=[(str(pk), name) for pk, name in departments.items()],
            user_options=[(str(pk), label) for pk, label in users.items()],
            level_options=self._levels(types.values()), unset=overdue.NONE, form=form,
            page_url=lambda p: url(page=p + 1), current_path=request.full_path,
        )

    def _list_url(self, kind: str, filters: dict):
        """``url(page=None, **changes)``: the tab's URL with ``filters`` and ``changes`` (None drops one)."""
        endpoint = ENDPOINTS[kind]

        def url(page=None, **changes):
            args = {k: str(v) for k, v in {**filters, **changes}.items() if v not in (None, "")}
            if page and page > 1:
                args["page"] = page
            return self.get_url(endpoint, **args)

        return url

    def _query(self, kind: str, types: dict) -> tuple[overdue.SlaListQuery, list[str]]:
        """The page's query from the URL within the records the user may read, and a message for each filter
        value that names nothing (dropped)."""
        args = request.args
        query = overdue.SlaListQuery(kind=kind, per_page=self.page_size,
                                     scope=readable_filter(current_actor().access))
        problems = []
        if kind == overdue.DUE_TODAY:
            tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
            tomorrow = utcnow().astimezone(tz).date() + timedelta(days=1)
            query.until = datetime.combine(tomorrow, time(0, 0), tzinfo=tz).astimezone(timezone.utc)
        type_key = args.get("type", "").strip()
        if type_key:
            if type_key in types:
                query.type = type_key
            else:
                problems.append(_("没有记录类型“%(key)s”，已忽略此筛选", key=type_key))
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
                problems.append(_("筛选条件“%(value)s”无效，已忽略", value=raw))
        query.level = args.get("level", "").strip() or None
        query.page = page_number(args.get("page"))
        return query, problems

    @staticmethod
    def _names(types: dict, users: dict, departments: dict, assignee_ids, department_ids) -> dict[str, dict]:
        """Display names of the types, users and departments shown: ``users`` / ``departments`` (the pick
        lists) and, for any others (a disabled user still assigned), one query per kind."""
        def named(kind: str, known: dict, ids) -> dict:
            return {**known, **get_field_type(kind).labels(i for i in ids if i is not None and i not in known)}

        locale = str(get_locale())
        return {
            "type": {key: type_name(t, locale) for key, t in types.items()},
            "assignee": {**named("user", users, assignee_ids), None: _("未分配")},
            "department": {**named("department", departments, department_ids), None: _("未指定部门")},
            "level": {None: _("无等级")},
        }

    @staticmethod
    def _levels(types) -> list[str]:
        """The level values the types offer (the choices of their level fields), in the order first met."""
        return list(dict.fromkeys(level for summary in types for level in summary["levels"]))

    @staticmethod
    def _rows(rows: list[overdue.Row], names: dict) -> list[ListedRow]:
        # One url_for per type, not per row: the details URL differs only in its ?id=.
        details = {key: url_for("records.details_view", type_key=key) for key in {r.document["type"] for r in rows}}
        words = DurationWords.current()
        shown = []
        for row in rows:
            document = row.document
            type_key = document["type"]
            assignee, department = document.get("assignee"), document.get("department")
            shown.append(ListedRow(
                id=row.id, version=document["version"], number=document["number"],
                url=f"{details[type_key]}?id={row.id}",
                type=names["type"].get(type_key, type_key), status=document.get("status") or "",
                assignee=names["assignee"].get(assignee, "") if assignee is not None else "",
                department=names["department"].get(department, "") if department is not None else "",
                level=row.level or "", clock=row.clock_name, late=overdue.lateness_text(row, words),
            ))
        return shown

    # -- writing -------------------------------------------------------------------------------------------
    @expose("/reassign/", methods=("POST",))
    def reassign_view(self):
        """Reassign the checked records to the chosen user, each through ``kefu.records.write.reassign`` (which
        refuses a record out of the user's reassign scope); 403 for a user whose roles never reassign."""
        if not allowed_somewhere(current_actor().access, Action.REASSIGN.value):
            abort(403, _("您没有“%(action)s”记录的权限", action=ACTION_LABELS[Action.REASSIGN]))
        target = request.form.get("next", "")
        target = safe_next_url(target if target.startswith(self.url) else None, self.get_url(".index"))
        form = ReassignForm(request.form)
        form.assignee.choices = [(str(pk), label) for pk, label in load_active_user_labels().items()]
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
            done, refused = reassign(
                list(versions), form.assignee.data, current_actor(),
                versions={k: v for k, v in versions.items() if v is not None})
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
