"""Finding records: filters as ``[field, op, value]`` conditions checked against the definition, search, the SLA views,
sort and paging."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l
from kefu.core.validation import InvalidValue
from kefu.org.roles import Action
from kefu.records.actor import Actor
from kefu.records.core_fields import field_for
from kefu.records.fields import get_field_type
from kefu.records.search import compact_text, query_grams
from kefu.records.store import RECORDS
from kefu.records.types import RecordType, get_record_type
from kefu.records.values import blind_index_text

# Lists and exports never show the search index: leaving it out halves what MongoDB sends and Python decodes.
READ_PROJECTION = {"grams": 0, "search_text": 0}
MAX_PER_PAGE = 200
SLA_SORT = "sla_due"  # sort key: by the earliest running deadline, i.e. the most overdue first
UNIQUE_SORT_PATHS = ("number",)  # unique within a type: sorted by it, the order is total
TIMESTAMP_SORT_PATHS = ("created_at", "updated_at")  # equal only by chance: the id breaks the tie
COUNT_LIMIT = 1000  # the record list counts exactly up to this many matches; beyond it says 超过 1,000 条


@dataclass
class Condition:
    """One filter: ``[field, op, value]`` checked against the current definition."""

    field: str
    op: str
    value: object = None


@dataclass
class RecordQuery:
    conditions: list[Condition] = field(default_factory=list)
    q: str | None = None
    sort: str | None = None  # "-created_at", "claim_amount", "sla_due" (most overdue first)
    page: int = 1
    per_page: int = 50
    overdue: bool = False  # any running SLA clock past its deadline
    due_soon: bool = False  # any running SLA clock in its last stretch
    due_within: timedelta | None = None  # the next running deadline falls within this time from now


def build_filter(record_type: RecordType, query: RecordQuery, actor: Actor, action: str = Action.READ.value) -> dict:
    """The MongoDB filter for ``query`` within what the actor may ``action`` (``kefu.org.access``);
    ``ValidationFailed`` for unknown fields or operators, ``PermissionDenied`` when the actor may not ``action``
    any record of the type."""
    actor.access.require(record_type.key, action, record_type.name)
    clauses: list[dict] = [{"type": record_type.key}]
    allowed = actor.access.record_filter(record_type.key, action)
    if allowed is not None:
        clauses.append(allowed)
    context = actor.field_context()
    for condition in query.conditions:
        definition = field_for(record_type, condition.field)
        field_type = get_field_type(definition.type)
        if definition.sensitive:
            clauses.append(_sensitive_clause(record_type, definition, condition, actor))
            continue
        try:
            clauses.append(field_type.query(definition.path, condition.op, condition.value, definition, context))
        except InvalidValue as exc:
            raise ValidationFailed(str(exc), {condition.field: str(exc)}) from exc
    if query.q and query.q.strip():
        clauses.append(_search_clause(record_type, query.q.strip(), actor))
    clauses.extend(sla_clauses(query, utcnow()))
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def sla_clauses(query: RecordQuery, now: datetime) -> list[dict]:
    """Filters for ``overdue`` / ``due_soon`` / ``due_within`` (see ``kefu.rules.sla``: ``sla_due`` is the earliest
    running deadline)."""
    clauses = []
    if query.overdue:
        # "$type": the partial index ``sla_due`` serves only queries that name its filter expression.
        clauses.append({"sla_due": {"$lte": now, "$type": "date"}})
    if query.due_soon:
        clauses.append({"sla_open": {"$elemMatch": {"warn_at": {"$lte": now}, "due_at": {"$gt": now}}}})
    if query.due_within is not None:
        clauses.append({"sla_due": {"$gt": now, "$lte": now + query.due_within, "$type": "date"}})
    return clauses


SENSITIVE_OPERATORS = ("eq", "empty", "not_empty")  # what a blind index can answer about an encrypted value


def filter_operators(definition) -> tuple[str, ...]:
    """The operators a list filter on the field ``definition`` accepts: its type's, and of those only exact match
    and emptiness when its values are encrypted."""
    operators = get_field_type(definition.type).operators
    return tuple(op for op in operators if not definition.sensitive or op in SENSITIVE_OPERATORS)


def sortable(definition) -> bool:
    """Whether a list can be sorted by the field ``definition`` (never by an encrypted value)."""
    return get_field_type(definition.type).sortable and not definition.sensitive


def _sensitive_clause(record_type: RecordType, definition, condition: Condition, actor: Actor) -> dict:
    """Sensitive values are stored encrypted: only exact match (via the blind index) and emptiness work."""
    path = f"bidx.{definition.key}"
    if condition.op == "empty":
        return {path: None}
    if condition.op == "not_empty":
        return {path: {"$ne": None}}
    if condition.op != "eq":
        raise ValidationFailed(_l("敏感字段“%(label)s”只支持精确查询", label=definition.label),
                               {definition.key: _l("只支持精确查询（eq）")})
    try:
        value = get_field_type(definition.type).clean(condition.value, definition, actor.field_context())
    except InvalidValue as exc:
        raise ValidationFailed(str(exc), {definition.key: str(exc)}) from exc
    return {path: blind_index_match(record_type.key, definition, value, actor)}


def blind_index_match(type_key: str, definition, value, actor: Actor) -> dict:
    """Matches the stored blind index of ``value`` under any key of the ring: while a key rotation runs, records not
    re-encrypted yet keep the index under the old key."""
    return {"$in": actor.cipher.blind_indexes(blind_index_text(value), context=f"{type_key}.{definition.key}")}


def _search_clause(record_type: RecordType, text: str, actor: Actor) -> dict:
    options: list[dict] = [{"number": text}]
    grams = query_grams(text)
    if grams:
        # The grams index narrows the candidates; the regex keeps only records containing the text itself.
        options.append({"grams": {"$all": grams}, "search_text": {"$regex": re.escape(compact_text(text))}})
    # Sensitive search fields (a phone) are found by exact value through their blind index.
    for definition in record_type.active_fields:
        if definition.search and definition.sensitive:
            try:
                value = get_field_type(definition.type).clean(text, definition, actor.field_context())
            except InvalidValue:
                continue
            if value not in (None, ""):
                options.append({f"bidx.{definition.key}": blind_index_match(record_type.key, definition, value, actor)})
    return {"$or": options}


def sort_spec(record_type: RecordType, sort: str | None) -> list[tuple[str, int]]:
    """The MongoDB sort of ``sort`` ("-created_at", "number", "sla_due" …; None: newest registration first): the
    field, then the tiebreak the indexes of the sortable columns end with (``tiebreak``), so that MongoDB reads a
    page in index order instead of sorting the matching records in memory."""
    if not sort:
        return [("created_at", DESCENDING), ("_id", DESCENDING)]
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    direction = DESCENDING if descending else ASCENDING
    if key == SLA_SORT:
        return [("sla_due", direction), ("_id", direction)]
    definition = field_for(record_type, key)
    if definition.sensitive:
        raise ValidationFailed(_l("敏感字段不能排序"), {key: _l("敏感字段不能排序")})
    return [(definition.path, direction), *tiebreak(definition.path, direction)]


def tiebreak(path: str, direction: int) -> list[tuple[str, int]]:
    """What orders records with equal values at ``path`` — the keys the index of that sort ends with
    (``kefu.records.indexes``): nothing after the number (unique within a type); the id after a timestamp; after
    anything else the list's default order, newest registration first, under an ascending sort (an index
    ``{path: 1, created_at: -1, _id: -1}`` read backwards serves the descending sort)."""
    if path in UNIQUE_SORT_PATHS:
        return []
    if path in TIMESTAMP_SORT_PATHS:
        return [("_id", direction)]
    return [("created_at", -direction), ("_id", -direction)]


@dataclass
class RecordPage:
    """A page of records and how many match: exactly ``total``, or — ``exact`` false — more than ``total`` (the
    count limit the caller asked for)."""

    documents: list[dict]
    total: int
    exact: bool = True


def find_page(type_key: str, query: RecordQuery, actor: Actor, *, record_type: RecordType | None = None,
              count_limit: int | None = None, projection: dict | None = None) -> RecordPage:
    """The query's page and its total; the one reader behind the admin list and the API list (exports stream with
    ``iter_records``).

    The page is read first: a page that is not full tells the total without counting. Otherwise the matching
    records are counted — all of them, or with ``count_limit`` only up to that many and one more (a broad search
    would otherwise read every match just to count it). ``record_type``: the type's definition when the caller has
    loaded it already (saves reading it again); ``projection``: what to read of each record (default everything
    but the search index).
    """
    record_type = record_type if record_type is not None else get_record_type(type_key, active_only=False)
    per_page = max(1, min(int(query.per_page or 50), MAX_PER_PAGE))
    skipped = (max(1, int(query.page or 1)) - 1) * per_page
    mongo_filter = build_filter(record_type, query, actor)
    collection = get_database()[RECORDS]
    documents = list(collection.find(mongo_filter, projection or READ_PROJECTION,
                                     sort=sort_spec(record_type, query.sort), skip=skipped, limit=per_page))
    if 0 < len(documents) < per_page or (not documents and not skipped):
        return RecordPage(documents, skipped + len(documents))
    if count_limit is None:
        return RecordPage(documents, collection.count_documents(mongo_filter))
    if skipped + len(documents) > count_limit:
        return RecordPage(documents, count_limit, exact=False)
    total = collection.count_documents(mongo_filter, limit=count_limit + 1)
    return RecordPage(documents, min(total, count_limit), exact=total <= count_limit)


def find_records(type_key: str, query: RecordQuery, actor: Actor, *,
                 record_type: RecordType | None = None) -> tuple[int, list[dict]]:
    """``(total, page of documents)`` for the query, counted exactly (``find_page``)."""
    page = find_page(type_key, query, actor, record_type=record_type)
    return page.total, page.documents


def iter_records(type_key: str, query: RecordQuery, actor: Actor, batch_size: int = 1000, fields=None,
                 action: str = Action.READ.value, raw_batches: bool = False):
    """Every matching document the actor may ``action``, in the query's order, streamed (for exports).
    ``fields``: the stored paths to read (``data.<key>``, ``pii.<key>``, core keys …), else everything lists
    read. ``raw_batches``: the documents undecoded, as the server sends them — BSON of up to ``batch_size`` at a
    time (the caller decodes them, ``bson.decode_all``)."""
    record_type = get_record_type(type_key, active_only=False)
    projection = dict.fromkeys(fields, 1) if fields else READ_PROJECTION
    collection = get_database()[RECORDS]
    find = collection.find_raw_batches if raw_batches else collection.find
    cursor = find(build_filter(record_type, query, actor, action), projection, sort=sort_spec(record_type, query.sort),
                  batch_size=batch_size)
    yield from cursor
