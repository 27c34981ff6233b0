"""Admin screen for record types and their fields (the low-code part).

Edits go through ``kefu.records.definitions.save_definition``: the same validation as
the API and the shipped YAML, and a definition version bump that every web
process sees on its next request.

The form keeps Flask-Admin's InlineFieldList contract (``fields-N-key`` …, ordered by
``fields-N-position``); ``templates/admin/record_type_edit.html`` and
``static/kefu_field_grid.js`` show it as a grid of one row per field, and a new
field's key is made from its label when left empty (``kefu.records.field_keys``).
"""
from __future__ import annotations

import re

import yaml
from flask import flash, jsonify, request
from flask_admin import expose
from flask_admin.form import BaseForm, SecureForm
from flask_admin.model.fields import InlineFieldList, InlineFormField
from flask_babel import get_locale
from flask_login import current_user
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Optional

from admin_views.base import SecureModelView
from admin_views.records.rows import field_label
from admin_views.type_rules import RuleEditorMixin
from admin_views.type_templates import TypeTemplatesMixin
from kefu.core.errors import DomainError, ValidationFailed
from kefu.core.i18n import _, _l
from kefu.org.roles import Capability
from kefu.records import choice_migrations, sections
from kefu.records.choice_changes import RENAME_KEY
from kefu.records.definitions import save_definition, set_type_active
from kefu.records.field_keys import field_key_for, rules_naming
from kefu.records.fields import FIELD_FLAGS, FIELD_TYPES
from kefu.records.menu_groups import ensure_menu_group, group_names, menu_group_choices
from kefu.records.sections import section_keys
from kefu.records.types import type_name

SCALAR_OPTIONS = ("default", "min", "max")
RENAME_ARROW = re.compile(r"\s*(?:→|->|=>)\s*")
EDIT_TEMPLATE = "admin/record_type_edit.html"
# The form's own controls a refusal may name (save_definition's problem keys); "fields" is the grid as a whole.
TYPE_CONTROLS = ("key", "name", "name_en", "number_prefix", "description", "pack", "new_group", "sort_order", "rules")


class FieldDefinitionForm(BaseForm):
    position = IntegerField(_l("排序"), validators=[Optional()])
    key = StringField(_l("字段键"), validators=[Optional()], description=_l("留空则按名称自动生成；保存后不能修改"))
    label = StringField(_l("名称"), validators=[InputRequired()])
    label_en = StringField(_l("英文名称"))
    type = SelectField(_l("类型"), choices=lambda: [(name, f"{t.label}（{name}）") for name, t in FIELD_TYPES.items()])
    active = BooleanField(_l("启用"), default=True)
    required = BooleanField(_l("必填"))
    list = BooleanField(_l("列表显示"))
    filter = BooleanField(_l("可筛选"))
    search = BooleanField(_l("可搜索"))
    sensitive = BooleanField(_l("敏感信息"))
    readonly = BooleanField(_l("只读"))
    required_on_close = BooleanField(_l("关闭时必填"))
    choices = TextAreaField(_l("可选项（每行一个）"), description=_l(
        "改名写成“原名 → 新名”：已有记录随之改名（后台进行，进度见记录类型列表）；删去的可选项若仍有记录使用，保留为“已停用”"))
    inactive_choices = TextAreaField(_l("已停用的可选项"), render_kw={"readonly": True}, description=_l(
        "仍有记录使用、新记录不能再选；要重新启用，把它写回可选项"))
    default = StringField(_l("默认值"), description=_l("一个值，或 now（当前时间）/ current_user（当前用户）"))
    min = StringField(_l("最小值"))
    max = StringField(_l("最大值"))
    max_length = IntegerField(_l("最大长度"), validators=[Optional()])
    pattern = StringField(_l("格式（正则）"))
    max_size_mb = IntegerField(_l("单个文件上限(MB)"), validators=[Optional()])
    help = StringField(_l("说明"))


class RecordTypeForm(SecureForm):
    key = StringField(_l("类型键"), validators=[InputRequired()], description=_l("小写字母开头，创建后不能修改，如 complaint"))
    name = StringField(_l("名称"), validators=[InputRequired()])
    name_en = StringField(_l("英文名称"))
    number_prefix = StringField(_l("编号前缀"), validators=[InputRequired()], description=_l("1–6 位大写字母，如 TS"))
    description = TextAreaField(_l("说明"))
    active = BooleanField(_l("启用"), default=True)
    # Its choices are the menu groups of the moment (set per request: RecordTypeView._with_groups); a key no group
    # has is refused by save_definition at this control.
    pack = SelectField(_l("菜单分组"), choices=[], validate_choice=False)
    new_group = StringField(_l("新建分组"), description=_l("填写则新建这个菜单分组并放入其中"))
    sort_order = IntegerField(_l("菜单中的顺序"), validators=[Optional()], description=_l("数字小的在前"))
    fields = InlineFieldList(InlineFormField(FieldDefinitionForm), label=_l("字段"))
    rules = TextAreaField(
        _l("流程与规则（YAML）"), render_kw={"rows": 16, "class": "text-monospace", "spellcheck": "false"},
        description=_l("workflow 状态流转、sla 时限、levels 等级、approvals 审批、callback 回访、reminders 提醒；"
                       "格式见 schemas/README.md。删去一节即取消该规则"))


def _rules_from(text: str) -> dict:
    """The rule sections the rules box spells (each one absent is cleared); ``ValidationFailed`` for bad YAML."""
    try:
        rules = yaml.safe_load(text or "") or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = _("第 %(line)s 行", line=mark.line + 1) if mark else ""
        message = _("流程与规则不是有效的 YAML %(where)s：%(problem)s", where=where,
                    problem=getattr(exc, "problem", None) or str(exc))
        raise ValidationFailed(message, {"rules": message}) from exc
    if not isinstance(rules, dict):
        message = _("流程与规则应为“节名: 内容”，可用的节：%(sections)s", sections="、".join(section_keys()))
        raise ValidationFailed(message, {"rules": message})
    unknown = sorted(set(rules) - set(section_keys()))
    if unknown:
        message = _("流程与规则中不认识的节：%(keys)s；可用：%(sections)s", keys="、".join(map(str, unknown)),
                    sections="、".join(section_keys()))
        raise ValidationFailed(message, {"rules": message})
    return {section: rules.get(section) for section in section_keys()}


def _choices_from(text: str, held=()) -> tuple[list[str], dict[str, str]]:
    """The choices box's lines as choices, and its renames (the new name is a choice). A line is a rename
    "原名 → 新名" (→, -> or =>) when it is not itself one of ``held`` — the names the field's records may hold:
    its stored choices, inactive and renamed ones — its 原名 is one of them and its 新名 is not empty; any other
    line is a choice as written (a choice may contain an arrow)."""
    choices, renames = [], {}
    for line in (text or "").splitlines():
        line = line.strip()
        parts = [part.strip() for part in RENAME_ARROW.split(line, maxsplit=1)]
        if line not in held and len(parts) == 2 and parts[0] in held and parts[1]:
            renames[parts[0]] = parts[1]
            choices.append(parts[1])
        elif line:
            choices.append(line)
    return list(dict.fromkeys(choices)), renames


def _scalar(text: str):
    """A form's text as the YAML scalar it spells: "0" → 0, "一般" → "一般", "" → None."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (str, int, float, bool)) else text


def _held_names(existing, key: str) -> set[str]:
    """The values the records of ``existing``'s field ``key`` may hold (none for a new type or field)."""
    definition = existing.field(key) if existing is not None else None
    if definition is None:
        return set()
    return {*definition.choices, *definition.inactive_choices, *(old for old, _new in definition.renamed_choices)}


def _field_from(data: dict, existing) -> dict:
    """One row of the field grid (its form data) as a field definition dict (YAML/API shape)."""
    field = {"key": (data["key"] or "").strip(), "label": (data["label"] or "").strip(), "type": data["type"]}
    if data.get("label_en"):
        field["label_en"] = data["label_en"].strip()
    for flag in FIELD_FLAGS:
        if data.get(flag):
            field[flag] = True
    if not data.get("active"):
        field["active"] = False
    choices, renames = _choices_from(data.get("choices"), _held_names(existing, field["key"]))
    if choices:
        field["choices"] = choices
    if renames:
        field[RENAME_KEY] = renames
    for option in SCALAR_OPTIONS:
        value = _scalar(data.get(option))
        if value is not None:
            field[option] = value
    for option in ("max_length", "max_size_mb"):
        if data.get(option) is not None:
            field[option] = data[option]
    for option in ("pattern", "help"):
        if (data.get(option) or "").strip():
            field[option] = data[option].strip()
    return field


def _fill_in_keys(form, existing) -> None:
    """Give every grid row left without a key one made from its label (``field_key_for``), unique among the
    form's keys and the stored type's (a field removed from the grid is kept, disabled, under its key); written
    back into the row, so a refused save shows it and finds the row by it."""
    taken = {(entry.form.key.data or "").strip() for entry in form.fields.entries}
    if existing is not None:
        taken |= {field.key for field in existing.fields}
    for entry in form.fields.entries:
        if not (entry.form.key.data or "").strip():
            entry.form.key.data = field_key_for(entry.form.label.data or "", taken)
            taken.add(entry.form.key.data)


def definition_from_form(form, existing=None) -> dict:
    """The definition dict (YAML/API shape) a submitted form describes, fields in ``position`` order (a row
    without a key gets one from its label); ``existing``: the stored type being edited (its fields' names tell a
    rename line from a choice with an arrow). ``pack`` and ``sort_order`` are in it only when the form sent them
    (a form without them keeps the stored ones)."""
    _fill_in_keys(form, existing)
    rows = []
    for index, entry in enumerate(form.fields.entries):
        position = entry.form.position.data
        rows.append((position if position is not None else index * 10, index, _field_from(entry.form.data, existing)))
    definition = {
        "key": (form.key.data or "").strip(), "name": (form.name.data or "").strip(),
        "name_en": (form.name_en.data or "").strip() or None, "number_prefix": (form.number_prefix.data or "").strip(),
        "description": (form.description.data or "").strip() or None, "active": bool(form.active.data),
        "fields": [field for _position, _index, field in sorted(rows, key=lambda row: row[:2])],
        **_rules_from(form.rules.data),
    }
    if form.pack.raw_data:
        definition["pack"] = form.pack.data or ""
    if form.sort_order.data is not None:
        definition["sort_order"] = form.sort_order.data
    return definition


def form_data_of(record_type) -> dict:
    fields = []
    for position, definition in enumerate(record_type.fields, start=1):
        row = definition.to_dict()
        row["position"] = position * 10
        row["active"] = definition.active
        row["choices"] = "\n".join(definition.choices or [])
        row["inactive_choices"] = "\n".join(definition.inactive_choices or [])
        for option in SCALAR_OPTIONS:
            value = getattr(definition, option)
            row[option] = "" if value is None else str(value)
        fields.append(row)
    return {"key": record_type.key, "name": record_type.name, "name_en": record_type.name_en,
            "number_prefix": record_type.number_prefix, "description": record_type.description,
            "active": record_type.active, "pack": record_type.pack or "", "sort_order": record_type.sort_order,
            "fields": fields, "rules": _rules_text(record_type)}


def _rules_text(record_type) -> str:
    stored = record_type.to_mongo().to_dict()  # plain dicts and lists, as YAML can write them
    rules = {section: stored[section] for section in section_keys() if stored.get(section)}
    return yaml.safe_dump(rules, allow_unicode=True, sort_keys=False, width=120) if rules else ""


def _show_at_field(form, definition: dict, problem_key: str, message) -> None:
    """Put a refusal next to the control it is about: ``fields.<n>`` (the n-th field of the definition) on its
    row's key input; one of the type's own controls (``TYPE_CONTROLS``: name, number_prefix, pack, rules …) on
    it; the field's own key — a type change the stored values would not survive (``save_definition``) — on its
    row's type picker. The grid marks and opens a row with an error (``record_type_edit.html``)."""
    keys = [field["key"] for field in definition["fields"]]
    position = problem_key.removeprefix("fields.")
    if position != problem_key and position.isdigit() and 0 < int(position) <= len(keys):
        field_key, subfield = keys[int(position) - 1], "key"
    elif problem_key in TYPE_CONTROLS:
        _add_error(form[problem_key], message)
        return
    else:
        field_key, subfield = problem_key, "type"
    for entry in form.fields.entries:
        if (entry.form.key.data or "").strip() == field_key:
            _add_error(entry.form[subfield], message)
            return


def _add_error(control, message) -> None:
    if str(message) not in map(str, control.errors):
        control.errors = [*control.errors, str(message)]


def grid_rows(form) -> list:
    """The grid's rows (``form.fields.entries``) in ``position`` order: as the user dropped them, also when a
    refused save shows the form again (the entries come back in their index order)."""
    entries = list(enumerate(form.fields.entries))
    entries.sort(key=lambda pair: (pair[1].form.position.data if pair[1].form.position.data is not None
                                   else pair[0] * 10, pair[0]))
    return [entry for _index, entry in entries]


def rules_of(form) -> dict:
    """The rule sections the form's rules box spells ({} while it is not valid YAML of sections)."""
    try:
        return _rules_from(form.rules.data)
    except DomainError:
        return {}


class RecordTypeView(TypeTemplatesMixin, RuleEditorMixin, SecureModelView):
    required_capability = Capability.MANAGE_SYSTEM.value
    can_delete = False  # records keep pointing at their type: disable instead
    form = RecordTypeForm
    create_template = EDIT_TEMPLATE
    edit_template = EDIT_TEMPLATE
    list_template = "admin/record_type_list.html"
    column_list = ("name", "key", "number_prefix", "pack", "active", "version", "updated_at", "updated_by",
                   "migrations")
    column_labels = {"name": _l("名称"), "name_en": _l("英文名称"), "key": _l("类型键"), "number_prefix": _l("编号前缀"),
                     "description": _l("说明"), "pack": _l("菜单分组"), "fields": _l("字段"), "active": _l("启用"),
                     "version": _l("版本"), "updated_at": _l("修改时间"), "updated_by": _l("修改人"),
                     "migrations": _l("可选项改名")}
    column_searchable_list = ("name", "key")
    column_filters = ("active", "pack")
    column_editable_list = ()
    column_default_sort = "sort_order"
    column_formatters = {"name": lambda v, c, m, n: type_name({"name": m.name, "name_en": m.name_en}, str(get_locale())),
                         "fields": lambda v, c, m, n: "、".join(field_label(f) for f in m.fields),
                         "pack": lambda v, c, m, n: group_names(str(get_locale())).get(m.pack, m.pack or ""),
                         "migrations": lambda view, c, m, n: view.migrations_text(m.key)}
    column_details_list = ("name", "name_en", "key", "number_prefix", "description", "pack", "fields", "active",
                           "version", "updated_at", "updated_by")

    def create_form(self, obj=None):
        form = self._with_groups(super().create_form(obj))
        if request.method != "POST" and form.pack.choices:
            form.pack.data = form.pack.choices[0][0]  # a new type goes under a group, not the generic 记录 menu
        return form

    def edit_form(self, obj=None):
        if request.method == "POST":
            return self._with_groups(self._edit_form_class(request.form))
        form = self._with_groups(self._edit_form_class(data=form_data_of(obj)))
        form.key.render_kw = {"readonly": True}
        return form

    @staticmethod
    def _with_groups(form):
        """``form`` with the menu groups as its 菜单分组 choices, and 不分组 (the 记录 menu) last."""
        form.pack.choices = [*menu_group_choices(str(get_locale())), ("", _("不分组（列在“记录”菜单下）"))]
        return form

    def render(self, template, **kwargs):
        """The create and edit pages get what the field grid and the rule editors need."""
        if template == EDIT_TEMPLATE:
            form, model = kwargs["form"], kwargs.get("model")
            rules = rules_of(form)
            rows = grid_rows(form)
            kwargs.update(
                field_rows=rows, stored_keys=[field.key for field in model.fields] if model is not None else [],
                field_template=FieldDefinitionForm(prefix="fields-__index__-"),
                type_options={name: list(field_type.options) for name, field_type in FIELD_TYPES.items()},
                field_uses={key: rules_naming(rules, key) for key in
                            {(entry.form.key.data or "").strip() for entry in rows} - {""}},
                **self.rule_editor_args(form, model))
        return super().render(template, **kwargs)

    @expose("/field_key")
    def field_key_view(self):
        """``{"key": …}``: the key a new field labelled ``?label=`` would get, given the keys ``?taken=a,b`` (the
        grid's other rows and the stored type's fields) — the grid fills a new row's key input with it."""
        taken = [key for key in (request.args.get("taken") or "").split(",") if key]
        return jsonify(key=field_key_for(request.args.get("label", "")[:200], taken))

    def get_list(self, *args, **kwargs):
        """The page of types, with the latest choice renames of each (one query)."""
        count, types = super().get_list(*args, **kwargs)
        self._migrations = choice_migrations.latest_by_type(t.key for t in types)
        return count, types

    def migrations_text(self, type_key: str) -> str:
        """The latest choice renames of the type and how far moving its records got ("" for none)."""
        return "；".join(m.summary() for m in getattr(self, "_migrations", {}).get(type_key, []))

    def _save(self, form, model=None):
        definition = None
        try:
            definition = definition_from_form(form, model)
            if (form.new_group.data or "").strip():
                definition["pack"] = form.pack.data = ensure_menu_group(form.new_group.data,
                                                                         by=current_user.username)
                self._with_groups(form)
            saved = save_definition(definition, by=current_user.username, key=model.key if model else None)
        except DomainError as exc:
            self._refused(form, definition, exc)
            return None
        for field in definition["fields"]:
            if field.get(RENAME_KEY):
                flash(_("“%(label)s”的可选项已改名，已有记录正在后台更新（进度见记录类型列表）", label=field["label"]),
                      "info")
        return saved

    @staticmethod
    def _refused(form, definition, exc: DomainError) -> None:
        """Say why a save was refused: in a banner, and each problem at its control (a field's row, the type's
        own inputs, a rule editor's value through ``form.rule_problems``: path → message)."""
        flash(str(exc), "error")
        for problem_key, message in exc.fields.items():  # each problem names its field by label
            _show_at_field(form, definition or {"fields": []}, problem_key, message)
            if str(message) not in str(exc):
                flash(str(message), "error")
        if definition is not None:
            form.rule_problems = sections.problem_paths(definition)

    def create_model(self, form):
        return self._save(form) or False

    def update_model(self, form, model):
        saved = self._save(form, model)
        if saved is None:
            return False
        if saved.active != bool(form.active.data):
            set_type_active(model.key, bool(form.active.data), by=current_user.username)
        return True

    def get_save_return_url(self, model, is_created=False):
        return self.get_url(".index_view")
