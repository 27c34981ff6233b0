"""Record types (记录类型): definitions stored in MongoDB, edited in the admin, shipped as YAML.

A definition is data — key, names, number prefix, and an ordered list of field
definitions — and the same shape is used in ``schemas/*.yaml`` and the JSON
API. ``save_definition`` is the only way a definition changes: it validates the
whole definition, refuses type changes that would not convert stored values,
converts the rest, and bumps ``version`` so every web process picks the change
up on its next request.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module
from pathlib import Path
from types import MappingProxyType

import yaml
from mongoengine import (
    BooleanField, DateTimeField, DictField, Document, DynamicField, EmbeddedDocument, EmbeddedDocumentListField,
    IntField, ListField, StringField,
)

from kefu.core.clock import utcnow
from kefu.core.errors import NotFound, ValidationFailed
from kefu.core.i18n import _l
from kefu.core.versioned_cache import NamedCache
from kefu.rules.levels import section_level_field

TYPE_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
FIELD_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
NUMBER_PREFIX_PATTERN = re.compile(r"^[A-Z]{1,6}$")
SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"

# Keys every record has besides its configured fields; a configured field may not take them.
RESERVED_FIELD_KEYS = frozenset({
    "id", "type", "number", "status", "assignee", "department", "customer", "version", "data", "pii", "bidx",
    "grams", "created_at", "created_by", "updated_at", "updated_by", "sla", "q", "sort", "page",
    "per_page", "events",
})

FIELD_FLAGS = ("required", "list", "filter", "search", "sensitive", "readonly", "required_on_close")
FIELD_OPTIONS = ("default", "min", "max", "max_length", "pattern", "choices", "help", "max_size_mb")
# Rule sections of a definition and the module that checks and runs each (``section_problems``).
RULE_SECTIONS = {
    "workflow": "kefu.rules.workflow", "sla": "kefu.rules.sla",
    "levels": "kefu.rules.levels",
    "approvals": "kefu.rules.approvals",
    "callback": "kefu.rules.callbacks",
    "reminders": "kefu.notify.reminders",
}
DEFINITION_KEYS = ("key", "name", "name_en", "number_prefix", "description", "fields", *RULE_SECTIONS)


class FieldDefinition(EmbeddedDocument):
    """One configured field. ``active=False`` hides it from forms and lists but keeps stored values."""

    key = StringField(required=True, verbose_name=_l("字段键"))
    label = StringField(required=True, verbose_name=_l("名称"))
    label_en = StringField(verbose_name=_l("英文名称"))
    type = StringField(required=True, verbose_name=_l("类型"))
    required = BooleanField(default=False, verbose_name=_l("必填"))
    default = DynamicField(verbose_name=_l("默认值"))
    min = DynamicField(verbose_name=_l("最小值"))
    max = DynamicField(verbose_name=_l("最大值"))
    max_length = IntField(verbose_name=_l("最大长度"))
    pattern = StringField(verbose_name=_l("格式（正则）"))
    choices = ListField(StringField(), verbose_name=_l("可选项"))
    list = BooleanField(default=False, verbose_name=_l("列表显示"))
    filter = BooleanField(default=False, verbose_name=_l("可筛选"))
    search = BooleanField(default=False, verbose_name=_l("可搜索"))
    sensitive = BooleanField(default=False, verbose_name=_l("敏感信息"))
    readonly = BooleanField(default=False, verbose_name=_l("只读"))
    required_on_close = BooleanField(default=False, verbose_name=_l("关闭时必填"))
    help = StringField(verbose_name=_l("说明"))
    max_size_mb = IntField(verbose_name=_l("单个文件上限(MB)"))
    active = BooleanField(default=True, verbose_name=_l("启用"))

    @property
    def path(self) -> str:
        """Where the value lives in a record document."""
        return f"data.{self.key}"

    def to_dict(self) -> dict:
        """The YAML/JSON shape: only what is set, flags only when true."""
        shape = {"key": self.key, "label": self.label}
        if self.label_en:
            shape["label_en"] = self.label_en
        shape["type"] = self.type
        for flag in FIELD_FLAGS:
            if getattr(self, flag):
                shape[flag] = True
        for option in FIELD_OPTIONS:
            value = getattr(self, option)
            if value not in (None, "", []):
                shape[option] = value
        if not self.active:
            shape["active"] = False
        return shape


@dataclass(frozen=True)
class FieldSpec:
    """A ``FieldDefinition`` as a plain value (same attribute names), for hot loops."""

    key: str
    label: str
    type: str
    label_en: str | None = None
    required: bool = False
    default: object = None
    min: object = None
    max: object = None
    max_length: int | None = None
    pattern: str | None = None
    choices: tuple = ()
    list: bool = False
    filter: bool = False
    search: bool = False
    sensitive: bool = False
    readonly: bool = False
    required_on_close: bool = False
    help: str | None = None
    max_size_mb: int | None = None
    active: bool = True

    @classmethod
    def of(cls, definition: FieldDefinition) -> "FieldSpec":
        values = {name: getattr(definition, name) for name in cls.__dataclass_fields__}
        values["choices"] = tuple(values["choices"] or ())
        return cls(**values)

    @property
    def path(self) -> str:
        return f"data.{self.key}"


class RecordType(Document):
    """A kind of record (投诉, 报修 …) and its fields."""

    key = StringField(required=True, unique=True, verbose_name=_l("类型键"))
    name = StringField(required=True, verbose_name=_l("名称"))
    name_en = StringField(verbose_name=_l("英文名称"))
    number_prefix = StringField(required=True, unique=True, verbose_name=_l("编号前缀"))
    description = StringField(verbose_name=_l("说明"))
    fields = EmbeddedDocumentListField(FieldDefinition, verbose_name=_l("字段"))
    # Rule sections (RULE_SECTIONS): plain data, checked by their modules on save.
    workflow = DictField(verbose_name=_l("流程"))
    sla = ListField(DictField(), verbose_name=_l("时限"))
    levels = DictField(verbose_name=_l("等级规则"))
    approvals = DictField(verbose_name=_l("审批规则"))
    callback = DictField(verbose_name=_l("回访规则"))
    reminders = DictField(verbose_name=_l("提醒规则"))
    active = BooleanField(default=True, verbose_name=_l("启用"))
    pack = StringField(verbose_name=_l("行业模板"))
    sort_order = IntField(default=0, verbose_name=_l("排序"))
    version = IntField(default=1, verbose_name=_l("版本"))
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow, verbose_name=_l("更新时间"))
    updated_by = StringField(verbose_name=_l("更新人"))

    meta = {"collection": "record_types", "ordering": ["sort_order", "key"], "indexes": ["active"]}

    def __str__(self) -> str:
        return self.name

    def field(self, key: str) -> FieldDefinition | None:
        """The field definition with this key, active or not."""
        return next((f for f in self.fields if f.key == key), None)

    def derived(self, name: str, source, build):
        """``build(source)``, kept on this loaded definition while ``source`` (its ``fields`` or ``workflow``)
        is the very same object: assigning new ones rebuilds it. Definitions are loaded per request."""
        cached = self.__dict__.get(f"_derived_{name}")
        if cached is None or cached[0] is not source:
            cached = (source, build(source))
            self.__dict__[f"_derived_{name}"] = cached
        return cached[1]

    @property
    def specs(self) -> tuple["FieldSpec", ...]:
        """The fields as plain read-only values, built once per loaded definition: loops over many records
        read these instead of MongoEngine's descriptors (an attribute read there costs a method call)."""
        return self.derived("specs", self.fields, lambda fields: tuple(FieldSpec.of(f) for f in fields))

    @property
    def typed_specs(self) -> tuple:
        """``(spec, field type)`` of every field, as ``specs``."""
        from kefu.records.fields import get_field_type

        return self.derived("typed_specs", self.specs,
                            lambda specs: tuple((spec, get_field_type(spec.type)) for spec in specs))

    @property
    def active_fields(self) -> list[FieldDefinition]:
        return [f for f in self.fields if f.active]

    def searched_keys(self) -> tuple[str, ...]:
        """Keys of the fields the search box looks in (``search`` on, not sensitive, active)."""
        return tuple(f.key for f in self.active_fields if f.search and not f.sensitive)

    def to_dict(self) -> dict:
        """The definition in the shape of ``schemas/*.yaml`` and the API."""
        shape = {"key": self.key, "name": self.name}
        if self.name_en:
            shape["name_en"] = self.name_en
        shape["number_prefix"] = self.number_prefix
        if self.description:
            shape["description"] = self.description
        shape["active"] = self.active
        shape["version"] = self.version
        shape["fields"] = [f.to_dict() for f in self.fields]
        for section in RULE_SECTIONS:
            if getattr(self, section):
                shape[section] = getattr(self, section)
        return shape


# key → (the stored document, the RecordType built from it): see get_record_type.
_LOADED: dict[str, tuple[dict, RecordType]] = {}


def get_record_type(key: str, *, active_only: bool = True) -> RecordType:
    """The record type with this key, to read; ``NotFound`` names the known ones.

    Read from MongoDB on every call, but built into a RecordType only when the stored document differs from
    the one this process built last (building one costs several times the query): callers in this process
    share the object, so it must not be changed — ``save_definition`` and ``set_type_active`` are the write
    path, and they load their own.
    """
    stored = RecordType._get_collection().find_one({"key": key})
    if stored is None or (active_only and not stored.get("active", True)):
        raise _no_such_type(key)
    loaded = _LOADED.get(key)
    if loaded is None or loaded[0] != stored:
        loaded = _LOADED[key] = (stored, RecordType._from_son(stored))
    return loaded[1]


def _editable_record_type(key: str) -> RecordType:
    """A RecordType of this process's own, to change and save."""
    record_type = RecordType.objects(key=key).first()
    if record_type is None:
        raise _no_such_type(key)
    return record_type


def _no_such_type(key: str) -> NotFound:
    known = "、".join(f"{t.key}（{t.name}）" for t in RecordType.objects(active=True).only("key", "name"))
    return NotFound(_l("没有记录类型“%(key)s”；现有：%(known)s", key=key, known=known or "-"))


def type_summaries() -> tuple[Mapping, ...]:
    """The active record types as menus and pick lists name them, in menu order: ``{key, name, name_en, pack,
    level_field, levels}`` (the field holding the level, as ``kefu.rules.levels.level_field``, and its choices).
    No query: as this process holds them (``kefu.core.versioned_cache``: an edit made in another process shows
    within about 2 seconds)."""
    return _type_summaries.get()


def _load_type_summaries() -> tuple[Mapping, ...]:
    """One light query; no definition is parsed."""
    cursor = RecordType._get_collection().find(
        {"active": True}, {"key": 1, "name": 1, "name_en": 1, "pack": 1, "levels.field": 1, "fields.key": 1,
                           "fields.choices": 1},
        sort=[("sort_order", 1), ("key", 1)])
    summaries = []
    for stored in cursor:
        level_field = section_level_field(stored.get("levels"))
        level = next((f for f in stored.get("fields") or [] if f.get("key") == level_field), {})
        summaries.append(MappingProxyType({
            "key": stored["key"], "name": stored["name"], "name_en": stored.get("name_en"),
            "pack": stored.get("pack") or "", "level_field": level_field,
            "levels": tuple(level.get("choices") or [])}))
    return tuple(summaries)


_type_summaries = NamedCache("record_types", _load_type_summaries)


def active_record_types() -> list[RecordType]:
    return list(RecordType.objects(active=True))


def _definition_problems(data: dict, existing: RecordType | None) -> dict[str, str]:
    from kefu.records.fields import FIELD_TYPES

    problems: dict[str, str] = {}
    unknown = sorted(set(data) - set(DEFINITION_KEYS) - {"active", "version", "sort_order", "pack"})
    if unknown:
        problems["definition"] = _l("不认识的项：%(keys)s", keys="、".join(unknown))
    key = data.get("key")
    if not isinstance(key, str) or not TYPE_KEY_PATTERN.match(key):
        problems["key"] = _l("类型键须以小写字母开头，2–40 位小写字母、数字或下划线")
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

    for section, module in RULE_SECTIONS.items():
        if data.get(section) not in (None, {}, []):
            section_problems = import_module(module).section_problems(data[section], data)
            if section_problems:
                problems[section] = "；".join(str(p) for p in section_problems)
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
            definition = FieldDefinition(**field)
            type_problems = FIELD_TYPES[field["type"]].check_definition(definition)
            if type_problems:
                problems[where] = "；".join(str(p) for p in type_problems)
        if isinstance(field_key, str):
            seen.add(field_key)
    return problems


def save_definition(data: dict, *, by: str | None = None, key: str | None = None) -> RecordType:
    """Create (``key`` None) or replace the definition ``key``; return the saved type.

    Refuses, with ``ValidationFailed`` naming each problem: bad or duplicate
    keys, reserved keys, unknown field types, invalid options, a changed
    type key, and a field type change whose stored values would not convert
    (listing those records). Convertible values are converted in place.
    """
    from kefu.records.migrations import convert_field_values, records_not_converting
    from kefu.records.search import reindex_search

    existing = _editable_record_type(key) if key else None
    searched_before = existing.searched_keys() if existing else ()
    if existing and data.get("key", key) != key:
        raise ValidationFailed(_l("类型键不能修改"), {"key": _l("类型键不能修改")})
    data = {**data, "key": key or data.get("key")}
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
        for new in new_fields:
            old = existing.field(new.key)
            if old is not None and old.type != new.type:
                failing = records_not_converting(existing.key, old, new)
                if failing:
                    raise ValidationFailed(
                        _l("字段“%(label)s”不能从“%(old)s”改为“%(new)s”：以下记录的值无法转换：%(records)s",
                           label=new.label, old=old.type, new=new.type, records="、".join(failing)),
                        {new.key: _l("%(n)s 条记录的值无法转换", n=len(failing))},
                    )
                conversions.append((old, new))

    record_type = existing or RecordType(key=data["key"])
    record_type.name = data["name"].strip()
    record_type.name_en = data.get("name_en")
    record_type.number_prefix = data["number_prefix"]
    record_type.description = data.get("description")
    record_type.fields = new_fields
    for section in RULE_SECTIONS:  # an omitted section is kept (the admin's field editor does not send them)
        if section in data or not existing:
            empty = [] if isinstance(RecordType._fields[section], ListField) else {}
            setattr(record_type, section, data.get(section) or empty)
    if "active" in data:
        record_type.active = bool(data["active"])
    if "sort_order" in data:
        record_type.sort_order = int(data["sort_order"])
    if "pack" in data:
        record_type.pack = data["pack"]
    record_type.version = (existing.version + 1) if existing else 1
    record_type.updated_at = utcnow()
    record_type.updated_by = by
    record_type.save()
    _type_summaries.changed()
    for old, new in conversions:
        convert_field_values(record_type.key, old, new)
    if existing and (conversions or record_type.searched_keys() != searched_before):
        reindex_search(record_type.key)
    return record_type


def set_type_active(key: str, active: bool, *, by: str | None = None) -> RecordType:
    """Enable or disable a record type (records are kept either way)."""
    record_type = _editable_record_type(key)
    RecordType.objects(pk=record_type.pk).update_one(
        set__active=active, inc__version=1, set__updated_at=utcnow(), set__updated_by=by)
    _type_summaries.changed()
    record_type.reload()
    return record_type


@lru_cache(maxsize=1)
def shipped_packs() -> tuple[dict, ...]:
    """The industry packs listed in ``schemas/packs.yaml`` (key, name, name_en, description, files)."""
    packs = yaml.safe_load((SCHEMAS_DIR / "packs.yaml").read_text(encoding="utf-8"))
    return tuple(packs["packs"])


def type_name(summary: Mapping, locale: str) -> str:
    """A type's name in ``locale`` (a ``type_summaries`` entry): its English name when asked for and set."""
    return summary["name_en"] if locale == "en" and summary["name_en"] else summary["name"]


def pack_names(locale: str = "zh_Hans_CN") -> dict[str, str]:
    """Pack key → its name in ``locale`` (for menus)."""
    english = locale == "en"
    return {p["key"]: (p.get("name_en") if english and p.get("name_en") else p["name"]) for p in shipped_packs()}


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
