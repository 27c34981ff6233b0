"""记录类型 → 从模板新建, and its YAML (查看 / 导出 / 导入): the routes ``TypeTemplatesMixin`` adds to ``RecordTypeView``
(they run under its access control). Thin adapters over ``kefu.records.type_templates`` and
``kefu.records.menu_groups``: every type is written by ``save_definition``."""
from __future__ import annotations

from flask import Response, flash, redirect, request
from flask_admin import expose
from flask_admin.helpers import get_form_data
from flask_babel import get_locale
from flask_login import current_user
from wtforms import FileField, SelectField, StringField

from admin_views.base import AdminForm
from kefu.core.errors import DomainError, ValidationFailed
from kefu.core.i18n import _, _l, in_user_language
from kefu.records.definitions import shipped_definitions
from kefu.records.menu_groups import ensure_menu_group, group_name, group_names, is_menu_group, menu_groups
from kefu.records.type_templates import (
    copy_pack, copy_type, group_types, import_yaml, last_sort_order, pack_document, pack_templates,
    sort_order_after, template_definition, to_yaml, type_document,
)
from kefu.records.types import RecordType

MAX_IMPORT_BYTES = 2 * 1024 * 1024  # a pack of twenty types is about 100 KB
PLACE_SEPARATOR = "|"  # a place in the menus: "<group>|<the type it follows>" ("<group>|" = first)


class FromTemplateForm(AdminForm):
    # The pickers' choices are set per request; a value not offered is refused with a message of ours.
    source = SelectField(_l("模板"), validate_choice=False, description=_l("行业模板或现有类型；选“整套”则把该分组的每个类型各复制一份（名称不变）"))
    name = StringField(_l("名称"), description=_l("新类型的名称，如 装修巡检"))
    name_en = StringField(_l("英文名称"))
    key = StringField(_l("类型键"), description=_l("留空自动生成；小写字母开头，创建后不能修改"))
    number_prefix = StringField(_l("编号前缀"), description=_l("留空自动生成；1–6 位大写字母"))
    position = SelectField(_l("菜单分组与位置"), validate_choice=False)
    new_group = StringField(_l("或新建分组"), description=_l("填写则放进这个新的菜单分组（已有同名分组时放进该分组）"))


class ImportForm(AdminForm):
    file = FileField(_l("YAML 文件"), description=_l("导出的一个类型或一个分组的文件；已有的类型按文件内容替换（文件中没有的字段保留为停用）"))
    pack = SelectField(_l("菜单分组"), validate_choice=False, description=_l("单个类型放进哪个菜单分组；分组文件按文件中的分组"))


def _source_choices(locale: str) -> dict[str, list[tuple[str, str]]]:
    """The template picker's options in optgroups: each shipped pack (整套, then its templates), then the existing
    types by menu group."""
    names = group_names(locale)
    choices: dict[str, list[tuple[str, str]]] = {}
    for pack, definition in shipped_definitions():
        options = choices.setdefault(_("行业模板 · %(pack)s", pack=names.get(pack, pack)), [])
        if not options:
            options.append((f"pack:{pack}", _("整套：%(pack)s", pack=names.get(pack, pack))))
        options.append((f"shipped:{definition['key']}", in_user_language(definition["name"], definition.get("name_en"))))
    for group in [*names, None]:
        types = group_types(group)
        if types:
            label = _("现有类型 · %(group)s", group=names[group] if group else _("记录"))
            choices[label] = [(f"type:{key}", name) for key, name, _order in types]
    return choices


def _place_choices(locale: str) -> dict[str, list[tuple[str, str]]]:
    """Every place in the menus, by group: first, or right after each of its types."""
    choices = {}
    for group in menu_groups():
        options = [(f"{group['key']}{PLACE_SEPARATOR}", _("放在最前"))]
        options += [(f"{group['key']}{PLACE_SEPARATOR}{key}", _("放在“%(name)s”之后", name=name))
                    for key, name, _order in group_types(group["key"])]
        choices[group_name(group, locale)] = options
    return choices


def _default_place(source: str) -> str:
    """After the type copied, in its group; a shipped template: last in its pack; else last in the first group."""
    kind, _sep, key = source.partition(":")
    record_type = RecordType.objects(key=key).only("key", "pack").first() if kind in ("shipped", "type") else None
    if record_type is not None and record_type.pack:
        return f"{record_type.pack}{PLACE_SEPARATOR}{record_type.key}"
    group = next((p for p, d in shipped_definitions() if d["key"] == key), None) if kind == "shipped" else None
    group = group or (key if kind == "pack" else menu_groups()[0]["key"])
    listed = group_types(group)
    return f"{group}{PLACE_SEPARATOR}{listed[-1][0] if listed else ''}"


def _target(form, by: str) -> tuple[str, int]:
    """The group and ``sort_order`` the form asks for: a new group (created now), else the place picked."""
    if (form.new_group.data or "").strip():
        group = ensure_menu_group(form.new_group.data, by=by)
        return group, last_sort_order(group)
    group, _sep, after = (form.position.data or "").partition(PLACE_SEPARATOR)
    if not is_menu_group(group):
        raise ValidationFailed(_l("请选择菜单分组与位置"), {"position": _l("请选择菜单分组与位置")})
    return group, sort_order_after(group, after or None)


def _show_errors(form, exc: DomainError) -> None:
    """Each problem at the form's control it is about; the others flashed."""
    controls = {"key": form.key, "name": form.name, "number_prefix": form.number_prefix, "pack": form.position,
                "sort_order": form.position, "position": form.position, "new_group": form.new_group}
    for where, message in (exc.fields or {"": exc.message}).items():
        control = controls.get(where)
        if control is not None:
            control.errors = [*control.errors, str(message)]
        else:
            flash(str(message), "error")


def _yaml_download(text: str, filename: str) -> Response:
    return Response(text, mimetype="application/x-yaml",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


class TypeTemplatesMixin:
    """Routes for 从模板新建 and YAML view/export/import, mixed into ``RecordTypeView``."""

    def export_groups(self) -> list[tuple[str, str]]:
        """``(key, name)`` of the menu groups that have types (the list's 导出分组 menu)."""
        used = set(RecordType.objects.distinct("pack"))
        return [(key, name) for key, name in group_names(str(get_locale())).items() if key in used]

    @expose("/from-template/", methods=("GET", "POST"))
    def from_template(self):
        locale, by = str(get_locale()), current_user.username
        form = FromTemplateForm(get_form_data())
        form.source.choices, form.position.choices = _source_choices(locale), _place_choices(locale)
        if request.method == "GET":
            form.source.data = request.args.get("source") or f"shipped:{shipped_definitions()[0][1]['key']}"
            form.position.data = _default_place(form.source.data)
        elif form.validate():
            try:
                return self._copy(form, by)
            except DomainError as exc:
                _show_errors(form, exc)
        return self.render("admin/type_template.html", form=form)

    def _copy(self, form, by: str):
        source = form.source.data or ""
        if not source.startswith("pack:") and not (form.name.data or "").strip():  # before a new group is made
            raise ValidationFailed(_l("请填写名称"), {"name": _l("请填写名称")})
        group, sort_order = _target(form, by)
        if source.startswith("pack:"):
            outcome = copy_pack(pack_templates(source.removeprefix("pack:")), pack=group, by=by)
            if outcome.created:
                flash(_("已新建 %(n)s 个类型：%(names)s", n=len(outcome.created),
                        names="、".join(f"{name}（{key}）" for key, name in outcome.created)), "success")
            for key, why in outcome.failed:
                flash(_("“%(key)s”未复制：%(why)s", key=key, why=why), "error")
            return redirect(self.get_url(".index_view"))
        saved = copy_type(template_definition(source), name=form.name.data, name_en=form.name_en.data,
                          key=form.key.data, number_prefix=form.number_prefix.data, pack=group,
                          sort_order=sort_order, by=by)
        flash(_("已新建“%(name)s”（类型键 %(key)s，编号前缀 %(prefix)s），在菜单“%(group)s”中；可在下面修改它的字段与规则",
                name=saved.name, key=saved.key, prefix=saved.number_prefix,
                group=group_names(str(get_locale()))[group]), "success")
        return redirect(self.get_url(".edit_view", id=str(saved.pk)))

    def _asked_type(self) -> RecordType | None:
        """The record type the request's ``key`` names, or None once the user is told there is none."""
        record_type = RecordType.objects(key=request.args.get("key", "")).first()
        if record_type is None:
            flash(_("没有记录类型“%(key)s”", key=request.args.get("key", "")), "error")
        return record_type

    @expose("/yaml/")
    def view_yaml(self):
        record_type = self._asked_type()
        if record_type is None:
            return redirect(self.get_url(".index_view"))
        return self.render("admin/type_yaml.html", record_type=record_type, text=to_yaml(type_document(record_type)))

    @expose("/export/")
    def export_definition(self):
        record_type = self._asked_type()
        if record_type is None:
            return redirect(self.get_url(".index_view"))
        return _yaml_download(to_yaml(type_document(record_type)), f"{record_type.key}.yaml")

    @expose("/export-pack/")
    def export_pack(self):
        pack = request.args.get("pack", "")
        try:
            document = pack_document(pack)
        except DomainError as exc:
            flash(str(exc), "error")
            return redirect(self.get_url(".index_view"))
        return _yaml_download(to_yaml(document), f"{pack}.yaml")

    @expose("/import/", methods=("GET", "POST"))
    def import_definitions(self):
        locale = str(get_locale())
        form = ImportForm(get_form_data())
        form.pack.choices = [("", _("不指定（已有类型保持原分组）"))] + [
            (g["key"], group_name(g, locale)) for g in menu_groups()]
        outcome = None
        if request.method == "POST" and form.validate():
            try:
                outcome = _import_upload(request.files.get("file"), pack=form.pack.data or None,
                                             by=current_user.username)
            except DomainError as exc:
                form.file.errors = [*form.file.errors, *(str(m) for m in (exc.fields or {"": exc.message}).values())]
            else:
                if outcome.created or outcome.updated:
                    flash(_("已导入：新建 %(created)s 个，替换 %(updated)s 个", created=len(outcome.created),
                            updated=len(outcome.updated)), "success")
                if outcome.failed:
                    flash(_("%(n)s 个类型未导入，见下方原因；其余已导入", n=len(outcome.failed)), "error")
        return self.render("admin/type_yaml_import.html", form=form, outcome=outcome)


def _import_upload(upload, *, pack: str | None, by: str):
    """``import_yaml`` of an uploaded file; ``ValidationFailed`` (at ``file``) for none, one too large or not
    UTF-8 text."""
    from_file = upload.read(MAX_IMPORT_BYTES + 1) if upload is not None and upload.filename else b""
    if not from_file:
        raise ValidationFailed(_l("请选择要导入的 YAML 文件"), {"file": _l("请选择要导入的 YAML 文件")})
    if len(from_file) > MAX_IMPORT_BYTES:
        message = _l("文件超过 %(mb)s MB", mb=MAX_IMPORT_BYTES // (1024 * 1024))
        raise ValidationFailed(message, {"file": message})
    try:
        text = from_file.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = _l("文件不是 UTF-8 编码的文本（请上传导出的 .yaml 文件）")
        raise ValidationFailed(message, {"file": message}) from exc
    return import_yaml(text, pack=pack, by=by)
