"""API routes: a record's approval request (审批) — read it, review, approve or reject it."""
from __future__ import annotations

from flask import jsonify

from kefu.insight import exports
from kefu.records import types as record_types
from kefu.records.store import get_record_for
from kefu.rules import approval_panel, approvals
from kefu.rules.callbacks import links_of
from web.actor import current_actor
from web.api.base import blueprint, json_body


def _body(record_type, document, actor) -> dict:
    panel = approval_panel.panel(record_type, document, actor) or {}
    links = links_of(document, actor.tz, actor.access)
    return {
        "approval": approval_panel.request_json(document, actor.tz),
        "actions": panel.get("actions") or {},
        "links": [{k: v for k, v in link.items() if k != "due_at"} for link in links],
        "record": exports.record_json(record_type, document, actor),
    }


@blueprint.get("/v1/records/<type_key>/<record_id>/approval")
def get_approval(type_key, record_id):
    """The request, and for each action ``null`` (you may) or why you may not; 404 for a record you may not read."""
    record_type = record_types.get_record_type(type_key, active_only=False)
    actor = current_actor()
    return jsonify(_body(record_type, get_record_for(type_key, record_id, actor.access), actor))


@blueprint.post("/v1/records/<type_key>/<record_id>/approval")
def act_on_approval(type_key, record_id):
    """``{"action": "approve" | "reject" | "review", "comment": "…", "request": "<id>"}``: 200 with the request
    and the record; 404 for a record you may not read (an approver reads those awaiting their title); 403 without
    ``approve`` on the type or the band's title; 409 when there is nothing pending, reviewers are still to review,
    or ``request`` is no longer the current one."""
    record_type = record_types.get_record_type(type_key, active_only=False)
    body = json_body()
    actor = current_actor()
    document = approvals.act(type_key, record_id, str(body.get("action") or ""), actor,
                             comment=str(body.get("comment") or ""), request_id=body.get("request") or None)
    return jsonify(_body(record_type, document, actor))
