"""API routes: the customer rejects a record's result (客户不接受处理结果) — one level up, back to rework."""
from __future__ import annotations

from flask import jsonify

from kefu.insight import exports
from kefu.records import types as record_types
from kefu.records.timeline import record_events
from kefu.rules import levels
from web.actor import current_actor
from web.api.base import blueprint, json_body


@blueprint.post("/v1/records/<type_key>/<record_id>/reject")
def reject_result(type_key, record_id):
    """``{"note": "…"}`` (required: what the customer does not accept): 200 with the record and its timeline,
    the level raised by the type's ``levels.on_rejected.steps`` and the status back to its workflow's ``rework``;
    422 without a note; 404 for a record the caller may not read, 403 for one they may read but not edit."""
    record_type = record_types.get_record_type(type_key, active_only=False)
    body = json_body()
    actor = current_actor()
    document = levels.customer_rejected(type_key, record_id, actor, str(body.get("note") or ""))
    result = exports.record_json(record_type, document, actor)
    result["events"] = [exports.event_json(e, actor) for e in record_events(document["_id"])]
    return jsonify(result)
