"""HTTP endpoints outside Flask-Admin: sign-in, language, health, the JSON API, error pages; the security every
response and sign-in goes through."""
from __future__ import annotations

from flask import Flask

from web import api, attachments, auth, errors, health, i18n, security
from web import surveys as survey_pages


def init_web(app: Flask) -> None:
    """Wire i18n, sign-in, blueprints, error pages and the security of every response into ``app``."""
    app.json.ensure_ascii = False  # Chinese stays readable in API responses
    app.json.sort_keys = False  # keys in the order the code writes them (id, type, version …), unsorted per answer
    errors.bound_database_waits(app)  # first: every other hook's database reads are within the request's deadline
    i18n.init_app(app)
    auth.init_app(app)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(attachments.blueprint)
    app.register_blueprint(survey_pages.blueprint)  # /s/<token>: the public survey answer page
    errors.init_app(app)
    security.init_app(app)
