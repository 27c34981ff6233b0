"""The OpenAPI 3.1 description of the API, generated from the current record-type definitions."""
from __future__ import annotations

from kefu.records.core_fields import core_fields
from kefu.records.fields import get_field_type
from kefu.records.types import RecordType

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}},
}


def record_schemas(record_type: RecordType) -> tuple[dict, dict]:
    """``(input schema, stored-record schema)`` of one record type."""
    properties, required = {}, []
    for definition in record_type.active_fields:
        properties[definition.key] = get_field_type(definition.type).json_schema(definition)
        if definition.required:
            required.append(definition.key)
    for definition in core_fields(record_type):
        if definition.editable:
            properties[definition.key] = get_field_type(definition.type).json_schema(definition)
    record_input = {"type": "object", "title": record_type.name, "properties": properties,
                    "additionalProperties": False}
    if required:
        record_input["required"] = required
    stored = {"allOf": [{"$ref": f"#/components/schemas/{record_type.key}_input"}, {"type": "object", "properties": {
        "id": {"type": "string"}, "type": {"const": record_type.key}, "number": {"type": "string"},
        "version": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"}}}]}
    return record_input, stored


def _operation(summary: str, schema_ref: str | None = None, status: str = "200", request_ref: str | None = None):
    operation = {"summary": summary, "responses": {
        status: {"description": "OK", "content": {"application/json": {"schema": {"$ref": schema_ref}}}}
        if schema_ref else {"description": "OK"},
        "default": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    }}
    if request_ref:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"$ref": request_ref}}}}
    return operation


def openapi_document(types: list[RecordType]) -> dict:
    paths, schemas = {}, {"Error": ERROR_SCHEMA}
    for record_type in types:
        record_input, stored = record_schemas(record_type)
        schemas[f"{record_type.key}_input"] = record_input
        schemas[record_type.key] = stored
        ref = f"#/components/schemas/{record_type.key}"
        list_ref = f"#/components/schemas/{record_type.key}_list"
        schemas[f"{record_type.key}_list"] = {"type": "object", "properties": {
            "items": {"type": "array", "items": {"$ref": ref}}, "total": {"type": "integer"}}}
        paths[f"/api/v1/records/{record_type.key}"] = {
            "get": {**_operation(f"{record_type.name}：列表", list_ref), "parameters": [
                {"name": name, "in": "query", "schema": {"type": "string"}} for name in ("q", "sort", "page", "per_page")]},
            "post": _operation(f"{record_type.name}：登记", ref, "201", f"#/components/schemas/{record_type.key}_input"),
        }
        paths[f"/api/v1/records/{record_type.key}/{{id}}"] = {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": _operation(f"{record_type.name}：详情", ref),
            "patch": _operation(f"{record_type.name}：修改（需 version）", ref),
        }
    paths["/api/v1/auth/token"] = {"post": _operation("签发令牌", status="201")}
    paths["/api/v1/auth/tokens"] = {"get": _operation("我的令牌")}
    paths["/api/v1/auth/tokens/{id}"] = {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "delete": _operation("吊销我的令牌"),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "kefu 客服管理 API", "version": "1"},
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }
