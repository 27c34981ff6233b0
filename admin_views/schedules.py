"""定时任务 (系统设置): when each scheduled duty runs, per pack where a duty belongs to one — time, weekday, day of
month, the care offsets and holiday greetings, what a pack's list duty lists.

Thin: the stored moments are written through ``kefu.schedule.timetable.save`` / ``reset`` (which check every value
and name the field at fault); the schedulers read them at their next tick (``kefu.schedule.duties``).
"""
from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, request
from flask_admin import BaseView, expose
from flask_admin.form import SecureForm
from flask_babel import get_locale
from flask_login import current_user
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField
from wtforms.widgets import CheckboxInput, ListWidget

from admin_views.base import AccessControlled
from admin_views.inbox import ActionForm
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _, _l, in_user_language
from kefu.org.customers import GRADES
from kefu.org.roles import Capability
from kefu.org.structure import Project
from kefu.records.menu_groups import group_names
from kefu.schedule import duties, timetable
from kefu.schedule.timetable import Cadence


class CheckboxesField(SelectMultipleField):
    """Several choices as check boxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def schedule_form(duty, types: list, formdata=None):
    """The form of ``duty`` (a ``Duty`` as stored): the fields its cadence and options have, filled in."""
    cadence = timetable.cadence_of(duty)

    class Form(SecureForm):
        at = StringField(_l("时间"), description=_l("24 小时制，如 09:00（%(tz)s）", tz=current_app.config["KEFU_TIMEZONE"]),
                         render_kw={"type": "time"})

    if cadence == Cadence.WEEKLY:
        Form.weekday = SelectField(_l("星期"), choices=[(str(i), label) for i, label in
                                                       enumerate(timetable.WEEKDAY_LABELS)], validate_choice=False)
    if cadence == Cadence.MONTHLY:
        Form.monthday = StringField(_l("每月几号"), description=_l("1–28"),
                                    render_kw={"type": "number", "min": 1, "max": 28})
    if cadence == Cadence.DAILY:
        Form.working_days = BooleanField(_l("仅工作日"), description=_l("按工作日历，节假日不运行"))
    if "offsets" in duty.options:
        Form.offsets = StringField(_l("交付前提前天数"), description=_l("用顿号分隔，如 30、15、3（002 日常流程；房开交付关怀）"))
        Form.holiday_greetings = BooleanField(_l("节日问候"), description=_l("法定节假日前的最后一个工作日向客户发送问候"))
    if "types" in duty.options:
        _list_fields(Form, types)
    if "projects" in duty.options:
        Form.projects = CheckboxesField(_l("商业项目"), description=_l("这些项目的客户档案为商户（004 沟通对象）"),
                                        choices=[(p.code, p.name) for p in Project.objects.order_by("name")],
                                        validate_choice=False)
        Form.anchor_grades = CheckboxesField(_l("主力店的客户等级"), choices=[(g, g) for g in GRADES],
                                             validate_choice=False)
    if "months" in duty.options:
        Form.months = CheckboxesField(_l("提醒月份"), choices=[(str(m), _("%(m)s 月", m=m)) for m in range(1, 13)],
                                      validate_choice=False)
    if duty.pack:
        Form.enabled = BooleanField(_l("启用"))
    form = Form(formdata)
    if formdata is None:
        form.at.data = duty.at.strftime("%H:%M")
        values = {"weekday": None if duty.weekday is None else str(duty.weekday), "monthday": duty.monthday,
                  "working_days": duty.working_days, "enabled": duty.enabled, **duty.options}
        for name, value in values.items():
            if hasattr(form, name):
                getattr(form, name).data = "、".join(map(str, value)) if name == "offsets" else \
                    [str(v) for v in value] if name == "months" else value
    return form


def _list_fields(form_class, types: list) -> None:
    form_class.types = CheckboxesField(_l("记录类型"), choices=[(t.key, in_user_language(t.name, t.name_en))
                                                              for t in types], validate_choice=False)
    form_class.statuses = SelectField(_l("列出"), choices=list(timetable.STATUS_CHOICES.items()), validate_choice=False)
    form_class.date_field = SelectField(_l("按日期"), choices=list(timetable.date_fields(types).items()),
                                        validate_choice=False)
    number = {"type": "number", "min": -366, "max": 366}
    form_class.window_from = StringField(_l("从运行日起第几天"), description=_l("0 为当天，1 为次日，-7 为一周前"),
                                         render_kw=number)
    form_class.window_to = StringField(_l("到第几天之前"), description=_l("不含这一天；如从 1 到 8：次日起的 7 天"),
                                       render_kw=number)


class SchedulesView(AccessControlled, BaseView):
    """``/admin/schedules/`` (administrators): the duties by pack, each with its form."""

    required_capability = Capability.MANAGE_SYSTEM.value

    @expose("/")
    def index(self):
        names = group_names(str(get_locale() or "zh"))
        groups: dict = {}
        for row in duties.schedule_overview():
            row["when"] = timetable.describe(row["duty"])
            row["edited"] = row["duty"].name in timetable.stored_schedules()
            pack = row["duty"].pack
            groups.setdefault(pack, (names.get(pack, pack) if pack else _("全系统"), []))[1].append(row)
        return self.render("admin/schedules.html", groups=list(groups.values()), form=ActionForm(),
                           tz=ZoneInfo(current_app.config["KEFU_TIMEZONE"]),
                           cadences=timetable.CADENCE_LABELS, cadence_of=timetable.cadence_of)

    @expose("/<duty_name>/", methods=("GET", "POST"))
    def edit(self, duty_name):
        if duty_name not in duties.DUTY_BY_NAME or duties.DUTY_BY_NAME[duty_name].at is None:
            abort(404)
        duty = duties.current_duty(duty_name)
        types = timetable.pack_types(duty.pack)
        form = schedule_form(duty, types, request.form if request.method == "POST" else None)
        if request.method == "POST":
            # Fields have no validators (choices unchecked too): WTForms checks the CSRF token, ``timetable.save``
            # every value, naming the field at fault.
            if not form.validate():
                flash(_("页面已过期，请刷新后重试"), "error")
            else:
                try:
                    values = {field.name: field.data for field in form if field.name != "csrf_token"}
                    timetable.save(duties.DUTY_BY_NAME[duty_name], values, by=current_user.username)
                except ValidationFailed as exc:
                    for field, message in exc.fields.items():
                        if hasattr(form, field):
                            getattr(form, field).errors = [str(message)]
                    flash(str(exc), "error")
                else:
                    flash(_("“%(label)s”的时间已保存，下次调度时生效", label=duty.label), "success")
                    return redirect(self.get_url(".index"))
        return self.render("admin/schedules_edit.html", duty=duty, form=form, reset_form=ActionForm(),
                           when=timetable.describe(duty), cadence=timetable.CADENCE_LABELS[timetable.cadence_of(duty)],
                           edited=duty_name in timetable.stored_schedules())

    @expose("/<duty_name>/reset/", methods=("POST",))
    def reset(self, duty_name):
        if duty_name not in duties.DUTY_BY_NAME:
            abort(404)
        if not ActionForm(request.form).validate():
            flash(_("页面已过期，请刷新后重试"), "error")
        elif timetable.reset(duty_name):
            flash(_("“%(label)s”已恢复默认时间", label=duties.DUTY_BY_NAME[duty_name].label), "success")
        return redirect(self.get_url(".index"))
