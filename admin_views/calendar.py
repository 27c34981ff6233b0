"""Admin screen for the working-day calendar (工作日历); every change goes through ``kefu.calendar.workcalendar``."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.mongoengine.filters import FilterEqual, IntEqualFilter
from flask_admin.form import SecureForm
from flask_login import current_user
from wtforms import DateField, HiddenField, IntegerField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional, StopValidation

from admin_views.base import SecureModelView
from kefu.calendar import recompute, workcalendar
from kefu.calendar.days import KIND_LABELS, SEED_SOURCE, CalendarDay, DayKind, kind_label, weekday_name
from kefu.core.errors import ValidationFailed
from kefu.core.clock import aware, utcnow
from kefu.core.errors import DomainError
from kefu.core.i18n import _, _l
from kefu.org.roles import Capability

NAME_HELP = _l("如 国庆节、春节、公司年会；同一假期的每一天用同一个名称")


class LocalDateField(DateField):
    """A ``YYYY-MM-DD`` date whose parse error says what to type."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_("日期格式不正确：请按 YYYY-MM-DD 填写一个存在的日期，如 2027-10-01")) from None


class Required(InputRequired):
    """``InputRequired`` whose (lazy) message is rendered in the request's language.

    Flask-Admin shows a field's error inline only when it is a ``str``, not a lazy string."""

    def __call__(self, form, field):
        try:
            super().__call__(form, field)
        except StopValidation as stop:
            raise StopValidation(str(stop.args[0]) if stop.args and stop.args[0] else None) from None


def _kind_choices():
    return [(kind.value, kind_label(kind.value)) for kind in DayKind]


class CalendarDayForm(SecureForm):
    day = LocalDateField(_l("日期"), validators=[Required(message=_l("请填写日期"))], format="%Y-%m-%d")
    kind = SelectField(_l("类型"), choices=_kind_choices, description=_l("调休上班只能设在星期六或星期日"))
    name = StringField(_l("名称"), validators=[Required(message=_l("请填写名称")), Length(max=40)],
                       description=NAME_HELP)


class CalendarRangeForm(SecureForm):
    first = LocalDateField(_l("开始日期"), validators=[Required(message=_l("请填写开始日期"))], format="%Y-%m-%d")
    last = LocalDateField(_l("结束日期"), validators=[Required(message=_l("请填写结束日期"))], format="%Y-%m-%d",
                          description=_l("包含这一天；区间内已有的条目会被替换"))
    kind = SelectField(_l("类型"), choices=_kind_choices)
    name = StringField(_l("名称"), validators=[Required(message=_l("请填写名称")), Length(max=40)],
                       description=NAME_HELP)


class YearCompleteForm(SecureForm):
    """Mark a year's holidays as completely entered (its fallback and its warning end)."""

    year = IntegerField(_l("年份"), validators=[Required(message=_l("请填写年份"))])
    complete = HiddenField(default="1")


class WorkingHoursForm(SecureForm):
    """The company's working hours, which working-hours deadlines (N 工作小时) count."""

    start = StringField(_l("上班时间"), validators=[Required(message=_l("请填写上班时间"))], description="09:00")
    end = StringField(_l("下班时间"), validators=[Required(message=_l("请填写下班时间"))], description="18:00")
    lunch_start = StringField(_l("午休开始"), validators=[Optional()], description=_l("不午休则留空"))
    lunch_end = StringField(_l("午休结束"), validators=[Optional()])


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["KEFU_TIMEZONE"])


def _year_options():
    """Years to pick in the list filter: the package's first year to two years ahead (newest first).

    Flask-Admin builds filter options once, when the view is constructed, so this reads no database."""
    return [(str(year), str(year)) for year in range(utcnow().year + 2, 2003, -1)]


def recompute_note() -> tuple[str, str] | None:
    """``(alert class, text)`` saying how far the recomputation of deadlines after the last edit got."""
    latest = recompute.latest()
    if latest is None:
        return None
    state = recompute.RecomputeState(latest.state)
    if state == recompute.RecomputeState.QUEUED:
        return "info", _("日历已修改，时限将在后台重新计算（排队中）")
    if state == recompute.RecomputeState.RUNNING:
        return "info", _("正在重新计算时限：%(done)s / %(total)s", done=f"{latest.done:,}", total=f"{latest.total:,}")
    if state == recompute.RecomputeState.FAILED:
        if latest.attempts < recompute.MAX_ATTEMPTS:
            return "warning", _("重新计算时限失败，将自动重试：%(error)s", error=latest.error)
        return "danger", _("重新计算时限失败：%(error)s", error=latest.error)
    if state == recompute.RecomputeState.DONE:
        finished = aware(latest.finished_at).astimezone(_zone())
        return "success", _("时限已按最新日历重新计算：%(n)s 条（%(at)s）", n=f"{latest.done:,}",
                            at=f"{finished:%Y-%m-%d %H:%M}")
    return None


def _day_with_weekday(view, context, model, name):
    return f"{model.day:%Y-%m-%d} {weekday_name(model.day)}" if model.day else ""


class CalendarDayView(SecureModelView):
    required_capability = Capability.MANAGE_SYSTEM.value
    form = CalendarDayForm
    list_template = "admin/calendar_list.html"
    column_list = ("day", "kind", "name", "source", "updated_at", "updated_by")
    column_details_list = ("day", "kind", "name", "source", "updated_at", "updated_by")
    column_sortable_list = ("day", "kind", "name", "updated_at")
    column_default_sort = [("year", True), ("day", False)]  # newest year first, its days in order
    column_searchable_list = ()
    column_filters = (
        IntEqualFilter("year", _l("年份"), options=_year_options),
        FilterEqual("kind", _l("类型"), options=[(kind.value, KIND_LABELS[kind]) for kind in DayKind]),
    )
    column_formatters = {
        "day": _day_with_weekday,
        "kind": lambda view, context, model, name: kind_label(model.kind),
        "source": lambda view, context, model, name: (
            _("系统预置") if model.source == SEED_SOURCE else _("管理员")),
    }
    column_formatters_detail = column_formatters
    page_size = 100

    def _by(self) -> str | None:
        return current_user.username if current_user.is_authenticated else None

    def create_model(self, form):
        try:
            return workcalendar.add_day(form.day.data, form.kind.data, form.name.data, by=self._by())
        except DomainError as exc:
            self.handle_view_exception(exc)
            return False

    def update_model(self, form, model):
        try:
            workcalendar.update_day(model, form.day.data, form.kind.data, form.name.data, by=self._by())
        except DomainError as exc:
            self.handle_view_exception(exc)
            return False
        return True

    def delete_model(self, model):
        try:
            workcalendar.remove_day(model.day, by=self._by())
        except DomainError as exc:
            self.handle_view_exception(exc)
            return False
        return True

    def action_delete(self, ids):
        """The list's bulk delete: one service call, one version bump."""
        days = [entry.day for entry in CalendarDay.objects(id__in=[self.object_id_converter(pk) for pk in ids])]
        removed = workcalendar.remove_days(days, by=self._by())
        flash(_("已删除 %(n)s 天", n=removed), "success")

    def render(self, template, **kwargs):
        if template == self.list_template:
            calendar = workcalendar.get_calendar()
            kwargs["missing_years"] = calendar.missing_years(workcalendar.today_in(_zone()))
            kwargs["recompute_note"] = recompute_note()
            kwargs["complete_form"] = YearCompleteForm()
            kwargs["hours_form"] = kwargs.get("hours_form") or WorkingHoursForm(data=calendar.hours.to_dict())
        return super().render(template, **kwargs)

    @expose("/range/", methods=("GET", "POST"))
    def range_view(self):
        """Enter a run of days at once (e.g. 2027-10-01 to 2027-10-07 国庆节)."""
        return_url = self.get_url(".index_view")
        form = CalendarRangeForm(request.form if request.method == "POST" else None)
        if request.method == "POST" and form.validate():
            try:
                entries = workcalendar.set_range(form.first.data, form.last.data, form.kind.data, form.name.data,
                                                 by=self._by())
            except DomainError as exc:
                self.handle_view_exception(exc)
            else:
                flash(_("已录入 %(n)s 天：%(first)s 至 %(last)s %(name)s", n=len(entries),
                        first=form.first.data.isoformat(), last=form.last.data.isoformat(),
                        name=form.name.data.strip()), "success")
                return redirect(url_for(".index_view", flt0_0=str(form.first.data.year)))
        return self.render("admin/calendar_range.html", form=form, return_url=return_url)


    @expose("/complete/", methods=("POST",))
    def complete_view(self):
        """Mark a year's holidays as completely entered (``workcalendar.set_year_complete``)."""
        form = YearCompleteForm(request.form)
        if form.validate():
            try:
                workcalendar.set_year_complete(form.year.data, form.complete.data != "0", by=self._by())
            except DomainError as exc:
                self.handle_view_exception(exc)
            else:
                flash(_("已标记 %(year)s 年节假日录入完整", year=form.year.data), "success")
        else:
            flash(_("请填写年份"), "error")
        return redirect(url_for(".index_view"))

    @expose("/hours/", methods=("POST",))
    def hours_view(self):
        """Change the working hours (``workcalendar.set_working_hours``); a refused value is shown at its field."""
        form = WorkingHoursForm(request.form)
        if form.validate():
            try:
                hours = workcalendar.set_working_hours(
                    {name: getattr(form, name).data for name in ("start", "end", "lunch_start", "lunch_end")},
                    by=self._by())
            except ValidationFailed as exc:
                for name, message in exc.fields.items():
                    getattr(form, name).errors = [str(message)]
            else:
                flash(_("工作时间已保存：%(hours)s", hours=hours.text()), "success")
                return redirect(url_for(".index_view"))
        return self.index_view_with(hours_form=form)

    def index_view_with(self, **kwargs):
        """The list page with ``kwargs`` handed to its template (a refused form shown with its errors)."""
        self._template_args.update(kwargs)
        return self.index_view()
