"""任务队列: queues (waiting jobs and how long the oldest has waited), workers, schedulers, the duties' last and next
runs, failed jobs with retry/delete."""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import current_app, flash, redirect, request
from flask_admin import BaseView, expose

from admin_views.base import AccessControlled
from admin_views.inbox import ActionForm
from kefu.core.durations import duration_text
from kefu.core.errors import DomainError
from kefu.core.i18n import _
from kefu.notify import notifications
from kefu.org.roles import Capability
from kefu.schedule import duties, queues


def wait_text(seconds: float | None) -> str:
    """How long a queue's oldest job has waited: seconds under a minute (a duty is late after one), else minutes
    and up; "-" when nothing waits."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return _("%(seconds)s 秒", seconds=int(seconds))
    return duration_text(timedelta(seconds=seconds))


class QueueView(AccessControlled, BaseView):
    """``/admin/queue/`` (administrators)."""

    required_capability = Capability.MANAGE_SYSTEM.value

    @expose("/")
    def index(self):
        connection = current_app.extensions["kefu_redis"]
        try:
            overview, problem = queues.overview(connection), None
        except queues.QueueUnavailable as exc:
            overview, problem = None, str(exc)
        failed_deliveries = notifications.Delivery.objects(status=notifications.DeliveryStatus.FAILED.value).count()
        pending_deliveries = notifications.Delivery.objects(status=notifications.DeliveryStatus.PENDING.value).count()
        return self.render("admin/queue.html", overview=overview, problem=problem,
                           schedule=duties.schedule_overview(), tz=ZoneInfo(current_app.config["KEFU_TIMEZONE"]),
                           failed_deliveries=failed_deliveries, pending_deliveries=pending_deliveries,
                           run_states=duties.STATE_LABELS, wait_text=wait_text,
                           form=ActionForm())

    @expose("/job/<job_id>/<action>/", methods=("POST",))
    def job_view(self, job_id, action):
        if not ActionForm(request.form).validate():
            flash(_("页面已过期，请刷新后重试"), "error")
            return redirect(self.get_url(".index"))
        connection = current_app.extensions["kefu_redis"]
        try:
            if action == "retry":
                queues.requeue_failed(connection, job_id)
                flash(_("任务 %(id)s 已重新排队", id=job_id), "success")
            elif action == "delete":
                queues.delete_failed(connection, job_id)
                flash(_("任务 %(id)s 已删除", id=job_id), "success")
            else:
                flash(_("未知操作"), "error")
        except DomainError as exc:
            flash(str(exc), "error")
        except Exception as exc:  # Redis went away between page and click
            flash(_("操作失败：%(error)s", error=str(exc)), "error")
        return redirect(self.get_url(".index"))
