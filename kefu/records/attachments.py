"""Uploaded files (photos, videos, PDFs, Office documents, call recordings) kept in GridFS.

The web tier keeps no local files: every upload is streamed into the GridFS
bucket ``attachments`` of the app's database. What a file *is* is decided from
its bytes by ``kefu.records.file_types``; this module stores, finds, links and
deletes the files and names the reasons an upload is refused.

A stored file starts without a record (``record_id`` is ``None``); the record
engine calls :func:`attach_to_record` once the record is saved. A save that fails
after its files were stored removes them (:func:`removes_uploads_on_failure`).
A file is stored under a name whose extension says what its bytes are
(``evil.html`` that is a PNG is kept as ``evil.png``).
"""
from __future__ import annotations

import functools
import inspect
import posixpath
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import gridfs
from bson import ObjectId
from bson.errors import InvalidId
from gridfs.errors import NoFile
from pymongo.errors import PyMongoError

from kefu.core.clock import utcnow
from kefu.core.db import database_outside_transaction, get_database
from kefu.core.errors import Conflict, NotFound, ValidationFailed
from kefu.core.i18n import _l
from kefu.records.file_types import (
    SNIFF_BYTES, AttachmentKind, allowed_kinds_text, container_content_type, extensions_for, sniff,
)

BUCKET_NAME = "attachments"
COPY_CHUNK_BYTES = 1024 * 1024
MAX_FILENAME_LENGTH = 120
DEFAULT_FILENAME = "附件"


class UploadRefused(ValidationFailed):
    """An upload was refused (empty, too large, or a type that is not allowed)."""

    code = "upload_refused"


@dataclass(frozen=True)
class AttachmentInfo:
    """One stored file, as the rest of the product sees it."""

    id: str
    filename: str
    content_type: str
    size: int
    kind: AttachmentKind
    uploaded_by: str | None = None
    uploaded_at: datetime | None = None
    record_type: str | None = None
    record_id: str | None = None


# --- names, sizes, messages ---------------------------------------------------------

_UNSAFE_FILENAME_CHARS = re.compile(r'[<>:"/\\|?*]')


def sanitize_filename(name) -> str:
    """A file name safe to store and to offer for download; Chinese characters are kept.

    Directory parts (``../``, ``C:\\``) are dropped, control and invisible
    formatting characters (such as the right-to-left override used to disguise
    ``.exe``) removed, characters Windows forbids replaced by "_", blanks
    collapsed, and the result cut to 120 characters keeping the extension.
    """
    text = unicodedata.normalize("NFC", str(name or ""))
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(char for char in text if unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"))
    text = _UNSAFE_FILENAME_CHARS.sub("_", text)
    text = re.sub(r"\s+", " ", text).strip(" .")
    if not text:
        return DEFAULT_FILENAME
    if len(text) > MAX_FILENAME_LENGTH:
        stem, extension = posixpath.splitext(text)
        if 1 < len(extension) <= 16:
            text = stem[:MAX_FILENAME_LENGTH - len(extension)].rstrip(" .") + extension
        else:
            text = text[:MAX_FILENAME_LENGTH].rstrip(" .")
    return text


def named_as(filename: str, content_type: str) -> str:
    """``filename`` (sanitised) with an extension of ``content_type``: kept when it is one already (``.JPEG`` for a
    JPEG), else the type's usual one replaces it (``evil.html`` → ``evil.png``) or is added."""
    extensions = extensions_for(content_type)
    stem, extension = posixpath.splitext(filename)
    if extension.lower() in extensions:
        return filename
    stem = (stem if 1 < len(extension) <= 16 else filename).rstrip(" .") or DEFAULT_FILENAME
    return stem[:MAX_FILENAME_LENGTH - len(extensions[0])].rstrip(" .") + extensions[0]


def format_size(size: int) -> str:
    """A byte count for a person: ``20 MB``, ``512 KB``, ``900 B``."""
    for unit, factor in (("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
        if size >= factor:
            return f"{round(size / factor, 1):g} {unit}"
    return f"{size} B"


def _refuse_type(filename: str) -> UploadRefused:
    message = _l("文件“%(name)s”的类型不允许上传；允许：%(allowed)s", name=filename, allowed=allowed_kinds_text())
    return UploadRefused(message, {"file": message})


def _refuse_size(filename: str, max_bytes: int) -> UploadRefused:
    message = _l("文件“%(name)s”超过 %(limit)s 的上限", name=filename, limit=format_size(max_bytes))
    return UploadRefused(message, {"file": message})


def _refuse_empty() -> UploadRefused:
    message = _l("文件为空")
    return UploadRefused(message, {"file": message})


# --- storage --------------------------------------------------------------------------


def _bucket() -> gridfs.GridFSBucket:
    # Files are streamed in before the save that links them and commit on their own: a save that fails removes them.
    return gridfs.GridFSBucket(database_outside_transaction(), bucket_name=BUCKET_NAME)


def _files():
    return get_database()[f"{BUCKET_NAME}.files"]


def _identity(value):
    """What is stored for a user or record reference: a document's primary key, else the value."""
    if value is None:
        return None
    return getattr(value, "pk", value)


def _object_id(attachment_id) -> ObjectId:
    if isinstance(attachment_id, ObjectId):
        return attachment_id
    try:
        return ObjectId(str(attachment_id))
    except (InvalidId, TypeError):
        raise NotFound(_l("附件“%(id)s”不存在", id=attachment_id)) from None


def _object_ids(ids) -> list[ObjectId]:
    if isinstance(ids, (str, ObjectId)):
        ids = [ids]
    return list(dict.fromkeys(_object_id(attachment_id) for attachment_id in ids))


def _read_up_to(stream, size: int) -> bytes:
    """Up to ``size`` bytes; fewer only at the end of the stream."""
    parts, remaining = [], size
    while remaining > 0:
        data = stream.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


def _info(document: dict) -> AttachmentInfo:
    metadata = document.get("metadata") or {}
    uploaded_by, record_id = metadata.get("uploaded_by"), metadata.get("record_id")
    return AttachmentInfo(
        id=str(document["_id"]),
        filename=document["filename"],
        content_type=metadata.get("content_type", "application/octet-stream"),
        size=document["length"],
        kind=AttachmentKind(metadata["kind"]),
        uploaded_by=None if uploaded_by is None else str(uploaded_by),
        uploaded_at=metadata.get("uploaded_at"),
        record_type=metadata.get("record_type"),
        record_id=None if record_id is None else str(record_id),
    )


def store_upload(file_storage, *, max_bytes: int, uploaded_by=None, record_type: str | None = None) -> AttachmentInfo:
    """Stream an uploaded file into GridFS after checking what it really is; return what was stored.

    ``file_storage`` is a ``werkzeug.datastructures.FileStorage`` (or anything
    with ``filename`` and ``stream``). Only the first 8 KB are held in memory to
    sniff the type; the rest is copied through in 1 MB pieces and reading
    stops as soon as ``max_bytes`` is passed. Raises :class:`UploadRefused`
    ("文件为空", "文件“x.mp4”超过 20 MB 的上限", "文件“a.exe”的类型不允许上传；
    允许：图片、视频、PDF、Office 文档、录音"); nothing is left in GridFS then.
    """
    if not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError("max_bytes must be a positive number of bytes")
    filename = sanitize_filename(getattr(file_storage, "filename", None))
    stream = getattr(file_storage, "stream", file_storage)
    try:
        if stream.seekable():
            stream.seek(0)
    except (AttributeError, OSError):
        pass

    head = _read_up_to(stream, SNIFF_BYTES)
    if not head:
        raise _refuse_empty()
    if len(head) > max_bytes:
        raise _refuse_size(filename, max_bytes)
    sniffed = sniff(head)
    if sniffed is None:
        raise _refuse_type(filename)

    uploaded_at = utcnow()
    uploaded_at = uploaded_at.replace(microsecond=uploaded_at.microsecond // 1000 * 1000)  # BSON keeps ms
    metadata = {
        "content_type": sniffed.content_type,
        "kind": sniffed.kind.value,
        "size": 0,
        "uploaded_by": _identity(uploaded_by),
        "uploaded_at": uploaded_at,
        "record_type": record_type,
        "record_id": None,
    }
    bucket = _bucket()
    upload = bucket.open_upload_stream(filename, metadata=metadata)
    try:
        upload.write(head)
        size = len(head)
        while True:
            data = stream.read(min(COPY_CHUNK_BYTES, max_bytes + 1 - size))
            if not data:
                break
            size += len(data)
            if size > max_bytes:
                raise _refuse_size(filename, max_bytes)
            upload.write(data)
        upload.close()
    except BaseException:
        upload.abort()
        raise
    file_id = upload._id

    content_type = sniffed.content_type
    if sniffed.container is not None:
        try:
            with bucket.open_download_stream(file_id) as stored:
                content_type = container_content_type(sniffed.container, stored)
        except BaseException:
            bucket.delete(file_id)
            raise
        if content_type is None:
            bucket.delete(file_id)
            raise _refuse_type(filename)
    filename = named_as(filename, content_type)
    _files().update_one(
        {"_id": file_id},
        {"$set": {"filename": filename, "metadata.size": size, "metadata.content_type": content_type}},
    )
    return AttachmentInfo(
        id=str(file_id), filename=filename, content_type=content_type, size=size, kind=sniffed.kind,
        uploaded_by=None if metadata["uploaded_by"] is None else str(metadata["uploaded_by"]),
        uploaded_at=uploaded_at, record_type=record_type, record_id=None,
    )


def get_attachment(attachment_id) -> AttachmentInfo:
    """What is stored under ``attachment_id``; raises ``NotFound`` for an unknown or malformed id."""
    document = _files().find_one({"_id": _object_id(attachment_id)})
    if document is None or "kind" not in (document.get("metadata") or {}):
        raise NotFound(_l("附件“%(id)s”不存在", id=attachment_id))
    return _info(document)


def open_attachment(attachment_id) -> gridfs.GridOut:
    """A readable stream of the stored bytes (``.filename``, ``.length``, ``.metadata``) for serving.

    Serve it with ``metadata["content_type"]`` (the sniffed type) and
    ``X-Content-Type-Options: nosniff``. Raises ``NotFound``.
    """
    try:
        return _bucket().open_download_stream(_object_id(attachment_id))
    except NoFile:
        raise NotFound(_l("附件“%(id)s”不存在", id=attachment_id)) from None


def delete_attachments(ids) -> int:
    """Delete the files with these ids (ids already gone are skipped); returns how many were deleted."""
    bucket, deleted = _bucket(), 0
    for file_id in _object_ids(ids):
        try:
            bucket.delete(file_id)
        except NoFile:
            continue
        deleted += 1
    return deleted


def check_attachable(ids, record_id=None) -> list[AttachmentInfo]:
    """The files behind ``ids``, after checking they may be linked to ``record_id``; changes nothing.

    Call it while validating, before the record is written. Raises
    ``NotFound`` for an unknown or malformed id and ``Conflict`` for a file that
    already belongs to another record (``record_id=None``: to any record).
    """
    file_ids = _object_ids(ids)
    record_id = _identity(record_id)
    found = {document["_id"]: document for document in _files().find({"_id": {"$in": file_ids}})}
    infos = []
    for file_id in file_ids:
        document = found.get(file_id)
        if document is None or "kind" not in (document.get("metadata") or {}):
            raise NotFound(_l("附件“%(id)s”不存在", id=str(file_id)))
        current = document["metadata"].get("record_id")
        if current is not None and current != record_id:
            raise Conflict(_l("附件“%(name)s”已属于其他记录", name=document.get("filename", str(file_id))))
        infos.append(_info(document))
    return infos


def attach_to_record(ids, record_id) -> int:
    """Mark the files as belonging to the record ``record_id``; returns how many were marked.

    Raises ``NotFound`` when an id is unknown and ``Conflict`` when a file
    already belongs to another record (nothing is changed then). Linking a file
    again to the same record is harmless.
    """
    if record_id is None:
        raise ValueError("attach_to_record needs a record id")
    file_ids = _object_ids(ids)
    if not file_ids:
        return 0
    check_attachable(file_ids, record_id)
    record_id = _identity(record_id)
    result = _files().update_many(
        {"_id": {"$in": file_ids}, "metadata.record_id": {"$in": [None, record_id]}},
        {"$set": {"metadata.record_id": record_id}},
    )
    return result.matched_count


def ensure_attachment_indexes() -> None:
    """Index the files' ``metadata.record_id`` (a record's attachments; uploads never attached)."""
    _files().create_index([("metadata.record_id", 1), ("uploadDate", 1)])


class AttachmentStore:
    """Stores uploads on behalf of one user; the record engine hands one to the ``attachments`` field type."""

    def __init__(self, uploaded_by=None, record_type: str | None = None):
        self.uploaded_by = uploaded_by
        self.record_type = record_type
        self.stored: list[str] = []  # ids of the files stored through this store, in order

    def store(self, file_storage, max_bytes: int) -> AttachmentInfo:
        """Check and store one upload; raises :class:`UploadRefused` (see :func:`store_upload`)."""
        info = store_upload(file_storage, max_bytes=max_bytes, uploaded_by=self.uploaded_by,
                            record_type=self.record_type)
        self.stored.append(info.id)
        return info


@contextmanager
def uploads_removed_on_failure(store: AttachmentStore | None):
    """Files ``store`` stores inside the block are deleted when the block raises: the save they were uploaded
    for failed (a required field was missing, a value was refused, the record changed meanwhile), and nothing
    will ever link them."""
    if store is None:
        yield
        return
    before = len(store.stored)
    try:
        yield
    except BaseException as exc:
        # A commit whose outcome is unknown (the connection dropped during it) may have stored the record that
        # links them: then they stay (an unlinked file costs space, a record without its file loses data).
        if not (isinstance(exc, PyMongoError) and exc.has_error_label("UnknownTransactionCommitResult")):
            delete_attachments(store.stored[before:])
        del store.stored[before:]
        raise


def removes_uploads_on_failure(save):
    """Decorates a save that takes an ``actor`` (``kefu.records.actor.Actor``) parameter: the files stored through
    ``actor.attachments`` during the save are deleted when it raises (:func:`uploads_removed_on_failure`)."""
    signature = inspect.signature(save)

    @functools.wraps(save)
    def guarded(*args, **kwargs):
        actor = signature.bind(*args, **kwargs).arguments["actor"]
        with uploads_removed_on_failure(getattr(actor, "attachments", None)):
            return save(*args, **kwargs)

    return guarded
