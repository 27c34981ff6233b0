"""我的导出: the user's background exports with their progress, and the download of finished ones."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Response, current_app, flash, redirect, stream_with_context
from flask_admin import BaseView, expose
from flask_login import current_user

from admin_views.base import AccessControlled
from kefu.core.errors import NotFound
from kefu.insight import export_jobs, exports


class ExportsView(AccessControlled, BaseView):
    """``/admin/exports/``; the page refreshes itself while an export runs."""

    def is_visible(self) -> bool:
        return False  # reached from the user menu (and the bell), not the main menu

    @expose("/")
    def index(self):
        items = export_jobs.of_user(current_user.pk)
        return self.render("admin/exports.html", items=items, labels=export_jobs.STATUS_LABELS,
                           tz=ZoneInfo(current_app.config["KEFU_TIMEZONE"]),
                           running=any(job.status in ("queued", "running") for job in items))

    @expose("/<job_id>/download/")
    def download_view(self, job_id):
        try:
            job, stored = export_jobs.open_file(current_user.pk, job_id)
        except NotFound as exc:
            flash(str(exc), "error")
            return redirect(self.get_url(".index"))
        return Response(stream_with_context(iter(lambda: stored.read(256 * 1024), b"")),
                        mimetype=exports.FORMATS[job.fmt],
                        headers={"Content-Disposition": exports.content_disposition(job.filename)})
