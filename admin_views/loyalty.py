"""会员等级 (系统设置): tier rules, each grade's callback script and frequency, and which records those callbacks are;
and 兑换 from a customer's archive.

Thin: the settings are checked and stored by ``kefu.rules.loyalty.save_settings`` (every bad value named at its
field), a redemption by ``kefu.org.loyalty.redeem_for`` (refused, nothing written, when the balance is short).
"""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_admin.form import SecureForm
from flask_login import current_user
from wtforms import StringField, TextAreaField

from admin_views.base import AccessControlled
from kefu.core.errors import DomainError, ValidationFailed
from kefu.core.i18n import _, _l
from kefu.org import loyalty
from kefu.org.customers import GRADES
from kefu.org.roles import Capability
from kefu.rules.loyalty import save_settings
from web.actor import current_actor

SEPARATOR = "|"


class SettingsForm(SecureForm):
    tiers = TextAreaField(_l("会员等级"), render_kw={"rows": 6},
                          description=_l("每行一个等级：名称 | 成交笔数 | 成交金额（元），达到任一门槛即可；"
                                         "第一行为基础等级，门槛留空。001 §六2"))
    callback_type = StringField(_l("回访记录类型"), description=_l("按客户等级生成的回访所用的记录类型的键，如 callback"))
    callback_name_field = StringField(_l("客户姓名字段"), description=_l("回访类型中填写客户姓名的文字字段"))
    callback_script_field = StringField(_l("话术字段"), description=_l("回访类型中填写话术的文字字段（可留空：话术写入记录进展）"))
    callback_values = TextAreaField(_l("回访记录的固定值"), render_kw={"rows": 2},
                                    description=_l("每行一个：字段: 值，如 callback_type: 定期回访"))


for _grade in GRADES:
    setattr(SettingsForm, f"script_{_grade}", TextAreaField(_l("%(grade)s 类客户回访话术", grade=_grade),
                                                            render_kw={"rows": 2}))
    setattr(SettingsForm, f"every_days_{_grade}", StringField(
        _l("%(grade)s 类客户回访间隔（天）", grade=_grade), description=_l("002 第五章：按客户等级确定回访频率"),
        render_kw={"type": "number", "min": 1}))


def _tier_lines(tiers: list[dict]) -> str:
    return "\n".join(f" {SEPARATOR} ".join([t["name"], str(t["min_deals"] if t["min_deals"] is not None else ""),
                                            str(t["min_amount"] if t["min_amount"] is not None else "")]).rstrip(" |")
                     for t in tiers)


def _fill(form: SettingsForm, current: dict) -> None:
    form.tiers.data = _tier_lines(current["tiers"])
    callback = current["callback"]
    form.callback_type.data = callback["type"]
    form.callback_name_field.data = callback["name_field"]
    form.callback_script_field.data = callback["script_field"]
    form.callback_values.data = "\n".join(f"{k}: {v}" for k, v in callback["values"].items())
    for grade in GRADES:
        rule = current["grades"].get(grade) or {}
        getattr(form, f"script_{grade}").data = rule.get("script", "")
        getattr(form, f"every_days_{grade}").data = str(rule.get("every_days") or "")


def _values(form: SettingsForm) -> tuple[dict, dict]:
    """The form as settings values, and the problems of lines that do not split (field → message)."""
    problems, tiers = {}, []
    for line in (form.tiers.data or "").splitlines():
        if line.strip():
            parts = [part.strip() for part in line.split(SEPARATOR)]
            tiers.append({"name": parts[0], "min_deals": (parts[1:2] or [None])[0],
                          "min_amount": (parts[2:3] or [None])[0]})
    fixed = {}
    for line in (form.callback_values.data or "").splitlines():
        if line.strip():
            key, colon, value = line.replace("：", ":").partition(":")
            if not colon or not key.strip():
                problems["callback_values"] = _("“%(line)s”应写成“字段: 值”", line=line.strip())
            fixed[key.strip()] = value.strip()
    return {"tiers": tiers,
            "grades": {g: {"script": getattr(form, f"script_{g}").data,
                           "every_days": getattr(form, f"every_days_{g}").data} for g in GRADES},
            "callback": {"type": form.callback_type.data, "name_field": form.callback_name_field.data,
                         "script_field": form.callback_script_field.data, "values": fixed}}, problems


class LoyaltyView(AccessControlled, BaseView):
    """``/admin/loyalty/`` (administrators): the membership settings; ``redeem/<customer id>`` (customer keepers)."""

    required_capability = Capability.MANAGE_SYSTEM.value

    def is_accessible(self) -> bool:
        if request.endpoint == f"{self.endpoint}.redeem":
            return current_user.is_authenticated  # ``redeem_for`` checks ``manage_customers`` (403 naming it)
        return super().is_accessible()

    @expose("/", methods=("GET", "POST"))
    def index(self):
        form = SettingsForm(request.form if request.method == "POST" else None)
        if request.method == "GET":
            _fill(form, loyalty.settings())
        elif not form.validate():
            flash(_("页面已过期，请刷新后重试"), "error")
        else:
            values, problems = _values(form)
            try:
                if problems:
                    raise ValidationFailed("；".join(problems.values()), problems)
                save_settings(values, by=current_user.username)
            except ValidationFailed as exc:
                for name, message in exc.fields.items():
                    if hasattr(form, name):
                        getattr(form, name).errors = [str(message)]
                flash(str(exc), "error")
            else:
                flash(_("会员设置已保存，客户会员等级已按新规则更新"), "success")
                return redirect(self.get_url(".index"))
        return self.render("admin/loyalty_settings.html", form=form, grades=GRADES)

    @expose("/redeem/<customer_id>", methods=("POST",))
    def redeem(self, customer_id):
        """兑换 from the archive: back to it with the outcome (a short balance refused, nothing written)."""
        if not SecureForm(request.form).validate():
            flash(_("页面已过期，请刷新后重试"), "error")
        else:
            actor = current_actor()
            try:
                account = loyalty.redeem_for(customer_id, request.form.get("points"), request.form.get("reason"),
                                             actor.access, actor.user_id)
            except ValidationFailed as exc:
                flash(_("兑换未完成：%(problems)s", problems="；".join(map(str, exc.fields.values()))), "error")
            except DomainError as exc:
                abort(404 if exc.code == "not_found" else 403, str(exc.message))
            else:
                flash(_("兑换成功，积分余额 %(balance)s", balance=account["points"]), "success")
        return redirect(url_for("customers.archive_view", customer_id=customer_id))
