"""Changing record types: ``save_definition`` is the only way a definition changes, and the shipped packs
(``schemas/*.yaml``) are loaded through it.

It validates the whole definition (its own keys, its fields through their field types, every registered section
through ``kefu.records.sections``), refuses type changes that would not convert stored values, converts the rest,
rebuilds search grams when the searched fields changed, and bumps ``version`` so every web process picks the
change up on its next request.
"""
from __future__ import annotations

import re

import yaml

from kefu.core import background
from kefu.core.clock import utcnow
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l
from kefu.records import choice_migrations, sections
from kefu.records.choice_changes import RENAME_KEY, carry_over_choices, rename_problem, rules_problem
from kefu.records.fields import FIELD_FLAGS, FIELD_KEY_PATTERN, FIELD_OPTIONS, FIELD_TYPES, FieldSpec
from kefu.records.menu_groups import SCHEMAS_DIR, is_menu_group, shipped_packs
from kefu.records.migrations import convert_field_values, records_holding, records_not_converting
from kefu.records.search import reindex_search
from kefu.records.types import FieldDefinition, RecordType, no_such_type, summaries_changed

TYPE_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# Type keys a route under /api/v1/types/ takes for itself (GET /api/v1/types/schema would hide a type so keyed).
RESERVED_TYPE_KEYS = frozenset({"schema"})
NUMBER_PREFIX_PATTERN = re.compile(r"^[A-Z]{1,6}$")

# Keys every record has besides its configured fields; a configured field may not take them.
RESERVED_FIELD_KEYS = frozenset({
    "id", "type", "number", "status", "assignee", "department", "customer", "version", "data", "pii", "bidx",
    "grams", "created_at", "created_by", "updated_at", "updated_by", "sla", "q", "sort", "page",
    "per_page", "events",
})

# A definition's own keys; its sections (workflow, sla …) are the registered ones (kefu.records.sections).
DEFINITION_KEYS = ("key", "name", "name_en", "number_prefix", "description", "fields")


def _editable_record_type(key: str) -> RecordType:
    """A RecordType of this process's own, to change and save."""
    record_type = RecordType.objects(key=key).first()
    if record_type is None:
        raise no_such_type(key)
    return record_type


def _definition_problems(data: dict, existing: RecordType | None) -> dict[str, str]:
    """Everything wrong with ``data`` (field key, ``fields.<n>``, section key or ``definition`` → message)."""
    problems: dict[str, str] = {}
    unknown = sorted(set(data) - set(DEFINITION_KEYS) - set(sections.section_keys())
                     - {"active", "version", "sort_order", "pack"})
    if unknown:
        problems["definition"] = _l("不认识的项：%(keys)s", keys="、".join(unknown))
    key = data.get("key")
    if not isinstance(key, str) or not TYPE_KEY_PATTERN.match(key):
        problems["key"] = _l("类型键须以小写字母开头，2–40 位小写字母、数字或下划线")
    elif key in RESERVED_TYPE_KEYS:
        problems["key"] = _l("类型键“%(key)s”是系统保留字", key=key)
    elif existing is None and RecordType.objects(key=key).first():
        problems["key"] = _l("类型键“%(key)s”已存在", key=key)
    if not isinstance(data.get("name"), str) or not data.get("name", "").strip():
        problems["name"] = _l("请填写名称")
    prefix = data.get("number_prefix")
    if not isinstance(prefix, str) or not NUMBER_PREFIX_PATTERN.match(prefix):
        problems["number_prefix"] = _l("编号前缀须为 1–6 位大写字母")
    else:
        clash = RecordType.objects(number_prefix=prefix, key__ne=key).first()
        if clash:
            problems["number_prefix"] = _l("编号前缀“%(prefix)s”已被“%(name)s”使用", prefix=prefix, name=clash.name)

    if data.get("pack") and not is_menu_group(data["pack"]):
        problems["pack"] = _l("菜单分组“%(pack)s”不存在", pack=data["pack"])
    if "sort_order" in data and (isinstance(data["sort_order"], bool) or not isinstance(data["sort_order"], int)):
        problems["sort_order"] = _l("菜单中的顺序应为整数")
    problems.update(sections.definition_problems(data))
    fields = data.get("fields")
    if not isinstance(fields, list):
        problems["fields"] = _l("fields 应为字段列表")
        return problems
    seen: set[str] = set()
    for position, field in enumerate(fields, start=1):
        where = f"fields.{position}"
        if not isinstance(field, dict):
            problems[where] = _l("第 %(n)s 个字段格式不正确", n=position)
            continue
        field_key = field.get("key")
        label = field.get("label") or field_key or str(position)
        extra = sorted(set(field) - {"key", "label", "label_en", "type", "active", *FIELD_FLAGS, *FIELD_OPTIONS})
        if extra:
            problems[where] = _l("字段“%(label)s”有不认识的项：%(keys)s", label=label, keys="、".join(extra))
        elif not isinstance(field_key, str) or not FIELD_KEY_PATTERN.match(field_key):
            problems[where] = _l("字段“%(label)s”的键须以小写字母开头，最多 40 位小写字母、数字或下划线", label=label)
        elif field_key in RESERVED_FIELD_KEYS:
            problems[where] = _l("字段键“%(key)s”是系统保留字", key=field_key)
        elif field_key in seen:
            problems[where] = _l("字段键“%(key)s”重复", key=field_key)
        elif not isinstance(field.get("label"), str) or not field["label"].strip():
            problems[where] = _l("字段“%(key)s”缺少名称", key=field_key)
        elif field.get("type") not in FIELD_TYPES:
            problems[where] = _l("字段“%(label)s”的类型“%(type)s”不存在；可用：%(types)s", label=label,
                                 type=field.get("type"), types="、".join(FIELD_TYPES))
        else:
            definition = FieldSpec.of(FieldDefinition(**field))
            type_problems = FIELD_TYPES[field["type"]].check_definition(definition)
            if type_problems:
                problems[where] = "；".join(str(p) for p in type_problems)
        if isinstance(field_key, str):
            seen.add(field_key)
    return problems


def _carry_over_choices(data: dict, existing: RecordType | None) -> tuple[dict, dict[str, dict[str, str]]]:
    """``data`` with every choice field's removed and renamed options carried over (``kefu.records.choice_changes``)
    and the renames asked for (field key → {old: new}); ``ValidationFailed`` for a rename that cannot be done."""
    fields = data.get("fields")
    if not isinstance(fields, list):
        return data, {}
    problems, carried, renames = {}, [], {}
    for position, field in enumerate(fields, start=1):
        if not isinstance(field, dict):
            carried.append(field)
            continue
        old = existing.field(field.get("key")) if existing and isinstance(field.get("key"), str) else None
        if RENAME_KEY in field:
            problem = rename_problem(field, old) or rules_problem(field, data, existing)
            if problem:
                problems[f"fields.{position}"] = problem
                continue
        field, renamed = carry_over_choices(field, old, data["key"]) if existing else (field, {})
        carried.append(field)
        if renamed:
            renames[field["key"]] = renamed
    if problems:
        raise ValidationFailed(_l("记录类型定义有误"), problems)
    return {**data, "fields": carried}, renames


def _type_changes(existing: RecordType, new_fields: list[FieldDefinition]) -> list[tuple[FieldSpec, FieldSpec]]:
    """``(old, new)`` for every field whose type changes; ``ValidationFailed`` at the field for one whose stored
    values would not convert (listing those records), and for a sensitive one that records hold values of (they
    are stored encrypted: not converted)."""
    conversions = []
    for new in map(FieldSpec.of, new_fields):
        old = existing.field(new.key)
        if old is None or old.type == new.type:
            continue
        old_label, new_label = (FIELD_TYPES[old.type].label, FIELD_TYPES[new.type].label)
        if old.sensitive or new.sensitive:
            holding = records_holding(existing.key, old)
            if holding:
                raise ValidationFailed(
                    _l("字段“%(label)s”是敏感信息，已有记录保存了它的值，不能从“%(old)s”改为“%(new)s”：%(records)s",
                       label=new.label, old=old_label, new=new_label, records="、".join(holding)),
                    {new.key: _l("敏感字段已有记录保存了值，不能改类型（可新建一个字段）：%(records)s",
                                 records="、".join(holding))},
                )
        failing = records_not_converting(existing.key, old, new)
        if failing:
            raise ValidationFailed(
                _l("字段“%(label)s”不能从“%(old)s”改为“%(new)s”：以下记录的值无法转换：%(records)s",
                   label=new.label, old=old_label, new=new_label, records="、".join(failing)),
                {new.key: _l("%(n)s 条记录的值无法转换为“%(new)s”，请先修改：%(records)s", n=len(failing),
                             new=new_label, records="、".join(failing))},
            )
        conversions.append((old, new))
    return conversions


def save_definition(data: dict, *, by: str | None = None, key: str | None = None) -> RecordType:
    """Create (``key`` None) or replace the definition ``key``; return the saved type.

    Refuses, with ``ValidationFailed`` naming each problem: bad or duplicate
    keys, reserved keys, a ``pack`` that is no menu group
    (``kefu.records.menu_groups``), a ``sort_order`` that is not a whole
    number, unknown field types, invalid options, a changed
    type key, a field type change whose stored values would not convert
    (listing those records, also under the field's key), a type change of a
    sensitive field that records hold values of, and a choice rename that a
    rule names the old name of. Convertible values are converted in place
    (a value saved meanwhile is left as that save made it).

    No stored value is lost: a field left out is kept, disabled; field keys
    never change (a new label is just a label); a choice removed while records
    hold it stays as an inactive choice; a field's ``rename_choices``
    (``{old: new}``) renames choices and moves the records holding the old
    names in the background (``kefu.records.choice_changes``,
    ``kefu.records.choice_migrations``).
    """
    existing = _editable_record_type(key) if key else None
    searched_before = existing.searched_keys() if existing else ()
    if existing and data.get("key", key) != key:
        raise ValidationFailed(_l("类型键不能修改"), {"key": _l("类型键不能修改")})
    data = {**data, "key": key or data.get("key")}
    data, renames = _carry_over_choices(data, existing)
    problems = _definition_problems(data, existing)
    if problems:
        raise ValidationFailed(_l("记录类型定义有误"), problems)

    new_fields = [FieldDefinition(**field) for field in data["fields"]]
    conversions = []
    if existing:
        # Removed fields are kept, disabled: their stored values stay readable.
        new_keys = {f.key for f in new_fields}
        for old in existing.fields:
            if old.key not in new_keys:
                kept = FieldDefinition(**old.to_mongo().to_dict())
                kept.active = False
                new_fields.append(kept)
        conversions = _type_changes(existing, new_fields)

    record_type = existing or RecordType(key=data["key"])
    record_type.name = data["name"].strip()
    record_type.name_en = data.get("name_en")
    record_type.number_prefix = data["number_prefix"]
    record_type.description = data.get("description")
    record_type.fields = new_fields
    for section in sections.sections():  # an omitted one is kept (the admin's field editor does not send them)
        if section.key in data or not existing:
            setattr(record_type, section.key, data.get(section.key) or section.empty)
    if "active" in data:
        record_type.active = bool(data["active"])
    if "sort_order" in data:
        record_type.sort_order = int(data["sort_order"])
    if "pack" in data:
        record_type.pack = data["pack"] or None
    record_type.version = (existing.version + 1) if existing else 1
    record_type.updated_at = utcnow()
    record_type.updated_by = by
    record_type.save()
    summaries_changed()
    for old, new in conversions:
        convert_field_values(record_type.key, old, new)
    for field_key, renamed in renames.items():
        choice_migrations.start(record_type, field_key, renamed, by=by)
    if existing and (conversions or record_type.searched_keys() != searched_before):
        reindex_search(record_type.key)
    background.record_type_saved.send(record_type.key)
    return record_type


def set_type_active(key: str, active: bool, *, by: str | None = None) -> RecordType:
    """Enable or disable a record type (records are kept either way)."""
    record_type = _editable_record_type(key)
    RecordType.objects(pk=record_type.pk).update_one(
        set__active=active, inc__version=1, set__updated_at=utcnow(), set__updated_by=by)
    summaries_changed()
    record_type.reload()
    background.record_type_saved.send(record_type.key)
    return record_type


def shipped_definitions() -> list[tuple[str, dict]]:
    """``(pack, definition)`` for every template, in the packs' order."""
    found = []
    for pack in shipped_packs():
        for filename in pack["files"]:
            path = SCHEMAS_DIR / pack["key"] / filename
            found.append((pack["key"], yaml.safe_load(path.read_text(encoding="utf-8"))))
    return found


def load_shipped_types() -> list[str]:
    """Create the shipped record types that do not exist yet; return their keys.

    Never touches a type that exists: an admin's later edits win.
    """
    created = []
    existing = set(RecordType.objects.scalar("key"))
    for order, (pack, definition) in enumerate(shipped_definitions()):
        if definition["key"] in existing:
            continue
        save_definition({**definition, "pack": pack, "sort_order": order * 10}, by="schemas")
        created.append(definition["key"])
    return created


def unparsable_types() -> dict[str, str]:
    """Stored record types whose sections the section models refuse (a definition an earlier, looser check let
    through): type key → what is wrong, section by section, for the operator to see at start. Until an admin fixes
    it, such a type answers its pages and API calls with that message (``sections.SectionInvalid``)."""
    found = {}
    for record_type in RecordType.objects.order_by("key"):
        problems = sections.stored_problems(record_type)
        if problems:
            found[record_type.key] = "；".join(f"{key}: {text}" for key, text in problems.items())
    return found
