"""Import from Excel: a spreadsheet (XLSX or CSV) into the records of a type, the customer archive, the units or
the users — checked row by row before anything is written, then written in the background through each area's own
write path (``kefu.insight.imports_targets``, ``kefu.insight.imports_org``).

An import is an ``ImportJob`` that moves through its states:

- ``mapping``: the file is uploaded (stored sealed in GridFS, bucket ``imports``, under a key of its own kept
  encrypted with the data key, as exports are: the web tier keeps nothing between requests); its columns are
  matched to fields by their headers (label, English label or key), which the person may change;
- ``checking`` → ``checked``: the dry run (``jobs.imports.run_import``) checks every row as the write would and
  notes each problem at its cell (row as the spreadsheet numbers it, the column's header, a Chinese message),
  writing nothing else;
- ``importing`` → ``done``: the import writes the rows without problems (mode ``valid``), or — mode ``all`` — checks
  every row again first and writes nothing when one has a problem.

Both phases are idempotent: a row carries an identity (``imports_targets``), and a row whose identity was written
before — by this import, an earlier one, or a job retried after a crash — is skipped, so the same file imported
twice writes each row once. Problems are kept in ``import_problems`` with sensitive cells masked; the error report
is a CSV of them. Only who uploaded an import sees it.
"""
from __future__ import annotations

import csv
import io
from datetime import timedelta

from bson import ObjectId
from flask import current_app
from gridfs import GridFSBucket
from mongoengine import BinaryField, DateTimeField, Document, IntField, ListField, ObjectIdField, StringField
from mongoengine.fields import DictField

from kefu.core.clock import utcnow
from kefu.core.db import delete_files, get_database
from kefu.core.encrypted_stores import EncryptedField, EncryptedFields
from kefu.core.errors import NotFound, PermissionDenied, ValidationFailed
from kefu.core.i18n import _l, in_language, in_user_language
from kefu.core.sealed_files import SealedReader, new_file_key, seal
from kefu.insight import imports_org
from kefu.insight.export_notes import DIGIT_RUN, mask_digits
from kefu.insight.imports_run import process
from kefu.insight.imports_sheet import column_letter, format_of, header_key, read_sheet
from kefu.insight.imports_targets import CustomerTarget, record_target
from kefu.org.users import active_user
from kefu.records.actor import Actor, user_actor
from kefu.records.types import type_summaries

BUCKET = "imports"
KEEP = timedelta(days=7)  # an import, its file and its problems are removed after this (they hold personal data)
PROBLEMS = "import_problems"
FILE_KEY_CONTEXT = "import_job.file_key"
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 50_000
MODES = {"valid": _l("只导入没有问题的行"), "all": _l("全部或全不：有一行有问题就不导入任何数据")}
STATUS_LABELS = {"mapping": _l("待确认列"), "checking": _l("检查中"), "checked": _l("已检查"),
                 "importing": _l("导入中"), "done": _l("已完成"), "failed": _l("失败")}
RUNNING = ("checking", "importing")


class ImportJob(Document):
    """One import: its file, how its columns map to fields, and how far it got."""

    user = ObjectIdField(required=True)
    target = StringField(required=True)  # records:<type key>, customers, units, users
    target_name = StringField(verbose_name=_l("导入到"))
    filename = StringField(verbose_name=_l("文件名"))
    fmt = StringField(required=True)
    file_id = ObjectIdField()
    file_key = BinaryField()  # the key the file is sealed with, as hex, encrypted (FILE_KEY_CONTEXT)
    headers = ListField(StringField())
    mapping = DictField()  # column index (as text) → field key; a column left out is not imported
    mode = StringField(default="valid")
    status = StringField(default="mapping", verbose_name=_l("状态"))
    total = IntField(default=0, verbose_name=_l("总行数"))
    rows_done = IntField(default=0)
    valid = IntField(default=0)
    invalid = IntField(default=0)
    existing = IntField(default=0)
    written = IntField(default=0)
    error = StringField()
    created_at = DateTimeField(default=utcnow, verbose_name=_l("时间"))
    finished_at = DateTimeField()

    meta = {"collection": "import_jobs", "ordering": ["-created_at"], "indexes": [("user", "-created_at")]}

    @property
    def percent(self) -> int:
        if self.status in ("checked", "done"):
            return 100
        return int(100 * self.rows_done / self.total) if self.total else 0


ENCRYPTED_STORES = [EncryptedFields(ImportJob._get_collection_name(), (EncryptedField("file_key", FILE_KEY_CONTEXT),))]


def _cipher():
    return current_app.extensions["kefu_cipher"]


# -- targets --------------------------------------------------------------------------------------------------

def target_of(key: str):
    """The target called ``key`` (``NotFound`` for none)."""
    if key.startswith("records:"):
        return record_target(key.partition(":")[2])
    found = {"customers": CustomerTarget, **imports_org.TARGETS}.get(key)
    if found is None:
        raise NotFound(_l("没有这个导入对象"))
    return found()


def targets_for(actor: Actor) -> list[tuple[str, str]]:
    """``(key, name)`` of what ``actor`` may import into: the record types they may create records of, in menu
    order, then the customer archive, units and users as their capabilities allow."""
    found = [(f"records:{s['key']}", in_user_language(s["name"], s["name_en"])) for s in type_summaries()
             if actor.access.allows(s["key"], "create")]
    for target in (CustomerTarget(), *(kind() for kind in imports_org.TARGETS.values())):
        if target.allowed(actor.access):
            found.append((target.key, str(target.name)))
    return found


def _permitted(actor: Actor, key: str):
    target = target_of(key)
    if not target.allowed(actor.access):
        raise PermissionDenied(_l("您的角色不能向“%(name)s”导入数据", name=target.name))
    return target


# -- upload and mapping ---------------------------------------------------------------------------------------

def auto_mapping(headers: list[str], columns) -> dict:
    """Column index (as text) → field key for each header naming a field (its label, English label or key, compared
    as ``header_key`` does); a field is taken by its first column only."""
    names = {}
    for column in columns:
        for name in column.names:
            names.setdefault(header_key(name), column.key)
    mapping, taken = {}, set()
    for index, header in enumerate(headers):
        key = names.get(header_key(header))
        if key is not None and key not in taken:
            mapping[str(index)] = key
            taken.add(key)
    return mapping


def upload(actor: Actor, target_key: str, filename: str, data: bytes) -> ImportJob:
    """Store an uploaded file for an import into ``target_key`` and map its columns; ``ValidationFailed`` at
    ``file`` for a file that is too large, unreadable or without rows, ``PermissionDenied`` when the roles do not
    allow writing the target."""
    target = _permitted(actor, target_key)
    fmt = format_of(filename)
    if len(data) > MAX_FILE_BYTES:
        raise _file_problem(_l("文件超过 %(n)s MB，请分批导入", n=MAX_FILE_BYTES // (1024 * 1024)))
    headers, rows = read_sheet(data, fmt)
    total = sum(1 for _row in rows)
    if total == 0:
        raise _file_problem(_l("文件除表头外没有数据行"))
    if total > MAX_ROWS:
        raise _file_problem(_l("一次最多导入 %(n)s 行，文件有 %(count)s 行，请分批导入", n=MAX_ROWS, count=total))
    key = new_file_key()
    with GridFSBucket(get_database(), bucket_name=BUCKET).open_upload_stream(
            filename, metadata={"user": actor.user_id}) as stream:
        for segment in seal([data], key):
            stream.write(segment)
        file_id = stream._id
    return ImportJob(user=actor.user_id, target=target_key, target_name=str(target.name), filename=filename,
                     fmt=fmt, file_id=file_id, file_key=_cipher().encrypt(key.hex(), context=FILE_KEY_CONTEXT),
                     headers=headers, mapping=auto_mapping(headers, target.columns()), total=total).save()


def _file_problem(message) -> ValidationFailed:
    return ValidationFailed(message, {"file": message})


def file_bytes(job: ImportJob) -> bytes:
    """The uploaded file, decrypted."""
    stored = GridFSBucket(get_database(), bucket_name=BUCKET).open_download_stream(job.file_id)
    return SealedReader(stored.read, bytes.fromhex(_cipher().decrypt(job.file_key, context=FILE_KEY_CONTEXT))).read()


def check(job: ImportJob, actor: Actor, mapping: dict, mode: str) -> ImportJob:
    """Set the columns' fields (column index as text → field key, "" for a column not imported) and the mode, and
    make the import wait for its dry run (``checking``). ``ValidationFailed``: a field chosen twice (at each column
    ``col-<index>``), a field the file must fill left without a column, an unknown field or mode."""
    target = _permitted(actor, job.target)
    if job.status in RUNNING:
        raise ValidationFailed(_l("导入正在进行，请等待完成"))
    columns = {column.key: column for column in target.columns()}
    chosen, errors = {}, {}
    for index, key in mapping.items():
        if not key:
            continue
        if key not in columns or not (str(index).isascii() and str(index).isdecimal()) or int(index) >= len(job.headers):
            errors[f"col-{index}"] = _l("没有这个字段")
        elif key in chosen.values():
            errors[f"col-{index}"] = _l("“%(label)s”已由另一列导入", label=columns[key].label)
        else:
            chosen[str(index)] = key
    missing = [c.label for c in columns.values() if c.needed and c.key not in chosen.values()]
    if missing:
        errors["mapping"] = _l("必填字段没有对应的列：%(labels)s", labels="、".join(missing))
    if mode not in MODES:
        errors["mode"] = _l("请选择导入方式")
    if errors:
        raise ValidationFailed("；".join(str(m) for m in errors.values()), errors)
    job.update(set__mapping=chosen, set__mode=mode, set__status="checking", set__rows_done=0, unset__error=True,
               set__valid=0, set__invalid=0, set__existing=0, set__written=0)
    return job.reload()


def start_import(job: ImportJob, actor: Actor) -> ImportJob:
    """Have a checked import write its rows (``importing``); ``ValidationFailed`` before its dry run, or in mode
    ``all`` when the dry run found problems."""
    _permitted(actor, job.target)
    if job.status != "checked":
        raise ValidationFailed(_l("请先检查数据（试导入），再导入"))
    if job.mode == "all" and job.invalid:
        raise ValidationFailed(_l("有 %(n)s 行有问题：按“全部或全不”不会导入任何数据，请修改文件后重新上传",
                                  n=job.invalid))
    job.update(set__status="importing", set__rows_done=0, unset__error=True)
    return job.reload()


# -- the background phases ------------------------------------------------------------------------------------

def run(import_id: str) -> ImportJob | None:
    """Do what the import waits for: its dry run (``checking``) or its writes (``importing``); anything else is
    left (a repeated or late job changes nothing). It acts with its owner's roles as they are now."""
    job = ImportJob.objects(pk=ObjectId(import_id)).first()
    if job is None or job.status not in RUNNING:
        return job
    user = active_user(job.user)
    if user is None:
        fail(import_id, str(_l("发起导入的账号已停用或已删除，导入已取消")))
        return job.reload()
    with in_language(user.locale):
        return _run_phase(job, user_actor(user))


def _run_phase(job: ImportJob, actor: Actor) -> ImportJob:
    """The phase ``job`` waits for, done as ``actor`` (in their language: the problems are stored as text)."""
    import_id = str(job.pk)
    try:
        target = _permitted(actor, job.target)
    except (PermissionDenied, NotFound) as exc:
        fail(import_id, str(exc))
        return job.reload()
    if job.status == "checking":
        _phase(job, target, actor, write=False)
        job.update(set__status="checked", set__finished_at=utcnow())
        return job.reload()
    if job.mode == "all":
        counts = _phase(job, target, actor, write=False)
        if counts["invalid"]:
            fail(import_id, str(_l("有 %(n)s 行有问题：按“全部或全不”未导入任何数据", n=counts["invalid"])))
            return job.reload()
    _phase(job, target, actor, write=True)
    job.update(set__status="done", set__finished_at=utcnow())
    return job.reload()


def _phase(job: ImportJob, target, actor: Actor, *, write: bool) -> dict:
    """One pass over the file: checks (and with ``write`` writes) each row, replaces the import's problems and
    counts; returns the counts."""
    headers, rows = read_sheet(file_bytes(job), job.fmt)
    mapping = {int(index): key for index, key in job.mapping.items()}
    columns = {column.key: column for column in target.columns()}
    problems = get_database()[PROBLEMS]
    problems.delete_many({"import": job.pk})
    job.update(set__rows_done=0)

    def progress(done: int) -> None:
        ImportJob.objects(pk=job.pk).update_one(set__rows_done=done)

    def note(row, field_key: str, message: str, raw) -> None:
        index = next((i for i, key in mapping.items() if key == field_key), None)
        column = columns.get(field_key)
        label = headers[index] if index is not None else (column.label if column else "")
        value = "" if raw is None else _shown(raw, column is not None and column.sensitive)
        problems.insert_one({"import": job.pk, "row": row, "column": column_letter(index) if index is not None
                             else "", "label": label, "message": _masked(message, column), "value": value})

    counts = process(target, actor, rows, mapping, write=write, job_key=str(job.pk), note=note, progress=progress)
    job.update(set__valid=counts["valid"], set__invalid=counts["invalid"], set__existing=counts["existing"],
               set__written=counts["written"], set__rows_done=job.total)
    return counts


def _shown(raw, sensitive: bool) -> str:
    text = raw.strftime("%Y-%m-%d %H:%M") if hasattr(raw, "strftime") else str(raw)
    if not sensitive:
        return text[:200]
    return mask_digits(text) if DIGIT_RUN.search(text) else text[:1] + "***"


def _masked(message: str, column) -> str:
    return mask_digits(str(message)) if column is not None and column.sensitive else str(message)


def remove_old(now, keep: timedelta = KEEP) -> int:
    """Delete imports older than ``keep`` with their files and problem lists; return how many."""
    old = list(ImportJob.objects(created_at__lt=now - keep).only("id", "file_id"))
    delete_files(BUCKET, [job.file_id for job in old if job.file_id is not None])
    get_database()[PROBLEMS].delete_many({"import": {"$in": [job.pk for job in old]}})
    ImportJob.objects(id__in=[job.pk for job in old]).delete()
    return len(old)


def fail(import_id: str, error: str) -> None:
    ImportJob.objects(pk=ObjectId(import_id)).update_one(set__status="failed", set__error=error[:1000],
                                                         set__finished_at=utcnow())


# -- reading ------------------------------------------------------------------------------------------------

def of_user(user_id, limit: int = 50) -> list[ImportJob]:
    return list(ImportJob.objects(user=user_id).order_by("-created_at").limit(limit))


def get_for(user_id, import_id) -> ImportJob:
    """The import ``import_id`` of this user; ``NotFound`` for any other."""
    try:
        job = ImportJob.objects(pk=ObjectId(str(import_id)), user=user_id).first()
    except Exception:
        job = None
    if job is None:
        raise NotFound(_l("没有这个导入"))
    return job


def problems_of(job: ImportJob, limit: int = 0) -> list[dict]:
    """The import's problems by row and column, each with ``text``: 第 12 行，联系电话：…"""
    found = get_database()[PROBLEMS].find({"import": job.pk}, {"_id": 0, "import": 0}).sort([("row", 1), ("_id", 1)])
    return [{**p, "text": describe(p)} for p in (found.limit(limit) if limit else found)]


def describe(problem: dict) -> str:
    if problem["label"]:
        return str(_l("第 %(row)s 行，%(label)s：%(message)s", row=problem["row"], label=problem["label"],
                      message=problem["message"]))
    return str(_l("第 %(row)s 行：%(message)s", row=problem["row"], message=problem["message"]))


def error_report(job: ImportJob) -> bytes:
    """The problems as a CSV Excel opens (UTF-8 with BOM): 行, 列, 表头, 值, 问题."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([str(_l("行")), str(_l("列")), str(_l("表头")), str(_l("值")), str(_l("问题"))])
    for problem in problems_of(job):
        writer.writerow([problem["row"], problem["column"], _cell(problem["label"]), _cell(problem["value"]),
                         _cell(problem["message"])])
    return out.getvalue().encode("utf-8-sig")


def _cell(text: str) -> str:
    """Text a spreadsheet would run as a formula, quoted."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def job_json(job: ImportJob) -> dict:
    return {"id": str(job.pk), "status": job.status, "status_label": str(STATUS_LABELS.get(job.status, "")),
            "total": job.total, "rows_done": job.rows_done, "percent": job.percent, "valid": job.valid,
            "invalid": job.invalid, "existing": job.existing, "written": job.written, "error": job.error}

