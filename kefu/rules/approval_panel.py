"""Reading an approval request (审批) for the API and the screens: the request as it is stored, shown in the reader's
language, and the details page's panel — the band the current amount falls in and, per action, whether the reader may
take it or why not (``kefu.rules.approvals.refusal``)."""
from __future__ import annotations

from kefu.records.values import read_plain_values
from kefu.rules.approvals import (
    ACTION_LABELS, STATE_LABELS, Band, State, amount_label, amount_text, refusal, rules_of, stored_amount,
)


def request_json(document: dict, tz) -> dict | None:
    """The record's approval request for the API and the screens (None when it never had one)."""
    request = document.get("approval")
    if not request:
        return None
    done = {review["title"] for review in request.get("reviews") or []}

    def moment(value):
        return value.astimezone(tz).isoformat() if value else None

    amount = request["amount"].to_decimal()
    band_text = request["band_text"]
    if "lower" in request:  # shown in the reader's language
        band_text = Band.of(request["lower"].to_decimal(),
                            request["upper"].to_decimal() if request["upper"] else None, request["approver"]).text()
    return {
        "id": request["id"], "state": request["state"], "state_text": str(STATE_LABELS[request["state"]]),
        "amount": f"{amount:.2f}", "amount_text": amount_text(amount), "band": request["band"], "band_text": band_text,
        "approver": request["approver"], "reviewers": list(request.get("reviewers") or []),
        "pending_reviewers": [t for t in request.get("reviewers") or [] if t not in done],
        "note": request.get("note") or "",
        "reviews": [{"title": r["title"], "by_name": r.get("by_name"), "at": moment(r.get("at")),
                     "comment": r.get("comment") or ""} for r in request.get("reviews") or []],
        "opened_at": moment(request.get("opened_at")), "decided_at": moment(request.get("decided_at")),
        "decided_by_name": request.get("decided_by_name"), "comment": request.get("comment") or "",
    }


def panel(record_type, document: dict, actor) -> dict | None:
    """What the details page shows: the request, the band the current amount falls in, and for each action
    whether ``actor`` may take it (None) or why not (a message). None when the type has no rules."""
    rules = rules_of(record_type)
    if rules is None:
        return None
    amount = stored_amount(record_type, rules, document)
    preview = None
    if amount is not None:
        index, band = rules.band_for(amount, read_plain_values(record_type, document))  # approver_by applied
        preview = {"amount": amount_text(amount), "band_text": band.text(), "approver": band.approver,
                   "reviewers": list(band.reviewers), "note": band.note}
    request = request_json(document, actor.tz)
    actions = {}
    if request and request["state"] == State.PENDING.value:
        for action in ACTION_LABELS:
            problem = refusal(record_type, document, action, actor)
            actions[action] = None if problem is None else str(problem.message)
    return {"rules": rules, "on_status": rules.on_status, "amount_label": amount_label(record_type, rules),
            "preview": preview, "request": request, "actions": actions, "action_labels": ACTION_LABELS}
