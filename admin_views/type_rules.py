"""The rule-section form editors of the record-type screen: what the page's editors are built from and
the two routes they call while the admin edits.

The editors (``templates/admin/_rule_editor.html``, ``static/kefu_rule_editor.js``) are rendered from the sections'
JSON Schemas (``kefu.records.sections``: titles in the reader's language, ``x-kefu-picker`` hints from
``kefu.rules.shapes.picker``); on submit they write the sections into the form's rules box as JSON, which the view
parses as YAML like anything typed there. A pack's scheduled duties are not a section of a type: their days and
times are edited on 系统设置 → 定时任务 (``admin_views.schedules``).
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import yaml
from flask import current_app, jsonify, request
from flask_admin import expose
from flask_wtf.csrf import CSRFError

from kefu.calendar.workcalendar import get_calendar
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _, in_user_language
from kefu.records.sections import sections
from kefu.records.timeline import EVENT_KINDS, MANUAL_EVENT_KINDS
from kefu.records.types import RecordType
from kefu.rules.clock_preview import preview_clock
from kefu.rules.level_rules import RULE_TITLES
from kefu.rules.shapes import PICKED_KINDS, Window
from kefu.rules.workflow import DEFAULT_STATUSES

MAX_RULES_TEXT = 200_000  # characters of rules text the 高级 box converts


def _words() -> dict:
    """The editors' own words (buttons, hints), in the reader's language."""
    return {
        "add_status": _("添加状态"), "status_name": _("状态名称"), "kind": _("类型"), "open": _("进行中"),
        "pausing": _("暂停（时限停止计时）"), "closed": _("关闭"), "transitions": _("允许的转换（行：从；列：到）"),
        "any_move": _("一个都不勾选：任意状态之间都可转换"), "default_workflow": _("未设置：使用默认流程 %(statuses)s",
                                                                  statuses=" → ".join(DEFAULT_STATUSES)),
        "customise": _("自定义"), "enabled": _("启用"), "remove": _("删除"), "up": _("上移"), "down": _("下移"),
        "add_clock": _("添加时限"), "clock_name": _("时限名称"), "start": _("开始于"),
        "created": _("受理/登记时"), "field_prefix": _("字段："), "status_became": _("状态变为“%(status)s”"),
        "field_became": _("“%(field)s”变为“%(value)s”"), "field_filled": _("“%(field)s”首次填写"),
        "notify_at_start": _("开始时通知（审批职务或角色）"),
        "within": _("时限"), "by_level": _("按等级另定时限"), "add_level_window": _("添加等级"),
        "when": _("适用条件（都满足才计时）"), "done_when": _("完成条件"), "add_condition": _("添加条件"),
        "filled": _("已填写（任意值）"), "until": _("约定期限字段（填写后即为截止时间）"), "none": _("（无）"),
        "due_soon": _("提前预警（不填：时限的最后 20%，至少 2 小时）"), "sample": _("示例开始时间"),
        "preview_failed": _("预览失败，请稍后重试"), "add_rule": _("添加升级规则"),
        "rule_kind": _("规则"), "add_band": _("添加档位"), "add_entry": _("添加一条"), "order": _("等级顺序（由低到高）"),
        "missing": _("%(value)s（不存在）"),
        "advanced": _("高级（YAML）"), "back_to_form": _("返回表单"), "yaml_hint": _(
            "可查看、粘贴 YAML，或从别处复制；返回表单时按 YAML 重建各规则"), "yaml_broken": _("规则文本不是有效的 YAML，请在“高级（YAML）”中修改"),
        "pairs_hint": _("每行一项：字段 = 值"), "words_hint": _("多个用顿号或逗号分隔"), "field_value": _("值"),
        "section_problem": _("此规则有误："), "key": _("键"), "auto_key": _("自动生成"),
    }


def _plain_rules(text) -> tuple[dict | None, str | None]:
    """The sections the rules box spells, for the editors to start from; ``(None, message)`` when it is not a
    mapping of sections (the 高级 box is shown with the text, the view refuses it on save as it always has)."""
    try:
        rules = yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        return None, _("规则文本不是有效的 YAML，请在“高级（YAML）”中修改")
    if not isinstance(rules, dict):
        return None, _("规则文本不是有效的 YAML，请在“高级（YAML）”中修改")
    return rules, None


def _json_safe(value):
    """``value`` as JSON can hold it (YAML may give dates and times; the editors show them as text)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


class RuleEditorMixin:
    """Routes and template arguments of the rule editors, mixed into ``RecordTypeView``."""

    def rule_editor_args(self, form, record_type=None) -> dict:
        """``rule_editor``: what ``_rule_editor.html`` hands its script — the sections (key, title, JSON Schema),
        the rules as the form holds them, the problems of a refused save (path → message, ``form.rule_problems``),
        the pickers' lists and the routes."""
        rules, broken = _plain_rules(form.rules.data)
        tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
        return {"rule_editor": {
            "sections": [{"key": s.key, "title": str(s.title), "schema": s.json_schema()} for s in sections()],
            "rules": _json_safe(rules), "broken": broken,
            "problems": {str(k): str(v) for k, v in (getattr(form, "rule_problems", None) or {}).items()},
            "urls": {"preview": self.get_url(".clock_preview_view"), "text": self.get_url(".rules_text_view")},
            "kinds": {name: list(kind) for name, kind in PICKED_KINDS.items()},
            "event_kinds": [[kind, str(EVENT_KINDS[kind])] for kind in MANUAL_EVENT_KINDS],
            "record_types": [[t.key, in_user_language(t.name, t.name_en)]
                             for t in RecordType.objects.only("key", "name", "name_en").order_by("sort_order")
                             if record_type is None or t.key != record_type.key],
            "core_fields": [["status", _("状态")], ["assignee", _("负责人")], ["department", _("部门")],
                            ["customer", _("客户")]],
            "rule_titles": {key: str(title) for key, title in RULE_TITLES.items()},
            "units": {unit: str(Window.model_fields[unit].title) for unit in Window.units},
            "default_statuses": list(DEFAULT_STATUSES),
            "sample": datetime.now(tz).strftime("%Y-%m-%dT%H:%M"),
            "words": _words(),
        }}

    @staticmethod
    def _refuse_without_token():
        """The editors' POSTs carry the page's CSRF token in ``X-CSRFToken``; a JSON 400 when they do not."""
        try:
            current_app.extensions["kefu_csrf"].protect()
        except CSRFError:
            return jsonify(error=_("页面已过期，请刷新后重试")), 400
        return None

    @expose("/clock_preview/", methods=("POST",))
    def clock_preview_view(self):
        """``{"start", "lines": [{"level", "text", "due_at", "skipped" …}]}``: a clock's deadline from a sample
        start on the company calendar (``kefu.rules.clock_preview``); 400 ``{"error", "fields"}`` for what cannot
        be previewed."""
        refused = self._refuse_without_token()
        if refused is not None:
            return refused
        tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
        try:
            return jsonify(preview_clock(request.get_json(silent=True), get_calendar(), tz))
        except ValidationFailed as exc:
            return jsonify(error=str(exc), fields={k: str(v) for k, v in exc.fields.items()}), 400

    @expose("/rules_text/", methods=("POST",))
    def rules_text_view(self):
        """The 高级 box's conversions: ``{"rules": {…}}`` → ``{"text": YAML}``; ``{"text": …}`` → ``{"rules": {…}}``
        (400 ``{"error"}`` when the text is not YAML of sections)."""
        refused = self._refuse_without_token()
        if refused is not None:
            return refused
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        if isinstance(body.get("rules"), dict):
            rules = {key: value for key, value in body["rules"].items() if value not in (None, {}, [])}
            text = yaml.safe_dump(rules, allow_unicode=True, sort_keys=False, width=120) if rules else ""
            return jsonify(text=text)
        text = body.get("text")
        if not isinstance(text, str) or len(text) > MAX_RULES_TEXT:
            return jsonify(error=_("规则文本过长或格式不正确")), 400
        rules, broken = _plain_rules(text)
        if broken:
            return jsonify(error=broken), 400
        known = {s.key for s in sections()}
        unknown = sorted(str(key) for key in rules if key not in known)
        if unknown:
            return jsonify(error=_("流程与规则中不认识的节：%(keys)s；可用：%(sections)s", keys="、".join(unknown),
                                   sections="、".join(s.key for s in sections()))), 400
        return jsonify(rules=_json_safe(rules))
