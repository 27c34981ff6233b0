"""Records: the one write path for every record of every type.

Admin views, the API, jobs and imports all call these functions. A write
validates against the record type's current definition, assigns the human
number, stamps who/when, encrypts sensitive values (with a blind index for
exact search), keeps Chinese search grams, appends to the audit log and uses
optimistic concurrency: an update names the ``version`` it started from and a
stale one is refused with the current values, never silently overwritten.

Records are plain documents in the ``records`` collection (pymongo, not
MongoEngine: their fields are data, not code)::

    {_id, type, number, status, assignee, department, customer,
     data: {field: value}, pii: {field: ciphertext}, bidx: {field: blind index},
     grams: [...], version, created_at, created_by, updated_at, updated_by,
     status_at: {status: when it was last entered}, closed_at}
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from kefu.core.i18n import _l
from kefu.core.validation import InvalidValue
from kefu.records import lifecycle
from kefu.records.attachments import attach_to_record, check_attachable
from kefu.records.fields import FieldContext, get_field_type
from kefu.records.types import FieldDefinition, FieldSpec, RecordType, get_record_type
from kefu.rules.workflow import DEFAULT_STATUSES, check_change, workflow_of

RECORDS = "records"
EVENTS = "record_events"
AUDIT = "audit_log"
COUNTERS = "counters"

MAX_GRAMS = 4000
# Lists and exports never show the search index: leaving it out halves what MongoDB sends and Python decodes.
READ_PROJECTION = {"grams": 0, "search_text": 0}
MAX_PER_PAGE = 200
SLA_SORT = "sla_due"  # sort key: by the earliest running deadline, i.e. the most overdue first

EVENT_KINDS = {
    "created": _l("登记"), "updated": _l("修改"), "comment": _l("备注"), "call": _l("电话沟通"),
    "visit": _l("上门/来访"), "forward": _l("转办部门"), "plan": _l("处理方案"), "approval": _l("审批"),
    "callback": _l("回访"), "status": _l("状态变更"), "level": _l("等级变更"), "attachment": _l("附件"),
    "assign": _l("转派"),
}
# Kinds a person may add by hand; the others are written by the engine.
MANUAL_EVENT_KINDS = ("comment", "call", "visit", "forward", "plan", "approval", "callback", "attachment")


@dataclass
class Actor:
    """Who is acting and how values are shown to them."""

    user: object | None  # kefu.org.users.User, or None for the system (jobs, imports)
    tz: ZoneInfo
    cipher: object  # kefu.core.crypto.FieldCipher
    can_view_pii: bool = False
    attachments: object | None = None  # kefu.records.attachments.AttachmentStore for uploads

    @property
    def user_id(self):
        return self.user.pk if self.user is not None else None

    @property
    def name(self) -> str:
        return self.user.display_name if self.user is not None else "系统"

    def field_context(self, project_id=None) -> FieldContext:
        return FieldContext(tz=self.tz, user=self.user, project_id=project_id, attachments=self.attachments)


@dataclass(frozen=True)
class CoreField(FieldSpec):
    """A field every record has, described like a configured one so the same types filter and validate it;
    stored at the top of the record (``path`` is its key), listed and filterable unless said otherwise."""

    list: bool = True
    filter: bool = True
    editable: bool = True

    @property
    def path(self) -> str:
        return self.key


CORE_FIELDS = (
    CoreField("number", _l("编号"), "text", editable=False),
    CoreField("status", _l("状态"), "choice", choices=DEFAULT_STATUSES),
    CoreField("assignee", _l("负责人"), "user"),
    CoreField("department", _l("部门"), "department"),
    CoreField("customer", _l("客户"), "customer", list=False),
    CoreField("created_at", _l("登记时间"), "datetime", editable=False),
    CoreField("updated_at", _l("更新时间"), "datetime", list=False, editable=False),
    CoreField("created_by", _l("登记人"), "user", list=False, editable=False),
)
CORE_BY_KEY = {f.key: f for f in CORE_FIELDS}


def record_indexes() -> list[IndexModel]:
    """Indexes behind every list, filter, sort and search the screens offer.

    Lists sort by ``created_at`` then ``_id`` (``sort_spec``), so the list
    indexes end with both: MongoDB then returns pages in index order instead
    of sorting every matching record in memory.
    """
    newest = [("created_at", DESCENDING), ("_id", DESCENDING)]
    return [
        IndexModel([("type", ASCENDING), ("number", ASCENDING)], unique=True, name="type_number"),
        IndexModel([("type", ASCENDING), *newest], name="type_created"),
        IndexModel([("type", ASCENDING), ("updated_at", DESCENDING)], name="type_updated"),
        IndexModel([("type", ASCENDING), ("status", ASCENDING), *newest], name="type_status"),
        IndexModel([("type", ASCENDING), ("assignee", ASCENDING), *newest], name="type_assignee"),
        IndexModel([("type", ASCENDING), ("department", ASCENDING), *newest], name="type_department"),
        IndexModel([("type", ASCENDING), ("customer", ASCENDING)], name="type_customer"),
        IndexModel([("type", ASCENDING), ("created_by", ASCENDING)], name="type_created_by"),
        IndexModel([("type", ASCENDING), ("grams", ASCENDING)], name="type_grams"),
        # One callback per closing of a record (kefu.rules.callbacks).
        IndexModel([("source.id", ASCENDING), ("source.closed_at", ASCENDING)], unique=True, name="callback_source",
                   partialFilterExpression={"source.id": {"$exists": True}}),
        # Overdue and due-soon lists (kefu.rules.sla), per type and across types, sorted by how late.
        IndexModel([("type", ASCENDING), ("sla_due", ASCENDING), ("_id", ASCENDING)], name="type_sla_due"),
        # Across types; the keys after _id let the overdue page count per type, department, assignee and
        # level from the index alone (kefu.insight.overdue.counts) and filter on them before reading a document.
        IndexModel([("sla_due", ASCENDING), ("_id", ASCENDING), ("type", ASCENDING), ("department", ASCENDING),
                    ("assignee", ASCENDING), ("data.level", ASCENDING)], name="sla_due",
                   partialFilterExpression={"sla_due": {"$type": "date"}}),
        # Due soon ($elemMatch warn_at <= now < due_at): both bounds apply to the same sla_open element, so
        # only the clocks past their warning time are scanned and the overdue ones are skipped in the index.
        IndexModel([("type", ASCENDING), ("sla_open.warn_at", ASCENDING), ("sla_open.due_at", ASCENDING)],
                   name="type_sla_warn"),
        IndexModel([("sla_open.warn_at", ASCENDING), ("sla_open.due_at", ASCENDING)], name="sla_warn"),
        IndexModel([("sla_live", ASCENDING)], name="sla_live", partialFilterExpression={"sla_live": {"$gt": 0}}),
        # Cross-type counts by day (the dashboard: new and closed per day; kefu.insight.dashboard).
        IndexModel([("created_at", DESCENDING), ("department", ASCENDING)], name="created"),
        IndexModel([("closed_at", DESCENDING), ("department", ASCENDING)], name="closed",
                   partialFilterExpression={"closed_at": {"$type": "date"}}),
        # The reminder sweep (kefu.notify.reminders): records whose next alert has come.
        IndexModel([("sla_next", ASCENDING)], name="sla_next", partialFilterExpression={"sla_next": {"$type": "date"}}),
        # Callbacks due on a day (kefu.schedule.duties: 今日回访).
        IndexModel([("source.due_at", ASCENDING)], name="callback_due",
                   partialFilterExpression={"source.due_at": {"$type": "date"}}),
        # Configured fields: one wildcard index serves an equality or range
        # filter on any data field and any blind index, whatever the admin adds.
        IndexModel([("$**", ASCENDING)], name="data_wildcard",
                   wildcardProjection={"data": 1, "bidx": 1}),
    ]


def ensure_indexes(collection, models: list[IndexModel]) -> None:
    """Create ``models`` on ``collection``, first dropping an index of the same name whose keys changed."""
    existing = collection.index_information()
    for model in models:
        name = model.document["name"]
        if name in existing and dict(existing[name]["key"]) != dict(model.document["key"]):
            collection.drop_index(name)
    collection.create_indexes(models)


def ensure_record_indexes() -> None:
    database = get_database()
    ensure_indexes(database[RECORDS], record_indexes())
    database[EVENTS].create_index([("record_id", ASCENDING), ("at", ASCENDING)], name="record_at")
    database[AUDIT].create_index([("record_id", ASCENDING), ("at", ASCENDING)], name="record_at")
    database[AUDIT].create_index([("at", DESCENDING)], name="at")


def system_actor() -> Actor:
    """The actor of jobs and start-up work: no user, the configured time zone, full read access."""
    from flask import current_app

    return Actor(user=None, tz=ZoneInfo(current_app.config["KEFU_TIMEZONE"]),
                 cipher=current_app.extensions["kefu_cipher"], can_view_pii=True)


# -- definitions -------------------------------------------------------------

def core_fields(record_type: RecordType) -> tuple[CoreField, ...]:
    """The core fields as this type has them: ``status`` offers the type's workflow statuses (built once per
    loaded definition)."""
    def build(_workflow):
        statuses = workflow_of(record_type).statuses
        return tuple(replace(f, choices=statuses) if f.key == "status" else f for f in CORE_FIELDS)

    return record_type.derived("core_fields", record_type.workflow, build)


def core_field(record_type: RecordType, key: str) -> CoreField | None:
    """The core field ``key`` as this type has it (None for a configured field's key)."""
    if key not in CORE_BY_KEY:
        return None
    return replace(CORE_BY_KEY[key], choices=workflow_of(record_type).statuses) if key == "status" else CORE_BY_KEY[key]


def field_for(record_type: RecordType, key: str, *, include_inactive: bool = True):
    """The core or configured field named ``key``; ``ValidationFailed`` for an unknown key."""
    if key in CORE_BY_KEY:
        return core_field(record_type, key)
    definition = record_type.field(key)
    if definition is None or (not include_inactive and not definition.active):
        known = [f.key for f in CORE_FIELDS] + [f.key for f in record_type.active_fields]
        raise ValidationFailed(_l("没有字段“%(key)s”；可用：%(known)s", key=key, known="、".join(known)),
                               {key: _l("没有这个字段")})
    return definition


def field_path(definition) -> str:
    return definition.path


# -- numbers -----------------------------------------------------------------

def next_number(record_type: RecordType, moment: datetime, tz: ZoneInfo) -> str:
    """``TS-202611-0001``: prefix, local year and month, a per-month sequence.

    The counter is one atomic ``$inc`` on a document per prefix and month, so
    concurrent creations in any number of processes never share a number.
    """
    month = moment.astimezone(tz).strftime("%Y%m")
    counter_id = f"{record_type.number_prefix}-{month}"
    counter = get_database()[COUNTERS].find_one_and_update(
        {"_id": counter_id}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER,
    )
    return f"{counter_id}-{counter['seq']:04d}"


# -- values ------------------------------------------------------------------

def _check_value_shape(key: str, raw) -> None:
    # A JSON object where a value belongs is how operator injection starts:
    # no field type takes a dict, so refuse it before any type sees it.
    if isinstance(raw, dict):
        raise ValidationFailed(_l("字段“%(key)s”的值格式不正确", key=key), {key: _l("值格式不正确")})


def clean_values(record_type: RecordType, values: dict, actor: Actor, *, creating: bool,
                 current: dict | None = None) -> tuple[dict, dict]:
    """Validate raw input against the definition; return ``(core, data)`` Python values.

    Unknown keys, disabled fields and read-only fields (on update) are
    refused; on create, missing values get their defaults and required ones
    are reported. Every problem is collected, so the caller can show each
    field's message at once.
    """
    errors: dict = {}
    core: dict = {}
    data: dict = {}
    # A unit is named within the record's project: the one given now, else the stored one.
    project_hint = values.get("project") or (current or {}).get("project")
    context = actor.field_context(project_id=project_id_for(record_type, project_hint, actor))
    for key, raw in values.items():
        try:
            _check_value_shape(key, raw)
        except ValidationFailed as exc:
            errors.update(exc.fields)
            continue
        if key in CORE_BY_KEY:
            definition = core_field(record_type, key)
            if not definition.editable:
                errors[key] = _l("“%(label)s”由系统生成，不能填写", label=definition.label)
                continue
            target = core
        else:
            definition = record_type.field(key)
            if definition is None:
                errors[key] = _l("没有这个字段")
                continue
            if not definition.active:
                errors[key] = _l("字段“%(label)s”已停用", label=definition.label)
                continue
            if definition.readonly and not creating:
                errors[key] = _l("字段“%(label)s”只读", label=definition.label)
                continue
            target = data
        try:
            target[key] = get_field_type(definition.type).clean(raw, definition, context)
        except InvalidValue as exc:
            errors[key] = str(exc)
    if creating:
        for definition in record_type.active_fields:
            if definition.key not in data and definition.default not in (None, ""):
                from kefu.records.fields import default_value
                data[definition.key] = default_value(definition, context)
        core.setdefault("status", workflow_of(record_type).initial)
    for definition in record_type.active_fields:
        if not definition.required or definition.key in errors:
            continue
        present = data.get(definition.key) if definition.key in data else (
            None if creating else (current or {}).get(definition.key))
        if present in (None, "", []) and (creating or definition.key in data):
            errors[definition.key] = _l("请填写“%(label)s”", label=definition.label)
    if errors:
        labels = {k: _label_of(record_type, k) for k in errors}
        summary = "；".join(f"{labels[k]}：{v}" for k, v in errors.items())
        raise ValidationFailed(summary, errors)
    return core, data


def _label_of(record_type: RecordType, key: str) -> str:
    definition = CORE_BY_KEY.get(key) or record_type.field(key)
    return str(definition.label) if definition is not None else key


def project_id_for(record_type: RecordType, raw, actor: Actor):
    """The project a unit name should be looked up in, when the same input names one (else None)."""
    definition = record_type.field("project")
    if raw is None or definition is None or definition.type != "project":
        return None
    try:
        return get_field_type("project").clean(raw, definition, actor.field_context())
    except InvalidValue:
        return None


def _storage_of(record_type: RecordType, core: dict, data: dict, actor: Actor) -> dict:
    """``$set`` fields for the cleaned values: plain, encrypted or both as the definition says."""
    update: dict = {}
    for key, value in core.items():
        update[key] = get_field_type(CORE_BY_KEY[key].type).to_storage(value) if value is not None else None
    for key, value in data.items():
        definition = record_type.field(key)
        field_type = get_field_type(definition.type)
        if definition.sensitive:
            if value in (None, "", []):
                update[f"pii.{key}"] = None
                update[f"bidx.{key}"] = None
            else:
                text = json.dumps(field_type.to_json(value, actor.tz), ensure_ascii=False)
                context = f"{record_type.key}.{key}"
                update[f"pii.{key}"] = actor.cipher.encrypt(text, context=context)
                update[f"bidx.{key}"] = actor.cipher.blind_index(_index_text(value), context=context)
        else:
            update[f"data.{key}"] = field_type.to_storage(value) if value is not None else None
    return update


def _index_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def read_stored(record_type: RecordType, definition, field_type, data: dict, pii: dict, actor: Actor):
    """The Python value of one configured field (decrypted when it is stored encrypted), or None, given the
    record's ``data`` and ``pii`` parts (read once per record by callers that read many fields)."""
    key = definition.key
    blob = pii.get(key)
    if blob is not None:
        text = actor.cipher.decrypt(bytes(blob), context=f"{record_type.key}.{key}")
        return field_type.clean(json.loads(text), definition, actor.field_context())
    stored = data.get(key)
    return None if stored is None else field_type.from_storage(stored)


def read_values(record_type: RecordType, document: dict, actor: Actor) -> dict:
    """Python values of every configured field present in ``document`` (sensitive ones decrypted)."""
    values = {}
    data, pii = document.get("data") or {}, document.get("pii") or {}
    for definition, field_type in record_type.typed_specs:
        value = read_stored(record_type, definition, field_type, data, pii, actor)
        if value is not None:
            values[definition.key] = value
    return values


def read_plain_values(record_type: RecordType, document: dict) -> dict:
    """Python values of the configured fields stored in clear (the rules engine reads these, never personal data)."""
    values = {}
    for definition in record_type.specs:
        stored = (document.get("data") or {}).get(definition.key)
        if stored is not None and not definition.sensitive:
            values[definition.key] = get_field_type(definition.type).from_storage(stored)
    return values


def core_values(document: dict) -> dict:
    values = {}
    for definition in CORE_FIELDS:
        stored = document.get(definition.path)
        values[definition.key] = get_field_type(definition.type).from_storage(stored) if stored is not None else None
    return values


# -- search grams -------------------------------------------------------------

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


def rewrite_records(query: dict, projection: dict, changes_of, *, batch: int = 500) -> int:
    """``$set`` ``changes_of(document)`` on every record matching ``query``, in bulk batches; return how many changed."""
    from pymongo import UpdateOne

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


def index_unindexed_records() -> int:
    """Give every record stored before ``search_text`` existed its search index (run at start-up)."""
    return sum(reindex_search(key, only_missing=True)
               for key in get_database()[RECORDS].distinct("type", {"search_text": {"$exists": False}}))


# -- writes ------------------------------------------------------------------

def _display_values(record_type: RecordType, values: dict, actor: Actor, keys) -> dict:
    shown = {}
    for key in keys:
        definition = CORE_BY_KEY.get(key) or record_type.field(key)
        value = values.get(key)
        if value in (None, "", []):
            shown[key] = None
        elif definition.sensitive:
            shown[key] = get_field_type(definition.type).mask(value)
        else:
            shown[key] = get_field_type(definition.type).display(value, actor.tz)
    return shown


def _audit(action: str, record_type: RecordType, document: dict, actor: Actor, changes: list | None = None,
           extra: dict | None = None) -> None:
    entry = {
        "record_id": document["_id"] if document else None, "record_type": record_type.key,
        "number": document.get("number") if document else None, "action": action, "at": utcnow(),
        "by": actor.user_id, "by_name": actor.name, "changes": changes or [],
    }
    if extra:
        entry.update(extra)
    get_database()[AUDIT].insert_one(entry)


def _event(record_type_key: str, record_id, kind: str, actor: Actor, text: str = "", attachments=(),
           data: dict | None = None, at: datetime | None = None) -> dict:
    event = {
        "record_id": record_id, "record_type": record_type_key, "kind": kind, "at": at or utcnow(),
        "by": actor.user_id, "by_name": actor.name, "text": text, "attachments": list(attachments),
        "data": data or {},
    }
    get_database()[EVENTS].insert_one(event)
    return event


def _attachment_ids(record_type: RecordType, data: dict, record_id=None) -> list[str]:
    """Ids of the files the values name, checked to exist and belong to no other record."""
    ids, errors = [], {}
    for key, value in data.items():
        if record_type.field(key).type == "attachments" and value:
            try:
                check_attachable(value, record_id)
            except (NotFound, Conflict) as exc:
                errors[key] = exc.message
            ids.extend(str(v) for v in value)
    if errors:
        raise ValidationFailed("；".join(str(m) for m in errors.values()), errors)
    return ids


def create_record(type_key: str, values: dict, actor: Actor, *, extra: dict | None = None) -> dict:
    """Validate and store a new record; return the stored document.

    Raises ``ValidationFailed`` (field key → message) and ``NotFound`` for an
    unknown or disabled type. ``extra``: engine-owned top-level keys stored
    in the same insert (a callback's ``source`` link), never field values.
    """
    record_type = get_record_type(type_key)
    core, data = clean_values(record_type, values, actor, creating=True)
    check_change(record_type, None, core["status"], data)
    lifecycle.before_save(record_type, None, {**core, **data}, {*core, *data})
    now = utcnow()
    number = next_number(record_type, now, actor.tz)
    document = {"_id": ObjectId(), "type": record_type.key, "number": number, "data": {}, "pii": {}, "bidx": {}}
    for path, value in _storage_of(record_type, core, data, actor).items():
        _set_path(document, path, value)
    document.update({
        **search_index(record_type, number, data, actor.tz), "version": 1,
        "created_at": now, "created_by": actor.user_id, "updated_at": now, "updated_by": actor.user_id,
        "status_at": {core["status"]: now},
        "closed_at": now if workflow_of(record_type).is_closed(core["status"]) else None,
    })
    document.setdefault("assignee", None)
    document.setdefault("department", None)
    document.setdefault("customer", None)
    document.update({k: v for k, v in (extra or {}).items() if k not in document})
    attachments = _attachment_ids(record_type, data)
    get_database()[RECORDS].insert_one(document)
    attach_to_record(attachments, document["_id"])
    changes = [{"field": k, "label": _label_of(record_type, k), "before": None, "after": v}
               for k, v in _display_values(record_type, {**core, **data}, actor, [*core, *data]).items()
               if v is not None]
    _audit("create", record_type, document, actor, changes)
    _event(record_type.key, document["_id"], "created", actor, text=str(_l("登记 %(number)s", number=number)),
           attachments=attachments, at=now)
    return lifecycle.after_save(record_type, document, None, {*core, *data}, actor)


def _set_path(document: dict, path: str, value) -> None:
    head, _, rest = path.partition(".")
    if rest:
        document.setdefault(head, {})[rest] = value
    else:
        document[head] = value


def _object_id(record_id) -> ObjectId:
    try:
        return record_id if isinstance(record_id, ObjectId) else ObjectId(str(record_id))
    except (InvalidId, TypeError) as exc:
        raise NotFound(_l("记录不存在")) from exc


def get_record(type_key: str, record_id) -> dict:
    """The stored document; ``NotFound`` when it does not exist (or is of another type)."""
    document = get_database()[RECORDS].find_one({"_id": _object_id(record_id), "type": type_key})
    if document is None:
        raise NotFound(_l("记录不存在"))
    return document


def update_record(type_key: str, record_id, values: dict, actor: Actor, *, version: int,
                  enforce_workflow: bool = True) -> dict:
    """Apply ``values`` to the record if it is still at ``version``; return the new document.

    A stale ``version`` raises ``Conflict`` ("已被他人修改") carrying the
    current document in ``exc.current``; nothing is written. A status move
    the type's workflow does not allow, or a close with ``required_on_close``
    fields empty, raises ``ValidationFailed`` (``enforce_workflow=False`` is
    for the rules engine's own moves, such as back to rework).
    """
    record_type = get_record_type(type_key, active_only=False)
    current = get_record(type_key, record_id)
    try:
        version = int(version)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(_l("缺少版本号 version"), {"version": _l("缺少版本号")}) from exc
    if current["version"] != version:
        raise _stale(current)
    before = {**core_values(current), **read_values(record_type, current, actor)}
    core, data = clean_values(record_type, values, actor, creating=False, current=before)
    changed = [k for k, v in {**core, **data}.items() if before.get(k) != v]
    if not changed:
        return current
    attachments = _attachment_ids(record_type, {k: data[k] for k in data if k in changed}, current["_id"])
    now = utcnow()
    update = _storage_of(record_type, {k: core[k] for k in core if k in changed},
                         {k: data[k] for k in data if k in changed}, actor)
    after = {**before, **core, **data}
    if "status" in changed:
        if enforce_workflow:
            check_change(record_type, before.get("status"), after["status"], after)
        update[f"status_at.{after['status']}"] = now
        # closed_at: when the record last entered a closed status (None while open) — reports and the dashboard.
        update["closed_at"] = now if workflow_of(record_type).is_closed(after["status"]) else None
    lifecycle.before_save(record_type, current, after, set(changed))
    update.update({**search_index(record_type, current["number"], after, actor.tz),
                   "updated_at": now, "updated_by": actor.user_id})
    result = get_database()[RECORDS].find_one_and_update(
        {"_id": current["_id"], "version": version}, {"$set": update, "$inc": {"version": 1}},
        return_document=ReturnDocument.AFTER,
    )
    if result is None:  # someone saved between our read and our write
        raise _stale(get_record(type_key, record_id))
    old_shown = _display_values(record_type, before, actor, changed)
    new_shown = _display_values(record_type, after, actor, changed)
    changes = [{"field": k, "label": _label_of(record_type, k), "before": old_shown[k], "after": new_shown[k]}
               for k in changed]
    _audit("update", record_type, result, actor, changes)
    attach_to_record(attachments, result["_id"])
    if "status" in changed:
        _event(record_type.key, result["_id"], "status", actor,
               text=f"{old_shown['status'] or '-'} → {new_shown['status']}", at=now)
    return lifecycle.after_save(record_type, result, before, set(changed), actor)


def system_update(type_key: str, record_id, values: dict, actor: Actor, *, event_kind: str, event_text: str,
                  when=None) -> dict | None:
    """A change the rules engine makes (a level raised, a record sent back to rework): whatever the record's
    current version, outside the workflow's allowed moves, with a timeline event saying why.

    ``when(current_document)``: optional condition checked on each attempt's fresh read; when it is false
    nothing is written and None is returned (a level is raised only while it is still lower)."""
    for _attempt in range(5):
        current = get_record(type_key, record_id)
        if when is not None and not when(current):
            return None
        try:
            document = update_record(type_key, record_id, values, actor, version=current["version"],
                                     enforce_workflow=False)
        except Conflict:
            continue  # someone saved in between: apply to the newer version
        _event(type_key, document["_id"], event_kind, actor, text=event_text)
        return document
    raise Conflict(_l("记录正被频繁修改，请稍后重试"))


def reassign(record_ids, assignee_id, actor: Actor, *, versions: dict | None = None) -> tuple[list, list]:
    """Give each record (of any type) the assignee ``assignee_id``; return ``(done, refused)``.

    Each record goes through ``update_record`` (validation, audit log, SLA
    refresh) and gets a 转派 event on its timeline. ``versions`` maps record ids
    to the version the person saw: a record changed since then is not
    overwritten but reported. ``done`` lists the numbers of the records now
    assigned to the user; ``refused`` lists ``(number or id, reason)``.
    ``PermissionDenied`` unless the actor may reassign (supervisors, managers,
    administrators, the system); ``ValidationFailed`` for a missing or
    disabled user.
    """
    from kefu.org.roles import REASSIGN_RECORDS
    from kefu.org.users import User

    if actor.user is not None and not actor.user.can(REASSIGN_RECORDS):
        raise PermissionDenied(_l("只有客服主管、客服经理或系统管理员可以转派记录"))
    try:
        assignee = User.objects(pk=_object_id(assignee_id), active=True).first()
    except NotFound:
        assignee = None
    if assignee is None:
        raise ValidationFailed(_l("请选择一个启用的用户作为新负责人"), {"assignee": _l("找不到这个用户")})
    versions = {str(k): v for k, v in (versions or {}).items()}
    collection = get_database()[RECORDS]
    done, refused = [], []
    for record_id in record_ids:
        try:
            oid = _object_id(record_id)
        except NotFound as exc:
            refused.append((str(record_id), str(exc)))
            continue
        current = collection.find_one({"_id": oid}, {"type": 1, "number": 1, "version": 1, "assignee": 1})
        if current is None:
            refused.append((str(record_id), str(_l("记录不存在"))))
            continue
        try:
            version = int(versions.get(str(oid), current["version"]))
        except (TypeError, ValueError):
            version = -1  # an unreadable version is a stale one
        try:
            if version != current["version"]:
                raise _stale(current)
            if current.get("assignee") == assignee.pk:
                done.append(current["number"])
                continue
            before = _display_values(get_record_type(current["type"], active_only=False),
                                     {"assignee": current.get("assignee")}, actor, ["assignee"])["assignee"]
            update_record(current["type"], oid, {"assignee": assignee.pk}, actor, version=version)
        except DomainError as exc:
            refused.append((current["number"], str(exc)))
            continue
        _event(current["type"], oid, "assign", actor,
               text=str(_l("转派：%(before)s → %(after)s", before=before or "-", after=str(assignee))))
        done.append(current["number"])
    return done, refused


def _stale(current: dict) -> Conflict:
    conflict = Conflict(_l("已被他人修改（当前版本 %(v)s），请查看最新内容后再保存", v=current["version"]),
                        {"version": _l("已被他人修改")})
    conflict.current = current
    return conflict


def add_event(type_key: str, record_id, kind: str, text: str, actor: Actor, files=()) -> dict:
    """Append a process record (comment, phone call, visit …) with attachments to the timeline."""
    if kind not in MANUAL_EVENT_KINDS:
        allowed = "、".join(f"{k}（{EVENT_KINDS[k]}）" for k in MANUAL_EVENT_KINDS)
        raise ValidationFailed(_l("事件类型“%(kind)s”无效；可选：%(allowed)s", kind=kind, allowed=allowed),
                               {"kind": _l("事件类型无效")})
    text = (text or "").strip()
    if not text and not files:
        raise ValidationFailed(_l("请填写内容或上传附件"), {"text": _l("请填写内容或上传附件")})
    document = get_record(type_key, record_id)
    attachments = []
    for upload in files:
        if actor.attachments is None:
            raise ValidationFailed(_l("此处不能上传附件"))
        info = actor.attachments.store(upload, 20 * 1024 * 1024)
        attachments.append(info.id)
    attach_to_record(attachments, document["_id"])
    event = _event(type_key, document["_id"], kind, actor, text=text, attachments=attachments)
    lifecycle.after_event(type_key, document["_id"], kind, actor)
    return event


def record_events(record_id) -> list[dict]:
    """The record's timeline, oldest first."""
    return list(get_database()[EVENTS].find({"record_id": _object_id(record_id)}).sort("at", ASCENDING))


def record_audit(record_id) -> list[dict]:
    return list(get_database()[AUDIT].find({"record_id": _object_id(record_id)}).sort("at", ASCENDING))


# -- reads -------------------------------------------------------------------

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


def build_filter(record_type: RecordType, query: RecordQuery, actor: Actor) -> dict:
    """The MongoDB filter for ``query``; ``ValidationFailed`` for unknown fields or operators."""
    clauses: list[dict] = [{"type": record_type.key}]
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
    return {path: actor.cipher.blind_index(_index_text(value), context=f"{record_type.key}.{definition.key}")}


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
                options.append({f"bidx.{definition.key}": actor.cipher.blind_index(
                    _index_text(value), context=f"{record_type.key}.{definition.key}")})
    return {"$or": options}


def sort_spec(record_type: RecordType, sort: str | None) -> list[tuple[str, int]]:
    if not sort:
        return [("created_at", DESCENDING), ("_id", DESCENDING)]
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key == SLA_SORT:
        direction = DESCENDING if descending else ASCENDING
        return [("sla_due", direction), ("_id", direction)]
    definition = field_for(record_type, key)
    if definition.sensitive:
        raise ValidationFailed(_l("敏感字段不能排序"), {key: _l("敏感字段不能排序")})
    direction = DESCENDING if descending else ASCENDING
    return [(definition.path, direction), ("_id", direction)]


def find_records(type_key: str, query: RecordQuery, actor: Actor, *,
                 record_type: RecordType | None = None) -> tuple[int, list[dict]]:
    """``(total, page of documents)`` for the query; the one reader behind list, API and export.

    ``record_type``: the type's definition when the caller has loaded it already (saves reading it again).
    """
    record_type = record_type if record_type is not None else get_record_type(type_key, active_only=False)
    per_page = max(1, min(int(query.per_page or 50), MAX_PER_PAGE))
    page = max(1, int(query.page or 1))
    mongo_filter = build_filter(record_type, query, actor)
    collection = get_database()[RECORDS]
    total = collection.count_documents(mongo_filter)
    cursor = collection.find(mongo_filter, READ_PROJECTION, sort=sort_spec(record_type, query.sort),
                             skip=(page - 1) * per_page, limit=per_page)
    return total, list(cursor)


def iter_records(type_key: str, query: RecordQuery, actor: Actor, batch_size: int = 1000, fields=None):
    """Every matching document in the query's order, streamed (for exports). ``fields``: the stored paths to
    read (``data.<key>``, ``pii.<key>``, core keys …), else everything lists read."""
    record_type = get_record_type(type_key, active_only=False)
    projection = dict.fromkeys(fields, 1) if fields else READ_PROJECTION
    cursor = get_database()[RECORDS].find(
        build_filter(record_type, query, actor), projection, sort=sort_spec(record_type, query.sort),
        batch_size=batch_size)
    yield from cursor


# -- schema evolution -------------------------------------------------------

def records_not_converting(type_key: str, old: FieldDefinition, new: FieldDefinition, limit: int = 50) -> list[str]:
    """Numbers of records whose stored ``old`` value would not pass as the ``new`` type."""
    from kefu.records.fields import FieldContext as Context

    old_type, new_type = get_field_type(old.type), get_field_type(new.type)
    failing = []
    tz = system_actor().tz
    cursor = get_database()[RECORDS].find({"type": type_key, f"data.{old.key}": {"$exists": True, "$ne": None}},
                                          {"number": 1, f"data.{old.key}": 1})
    for document in cursor:
        value = old_type.from_storage(document["data"][old.key])
        try:
            new_type.clean(old_type.to_json(value, tz), new, Context(tz=tz))
        except InvalidValue:
            failing.append(document["number"])
            if len(failing) >= limit:
                break
    return failing


def convert_field_values(type_key: str, old: FieldDefinition, new: FieldDefinition, batch: int = 500) -> int:
    """Rewrite stored ``old`` values as the ``new`` type, in batches; return how many changed."""
    from kefu.records.fields import FieldContext as Context

    old_type, new_type = get_field_type(old.type), get_field_type(new.type)
    tz = system_actor().tz

    def converted(document):
        value = new_type.clean(old_type.to_json(old_type.from_storage(document["data"][old.key]), tz), new,
                               Context(tz=tz))
        return {f"data.{old.key}": new_type.to_storage(value)}

    return rewrite_records({"type": type_key, f"data.{old.key}": {"$exists": True, "$ne": None}},
                           {f"data.{old.key}": 1}, converted, batch=batch)
