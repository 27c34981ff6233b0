"""What a saved definition does to a choice field's options, so that no stored value is lost
(``kefu.records.definitions.save_definition`` calls :func:`carry_over_choices` before validating).

- **Rename** is explicit: a field of the definition given to ``save_definition`` may carry ``rename_choices``
  (``{old name: new name}``; the admin's field editor writes it as a line "旧名 → 新名"). The pair is kept in the
  definition's ``renamed_choices`` — a filter naming either name finds both — and the records holding the old name
  are moved to the new one in the background (``kefu.records.choice_migrations``). Renaming onto a choice that
  exists merges the two.
- **Removal** keeps what records hold: a choice dropped from ``choices`` that some record still holds becomes one
  of ``inactive_choices`` (shown marked 已停用, filterable, exported, counted; new input cannot pick it). Adding it
  back to ``choices`` makes it active again.
- A rename of a choice that a rule names by its text (an SLA clock's ``when`` / ``done_when``, the ``callback``
  rules of a type whose callbacks are of this type …: every section's ``choice_references``) is refused naming
  the rule: change the rule first (or in the same save), then rename.
- A **relabel** of the field, or any change of its options, never touches stored values: records keep their values
  under the field's key, and a key never changes.
"""
from __future__ import annotations

from kefu.core.db import get_database
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l
from kefu.records import sections
from kefu.records.fields import FieldSpec, get_field_type
from kefu.records.store import RECORDS
from kefu.records.types import RecordType

RENAME_KEY = "rename_choices"
"""The instruction a field of a definition may carry: ``{old name: new name}``; never stored."""


def _takes_choices(type_name) -> bool:
    try:
        return "renamed_choices" in get_field_type(type_name).options
    except ValidationFailed:  # an unknown type: the definition's own check reports it
        return False


def _lists_of_names(field: dict) -> bool:
    """Whether the field's ``choices`` and ``inactive_choices`` are lists of names and its ``renamed_choices`` a
    list (anything else is reported by the definition's own check, as 422, before anything is carried over)."""
    return all(isinstance(field.get(option) or [], list) for option in ("choices", "inactive_choices",
                                                                         "renamed_choices")) and all(
        isinstance(name, str) for option in ("choices", "inactive_choices") for name in field.get(option) or [])


def rename_problem(field: dict, old: FieldSpec | None):
    """What is wrong with the field's ``rename_choices`` (a message naming the field), or None."""
    renames = field.get(RENAME_KEY)
    label = field.get("label") or field.get("key")
    if not isinstance(renames, dict) or any(not isinstance(k, str) or not isinstance(v, str) or not k.strip()
                                            or not v.strip() for k, v in renames.items()):
        return _l("字段“%(label)s”：rename_choices 应为 {原名: 新名}", label=label)
    if old is None or old.type != field.get("type") or not _takes_choices(old.type) or not _lists_of_names(field):
        return _l("字段“%(label)s”：只有已有的单选、多选字段能给可选项改名（且不能同时改类型）", label=label)
    choices = [str(c) for c in field.get("choices") or []]
    held = {*old.choices, *old.inactive_choices, *(pair[0] for pair in old.renamed_choices)}
    for before, after in renames.items():
        if before.strip() not in held:
            return _l("字段“%(label)s”：“%(name)s”不是原有的可选项", label=label, name=before)
        if after.strip() not in choices:
            return _l("字段“%(label)s”：新名“%(name)s”须在可选项中", label=label, name=after)
        if before.strip() in choices:
            return _l("字段“%(label)s”：改名后原名“%(name)s”不能留在可选项中", label=label, name=before)
    return None


def rules_problem(field: dict, data: dict, existing: RecordType):
    """A refusal of the field's ``rename_choices`` (which passed :func:`rename_problem`) when a rule names an old
    name by its text, naming that rule; or None. The rules are the sections of ``data``, the definition being saved
    (a section it leaves out: as stored), and the stored sections of every other type."""
    renamed = {before.strip() for before in field[RENAME_KEY]}
    for rule, value in _choice_references(data, existing, field["key"]):
        if str(value) in renamed:
            return _l("字段“%(label)s”：%(rule)s使用了“%(name)s”，请先修改该规则再改名", label=field.get("label"),
                      rule=rule, name=value)
    return None


def _choice_references(data: dict, existing: RecordType, field_key: str):
    """``(rule, value)`` for every value of ``existing``'s field ``field_key`` a section names
    (``Section.choice_references``); a section that does not parse is left out (its own check reports it)."""
    for section in sections.sections():
        raw = data[section.key] if section.key in data else existing.section_data(section.key)
        if raw in (None, {}, []):
            continue
        try:
            model = section.parse(raw)
        except sections.SectionInvalid:
            continue
        yield from section.choice_references(existing, model, existing.key, field_key)
    for other in RecordType.objects(key__ne=existing.key):
        for section in sections.sections():
            try:
                model = sections.parsed(other, section.key)
            except sections.SectionInvalid:
                continue
            if model is not None:
                yield from section.choice_references(other, model, existing.key, field_key)


def carry_over_choices(field: dict, old: FieldSpec | None, type_key: str) -> tuple[dict, dict[str, str]]:
    """The field as it is to be stored — ``inactive_choices`` and ``renamed_choices`` carried over from ``old``, the
    definition stored now, and from ``field`` itself — and the renames it asks for (old → new; ``{}`` for none).
    The field's ``rename_choices`` must have passed :func:`rename_problem`; a field that is new, changes type or
    has no choices is returned as it is (without ``rename_choices``)."""
    field = dict(field)
    renames = {k.strip(): v.strip() for k, v in (field.pop(RENAME_KEY, None) or {}).items()}
    if old is None or old.type != field.get("type") or not _takes_choices(old.type) or not _lists_of_names(field):
        return field, {}
    choices = [str(c) for c in field.get("choices") or []]
    pairs = {}
    for pair in [*old.renamed_choices, *(field.get("renamed_choices") or [])]:
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            pairs[str(pair[0])] = str(pair[1])
    pairs.update(renames)
    pairs = {before: renames.get(after, after) for before, after in pairs.items()  # a renamed name renamed again
             if before not in choices and before != renames.get(after, after)}
    dropped = [c for c in dict.fromkeys([*old.inactive_choices, *(field.get("inactive_choices") or []),
                                          *old.choices]) if c not in choices and c not in pairs]
    field["inactive_choices"] = held_values(type_key, old, dropped)
    field["renamed_choices"] = [[before, after] for before, after in pairs.items()]
    for option in ("inactive_choices", "renamed_choices"):
        if not field[option]:
            del field[option]
    return field, renames


def held_values(type_key: str, definition: FieldSpec, values: list[str]) -> list[str]:
    """Those of ``values`` some record of the type holds in the field (all of them for a sensitive field: its
    values are stored encrypted and cannot be asked for), in their order."""
    if not values or definition.sensitive:
        return list(values)
    path = f"data.{definition.key}"
    held = set(get_database()[RECORDS].distinct(path, {"type": type_key, path: {"$in": list(values)}}))
    return [value for value in values if value in held]
