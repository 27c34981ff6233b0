"""API routes: the OpenAPI document (``web.api.spec``) and the API reference page that renders it (Swagger UI,
served from our static files: no CDN, and no inline script under the site's Content-Security-Policy)."""
from __future__ import annotations

import json

from flask import Response, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from kefu.records import types as record_types
from web.api.base import PUBLIC_ENDPOINTS, blueprint
from web.api.spec import openapi_document

# The page answers everyone: a visitor not signed in is sent to the login page and back (the document it reads
# needs a caller, so nothing is shown before that).
PUBLIC_ENDPOINTS.add("api.docs_page")


@blueprint.get("/v1/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of the API as the record types are defined now."""
    document = openapi_document(record_types.active_record_types(),
                                cookie_name=current_app.config["SESSION_COOKIE_NAME"])
    return Response(json.dumps(document, ensure_ascii=False), mimetype="application/json")


@blueprint.get("/docs")
def docs_page():
    """The API reference (Swagger UI) for a signed-in person; others are sent to sign in first."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return render_template("api_docs.html", spec_url=url_for("api.openapi"))
