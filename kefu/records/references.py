"""Reference look-ups for autocomplete and integrations (``GET /api/v1/refs/<kind>?q=``; customers by phone through
``POST``: a phone number is never put into a URL), and the labels of the references of many records at once (a list
page, a batch of export rows)."""
from __future__ import annotations

import re

from bson import ObjectId
from mongoengine.queryset.visitor import Q

from kefu.core.errors import PermissionDenied
from kefu.core.i18n import _l
from kefu.org.access import SYSTEM_POLICY
from kefu.org.customers import customer_label, search_customers, sees_personal_data
from kefu.org.roles import Capability
from kefu.org.structure import active_department_names
from kefu.org.users import active_user_labels
from kefu.records.actor import Actor
from kefu.records.fields import REFERENCE_KINDS as _KINDS
from kefu.records.fields import get_field_type

REFERENCE_KINDS = tuple(_KINDS)
# Kinds whose labels (``str`` of the target) this process holds for its active targets (kefu.core.versioned_cache).
CACHED_LABELS = {"user": active_user_labels, "department": active_department_names}
CUSTOMER = "customer"
MAX_SUGGESTIONS = 20


def search_references(kind: str, text: str, project: str | None = None, limit: int = MAX_SUGGESTIONS,
                      actor: Actor | None = None) -> list[dict]:
    """Up to ``limit`` targets of ``kind`` whose naming fields contain ``text`` (all when empty), as ``actor`` (None:
    the system) may find them.

    Each item is ``{"id", "label", "value"}``: the label the field type uses
    for candidates, and the text to put into a form field (a customer's is
    the id: their usual handle, the phone, is personal data). Units and
    customers can be restricted to one ``project`` (its id). Customers are
    found only by roles that keep or look up the archive (``PermissionDenied`` otherwise), by name, or by exact
    phone number (``kefu.org.customers.search_customers``:
    only for roles with ``lookup_customers``, counted per user; raises
    ``PermissionDenied`` / ``LookupLimited``); their labels show the phone
    masked unless the actor has ``view_customer_pii``.
    """
    if kind == CUSTOMER:
        return _customers(text, project, limit, actor)
    reference = _KINDS[kind]
    query = Q()
    text = (text or "").strip()
    if text:
        pattern = re.compile(re.escape(text), re.IGNORECASE)
        for field_name, _normalise in reference.match:
            query |= Q(**{field_name: pattern})
    documents = reference.document.objects(query).filter(**reference.visible)
    if project and reference.in_project and ObjectId.is_valid(project):
        documents = documents.filter(project=ObjectId(project))
    return [{"id": str(d.pk), "label": reference.describe(d),
             "value": str(d.pk) if reference.personal_handle else (reference.handle(d) or str(d.pk))}
            for d in documents.limit(limit)]


def _customers(text: str, project: str | None, limit: int, actor: Actor | None) -> list[dict]:
    access = actor.access if actor is not None else SYSTEM_POLICY
    if not (access.has(Capability.MANAGE_CUSTOMERS.value) or access.has(Capability.LOOKUP_CUSTOMERS.value)):
        raise PermissionDenied(_l("您的角色不能查找客户档案"))
    unmasked = actor is not None and actor.user is not None and sees_personal_data(access)
    found = search_customers(text, access, actor.user_id if actor is not None else None, project=project, limit=limit)
    return [{"id": str(c.pk), "label": customer_label(c, unmasked), "value": str(c.pk)} for c in found]


def is_reference(definition) -> bool:
    """Whether the field ``definition`` (or an export column) holds a reference whose label is looked up."""
    return hasattr(get_field_type(definition.type), "labels")


def reference_labels(definitions, rows) -> dict[str, dict]:
    """``{field key: {target id: label}}`` for the reference fields among ``definitions`` over ``rows`` (mappings of
    field key → value): at most one query per kind of target — a page's assignees and another user column together
    — never one per row or cell. Active users and departments are named from this process's copy of their pick
    lists (``CACHED_LABELS``, no query); only a target missing there (disabled) is looked up. A target that no
    longer exists is missing from its mapping (callers show 已删除).

    Callers pass only the fields whose labels the reader may see (a sensitive reference stays masked)."""
    keys_by_type: dict[str, list[str]] = {}
    for definition in definitions:
        if is_reference(definition):
            keys_by_type.setdefault(definition.type, []).append(definition.key)
    labels: dict[str, dict] = {}
    for type_name, keys in keys_by_type.items():
        field_type = get_field_type(type_name)
        ids = {getattr(value, "pk", value) for row in rows for key in keys if (value := row.get(key)) is not None}
        held = CACHED_LABELS[field_type.kind_name]() if field_type.kind_name in CACHED_LABELS else {}
        found = {target: held[target] for target in ids if target in held}
        missing = ids.difference(found)
        if missing:
            found.update(field_type.labels(missing))
        labels.update(dict.fromkeys(keys, found))
    return labels
