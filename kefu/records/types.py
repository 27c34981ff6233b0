"""Record types (记录类型): definitions stored in MongoDB, edited in the admin, shipped as YAML — reading them.

A definition is data — key, names, number prefix, an ordered list of field definitions and its sections (workflow,
sla …, ``kefu.records.sections``) — and the same shape is used in ``schemas/*.yaml`` and the JSON API. Changing one
is ``kefu.records.definitions.save_definition``, the only way a definition changes.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from mongoengine import (
    BooleanField, DateTimeField, DynamicDocument, DynamicField, EmbeddedDocument, EmbeddedDocumentListField, IntField,
    ListField, StringField,
)

from kefu.core.clock import utcnow
from kefu.core.errors import NotFound
from kefu.core.i18n import _l
from kefu.core.versioned_cache import NamedCache
from kefu.records import sections
from kefu.records.fields import FIELD_FLAGS, FIELD_OPTIONS, FieldSpec, get_field_type


class FieldDefinition(EmbeddedDocument):
    """One configured field as stored and edited (``save_definition``, the admin's field editor); readers get its
    ``FieldSpec`` (``RecordType.specs``). ``active=False`` hides it from forms and lists but keeps stored values."""

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
    inactive_choices = ListField(StringField(), verbose_name=_l("已停用的可选项"))
    renamed_choices = ListField(ListField(StringField()), verbose_name=_l("已改名的可选项"))
    list = BooleanField(default=False, verbose_name=_l("列表显示"))
    filter = BooleanField(default=False, verbose_name=_l("可筛选"))
    search = BooleanField(default=False, verbose_name=_l("可搜索"))
    sensitive = BooleanField(default=False, verbose_name=_l("敏感信息"))
    readonly = BooleanField(default=False, verbose_name=_l("只读"))
    required_on_close = BooleanField(default=False, verbose_name=_l("关闭时必填"))
    help = StringField(verbose_name=_l("说明"))
    max_size_mb = IntField(verbose_name=_l("单个文件上限(MB)"))
    active = BooleanField(default=True, verbose_name=_l("启用"))

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


class RecordType(DynamicDocument):
    """A kind of record (投诉, 报修 …), its fields and its sections.

    Each registered section (``kefu.records.sections``) is stored under its own top-level key, as plain data
    checked by its ``Section`` on save (the document is dynamic: the registry, not this class, names them);
    read one with ``section_data``, or parsed with ``sections.parsed``."""

    key = StringField(required=True, unique=True, verbose_name=_l("类型键"))
    name = StringField(required=True, verbose_name=_l("名称"))
    name_en = StringField(verbose_name=_l("英文名称"))
    number_prefix = StringField(required=True, unique=True, verbose_name=_l("编号前缀"))
    description = StringField(verbose_name=_l("说明"))
    fields = EmbeddedDocumentListField(FieldDefinition, verbose_name=_l("字段"))
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

    def field(self, key: str) -> FieldSpec | None:
        """The configured field with this key, active or not."""
        return self.derived("fields_by_key", self.specs,
                            lambda specs: {spec.key: spec for spec in reversed(specs)}).get(key)

    def section_data(self, key: str):
        """The section ``key`` as stored (None when the definition has no such key)."""
        return self._data.get(key)

    def derived(self, name: str, source, build):
        """``build(source)``, kept on this loaded definition while ``source`` (its ``fields`` or a section's
        stored value) is the very same object: assigning new ones rebuilds it. Definitions are loaded per
        request; ``get_record_type`` shares one per stored version, so each is built once per version."""
        cached = self.__dict__.get(f"_derived_{name}")
        if cached is None or cached[0] is not source:
            cached = (source, build(source))
            self.__dict__[f"_derived_{name}"] = cached
        return cached[1]

    @property
    def specs(self) -> tuple[FieldSpec, ...]:
        """The configured fields, active or not, as every reader sees them: built once per loaded definition
        (loops over many records read these instead of MongoEngine's descriptors, where a read is a call)."""
        return self.derived("specs", self.fields, lambda fields: tuple(FieldSpec.of(f) for f in fields))

    @property
    def typed_specs(self) -> tuple:
        """``(spec, field type)`` of every field, as ``specs``."""
        return self.derived("typed_specs", self.specs,
                            lambda specs: tuple((spec, get_field_type(spec.type)) for spec in specs))

    @property
    def active_fields(self) -> list[FieldSpec]:
        """The configured fields in use, in order (as ``specs``)."""
        return [f for f in self.specs if f.active]

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
        for key in sections.section_keys():
            if self.section_data(key):
                shape[key] = self.section_data(key)
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
        raise no_such_type(key)
    loaded = _LOADED.get(key)
    if loaded is None or loaded[0] != stored:
        loaded = _LOADED[key] = (stored, RecordType._from_son(stored))
    return loaded[1]


def no_such_type(key: str) -> NotFound:
    known = "、".join(f"{t.key}（{t.name}）" for t in RecordType.objects(active=True).only("key", "name"))
    return NotFound(_l("没有记录类型“%(key)s”；现有：%(known)s", key=key, known=known or "-"))


def type_summaries() -> tuple[Mapping, ...]:
    """The active record types as menus and pick lists name them, in menu order: ``{key, name, name_en, pack}``
    and what each section adds (``Section.summary``: the levels section adds ``level_field``, ``levels`` — its
    choices — and ``level_order``). No query: as this process holds them (``kefu.core.versioned_cache``: an edit
    made in another process shows within about 2 seconds)."""
    return _type_summaries.get()


def _load_type_summaries() -> tuple[Mapping, ...]:
    """One light query; no definition is parsed."""
    registered = sections.sections()
    projection = {"key": 1, "name": 1, "name_en": 1, "pack": 1, "fields.key": 1, "fields.choices": 1,
                  **{path: 1 for section in registered for path in section.summary_paths}}
    cursor = RecordType._get_collection().find({"active": True}, projection, sort=[("sort_order", 1), ("key", 1)])
    summaries = []
    for stored in cursor:
        summary = {"key": stored["key"], "name": stored["name"], "name_en": stored.get("name_en"),
                   "pack": stored.get("pack") or ""}
        for section in registered:
            summary.update(section.summary(stored.get(section.key), stored.get("fields") or []))
        summaries.append(MappingProxyType(summary))
    return tuple(summaries)


_type_summaries = NamedCache("record_types", _load_type_summaries)


def summaries_changed() -> None:
    """A definition was saved: every process reloads ``type_summaries`` (this one at once, the others within 2 s)."""
    _type_summaries.changed()


def active_record_types() -> list[RecordType]:
    return list(RecordType.objects(active=True))


def type_name(summary: Mapping, locale: str) -> str:
    """A type's name in ``locale`` (a ``type_summaries`` entry): its English name when asked for and set."""
    return summary["name_en"] if locale == "en" and summary["name_en"] else summary["name"]






