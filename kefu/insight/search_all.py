"""Search everywhere (the navigation bar's box): one text finds customers and records of every type, grouped, within
what the user may read.

What the text is read as decides where it looks, all at once:

- a record number, exactly or its beginning (``TS-202611``), through the ``type_number`` index;
- a phone number, exactly (never a part of one): customers through their blind index (``kefu.org.customers``,
  for roles with ``lookup_customers`` and counted like every phone lookup), records through the blind index of
  their sensitive search fields (``kefu.records.query``) and through the customers found;
- a unit as people type it (``3幢2单元1201``, ``3-2-1201``: ``kefu.org.unit_text``): the unit's customers, and
  records naming the unit in a unit field or belonging to those customers;
- a customer's name, from its beginning: the customers, and their records;
- any text: the records' searchable fields (character grams, ``kefu.records.search``), as each type's list finds.

Every query is index-backed and bounded: each group reads its first ``limit`` hits and counts up to
``COUNT_CAP`` (beyond it: ``exact`` false, "100+"; the type's list, one click away, counts further — a common
word in every type would otherwise cost a thousand reads per type). Records are filtered by the user's scope per
type (``AccessPolicy.record_filter``, as the lists are); the customer archive is shown to roles that may open it
(``manage_customers``), their phone masked unless the role has ``view_customer_pii``. A record hit names its
customer, never their phone.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from kefu.core.db import get_database
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l, in_user_language
from kefu.core.validation import InvalidValue, check_typable, normalize_phone
from kefu.core.versioned_cache import NamedCache
from kefu.org.access import NOTHING
from kefu.org.customers import Customer, find_by_phone, looks_like_phone, sees_personal_data, shown
from kefu.org.roles import Action, Capability
from kefu.org.unit_text import find_units, parse_unit_text
from kefu.records.actor import Actor
from kefu.records.fields import get_field_type
from kefu.records.fields.references import UnitType
from kefu.records.query import blind_index_match
from kefu.records.search import compact_text, query_grams
from kefu.records.store import RECORDS
from kefu.records.types import get_record_type, type_summaries

GROUP_LIMIT = 5  # hits shown per group
MAX_LIMIT = 50
COUNT_CAP = 100  # a group counts its hits up to this many; beyond it the count says "100+" (the list counts on)
MAX_QUERY_LENGTH = 100
LINKED_CUSTOMERS = 50  # customers (by name, phone or unit) whose records are looked for
CUSTOMERS = "customers"  # the key of the customers' group; the records' groups are keyed by type
NUMBER, PHONE, UNIT, NAME, TEXT = "number", "phone", "unit", "name", "text"
READ_AS_LABELS = {NUMBER: _l("编号"), PHONE: _l("电话"), UNIT: _l("户位"), NAME: _l("客户姓名"), TEXT: _l("文字")}
_NUMBER_LIKE = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]+")
HIT_FIELDS = {"_id": "$_id", "number": "$number", "status": "$status", "customer": "$customer",
              "created_at": "$created_at"}


@dataclass
class Group:
    """One group of hits: the customers (``key`` ``customers``) or the records of one type (``key`` the type's
    key). ``total`` hits in all, or more than ``total`` when ``exact`` is false; ``hits`` the first of them."""

    key: str
    name: str
    total: int
    exact: bool
    hits: list[dict] = field(default_factory=list)

    @property
    def is_customers(self) -> bool:
        return self.key == CUSTOMERS


@dataclass
class SearchResult:
    """What one search found: the groups with hits (customers first, then the types in menu order) and what
    the text was read as (``NUMBER`` … ``TEXT``)."""

    read_as: list[str]
    groups: list[Group]

    @property
    def total(self) -> int:
        return sum(group.total for group in self.groups)


def clean_query(raw) -> str:
    """The search text as typed (NFKC-folded, trimmed); ``ValidationFailed`` on ``q`` when it is blank, too long or
    holds characters nobody types."""
    text = unicodedata.normalize("NFKC", raw if isinstance(raw, str) else "").strip()
    if not text:
        raise ValidationFailed(_l("请输入要搜索的内容：编号、客户姓名、电话或户位"), {"q": _l("请输入要搜索的内容")})
    if len(text) > MAX_QUERY_LENGTH:
        message = _l("搜索内容最多 %(n)s 个字", n=MAX_QUERY_LENGTH)
        raise ValidationFailed(message, {"q": message})
    try:
        check_typable(text, multiline=False)
    except InvalidValue as exc:
        raise ValidationFailed(str(exc), {"q": str(exc)}) from None
    return text


def phone_of(text: str) -> str | None:
    """The canonical phone number ``text`` is, or None (a unit like ``3-2-1201`` is not a phone number)."""
    if not looks_like_phone(text) or parse_unit_text(text) is not None:
        return None
    try:
        return normalize_phone(text)
    except InvalidValue:
        return None


def search_everywhere(raw, actor: Actor, *, limit: int = GROUP_LIMIT) -> SearchResult:
    """Search ``raw`` everywhere ``actor`` may read (see the module); ``ValidationFailed`` for a blank, too long or
    untypable text, ``kefu.org.customers.LookupLimited`` past the phone lookups allowed."""
    text = clean_query(raw)
    limit = max(1, min(int(limit), MAX_LIMIT))
    phone = phone_of(text)
    units = [] if phone else find_units(text)
    read_as = _read_as(text, phone, units)
    linked, total, exact = _linked_customers(text, phone, units, NAME in read_as, actor)
    groups = []
    if total and actor.access.has(Capability.MANAGE_CUSTOMERS.value):
        groups.append(_customer_group(linked, total, exact, actor, limit))
    groups.extend(_record_groups(text, read_as, units, linked, actor, limit))
    return SearchResult(read_as, groups)


def _read_as(text: str, phone: str | None, units: list) -> list[str]:
    """What the text is searched as. A phone number only exactly; a record number (ASCII letters, digits and
    dashes) by its beginning, not in the text of records (its digit pairs are in every record's number); a
    unit, and with any other character also in the records' text; a customer's name when it has no digits."""
    if phone is not None:
        return [PHONE]
    read_as = [NUMBER] if _NUMBER_LIKE.fullmatch(text) else []
    if units:
        read_as.append(UNIT)
    elif not any(character.isdigit() for character in text):
        read_as.append(NAME)
    if not text.isascii() or not read_as:
        read_as.append(TEXT)
    return read_as


# -- customers ------------------------------------------------------------------------------------------------

def _linked_customers(text: str, phone: str | None, units: list, by_name: bool,
                      actor: Actor) -> tuple[list, int, bool]:
    """The customers (in the archive) the text names — by phone (only for roles that may look customers up), by
    unit, else by name from its beginning: the ids of the first ``LINKED_CUSTOMERS``, how many in all (up to
    ``COUNT_CAP``) and whether that count is exact."""
    if phone is not None:
        if not actor.access.has(Capability.LOOKUP_CUSTOMERS.value):
            return [], 0, True
        found = [customer.pk for customer in find_by_phone(phone, actor.access, actor.user_id,
                                                            limit=LINKED_CUSTOMERS)]
        return found, len(found), True
    query: dict = {"archived": {"$ne": True}}
    if units:
        query["unit"] = {"$in": [unit.pk for unit in units]}
    elif by_name:
        # Anchored: the name index answers it as a range; people type a name from its beginning.
        query["name"] = {"$regex": "^" + re.escape(text)}
    else:
        return [], 0, True
    collection = Customer._get_collection()
    ids = [document["_id"] for document in collection.find(query, {"_id": 1}, limit=LINKED_CUSTOMERS)]
    if len(ids) < LINKED_CUSTOMERS:
        return ids, len(ids), True
    counted = collection.count_documents(query, limit=COUNT_CAP + 1)
    return ids, min(counted, COUNT_CAP), counted <= COUNT_CAP


def _customer_group(ids: list, total: int, exact: bool, actor: Actor, limit: int) -> Group:
    unmasked = sees_personal_data(actor.access)
    order = {pk: index for index, pk in enumerate(ids[:limit])}
    found = sorted(Customer.objects(pk__in=list(order)).select_related(max_depth=1), key=lambda c: order[c.pk])
    hits = [{"id": str(customer.pk), "name": customer.name, "phone": shown(customer, "phone", unmasked) or None,
             "project": customer.project.name if customer.project else None,
             "unit": customer.unit.label if customer.unit else None, "grade": customer.grade}
            for customer in found]
    return Group(CUSTOMERS, str(_l("客户")), total, exact, hits)


# -- records --------------------------------------------------------------------------------------------------

class TypeSearch(NamedTuple):
    """What search everywhere reads of one type's definition: the paths of its unit fields and its sensitive
    search fields (found by their blind index)."""

    key: str
    unit_paths: tuple[str, ...]
    sensitive: tuple


def _load_type_searches() -> Mapping[str, TypeSearch]:
    found = {}
    for summary in type_summaries():
        record_type = get_record_type(summary["key"], active_only=False)
        found[record_type.key] = TypeSearch(
            record_type.key, tuple(d.path for d in record_type.active_fields if d.type == UnitType.name),
            tuple(d for d in record_type.active_fields if d.search and d.sensitive))
    return MappingProxyType(found)


# Reloaded with the type summaries (the same version: every saved definition bumps it; another process and this
# one see an edit within about 2 seconds), not read per search.
_type_searches = NamedCache("record_types", _load_type_searches)


def _record_groups(text: str, read_as: list[str], units: list, customer_ids: list, actor: Actor,
                   limit: int) -> list[Group]:
    """One group per readable type with hits, in menu order: one aggregation whose every type is a
    ``$unionWith`` branch of its own (its first ``limit`` hits and its count up to ``COUNT_CAP`` + 1), so that
    the whole answer is one round trip and each type's query keeps its indexes."""
    searches = _type_searches.get()
    readable = [(summary, searches[summary["key"]]) for summary in type_summaries()
                if summary["key"] in searches and actor.access.may_read_type(summary["key"])]
    exact_ids = _exact_matches([search for _summary, search in readable], text, read_as,
                               [unit.pk for unit in units], actor)
    pipelines = []
    for _summary, search in readable:
        mongo_filter = _record_filter(search.key, text, read_as, exact_ids.get(search.key, []), customer_ids, actor)
        if mongo_filter is not None:
            pipelines.append([{"$match": mongo_filter}, {"$limit": COUNT_CAP + 1}, {"$group": {
                "_id": "$type", "n": {"$sum": 1}, "hits": {"$firstN": {"n": limit, "input": HIT_FIELDS}}}}])
    found = {answer["_id"]: answer for answer in _union(pipelines)}
    groups = [Group(summary["key"], in_user_language(summary["name"], summary.get("name_en")),
                    min(answer["n"], COUNT_CAP), answer["n"] <= COUNT_CAP,
                    [_record_hit(summary["key"], hit) for hit in answer["hits"]])
              for summary, _search in readable if (answer := found.get(summary["key"])) is not None]
    _name_customers(groups)
    return groups


def _union(pipelines: list[list[dict]]) -> list[dict]:
    """The answers of every pipeline over the records, in one round trip (the first, then a ``$unionWith`` per
    other one)."""
    if not pipelines:
        return []
    first, *others = pipelines
    return list(get_database()[RECORDS].aggregate(
        first + [{"$unionWith": {"coll": RECORDS, "pipeline": pipeline}} for pipeline in others]))


# What ``AccessPolicy.permits`` reads of a record to decide whether the actor may read it.
SCOPE_FIELDS = {"type": 1, "assignee": 1, "created_by": 1, "departments": 1, "created_department": 1, "approval": 1}


def _exact_matches(searches: list[TypeSearch], text: str, read_as: list[str], unit_ids: list,
                   actor: Actor) -> dict[str, list]:
    """``{type key: [record id]}`` of the records ``actor`` may read that name one of the units in a unit field,
    or hold the phone in a sensitive search field (its blind index) — at most ``COUNT_CAP`` + 1 per type.

    The scope and the cap are per type: a cap over every type before the scope would drop readable records of a
    busy unit and miscount the types. One query over every type, each condition on the wildcard index
    (``data_wildcard``) or a blind index — a unit's or a phone's records are a household's, read once with only
    the keys the scope needs; a branch per type would read the unit's records once per type (seconds at a million
    records). The ids found join each type's query through ``_id``."""
    readable = {search.key for search in searches
                if actor.access.record_filter(search.key, Action.READ.value) != NOTHING}
    options: list[dict] = []
    for search in searches:
        if search.key not in readable:
            continue
        conditions = [{path: {"$in": unit_ids}} for path in search.unit_paths] if unit_ids else []
        if PHONE in read_as:
            conditions.extend(_sensitive_options(search, text, actor))
        options.extend(c for c in conditions if c not in options)
    found: dict[str, list] = {}
    if not options:
        return found
    for document in get_database()[RECORDS].find({"$or": options}, SCOPE_FIELDS):
        ids = found.setdefault(document["type"], [])
        if document["type"] in readable and len(ids) <= COUNT_CAP and actor.access.permits(document):
            ids.append(document["_id"])
    return {key: ids for key, ids in found.items() if ids}


def unit_paths() -> Mapping[str, tuple[str, ...]]:
    """``{type key: paths of its unit fields}`` of every type with one (as this process holds the types)."""
    return {key: search.unit_paths for key, search in _type_searches.get().items() if search.unit_paths}


def _record_filter(type_key: str, text: str, read_as: list[str], exact_ids: list, customer_ids: list,
                   actor: Actor) -> dict | None:
    """The records of the type the text finds within the actor's scope (None: nothing of the type can match).

    One ``$or`` whose every branch names the type and one indexed condition — a number's beginning
    (``type_number``), the character grams of the searchable text (``type_grams``, then the text itself), a
    linked customer (``type_customer``), the records found by unit or phone (``_id``) — each with the scope:
    MongoDB reads each branch from its index, never the whole type."""
    scope = actor.access.record_filter(type_key, Action.READ.value)
    if scope == NOTHING:
        return None
    options: list[dict] = []
    if NUMBER in read_as:
        options.append({"number": {"$regex": "^" + re.escape(text.upper())}})
    if TEXT in read_as:
        # Letters and characters first: MongoDB takes the first gram for the index bounds, and digit pairs are
        # in every record's number.
        grams = sorted(query_grams(text), key=lambda gram: (gram.isascii(), gram))
        if grams:
            options.append({"grams": {"$all": grams}, "search_text": {"$regex": re.escape(compact_text(text))}})
    if customer_ids:
        options.append({"customer": {"$in": customer_ids}})
    if exact_ids:
        options.append({"_id": {"$in": exact_ids}})
    if not options:
        return None
    scoped = {} if scope is None else {"$and": [scope]}
    return {"$or": [{"type": type_key, **option, **scoped} for option in options]}


def _sensitive_options(search: TypeSearch, text: str, actor: Actor) -> list[dict]:
    """Exact matches of ``text`` on the type's sensitive search fields (a phone), through their blind index under
    every key of the ring (as the type's list search matches them, ``kefu.records.query``)."""
    options = []
    for definition in search.sensitive:
        try:
            value = get_field_type(definition.type).clean(text, definition, actor.field_context())
        except InvalidValue:
            continue
        if value not in (None, ""):
            options.append({f"bidx.{definition.key}": blind_index_match(search.key, definition, value, actor)})
    return options


def _record_hit(type_key: str, hit: dict) -> dict:
    return {"id": str(hit["_id"]), "type": type_key, "number": hit.get("number") or "",
            "status": hit.get("status") or "", "customer_id": hit.get("customer"), "created_at": hit.get("created_at")}


def _name_customers(groups: list[Group]) -> None:
    """Give the record hits their customer's name (one query for all): ``customer`` ``{id, name}`` or None."""
    ids = {hit["customer_id"] for group in groups for hit in group.hits if hit["customer_id"] is not None}
    names = {c["_id"]: c["name"] for c in Customer._get_collection().find({"_id": {"$in": list(ids)}}, {"name": 1})}
    for group in groups:
        for hit in group.hits:
            customer_id = hit.pop("customer_id")
            hit["customer"] = ({"id": str(customer_id), "name": names.get(customer_id, "")}
                               if customer_id is not None else None)
