"""一户一档: one customer's archive (profile, grade, and every record of every type linked to them as one timeline) and
the caller lookup (来电弹屏: who is calling, and what of theirs is open).

A record belongs to a customer through its core field ``customer`` (``kefu.records.core_fields``); the caller lookup
also finds the records that carry the caller's number in a sensitive phone field (their blind index, under every key
of the ring), or, looked up by unit, that name the unit in a unit field — so a complaint registered before the caller
had an archive is found too. Every read stays within what the reader may read
(``kefu.insight.scope.readable_filter``) and shows personal data masked unless their roles unmask it (customers:
``view_customer_pii``; records' own fields are not returned here, but for a contact's result).

Who may read what: the archive (any customer by id, their whole timeline) is for the roles that keep it
(``manage_customers``); a role that may only look customers up (``lookup_customers``) sees the caller's card through
the lookup, which is counted (``kefu.org.customers``) whether it is by phone or by unit.

The last contacts (最近联系) are data: the records of the types that some type's ``callback:`` section creates
(``kefu.rules.callbacks``) whose result field is filled in — a call made to the customer and answered.

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
from kefu.insight.search_all import unit_paths
from kefu.org.unit_text import find_units, parse_unit_text
from kefu.rules import callbacks, sla

TIMELINE_LIMIT = 200  # the archive's timeline: the newest this many records (``total`` says how many in all)
LOOKUP_RECORD_LIMIT = 50
LAST_CONTACTS = 5  # per customer
SUMMARY_PROJECTION = dict.fromkeys(("type", "number", "status", "customer", "created_at", "updated_at", "closed_at",
                                    "sla", "sla_open", "sla_due"), 1)
PHONE_FIELD_TYPE = "phone"


def may_read_archive(access: AccessPolicy) -> bool:
    """Whether ``access`` may open customers' archives (any customer by id, the admin page and the API alike): the
    roles that keep the archive. Looking a caller up is not enough: that role sees the card the counted lookup
    returns, and nothing by id."""
    return access.has(Capability.MANAGE_CUSTOMERS.value)


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


def _linked_query(customer_ids, actor: Actor, *, phone: str | None = None, unit_ids=(),
                  type_key: str | None = None) -> dict | None:
    """The query of the records linked to any of ``customer_ids`` — or carrying ``phone`` (canonical) in a sensitive
    phone field, or naming one of ``unit_ids`` in a unit field — that ``actor`` may read (of ``type_key`` only, when
    given); None when nothing can match."""
    keys = [type_key] if type_key else [summary["key"] for summary in type_summaries()]
    branches: list[dict] = []
    if customer_ids:
        # "type" first: the index type_customer serves one branch per type.
        branches.append({"type": {"$in": keys}, "customer": {"$in": list(customer_ids)}})
    if phone:
        branches.extend(clause for clause in _phone_clauses(phone, actor) if clause["type"] in keys)
    if unit_ids:
        branches.extend({"type": key, path: {"$in": list(unit_ids)}}
                        for key, paths in unit_paths().items() if key in keys for path in paths)
    scope = readable_filter(actor.access)
    if not branches or scope == NOTHING:
        return None
    wanted = branches[0] if len(branches) == 1 else {"$or": branches}
    return wanted if scope is None else {"$and": [scope, wanted]}


def linked_records(customer_ids, actor: Actor, *, phone: str | None = None, unit_ids=(), type_key: str | None = None,
                   limit: int = TIMELINE_LIMIT) -> list[dict]:
    """The stored records (summary keys only) of :func:`_linked_query`, newest registration first."""
    query = _linked_query(customer_ids, actor, phone=phone, unit_ids=unit_ids, type_key=type_key)
    if query is None:
        return []
    return list(get_database()[RECORDS].find(query, SUMMARY_PROJECTION,
                                             sort=[("created_at", DESCENDING), ("_id", DESCENDING)], limit=limit))


def linked_counts(customer_ids, actor: Actor) -> dict[str, int]:
    """``{type key: n}``: how many records of each type are linked to ``customer_ids`` that ``actor`` may read (all
    of them, not only the timeline's newest)."""
    query = _linked_query(customer_ids, actor)
    if query is None:
        return {}
    found = get_database()[RECORDS].aggregate([{"$match": query}, {"$group": {"_id": "$type", "n": {"$sum": 1}}}])
    return {answer["_id"]: answer["n"] for answer in found}


def contact_types() -> dict[str, str]:
    """``{type key: its result field}`` of the types some active type's ``callback:`` section creates: the
    records that are contacts with the customer (data, not a list of keys)."""
    found = {}
    for summary in type_summaries():
        rule = callbacks.rules_of(get_record_type(summary["key"], active_only=False))
        if rule is not None:
            found[rule.type] = rule.result_field
    return found


def last_contacts(customer_ids, actor: Actor, now: datetime, names: dict) -> list[dict]:
    """The contacts (:func:`contact_types` records with their result filled in) linked to ``customer_ids`` that
    ``actor`` may read, newest first — at most ``LAST_CONTACTS`` per customer; each a record summary with its
    ``result``."""
    types = contact_types()
    scope = readable_filter(actor.access)
    if not customer_ids or not types or scope == NOTHING:
        return []
    branches = [{"type": key, "customer": {"$in": list(customer_ids)}, f"data.{field}": {"$nin": [None, "", []]}}
                for key, field in types.items()]
    wanted = branches[0] if len(branches) == 1 else {"$or": branches}
    query = wanted if scope is None else {"$and": [scope, wanted]}
    projection = {**SUMMARY_PROJECTION, **{f"data.{field}": 1 for field in set(types.values())}}
    shown, per_customer = [], {}
    for document in get_database()[RECORDS].find(query, projection, sort=[("created_at", DESCENDING), ("_id", DESCENDING)],
                                                 limit=LAST_CONTACTS * len(customer_ids)):
        if per_customer.setdefault(document["customer"], 0) < LAST_CONTACTS:
            per_customer[document["customer"]] += 1
            result = (document.get("data") or {}).get(types[document["type"]])
            shown.append({**record_summary(document, names, now, actor.tz), "result": result})
    return shown


# -- the archive and the lookup ---------------------------------------------------------------------------------

def archive(customer_id, actor: Actor, *, type_key: str | None = None) -> dict:
    """The 360° archive: ``{"customer": customer_json, "timeline": [record_summary …] the newest
    ``TIMELINE_LIMIT`` (of ``type_key`` only, when given), "total": how many the timeline would hold without the
    limit, "open": [the timeline's open ones], "counts": {type key: n, every linked record}}``. Raises like
    :func:`get_customer`, and ``ValidationFailed`` for an unknown ``type_key``."""
    customer = get_customer(customer_id, actor.access)
    now, names = utcnow(), type_names()
    if type_key is not None and type_key not in names:
        problem = _l("没有这种记录类型")
        raise ValidationFailed(_l("记录类型“%(key)s”：%(problem)s", key=type_key[:40], problem=problem), {"type": problem})
    timeline = [record_summary(d, names, now, actor.tz)
                for d in linked_records([customer.pk], actor, type_key=type_key)]
    counts = linked_counts([customer.pk], actor)
    return {"customer": customer_json(customer, actor.access, actor.tz), "timeline": timeline,
            "total": counts.get(type_key, 0) if type_key else sum(counts.values()),
            "open": [item for item in timeline if item["open"]], "counts": counts,
            "points_history": loyalty.history(customer.pk, actor.tz)}


def _caller(actor: Actor, phone, unit) -> tuple[list, str | None, list]:
    """The customers a lookup names (archived ones last), the canonical phone and the unit ids; ``ValidationFailed``
    naming ``phone`` or ``unit`` for text that is neither, ``PermissionDenied`` / ``LookupLimited`` from the
    counted lookup."""
    phone, unit = (phone or "").strip(), (unit or "").strip()
    if unit and not phone:
        if parse_unit_text(unit) is None:
            problem = _l("不是户位，请写作 3幢2单元1201 或 3-2-1201")
            raise ValidationFailed(_l("户位：%(problem)s", problem=problem), {"unit": problem})
        if not actor.access.has(Capability.LOOKUP_CUSTOMERS.value):
            raise PermissionDenied(_l("您的角色不能查找客户"))
        customers.count_lookup(actor.user_id)  # counted as a phone lookup: a unit names customers too
        unit_ids = [named.pk for named in find_units(unit)]
        found = list(customers.Customer.objects(unit__in=unit_ids).limit(customers.MAX_MATCHES)) if unit_ids else []
        return sorted(found, key=lambda c: bool(c.archived)), None, unit_ids
    try:
        canonical = normalize_phone(phone)
    except InvalidValue as exc:
        raise ValidationFailed(_l("电话号码：%(problem)s", problem=str(exc)), {"phone": str(exc)}) from None
    found = customers.find_by_phone(canonical, actor.access, actor.user_id, archived=True)
    return sorted(found, key=lambda c: bool(c.archived)), canonical, []  # a merged or archived one after the live


def lookup(actor: Actor, *, phone: str | None = None, unit: str | None = None) -> dict:
    """The caller lookup by ``phone`` (any typed form) or, without one, by ``unit`` (as people type it:
    ``3幢2单元1201``): ``{"customers": [customer_json …], "records": [record_summary …] newest first, "contacts":
    [their last contacts]}`` — the customers with that exact number or living in that unit (only for roles with
    ``lookup_customers``, counted), and the records the actor may read that are linked to them or carry the number
    or name the unit. Raises like :func:`_caller`."""
    found, canonical, unit_ids = _caller(actor, phone, unit)
    now, names = utcnow(), type_names()
    ids = [c.pk for c in found]
    records = linked_records(ids, actor, phone=canonical, unit_ids=unit_ids, limit=LOOKUP_RECORD_LIMIT)
    return {"customers": [customer_json(c, actor.access, actor.tz) for c in found],
            "records": [record_summary(d, names, now, actor.tz) for d in records],
            "contacts": last_contacts(ids, actor, now, names)}
