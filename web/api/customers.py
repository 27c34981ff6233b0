"""API routes: a customer's 360° archive (``GET /api/v1/customers/<id>``) and the caller lookup
(``GET /api/v1/lookup?phone=`` or ``?unit=``), with their OpenAPI paths and schemas (``customer_paths``, ``CUSTOMER_SCHEMAS``).

The lookup takes the phone number in the query because call-centre systems open it on an incoming call; the access
log keeps paths without their query string (``kefu.runtime.launcher.ACCESS_LOG_FORMAT``) and the app logs only
paths, so the number is not written to a log."""
from __future__ import annotations

from flask import jsonify, request

from kefu.insight import customer_archive
from web.actor import current_actor
from web.api.base import blueprint
from web.api.spec_parts import ID, MAYBE_MOMENT, MAYBE_TEXT, TEXT, json_answer, obj, operation, path_id, ref


@blueprint.get("/v1/customers/<customer_id>")
def customer_archive_view(customer_id):
    """The archive: profile (masked per role), grade, and every record linked to the customer that the caller may
    read, newest first (``?type=`` one type's only); 403 for a role that may not keep the archive
    (``manage_customers``: looking callers up is not enough), 404 for an unknown id."""
    return jsonify(customer_archive.archive(customer_id, current_actor(), type_key=request.args.get("type") or None))


@blueprint.get("/v1/lookup")
def caller_lookup():
    """``?phone=`` (or ``?unit=3幢2单元1201``): the customers with that exact number (living in that unit) and the
    records linked to them or carrying the number (naming the unit); 422 for text that is not a phone number (a
    unit), 403 without ``lookup_customers``, 429 past the lookup limit."""
    return jsonify(customer_archive.lookup(current_actor(), phone=request.args.get("phone"),
                                           unit=request.args.get("unit")))


_NAMED = {"type": ["object", "null"]}
CUSTOMER_SCHEMAS = {
    "Customer": obj({
        "id": ID, "name": TEXT, "gender": MAYBE_TEXT, "grade": MAYBE_TEXT, "phone": MAYBE_TEXT,
        "id_number": MAYBE_TEXT, "address": MAYBE_TEXT, "project": _NAMED, "unit": _NAMED, "notes": TEXT,
        "archived": {"type": "boolean"}, "merged_into": {"type": ["string", "null"]}, "created_at": MAYBE_MOMENT,
        "tier": MAYBE_TEXT, "points": {"type": "integer"},
    }),
    "PointsEntry": obj({
        "points": {"type": "integer"}, "reason": TEXT, "kind": MAYBE_TEXT, "record": _NAMED, "by": MAYBE_TEXT,
        "at": MAYBE_MOMENT,
    }),
    "RecordSummary": obj({
        "id": ID, "type": TEXT, "type_name": TEXT, "number": MAYBE_TEXT, "status": MAYBE_TEXT,
        "customer": {"type": ["string", "null"]}, "created_at": MAYBE_MOMENT, "updated_at": MAYBE_MOMENT,
        "open": {"type": "boolean"}, "deadline": MAYBE_MOMENT, "clock": MAYBE_TEXT, "clock_state": MAYBE_TEXT,
        "overdue": {"type": "boolean"},
    }, {"result": {}}),
}
CUSTOMER_SCHEMAS["CustomerArchive"] = obj({
    "customer": ref("Customer"), "timeline": {"type": "array", "items": ref("RecordSummary")},
    "total": {"type": "integer", "minimum": 0},
    "open": {"type": "array", "items": ref("RecordSummary")},
    "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
    "points_history": {"type": "array", "items": ref("PointsEntry")},
})
CUSTOMER_SCHEMAS["CallerLookup"] = obj({
    "customers": {"type": "array", "items": ref("Customer")},
    "records": {"type": "array", "items": ref("RecordSummary")},
    "contacts": {"type": "array", "items": ref("RecordSummary")},
})


def customer_paths() -> dict:
    """The archive and the caller lookup, for ``web.api.spec``."""
    return {
        "/api/v1/customers/{customer_id}": {
            "parameters": [path_id("customer_id", "客户 id")],
            "get": operation("客户 360° 档案（资料与全部关联记录）", "客户", {"200": json_answer(ref("CustomerArchive"))},
                             ("403", "404"), parameters=[{"name": "type", "in": "query", "schema": {
                                 "type": "string", "maxLength": 40}, "description": "只看一种记录类型（类型键）"}],
                             description="需要“登记和修改客户档案”权限；只能按电话查找客户的角色请用 /api/v1/lookup。"
                                         "timeline 为最新 200 条，total 为全部条数。")},
        "/api/v1/lookup": {"get": operation(
            "来电弹屏：按电话或户位查找客户及其记录", "客户", {"200": json_answer(ref("CallerLookup"))},
            ("403", "422", "429"),
            parameters=[{"name": "phone", "in": "query", "schema": {"type": "string", "maxLength": 40},
                         "description": "来电号码（任意写法）"},
                        {"name": "unit", "in": "query", "schema": {"type": "string", "maxLength": 40},
                         "description": "户位（如 3幢2单元1201、3-2-1201），不提供 phone 时使用"}],
            description="phone 与 unit 二选一；每次查找计入查找客户的次数限制；号码不写入访问日志。"
                        "contacts 为每位客户最近的联系（已记录结果的回访）。")},
    }
