"""Rewriting stored values in batches: when a definition changes (a field converted to another type, after checking
which records would not convert), and once for records stored before a key the engine now reads existed."""
from __future__ import annotations

from pymongo import UpdateOne

from kefu.core.db import get_database
from kefu.core.validation import InvalidValue
from kefu.org.users import User
from kefu.records.actor import system_actor
from kefu.records.fields import FieldContext, FieldSpec, get_field_type
from kefu.records.fields.references import DepartmentType
from kefu.records.store import RECORDS
from kefu.records.types import get_record_type


def rewrite_records(query: dict, projection: dict, changes_of, *, batch: int = 500, unchanged: str | None = None
                    ) -> int:
    """``$set`` ``changes_of(document)`` on every record matching ``query``, in bulk batches; return how many
    changed. ``unchanged``: a path (``data.note``) whose value as read must still be stored for the write to
    happen, so a record saved in between is left as that save made it."""
    collection = get_database()[RECORDS]
    operations, changed = [], 0
    for document in collection.find(query, projection):
        match = {"_id": document["_id"]}
        if unchanged is not None:
            head, _dot, rest = unchanged.partition(".")
            match[unchanged] = document[head][rest] if rest else document[head]
        operations.append(UpdateOne(match, {"$set": changes_of(document)}))
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


def records_holding(type_key: str, definition: FieldSpec, limit: int = 50) -> list[str]:
    """Numbers of records holding a value of the field (stored plain or, for a sensitive one, encrypted)."""
    path = f"{'pii' if definition.sensitive else 'data'}.{definition.key}"
    cursor = get_database()[RECORDS].find({"type": type_key, path: {"$ne": None}}, {"number": 1}, limit=limit)
    return [document["number"] for document in cursor]


def convert_field_values(type_key: str, old: FieldSpec, new: FieldSpec, batch: int = 500) -> int:
    """Rewrite stored ``old`` values as the ``new`` type, in batches; return how many changed. A value saved after
    it was read (by the new definition) is not overwritten. The records' ``version`` stays: the value means the
    same, and a form opened before still saves (the definition's version tells that it changed)."""
    old_type, new_type = get_field_type(old.type), get_field_type(new.type)
    tz = system_actor().tz

    def converted(document):
        value = new_type.clean(old_type.to_json(old_type.from_storage(document["data"][old.key]), tz), new,
                               FieldContext(tz=tz))
        return {f"data.{old.key}": new_type.to_storage(value)}

    return rewrite_records({"type": type_key, f"data.{old.key}": {"$exists": True, "$ne": None}},
                           {f"data.{old.key}": 1}, converted, batch=batch, unchanged=f"data.{old.key}")


def backfill_created_department(batch: int = 500) -> int:
    """Give records stored before the department scope existed (``kefu.org.access``) their ``created_department``:
    the department of whoever registered them (None for the system's own). Idempotent; returns how many changed."""
    department_of = {user["_id"]: user.get("department")
                     for user in User._get_collection().find({}, {"department": 1})}
    return rewrite_records({"created_department": {"$exists": False}}, {"created_by": 1},
                           lambda document: {"created_department": department_of.get(document.get("created_by"))},
                           batch=batch)


def backfill_departments(batch: int = 500) -> int:
    """Give records stored before the department scope existed their ``departments`` (``write.departments_of``:
    the core department and every department field's value). Idempotent; returns how many changed."""
    collection = get_database()[RECORDS]
    changed = 0
    for type_key in collection.distinct("type", {"departments": {"$exists": False}}):
        record_type = get_record_type(type_key, active_only=False)
        keys = [definition.key for definition in record_type.specs
                if definition.type == DepartmentType.name and not definition.sensitive]

        def departments(document, keys=keys):
            data = document.get("data") or {}
            found = [document.get("department"), *(data.get(key) for key in keys)]
            return {"departments": list(dict.fromkeys(d for d in found if d is not None))}

        changed += rewrite_records({"type": type_key, "departments": {"$exists": False}},
                                   {"department": 1, **{f"data.{key}": 1 for key in keys}}, departments, batch=batch)
    return changed
