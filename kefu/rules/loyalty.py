"""Points for completed deals (the ``loyalty:`` section) and the callbacks customers' grades call for (001 §六2;
002 第五章).

```yaml
loyalty:
  on_status: 已成交              # reaching it credits the record's customer
  amount_field: amount           # the deal's amount (money/decimal/integer): counts towards the tier
  points: {per_deal: 100, per_10000: 10}   # points per deal, plus per whole 10,000 yuan of the amount
```

Reaching ``on_status`` writes one ledger entry for the record's ``customer`` inside the save's transaction
(``kefu.org.loyalty.grant_deal``; keyed by the record and the moment it reached the status, so a retried save
credits once) and recomputes the customer's tier. Leaving ``on_status`` (the deal reopened or cancelled) takes
those points back with a negative entry and no longer counts the deal; completing it again credits again. A record
without a customer earns nothing (said on its timeline).

``grade_callbacks`` is the scheduled duty (``kefu.schedule.duties``): for each grade the settings give a frequency,
it creates one callback record (the settings' type, by default the developer pack's ``callback``) for each customer
of that grade whose last callback of that type is at least ``every_days`` old, with the grade's script copied in.
Each carries ``grade_callback.key`` = ``<customer>:<grade>:<day>``, unique in the records collection
(``RECORD_INDEXES``): a run racing another the same day makes each callback once.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import Field
from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from kefu.core.clock import aware
from kefu.core.db import get_database
from kefu.core.errors import DomainError, NotFound
from kefu.core.i18n import _l
from kefu.org import loyalty
from kefu.org.customers import Customer
from kefu.records.actor import system_actor
from kefu.records.core_fields import core_field
from kefu.records.sections import WORKFLOW, Section, SectionModel, at
from kefu.records.store import RECORDS
from kefu.records.timeline import record_event
from kefu.records.types import RecordType, get_record_type
from kefu.records.values import read_values
from kefu.records.write import create_record
from kefu.rules.shapes import NUMBERS, Name, NonNegative, picker

log = logging.getLogger(__name__)
TEXT_TYPES = ("text", "textarea")
GRADE_CALLBACK = "grade_callback"
# One grade callback per customer, grade and day (created with the other records indexes: kefu.runtime.storage).
RECORD_INDEXES = [IndexModel([(f"{GRADE_CALLBACK}.key", ASCENDING)], unique=True, name=GRADE_CALLBACK,
                             partialFilterExpression={f"{GRADE_CALLBACK}.key": {"$exists": True}})]


class Points(SectionModel):
    per_deal: NonNegative = Field(0, title=_l("每笔成交积分"))
    per_10000: NonNegative = Field(0, title=_l("每万元积分"), description=_l("成交金额每满 1 万元加的积分"))


class Loyalty(SectionModel):
    """The ``loyalty:`` section."""

    on_status: Name = Field(title=_l("成交状态"), description=_l("进入该状态时为客户记积分"),
                            json_schema_extra=picker("status"))
    amount_field: Name | None = Field(None, title=_l("金额字段"), description=_l("成交金额，计入会员等级"),
                                      json_schema_extra=picker("field", "number"))
    points: Points = Field(Points(), title=_l("积分规则"))


class LoyaltySection(Section):
    """``loyalty:``: points and tier for the customer of a completed deal."""

    key = "loyalty"
    title = _l("会员积分规则")
    model = Loyalty

    def problems(self, draft, model: Loyalty) -> list:
        problems = []
        workflow = draft.section(WORKFLOW)
        if workflow is not None and model.on_status not in workflow.statuses:
            problems.append(at("loyalty.on_status", _l("loyalty.on_status“%(status)s”不在流程状态中；可选：%(statuses)s",
                                                       status=model.on_status, statuses="、".join(workflow.statuses))))
        if model.amount_field is not None:
            field = draft.field(model.amount_field)
            if field is None or field.get("type") not in NUMBERS:
                problems.append(at("loyalty.amount_field", _l(
                    "loyalty.amount_field：本类型没有数字字段“%(field)s”（%(types)s）", field=model.amount_field,
                    types="/".join(NUMBERS))))
        return problems

    def after_save(self, record_type, model: Loyalty | None, document, before, changed, actor):
        if model is None or "status" not in changed:
            return None
        was = (before or {}).get("status") == model.on_status
        now = document.get("status") == model.on_status
        if now and not was:
            _credit(record_type, model, document, actor)
        elif was and not now:
            loyalty.reverse_deal(document["_id"], by=actor.user_id, number=document.get("number"))
            record_event(record_type.key, document["_id"], "comment", system_actor(),
                         text=str(_l("已离开“%(status)s”：本单积分已撤销", status=model.on_status)))
        return None


def _credit(record_type, model: Loyalty, document: dict, actor) -> None:
    """Credit the record's customer (in the save's transaction), once for this completion."""
    customer_id = document.get("customer")
    if customer_id is None:
        record_event(record_type.key, document["_id"], "comment", system_actor(),
                     text=str(_l("成交记录未关联客户，未记积分")))
        return
    amount = None
    if model.amount_field:
        value = read_values(record_type, document, system_actor(), keys=[model.amount_field]).get(model.amount_field)
        amount = Decimal(str(value)) if value not in (None, "") else None
    points = loyalty.points_for_deal(amount, model.points.per_deal, model.points.per_10000)
    completed = (document.get("status_at") or {}).get(model.on_status) or document.get("updated_at")
    record = {"type": record_type.key, "id": document["_id"], "number": document.get("number")}
    if loyalty.grant_deal(customer_id, record, completed.strftime("%Y%m%d%H%M%S%f")[:-3], points,
                          loyalty.amount_cents(amount), by=actor.user_id):
        record_event(record_type.key, document["_id"], "comment", system_actor(),
                     text=str(_l("客户积分 +%(points)s", points=points)))


# -- the callbacks of the grades -------------------------------------------------------------------------------

def callback_problems(callback: dict) -> dict:
    """What is wrong with the callback settings against the record types: form field → message."""
    target = RecordType.objects(key=callback["type"]).first()
    if target is None:
        return {"callback_type": str(_l("记录类型“%(type)s”不存在", type=callback["type"]))}
    problems = {}
    name = target.field(callback["name_field"]) if callback["name_field"] else None
    if callback["name_field"] and (name is None or name.type not in TEXT_TYPES):
        problems["callback_name_field"] = str(_l("“%(type)s”没有文字字段“%(field)s”", type=target.name,
                                                 field=callback["name_field"]))
    script = target.field(callback["script_field"]) if callback["script_field"] else None
    if callback["script_field"] and (script is None or script.type not in TEXT_TYPES):
        problems["callback_script_field"] = str(_l("“%(type)s”没有文字字段“%(field)s”", type=target.name,
                                                   field=callback["script_field"]))
    # the record's own fields too: the 部门 a grade callback goes to (its supervisors see it on their lists)
    unknown = [key for key in callback["values"] if target.field(key) is None and core_field(target, key) is None]
    if unknown:
        problems["callback_values"] = str(_l("“%(type)s”没有字段：%(fields)s", type=target.name,
                                             fields="、".join(unknown)))
    return problems


def save_settings(values: dict, by=None) -> dict:
    """Check (the callback settings against the record types too) and store the membership settings."""
    return loyalty.save_settings(values, by=by, callback_problems=callback_problems)


def _last_callbacks(type_key: str, customer_ids: list) -> dict:
    """Customer id → when their latest record of ``type_key`` was registered."""
    found = get_database()[RECORDS].aggregate([
        {"$match": {"type": type_key, "customer": {"$in": customer_ids}}},
        {"$group": {"_id": "$customer", "last": {"$max": "$created_at"}}}])
    return {row["_id"]: row["last"] for row in found}


def _values(target, callback: dict, customer: dict, grade: str, script: str) -> dict:
    values = {key: value for key, value in callback["values"].items()
              if target.field(key) is not None or core_field(target, key) is not None}
    values["customer"] = customer["_id"]
    if callback["name_field"]:
        values[callback["name_field"]] = customer["name"]
    if callback["script_field"] and script:
        values[callback["script_field"]] = script
    return values


def grade_callbacks(now: datetime) -> str:
    """Create the callbacks customers' grades call for at ``now`` (see the module docstring); return what was done.

    Once per period: a customer whose latest callback is younger than their grade's ``every_days`` is left alone,
    and each callback made here carries the key ``<customer>:<grade>:<day>`` (a second run the same day finds it; one
    racing this run is stopped by the key's unique index and counted as already made)."""
    current = loyalty.settings()
    callback = current["callback"]
    try:
        target = get_record_type(callback["type"])
    except NotFound:
        return f"callback type {callback['type']!r} not found: nothing done"
    actor, created, existing, failed = system_actor(), 0, 0, 0
    for grade, rule in current["grades"].items():
        if not rule.get("every_days"):
            continue
        customers = list(get_database()[Customer._get_collection_name()].find(
            {"grade": grade, "archived": {"$ne": True}}, {"name": 1}))
        last = _last_callbacks(target.key, [c["_id"] for c in customers])
        cutoff = now - timedelta(days=rule["every_days"])
        for customer in customers:
            if customer["_id"] in last and aware(last[customer["_id"]]) > cutoff:
                continue
            key = f"{customer['_id']}:{grade}:{now.astimezone(actor.tz):%Y-%m-%d}"
            # Checked first so that the usual case takes no record number (numbers are taken outside the transaction).
            if get_database()[RECORDS].find_one({f"{GRADE_CALLBACK}.key": key}, {"_id": 1}) is not None:
                existing += 1
                continue
            try:
                made = create_record(target.key, _values(target, callback, customer, grade, rule["script"]), actor,
                                     extra={GRADE_CALLBACK: {"key": key, "grade": grade, "script": rule["script"],
                                                             "every_days": rule["every_days"], "at": now}})
            except DuplicateKeyError:  # made at the same moment by another run
                existing += 1
                continue
            except DomainError as exc:
                failed += 1
                log.warning("grade callback for customer %s not created: %s", customer["_id"], exc)
                continue
            created += 1
            if rule["script"]:
                record_event(target.key, made["_id"], "callback", actor,
                             text=str(_l("%(grade)s 类客户回访话术：%(script)s", grade=grade, script=rule["script"])))
    return f"grade callbacks created: {created}; already made: {existing}; failed: {failed}"
