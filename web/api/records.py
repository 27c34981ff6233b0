"""API routes: record types, records, timeline events, references, OpenAPI, exports."""
from __future__ import annotations

from flask import Response, jsonify, make_response, request, stream_with_context
from flask_login import current_user

from kefu.core.errors import Conflict, PermissionDenied, ValidationFailed
from kefu.core.i18n import _
from kefu.insight import export_jobs, exports, views
from kefu.org.customers import looks_like_phone
from kefu.org.roles import ALL_CAPABILITIES, Capability
from kefu.records import definitions, store, timeline
from kefu.records import types as record_types
from kefu.records import write
from kefu.records.core_fields import field_for
from kefu.records.fields import get_field_type
from kefu.records.query import MAX_PER_PAGE, SLA_SORT, Condition, RecordQuery, find_records
from kefu.records.references import CUSTOMER, REFERENCE_KINDS, search_references
from web.actor import current_actor
from web.api.base import BadRequest, allowed_methods, blueprint, error_response, json_body, page_args

LIST_PARAMETERS = {"q", "sort", "page", "per_page", "view", "columns"}
QUEUE_RETRY_AFTER_SECONDS = 30  # an export's queue (Redis) unavailable: worth trying again after a short while


def _require_system_settings() -> None:
    """Record types are system settings: only a role with ``manage_system`` changes them."""
    if not current_actor().access.has(Capability.MANAGE_SYSTEM.value):
        raise PermissionDenied(_("只有具备“系统设置”权限的角色（如系统管理员）可以修改记录类型"))


# -- the caller ------------------------------------------------------------------

@blueprint.get("/v1/me")
def me():
    user = current_user
    return jsonify({
        "id": str(user.pk), "username": user.username, "display_name": user.display_name,
        "roles": list(user.roles), "department": user.department.name if user.department else None,
        "capabilities": sorted(c for c in ALL_CAPABILITIES if current_actor().access.has(c)),
    })


# -- record types ---------------------------------------------------------------

@blueprint.get("/v1/types")
def list_types():
    return jsonify({"items": [t.to_dict() for t in record_types.active_record_types()]})


@blueprint.get("/v1/types/<key>")
def get_type(key):
    return jsonify(record_types.get_record_type(key).to_dict())


@blueprint.post("/v1/types")
def create_type():
    _require_system_settings()
    saved = definitions.save_definition(json_body(), by=current_user.username)
    return jsonify(saved.to_dict()), 201


@blueprint.put("/v1/types/<key>")
def replace_type(key):
    _require_system_settings()
    saved = definitions.save_definition(json_body(), by=current_user.username, key=key)
    return jsonify(saved.to_dict())


# -- records --------------------------------------------------------------------

def list_query(args, record_type) -> RecordQuery:
    """Parse ``<field>=v``, ``<field>__gte=``, ``__lte=``, ``__in=a,b``, ``q``, ``sort``, ``page``, ``per_page``."""
    conditions = []
    for name, value in args.items(multi=True):
        if name in LIST_PARAMETERS or name in ("overdue", "due_soon"):
            continue
        key, _sep, op = name.partition("__")
        op = op or "eq"
        if value.lstrip().startswith(("{", "[")) or value.startswith("$"):
            raise BadRequest(_("查询值不能是对象或运算符：%(name)s", name=name), {key: _("不接受查询运算符")})
        try:
            definition = field_for(record_type, key)
        except ValidationFailed as exc:
            raise BadRequest(exc.message, exc.fields) from exc
        if op not in get_field_type(definition.type).operators:
            allowed = "、".join(get_field_type(definition.type).operators)
            raise BadRequest(_("字段“%(key)s”不支持运算“%(op)s”；可用：%(allowed)s", key=key, op=op, allowed=allowed),
                             {key: _("不支持的运算")})
        conditions.append(Condition(key, op, value.split(",") if op == "in" else value))
    page, per_page = page_args(args, max_per_page=MAX_PER_PAGE)
    sort = args.get("sort") or None
    if sort and sort.lstrip("-") != SLA_SORT:
        try:
            field_for(record_type, sort.lstrip("-"))
        except ValidationFailed as exc:
            raise BadRequest(exc.message, exc.fields) from exc
    return RecordQuery(conditions=conditions, q=args.get("q"), sort=sort, page=page, per_page=per_page,
                               overdue=_flag(args, "overdue"), due_soon=_flag(args, "due_soon"))


def _flag(args, name: str) -> bool:
    value = (args.get(name) or "").strip().lower()
    if value in ("", "false", "0", "no"):
        return False
    if value in ("true", "1", "yes"):
        return True
    raise BadRequest(_("%(name)s 应为 true 或 false", name=name), {name: _("应为 true 或 false")})


def _values_from_request() -> tuple[dict, list]:
    """Field values from a JSON body, or from a multipart form with files."""
    if request.mimetype == "multipart/form-data":
        values = {key: request.form.getlist(key) if len(request.form.getlist(key)) > 1 else request.form[key]
                  for key in request.form}
        for key in request.files:
            values[key] = [f for f in request.files.getlist(key) if f and f.filename]
        return values, []
    return json_body(), []


def view_query(args, record_type, actor) -> tuple[RecordQuery, views.Resolved | None]:
    """``list_query`` with the saved or built-in view named by ``view=`` applied (its filters, and its sort when
    none is given); a view that does not exist is 404."""
    query = list_query(args, record_type)
    resolved = views.resolve(record_type, args["view"], actor) if args.get("view") else None
    if resolved is not None:
        resolved.apply(query)
    return query, resolved


def _view_json(resolved: views.Resolved | None) -> dict | None:
    if resolved is None:
        return None
    return {"id": resolved.key, "name": resolved.name, "columns": resolved.columns, "dropped": resolved.dropped}


@blueprint.get("/v1/records/<type_key>")
def list_records(type_key):
    record_type = record_types.get_record_type(type_key, active_only=False)
    actor = current_actor()
    query, resolved = view_query(request.args, record_type, actor)
    try:
        total, documents = find_records(type_key, query, actor, record_type=record_type)
    except ValidationFailed as exc:
        raise BadRequest(exc.message, exc.fields) from exc
    return jsonify({"items": exports.records_json(record_type, documents, actor, explained=False),
                    "total": total, "view": _view_json(resolved)})


@blueprint.post("/v1/records/<type_key>")
def create_record(type_key):
    record_type = record_types.get_record_type(type_key)
    values, _files = _values_from_request()
    actor = current_actor()
    # A retry with the same Idempotency-Key (after a timeout or a 503) answers with the record the first try made.
    document = write.create_record(type_key, values, actor, idempotency_key=request.headers.get("Idempotency-Key"))
    return jsonify(exports.record_json(record_type, document, actor)), 201


@blueprint.get("/v1/records/<type_key>/<record_id>")
def get_record(type_key, record_id):
    record_type = record_types.get_record_type(type_key, active_only=False)
    actor = current_actor()
    document = store.get_record_for(type_key, record_id, actor.access)
    body = exports.record_json(record_type, document, actor)
    body["events"] = [exports.event_json(e, actor) for e in timeline.record_events(document["_id"])]
    return jsonify(body)


@blueprint.patch("/v1/records/<type_key>/<record_id>")
def update_record(type_key, record_id):
    record_type = record_types.get_record_type(type_key, active_only=False)
    values, _files = _values_from_request()
    version = values.pop("version", None)
    if version is None:
        raise BadRequest(_("请提供 version（读取记录时得到的版本号）"), {"version": _("缺少版本号")})
    actor = current_actor()
    try:
        document = write.update_record(type_key, record_id, values, actor, version=version)
    except Conflict as exc:
        # ``current`` as this user may see it: masked as their roles say (they may edit it, so they may read it).
        body = {"error": {"code": exc.code, "message": str(exc.message),
                          "fields": {"version": str(exc.fields["version"])},
                          "current": exports.record_json(record_type, exc.current, actor)}}
        return jsonify(body), 409
    return jsonify(exports.record_json(record_type, document, actor))


@blueprint.post("/v1/records/<type_key>/<record_id>/events")
def add_event(type_key, record_id):
    actor = current_actor()
    if request.mimetype == "multipart/form-data":
        kind, text = request.form.get("kind", ""), request.form.get("text", "")
        files = [f for f in request.files.getlist("files") if f and f.filename]
    else:
        body = json_body()
        kind, text, files = str(body.get("kind") or ""), str(body.get("text") or ""), []
    event = timeline.add_event(type_key, record_id, kind, text, actor, files=files)
    return jsonify(exports.event_json(event, actor)), 201


@blueprint.get("/v1/records/<type_key>/export.<fmt>")
def export_records(type_key, fmt):
    """The list's records (same filters, ``view``, ``sort``) as CSV or XLSX; ``columns=a,b`` picks the columns
    (default: every field). More rows than ``KEFU_EXPORT_ASYNC_ROWS``: 202, built in the background
    (``GET /api/v1/exports/<id>`` for progress, then its ``download_url``)."""
    record_type = record_types.get_record_type(type_key, active_only=False)
    if fmt not in exports.FORMATS:
        raise BadRequest(_("导出格式应为 csv 或 xlsx"))
    actor = current_actor()
    query, resolved = view_query(request.args, record_type, actor)
    columns = [c for c in (request.args.get("columns") or "").split(",") if c] or (resolved.columns if resolved else [])
    try:
        total = exports.count_rows(record_type, query, actor)
    except ValidationFailed as exc:
        raise BadRequest(exc.message, exc.fields) from exc
    if total > export_jobs.async_threshold():
        job = export_jobs.start(record_type, query, actor, fmt, total=total, columns=columns, view=resolved)
        if job.status == "failed":
            response = make_response(error_response(503, "queue_unavailable", job.error))
            response.headers["Retry-After"] = str(QUEUE_RETRY_AFTER_SECONDS)
            return response
        return jsonify({"export": export_jobs.job_json(job, actor.tz), "status_url": f"/api/v1/exports/{job.pk}"}), 202
    export = exports.export_records(record_type, query, actor, fmt, columns=columns, view=resolved)
    return Response(stream_with_context(export.chunks), mimetype=export.mimetype,
                    headers={"Content-Disposition": export.content_disposition})


@blueprint.get("/v1/exports/<job_id>")
def export_status(job_id):
    actor = current_actor()
    return jsonify(export_jobs.job_json(export_jobs.get_for(actor.user_id, job_id), actor.tz))


@blueprint.get("/v1/exports/<job_id>/download")
def export_download(job_id):
    job, stored = export_jobs.open_file(current_actor().user_id, job_id)
    return Response(stream_with_context(iter(lambda: stored.read(256 * 1024), b"")),
                    mimetype=exports.FORMATS[job.fmt],
                    headers={"Content-Disposition": exports.content_disposition(job.filename)})


# -- references and schema ----------------------------------------------------------

@blueprint.route("/v1/refs/<kind>", methods=["GET", "POST"])
def references(kind):
    """Suggestions: ``GET ?q=&project=``, or ``POST {"q", "project"}`` — the only way to look a customer up by phone
    (a number in a URL would be written to access logs)."""
    if kind not in REFERENCE_KINDS:
        raise BadRequest(_("引用类型应为：%(kinds)s", kinds="、".join(REFERENCE_KINDS)))
    if request.method == "POST":
        body = json_body()
        text, project = str(body.get("q") or ""), body.get("project")
    else:
        text, project = request.args.get("q", ""), request.args.get("project")
        if kind == CUSTOMER and looks_like_phone(text):
            raise BadRequest(_("按电话查找客户请用 POST 提交（JSON 正文 {\"q\": \"电话号码\"}），不要把电话号码放在网址里"),
                             {"q": _("电话号码不能放在网址里")})
    project = str(project) if project is not None else None
    return jsonify({"items": search_references(kind, text, project=project, actor=current_actor())})


@blueprint.route("/<path:anything>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(anything):
    """A path no route has: 404; a path that has routes, but not for this method: 405 listing them in ``Allow``."""
    allowed = allowed_methods(request.path)
    if allowed:
        response = make_response(error_response(405, "method_not_allowed", _(
            "接口 /api/%(path)s 不支持 %(method)s；可用：%(allowed)s", path=anything, method=request.method,
            allowed="、".join(allowed))))
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return error_response(404, "not_found", _("没有这个接口：/api/%(path)s", path=anything))
