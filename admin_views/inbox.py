"""消息 (the in-app inbox) and 我的任务 (today's tasks): every signed-in user's own, nothing more.

Thin views over ``kefu.notify.notifications``; the bell on every page shows the unread count. A message or task
about a record the user may no longer read (reassigned elsewhere, a role changed) keeps its place in the list but
not the record's contents; its link answers 404 like any record out of scope.
"""
from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import current_app, flash, redirect, request
from flask_admin import BaseView, expose
from flask_admin.form import SecureForm
from flask_login import current_user

from admin_views.base import AccessControlled, page_number
from kefu.calendar.workcalendar import today_in
from kefu.core.errors import NotFound
from kefu.core.i18n import _
from kefu.notify import notifications
from web.actor import current_actor
from web.auth import safe_next_url


class ActionForm(SecureForm):
    """A CSRF-protected POST without fields (mark read, done)."""


def _tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["KEFU_TIMEZONE"])


def _withheld(items) -> set:
    """The ids of the items (messages, tasks) whose record the user may not read: their text is not shown."""
    return notifications.withheld(items, current_actor().access)


class InboxView(AccessControlled, BaseView):
    """``/admin/inbox/``: the user's notifications, newest first; open one (marks it read) or mark all read."""

    def is_visible(self) -> bool:
        return False  # reached from the user menu (and the bell), not the main menu

    page_size = 50

    @expose("/")
    def index(self):
        page = page_number(request.args.get("page"))
        unread_only = request.args.get("unread") == "1"
        total, items = notifications.inbox(current_user.pk, page, self.page_size, unread_only=unread_only)
        pages = max(1, (total + self.page_size - 1) // self.page_size)
        return self.render("admin/inbox.html", items=items, withheld=_withheld(items),
                           withheld_note=notifications.WITHHELD_NOTE, total=total, page=page,
                           pages=pages, tz=_tz(),
                           unread_only=unread_only, kinds=notifications.KIND_LABELS, form=ActionForm(),
                           page_url=lambda p: self.get_url(".index", page=p + 1, unread="1" if unread_only else None))

    @expose("/open/<notification_id>/", methods=("POST",))
    def open_view(self, notification_id):
        if not ActionForm(request.form).validate():
            flash(_("页面已过期，请刷新后重试"), "error")
            return redirect(self.get_url(".index"))
        try:
            notification = notifications.mark_read(current_user.pk, notification_id)
        except NotFound as exc:
            flash(str(exc), "error")
            return redirect(self.get_url(".index"))
        target = notification.url or ""
        if notification.record_id is not None and _withheld([notification]):
            target = ""  # the record is no longer the user's to read: back to the inbox rather than a 404
        elif notification.record_id and notification.record_type:
            target = f"/admin/records/{notification.record_type}/details/?id={notification.record_id}"
        return redirect(safe_next_url(target, self.get_url(".index")))

    @expose("/read-all/", methods=("POST",))
    def read_all_view(self):
        if ActionForm(request.form).validate():
            marked = notifications.mark_all_read(current_user.pk)
            flash(_("已将 %(n)s 条消息标为已读", n=marked), "success")
        return redirect(self.get_url(".index"))


class TasksView(AccessControlled, BaseView):
    """``/admin/tasks/``: the user's open tasks of today and earlier days; done with one click."""

    @expose("/")
    def index(self):
        tz = _tz()
        items = notifications.open_tasks(current_user.pk, today_in(tz), tz)
        return self.render("admin/tasks.html", items=items, withheld=_withheld(items),
                           withheld_note=notifications.TASK_WITHHELD_NOTE, tz=tz,
                           kinds=notifications.KIND_LABELS,
                           form=ActionForm(), today=today_in(tz))

    @expose("/done/<task_id>/", methods=("POST",))
    def done_view(self, task_id):
        if not ActionForm(request.form).validate():
            flash(_("页面已过期，请刷新后重试"), "error")
        else:
            try:
                task = notifications.finish_task(current_user.pk, task_id)
                flash(_("任务“%(title)s”已完成", title=task.title), "success")
            except NotFound as exc:
                flash(str(exc), "error")
        return redirect(self.get_url(".index"))
