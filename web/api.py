"""The JSON API under ``/api/``. Every route needs a signed-in caller; errors are JSON."""
from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user, login_required

from kefu.i18n import _

blueprint = Blueprint("api", __name__, url_prefix="/api")


def error_response(status: int, code: str, message, fields: dict | None = None):
    """The one JSON error shape: ``{"error": {"code", "message", "fields"}}``."""
    body = {"error": {"code": code, "message": str(message), "fields": {k: str(v) for k, v in (fields or {}).items()}}}
    return jsonify(body), status


@blueprint.before_request
@login_required
def require_sign_in():
    """Refuse every API route to anonymous callers with a JSON 401 (via Flask-Login)."""


@blueprint.get("/v1/me")
def me():
    user = current_user
    return jsonify({
        "id": str(user.pk), "username": user.username, "display_name": user.display_name,
        "roles": list(user.roles), "department": user.department.name if user.department else None,
        "permissions": sorted(user.permissions),
    })


@blueprint.route("/<path:anything>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(anything):
    return error_response(404, "not_found", _("没有这个接口：/api/%(path)s", path=anything))
