"""API routes: the caller's notifications (the in-app inbox) and today's tasks."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import current_app, jsonify, request
from flask_login import current_user

from kefu.calendar.workcalendar import today_in
from kefu.core.i18n import _
from kefu.notify import notifications
from web.actor import current_actor
from web.api.base import BadRequest, blueprint, page_args

NOTIFICATIONS_PER_PAGE = 200  # the longest page of the inbox the API answers


def _tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["KEFU_TIMEZONE"])


def _flag(name: str) -> bool:
    value = request.args.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise BadRequest(_("%(name)s 应为 true 或 false", name=name), {name: _("应为 true 或 false")})
    return value in ("true", "1")


@blueprint.get("/v1/notifications")
def list_notifications():
    """The caller's notifications, newest first: ``{"items": [...], "total", "unread"}``; ``unread=true`` for the
    unread ones only; ``page``, ``per_page`` (≤ 200). One about a record the caller may no longer read comes
    without its title, text and record number (``withheld``)."""
    page, per_page = page_args(request.args, max_per_page=NOTIFICATIONS_PER_PAGE)
    total, items = notifications.inbox(current_user.pk, page, per_page, unread_only=_flag("unread"))
    tz = _tz()
    hidden = notifications.withheld(items, current_actor().access)
    return jsonify({"items": [notifications.notification_json(n, tz, hidden=n.pk in hidden) for n in items],
                    "total": total,
                    "unread": notifications.unread_count(current_user.pk)})


@blueprint.post("/v1/notifications/<notification_id>/read")
def read_notification(notification_id):
    """Mark one of the caller's notifications read: 200 with it; 404 for another's or an unknown id."""
    notification = notifications.mark_read(current_user.pk, notification_id)
    hidden = notification.pk in notifications.withheld([notification], current_actor().access)
    return jsonify(notifications.notification_json(notification, _tz(), hidden=hidden))


@blueprint.post("/v1/notifications/read-all")
def read_all_notifications():
    return jsonify({"marked": notifications.mark_all_read(current_user.pk)})


@blueprint.get("/v1/tasks")
def list_tasks():
    """The caller's open tasks of today and earlier days (今日跟进, 今日回访); one about a record the caller may no
    longer read comes without its title and record number (``withheld``)."""
    tz = _tz()
    items = notifications.open_tasks(current_user.pk, today_in(tz), tz)
    hidden = notifications.withheld(items, current_actor().access)
    return jsonify({"items": [notifications.task_json(task, tz, hidden=task.pk in hidden) for task in items]})


@blueprint.post("/v1/tasks/<task_id>/done")
def finish_task(task_id):
    task = notifications.finish_task(current_user.pk, task_id)
    return jsonify({"id": str(task.pk), "done": task.done_at is not None})
