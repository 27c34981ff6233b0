"""The one shape of a field definition, and the tables that say what a definition may hold.

A record type stores its fields as ``kefu.records.types.FieldDefinition``
documents (what the admin edits and the YAML spells). Everything that *reads*
a field — field types, writes, queries, lists, exports, rules — gets a
:class:`FieldSpec`: a frozen value built once per loaded definition. The
fields every record has (number, status, assignee …) are FieldSpecs too,
flagged ``core``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields

FIELD_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
"""What a field key must look like; it becomes part of the storage path ``data.<key>``."""

FIELD_FLAGS = ("required", "list", "filter", "search", "sensitive", "readonly", "required_on_close")
"""Yes/no settings every type has; stored and written out only when true."""

FIELD_OPTIONS = ("default", "min", "max", "max_length", "pattern", "choices", "inactive_choices", "renamed_choices",
                 "help", "max_size_mb")
"""Valued settings of a definition, in the order the YAML/JSON shape lists them. ``inactive_choices`` (values no longer
offered that records still hold) and ``renamed_choices`` (``[old, new]`` pairs: a filter naming either finds both) are
kept by ``kefu.records.definitions.save_definition`` (``kefu.records.choice_changes``), not typed by hand."""

GENERAL_OPTIONS = ("help",)
"""Valued settings every type accepts."""

OPTION_NAMES = tuple(name for name in FIELD_OPTIONS if name not in GENERAL_OPTIONS)
"""The type-specific options: ``FieldType.options`` names those a type accepts, the others are refused."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of a record type as every reader sees it: the stored definition's attributes, read-only.

    ``core``: a field every record has, stored at the top of the record rather
    than under ``data``; ``editable`` is false for the core fields the system
    fills (number, timestamps). A missing option is None (``choices``, ``inactive_choices``, ``renamed_choices``: ()).
    """

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
    inactive_choices: tuple = ()
    renamed_choices: tuple = ()
    list: bool = False
    filter: bool = False
    search: bool = False
    sensitive: bool = False
    readonly: bool = False
    required_on_close: bool = False
    help: str | None = None
    max_size_mb: int | None = None
    active: bool = True
    core: bool = False
    editable: bool = True

    @classmethod
    def of(cls, definition) -> FieldSpec:
        """The spec of a stored definition (a ``FieldDefinition``; anything with the stored attribute names)."""
        values = {name: getattr(definition, name) for name in STORED_ATTRIBUTES}
        # Anything but a list is kept as it is, for check_definition to refuse.
        for option in ("choices", "inactive_choices"):
            names = values[option]
            values[option] = tuple(names) if isinstance(names, (list, tuple)) else names or ()
        pairs = values["renamed_choices"]
        values["renamed_choices"] = tuple(tuple(pair) if isinstance(pair, (list, tuple)) else pair
                                          for pair in pairs) if isinstance(pairs, (list, tuple)) else pairs or ()
        return cls(**values)

    @classmethod
    def core_field(cls, key: str, label, type_name: str, **settings) -> FieldSpec:
        """A field every record has: listed and filterable unless ``settings`` say otherwise."""
        return cls(key, label, type_name, **{"list": True, "filter": True, **settings, "core": True})

    @property
    def path(self) -> str:
        """Where the value lives in a record document."""
        return self.key if self.core else f"data.{self.key}"


STORED_ATTRIBUTES = tuple(f.name for f in fields(FieldSpec) if f.name not in ("core", "editable"))
"""The attributes a stored definition has: every FieldSpec attribute but the engine's own ``core`` and ``editable``."""
