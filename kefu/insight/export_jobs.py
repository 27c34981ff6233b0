"""Exports too large to stream while the person waits (more than ``KEFU_EXPORT_ASYNC_ROWS`` rows, default 20,000).

``start`` stores the request (the query, columns, view, format, who) as an
``ExportJob`` and queues ``jobs.exports.run_export``; the worker writes the
file into GridFS (bucket ``exports``) with progress every 1,000 rows, and the
person finds it in their inbox (a notification with the download link) and on
the 我的导出 page. Only whoever asked may download it.
"""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from bson import ObjectId
from flask import current_app
from gridfs import GridFSBucket
from mongoengine import DateTimeField, DictField, Document, IntField, ListField, ObjectIdField, StringField

from kefu.core import background
from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.errors import NotFound
from kefu.core.i18n import _l
from kefu.insight import exports, views
from kefu.notify.notifications import Alert, Outbox
from kefu.org.roles import VIEW_PII
from kefu.org.users import User
from kefu.records.actor import Actor
from kefu.records.query import Condition, RecordQuery
from kefu.records.types import get_record_type

BUCKET = "exports"
KEEP = timedelta(days=7)


class ExportJob(Document):
    """One background export and how far it got."""

    user = ObjectIdField(required=True)
    record_type = StringField(required=True, verbose_name=_l("记录类型"))
    fmt = StringField(required=True, verbose_name=_l("格式"))
    query = DictField()
    columns = ListField(StringField())
    view = StringField()
    filters_text = StringField()
    filename = StringField(verbose_name=_l("文件名"))
    status = StringField(default="queued", verbose_name=_l("状态"))  # queued, running, done, failed
    total = IntField(default=0, verbose_name=_l("总行数"))
    rows_done = IntField(default=0, verbose_name=_l("已导出"))
    file_id = ObjectIdField()
    error = StringField()
    created_at = DateTimeField(default=utcnow, verbose_name=_l("时间"))
    finished_at = DateTimeField()

    meta = {"collection": "export_jobs", "ordering": ["-created_at"], "indexes": [("user", "-created_at")]}

    @property
    def percent(self) -> int:
        return 100 if self.status == "done" else int(100 * self.rows_done / self.total) if self.total else 0


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


def start(record_type, query, actor, fmt: str, *, total: int, columns=None, view=None,
          filters_text: str = "") -> ExportJob:
    """Queue the export; the job is ``failed`` with a reason when the queue cannot be reached."""
    job = ExportJob(user=actor.user_id, record_type=record_type.key, fmt=fmt, query=query_to_dict(query),
                    columns=list(columns or []), view=getattr(view, "key", None), filters_text=filters_text,
                    total=total).save()
    if not background.queued(background.export_requested, str(job.pk)):
        job.update(set__status="failed", set__error=str(_l("后台任务暂时不可用，请稍后再试或缩小导出范围")))
        job.reload()
    return job


def run(job_id: str) -> ExportJob:
    """Write the export into GridFS, noting progress; then tell its owner. Idempotent: a finished job is left."""
    job = ExportJob.objects(pk=ObjectId(job_id)).first()
    if job is None or job.status == "done":
        return job
    user = User.objects(pk=job.user).first()
    actor = Actor(user=user, tz=ZoneInfo(current_app.config["KEFU_TIMEZONE"]),
                  cipher=current_app.extensions["kefu_cipher"], can_view_pii=bool(user and user.can(VIEW_PII)))
    record_type = get_record_type(job.record_type, active_only=False)
    query = query_from_dict(job.query)
    view = views.resolve(record_type, job.view, actor) if job.view else None
    job.update(set__status="running", set__rows_done=0)

    def progress(rows: int) -> None:
        ExportJob.objects(pk=job.pk).update_one(set__rows_done=rows)

    export = exports.export_records(record_type, query, actor, job.fmt, filters_text=job.filters_text,
                                    columns=job.columns or None, view=view, progress=progress)
    bucket = GridFSBucket(get_database(), bucket_name=BUCKET)
    with bucket.open_upload_stream(export.filename, metadata={"user": job.user, "export": job.pk,
                                                              "mimetype": export.mimetype}) as upload:
        for chunk in export.chunks:
            upload.write(chunk)
        file_id = upload._id
    done_rows = export.rows
    job.update(set__status="done", set__file_id=file_id, set__filename=export.filename, set__rows_done=done_rows,
               set__finished_at=utcnow())
    base = (current_app.config.get("KEFU_BASE_URL") or "").rstrip("/")
    outbox = Outbox(utcnow())
    outbox.add(Alert(key=f"export:{job.pk}", kind="export_ready", subject=str(_l("导出完成：%(name)s", name=export.filename)),
                     body=str(_l("共 %(n)s 行，可在“我的导出”下载（保留 7 天）。", n=done_rows)), recipients=[job.user],
                     url=f"{base}/admin/exports/", webhook=None))
    outbox.flush()
    return job.reload()


def remove_old(now, keep: timedelta = KEEP) -> int:
    """Delete background exports (and their files) older than ``keep``; return how many."""
    bucket = GridFSBucket(get_database(), bucket_name=BUCKET)
    removed = 0
    for job in ExportJob.objects(created_at__lt=now - keep):
        if job.file_id is not None:
            try:
                bucket.delete(job.file_id)
            except Exception:  # the file is gone already: the job record still goes
                pass
        job.delete()
        removed += 1
    return removed


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
    """``(job, GridOut)`` of a finished export of this user; ``NotFound`` otherwise."""
    job = get_for(user_id, job_id)
    if job.status != "done" or job.file_id is None:
        raise NotFound(_l("导出尚未完成"))
    return job, GridFSBucket(get_database(), bucket_name=BUCKET).open_download_stream(job.file_id)


def job_json(job: ExportJob, tz) -> dict:
    return {"id": str(job.pk), "record_type": job.record_type, "format": job.fmt, "status": job.status,
            "total": job.total, "rows_done": job.rows_done, "percent": job.percent, "filename": job.filename,
            "error": job.error, "created_at": job.created_at.astimezone(tz).isoformat(),
            "download_url": f"/api/v1/exports/{job.pk}/download" if job.status == "done" else None}
