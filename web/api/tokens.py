"""API routes for tokens: issue one for a password, list and revoke one's own."""
from __future__ import annotations

from flask import jsonify
from flask_login import current_user

from kefu.org import tokens, users
from web.api.base import blueprint, json_body


@blueprint.post("/v1/auth/token")
def issue_token():
    """A token for the username and password in the body (limited per address in ``web.security``)."""
    body = json_body()
    user = users.authenticate(str(body.get("username") or ""), str(body.get("password") or ""))
    token, record = tokens.issue_token(user.pk, name=body.get("name"))
    return jsonify({"token": token, "expires_at": record.expires_at.isoformat()}), 201


@blueprint.get("/v1/auth/tokens")
def list_own_tokens():
    """The caller's own tokens, newest first (never the token nor its digest)."""
    return jsonify({"items": [token.to_dict() for token in tokens.tokens_of(current_user.pk)]})


@blueprint.delete("/v1/auth/tokens/<token_id>")
def revoke_own_token(token_id):
    """Revoke one of the caller's tokens; someone else's answers 404."""
    return jsonify(tokens.revoke_token(token_id, owner_id=current_user.pk).to_dict())
