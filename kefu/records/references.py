"""Reference look-ups for autocomplete and integrations (``GET /api/v1/refs/<kind>?q=``)."""
from __future__ import annotations

import re

from bson import ObjectId
from mongoengine.queryset.visitor import Q

from kefu.records.fields import REFERENCE_KINDS as _KINDS

REFERENCE_KINDS = tuple(_KINDS)
MAX_SUGGESTIONS = 20


def search_references(kind: str, text: str, project: str | None = None, limit: int = MAX_SUGGESTIONS) -> list[dict]:
    """Up to ``limit`` targets of ``kind`` whose naming fields contain ``text`` (all when empty).

    Each item is ``{"id", "label", "value"}``: the label the field type uses
    for candidates, and the text to put into a form field (a customer's is
    the id: their usual handle, the phone, is personal data). Units and
    customers can be restricted to one ``project`` (its id).
    """
    reference = _KINDS[kind]
    query = Q()
    text = (text or "").strip()
    if text:
        pattern = re.compile(re.escape(text), re.IGNORECASE)
        for field_name, _normalise in reference.match:
            query |= Q(**{field_name: pattern})
    documents = reference.document.objects(query)
    if reference.active_only:
        documents = documents.filter(active__ne=False)
    if project and reference.in_project and ObjectId.is_valid(project):
        documents = documents.filter(project=ObjectId(project))
    return [{"id": str(d.pk), "label": reference.describe(d),
             "value": str(d.pk) if reference.personal_handle else (reference.handle(d) or str(d.pk))}
            for d in documents.limit(limit)]
