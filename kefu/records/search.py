"""Chinese search: character grams of the searched fields (a search needs no word segmentation), kept on each record,
and rebuilding them."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from kefu.core.db import get_database
from kefu.records.actor import system_actor
from kefu.records.fields import get_field_type
from kefu.records.migrations import rewrite_records
from kefu.records.store import RECORDS
from kefu.records.types import RecordType, get_record_type
from kefu.records.values import read_values

MAX_GRAMS = 4000
SEARCH_SEPARATOR = "\x1f"  # between fields in search_text; never part of a query (str.split() drops it)


def compact_text(text) -> str:
    """``text`` lower-cased without whitespace: the form both records and queries are searched in."""
    return "".join(str(text).lower().split())


def text_grams(text: str) -> set[str]:
    """Single characters and character pairs of ``text`` without spaces, lower-cased.

    Chinese has no spaces between words, so the index holds character pairs:
    a query's pairs must all be among the record's (the index prefilter),
    then ``search_text`` must contain the query itself (the exact check).
    """
    compact = compact_text(text)
    grams = set(compact)
    grams.update(compact[i:i + 2] for i in range(len(compact) - 1))
    return grams


def query_grams(text: str) -> list[str]:
    compact = compact_text(text)
    if len(compact) <= 1:
        return [compact] if compact else []
    return sorted({compact[i:i + 2] for i in range(len(compact) - 1)})


def search_index(record_type: RecordType, number: str, values: dict, tz: ZoneInfo) -> dict:
    """``grams`` and ``search_text`` of a record: its number and its non-sensitive ``search`` fields."""
    parts = [compact_text(number)]
    for definition in record_type.active_fields:
        value = values.get(definition.key)
        if definition.search and not definition.sensitive and value not in (None, "", []):
            parts.append(compact_text(get_field_type(definition.type).display(value, tz)))
    grams = set()
    for part in parts:
        grams |= text_grams(part)
    return {"grams": sorted(grams)[:MAX_GRAMS], "search_text": SEARCH_SEPARATOR.join(parts)}


def reindex_search(type_key: str, *, only_missing: bool = False, batch: int = 500) -> int:
    """Recompute ``grams``/``search_text`` of the type's records (after its search fields changed); return how many.

    ``only_missing`` limits it to records stored before ``search_text`` existed.
    """
    record_type = get_record_type(type_key, active_only=False)
    actor = system_actor()
    query = {"type": type_key, **({"search_text": {"$exists": False}} if only_missing else {})}

    def index_of(document):
        return search_index(record_type, document["number"], read_values(record_type, document, actor), actor.tz)

    return rewrite_records(query, {"number": 1, "data": 1, "pii": 1}, index_of, batch=batch)


def index_unindexed_records() -> int:
    """Give every record stored before ``search_text`` existed its search index (run at start-up)."""
    return sum(reindex_search(key, only_missing=True)
               for key in get_database()[RECORDS].distinct("type", {"search_text": {"$exists": False}}))
