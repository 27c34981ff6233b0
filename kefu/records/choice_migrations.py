"""Moving stored values to a choice's new name after an explicit rename (``kefu.records.choice_changes``), in the
background, with progress.

``start`` stores a ``ChoiceMigration`` (type, field, the renames, who asked) and announces it
(``kefu.core.background.choices_renamed``, once the definition's save has committed: ``jobs.schema.migrate_choices``
runs it in a worker); when no queue can be reached it runs at once, so a rename never waits for a queue that is
down. ``run`` is idempotent and resumable: it looks only for records still holding an old name, rewrites them in
batches — each batch one transaction with the records' audit entries (one per record: its history shows 原名 →
新名, by whoever renamed) — and notes its progress after every batch (``done``, and ``last_id``, where a later job
resumes). Each old name goes to the name it has now (renamed again meanwhile: to the last one). A record saved
meanwhile (another version) is left to the next pass, so a concurrent edit is never overwritten; a migration still
meeting such records after :data:`MAX_PASSES` passes fails (``MigrationStalled``, so the job fails too), and a
failed or lost one is queued again by the scheduler's tick (``unfinished``), at most :data:`MAX_ATTEMPTS` times in
all. Sensitive fields are decrypted, renamed and encrypted again (with their blind index); the search grams of a
searched field follow.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from bson import ObjectId
from mongoengine import DateTimeField, Document, IntField, ListField, ObjectIdField, Q, StringField

from kefu.core import background
from kefu.core.clock import utcnow
from kefu.core.db import after_commit, get_database, in_transaction
from kefu.core.errors import DomainError
from kefu.core.i18n import _l
from kefu.org.users import User
from kefu.records.actor import system_actor
from kefu.records.fields import get_field_type
from kefu.records.search import search_index
from kefu.records.store import RECORDS
from kefu.records.timeline import audit
from kefu.records.types import RecordType, get_record_type
from kefu.records.values import display_values, read_stored, read_values, storage_of

log = logging.getLogger(__name__)

BATCH = 200
# A migration queued this long ago and not started, or running without progress this long (its job was lost with
# Redis, its worker killed), is queued again by the scheduler's tick (``jobs.schema.queue_unfinished``).
STALE_AFTER = timedelta(minutes=5)
MAX_PASSES = 5  # a record saved during a pass is done in the next; beyond this the job fails and is retried
MAX_ATTEMPTS = 5  # runs of one migration in all (the first included); then it stays failed
STATUS_LABELS = {"queued": _l("排队中"), "running": _l("进行中"), "done": _l("已完成"), "failed": _l("失败")}


class ChoiceMigration(Document):
    """One rename of a choice field's options and how far moving the stored values got."""

    record_type = StringField(required=True, verbose_name=_l("记录类型"))
    field = StringField(required=True, verbose_name=_l("字段"))
    label = StringField(verbose_name=_l("字段名称"))
    renames = ListField(ListField(StringField()), verbose_name=_l("改名"))  # [[old, new], …]
    status = StringField(default="queued", verbose_name=_l("状态"))  # queued, running, done, failed
    total = IntField(default=0, verbose_name=_l("记录数"))
    done = IntField(default=0, verbose_name=_l("已更新"))
    error = StringField()
    attempts = IntField(default=0)  # runs started
    last_id = ObjectIdField()  # the last record of the current pass looked at: a later run resumes after it
    created_at = DateTimeField(default=utcnow)
    created_by = StringField(verbose_name=_l("操作人"))  # the username that saved the definition
    finished_at = DateTimeField()
    reported_at = DateTimeField()  # the last progress of the job running it

    meta = {"collection": "choice_migrations", "indexes": [("record_type", "-created_at")]}

    def summary(self) -> str:
        """"阶段：交付后 → 交付以后，120/300 条（进行中）"."""
        names = "、".join(f"{old} → {new}" for old, new in self.renames)
        return str(_l("%(label)s：%(names)s，%(done)s/%(total)s 条（%(status)s）", label=self.label or self.field,
                      names=names, done=self.done, total=self.total,
                      status=STATUS_LABELS.get(self.status, self.status)))


def _query(record_type: RecordType, definition, olds: list[str]) -> dict:
    """The records that may still hold an old name (every one with a value, for an encrypted field)."""
    if definition.sensitive:
        return {"type": record_type.key, f"pii.{definition.key}": {"$ne": None}}
    return {"type": record_type.key, f"data.{definition.key}": {"$in": olds}}


def start(record_type: RecordType, field_key: str, renames: dict[str, str], *, by=None) -> ChoiceMigration:
    """Store the migration of ``renames`` (old → new) in ``field_key`` and have it run in the background (at once
    when no worker can be reached); return it."""
    definition = record_type.field(field_key)
    migration = ChoiceMigration(
        record_type=record_type.key, field=field_key, label=definition.label,
        renames=[[old, new] for old, new in renames.items()], created_by=by,
        total=get_database()[RECORDS].count_documents(_query(record_type, definition, list(renames))))
    migration.save()
    after_commit(lambda: _launch(str(migration.pk)))
    return migration


class MigrationStalled(DomainError):
    """Records kept being saved during every pass of a migration: it is left failed, to be run again."""

    code = "migration_stalled"


def _launch(migration_id: str) -> None:
    """Queue the migration's job; without a queue, run it now — after the definition's save, which stands
    whatever happens here: a failure is noted on the migration (``fail``) and the scheduler's tick retries it."""
    if background.queued(background.choices_renamed, migration_id):
        return
    try:
        run(migration_id)
    except Exception as exc:
        log.exception("choice migration %s failed", migration_id)
        fail(migration_id, f"{type(exc).__name__}: {exc}")


def _renamed(field_type, value, renames: dict[str, str], definition):
    """``value`` with the old names replaced (a list keeps the order of the choices, without repeats)."""
    if isinstance(value, list):
        moved = {renames.get(item, item) for item in value}
        order = [*definition.choices, *(item for item in value if item not in definition.choices)]
        return [item for item in dict.fromkeys(renames.get(item, item) for item in order) if item in moved]
    return renames.get(value, value)


def _batch(record_type: RecordType, definition, documents: list[dict], renames: dict[str, str], actor,
           migration_id: str) -> tuple[int, int]:
    """Rename in ``documents`` (one transaction with their audit entries); return how many were rewritten and how
    many were saved meanwhile (left for the next pass)."""
    field_type = get_field_type(definition.type)
    database, changed, raced = get_database(), 0, 0
    for document in documents:
        value = read_stored(record_type, definition, field_type, document.get("data") or {},
                            document.get("pii") or {}, actor)
        new_value = None if value is None else _renamed(field_type, value, renames, definition)
        if new_value == value:
            continue
        update = storage_of(record_type, {}, {definition.key: new_value}, actor)
        if definition.search:
            values = {**read_values(record_type, document, actor), definition.key: new_value}
            update.update(search_index(record_type, document["number"], values, actor.tz))
        result = database[RECORDS].find_one_and_update(
            {"_id": document["_id"], "version": document["version"]},
            {"$set": {**update, "updated_at": utcnow()}, "$inc": {"version": 1}})
        if result is None:
            raced += 1  # saved meanwhile: the next pass reads it again
            continue
        before, after = (display_values(record_type, {definition.key: v}, actor, [definition.key])[definition.key]
                         for v in (value, new_value))
        audit("update", record_type, document, actor,
              [{"field": definition.key, "label": definition.label, "before": before, "after": after}],
              extra={"migration": migration_id})
        changed += 1
    return changed, raced


def _final_names(migration: ChoiceMigration, definition) -> dict[str, str]:
    """The migration's renames (old → new), each new name followed through the field's renames since (a name
    renamed again while this migration was unfinished): old → the name it has now."""
    renamed = {str(old): str(new) for old, new in definition.renamed_choices}
    final = {}
    for old, new in migration.renames:
        seen = {old}
        while new in renamed and new not in seen:
            seen.add(new)
            new = renamed[new]
        final[old] = new
    return final


def run(migration_id: str, batch: int = BATCH) -> ChoiceMigration | None:
    """Move the records of the migration to the new names (idempotent: a finished one is left as it is); return
    it, or None when there is no such migration. Resumes after the stored ``last_id`` (a run that stopped); raises
    ``MigrationStalled``, the migration left failed, when records kept being saved for :data:`MAX_PASSES`
    passes."""
    migration = ChoiceMigration.objects(pk=ObjectId(migration_id)).first()
    if migration is None or migration.status == "done":
        return migration
    record_type = get_record_type(migration.record_type, active_only=False)
    definition = record_type.field(migration.field)
    renames = _final_names(migration, definition)
    creator = User.objects(username=migration.created_by).first() if migration.created_by else None
    actor = system_actor(creator)
    migration.update(set__status="running", set__error=None, set__reported_at=utcnow(), inc__attempts=1)
    done, resume_after = migration.done, migration.last_id
    projection = {"number": 1, "version": 1, "data": 1, "pii": 1}
    for _pass in range(MAX_PASSES):
        raced, last_id = 0, resume_after
        while True:
            query = _query(record_type, definition, list(renames))
            if last_id is not None:
                query["_id"] = {"$gt": last_id}
            documents = list(get_database()[RECORDS].find(query, projection, sort=[("_id", 1)], limit=batch))
            if not documents:
                break
            last_id = documents[-1]["_id"]
            changed, raced_now = in_transaction(lambda documents=documents: _batch(
                record_type, definition, documents, renames, actor, migration_id))
            raced += raced_now
            done += changed
            migration.update(set__done=done, set__last_id=last_id, set__reported_at=utcnow())
        migration.update(unset__last_id=True)
        if not raced and resume_after is None:  # a whole pass met no record saved meanwhile
            migration.update(set__status="done", set__finished_at=utcnow(), set__total=max(migration.total, done))
            return migration.reload()
        resume_after = None  # a pass that resumed half-way saw only part of the records: the next one sees all
    stalled = MigrationStalled(_l("记录一直在被修改，请稍后重新运行"))
    migration.update(set__status="failed", set__error=str(stalled), set__reported_at=utcnow())
    raise stalled


def unfinished(now=None) -> list[str]:
    """The ids of the migrations whose job should be queued again, :data:`STALE_AFTER` on: queued but never
    started, running without progress, or failed — each at most :data:`MAX_ATTEMPTS` times in all (``run``
    resumes them: the records still holding an old name are found again)."""
    stale = (now or utcnow()) - STALE_AFTER
    waiting = Q(status="queued", created_at__lt=stale) | (
        Q(status__in=["running", "failed"], reported_at__lt=stale) & Q(attempts__lt=MAX_ATTEMPTS))
    return [str(row["_id"]) for row in ChoiceMigration.objects(waiting).only("id").as_pymongo()]


def fail(migration_id: str, error: str) -> None:
    """Note that the job of the migration failed (``error`` as the worker saw it); ``unfinished`` retries it."""
    ChoiceMigration.objects(pk=ObjectId(migration_id)).update_one(
        set__status="failed", set__error=error[:1000], set__reported_at=utcnow())


def latest_by_type(type_keys, limit: int = 3) -> dict[str, list[ChoiceMigration]]:
    """The latest migrations (newest first, at most ``limit``) of each of these types, in one query that answers no
    older ones (what the list page receives does not grow with the history of renames)."""
    pipeline = [{"$match": {"record_type": {"$in": list(type_keys)}}},
                {"$group": {"_id": "$record_type",
                            "latest": {"$topN": {"n": limit, "sortBy": {"created_at": -1}, "output": "$$ROOT"}}}}]
    return {group["_id"]: [ChoiceMigration._from_son(document) for document in group["latest"]]
            for group in ChoiceMigration._get_collection().aggregate(pipeline)}
