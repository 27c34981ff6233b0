"""The one write path for every record of every type: create, update, system updates of the rules, reassign.

Admin views, the API, jobs and imports all call these functions. A write validates against the record type's
current definition, assigns the human number, stamps who/when, encrypts sensitive values, keeps Chinese search
grams, appends to the audit log and uses optimistic concurrency: an update names the ``version`` it started from
and a stale one is refused with the current values, never silently overwritten. After the write the rules of the
type run (``kefu.records.lifecycle``). Each save — the record, its audit entry and timeline event, and whatever the
rules write (deadlines, a level raise, an approval request, a callback) — is one transaction
(``kefu.core.db.in_transaction``): all of it is stored, or none."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from kefu.core.clock import utcnow
from kefu.core.db import database_outside_transaction, get_database, in_transaction, transactional
from kefu.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from kefu.core.i18n import _l
from kefu.org.access import ACCESS_PROJECTION
from kefu.org.roles import Action
from kefu.org.users import User
from kefu.records import lifecycle
from kefu.records.actor import Actor
from kefu.records.attachments import attach_to_record, removes_uploads_on_failure
from kefu.records.core_fields import CORE_BY_KEY
from kefu.records.fields import get_field_type
from kefu.records.fields.references import DepartmentType
from kefu.records.idempotency import IdempotencyKey
from kefu.records.search import search_index
from kefu.records.sections import workflow_of
from kefu.records.store import COUNTERS, RECORDS, get_record, get_record_for, object_id
from kefu.records.timeline import audit, record_event
from kefu.records.types import RecordType, get_record_type
from kefu.records.values import (
    attachment_ids, clean_values, core_values, display_values, label_of, read_values, storage_of,
)


def _set_path(document: dict, path: str, value) -> None:
    head, _, rest = path.partition(".")
    if rest:
        document.setdefault(head, {})[rest] = value
    else:
        document[head] = value


def _stale(current: dict) -> Conflict:
    """The refusal of a write that started from an older version, carrying the record as it is now."""
    conflict = Conflict(_l("已被他人修改（当前版本 %(v)s），请查看最新内容后再保存", v=current["version"]),
                        {"version": _l("已被他人修改")})
    conflict.current = current
    return conflict


def departments_of(record_type: RecordType, values: dict) -> list:
    """The departments a record concerns, as stored ids: its core department and the value of every department
    field (the department it was forwarded to, the one following it up …). The department scope of
    ``kefu.org.access`` reads them from the record's ``departments``."""
    found = []
    for key, value in values.items():
        definition = record_type.field(key) or CORE_BY_KEY.get(key)
        if value is not None and definition is not None and definition.type == DepartmentType.name:
            stored = get_field_type(DepartmentType.name).to_storage(value)
            if stored not in found:
                found.append(stored)
    return found


def next_number(record_type: RecordType, moment: datetime, tz: ZoneInfo) -> str:
    """``TS-202611-0001``: prefix, local year and month, a per-month sequence.

    The counter is one atomic ``$inc`` on a document per prefix and month, so
    concurrent creations in any number of processes never share a number.
    """
    month = moment.astimezone(tz).strftime("%Y%m")
    counter_id = f"{record_type.number_prefix}-{month}"
    counter = database_outside_transaction()[COUNTERS].find_one_and_update(
        {"_id": counter_id}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER,
    )
    return f"{counter_id}-{counter['seq']:04d}"


@removes_uploads_on_failure
def create_record(type_key: str, values: dict, actor: Actor, *, extra: dict | None = None,
                  idempotency_key: str | None = None) -> dict:
    """Validate and store a new record, its audit entry, timeline event and the rules' state in one transaction;
    return the stored document.

    Raises ``ValidationFailed`` (field key → message) and ``NotFound`` for an
    unknown or disabled type. ``extra``: engine-owned top-level keys stored
    in the same insert (a callback's ``source`` link; the origin's ``created_department`` for a record the system
    makes, which has none of its own), never field values; a key the record already sets keeps its value.
    ``idempotency_key`` (``kefu.records.idempotency``): a create the same caller made with this key before
    returns the record it made, without a second one; ``Conflict`` when the key was used for another request.
    """
    record_type = get_record_type(type_key)
    actor.access.require(record_type.key, Action.CREATE.value, record_type.name)
    claim = IdempotencyKey.of(idempotency_key, actor.user_id, record_type.key, values)
    earlier = claim.earlier_record() if claim else None
    if earlier is not None:
        return _replayed(earlier, actor)
    core, data = clean_values(record_type, values, actor, creating=True)
    lifecycle.before_save(record_type, None, {**core, **data}, {*core, *data})
    now = utcnow()
    # Taken before the transaction, so a retried transaction keeps its number and numbers stay consecutive.
    number = next_number(record_type, now, actor.tz)
    try:
        return in_transaction(lambda: _insert(record_type, core, data, number, now, actor, extra, claim))
    except DuplicateKeyError as exc:
        if claim is None or not claim.made_concurrently(exc):
            raise
        # The same request, sent twice at once: the other one made the record.
        return _replayed(claim.earlier_record(), actor)


def _replayed(document: dict | None, actor: Actor) -> dict:
    """The record an earlier try with the same key made, as the caller may read it now (``NotFound`` when they no
    longer may: a replay is a read, and answers nothing a read would not)."""
    if document is None:
        raise NotFound(_l("记录不存在"))
    actor.access.check(document, Action.READ.value)
    return document


def _insert(record_type: RecordType, core: dict, data: dict, number: str, now: datetime, actor: Actor,
            extra: dict | None, claim: IdempotencyKey | None) -> dict:
    document = {"_id": ObjectId(), "type": record_type.key, "number": number, "data": {}, "pii": {}, "bidx": {}}
    for path, value in storage_of(record_type, core, data, actor).items():
        _set_path(document, path, value)
    document.update({
        **search_index(record_type, number, data, actor.tz), "version": 1,
        "created_at": now, "created_by": actor.user_id, "created_department": actor.department_id,
        "departments": departments_of(record_type, {**core, **data}),
        "updated_at": now, "updated_by": actor.user_id,
        "status_at": {core["status"]: now},
        "closed_at": now if workflow_of(record_type).is_closed(core["status"]) else None,
    })
    document.setdefault("assignee", None)
    document.setdefault("department", None)
    document.setdefault("customer", None)
    document.update({k: v for k, v in (extra or {}).items() if document.get(k) is None})
    attachments = attachment_ids(record_type, data)
    get_database()[RECORDS].insert_one(document)
    if claim is not None:
        claim.note(document["_id"])
    attach_to_record(attachments, document["_id"])
    changes = [{"field": k, "label": label_of(record_type, k), "before": None, "after": v}
               for k, v in display_values(record_type, {**core, **data}, actor, [*core, *data]).items()
               if v is not None]
    audit("create", record_type, document, actor, changes)
    record_event(record_type.key, document["_id"], "created", actor, text=str(_l("登记 %(number)s", number=number)),
                 attachments=attachments, at=now)
    return lifecycle.after_save(record_type, document, None, {*core, *data}, actor)


@removes_uploads_on_failure
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
    current = get_record_for(type_key, record_id, actor.access, Action.EDIT.value)
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
    if "assignee" in changed:
        actor.access.check(current, Action.REASSIGN.value)
    attachments = attachment_ids(record_type, {k: data[k] for k in data if k in changed}, current["_id"])
    now = utcnow()
    update = storage_of(record_type, {k: core[k] for k in core if k in changed},
                         {k: data[k] for k in data if k in changed}, actor)
    after = {**before, **core, **data}
    if "status" in changed:
        update[f"status_at.{after['status']}"] = now
        # closed_at: when the record last entered a closed status (None while open) — reports and the dashboard.
        update["closed_at"] = now if workflow_of(record_type).is_closed(after["status"]) else None
    lifecycle.before_save(record_type, current, after, set(changed), system=not enforce_workflow)
    update.update({**search_index(record_type, current["number"], after, actor.tz),
                   "departments": departments_of(record_type, after), "updated_at": now, "updated_by": actor.user_id})

    def apply() -> dict:
        result = get_database()[RECORDS].find_one_and_update(
            {"_id": current["_id"], "version": version}, {"$set": update, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if result is None:  # someone saved between our read and our write (and may have moved it out of our scope)
            raise _stale(get_record_for(type_key, record_id, actor.access))
        old_shown = display_values(record_type, before, actor, changed)
        new_shown = display_values(record_type, after, actor, changed)
        changes = [{"field": k, "label": label_of(record_type, k), "before": old_shown[k], "after": new_shown[k]}
                   for k in changed]
        audit("update", record_type, result, actor, changes)
        attach_to_record(attachments, result["_id"])
        if "status" in changed:
            record_event(record_type.key, result["_id"], "status", actor,
                         text=f"{old_shown['status'] or '-'} → {new_shown['status']}", at=now)
        return lifecycle.after_save(record_type, result, before, set(changed), actor)

    # Validated (and any files stored) before the transaction, which reads from a snapshot taken when it starts;
    # the version condition keeps a change made in between from being overwritten.
    return in_transaction(apply)


@transactional
def system_update(type_key: str, record_id, values: dict, actor: Actor, *, event_kind: str, event_text: str,
                  when=None) -> dict | None:
    """A change the rules engine makes (a level raised, a record sent back to rework): whatever the record's
    current version, outside the workflow's allowed moves, with a timeline event saying why.

    ``when(current_document)``: optional condition on the record as stored; when it is false nothing is written
    and None is returned (a level is raised only while it is still lower). One transaction: a save in between is a
    write conflict, and the whole change is retried on the newer record."""
    current = get_record(type_key, record_id)
    if when is not None and not when(current):
        return None
    document = update_record(type_key, record_id, values, actor, version=current["version"], enforce_workflow=False)
    record_event(type_key, document["_id"], event_kind, actor, text=event_text)
    return document


def reassign(record_ids, assignee_id, actor: Actor, *, versions: dict | None = None) -> tuple[list, list]:
    """Give each record (of any type) the assignee ``assignee_id``; return ``(done, refused)``.

    Each record goes through ``update_record`` (validation, audit log, SLA
    refresh) and gets a 转派 event on its timeline. ``versions`` maps record ids
    to the version the person saw: a record changed since then is not
    overwritten but reported. ``done`` lists the numbers of the records now
    assigned to the user; ``refused`` lists ``(number or id, reason)``.
    A record the actor may not reassign (``kefu.org.access``: their roles' scope) is refused like one that does
    not exist. ``ValidationFailed`` for a missing or disabled user.
    """
    try:
        assignee = User.objects(pk=object_id(assignee_id), active=True).first()
    except NotFound:
        assignee = None
    if assignee is None:
        raise ValidationFailed(_l("请选择一个启用的用户作为新负责人"), {"assignee": _l("找不到这个用户")})
    versions = {str(k): v for k, v in (versions or {}).items()}
    collection = get_database()[RECORDS]
    done, refused = [], []
    for record_id in record_ids:
        try:
            oid = object_id(record_id)
        except NotFound as exc:
            refused.append((str(record_id), str(exc)))
            continue
        current = collection.find_one({"_id": oid}, ACCESS_PROJECTION)
        if current is None or not actor.access.permits(current, Action.REASSIGN.value):
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
            _assign(current, assignee, actor, version)
        except DomainError as exc:
            refused.append((current["number"], str(exc)))
            continue
        done.append(current["number"])
    return done, refused


@transactional
def _assign(current: dict, assignee: User, actor: Actor, version: int) -> None:
    """Give one record the assignee and note 转派 on its timeline, together."""
    before = display_values(get_record_type(current["type"], active_only=False),
                            {"assignee": current.get("assignee")}, actor, ["assignee"])["assignee"]
    update_record(current["type"], current["_id"], {"assignee": assignee.pk}, actor, version=version)
    record_event(current["type"], current["_id"], "assign", actor,
                 text=str(_l("转派：%(before)s → %(after)s", before=before or "-", after=str(assignee))))
