"""Menu groups (菜单分组): the navigation menus record types are listed under.

A record type's ``pack`` names its group. The groups are the shipped industry packs (``schemas/packs.yaml``: 房开,
中介, 装修, 商业物业, in that order) followed by the groups admins create (collection ``menu_groups``: key, name,
name_en, sort_order), in their ``sort_order``. A type whose ``pack`` is empty is listed under 记录 after them.

Many pages read the groups (the menu of every page) and few people add one, so each process keeps them
(``kefu.core.versioned_cache``: a group added in another process shows within about 2 seconds).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import yaml
from mongoengine import DateTimeField, Document, IntField, NotUniqueError, StringField

from kefu.core.clock import utcnow
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l
from kefu.core.versioned_cache import NamedCache

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
GROUP_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MAX_NAME_LENGTH = 20  # a menu's title in the navigation bar


class MenuGroup(Document):
    """A menu group an admin created (the shipped packs are not stored: they come from ``schemas/packs.yaml``)."""

    key = StringField(required=True, unique=True, verbose_name=_l("分组键"))
    name = StringField(required=True, verbose_name=_l("名称"))
    name_en = StringField(verbose_name=_l("英文名称"))
    sort_order = IntField(default=0, verbose_name=_l("排序"))
    created_at = DateTimeField(default=utcnow)
    created_by = StringField()

    meta = {"collection": "menu_groups", "ordering": ["sort_order", "key"]}


@lru_cache(maxsize=1)
def shipped_packs() -> tuple[dict, ...]:
    """The industry packs listed in ``schemas/packs.yaml`` (key, name, name_en, description, files)."""
    packs = yaml.safe_load((SCHEMAS_DIR / "packs.yaml").read_text(encoding="utf-8"))
    return tuple(packs["packs"])


def _load_groups() -> tuple[Mapping, ...]:
    shipped = [{"key": p["key"], "name": p["name"], "name_en": p.get("name_en"), "shipped": True}
               for p in shipped_packs()]
    created = [{"key": g.key, "name": g.name, "name_en": g.name_en, "shipped": False} for g in MenuGroup.objects]
    return tuple(MappingProxyType(group) for group in shipped + created)


_groups = NamedCache("menu_groups", _load_groups)


def menu_groups() -> tuple[Mapping, ...]:
    """Every group in menu order: ``{key, name, name_en, shipped}`` (as this process holds them; do not change)."""
    return _groups.get()


def group_name(group: Mapping, locale: str) -> str:
    """A group's name in ``locale``: its English name when asked for and set."""
    return group["name_en"] if locale == "en" and group["name_en"] else group["name"]


def group_names(locale: str) -> dict[str, str]:
    """Group key → its name in ``locale``, in menu order."""
    return {group["key"]: group_name(group, locale) for group in menu_groups()}


def menu_group_choices(locale: str) -> list[tuple[str, str]]:
    """``(key, name in locale)`` of every group, in menu order: the choices of a 菜单分组 picker."""
    return list(group_names(locale).items())


def is_menu_group(key) -> bool:
    return isinstance(key, str) and any(group["key"] == key for group in menu_groups())


def _matching(name: str) -> str | None:
    """The key of the group named ``name`` (its Chinese or English name, or its key; case ignored)."""
    wanted = name.casefold()
    for group in menu_groups():
        if wanted in (group["key"], group["name"].casefold(), (group["name_en"] or "").casefold()):
            return group["key"]
    return None


def _generated_key(name: str, name_en: str | None) -> str:
    """An unused ascii key: the English (or ascii) name spelled as a key when it is one, else ``group_N``."""
    taken = {group["key"] for group in menu_groups()}
    for text in (name_en, name):
        slug = re.sub(r"[^a-z0-9]+", "_", (text or "").casefold()).strip("_")[:40]
        if GROUP_KEY_PATTERN.match(slug) and slug not in taken and text.isascii():
            return slug
    number = len(taken) + 1
    while f"group_{number}" in taken:
        number += 1
    return f"group_{number}"


def ensure_menu_group(name: str, *, by: str | None = None, key: str | None = None,
                      name_en: str | None = None) -> str:
    """The key of the group named ``name`` (its Chinese or English name or its key, case ignored), created
    when there is none: under ``key`` when given and unused (a pack file imported from another installation keeps
    its key), else under a generated ascii key. ``ValidationFailed`` (at ``new_group``) for an empty or too long
    name, or a ``key`` that is not a key."""
    name, name_en = (name or "").strip(), (name_en or "").strip() or None
    if not name:
        raise ValidationFailed(_l("请填写分组名称"), {"new_group": _l("请填写分组名称")})
    if len(name) > MAX_NAME_LENGTH:
        message = _l("分组名称最多 %(n)s 个字", n=MAX_NAME_LENGTH)
        raise ValidationFailed(message, {"new_group": message})
    found = _matching(name) or (_matching(name_en) if name_en else None)
    if found:
        return found
    if key is not None and not GROUP_KEY_PATTERN.match(key):
        message = _l("分组键“%(key)s”须以小写字母开头，2–40 位小写字母、数字或下划线", key=key)
        raise ValidationFailed(message, {"new_group": message})
    if key is None or is_menu_group(key):
        key = _generated_key(name, name_en)
    last = MenuGroup.objects.order_by("-sort_order").first()
    try:
        MenuGroup(key=key, name=name, name_en=name_en, sort_order=(last.sort_order + 10) if last else 10,
                  created_by=by).save()
    except NotUniqueError:  # someone created a group under this key a moment ago: the same one if it has the name
        _groups.clear()
        found = _matching(name)
        if found is None:
            raise ValidationFailed(_l("请重试：刚有人新建了分组"), {"new_group": _l("请重试：刚有人新建了分组")}) from None
        return found
    _groups.changed()
    return key
