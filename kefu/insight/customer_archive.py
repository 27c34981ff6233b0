"""一户一档: one customer's archive (profile, grade, and every record of every type linked to them as one timeline) and
the caller lookup (来电弹屏: who is calling, and what of theirs is open).

A record belongs to a customer through its core field ``customer`` (``kefu.records.core_fields``); the caller lookup
also finds the records that carry the caller's number in a sensitive phone field (their blind index, under every key
of the ring), so a complaint registered before the caller had an archive is found too. Every read stays within what
the reader may read (``kefu.insight.scope.readable_filter``) and shows personal data masked unless their roles
unmask it (customers: ``view_customer_pii``; records' own fields are not returned here).

Membership tier and points balance come from ``kefu.org.loyalty`` (the archive adds the points history).
"""
from __future__ import annotations

from datetime import datetime

from pymongo import DESCENDING

from kefu.core.clock import aware, utcnow
from kefu.core.db import get_database
from kefu.core.errors import NotFound, PermissionDenied, ValidationFailed
from kefu.core.i18n import _l, in_user_language
from kefu.core.validation import InvalidValue, normalize_phone
from kefu.insight.scope import readable_filter
from kefu.org import customers, loyalty
from kefu.org.access import NOTHING, AccessPolicy
from kefu.org.roles import Capability
from kefu.records.actor import Actor
from kefu.records.store import RECORDS, object_id
from kefu.records.types import get_record_type, type_summaries
from kefu.records.values import blind_index_text
from kefu.rules import sla

TIMELINE_LIMIT = 200  # the archive's timeline: the newest this many records (a customer rarely has more)
LOOKUP_RECORD_LIMIT = 50
LAST_CONTACTS = 5
SUMMARY_PROJECTION = dict.fromkeys(("type", "number", "status", "customer", "created_at", "updated_at", "closed_at",
                                    "sla", "sla_open", "sla_due"), 1)
PHONE_FIELD_TYPE = "phone"


def may_read_archive(access: AccessPolicy) -> bool:
    """Whether ``access`` may open customers' archives: the roles that keep or look up the archive."""
    return access.has(Capability.MANAGE_CUSTOMERS.value) or access.has(Capability.LOOKUP_CUSTOMERS.value)


def get_customer(customer_id, access: AccessPolicy) -> customers.Customer:
    """The customer with this id (archived ones too). ``PermissionDenied`` for a role that may not read the archive,
    ``NotFound`` for an id that is malformed or names nobody."""
    if not may_read_archive(access):
        raise PermissionDenied(_l("您的角色不能查看客户档案"))
    try:
        wanted = object_id(customer_id)
    except NotFound:
        wanted = None
    customer = customers.Customer.objects(pk=wanted).first() if wanted is not None else None
    if customer is None:
        raise NotFound(_l("客户“%(id)s”不存在", id=str(customer_id)[:40]))
    return customer


# -- shapes ----------------------------------------------------------------------------------------------------

def customer_json(customer: customers.Customer, access: AccessPolicy, tz) -> dict:
    """A customer as the archive, the lookup and the API show them: personal fields masked unless ``access``
    unmasks them; ``tier`` and ``points`` (the balance) from the customer's membership account."""
    unmasked = customers.sees_personal_data(access)
    project, unit = customer.project, customer.unit
    return {
        "id": str(customer.pk), "name": customer.name, "gender": customer.gender, "grade": customer.grade,
        **{name: customers.shown(customer, name, unmasked) or None for name in customers.PERSONAL_FIELDS},
        "project": {"id": str(project.pk), "name": project.name} if project is not None else None,
        "unit": {"id": str(unit.pk), "label": unit.label} if unit is not None else None,
        "notes": customer.notes or "", "archived": bool(customer.archived),
        "merged_into": str(customer.merged_into) if customer.merged_into else None,
        "created_at": customer.created_at.astimezone(tz).isoformat() if customer.created_at else None,
        **{key: value for key, value in loyalty.account_of(customer.pk).items() if key in ("tier", "points")},
    }


def _iso(moment: datetime | None, tz) -> str | None:
    return aware(moment).astimezone(tz).isoformat() if moment else None


def record_summary(document: dict, names: dict, now: datetime, tz) -> dict:
    """One record in a timeline: its type, number, status, whether it is open, and the deadline of its nearest
    clock with that clock's state (``overdue`` true when a running clock is past due)."""
    nearest = sla.nearest_clock(document, now)
    state = sla.state_at(nearest, now) if nearest is not None else None
    return {
        "id": str(document["_id"]), "type": document["type"], "type_name": names.get(document["type"], document["type"]),
        "number": document.get("number"), "status": document.get("status"),
        "customer": str(document["customer"]) if document.get("customer") else None,
        "created_at": _iso(document.get("created_at"), tz), "updated_at": _iso(document.get("updated_at"), tz),
        "open": document.get("closed_at") is None,
        "deadline": _iso(nearest.get("due_at"), tz) if nearest else None,
        "clock": nearest.get("name") if nearest else None, "clock_state": state, "overdue": state == "overdue",
    }


def type_names() -> dict[str, str]:
    """Every active type's name in the reader's language, by key (no query)."""
    return {summary["key"]: in_user_language(summary["name"], summary["name_en"]) for summary in type_summaries()}


# -- finding the records ---------------------------------------------------------------------------------------

def _phone_clauses(phone: str, actor: Actor) -> list[dict]:
    """One clause per active type and sensitive phone field: its blind index of ``phone`` (canonical)."""
    clauses = []
    for summary in type_summaries():
        record_type = get_record_type(summary["key"], active_only=False)
        for definition in record_type.active_fields:
            if definition.type == PHONE_FIELD_TYPE and definition.sensitive:
                keys = actor.cipher.blind_indexes(blind_index_text(phone), context=f"{record_type.key}.{definition.key}")
                clauses.append({"type": record_type.key, f"bidx.{definition.key}": {"$in": keys}})
    return clauses


def linked_records(customer_ids, actor: Actor, *, phone: str | None = None, limit: int = TIMELINE_LIMIT) -> list[dict]:
    """The stored records (summary keys only) linked to any of ``customer_ids`` — or, with ``phone`` (canonical),
    carrying it in a sensitive phone field — that ``actor`` may read, newest registration first."""
    keys = [summary["key"] for summary in type_summaries()]
    branches: list[dict] = []
    if customer_ids:
        # "type" first: the index type_customer serves one branch per type.
        branches.append({"type": {"$in": keys}, "customer": {"$in": list(customer_ids)}})
    if phone:
        branches.extend(_phone_clauses(phone, actor))
    scope = readable_filter(actor.access)
    if not branches or scope == NOTHING:
        return []
    wanted = branches[0] if len(branches) == 1 else {"$or": branches}
    query = wanted if scope is None else {"$and": [scope, wanted]}
    return list(get_database()[RECORDS].find(query, SUMMARY_PROJECTION,
                                             sort=[("created_at", DESCENDING), ("_id", DESCENDING)], limit=limit))


# -- the archive and the lookup ---------------------------------------------------------------------------------

def archive(customer_id, actor: Actor) -> dict:
    """The 360° archive: ``{"customer": customer_json, "timeline": [record_summary …] newest first, "open": [the
    open ones], "counts": {type key: n}}``. Raises like :func:`get_customer`."""
    customer = get_customer(customer_id, actor.access)
    now, names = utcnow(), type_names()
    timeline = [record_summary(d, names, now, actor.tz) for d in linked_records([customer.pk], actor)]
    counts: dict[str, int] = {}
    for item in timeline:
        counts[item["type"]] = counts.get(item["type"], 0) + 1
    return {"customer": customer_json(customer, actor.access, actor.tz), "timeline": timeline,
            "open": [item for item in timeline if item["open"]], "counts": counts,
            "points_history": loyalty.history(customer.pk, actor.tz)}


def lookup(phone: str, actor: Actor) -> dict:
    """The caller lookup for ``phone`` (any typed form): ``{"customers": [customer_json …], "records":
    [record_summary …] newest first}`` — the customers with that exact number (``kefu.org.customers.find_by_phone``:
    only for roles with ``lookup_customers``, counted), and the records the actor may read that are linked to them
    or carry the number. ``ValidationFailed`` for text that is not a phone number; ``PermissionDenied`` /
    ``LookupLimited`` from the lookup."""
    try:
        canonical = normalize_phone((phone or "").strip())
    except InvalidValue as exc:
        raise ValidationFailed(_l("电话号码：%(problem)s", problem=str(exc)), {"phone": str(exc)}) from None
    found = customers.find_by_phone(canonical, actor.access, actor.user_id, archived=True)
    found.sort(key=lambda c: bool(c.archived))  # a merged or archived archive after the live ones
    now, names = utcnow(), type_names()
    records = linked_records([c.pk for c in found], actor, phone=canonical, limit=LOOKUP_RECORD_LIMIT)
    return {"customers": [customer_json(c, actor.access, actor.tz) for c in found],
            "records": [record_summary(d, names, now, actor.tz) for d in records]}
