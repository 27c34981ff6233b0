"""Exports too large to stream while the person waits (more than ``KEFU_EXPORT_ASYNC_ROWS`` rows, default 20,000).

``start`` stores the request (the query, columns, view, format, who) as an
``ExportJob`` and queues ``jobs.exports.run_export``; the worker writes the
file into GridFS (bucket ``exports``) with progress every 1,000 rows, and the
person finds it in their inbox (a notification with the download link) and on
the 我的导出 page. Only whoever asked may download it.

Nothing of an export is kept in clear: the query (a filter may name a phone number) is stored encrypted with the
data key (``sealed_query``), and the file — with every phone number its owner may see — is stored sealed
(``kefu.core.sealed_files``) under a key of its own, kept encrypted with the data key (``file_key``); a download
decrypts it while streaming.
"""
from __future__ import annotations

import json
from datetime import timedelta

from bson import ObjectId
from flask import current_app
from gridfs import GridFSBucket
from gridfs.errors import NoFile
from mongoengine import BinaryField, DateTimeField, Document, IntField, ListField, ObjectIdField, StringField

from kefu.core import background
from kefu.core.clock import utcnow
from kefu.core.db import delete_files, get_database
from kefu.core.encrypted_stores import EncryptedField, EncryptedFields
from kefu.core.errors import NotFound
from kefu.core.i18n import _l
from kefu.core.sealed_files import SealedReader, new_file_key, seal
from kefu.insight import exports, views
from kefu.notify.notifications import Alert, Outbox
from kefu.org.users import active_user
from kefu.records.actor import user_actor
from kefu.records.query import Condition, RecordQuery
from kefu.records.types import get_record_type

BUCKET = "exports"
KEEP = timedelta(days=7)
QUERY_CONTEXT = "export_job.query"
FILE_KEY_CONTEXT = "export_job.file_key"


class ExportJob(Document):
    """One background export and how far it got."""

    user = ObjectIdField(required=True)
    record_type = StringField(required=True, verbose_name=_l("记录类型"))
    fmt = StringField(required=True, verbose_name=_l("格式"))
    sealed_query = BinaryField()  # the query as JSON, encrypted (QUERY_CONTEXT)
    columns = ListField(StringField())
    view = StringField()
    filename = StringField(verbose_name=_l("文件名"))
    status = StringField(default="queued", verbose_name=_l("状态"))  # queued, running, done, failed
    total = IntField(default=0, verbose_name=_l("总行数"))
    rows_done = IntField(default=0, verbose_name=_l("已导出"))
    file_id = ObjectIdField()
    file_key = BinaryField()  # the key the file is sealed with, as hex, encrypted (FILE_KEY_CONTEXT)
    clear_file_id = ObjectIdField()  # seal_earlier_jobs: a file from before sealing, until it is deleted
    error = StringField()
    created_at = DateTimeField(default=utcnow, verbose_name=_l("时间"))
    finished_at = DateTimeField()

    meta = {"collection": "export_jobs", "ordering": ["-created_at"], "indexes": [("user", "-created_at")]}

    @property
    def percent(self) -> int:
        return 100 if self.status == "done" else int(100 * self.rows_done / self.total) if self.total else 0


ENCRYPTED_STORES = [EncryptedFields(ExportJob._get_collection_name(), (
    EncryptedField("sealed_query", QUERY_CONTEXT), EncryptedField("file_key", FILE_KEY_CONTEXT)))]

STATUS_LABELS = {"queued": _l("排队中"), "running": _l("导出中"), "done": _l("已完成"), "failed": _l("失败")}


def async_threshold() -> int:
    """Exports with more rows than this are built in the background (the app's ``KEFU_EXPORT_ASYNC_ROWS``)."""
    return current_app.config["KEFU_EXPORT_ASYNC_ROWS"]


def query_to_dict(query) -> dict:
    return {"conditions": [[c.field, c.op, c.value] for c in query.conditions], "q": query.q, "sort": query.sort,
            "overdue": query.overdue, "due_soon": query.due_soon,
            "due_within_s": query.due_within.total_seconds() if query.due_within is not None else None}


def query_from_dict(data: dict):
    return RecordQuery(conditions=[Condition(*c) for c in data.get("conditions") or []], q=data.get("q"),
                       sort=data.get("sort"), overdue=bool(data.get("overdue")), due_soon=bool(data.get("due_soon")),
                       due_within=timedelta(seconds=data["due_within_s"]) if data.get("due_within_s") else None)


def _cipher():
    return current_app.extensions["kefu_cipher"]


def seal_query(query) -> bytes:
    """The query as stored: its JSON encrypted with the data key (a filter may name a phone number)."""
    return _cipher().encrypt(json.dumps(query_to_dict(query), ensure_ascii=False, default=str), context=QUERY_CONTEXT)


def open_query(sealed: bytes):
    """The ``RecordQuery`` ``seal_query`` stored."""
    return query_from_dict(json.loads(_cipher().decrypt(sealed, context=QUERY_CONTEXT)))


def start(record_type, query, actor, fmt: str, *, total: int, columns=None, view=None) -> ExportJob:
    """Queue the export; the job is ``failed`` with a reason when the queue cannot be reached."""
    job = ExportJob(user=actor.user_id, record_type=record_type.key, fmt=fmt, sealed_query=seal_query(query),
                    columns=list(columns or []), view=getattr(view, "key", None), total=total).save()
    if not background.queued(background.export_requested, str(job.pk)):
        job.update(set__status="failed", set__error=str(_l("后台任务暂时不可用，请稍后再试或缩小导出范围")))
        job.reload()
    return job


def _store_sealed(filename: str, metadata: dict, chunks) -> tuple[object, bytes]:
    """Write ``chunks`` into the bucket sealed under a new key; return ``(file id, the key encrypted)``."""
    key = new_file_key()
    with GridFSBucket(get_database(), bucket_name=BUCKET).open_upload_stream(filename, metadata=metadata) as upload:
        for segment in seal(chunks, key):
            upload.write(segment)
        file_id = upload._id
    return file_id, _cipher().encrypt(key.hex(), context=FILE_KEY_CONTEXT)


def run(job_id: str) -> ExportJob:
    """Write the export into GridFS (sealed), noting progress; then tell its owner. Idempotent: a finished job is
    left. The export reads with its owner's roles as they are now: an owner disabled (or removed) since asking
    gets no file, the job fails saying why."""
    job = ExportJob.objects(pk=ObjectId(job_id)).first()
    if job is None or job.status == "done":
        return job
    user = active_user(job.user)
    if user is None:
        fail(job_id, str(_l("发起导出的账号已停用或已删除，导出已取消")))
        return job.reload()
    actor = user_actor(user)
    record_type = get_record_type(job.record_type, active_only=False)
    query = open_query(job.sealed_query)
    view = views.resolve(record_type, job.view, actor) if job.view else None
    job.update(set__status="running", set__rows_done=0)

    def progress(rows: int) -> None:
        ExportJob.objects(pk=job.pk).update_one(set__rows_done=rows)

    export = exports.export_records(record_type, query, actor, job.fmt, columns=job.columns or None, view=view,
                                    progress=progress)
    file_id, file_key = _store_sealed(export.filename, {"user": job.user, "export": job.pk,
                                                        "mimetype": export.mimetype}, export.chunks)
    done_rows = export.rows
    job.update(set__status="done", set__file_id=file_id, set__file_key=file_key, set__filename=export.filename,
               set__rows_done=done_rows, set__finished_at=utcnow())
    base = (current_app.config.get("KEFU_BASE_URL") or "").rstrip("/")
    outbox = Outbox(utcnow())
    outbox.add(Alert(key=f"export:{job.pk}", kind="export_ready",
                     subject=str(_l("导出完成：%(name)s", name=export.filename)),
                     body=str(_l("共 %(n)s 行，可在“我的导出”下载（保留 7 天）。", n=done_rows)), recipients=[job.user],
                     url=f"{base}/admin/exports/", webhook=None))
    outbox.flush()
    return job.reload()


def remove_old(now, keep: timedelta = KEEP) -> int:
    """Delete background exports (and their files) older than ``keep``; return how many."""
    old = list(ExportJob.objects(created_at__lt=now - keep).only("id", "file_id"))
    delete_files(BUCKET, [job.file_id for job in old if job.file_id is not None])
    ExportJob.objects(id__in=[job.pk for job in old]).delete()
    return len(old)


def fail(job_id: str, error: str) -> None:
    ExportJob.objects(pk=ObjectId(job_id)).update_one(set__status="failed", set__error=error[:1000],
                                                      set__finished_at=utcnow())


def of_user(user_id, limit: int = 50) -> list[ExportJob]:
    return list(ExportJob.objects(user=user_id).order_by("-created_at").limit(limit))


def get_for(user_id, job_id) -> ExportJob:
    try:
        job = ExportJob.objects(pk=ObjectId(str(job_id)), user=user_id).first()
    except Exception:
        job = None
    if job is None:
        raise NotFound(_l("没有这个导出"))
    return job


def open_file(user_id, job_id):
    """``(job, reader)`` of a finished export of this user: ``reader.read(size)`` gives the file's bytes, decrypted
    while they are read; ``NotFound`` otherwise."""
    job = get_for(user_id, job_id)
    if job.status != "done" or job.file_id is None:
        raise NotFound(_l("导出尚未完成"))
    stored = GridFSBucket(get_database(), bucket_name=BUCKET).open_download_stream(job.file_id)
    return job, SealedReader(stored.read, bytes.fromhex(_cipher().decrypt(job.file_key, context=FILE_KEY_CONTEXT)))


def seal_earlier_jobs() -> int:
    """Encrypt what background exports made before encryption kept in clear: the ``query`` (with its raw
    ``filters_text``, which is dropped) and the finished file, written again sealed. Idempotent and resumable: a
    job is rewritten in one update once its sealed file is stored, naming its clear file (``clear_file_id``) until
    that is deleted, so a stop in between leaves nothing in clear for good; return how many jobs were sealed."""
    collection, bucket = ExportJob._get_collection(), GridFSBucket(get_database(), bucket_name=BUCKET)
    sealed = 0
    for stored in collection.find({"$or": [{"query": {"$exists": True}}, {"filters_text": {"$exists": True}},
                                           {"file_id": {"$ne": None}, "file_key": {"$exists": False}},
                                           {"clear_file_id": {"$exists": True}}]}):
        changes = {}
        if "query" in stored:
            changes["sealed_query"] = seal_query(query_from_dict(stored["query"]))
        old_file = stored.get("file_id") if "file_key" not in stored else stored.get("clear_file_id")
        if old_file is not None and "file_key" not in stored:
            try:
                with bucket.open_download_stream(old_file) as clear:
                    changes["file_id"], changes["file_key"] = _store_sealed(
                        clear.filename, clear.metadata, iter(lambda: clear.read(256 * 1024), b""))
            except NoFile:  # removed already: the job has no file to download any more
                changes.update(file_id=None, status="failed", error=str(_l("导出文件已不存在")))
                old_file = None
            else:
                changes["clear_file_id"] = old_file
        update = {"$unset": {"query": "", "filters_text": ""}, **({"$set": changes} if changes else {})}
        collection.update_one({"_id": stored["_id"]}, update)
        if old_file is not None:
            try:
                bucket.delete(old_file)
            except NoFile:  # deleted before a stop that came before the next update
                pass
            collection.update_one({"_id": stored["_id"]}, {"$unset": {"clear_file_id": ""}})
        sealed += 1
    return sealed


def job_json(job: ExportJob, tz) -> dict:
    return {"id": str(job.pk), "record_type": job.record_type, "format": job.fmt, "status": job.status,
            "total": job.total, "rows_done": job.rows_done, "percent": job.percent, "filename": job.filename,
            "error": job.error, "created_at": job.created_at.astimezone(tz).isoformat(),
            "download_url": f"/api/v1/exports/{job.pk}/download" if job.status == "done" else None}
