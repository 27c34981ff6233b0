"""Record types made from others (从模板新建) and carried between installations as YAML files (导出 / 导入).

- ``copy_type`` makes a new type from a definition (a shipped template from ``schemas/``, or an existing type),
  ``copy_pack`` a new type of each of several; the user names the copy, its key and number prefix are generated
  when left empty, and it goes into a menu group (``kefu.records.menu_groups``) at a place in it (``sort_order``).
- ``type_document`` / ``pack_document`` are what an export writes: one definition in the shape of
  ``schemas/README.md`` (the API's, without its ``version``), or a menu group and its types as
  ``{pack: {key, name, name_en}, types: [...]}``; ``import_yaml`` reads either back, creating new types and
  replacing existing ones.

Every type is written by ``save_definition``, the only write path: a copy or an import is checked like any edit.
"""
from __future__ import annotations

import copy
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml
from pypinyin import Style, lazy_pinyin

from kefu.core.errors import NotFound, ValidationFailed
from kefu.core.i18n import _l, in_user_language
from kefu.records.definitions import (
    NUMBER_PREFIX_PATTERN, RESERVED_TYPE_KEYS, TYPE_KEY_PATTERN, save_definition, shipped_definitions,
)
from kefu.records.field_keys import pinyin_key
from kefu.records.menu_groups import ensure_menu_group, menu_groups
from kefu.records.types import RecordType

ORDER_STEP = 10  # the gap left between neighbours in a menu, so a type can later be put between them
# What the engine keeps about values records hold; a copy holds no records, so it starts without them.
ENGINE_KEPT_OPTIONS = ("inactive_choices", "renamed_choices")


# -- keys, prefixes and places ----------------------------------------------------------------------------------

def _initials(text: str | None) -> list[str]:
    """The words of ``text``: each Chinese character's first pinyin letter, other runs as written."""
    return [word for word in lazy_pinyin((text or "").strip(), style=Style.FIRST_LETTER) if word.strip()]


def new_type_key(name: str | None = None, base: str | None = None) -> str:
    """An unused type key: ``base`` followed by ``_2``, ``_3`` … (a copy of ``base``), else the name's pinyin
    ("装修巡检" → ``zhuang_xiu_xun_jian``, then ``_2`` …), else ``type_N``."""
    used = set(RecordType.objects.scalar("key")) | RESERVED_TYPE_KEYS
    stem = base[:36] if base else pinyin_key(name, 36)  # room for a "_N" within the 40 characters
    if not TYPE_KEY_PATTERN.match(stem or ""):
        stem = "type"
    elif not base and stem not in used:
        return stem
    number = 2 if stem != "type" else 1
    while f"{stem}_{number}" in used:
        number += 1
    return f"{stem}_{number}"


def new_number_prefix(name: str | None = None, base: str | None = None) -> str:
    """An unused number prefix (1–6 capital letters): the initials of the name's pinyin ("装修巡检" → ``ZXXJ``), else
    ``base`` (the source's prefix), each as it is or followed by a letter or two (ZXXJA, ZXXJB …)."""
    used = set(RecordType.objects.scalar("number_prefix"))
    initials = "".join(w[0] for w in _initials(name) if w[0].isascii() and w[0].isalpha()).upper()
    for stem in (initials[:4], base or "", "T"):
        if not NUMBER_PREFIX_PATTERN.match(stem):
            continue
        stem = stem[:4]
        for suffix in ("", *string.ascii_uppercase, *(a + b for a in string.ascii_uppercase
                                                      for b in string.ascii_uppercase)):
            if stem + suffix not in used:
                return stem + suffix
    raise ValidationFailed(_l("没有可用的编号前缀，请填写一个"), {"number_prefix": _l("没有可用的编号前缀，请填写一个")})


def group_types(pack: str | None) -> list[tuple[str, str, int]]:
    """``(key, name, sort_order)`` of the types in menu group ``pack``, in menu order (disabled ones too), named
    in the user's language."""
    types = RecordType.objects(pack=pack or None).only("key", "name", "name_en", "sort_order").order_by(
        "sort_order", "key")
    return [(t.key, in_user_language(t.name, t.name_en), t.sort_order or 0) for t in types]


def sort_order_after(pack: str | None, after: str | None) -> int:
    """The ``sort_order`` that puts a type first in group ``pack`` (``after`` None) or right after its type
    ``after`` (between it and the next one). ``ValidationFailed`` when ``after`` is not in the group."""
    listed = group_types(pack)
    orders = [order for _key, _name, order in listed]
    if after is None:
        return orders[0] - ORDER_STEP if orders else 0
    keys = [key for key, _name, _order in listed]
    if after not in keys:
        message = _l("类型“%(key)s”不在所选的菜单分组里", key=after)
        raise ValidationFailed(message, {"sort_order": message})
    index = keys.index(after)
    if index + 1 == len(orders):
        return orders[index] + ORDER_STEP
    return (orders[index] + orders[index + 1] + 1) // 2  # the next one when there is no gap: then keys decide


def last_sort_order(pack: str | None) -> int:
    """The ``sort_order`` that puts a type last in group ``pack``."""
    listed = group_types(pack)
    return listed[-1][2] + ORDER_STEP if listed else 0


# -- copies -----------------------------------------------------------------------------------------------------

def template_definition(source: str) -> dict:
    """The definition ``source`` names: ``shipped:<key>`` (a template of ``schemas/``) or ``type:<key>`` (an
    existing type, as stored). ``NotFound`` for any other."""
    kind, _sep, key = (source or "").partition(":")
    if kind == "shipped":
        for _pack, definition in shipped_definitions():
            if definition["key"] == key:
                return copy.deepcopy(definition)
    elif kind == "type":
        record_type = RecordType.objects(key=key).first()
        if record_type is not None:
            return type_document(record_type)
    raise NotFound(_l("没有模板“%(source)s”", source=source))


def _copied(source: Mapping) -> dict:
    """``source`` as a new type's definition: its own fields and rules, without its identity, its place, the fields
    it disabled and the choices its records held."""
    definition = {key: copy.deepcopy(value) for key, value in source.items()
                  if key not in ("key", "name", "name_en", "number_prefix", "active", "version", "pack", "sort_order")}
    fields = []
    for item in definition.get("fields") or []:
        if isinstance(item, Mapping) and item.get("active", True):
            fields.append({k: v for k, v in item.items() if k not in ENGINE_KEPT_OPTIONS})
    definition["fields"] = fields
    return definition


def copy_type(source: Mapping, *, name: str, pack: str | None, key: str | None = None, name_en: str | None = None,
              number_prefix: str | None = None, sort_order: int | None = None, by: str | None = None) -> RecordType:
    """A new type with the fields and rules of the definition ``source``, named ``name`` (``name_en``), in menu
    group ``pack`` at ``sort_order`` (None: last in it). ``key`` and ``number_prefix``, when empty, are generated
    (``new_type_key``, ``new_number_prefix``). ``ValidationFailed`` as ``save_definition``'s."""
    name_en = (name_en or "").strip() or None
    definition = {
        **_copied(source), "name": (name or "").strip(), "name_en": name_en, "pack": pack or None,
        "key": (key or "").strip() or new_type_key(name),
        "number_prefix": (number_prefix or "").strip() or new_number_prefix(name, source.get("number_prefix")),
        "sort_order": last_sort_order(pack) if sort_order is None else sort_order,
    }
    return save_definition(definition, by=by)


@dataclass
class Outcome:
    """What a copy of several types or an import did: the types created and replaced (``(key, name)``), and those
    refused, each with why (``(key or 第 N 个, message)``) — nothing else was written."""

    created: list[tuple[str, str]] = field(default_factory=list)
    updated: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _why(exc: ValidationFailed) -> str:
    """The problems of a refused definition (each message names what it is about)."""
    return "；".join(dict.fromkeys(str(text) for text in exc.fields.values())) or str(exc)


def copy_pack(sources: list[Mapping], *, pack: str, by: str | None = None) -> Outcome:
    """A new type of each definition of ``sources`` (a pack's templates, or a group's types), appended to menu
    group ``pack`` in their order, under their own names, keys ``<source key>_2`` … and generated prefixes. A type
    refused does not stop the others (``Outcome.failed`` names it and why)."""
    outcome, order = Outcome(), last_sort_order(pack)
    for source in sources:
        try:
            saved = copy_type(source, name=source.get("name", ""), name_en=source.get("name_en"), pack=pack,
                              key=new_type_key(base=source.get("key")), sort_order=order, by=by)
        except ValidationFailed as exc:
            outcome.failed.append((source.get("key") or source.get("name") or "?", _why(exc)))
            continue
        outcome.created.append((saved.key, saved.name))
        order += ORDER_STEP
    return outcome


def pack_templates(pack: str) -> list[dict]:
    """The definitions of menu group ``pack``: a shipped pack's templates (``schemas/``), else the group's types."""
    shipped = [copy.deepcopy(d) for p, d in shipped_definitions() if p == pack]
    return shipped or [type_document(t) for t in RecordType.objects(pack=pack).order_by("sort_order", "key")]


# -- YAML -------------------------------------------------------------------------------------------------------

def _plain(value):
    """Stored data (MongoEngine's dict and list subclasses) as plain dicts and lists, as YAML writes them."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def type_document(record_type: RecordType) -> dict:
    """The definition as exported: the shape of ``schemas/*.yaml`` and the API, without the installation's
    ``version``."""
    return _plain({k: v for k, v in record_type.to_dict().items() if k != "version"})


def pack_document(pack: str) -> dict:
    """Menu group ``pack`` and its types (disabled ones too), in menu order: ``{pack: {...}, types: [...]}``.
    ``NotFound`` for an unknown group."""
    group = next((g for g in menu_groups() if g["key"] == pack), None)
    if group is None:
        raise NotFound(_l("菜单分组“%(pack)s”不存在", pack=pack))
    types = RecordType.objects(pack=pack).order_by("sort_order", "key")
    return {"pack": {k: group[k] for k in ("key", "name", "name_en") if group[k]},
            "types": [type_document(t) for t in types]}


def to_yaml(document: Mapping) -> str:
    return yaml.safe_dump(_plain(document), allow_unicode=True, sort_keys=False, width=120)


def _parsed(text: str):
    """The YAML document ``text``; ``ValidationFailed`` (at ``file``) naming the line of a syntax error."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        message = _l("文件不是有效的 YAML（第 %(line)s 行）：%(problem)s", line=mark.line + 1 if mark else "?",
                     problem=getattr(exc, "problem", None) or str(exc))
        raise ValidationFailed(message, {"file": message}) from exc


def _entries(document) -> tuple[dict | None, list]:
    """``(pack, definitions)`` of a parsed file: a pack file, or one definition; ``ValidationFailed`` (at
    ``file``) for anything else, or for entries that are not definitions with a key — before anything is written."""
    if isinstance(document, Mapping) and "types" in document:
        pack, types = document.get("pack"), document.get("types")
        if not isinstance(pack, Mapping) or not isinstance(pack.get("name"), str) or not isinstance(types, list) \
                or not all(isinstance(pack.get(part), str | None) for part in ("key", "name_en")):
            message = _l("分组文件应为 pack:（含 key、name）和 types:（类型列表）")
            raise ValidationFailed(message, {"file": message})
    elif isinstance(document, Mapping) and "key" in document:
        pack, types = None, [document]
    else:
        message = _l("文件应为一个记录类型定义（含 key、name、fields），或一个分组（pack: 和 types:）")
        raise ValidationFailed(message, {"file": message})
    problems, seen = [], set()
    for position, entry in enumerate(types, start=1):
        key = entry.get("key") if isinstance(entry, Mapping) else None
        if not isinstance(key, str) or not TYPE_KEY_PATTERN.match(key):
            problems.append(str(_l("第 %(n)s 个类型缺少有效的类型键（key）", n=position)))
        elif key in seen:
            problems.append(str(_l("类型键“%(key)s”在文件中出现了两次", key=key)))
        seen.add(key)
    if problems:
        message = _l("文件未导入：%(problems)s", problems="；".join(problems))
        raise ValidationFailed(message, {"file": message})
    return pack, types


def import_yaml(text: str, *, pack: str | None = None, by: str | None = None) -> Outcome:
    """Create or replace the types the YAML ``text`` defines (``save_definition`` each: a replaced type keeps the
    fields the file leaves out, disabled). A pack file's types go into its group (found by key or name, else
    created under its key), new ones appended in the file's order; one definition into group ``pack`` when given
    (a new one without it: no group). A file that is not YAML, or not a definition or pack file, writes nothing;
    otherwise a type refused does not stop the others (``Outcome.failed`` names each and why)."""
    group, entries = _entries(_parsed(text))
    if group is not None:
        pack = ensure_menu_group(group["name"], key=group.get("key"), name_en=group.get("name_en"), by=by)
    outcome, order = Outcome(), last_sort_order(pack) if pack else None
    for entry in entries:
        existing = RecordType.objects(key=entry["key"]).only("key").first()
        definition = {k: v for k, v in entry.items() if k not in ("version", "pack", "sort_order")}
        if pack:
            definition["pack"] = pack
        if pack and existing is None:
            definition["sort_order"] = order
        try:
            saved = save_definition(definition, by=by, key=entry["key"] if existing else None)
        except ValidationFailed as exc:
            outcome.failed.append((entry["key"], _why(exc)))
            continue
        (outcome.updated if existing else outcome.created).append((saved.key, saved.name))
        if pack and existing is None:
            order += ORDER_STEP
    return outcome
