"""The JSON Schemas and list parameters of the record types' API, generated from the current definitions.

Each field type says what a value looks like (``FieldType.json_schema``); this module assembles, per record type:

- ``<key>_input`` — the body of ``POST /api/v1/records/<key>``: the active configured fields and the editable core
  fields, the required ones required, nothing else;
- ``<key>_update`` — the body of ``PATCH``: the same fields, none required, and the ``version`` read before;
- ``<key>`` — a record as the API answers it. Its field values are *loosened*: a value stored under an earlier
  definition (a choice since removed, an old maximum) is answered as stored, and a sensitive field the reader may
  not see answers its mask (``******``, ``138****0000``) — so the answer promises type and format, not the bounds;
- the list parameters: paging, ``sort``, ``q``, ``view``, ``columns``, ``overdue``, ``due_soon`` and one
  ``<field>`` / ``<field>__<op>`` parameter per field and filter operator the field's type has.

``web.api.spec`` puts them into the whole OpenAPI document (paths, errors, security).
"""
from __future__ import annotations

from kefu.records.core_fields import core_fields
from kefu.records.fields import OPERATORS, get_field_type
from kefu.records.fields.common import MAX_CONTAINS_LENGTH
from kefu.records.query import MAX_PER_PAGE, SLA_SORT, filter_operators, sortable
from kefu.records.sections import sections
from kefu.records.types import RecordType

# What a loosened (answered) value keeps of the input schema: its shape and what it means, not its bounds.
KEPT_KEYWORDS = ("type", "title", "description", "readOnly", "x-kefu-reference")
KEPT_FORMATS = ("date", "date-time")

CLOCK_SCHEMA = {
    "type": "object", "title": "时限",
    "required": ["name", "due_at", "state", "started_at", "met_at", "paused"],
    "properties": {
        "name": {"type": "string"},
        "due_at": {"type": ["string", "null"], "format": "date-time"},
        "state": {"type": "string", "enum": ["on_time", "due_soon", "overdue", "met", "missed"]},
        "started_at": {"type": ["string", "null"], "format": "date-time"},
        "met_at": {"type": ["string", "null"], "format": "date-time"},
        "paused": {"type": "boolean"},
        "explanation": {"description": "截止时间是怎么算出来的（列表里不给）"},
    },
}


def component_name(record_type: RecordType, suffix: str = "") -> str:
    """The name of one of the type's schemas under ``#/components/schemas``."""
    return f"{record_type.key}{suffix}"


def field_input_schema(definition) -> dict:
    """What a request may give for the field (its type's canonical form; the API also reads looser text)."""
    return get_field_type(definition.type).json_schema(definition)


def field_output_schema(definition) -> dict:
    """What an answer holds for the field: its type and format, or null; a sensitive field may answer its mask."""
    schema = _loosened(field_input_schema(definition))
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if definition.sensitive:
        types = [*types, "string"]
    schema["type"] = list(dict.fromkeys([*(t for t in types if t != "null"), "null"]))
    return schema


def _loosened(schema: dict) -> dict:
    loose = {key: value for key, value in schema.items() if key in KEPT_KEYWORDS}
    if schema.get("format") in KEPT_FORMATS:
        loose["format"] = schema["format"]
    if "items" in schema:
        loose["items"] = _loosened(schema["items"])
    return loose


def record_schemas(record_type: RecordType) -> dict[str, dict]:
    """The type's schemas, by component name: create body, update body, answered record, list page."""
    properties, required = {}, []
    for definition in record_type.active_fields:
        properties[definition.key] = field_input_schema(definition)
        if definition.required:
            required.append(definition.key)
    for definition in core_fields(record_type):
        if definition.editable:
            properties[definition.key] = field_input_schema(definition)
    create = {"type": "object", "title": f"{record_type.name}（登记）", "properties": properties,
              "additionalProperties": False, **({"required": required} if required else {})}
    update = {"type": "object", "title": f"{record_type.name}（修改）", "required": ["version"],
              "properties": {**properties, "version": {"type": "integer", "minimum": 1,
                                                        "description": "读取记录时得到的版本号"}},
              "additionalProperties": False}
    return {
        component_name(record_type, "_input"): create,
        component_name(record_type, "_update"): update,
        component_name(record_type): _answered_record(record_type),
        component_name(record_type, "_list"): {
            "type": "object", "required": ["items", "total", "view"], "properties": {
                "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{component_name(record_type)}"}},
                "total": {"type": "integer", "minimum": 0},
                "view": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/ViewApplied"}]}}},
    }


def _answered_record(record_type: RecordType) -> dict:
    properties = {"id": {"type": "string", "pattern": "^[0-9a-f]{24}$"}, "type": {"const": record_type.key},
                  "version": {"type": "integer"}}
    core = core_fields(record_type)
    for definition in (*core, *record_type.specs):
        properties[definition.key] = field_output_schema(definition)
    properties["sla"] = {"type": "object", "additionalProperties": CLOCK_SCHEMA,
                         "description": "每个时限（受理、办结 …）的状态"}
    properties["events"] = {"type": "array", "items": {"$ref": "#/components/schemas/Event"},
                            "description": "时间线（只在单条记录的回答里）"}
    return {"type": "object", "title": record_type.name, "properties": properties,
            "required": ["id", "type", "version", "sla", *(d.key for d in core)]}


def sortable_keys(record_type: RecordType) -> list[str]:
    """The values ``sort`` accepts: every sortable field's key, descending with a leading ``-``, and the
    nearest deadline (``sla_due``)."""
    keys = [d.key for d in (*core_fields(record_type), *record_type.specs) if sortable(d)]
    keys.append(SLA_SORT)
    return [*keys, *(f"-{key}" for key in keys)]


def list_parameters(record_type: RecordType, max_page: int) -> list[dict]:
    """The query parameters of the type's list and export: paging, sort, search, view, columns, the deadline
    flags, and a filter parameter per field and operator (``<field>`` is ``eq``; ``__in`` takes ``a,b``)."""
    parameters = [
        _query("q", {"type": "string", "maxLength": 100}, "全文检索（编号、标题、可检索字段）"),
        _query("sort", {"type": "string", "enum": sortable_keys(record_type)}, "排序字段，前加 - 为倒序"),
        _query("page", {"type": "integer", "minimum": 1, "maximum": max_page}, "页码，从 1 开始"),
        _query("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE}, "每页条数"),
        _query("view", {"type": "string"}, "应用的视图：内置视图 builtin:<key> 或保存的视图 id"),
        _query("columns", {"type": "string"}, "导出的列，逗号分隔的字段键（默认全部字段或视图的列）"),
        _query("overdue", {"type": "boolean"}, "只要已逾期的（有时限已过截止时间）"),
        _query("due_soon", {"type": "boolean"}, "只要即将到期的"),
    ]
    for definition in (*core_fields(record_type), *record_type.specs):
        for op in filter_operators(definition):
            name = definition.key if op == "eq" else f"{definition.key}__{op}"
            parameters.append(_query(name, _filter_schema(definition, op), f"{definition.label}：{OPERATORS[op].label}"
                                     + ("（逗号分隔多个值）" if op == "in" else "")))
    return parameters


def _filter_schema(definition, op: str) -> dict:
    """A filter parameter's value: a value of the field (as text in the query) for eq/ne/gte/lte, free text for
    ``in`` (comma-separated) and ``contains``; ``empty`` / ``not_empty`` read no value."""
    if op in ("empty", "not_empty"):
        return {"type": "string", "maxLength": 0, "description": "只看有无，不用填值"}
    if op == "contains":
        return {"type": "string", "minLength": 1, "maxLength": MAX_CONTAINS_LENGTH}
    if op == "in":
        return {"type": "string", "minLength": 1}
    schema = field_input_schema(definition)
    schema = schema.get("items", schema) if "array" in _types(schema) else schema
    value = {key: item for key, item in schema.items()
             if key in ("format", "pattern", "minimum", "maximum", "maxLength", "enum")}
    if "enum" in value:
        value["enum"] = [item for item in value["enum"] if item is not None]
    kind = next(t for t in _types(schema) if t != "null")
    return {**value, "type": kind}


def _types(schema: dict) -> list:
    return schema["type"] if isinstance(schema.get("type"), list) else [schema.get("type")]


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def section_schemas() -> dict[str, dict]:
    """The JSON Schema of each definition section (``workflow``, ``sla`` …) by component name ``section_<key>``,
    with the models' ``$defs`` lifted into components of their own (``section_<key>_<name>``): a ``$ref`` inside
    a component resolves against the whole document, not the schema."""
    components = {}
    for section in sections():
        schema = section.json_schema()
        prefix = f"section_{section.key}"
        definitions = schema.pop("$defs", {})
        renamed = {f"#/$defs/{name}": f"#/components/schemas/{prefix}_{name}" for name in definitions}
        components[prefix] = _with_refs(schema, renamed)
        for name, definition in definitions.items():
            components[f"{prefix}_{name}"] = _with_refs(definition, renamed)
    return components


def _with_refs(schema, renamed: dict[str, str]):
    if isinstance(schema, dict):
        return {key: renamed.get(value, value) if key == "$ref" else _with_refs(value, renamed)
                for key, value in schema.items()}
    if isinstance(schema, list):
        return [_with_refs(item, renamed) for item in schema]
    return schema
