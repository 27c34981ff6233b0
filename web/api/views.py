"""API routes: saved views of a record type's list (``kefu.insight.views``), for a type the caller may read."""
from __future__ import annotations

from flask import jsonify
from flask_login import current_user

from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _
from kefu.insight import views
from kefu.org.roles import Action
from kefu.records import types as record_types
from web.actor import current_actor
from web.api.base import blueprint, json_body


def _readable_type(type_key: str):
    """The record type ``type_key``; 403 when the caller may read none of its records (its views would list none)."""
    record_type = record_types.get_record_type(type_key, active_only=False)
    current_actor().access.require(record_type.key, Action.READ.value, record_type.name)
    return record_type


@blueprint.get("/v1/views/<type_key>")
def list_views(type_key):
    """Built-in, own and shared views of the type, the caller's default marked."""
    return jsonify({"items": views.views_for(_readable_type(type_key), current_user)})


@blueprint.post("/v1/views/<type_key>")
def create_view(type_key):
    """``{"name", "filters": [[field, op, value]], "columns": [...], "sort", "shared", "default"}`` → 201."""
    record_type = _readable_type(type_key)
    body = json_body()
    _require_json_types(body)
    view = views.save_view(record_type, current_user, str(body.get("name") or ""), body.get("filters") or [],
                           columns=body.get("columns") or [], sort=body.get("sort"), shared=bool(body.get("shared")))
    if body.get("default"):
        views.set_default(record_type, current_actor(), str(view.pk))
    item = next(i for i in views.views_for(record_type, current_user) if i["id"] == str(view.pk))
    return jsonify(item), 201


def _require_json_types(body: dict) -> None:
    """422 naming each of ``filters``, ``columns`` (lists) and ``sort`` (text) given as something else."""
    problems = {name: _("应为列表") for name in ("filters", "columns")
                if body.get(name) is not None and not isinstance(body[name], list)}
    if body.get("sort") is not None and not isinstance(body["sort"], str):
        problems["sort"] = _("应为字段键（文字）")
    if problems:
        raise ValidationFailed(_("视图格式不正确：%(names)s", names="、".join(problems)), problems)


@blueprint.delete("/v1/views/<type_key>/<view_id>")
def delete_view(type_key, view_id):
    views.delete_view(_readable_type(type_key), current_user, view_id)
    return jsonify({"deleted": view_id})


@blueprint.put("/v1/views/<type_key>/default")
def set_default_view(type_key):
    """``{"view": "<id or builtin:key>"}`` (or null to clear) → the caller's default view of the type."""
    record_type = _readable_type(type_key)
    key = json_body().get("view")
    views.set_default(record_type, current_actor(), str(key) if key else None)
    return jsonify({"default": views.default_key(current_user.pk, record_type.key)})
