"""Field keys for people who never see them: a new field's key made from its label (the label's pinyin,
``回访满意度`` → ``hui_fang_man_yi_du``, or ``field_N`` when the label spells nothing usable), and the rules that
name a field by its key (said before the field is removed)."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from pypinyin import lazy_pinyin

from kefu.core.i18n import _
from kefu.records import sections
from kefu.records.definitions import RESERVED_FIELD_KEYS
from kefu.records.fields import FIELD_KEY_PATTERN

MAX_KEY_LENGTH = 40  # FIELD_KEY_PATTERN: a letter and at most 39 more
NOT_KEY_CHARACTERS = re.compile(r"[^a-z0-9]+")
ENTRY_NAMES = ("key", "name")  # what a rule entry is called by (a clock keyed "plan" does not name field plan)


def pinyin_key(label: str | None, length: int = MAX_KEY_LENGTH) -> str:
    """The label as lower-case pinyin syllables and words joined by "_", cut to ``length`` ("" for none); a key
    only if it starts with a letter."""
    spelled = "_".join(lazy_pinyin((label or "").strip())).lower()
    return NOT_KEY_CHARACTERS.sub("_", spelled).strip("_")[:length].rstrip("_")


def _free(base: str, taken: set[str]) -> str:
    """``base``, else ``base_2``, ``base_3`` … — the first not in ``taken`` (still at most 40 characters)."""
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        suffix = f"_{number}"
        candidate = base[:MAX_KEY_LENGTH - len(suffix)].rstrip("_") + suffix
    return candidate


def field_key_for(label: str, taken: Iterable[str] = ()) -> str:
    """A field key for a field labelled ``label`` that matches ``FIELD_KEY_PATTERN``, is not one of
    ``RESERVED_FIELD_KEYS`` and not in ``taken`` (the type's other keys): the label's pinyin with ``_2``, ``_3`` …
    appended on a collision, or ``field_N`` (the first free N from 1) when the pinyin does not start with a letter
    (an empty label, digits or punctuation only)."""
    unavailable = set(taken) | RESERVED_FIELD_KEYS
    base = pinyin_key(label)
    if FIELD_KEY_PATTERN.match(base):
        return _free(base, unavailable)
    number = 1
    while f"field_{number}" in unavailable:
        number += 1
    return f"field_{number}"


def rules_naming(rules: Mapping, field_key: str) -> list[str]:
    """Where the rule sections ``rules`` (section key → its value as written, e.g. parsed from the type's rules
    text) name the field ``field_key``, each for a person: the section's title, the entry (its ``name`` or
    ``key``, else its ordinal) and the setting (its title in the section's JSON Schema, else its key) —
    "时限“处理完成”的start". A setting names the field by its value (``start: received_at``) or by a key of its
    value (``when: {category: 工程质量}``)."""
    found = []
    for section in sections.sections():
        value = rules.get(section.key) if isinstance(rules, Mapping) else None
        if not value:
            continue
        titles = _setting_titles(section.json_schema())
        for entry, setting in _namings(value, field_key, "", None):
            found.append(_("%(section)s%(entry)s的%(setting)s", section=section.title, entry=entry,
                           setting=titles.get(setting, setting or section.key)))
    return list(dict.fromkeys(found))


def _namings(value, field_key: str, entry: str, setting: str | None):
    """``(entry, setting)`` of every place in ``value`` naming ``field_key``; a list item is a new entry."""
    if isinstance(value, str):
        if value == field_key:
            yield entry, setting
    elif isinstance(value, list):
        for number, item in enumerate(value, start=1):
            name = (item.get("name") or item.get("key")) if isinstance(item, Mapping) else None
            inner = f"“{name}”" if name else (_("第 %(n)s 条", n=number) if isinstance(item, Mapping) else entry)
            yield from _namings(item, field_key, inner, None if isinstance(item, Mapping) else setting)
    elif isinstance(value, Mapping):
        for name, inner in value.items():
            if name == field_key and setting is not None:
                yield entry, setting
            if setting is not None or name not in ENTRY_NAMES:
                yield from _namings(inner, field_key, entry, setting or str(name))


def _setting_titles(schema) -> dict[str, str]:
    """Property name → the title a section's JSON Schema gives it, where that is more than pydantic's default
    (the name in title case)."""
    titles: dict[str, str] = {}
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for name, prop in (node.get("properties") or {}).items():
                title = prop.get("title") if isinstance(prop, Mapping) else None
                if title and title != name.replace("_", " ").title():
                    titles.setdefault(name, title)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return titles
