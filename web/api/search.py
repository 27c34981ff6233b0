"""Search everywhere over the API: ``GET /api/v1/search?q=`` and ``POST /api/v1/search`` ``{"q", "limit"}``.

A thin adapter over ``kefu.insight.search_all`` (the admin's results page calls the same function). A phone number
is searched only with POST: in a URL it would be written to access logs and histories (as ``/api/v1/refs``).
"""
from __future__ import annotations

from flask import jsonify, request

from kefu.core.i18n import _
from kefu.insight import search_all
from web.actor import current_actor
from web.api.base import BadRequest, blueprint, json_body
from web.api.spec_parts import ID, MAYBE_TEXT, MOMENT, TEXT, json_answer, json_body as body_schema, obj, operation, ref

LIMIT_FIELD = "limit"


def _limit(raw) -> int:
    """The hits per group asked for (default ``GROUP_LIMIT``); ``BadRequest`` naming ``limit`` otherwise."""
    if raw is None or raw == "":
        return search_all.GROUP_LIMIT
    text = str(raw).strip()
    number = int(text) if not isinstance(raw, bool) and text.isascii() and text.isdigit() and len(text) <= 3 else 0
    if not 1 <= number <= search_all.MAX_LIMIT:
        message = _("limit 应为 1–%(max)s 之间的整数", max=search_all.MAX_LIMIT)
        raise BadRequest(message, {LIMIT_FIELD: message})
    return number


@blueprint.route("/v1/search", methods=["GET", "POST"])
def search_everywhere():
    """Customers and records of every type matching ``q``, grouped, within the caller's permissions."""
    if request.method == "POST":
        body = json_body()
        text, limit = body.get("q"), _limit(body.get(LIMIT_FIELD))
        if not isinstance(text, str):
            raise BadRequest(_("q 应为文本"), {"q": _("q 应为文本")})
    else:
        text, limit = request.args.get("q", ""), _limit(request.args.get(LIMIT_FIELD))
        if search_all.phone_of(text.strip()):
            raise BadRequest(_("按电话搜索请用 POST 提交（JSON 正文 {\"q\": \"电话号码\"}），不要把电话号码放在网址里"),
                             {"q": _("电话号码不能放在网址里")})
    result = search_all.search_everywhere(text, current_actor(), limit=limit)
    return jsonify({"read_as": result.read_as, "total": result.total, "groups": [{
        "key": group.key, "kind": "customers" if group.is_customers else "records", "name": group.name,
        "total": group.total, "exact": group.exact,
        "items": [_item(hit) for hit in group.hits]} for group in result.groups]})


def _item(hit: dict) -> dict:
    created = hit.get("created_at")
    return {**hit, "created_at": created.isoformat()} if created is not None else hit


# -- the OpenAPI description (web.api.spec adds it) ------------------------------------------------------------

SEARCH_SCHEMAS = {
    "SearchQuery": obj({"q": {"type": "string", "maxLength": search_all.MAX_QUERY_LENGTH}},
                       {"limit": {"type": "integer", "minimum": 1, "maximum": search_all.MAX_LIMIT}}),
    "SearchCustomer": obj({"id": ID, "name": TEXT, "phone": MAYBE_TEXT, "project": MAYBE_TEXT, "unit": MAYBE_TEXT,
                           "grade": MAYBE_TEXT}),
    "SearchRecord": obj({"id": ID, "type": TEXT, "number": TEXT, "status": TEXT,
                         "customer": {"oneOf": [{"type": "null"}, obj({"id": ID, "name": TEXT})]}},
                        {"created_at": MOMENT}),
    "SearchGroup": obj({"key": TEXT, "kind": {"type": "string", "enum": ["customers", "records"]}, "name": TEXT,
                        "total": {"type": "integer", "minimum": 0}, "exact": {"type": "boolean"},
                        "items": {"type": "array", "items": {"anyOf": [ref("SearchCustomer"), ref("SearchRecord")]}}}),
    "SearchResult": obj({"read_as": {"type": "array", "items": {"type": "string", "enum": list(
        search_all.READ_AS_LABELS)}}, "total": {"type": "integer", "minimum": 0},
        "groups": {"type": "array", "items": ref("SearchGroup")}}),
}


def search_paths() -> dict:
    """The path of search everywhere."""
    answer = {"200": json_answer(ref("SearchResult"))}
    return {"/api/v1/search": {
        "get": operation("搜索全部（编号、客户姓名、户位、文字）", "搜索", answer, ("422",), parameters=[
            {"name": "q", "in": "query", "required": True,
             "schema": {"type": "string", "maxLength": search_all.MAX_QUERY_LENGTH}},
            {"name": "limit", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": search_all.MAX_LIMIT}}],
            description=f"电话号码不能放在网址里：按电话搜索请用 POST。每组最多计数到 {search_all.COUNT_CAP}"
                        "（exact 为 false 表示超过）。"),
        "post": operation("搜索全部（含按电话精确查找）", "搜索", answer, ("422", "429"), write=True,
                          body=body_schema(ref("SearchQuery"))),
    }}
