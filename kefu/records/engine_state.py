"""Writes of the keys the rules engine owns on a record (not field values: those go through ``write``).

SLA state (``sla``, ``sla_open``, ``sla_due``, ``sla_live``, ``paused_since``, ``sla_next``, ``sla_rev``), the
reminder marks, the level rules that raised a record (``level_rules``), the approval request (``approval``),
the callbacks of a record (``callbacks``) and a callback's acted-on answer (``outcome``). Each function is one
conditional write, so a rule running twice — or two at once — changes a record once; none bumps ``version``.
"""
from __future__ import annotations

from pymongo import ReturnDocument, UpdateOne

from kefu.core.db import get_database
from kefu.records.store import RECORDS

LEVEL_RULES = "level_rules"


def _records():
    return get_database()[RECORDS]


def set_sla_state(record_id, update: dict) -> dict | None:
    """Store recomputed clocks (``update``: their ``$set``) and bump ``sla_rev`` (the sweep marks alerts only on
    the revision it read); return the record as stored."""
    return _records().find_one_and_update({"_id": record_id}, {"$set": update, "$inc": {"sla_rev": 1}},
                                          return_document=ReturnDocument.AFTER)


def mark_alerts(marks: list[tuple]) -> int:
    """Store the sweep's marks, ``(record_id, sla_rev read, sla_next read, $set)`` each, written only while the
    record is still at that revision and that next alert time — a sweep running at the same time (the prompt one
    and the minute duty) may have marked it since; return how many records matched."""
    if not marks:
        return 0
    updates = [UpdateOne({"_id": record_id, "sla_rev": rev, "sla_next": due}, {"$set": update})
               for record_id, rev, due, update in marks]
    return _records().bulk_write(updates, ordered=False).matched_count


def clear_sla_next(record_ids: list) -> None:
    """Nothing to remind about on these records any more (their type was deleted)."""
    if record_ids:
        _records().update_many({"_id": {"$in": list(record_ids)}}, {"$set": {"sla_next": None}})


def claim_level_rules(record_id, rule_ids: list[str]) -> bool:
    """Note that these rules raise the record (before the raise): False when another run noted them first."""
    claimed = _records().update_one({"_id": record_id, LEVEL_RULES: {"$nin": rule_ids}},
                                    {"$addToSet": {LEVEL_RULES: {"$each": rule_ids}}})
    return bool(claimed.modified_count)


def release_level_rules(record_id, rule_ids: list[str]) -> None:
    """Forget a claim whose raise did not happen."""
    _records().update_one({"_id": record_id}, {"$pullAll": {LEVEL_RULES: rule_ids}})


def set_approval(record_id, previous_key: str | None, request: dict) -> bool:
    """Store ``request`` as the record's approval, replacing the one with ``previous_key`` (None: there is none);
    False when the stored request is another one by now."""
    guard = {"approval.key": previous_key} if previous_key else {"approval.key": {"$exists": False}}
    return bool(_records().update_one({"_id": record_id, **guard}, {"$set": {"approval": request}}).matched_count)


def add_approval_reviews(record_id, request_id: str, reviews: list[dict]) -> bool:
    """Add reviews to the pending request ``request_id`` (none of their titles reviewed yet); False otherwise."""
    titles = [review["title"] for review in reviews]
    guard = {"_id": record_id, "approval.id": request_id, "approval.state": "pending",
             "approval.reviews.title": {"$nin": titles}}
    return bool(_records().update_one(guard, {"$push": {"approval.reviews": {"$each": reviews}}}).matched_count)


def decide_approval(record_id, request_id: str, decision: dict) -> bool:
    """Record the decision (``state``, ``decided_at``, ``decided_by``, … ) on the pending request ``request_id``;
    False when it is not pending any more."""
    guard = {"_id": record_id, "approval.id": request_id, "approval.state": "pending"}
    update = {"$set": {f"approval.{key}": value for key, value in decision.items()}}
    return bool(_records().update_one(guard, update).matched_count)


def link_callback(record_id, entry: dict) -> bool:
    """Note a callback on its original (once per callback); True when it was added now."""
    written = _records().update_one({"_id": record_id, "callbacks.id": {"$ne": entry["id"]}},
                                    {"$push": {"callbacks": entry}})
    return bool(written.modified_count)


def set_callback_result(record_id, callback_id, result) -> None:
    """The answer of the callback ``callback_id``, on its original."""
    _records().update_one({"_id": record_id, "callbacks.id": callback_id}, {"$set": {"callbacks.$.result": result}})


def claim_outcome(callback_id, outcome: dict) -> bool:
    """Note that the callback's answer is being acted on: False when it was acted on already."""
    return bool(_records().update_one({"_id": callback_id, "outcome": {"$exists": False}},
                                      {"$set": {"outcome": outcome}}).matched_count)

