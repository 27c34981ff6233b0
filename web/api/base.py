"""The API's blueprint and its one error shape: ``{"error": {"code", "message", "fields": {key: message}}}``."""
from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_login import current_user

from kefu.core.errors import Conflict, DomainError, LoginFailed, NotFound, PermissionDenied, ValidationFailed
from kefu.core.i18n import _
from kefu.records.sections import SectionInvalid

blueprint = Blueprint("api", __name__, url_prefix="/api")

# Endpoints that answer without a signed-in caller.
PUBLIC_ENDPOINTS = {"api.issue_token"}

# A stored definition the section models refuse is the server's fault, not the request's (its message says so).
STATUS_OF = ((LoginFailed, 401), (PermissionDenied, 403), (NotFound, 404), (Conflict, 409), (ValidationFailed, 422),
             (SectionInvalid, 500))


class BadRequest(ValidationFailed):
    """Malformed request (unknown filter field or operator, bad JSON): answered with 400."""

    code = "bad_request"


def error_response(status: int, code: str, message, fields: dict | None = None, **extra):
    """The one JSON error shape."""
    body = {"error": {"code": code, "message": str(message),
                      "fields": {str(k): str(v) for k, v in (fields or {}).items()}, **extra}}
    return jsonify(body), status


@blueprint.before_request
def require_caller():
    """Every route but token issuing needs a session or ``Authorization: Bearer <token>``."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return error_response(401, "unauthorized", _("请先登录或提供有效的令牌（Authorization: Bearer …）"))
    return None


def status_of(exc: DomainError) -> int:
    """The HTTP status a domain error answers with (400 when no more particular one fits)."""
    return 400 if isinstance(exc, BadRequest) else next((s for cls, s in STATUS_OF if isinstance(exc, cls)), 400)


@blueprint.errorhandler(DomainError)
def domain_error(exc: DomainError):
    return error_response(status_of(exc), exc.code, exc.message, exc.fields)


def json_body() -> dict:
    """The request's JSON object; ``BadRequest`` when it is missing or not an object."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest(_("请求体应为 JSON 对象（Content-Type: application/json）"))
    return body
