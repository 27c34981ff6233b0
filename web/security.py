"""What every response and every sign-in attempt goes through: rate limits, CSRF for the API, security headers.

- Sign-in (``/login`` and ``POST /api/v1/auth/token``) is limited with Flask-Limiter, counted in Redis, per client
  address and per login name and address: failed attempts only, shared by both doors. Nobody can lock someone else
  out (their own address has its own count) and a known name is answered as an unknown one.
- A cookie-signed-in caller writing through the API sends Flask-WTF's CSRF token (the pages' ``<meta
  name="csrf-token">``) in ``X-CSRFToken``; a bearer-token caller needs none (another site cannot set that header).
  The admin's forms keep their own token (Flask-Admin's ``SecureForm``, same secret, same field name).
- Flask-Talisman's headers on every response: a CSP allowing only our own scripts (and Flask-Admin's inline ones by
  a per-request nonce), no framing, ``nosniff``, ``same-origin`` referrers; ``no-store`` on everything but static
  files (pages, API answers and exports carry personal data).
"""
from __future__ import annotations

import hashlib
import math
import time

from flask import Flask, current_app, make_response, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_login import current_user
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from kefu.core.i18n import _
from web import auth
from web.api.base import PUBLIC_ENDPOINTS, error_response

SIGN_IN_ENDPOINTS = ("auth.login", "api.issue_token")
# The moving window in which failed sign-ins are counted: KEFU_SIGN_IN_LIMIT_PER_ADDRESS from one address (an
# office behind one NAT address signs in from it), KEFU_SIGN_IN_LIMIT_PER_NAME for one login name from one address.
SIGN_IN_WINDOW_MINUTES = 15
SIGN_IN_WINDOW = f"{SIGN_IN_WINDOW_MINUTES} minutes"

CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",  # + the request's nonce (Flask-Admin's few inline scripts)
    "style-src": "'self' 'unsafe-inline'",  # style attributes of Flask-Admin's widgets and of ECharts
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def init_app(app: Flask) -> None:
    """Wire the limits, CSRF and headers into ``app``; after the blueprints (the limits wrap their views)."""
    proxies = app.config["KEFU_TRUSTED_PROXIES"]
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    _limit_sign_in(app)
    # Checked only where asked (cookie-signed-in API writes): the admin's and the login's forms check their own.
    app.config.update(WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None)
    app.extensions["kefu_csrf"] = CSRFProtect(app)
    app.before_request(_require_csrf_token)
    Talisman(app, force_https=False, frame_options="DENY", content_security_policy=CONTENT_SECURITY_POLICY,
             content_security_policy_nonce_in=["script-src"], referrer_policy="same-origin",
             session_cookie_secure=app.config["SESSION_COOKIE_SECURE"])
    app.after_request(_no_store)


def csp_nonce() -> str:
    """This request's CSP nonce (Talisman makes one per request), for Flask-Admin's inline scripts."""
    return getattr(request, "csp_nonce", "")


# -- sign-in limits -------------------------------------------------------------------------------

def _client_address() -> str:
    return request.remote_addr or "unknown"


def _name_and_address() -> str:
    """The login name tried (from the form or the JSON body), digested, with the client address."""
    body = request.get_json(silent=True) if request.is_json else request.form
    name = body.get("username") if hasattr(body, "get") else None
    digest = hashlib.sha256(str(name or "").strip().encode("utf-8", "surrogatepass")).hexdigest()
    return f"{digest}@{_client_address()}"


def _failed(response) -> bool:
    """Only failed attempts count: a person signing in every morning uses nothing up."""
    return response.status_code == 401


def _limit_sign_in(app: Flask) -> None:
    limiter = Limiter(_client_address, app=app, storage_uri=app.config["REDIS_URL"], strategy="moving-window",
                      key_prefix="kefu-sign-in", storage_options={"socket_timeout": 2, "socket_connect_timeout": 2})
    per_address = f"{app.config['KEFU_SIGN_IN_LIMIT_PER_ADDRESS']} per {SIGN_IN_WINDOW}"
    per_name = f"{app.config['KEFU_SIGN_IN_LIMIT_PER_NAME']} per {SIGN_IN_WINDOW}"
    rules = [limiter.shared_limit(per_address, scope="address", methods=["POST"], deduct_when=_failed),
             limiter.shared_limit(per_name, scope="name", key_func=_name_and_address, methods=["POST"],
                                  deduct_when=_failed)]
    for endpoint in SIGN_IN_ENDPOINTS:
        view = app.view_functions[endpoint]
        for rule in rules:
            view = rule(view)
        app.view_functions[endpoint] = view
    app.extensions["kefu_limiter"] = limiter
    app.register_error_handler(RateLimitExceeded, _too_many_attempts)


def _too_many_attempts(exc: RateLimitExceeded):
    """429 with ``Retry-After`` and the same Chinese message whichever limit was reached."""
    breached = current_app.extensions["kefu_limiter"].current_limit
    # The limiter's reset time is kept in whole seconds: never promise more than the window itself.
    seconds = max(1, math.ceil(breached.reset_at - time.time())) if breached else 60
    seconds = min(seconds, SIGN_IN_WINDOW_MINUTES * 60)
    message = _("尝试次数过多，请 %(minutes)s 分钟后再试", minutes=math.ceil(seconds / 60))
    if request.blueprint == "api":
        response = make_response(error_response(429, "too_many_requests", message))
    else:
        response = auth.login_page(429, message)
    response.headers["Retry-After"] = str(seconds)
    return response


# -- CSRF for the API ---------------------------------------------------------------------------------

def _require_csrf_token():
    """A cookie-signed-in write to the API carries the CSRF token; a bearer token or the public token endpoint
    needs none. Before the API's own check, so the answer is the API's JSON error shape."""
    if (request.blueprint != "api" or request.method in ("GET", "HEAD", "OPTIONS")
            or request.endpoint in PUBLIC_ENDPOINTS
            or request.headers.get("Authorization", "").lower().startswith("bearer ")
            or not current_user.is_authenticated):
        return None
    try:
        current_app.extensions["kefu_csrf"].protect()
    except CSRFError:
        return error_response(400, "csrf_failed", _(
            "缺少或无效的 CSRF 令牌：用登录会话调用 API 写操作时，请在请求头 X-CSRFToken 中带上页面 "
            "<meta name=\"csrf-token\"> 的值；系统对接请改用 Authorization: Bearer 令牌"))
    return None


# -- headers ------------------------------------------------------------------------------------------

def _no_store(response):
    """Nothing but static files is kept by browsers or proxies."""
    if (request.endpoint or "").rpartition(".")[2] != "static":
        response.headers["Cache-Control"] = "no-store"
    return response
