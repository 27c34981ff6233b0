"""API route: 兑换 — redeem a customer's points (``POST /api/v1/customers/<id>/redeem``), with its OpenAPI path
(``loyalty_paths``). The balance and tier are in the archive (``GET /api/v1/customers/<id>``)."""
from __future__ import annotations

from flask import jsonify

from kefu.org import loyalty
from web.actor import current_actor
from web.api.base import blueprint, json_body
from web.api.spec_parts import MAYBE_TEXT, json_answer, json_body as body_schema, obj, operation, path_id


@blueprint.post("/v1/customers/<customer_id>/redeem")
def redeem_points(customer_id):
    """``{"points", "reason"}``: take the points from the balance; 422 naming ``points`` when the balance is short
    (nothing written), 403 without ``manage_customers``, 404 for an unknown customer."""
    body = json_body()
    actor = current_actor()
    account = loyalty.redeem_for(customer_id, body.get("points"), body.get("reason"), actor.access, actor.user_id)
    return jsonify(account)


def loyalty_paths() -> dict:
    """The redemption's path, for ``web.api.spec``."""
    answer = obj({"tier": MAYBE_TEXT, "points": {"type": "integer"}, "deals": {"type": "integer"},
                  "amount": {"type": "string"}})
    return {"/api/v1/customers/{customer_id}/redeem": {
        "parameters": [path_id("customer_id", "客户 id")],
        "post": operation("积分兑换（余额不足时拒绝，不写入任何内容）", "客户", {"200": json_answer(answer)},
                          ("403", "404", "422"), write=True, body=body_schema(obj(
                              {"points": {"type": "integer", "minimum": 1, "maximum": loyalty.MAX_POINTS},
                               "reason": {"type": "string", "minLength": 1, "maxLength": loyalty.MAX_REASON}})))},
    }
