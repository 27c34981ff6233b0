"""The core fields every record has (number, status, assignee, department, customer, registration) next to the
configured ones, and finding a field of a type by key."""
from __future__ import annotations

from dataclasses import replace

from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l
from kefu.records.fields import FieldSpec
from kefu.records.sections import WORKFLOW, workflow_of
from kefu.records.types import RecordType

CORE_FIELDS = (
    FieldSpec.core_field("number", _l("编号"), "text", editable=False),
    FieldSpec.core_field("status", _l("状态"), "choice"),  # its choices: the type's workflow (core_fields)
    FieldSpec.core_field("assignee", _l("负责人"), "user"),
    FieldSpec.core_field("department", _l("部门"), "department"),
    FieldSpec.core_field("customer", _l("客户"), "customer", list=False),
    FieldSpec.core_field("created_at", _l("登记时间"), "datetime", editable=False),
    FieldSpec.core_field("updated_at", _l("更新时间"), "datetime", list=False, editable=False),
    FieldSpec.core_field("created_by", _l("登记人"), "user", list=False, editable=False),
)
"""The fields every record has, described like configured ones (``core``: stored at the top of the record) so
the same field types validate, filter and show them."""
CORE_BY_KEY = {f.key: f for f in CORE_FIELDS}


def core_fields(record_type: RecordType) -> tuple[FieldSpec, ...]:
    """The core fields as this type has them: ``status`` offers the type's workflow statuses (built once per
    loaded definition)."""
    def build(_workflow):
        statuses = workflow_of(record_type).statuses
        return tuple(replace(f, choices=statuses) if f.key == "status" else f for f in CORE_FIELDS)

    return record_type.derived("core_fields", record_type.section_data(WORKFLOW), build)


def core_field(record_type: RecordType, key: str) -> FieldSpec | None:
    """The core field ``key`` as this type has it (None for a configured field's key)."""
    if key not in CORE_BY_KEY:
        return None
    return next(f for f in core_fields(record_type) if f.key == key)


def field_for(record_type: RecordType, key: str, *, include_inactive: bool = True):
    """The core or configured field named ``key``; ``ValidationFailed`` for an unknown key."""
    if key in CORE_BY_KEY:
        return core_field(record_type, key)
    definition = record_type.field(key)
    if definition is None or (not include_inactive and not definition.active):
        known = [f.key for f in CORE_FIELDS] + [f.key for f in record_type.active_fields]
        raise ValidationFailed(_l("没有字段“%(key)s”；可用：%(known)s", key=key, known="、".join(known)),
                               {key: _l("没有这个字段")})
    return definition
