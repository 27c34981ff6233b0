"""The field-type registry: one class per type of field a record type can have.

Record types are data: a list of field *definitions* (key, label, type, options)
that an admin edits. Field *types* are code: each :class:`FieldType` owns
everything about its type — checking a definition's options, cleaning input,
the stored (BSON) and JSON forms, display and spreadsheet export, the WTForms
field, the filter operators and their MongoDB fragments, the JSON Schema, and
what the engine does differently for it (sortable, holds files, narrows units,
report dimension, export width) — so the rest of the engine never branches on
a type name::

    field_type = get_field_type(definition.type)
    value = field_type.clean(raw, definition, context)      # InvalidValue says why
    stored = field_type.to_storage(value)                   # BSON-safe
    fragment = field_type.query("data.claim_amount", "gte", "5000", definition, context)

A *definition* is a :class:`FieldSpec` (``spec``: the one shape, and the tables
of flags, options and the key pattern) or any object with its attributes; a
missing attribute, ``None``, ``""`` and an empty list all mean "unset". Field
types are stateless singletons held in :data:`FIELD_TYPES`, one module per
family: ``text``, ``numbers``, ``dates``, ``choices`` (and yes/no),
``references``, ``files``; ``base`` holds :class:`FieldType` and the operator
table, ``common`` the context and parsing helpers, ``forms`` the WTForms glue.

Every message meant for a person is Simplified Chinese through ``kefu.core.i18n``.
Input problems raise :class:`kefu.core.validation.InvalidValue` (its text goes next
to the field as is); problems with a filter or with the registry itself raise
:class:`kefu.core.errors.ValidationFailed`.
"""
from __future__ import annotations

from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _
from kefu.records.fields.base import OPERATORS, FieldType, Operator
from kefu.records.fields.choices import BooleanType, ChoiceType, MultiChoiceType
from kefu.records.fields.common import FieldContext, label_of
from kefu.records.fields.dates import DateTimeType, DateType
from kefu.records.fields.files import AttachmentsType
from kefu.records.fields.numbers import DecimalType, IntegerType, MoneyType
from kefu.records.fields.references import (
    REFERENCE_KINDS, AmbiguousReference, CustomerType, DepartmentType, ProjectType, ReferenceKind, UnitType, UserType,
)
from kefu.records.fields.spec import FIELD_FLAGS, FIELD_KEY_PATTERN, FIELD_OPTIONS, OPTION_NAMES, FieldSpec
from kefu.records.fields.text import EmailType, IdNumberType, PhoneType, TextareaType, TextType

__all__ = [
    "AmbiguousReference", "FieldContext", "FieldSpec", "FieldType", "FIELD_FLAGS", "FIELD_KEY_PATTERN",
    "FIELD_OPTIONS", "FIELD_TYPES", "OPERATORS", "OPTION_NAMES", "Operator", "REFERENCE_KINDS",
    "ReferenceKind", "check_definition", "default_value", "field_type_choices", "get_field_type",
]

FIELD_TYPES: dict[str, FieldType] = {
    field_type.name: field_type
    for field_type in (
        TextType(), TextareaType(), IntegerType(), DecimalType(), MoneyType(), DateType(), DateTimeType(),
        ChoiceType(), MultiChoiceType(), BooleanType(), PhoneType(), IdNumberType(), EmailType(),
        CustomerType(), ProjectType(), UnitType(), UserType(), DepartmentType(), AttachmentsType(),
    )
}
"""Type name → the (stateless) field type."""


def get_field_type(name: str) -> FieldType:
    """The field type called ``name``; ``ValidationFailed`` lists the known types otherwise."""
    field_type = FIELD_TYPES.get(name) if isinstance(name, str) else None
    if field_type is None:
        known = "、".join(f"{key}（{field_type.label}）" for key, field_type in FIELD_TYPES.items())
        raise ValidationFailed(_("未知的字段类型“%(name)s”，可选：%(types)s", name=name, types=known))
    return field_type


def field_type_choices() -> list[tuple[str, str]]:
    """``(name, Chinese label)`` of every type, for the admin's type picker."""
    return [(name, str(field_type.label)) for name, field_type in FIELD_TYPES.items()]


def check_definition(definition) -> list[str]:
    """Problems with a definition, including an unknown type; [] when it can be used."""
    try:
        field_type = get_field_type(getattr(definition, "type", None))
    except ValidationFailed as exc:
        return [_("字段“%(label)s”：%(problem)s", label=label_of(definition), problem=exc.message)]
    return field_type.check_definition(definition)


def default_value(definition, context: FieldContext | None = None):
    """The starting value of a new record's field: its literal default cleaned, "now", "current_user" or None."""
    return get_field_type(definition.type).default_value(definition, context)

