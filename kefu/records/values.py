"""Turning what a person typed into stored values and back.

``clean_values`` validates raw input against the type's current definition (every problem collected, so each field
shows its message at once); ``storage_of`` encrypts sensitive values (with a blind index for exact search);
``read_values`` decrypts and masks them for the reader."""
from __future__ import annotations

import json
from collections.abc import Mapping

from kefu.core.errors import Conflict, NotFound, ValidationFailed
from kefu.core.i18n import _l
from kefu.core.validation import InvalidValue
from kefu.records.actor import Actor
from kefu.records.attachments import check_attachable
from kefu.records.core_fields import CORE_BY_KEY, CORE_FIELDS, core_field
from kefu.records.fields import default_value, get_field_type
from kefu.records.sections import workflow_of
from kefu.records.types import RecordType


def blind_index_text(value) -> str:
    """The text a value's blind index is computed from (the same for storing and for an equality filter)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def check_value_shape(key: str, raw) -> None:
    # A JSON object where a value belongs is how operator injection starts:
    # no field type takes a dict, so refuse it before any type sees it.
    if isinstance(raw, dict):
        raise ValidationFailed(_l("字段“%(key)s”的值格式不正确", key=key), {key: _l("值格式不正确")})


def clean_values(record_type: RecordType, values: dict, actor: Actor, *, creating: bool,
                 current: dict | None = None) -> tuple[dict, dict]:
    """Validate raw input against the definition; return ``(core, data)`` Python values.

    Unknown keys, disabled fields and read-only fields (on update) are
    refused; on create, missing values get their defaults and required ones
    are reported. On update (``current``: the record's values), a key left out
    is left alone, and a stored value sent back unchanged is kept even when the
    definition no longer accepts it (a removed choice, a stricter limit:
    ``FieldType.clean_keeping``). Every problem is collected, so the caller can show each
    field's message at once.
    """
    errors: dict = {}
    core: dict = {}
    data: dict = {}
    context = actor.field_context(project_id=project_id_for(record_type, values, actor, current))
    for key, raw in values.items():
        try:
            check_value_shape(key, raw)
        except ValidationFailed as exc:
            errors.update(exc.fields)
            continue
        if key in CORE_BY_KEY:
            definition = core_field(record_type, key)
            if not definition.editable:
                errors[key] = _l("“%(label)s”由系统生成，不能填写", label=definition.label)
                continue
            target = core
        else:
            definition = record_type.field(key)
            if definition is None:
                errors[key] = _l("没有这个字段")
                continue
            if not definition.active:
                errors[key] = _l("字段“%(label)s”已停用", label=definition.label)
                continue
            if definition.readonly and not creating:
                errors[key] = _l("字段“%(label)s”只读", label=definition.label)
                continue
            target = data
        field_type = get_field_type(definition.type)
        try:
            target[key] = field_type.clean(raw, definition, context) if creating else field_type.clean_keeping(
                raw, (current or {}).get(key), definition, context)
        except InvalidValue as exc:
            errors[key] = str(exc)
    if "status" in core and core["status"] is None:  # a record is always in one of its workflow's statuses
        errors["status"] = _l("请选择“%(label)s”", label=CORE_BY_KEY["status"].label)
    if creating:
        for definition in record_type.active_fields:
            if definition.key not in data and definition.default not in (None, ""):
                data[definition.key] = default_value(definition, context)
        core.setdefault("status", workflow_of(record_type).initial)
    for definition in record_type.active_fields:
        if not definition.required or definition.key in errors:
            continue
        present = data.get(definition.key) if definition.key in data else (
            None if creating else (current or {}).get(definition.key))
        if present in (None, "", []) and (creating or definition.key in data):
            errors[definition.key] = _l("请填写“%(label)s”", label=definition.label)
    if errors:
        labels = {k: label_of(record_type, k) for k in errors}
        summary = "；".join(f"{labels[k]}：{v}" for k, v in errors.items())
        raise ValidationFailed(summary, errors)
    return core, data


def label_of(record_type: RecordType, key: str) -> str:
    definition = CORE_BY_KEY.get(key) or record_type.field(key)
    return str(definition.label) if definition is not None else key


def project_id_for(record_type: RecordType, values: Mapping, actor: Actor, current: Mapping | None = None):
    """The project a unit name is looked up in: the value of the type's field whose type narrows units (its
    project field) in ``values`` (the input), else in ``current`` (the stored record); None when the type has no
    such field or it names no project."""
    definition = next((f for f in record_type.specs if get_field_type(f.type).narrows_units), None)
    raw = None if definition is None else values.get(definition.key) or (current or {}).get(definition.key)
    if raw is None:
        return None
    try:
        return get_field_type(definition.type).clean(raw, definition, actor.field_context())
    except InvalidValue:
        return None


def storage_of(record_type: RecordType, core: dict, data: dict, actor: Actor) -> dict:
    """``$set`` fields for the cleaned values: plain, encrypted or both as the definition says."""
    update: dict = {}
    for key, value in core.items():
        update[key] = get_field_type(CORE_BY_KEY[key].type).to_storage(value) if value is not None else None
    for key, value in data.items():
        definition = record_type.field(key)
        field_type = get_field_type(definition.type)
        if definition.sensitive:
            if value in (None, "", []):
                update[f"pii.{key}"] = None
                update[f"bidx.{key}"] = None
            else:
                text = json.dumps(field_type.to_json(value, actor.tz), ensure_ascii=False)
                context = f"{record_type.key}.{key}"
                update[f"pii.{key}"] = actor.cipher.encrypt(text, context=context)
                update[f"bidx.{key}"] = actor.cipher.blind_index(blind_index_text(value), context=context)
        else:
            update[f"data.{key}"] = field_type.to_storage(value) if value is not None else None
    return update


def decrypt_stored(record_type: RecordType, key: str, blob, actor: Actor):
    """The JSON value ``storage_of`` encrypted for the field ``key`` (not checked again: ``read_stored`` does)."""
    return json.loads(actor.cipher.decrypt(bytes(blob), context=f"{record_type.key}.{key}"))


def read_stored(record_type: RecordType, definition, field_type, data: dict, pii: dict, actor: Actor):
    """The Python value of one configured field (decrypted when it is stored encrypted), or None, given the
    record's ``data`` and ``pii`` parts (read once per record by callers that read many fields)."""
    key = definition.key
    blob = pii.get(key)
    if blob is not None:
        loaded = decrypt_stored(record_type, key, blob, actor)
        try:
            return field_type.clean(loaded, definition, actor.field_context())
        except InvalidValue:
            return loaded  # stored before a stricter check (a control character in old text): shown as it was
    stored = data.get(key)
    return None if stored is None else field_type.from_storage(stored)


def read_values(record_type: RecordType, document: dict, actor: Actor, keys=None) -> dict:
    """Python values of every configured field present in ``document`` (sensitive ones decrypted); of those named in
    ``keys`` only, when given (a list row reads its columns: a sensitive field is decrypted only when shown)."""
    values = {}
    data, pii = document.get("data") or {}, document.get("pii") or {}
    for definition, field_type in record_type.typed_specs:
        if keys is not None and definition.key not in keys:
            continue
        value = read_stored(record_type, definition, field_type, data, pii, actor)
        if value is not None:
            values[definition.key] = value
    return values


def read_plain_values(record_type: RecordType, document: dict) -> dict:
    """Python values of the configured fields stored in clear (the rules engine reads these, never personal data)."""
    values = {}
    for definition in record_type.specs:
        stored = (document.get("data") or {}).get(definition.key)
        if stored is not None and not definition.sensitive:
            values[definition.key] = get_field_type(definition.type).from_storage(stored)
    return values


def core_values(document: dict) -> dict:
    values = {}
    for definition in CORE_FIELDS:
        stored = document.get(definition.path)
        values[definition.key] = get_field_type(definition.type).from_storage(stored) if stored is not None else None
    return values


def display_values(record_type: RecordType, values: dict, actor: Actor, keys) -> dict:
    shown = {}
    for key in keys:
        definition = CORE_BY_KEY.get(key) or record_type.field(key)
        value = values.get(key)
        if value in (None, "", []):
            shown[key] = None
        elif definition.sensitive:
            shown[key] = get_field_type(definition.type).mask(value)
        else:
            shown[key] = get_field_type(definition.type).display(value, actor.tz)
    return shown


def attachment_ids(record_type: RecordType, data: dict, record_id=None) -> list[str]:
    """Ids of the files the values name, checked to exist and belong to no other record."""
    ids, errors = [], {}
    for key, value in data.items():
        if get_field_type(record_type.field(key).type).holds_files and value:
            try:
                check_attachable(value, record_id)
            except (NotFound, Conflict) as exc:
                errors[key] = exc.message
            ids.extend(str(v) for v in value)
    if errors:
        raise ValidationFailed("；".join(str(m) for m in errors.values()), errors)
    return ids
