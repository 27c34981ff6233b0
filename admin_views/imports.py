"""导入: upload a spreadsheet, match its columns to fields, see every row's problems (the dry run), then import —
with progress — and download the error report. Thin: ``kefu.insight.imports`` does the work, ``jobs.imports`` runs
its phases in the background; the pages poll the progress (``static/kefu_import.js``).

``/admin/imports/`` (``?target=records:<type>`` preselects what to import into), ``POST upload/``,
``<id>/`` (the import's page for each state), ``POST <id>/check/``, ``POST <id>/run/``, ``<id>/status.json``,
``<id>/problems.csv``.
"""
from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Response, abort, current_app, flash, jsonify, redirect, request
from flask_admin import BaseView, expose
from flask_login import current_user

from admin_views.base import AccessControlled
from admin_views.inbox import ActionForm
from jobs.imports import queue_import
from kefu.core.errors import DomainError, NotFound
from kefu.core.i18n import _
from kefu.insight import imports
from kefu.insight.exports import content_disposition
from kefu.insight.imports_sheet import column_letter
from kefu.insight.scope import allowed_somewhere
from kefu.org.roles import Action, Capability
from web.actor import current_actor

PROBLEMS_SHOWN = 1000


class ImportsView(AccessControlled, BaseView):
    """The imports of the signed-in user; what they may import into follows their roles."""

    def is_visible(self) -> bool:
        access = current_actor().access
        return (allowed_somewhere(access, Action.READ.value) or access.has(Capability.MANAGE_CUSTOMERS.value)
                or access.has(Capability.MANAGE_SYSTEM.value))

    def _job(self, import_id) -> imports.ImportJob:
        try:
            return imports.get_for(current_user.pk, import_id)
        except NotFound:
            abort(404)

    @expose("/")
    def index(self):
        return self.render("admin/imports.html", items=imports.of_user(current_user.pk), form=ActionForm(),
                           targets=imports.targets_for(current_actor()), chosen=request.args.get("target", ""),
                           labels=imports.STATUS_LABELS, tz=ZoneInfo(current_app.config["KEFU_TIMEZONE"]),
                           max_mb=imports.MAX_FILE_BYTES // (1024 * 1024), max_rows=imports.MAX_ROWS)

    @expose("/upload/", methods=("POST",))
    def upload_view(self):
        target = request.form.get("target", "")
        if not ActionForm(request.form).validate():
            flash(_("页面已过期，请刷新后重试"), "error")
            return redirect(self.get_url(".index", target=target))
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash(_("请选择要导入的文件"), "error")
            return redirect(self.get_url(".index", target=target))
        try:
            job = imports.upload(current_actor(), target, upload.filename, upload.read())
        except DomainError as exc:
            flash(_("未上传：%(reason)s", reason=str(exc)), "error")
            return redirect(self.get_url(".index", target=target))
        return redirect(self.get_url(".detail_view", import_id=job.pk))

    @expose("/<import_id>/")
    def detail_view(self, import_id):
        return self._detail(self._job(import_id))

    def _detail(self, job, errors=None, posted=None):
        target = imports.target_of(job.target)
        mapping = posted if posted is not None else dict(job.mapping)
        shown = imports.problems_of(job, PROBLEMS_SHOWN) if job.status in ("checked", "done", "failed") else []
        return self.render("admin/import_detail.html", job=job, form=ActionForm(), errors=errors or {},
                           columns=target.columns(), mapping=mapping, modes=imports.MODES,
                           letters=[column_letter(i) for i in range(len(job.headers))], problems=shown,
                           more_problems=len(shown) >= PROBLEMS_SHOWN, labels=imports.STATUS_LABELS,
                           running=job.status in imports.RUNNING, status_json=imports.job_json(job))

    @expose("/<import_id>/check/", methods=("POST",))
    def check_view(self, import_id):
        job = self._job(import_id)
        posted = {key[4:]: value for key, value in request.form.items() if key.startswith("col-")}
        if not ActionForm(request.form).validate():
            flash(_("页面已过期，请刷新后重试"), "error")
            return self._detail(job, posted=posted)
        try:
            job = imports.check(job, current_actor(), posted, request.form.get("mode", ""))
        except DomainError as exc:
            flash(_("未开始检查：%(reason)s", reason=str(exc)), "error")
            return self._detail(job, errors={k: str(v) for k, v in exc.fields.items()}, posted=posted)
        self._queue(job, "check")
        return redirect(self.get_url(".detail_view", import_id=job.pk))

    @expose("/<import_id>/run/", methods=("POST",))
    def run_view(self, import_id):
        job = self._job(import_id)
        if not ActionForm(request.form).validate():
            flash(_("页面已过期，请刷新后重试"), "error")
        else:
            try:
                job = imports.start_import(job, current_actor())
            except DomainError as exc:
                flash(_("未导入：%(reason)s", reason=str(exc)), "error")
            else:
                self._queue(job, "write")
        return redirect(self.get_url(".detail_view", import_id=job.pk))

    def _queue(self, job, phase: str) -> None:
        if queue_import(str(job.pk), phase) is None:
            imports.fail(str(job.pk), _("后台任务暂时不可用，请稍后重新上传"))

    @expose("/<import_id>/status.json")
    def status_view(self, import_id):
        return jsonify(imports.job_json(self._job(import_id)))

    @expose("/<import_id>/problems.csv")
    def problems_view(self, import_id):
        job = self._job(import_id)
        name = f"{job.filename.rsplit('.', 1)[0]}-{_('问题')}.csv"
        return Response(imports.error_report(job), mimetype="text/csv",
                        headers={"Content-Disposition": content_disposition(name)})
