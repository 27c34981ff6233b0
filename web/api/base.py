"""The API's blueprint and its one error shape: ``{"error": {"code", "message", "fields": {key: message}}}``."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from kefu.core.errors import Conflict, DomainError, LoginFailed, NotFound, PermissionDenied, ValidationFailed
from kefu.core.i18n import _
from kefu.org.customers import LookupLimited
from kefu.records.sections import SectionInvalid

blueprint = Blueprint("api", __name__, url_prefix="/api")

# Endpoints that answer without a signed-in caller.
PUBLIC_ENDPOINTS = {"api.issue_token"}

# A stored definition the section models refuse is the server's fault, not the request's (its message says so).
STATUS_OF = ((LoginFailed, 401), (PermissionDenied, 403), (NotFound, 404), (Conflict, 409), (ValidationFailed, 422),
             (LookupLimited, 429), (SectionInvalid, 500))

MAX_PAGE = 100_000
"""The deepest page a list answers: no person pages further, and a page of 30 digits would overflow the database's
skip."""


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


def allowed_methods(path: str) -> list[str]:
    """The methods some route other than the one answering now takes at ``path`` (with HEAD beside GET, and
    OPTIONS, which Flask answers for every route); empty when no other route matches it."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        try:
            endpoint, _arguments = adapter.match(path, method=method)
        except HTTPException:
            continue
        if endpoint != request.endpoint:
            allowed.append(method)
    if "GET" in allowed:
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return [*allowed, "OPTIONS"] if allowed else []


def json_body() -> dict:
    """The request's JSON object; ``BadRequest`` when it is missing or not an object. (A body nested too deep to
    parse or holding a lone surrogate never gets here: ``web.errors`` answers it with 400 before any view runs.)"""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest(_("请求体应为 JSON 对象（Content-Type: application/json）"))
    return body


def page_args(args, *, max_per_page: int, default_per_page: int = 50) -> tuple[int, int]:
    """``(page, per_page)`` of a list from the query string ``args``; ``BadRequest`` naming the parameter when it is
    not a whole number from 1 to :data:`MAX_PAGE` (``page``) or ``max_per_page`` (``per_page``)."""
    numbers = []
    for name, default, highest in (("page", 1, MAX_PAGE), ("per_page", default_per_page, max_per_page)):
        text = (args.get(name) or str(default)).strip()
        number = int(text) if text.isascii() and text.isdigit() and len(text) <= len(str(highest)) else 0
        if not 1 <= number <= highest:
            message = _("%(name)s 应为 1–%(max)s 之间的整数", name=name, max=highest)
            raise BadRequest(message, {name: message})
        numbers.append(number)
    return numbers[0], numbers[1]
