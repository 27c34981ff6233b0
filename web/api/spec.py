"""The API's OpenAPI 3.1 document: every route under ``/api/v1``, generated per request from the current
record-type definitions (``kefu.records.openapi``), the one error shape and every status an operation answers.

Each record type gets its own paths (``/api/v1/records/<key>`` …) whose bodies and answers are that type's
fields; the other routes are described once here, next to the shapes ``web.api.*`` answers. A test
(``tests/test_api_contract.py``) checks that every route of the app is in the document and fuzzes the running
server against it.
"""
from __future__ import annotations

from kefu.insight.exports import FORMATS
from kefu.records.openapi import component_name, list_parameters, record_schemas, section_schemas
from kefu.records.references import REFERENCE_KINDS
from kefu.records.sections import section_keys
from kefu.records.types import RecordType
from web.api.base import MAX_PAGE
from web.api.customers import CUSTOMER_SCHEMAS, customer_paths
from web.api.knowledge import knowledge_paths
from web.api.loyalty import loyalty_paths
from web.api.notifications import NOTIFICATIONS_PER_PAGE
from web.api.search import SEARCH_SCHEMAS, search_paths
from web.api.spec_parts import (
    ID, IDEMPOTENCY_KEY, SCHEMAS, TEXT, error_responses, export_answers, json_answer, json_body, listing, obj,
    operation, path_id, ref, security, security_schemes, type_definition,
)

URI_TOO_LONG = {"$ref": "#/components/responses/UriTooLong"}

DESCRIPTION = """客服管理系统的 JSON API。

- **认证**：系统对接用 `Authorization: Bearer <令牌>`（`POST /api/v1/auth/token` 用用户名和密码换取）；浏览器里已登录的
  会话（cookie）也可调用，写操作须在请求头 `X-CSRFToken` 中带上页面 `<meta name="csrf-token">` 的值。
- **错误**：一律为 `{"error": {"code", "message", "fields": {字段: 说明}}}`，`message` 为中文，可直接展示给用户。
  400 请求格式有误；401 未登录或令牌无效；403 无权操作（`message` 说明原因）；404 不存在或无权查看；
  405 路径存在但不支持该方法（`Allow` 列出支持的方法）；409 版本冲突或状态不允许；422 字段校验不通过；
  429 尝试过多（`Retry-After` 秒后再试）；503 数据库或队列暂时不可用（`Retry-After` 秒后重试）。
- **记录**：每种记录类型有自己的路径，请求体与回答按该类型当前的字段定义生成；字段定义修改后本文档随之变化。
"""


def record_paths(record_type: RecordType) -> dict:
    """The paths of one record type: list and create, read and change, events, approval, reject, export."""
    key, name = record_type.key, record_type.name
    record, listed = ref(component_name(record_type)), ref(component_name(record_type, "_list"))
    record_id = path_id("record_id", "记录 id")
    base = f"/api/v1/records/{key}"
    filters = list_parameters(record_type, MAX_PAGE)
    return {
        base: {
            "get": operation(f"{name}：列表", name, {"200": json_answer(listed), "414": URI_TOO_LONG}, ("403", "404"),
                             parameters=[p for p in filters if p["name"] != "columns"],
                             description="筛选：`<字段>=值`（等于）或 `<字段>__<运算>=值`；`view` 应用视图（其筛选与排序）。"),
            "post": operation(f"{name}：登记", name,
                              {"201": json_answer(record, "已登记；同一 Idempotency-Key 的重试回答第一次登记的记录")},
                              ("403", "404", "409", "422", "429"), write=True,
                              body=json_body(ref(component_name(record_type, "_input"))),
                              parameters=[IDEMPOTENCY_KEY]),
        },
        f"{base}/{{record_id}}": {
            "parameters": [record_id],
            "get": operation(f"{name}：详情（含时间线）", name, {"200": json_answer(record)}, ("404",)),
            "patch": operation(f"{name}：修改（需 version）", name, {"200": json_answer(record)},
                               ("403", "404", "409", "422", "429"), write=True,
                               body=json_body(ref(component_name(record_type, "_update"))),
                               description="409：version 已过时，`error.current` 是当前的记录。"),
        },
        f"{base}/{{record_id}}/events": {
            "parameters": [record_id],
            "post": operation(f"{name}：添加跟进（时间线事件）", name, {"201": json_answer(ref("Event"), "已添加")},
                              ("403", "404", "409", "422"), write=True, body={"required": True, "content": {
                                  "application/json": {"schema": ref("EventCreate")},
                                  "multipart/form-data": {"schema": ref("EventUpload")}}}),
        },
        f"{base}/{{record_id}}/approval": {
            "parameters": [record_id],
            "get": operation(f"{name}：审批情况", name, {"200": json_answer(ref("ApprovalPanel"))}, ("404",)),
            "post": operation(f"{name}：审核 / 通过 / 驳回", name, {"200": json_answer(ref("ApprovalPanel"))},
                              ("403", "404", "409", "422"), write=True, body=json_body(ref("ApprovalAction"))),
        },
        f"{base}/{{record_id}}/reject": {
            "parameters": [record_id],
            "post": operation(f"{name}：客户不接受处理结果", name, {"200": json_answer(record)},
                              ("403", "404", "409", "422"), write=True, body=json_body(ref("RejectResult"))),
        },
        f"{base}/export.{{fmt}}": {
            "parameters": [{"name": "fmt", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": list(FORMATS)}}],
            "get": operation(f"{name}：导出", name, {**export_answers(), "414": URI_TOO_LONG}, ("403", "404"),
                             parameters=filters,
                             description="行数超过异步阈值时 202：后台生成，凭 `status_url` 查询进度。"),
        },
    }


def type_paths() -> dict:
    """Record types, their definitions and the JSON Schema of each definition section."""
    definition, key = ref("TypeDefinition"), path_id("key", "记录类型键")
    return {
        "/api/v1/types": {
            "get": operation("启用的记录类型", "记录类型", {"200": json_answer(listing(definition))}),
            "post": operation("新建记录类型", "记录类型", {"201": json_answer(definition, "已创建")},
                              ("403", "422"), write=True, body=json_body(definition),
                              description="需要“系统设置”权限。"),
        },
        "/api/v1/types/{key}": {
            "parameters": [key],
            "get": operation("记录类型定义", "记录类型", {"200": json_answer(definition)}, ("404",)),
            "put": operation("替换记录类型定义", "记录类型", {"200": json_answer(definition)},
                             ("403", "404", "422"), write=True, body=json_body(definition),
                             description="需要“系统设置”权限；省略的字段保留为停用，已存值不丢失。"),
        },
        "/api/v1/types/schema": {
            "get": operation("定义各部分（流程、时限、升级 …）的 JSON Schema", "记录类型",
                             {"200": json_answer(ref("SectionSchemas"))}),
        },
    }


def caller_paths() -> dict:
    """The caller, their tokens, notifications and tasks."""
    token_id = path_id("token_id", "令牌 id")
    return {
        "/api/v1/me": {"get": operation("当前用户", "我", {"200": json_answer(ref("Me"))})},
        "/api/v1/auth/token": {"post": operation(
            "用用户名和密码签发令牌", "我", {"201": json_answer(ref("TokenIssued"), "已签发")}, ("401", "422", "429"),
            public=True, body=json_body(ref("TokenRequest")),
            description="失败次数按来源地址和用户名限制，超过后 429 并给出 Retry-After。")},
        "/api/v1/auth/tokens": {"get": operation("我的令牌", "我", {"200": json_answer(listing(ref("Token")))})},
        "/api/v1/auth/tokens/{token_id}": {"parameters": [token_id], "delete": operation(
            "吊销我的一个令牌", "我", {"200": json_answer(ref("Token"))}, ("404",), write=True)},
        "/api/v1/notifications": {"get": operation(
            "我的通知（新的在前）", "我", {"200": json_answer(listing(
                ref("Notification"), total={"type": "integer"}, unread={"type": "integer"}))}, parameters=[
                {"name": "unread", "in": "query", "schema": {"type": "boolean"}, "description": "只要未读的"},
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}},
                {"name": "per_page", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": NOTIFICATIONS_PER_PAGE}}])},
        "/api/v1/notifications/{notification_id}/read": {
            "parameters": [path_id("notification_id", "通知 id")],
            "post": operation("标为已读", "我", {"200": json_answer(ref("Notification"))}, ("404",), write=True)},
        "/api/v1/notifications/read-all": {"post": operation(
            "全部标为已读", "我", {"200": json_answer(obj({"marked": {"type": "integer"}}))}, write=True)},
        "/api/v1/tasks": {"get": operation("今日及之前未完成的任务", "我",
                                           {"200": json_answer(listing(ref("Task")))})},
        "/api/v1/tasks/{task_id}/done": {"parameters": [path_id("task_id", "任务 id")], "post": operation(
            "完成任务", "我", {"200": json_answer(obj({"id": ID, "done": {"type": "boolean"}}))}, ("404",),
            write=True)},
    }


def shared_paths(type_keys: list[str]) -> dict:
    """Export jobs, reference look-ups, saved views and this document."""
    type_key = path_id("type_key", "记录类型键", {"type": "string", "enum": type_keys})
    job_id = path_id("job_id", "导出任务 id")
    kind = path_id("kind", "引用的种类", {"type": "string", "enum": list(REFERENCE_KINDS)})
    references = listing(ref("Reference"))
    view = ref("View")
    return {
        "/api/v1/exports/{job_id}": {"parameters": [job_id], "get": operation(
            "后台导出的进度", "导出", {"200": json_answer(ref("ExportJob"))}, ("404",))},
        "/api/v1/exports/{job_id}/download": {"parameters": [job_id], "get": operation(
            "下载后台导出的文件", "导出", {"200": export_answers()["200"]},
            ("404", "409"))},
        "/api/v1/refs/{kind}": {
            "parameters": [kind],
            "get": operation("引用候选（按名称）", "引用", {"200": json_answer(references)}, ("403", "404", "429"),
                             parameters=[{"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 100}},
                                         {"name": "project", "in": "query", "schema": TEXT}],
                             description="电话号码不能放在网址里：按电话查找客户请用 POST。"),
            "post": operation("引用候选（按电话查找客户）", "引用", {"200": json_answer(references)},
                              ("403", "404", "429"), write=True, body=json_body(ref("ReferenceQuery"))),
        },
        "/api/v1/views/{type_key}": {
            "parameters": [type_key],
            "get": operation("记录类型的视图", "视图", {"200": json_answer(listing(view))}, ("403", "404")),
            "post": operation("保存视图", "视图", {"201": json_answer(view, "已保存")}, ("403", "404", "422"),
                              write=True, body=json_body(ref("ViewCreate"))),
        },
        "/api/v1/views/{type_key}/{view_id}": {
            "parameters": [type_key, path_id("view_id", "视图 id")],
            "delete": operation("删除自己的视图", "视图", {"200": json_answer(obj({"deleted": TEXT}))},
                                ("403", "404"), write=True)},
        "/api/v1/views/{type_key}/default": {
            "parameters": [type_key],
            "put": operation("设置我的默认视图", "视图", {"200": json_answer(obj({"default": {
                "type": ["string", "null"]}}))}, ("403", "404", "422"), write=True,
                body=json_body(obj({"view": {"type": ["string", "null"]}})))},
        "/api/v1/openapi.json": {"get": operation("本文档", "文档", {"200": json_answer({"type": "object"})})},
    }


def openapi_document(types: list[RecordType], *, cookie_name: str) -> dict:
    """The whole document for the record types ``types`` (the active ones); ``cookie_name``: the session
    cookie's."""
    schemas = {**SCHEMAS, **section_schemas(),
               "TypeDefinition": type_definition([f"section_{key}" for key in section_keys()])}
    schemas.update({**CUSTOMER_SCHEMAS, **SEARCH_SCHEMAS})
    paths = {**type_paths(), **caller_paths(), **shared_paths([t.key for t in types]), **customer_paths(),
             **search_paths(), **knowledge_paths(), **loyalty_paths()}
    for record_type in types:
        schemas.update(record_schemas(record_type))
        paths.update(record_paths(record_type))
    for path, item in paths.items():
        for method, op in item.items():
            if method != "parameters":
                op["operationId"] = method + "".join(
                    part.strip("{}").replace(".", "_").replace("-", "_").title() for part in path[8:].split("/"))
    return {
        "openapi": "3.1.0",
        "info": {"title": "kefu 客服管理 API", "version": "1", "description": DESCRIPTION},
        "tags": [{"name": t.name, "description": f"记录类型 {t.key}"} for t in types],
        "components": {"schemas": schemas, "responses": error_responses(),
                       "securitySchemes": security_schemes(cookie_name)},
        "security": security(False),
        "paths": paths,
    }
