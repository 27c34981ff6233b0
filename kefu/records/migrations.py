"""Rewriting stored values in batches when a definition changes (a field converted to another type), after checking
which records would not convert."""
from __future__ import annotations

from pymongo import UpdateOne

from kefu.core.db import get_database
from kefu.core.validation import InvalidValue
from kefu.records.actor import system_actor
from kefu.records.fields import FieldContext, FieldSpec, get_field_type
from kefu.records.store import RECORDS


def rewrite_records(query: dict, projection: dict, changes_of, *, batch: int = 500) -> int:
    """``$set`` ``changes_of(document)`` on every record matching ``query``, in bulk batches; return how many
    changed."""
    collection = get_database()[RECORDS]
    operations, changed = [], 0
    for document in collection.find(query, projection):
        operations.append(UpdateOne({"_id": document["_id"]}, {"$set": changes_of(document)}))
        if len(operations) >= batch:
            changed += collection.bulk_write(operations, ordered=False).modified_count
            operations = []
    if operations:
        changed += collection.bulk_write(operations, ordered=False).modified_count
    return changed


def records_not_converting(type_key: str, old: FieldSpec, new: FieldSpec, limit: int = 50) -> list[str]:
    """Numbers of records whose stored ``old`` value would not pass as the ``new`` type."""
    old_type, new_type = get_field_type(old.type), get_field_type(new.type)
    failing = []
    tz = system_actor().tz
    cursor = get_database()[RECORDS].find({"type": type_key, f"data.{old.key}": {"$exists": True, "$ne": None}},
                                          {"number": 1, f"data.{old.key}": 1})
    for document in cursor:
        value = old_type.from_storage(document["data"][old.key])
        try:
            new_type.clean(old_type.to_json(value, tz), new, FieldContext(tz=tz))
        except InvalidValue:
            failing.append(document["number"])
            if len(failing) >= limit:
                break
    return failing


def convert_field_values(type_key: str, old: FieldSpec, new: FieldSpec, batch: int = 500) -> int:
    """Rewrite stored ``old`` values as the ``new`` type, in batches; return how many changed."""
    old_type, new_type = get_field_type(old.type), get_field_type(new.type)
    tz = system_actor().tz

    def converted(document):
        value = new_type.clean(old_type.to_json(old_type.from_storage(document["data"][old.key]), tz), new,
                               FieldContext(tz=tz))
        return {f"data.{old.key}": new_type.to_storage(value)}

    return rewrite_records({"type": type_key, f"data.{old.key}": {"$exists": True, "$ne": None}},
                           {f"data.{old.key}": 1}, converted, batch=batch)
