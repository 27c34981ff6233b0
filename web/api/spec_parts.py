"""The building blocks of the OpenAPI document (``web.api.spec``): how an operation and its responses are
written, the shared error responses, the security schemes, and the shapes of the answers that do not depend on a
record type's fields (tokens, notifications, tasks, views, exports, approvals …)."""
from __future__ import annotations

from kefu.insight.exports import FORMATS
from kefu.insight.views import MAX_NAME
from kefu.records.choice_changes import RENAME_KEY
from kefu.records.definitions import NUMBER_PREFIX_PATTERN, TYPE_KEY_PATTERN
from kefu.records.fields import FIELD_FLAGS, FIELD_KEY_PATTERN, FIELD_OPTIONS, FIELD_TYPES
from kefu.records.idempotency import MAX_KEY_LENGTH
from kefu.records.timeline import MANUAL_EVENT_KINDS

ID = {"type": "string", "pattern": "^[0-9a-f]{24}$"}
MOMENT = {"type": "string", "format": "date-time"}
MAYBE_MOMENT = {"type": ["string", "null"], "format": "date-time"}
TEXT = {"type": "string"}
MAYBE_TEXT = {"type": ["string", "null"]}
# The valued field options whose shape is known whatever the field's type (``min``, ``max`` and ``default`` take the
# type's values).
FIELD_OPTION_SCHEMAS = {
    "max_length": {"type": "integer", "minimum": 1}, "pattern": TEXT, "help": TEXT,
    "max_size_mb": {"type": "integer", "minimum": 1}, "choices": {"type": "array", "items": TEXT},
    "inactive_choices": {"type": "array", "items": TEXT, "readOnly": True},
    "renamed_choices": {"type": "array", "items": {"type": "array", "items": TEXT}, "readOnly": True},
}
EVENT_KIND = {"type": "string", "enum": list(MANUAL_EVENT_KINDS)}  # what a person may add (timeline.add_event)

# status → (name under #/components/responses, description, headers it always carries)
RETRY_AFTER = {"Retry-After": {"required": True, "description": "多少秒后再试", "schema": {"type": "string"}}}
ERROR_RESPONSES = {
    "400": ("BadRequest", "请求格式有误（JSON 不是对象、未知的筛选字段或运算、缺少 CSRF 令牌 …）", None),
    "401": ("Unauthorized", "未登录，或令牌无效、已过期、已吊销；签发令牌时为用户名或密码错误", None),
    "403": ("Forbidden", "无权进行此操作（message 说明原因）", None),
    "404": ("NotFound", "不存在，或调用者无权查看", None),
    "405": ("MethodNotAllowed", "此路径不支持该方法", {"Allow": {
        "required": True, "description": "此路径支持的方法", "schema": {"type": "string"}}}),
    "409": ("Conflict", "版本冲突（记录已被他人修改，error.current 为当前记录）或当前状态不允许此操作", None),
    "422": ("Unprocessable", "字段校验不通过（error.fields 逐项说明）", None),
    "429": ("TooManyRequests", "尝试过多（登录失败、按电话查找客户的次数）", RETRY_AFTER),
    "503": ("Unavailable", "数据库或后台队列暂时不可用", RETRY_AFTER),
}

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH,
               "pattern": "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$"},
    "description": "客户端为每次登记生成的唯一键（如 UUID），可打印的 ASCII 字符：超时或 503 后用同一个键重试，返回第一次"
                   "登记的记录，不会重复登记（保留 24 小时）；同一个键用于不同的请求为 409。",
}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_answer(schema: dict, description: str = "成功") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def path_id(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema or TEXT, "description": description}


def listing(item: dict, **extra) -> dict:
    """``{"items": [item …], **extra}``, every property required."""
    properties = {"items": {"type": "array", "items": item}, **extra}
    return {"type": "object", "required": list(properties), "properties": properties}


def obj(required: dict, optional: dict | None = None, **keywords) -> dict:
    """An object schema: ``required`` properties always present, ``optional`` ones sometimes."""
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})},
            **keywords}


def operation(summary: str, tag: str, ok: dict, errors: tuple[str, ...] = (), *, body: dict | None = None,
              parameters: list | None = None, write: bool = False, public: bool = False,
              description: str | None = None) -> dict:
    """One operation. ``ok`` maps success statuses to responses; ``errors`` are the error statuses it answers
    besides those of any signed-in call (400, 401, 405, 503). ``write``: a session caller must send the CSRF
    token; ``public``: no caller needed."""
    common = {"400", "405", "503"} | (set() if public else {"401"})
    responses = dict(ok)
    for status in sorted(set(errors) | common):
        responses[status] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}
    result = {"summary": summary, "tags": [tag], "responses": responses, "security": [] if public else security(write)}
    if description:
        result["description"] = description
    if body is not None:
        result["requestBody"] = body
    if parameters:
        result["parameters"] = parameters
    return result


def error_responses() -> dict:
    responses = {}
    for name, description, headers in ERROR_RESPONSES.values():
        responses[name] = json_answer(ref("Error"), description)
        if headers:
            responses[name]["headers"] = headers
    # Answered by the HTTP server in front of the app (werkzeug, gunicorn, a proxy), in its own words.
    responses["UriTooLong"] = {"description": "网址过长（筛选条件太多或太长）：请减少筛选条件，或保存为视图后用 view=",
                               "content": {"text/html": {"schema": TEXT}, "application/json": {"schema": ref("Error")}}}
    return responses


def security(write: bool) -> list[dict]:
    """Who may call: a bearer token, or the session cookie (with the CSRF token on writes)."""
    return [{"bearer": []}, {"session": [], "csrf": []} if write else {"session": []}]


def security_schemes(cookie_name: str) -> dict:
    return {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "POST /api/v1/auth/token 签发的令牌；系统对接用这个"},
        "session": {"type": "apiKey", "in": "cookie", "name": cookie_name,
                    "description": "浏览器登录后的会话 cookie（/login）"},
        "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                 "description": "会话调用写操作时必带：页面 <meta name=\"csrf-token\"> 的值；令牌调用不需要"},
    }


def export_answers() -> dict:
    """An export: the file itself, or 202 when it is built in the background."""
    return {
        "200": {"description": "导出文件", "headers": {"Content-Disposition": {
            "required": True, "description": "attachment; filename=…", "schema": TEXT}}, "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": {"type": "string", "format": "binary"}}}},
        "202": json_answer(obj({"export": ref("ExportJob"), "status_url": TEXT}), "行数较多，已转入后台生成"),
    }


def type_definition(section_refs: list[str]) -> dict:
    """A record type's definition (the shape of ``schemas/*.yaml``), its sections by their own schemas."""
    return obj(
        {"key": {"type": "string", "pattern": TYPE_KEY_PATTERN.pattern}, "name": {"type": "string", "minLength": 1},
         "number_prefix": {"type": "string", "pattern": NUMBER_PREFIX_PATTERN.pattern},
         "fields": {"type": "array", "items": ref("FieldDefinition")}},
        {"name_en": MAYBE_TEXT, "description": MAYBE_TEXT, "active": {"type": "boolean"},
         "version": {"type": "integer", "readOnly": True},
         **{name.removeprefix("section_"): ref(name) for name in section_refs}},
        title="记录类型定义")


SCHEMAS = {
    "Error": obj({"error": obj(
        {"code": TEXT, "message": TEXT, "fields": {"type": "object", "additionalProperties": TEXT}},
        {"current": {"type": "object", "description": "409 版本冲突时：当前的记录"}})}),
    "Me": obj({"id": ID, "username": TEXT, "display_name": MAYBE_TEXT, "roles": {"type": "array", "items": TEXT},
               "department": MAYBE_TEXT, "capabilities": {"type": "array", "items": TEXT}}),
    "FieldDefinition": obj(
        {"key": {"type": "string", "pattern": FIELD_KEY_PATTERN.pattern}, "label": {"type": "string", "minLength": 1},
         "type": {"type": "string", "enum": list(FIELD_TYPES)}},
        {"label_en": MAYBE_TEXT, "active": {"type": "boolean"},
         **{flag: {"type": "boolean"} for flag in FIELD_FLAGS},
         **{option: FIELD_OPTION_SCHEMAS.get(option, {}) for option in FIELD_OPTIONS},
         RENAME_KEY: {"type": "object", "additionalProperties": TEXT, "writeOnly": True,
                      "description": "可选项改名 {原名: 新名}：已保存的记录在后台改为新名"}}),
    "SectionSchemas": obj({"order": {"type": "array", "items": TEXT},
                           "sections": {"type": "object", "additionalProperties": {"type": "object"}}}),
    "Event": obj({"id": ID, "kind": TEXT, "at": MOMENT, "by": {"type": ["string", "null"]}, "by_name": MAYBE_TEXT,
                  "text": TEXT, "attachments": {"type": "array", "items": ID}}),
    "EventCreate": obj({"kind": EVENT_KIND}, {"text": {"type": "string", "maxLength": 5000}}),
    "EventUpload": obj({"kind": EVENT_KIND}, {"text": TEXT, "files": {"type": "array",
                                                                "items": {"type": "string", "format": "binary"}}}),
    "ApprovalRequest": obj({
        "id": TEXT, "state": TEXT, "state_text": TEXT, "amount": TEXT, "amount_text": TEXT, "band": {},
        "band_text": TEXT, "approver": TEXT, "reviewers": {"type": "array", "items": TEXT},
        "pending_reviewers": {"type": "array", "items": TEXT}, "note": TEXT,
        "reviews": {"type": "array", "items": obj({"title": TEXT, "by_name": MAYBE_TEXT, "at": MAYBE_MOMENT,
                                                    "comment": TEXT})},
        "opened_at": MAYBE_MOMENT, "decided_at": MAYBE_MOMENT, "decided_by_name": MAYBE_TEXT, "comment": TEXT}),
    "ApprovalPanel": obj({
        "approval": {"oneOf": [{"type": "null"}, ref("ApprovalRequest")]},
        "actions": {"type": "object", "additionalProperties": MAYBE_TEXT,
                    "description": "每个动作：null 表示可以执行，否则为不能执行的原因"},
        "links": {"type": "array", "items": obj({"role": TEXT, "type": TEXT, "id": ID, "number": MAYBE_TEXT},
                                                 {"type_name": TEXT, "status": MAYBE_TEXT, "due_text": TEXT,
                                                  "result": {}})},
        "record": {"type": "object", "description": "记录（同该类型的详情）"}}),
    "ApprovalAction": obj({"action": {"type": "string", "enum": ["approve", "reject", "review"]}},
                          {"comment": {"type": "string", "maxLength": 2000},
                           "request": {"type": ["string", "null"], "description": "审批请求 id：不是当前请求时 409"}}),
    "RejectResult": obj({"note": {"type": "string", "minLength": 1, "maxLength": 2000,
                                  "description": "客户不接受的内容"}}),
    "ExportJob": obj({"id": ID, "record_type": TEXT, "format": {"type": "string", "enum": list(FORMATS)},
                      "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
                      "total": {"type": "integer"}, "rows_done": {"type": "integer"}, "percent": {"type": "integer"},
                      "filename": MAYBE_TEXT, "error": MAYBE_TEXT, "created_at": MOMENT,
                      "download_url": MAYBE_TEXT}),
    "TokenRequest": obj({"username": TEXT, "password": TEXT},
                        {"name": {"type": ["string", "null"], "maxLength": 60, "description": "用途"}}),
    "TokenIssued": obj({"token": TEXT, "expires_at": MOMENT}),
    "Token": obj({"id": ID, "name": MAYBE_TEXT, "created_at": MOMENT, "expires_at": MAYBE_MOMENT,
                  "last_used_at": MAYBE_MOMENT, "revoked": {"type": "boolean"}}),
    "Notification": obj({
        "id": ID, "kind": TEXT, "title": TEXT, "body": TEXT, "record_id": {"type": ["string", "null"]},
        "record_type": MAYBE_TEXT, "record_number": MAYBE_TEXT, "withheld": {"type": "boolean"},
        "clock": MAYBE_TEXT, "url": MAYBE_TEXT, "urgent": {"type": "boolean"}, "created_at": MOMENT,
        "read": {"type": "boolean"}, "read_at": MAYBE_MOMENT}),
    "Task": obj({"id": ID, "kind": TEXT, "title": TEXT, "record_type": MAYBE_TEXT,
                 "record_id": {"type": ["string", "null"]}, "record_number": MAYBE_TEXT,
                 "withheld": {"type": "boolean"}, "day": {"type": "string", "format": "date"}}),
    "ReferenceQuery": obj({}, {"q": {"type": "string", "maxLength": 100},
                               "project": {"type": ["string", "null"], "description": "项目 id：只找该项目的"}}),
    "Reference": obj({"id": ID, "label": TEXT, "value": TEXT}),
    "Filter": {"type": "array", "prefixItems": [TEXT, TEXT, {}], "minItems": 3, "maxItems": 3,
               "description": "[字段, 运算, 值]"},
    "View": obj({"id": TEXT, "name": TEXT, "builtin": {"type": "boolean"}, "shared": {"type": "boolean"},
                 "mine": {"type": "boolean"}, "filters": {"type": "array", "items": {"type": "array"}},
                 "columns": {"type": "array", "items": TEXT}, "sort": MAYBE_TEXT, "default": {"type": "boolean"}}),
    "ViewCreate": obj({"name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME}},
                      {"filters": {"type": "array", "items": ref("Filter")},
                       "columns": {"type": "array", "items": TEXT},
                       "sort": MAYBE_TEXT, "shared": {"type": "boolean"}, "default": {"type": "boolean"}}),
    "ViewApplied": obj({"id": TEXT, "name": TEXT, "columns": {"type": "array", "items": TEXT},
                        "dropped": {"type": "array", "items": TEXT}}),
}
