"""Sign-in, sign-out and the language switch.

A signed-in browser's cookie (Flask's signed cookie, HttpOnly, SameSite=Lax) holds the key of a session kept in
MongoDB (``kefu.org.sessions``): any web process can serve any request, and signing out — or a password change,
or a disabled account — ends the session on the server, so a copied cookie stops working. Repeated failures are
limited in ``web.security``.
"""
from __future__ import annotations

from flask import Blueprint, Flask, flash, jsonify, make_response, redirect, render_template, request, session, url_for
from flask_admin.form import SecureForm
from flask_admin.helpers import is_safe_url
from flask_login import LoginManager, current_user, login_user, logout_user
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired

from kefu.core.config import SUPPORTED_LOCALES
from kefu.core.errors import LoginFailed
from kefu.core.i18n import _, _l
from kefu.org import sessions, users

blueprint = Blueprint("auth", __name__)
login_manager = LoginManager()
SESSION_KEY = "kefu_session"  # where the cookie keeps the key of the server-side session


class LoginForm(SecureForm):
    username = StringField(_l("登录名"), validators=[InputRequired(message=_l("请输入登录名"))])
    password = PasswordField(_l("密码"), validators=[InputRequired(message=_l("请输入密码"))])


def safe_next_url(target: str | None, fallback: str | None = None) -> str:
    """``target`` when it is a path on this site, else ``fallback`` (default: the admin home): no open redirects
    (Flask-Admin's ``is_safe_url`` also catches ``/\\host`` and ``javascript:``)."""
    if target and target.startswith("/") and is_safe_url(target):
        return target
    return fallback or url_for("admin.index")


def login_page(status: int, message=None):
    """The login page (the name just tried filled in, never the password) with ``message`` as an error."""
    if message:
        flash(str(message), "error")
    return make_response(render_template("login.html", form=LoginForm(request.form)), status)


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next_url(request.args.get("next")))
    form = LoginForm(request.form)
    if request.method != "POST":
        return render_template("login.html", form=form)
    if not form.validate():
        for field in form:
            for message in field.errors:
                flash(_("会话已过期，请重新提交") if field.name == "csrf_token" else str(message), "error")
        return render_template("login.html", form=form), 400
    try:
        user = users.authenticate(form.username.data, form.password.data)
    except LoginFailed as exc:
        return login_page(401, exc)
    session.clear()
    session[SESSION_KEY] = sessions.start_session(user.pk)
    login_user(user)
    return redirect(safe_next_url(request.args.get("next")))


@blueprint.post("/logout")
def logout():
    form = SecureForm(request.form)
    if form.validate():
        sessions.end_session(session.get(SESSION_KEY))
        logout_user()
        session.clear()
        flash(_("您已安全退出"), "info")
    return redirect(url_for("auth.login"))


@blueprint.get("/locale/<code>")
def switch_locale(code: str):
    """Remember the chosen language for this session and, when signed in, for the user."""
    if code in SUPPORTED_LOCALES:
        session["locale"] = code
        if current_user.is_authenticated:
            users.set_locale(current_user._get_current_object(), code)
    return redirect(safe_next_url(request.args.get("next")))


def _unauthorized():
    if request.path.startswith("/api/"):
        return jsonify({"error": {"code": "unauthorized", "message": _("请先登录"), "fields": {}}}), 401
    return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))


def _user_from_session(user_id: str):
    """The user the cookie's server-side session belongs to, while that session is open and names ``user_id``."""
    user = users.session_user(session.get(SESSION_KEY))
    return user if user is not None and str(user.pk) == user_id else None


def _user_from_bearer_token(req):
    """``Authorization: Bearer <token>`` on API calls (integrations have no session)."""
    header = req.headers.get("Authorization", "")
    if not req.path.startswith("/api/") or not header.lower().startswith("bearer "):
        return None
    return users.token_user(header[7:].strip())


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(_user_from_session)
    login_manager.unauthorized_handler(_unauthorized)
    login_manager.request_loader(_user_from_bearer_token)

    @app.context_processor
    def sign_out_form():
        return {"logout_form": SecureForm()}
