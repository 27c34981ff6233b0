"""The organisation: departments, and projects with their buildings and units (项目 → 楼栋 → 户位)."""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from bson import ObjectId
from mongoengine import (
    DENY, BooleanField, DateTimeField, DecimalField, Document, IntField, ReferenceField, StringField, ValidationError,
)

from kefu.core.clock import utcnow
from kefu.core.i18n import _l
from kefu.core.versioned_cache import NamedCache


class Department(Document):
    """A department that records are forwarded to (客服中心, 工程部 …)."""

    name = StringField(required=True, unique=True, max_length=40, verbose_name=_l("名称"))
    description = StringField(max_length=200, verbose_name=_l("说明"))
    sort_order = IntField(default=0, verbose_name=_l("排序"))
    active = BooleanField(default=True, verbose_name=_l("启用"))
    created_at = DateTimeField(default=utcnow, verbose_name=_l("创建时间"))

    meta = {"collection": "departments", "ordering": ["sort_order", "name"]}

    def __str__(self) -> str:
        return self.name

    # Departments are written by the admin's stock model screens (save, inline edit, delete): the pick list
    # learns of it here.
    def save(self, *args, **kwargs):
        saved = super().save(*args, **kwargs)
        _active_department_names.changed()
        return saved

    def delete(self, *args, **kwargs):
        super().delete(*args, **kwargs)
        _active_department_names.changed()


def _load_active_department_names() -> Mapping[ObjectId, str]:
    found = Department._get_collection().find({"active": {"$ne": False}}, {"name": 1},
                                              sort=[("sort_order", 1), ("name", 1)])
    return MappingProxyType({d["_id"]: d["name"] for d in found})


_active_department_names = NamedCache("departments", _load_active_department_names)


def active_department_names() -> Mapping[ObjectId, str]:
    """``{id: name}`` of the departments in use, in their order, for pick lists: no query, as this process
    holds it (``kefu.core.versioned_cache``: an edit made in another process shows within about 2 seconds)."""
    return _active_department_names.get()


class Project(Document):
    """A development or property under service (e.g. 杭州龙湖·春江郦城)."""

    name = StringField(required=True, unique=True, max_length=60, verbose_name=_l("项目名称"))
    code = StringField(required=True, unique=True, regex=r"^[A-Z0-9]{2,12}$", verbose_name=_l("项目编码"))
    city = StringField(max_length=20, default="杭州市", verbose_name=_l("城市"))
    district = StringField(max_length=20, verbose_name=_l("区县"))
    address = StringField(max_length=120, verbose_name=_l("地址"))
    handover_date = DateTimeField(verbose_name=_l("交付日期"))
    active = BooleanField(default=True, verbose_name=_l("启用"))
    created_at = DateTimeField(default=utcnow, verbose_name=_l("创建时间"))

    meta = {"collection": "projects", "ordering": ["name"]}

    def __str__(self) -> str:
        return self.name


class Building(Document):
    """A building (楼栋) of a project, named as on site: 3幢."""

    project = ReferenceField(Project, required=True, reverse_delete_rule=DENY, verbose_name=_l("项目"))
    name = StringField(required=True, max_length=20, verbose_name=_l("楼栋"))
    floors = IntField(min_value=1, max_value=200, verbose_name=_l("层数"))
    sort_order = IntField(default=0, verbose_name=_l("排序"))

    meta = {
        "collection": "buildings",
        "ordering": ["project", "sort_order"],
        "indexes": [{"fields": ["project", "name"], "unique": True}],
    }

    def __str__(self) -> str:
        return f"{self.project.name if self.project else ''} {self.name}".strip()


class Unit(Document):
    """A unit (户位) identified as people say it: 3幢2单元1201."""

    project = ReferenceField(Project, required=True, reverse_delete_rule=DENY, verbose_name=_l("项目"))
    building = ReferenceField(Building, required=True, reverse_delete_rule=DENY, verbose_name=_l("楼栋"))
    entrance = StringField(max_length=10, verbose_name=_l("单元"))
    room = StringField(required=True, max_length=10, verbose_name=_l("房号"))
    label = StringField(max_length=40, verbose_name=_l("户位"))
    area = DecimalField(min_value=0, precision=2, verbose_name=_l("建筑面积(㎡)"))
    layout = StringField(max_length=20, verbose_name=_l("户型"))

    meta = {
        "collection": "units",
        "ordering": ["project", "label"],
        "indexes": [{"fields": ["project", "label"], "unique": True}, "building"],
    }

    def clean(self) -> None:
        if self.building and self.project and self.building.project.id != self.project.id:
            raise ValidationError(str(_l("楼栋不属于所选项目")), field_name="building")
        self.label = unit_label(self.building.name if self.building else "", self.entrance, self.room)

    def __str__(self) -> str:
        return f"{self.project.name if self.project else ''} {self.label}".strip()


def unit_label(building_name: str, entrance: str | None, room: str) -> str:
    """The conventional way to say a unit: ``3幢`` + ``2单元`` + ``1201``."""
    return f"{building_name}{entrance or ''}{room}"
