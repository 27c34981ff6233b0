"""Uploads in GridFS: the real type decides, limits hold, nothing half-stored is left behind."""
from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from datetime import timezone

import pytest
from bson import ObjectId
from werkzeug.datastructures import FileStorage

from kefu.core.errors import Conflict, NotFound, ValidationFailed
from kefu.records.attachments import (
    AttachmentStore, UploadRefused, attach_to_record, check_attachable, delete_attachments, get_attachment,
    open_attachment, sanitize_filename, store_upload,
)
from kefu.records.file_types import AttachmentKind

MB = 1024 * 1024
REFUSED_TYPE_SUFFIX = "的类型不允许上传；允许：图片、视频、PDF、Office 文档、录音"


def noise(size: int) -> bytes:
    """``size`` bytes that look random but are the same in every process: they end up in parametrized test ids,
    which the suite's two processes must agree on."""
    return random.Random(size).randbytes(size)


# --- sample files, built from scratch ---------------------------------------------------


def png_bytes(width=2, height=2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def pdf_bytes() -> bytes:
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


DOCX_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    '</Types>'
)
DOCX_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>'
)
DOCX_DOCUMENT = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    '<w:body><w:p><w:r><w:t>业主投诉：楼上漏水</w:t></w:r></w:p></w:body></w:document>'
)


def zip_bytes(entries: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def docx_bytes() -> bytes:
    return zip_bytes({"[Content_Types].xml": DOCX_CONTENT_TYPES, "_rels/.rels": DOCX_RELS,
                      "word/document.xml": DOCX_DOCUMENT})


def xlsx_bytes() -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["房号", "业主", "问题"])
    workbook.active.append(["3-1-502", "张三", "漏水"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def iso_media_bytes(major: bytes, compatible: list[bytes], payload: int = 64) -> bytes:
    ftyp_body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    ftyp = struct.pack(">I", 8 + len(ftyp_body)) + b"ftyp" + ftyp_body
    mdat = struct.pack(">I", 8 + payload) + b"mdat" + noise(payload)
    return ftyp + mdat


def mp4_bytes(payload: int = 64) -> bytes:
    return iso_media_bytes(b"isom", [b"isom", b"iso2", b"avc1", b"mp41"], payload)


def cfb_bytes(stream_names: list[str]) -> bytes:
    """A minimal OLE compound file (512-byte sectors): sector 0 = FAT, sector 1 = directory."""
    free, end, fat_marker = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
    header = bytearray(512)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<I", header, 0x2C, 1)          # one FAT sector
    struct.pack_into("<I", header, 0x30, 1)          # directory starts at sector 1
    struct.pack_into("<I", header, 0x38, 0x1000)     # mini stream cutoff
    struct.pack_into("<III", header, 0x3C, end, 0, end)  # no mini FAT, no DIFAT sectors
    struct.pack_into("<I", header, 0x44, end)
    for index in range(109):
        struct.pack_into("<I", header, 0x4C + 4 * index, 0 if index == 0 else free)
    fat = bytearray(b"\xff" * 512)
    struct.pack_into("<II", fat, 0, fat_marker, end)

    def entry(name: str, kind: int) -> bytes:
        data = bytearray(128)
        encoded = (name + "\0").encode("utf-16-le")
        data[:len(encoded)] = encoded
        struct.pack_into("<HBB", data, 0x40, len(encoded), kind, 1)
        struct.pack_into("<III", data, 0x44, free, free, free)
        struct.pack_into("<I", data, 0x74, end)
        return bytes(data)

    directory = bytearray(entry("Root Entry", 5) + b"".join(entry(name, 2) for name in stream_names))
    directory += b"\x00" * (-len(directory) % 512)
    return bytes(header + fat + directory)


def upload(data: bytes, filename: str, content_type: str = "application/octet-stream") -> FileStorage:
    return FileStorage(io.BytesIO(data), filename=filename, content_type=content_type)


def stored_counts(db) -> tuple[int, int]:
    return db["attachments.files"].count_documents({}), db["attachments.chunks"].count_documents({})


def read_back(attachment_id) -> bytes:
    with open_attachment(attachment_id) as stream:
        return stream.read()


# --- accepted files ------------------------------------------------------------------------


@pytest.mark.parametrize("filename, data, kind, content_type", [
    ("现场照片.png", png_bytes(), AttachmentKind.IMAGE, "image/png"),
    ("报告.pdf", pdf_bytes(), AttachmentKind.PDF, "application/pdf"),
    ("整改通知.docx", docx_bytes(), AttachmentKind.OFFICE,
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("台账.xlsx", xlsx_bytes(), AttachmentKind.OFFICE,
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("漏水.mp4", mp4_bytes(), AttachmentKind.VIDEO, "video/mp4"),
    ("漏水.mov", iso_media_bytes(b"qt  ", [b"qt  "]), AttachmentKind.VIDEO, "video/quicktime"),
    ("手机录像.3gp", iso_media_bytes(b"3gp4", [b"isom", b"3gp4"]), AttachmentKind.VIDEO, "video/3gpp"),
    ("IMG_0001.HEIC", iso_media_bytes(b"heic", [b"mif1", b"heic"]), AttachmentKind.IMAGE, "image/heic"),
    ("通话录音.m4a", iso_media_bytes(b"M4A ", [b"M4A ", b"mp42", b"isom"]), AttachmentKind.AUDIO, "audio/mp4"),
    ("通话录音.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00" + noise(256), AttachmentKind.AUDIO, "audio/mpeg"),
    ("通话录音.amr", b"#!AMR\n" + noise(64), AttachmentKind.AUDIO, "audio/amr"),
    ("通话录音.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + noise(64), AttachmentKind.AUDIO, "audio/wav"),
    ("照片.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + noise(64), AttachmentKind.IMAGE, "image/jpeg"),
    ("动图.gif", b"GIF89a\x01\x00\x01\x00" + noise(32), AttachmentKind.IMAGE, "image/gif"),
    ("旧文档.doc", cfb_bytes(["\x01CompObj", "WordDocument", "1Table"]), AttachmentKind.OFFICE, "application/msword"),
    ("旧表格.xls", cfb_bytes(["Workbook", "\x05SummaryInformation"]), AttachmentKind.OFFICE, "application/vnd.ms-excel"),
    ("旧演示.ppt", cfb_bytes(["PowerPoint Document", "Current User"]), AttachmentKind.OFFICE,
     "application/vnd.ms-powerpoint"),
])
def test_allowed_files_are_stored_with_their_sniffed_type(app, db, filename, data, kind, content_type):
    info = store_upload(upload(data, filename, "application/x-anything"), max_bytes=20 * MB)
    assert (info.filename, info.kind, info.content_type, info.size) == (filename, kind, content_type, len(data))
    assert read_back(info.id) == data
    assert get_attachment(info.id) == info


def test_metadata_is_stored(app, db):
    user_id = ObjectId()
    info = store_upload(upload(png_bytes(), "投诉现场（3号楼）.png", "text/plain"), max_bytes=MB,
                        uploaded_by=user_id, record_type="complaint")
    stored = db["attachments.files"].find_one({"_id": ObjectId(info.id)})
    assert stored["filename"] == "投诉现场（3号楼）.png"
    metadata = stored["metadata"]
    assert metadata["content_type"] == "image/png"  # sniffed, not the client's "text/plain"
    assert metadata["kind"] == "image" and metadata["size"] == len(png_bytes()) == stored["length"]
    assert metadata["uploaded_by"] == user_id and metadata["record_type"] == "complaint"
    assert metadata["record_id"] is None
    assert metadata["uploaded_at"].tzinfo is not None and metadata["uploaded_at"].utcoffset().total_seconds() == 0
    assert info.uploaded_by == str(user_id) and info.uploaded_at == metadata["uploaded_at"]
    assert info.uploaded_at.tzinfo == timezone.utc or info.uploaded_at.utcoffset().total_seconds() == 0


def test_large_upload_is_streamed_and_stored_byte_for_byte(app, db):
    data = mp4_bytes(payload=3 * MB + 12345)

    class CountingStream(io.BytesIO):
        biggest_read = 0

        def read(self, size=-1):
            assert size is not None and size > 0, "the whole file must never be read at once"
            CountingStream.biggest_read = max(CountingStream.biggest_read, size)
            return super().read(size)

    info = store_upload(FileStorage(CountingStream(data), filename="监控录像.mp4"), max_bytes=20 * MB)
    assert CountingStream.biggest_read <= MB
    assert info.size == len(data) and read_back(info.id) == data
    assert db["attachments.chunks"].count_documents({"files_id": ObjectId(info.id)}) > 1


# --- refused files -------------------------------------------------------------------------


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + noise(200)
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + noise(200)


@pytest.mark.parametrize("filename, data", [
    ("photo.jpg", ELF),
    ("photo.jpg", WINDOWS_EXE),
    ("a.exe", WINDOWS_EXE),
    ("合同.docx", zip_bytes({"readme.txt": "just a zip", "setup.exe": WINDOWS_EXE})),
    # filetype calls this a docx (first entry under word/) but it has no [Content_Types].xml
    ("合同.docx", zip_bytes({"word/document.xml": DOCX_DOCUMENT, "word/payload.exe": WINDOWS_EXE})),
    # a macro-enabled document renamed .docx
    ("合同.docx", zip_bytes({
        "[Content_Types].xml": DOCX_CONTENT_TYPES.replace(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
            "application/vnd.ms-word.document.macroEnabled.main+xml"),
        "_rels/.rels": DOCX_RELS, "word/document.xml": DOCX_DOCUMENT})),
    # declares a main part that is not in the package
    ("合同.docx", zip_bytes({"[Content_Types].xml": DOCX_CONTENT_TYPES, "_rels/.rels": DOCX_RELS})),
    ("说明.pdf", "这是一个文本文件，不是 PDF。\n".encode("utf-8") * 20),
    ("说明.bmp", b"BM this is text that starts with BM, not a bitmap" * 4),
    ("说明.gif", b"GIF is a nice format, says this text file" * 4),
    # an OLE compound file without an Office stream (e.g. an installer) named .xls;
    # filetype's own check would call it a spreadsheet
    ("报表.xls", cfb_bytes(["\x05SummaryInformation", "\u4840\u3f3f\u4577"])),
    ("动画.avif", iso_media_bytes(b"avif", [b"avif", b"mif1", b"miaf"])),
    ("压缩包.7z", b"7z\xbc\xaf\x27\x1c" + noise(100)),
])
def test_refused_types_name_the_file_and_list_allowed_kinds(app, db, filename, data):
    with pytest.raises(UploadRefused) as caught:
        store_upload(upload(data, filename, "image/jpeg"), max_bytes=20 * MB)
    assert str(caught.value) == f"文件“{filename}”{REFUSED_TYPE_SUFFIX}"
    assert isinstance(caught.value, ValidationFailed)
    assert stored_counts(db) == (0, 0)


def test_empty_file_is_refused(app, db):
    with pytest.raises(UploadRefused, match="^文件为空$"):
        store_upload(upload(b"", "空.png"), max_bytes=MB)
    assert stored_counts(db) == (0, 0)


def test_over_limit_file_is_refused_and_partial_upload_removed(app, db):
    data = mp4_bytes(payload=int(2.5 * MB))
    with pytest.raises(UploadRefused) as caught:
        store_upload(upload(data, "x.mp4", "video/mp4"), max_bytes=2 * MB)
    assert str(caught.value) == "文件“x.mp4”超过 2 MB 的上限"
    assert stored_counts(db) == (0, 0)


def test_over_limit_within_the_first_bytes(app, db):
    with pytest.raises(UploadRefused, match="超过 1000 B 的上限"):
        store_upload(upload(png_bytes(40, 40) + b"\x00" * 2000, "大图.png"), max_bytes=1000)
    assert stored_counts(db) == (0, 0)


def test_reading_stops_once_over_the_limit(app, db):
    """An endless upload is cut off just past the limit instead of being read to the end."""
    head = mp4_bytes(payload=16)

    class Endless(io.RawIOBase):
        delivered = 0

        def readable(self):
            return True

        def read(self, size=-1):
            assert size is not None and 0 < size <= MB
            chunk = (head if Endless.delivered == 0 else b"\x00" * size)[:size]
            Endless.delivered += len(chunk)
            return chunk

    with pytest.raises(UploadRefused, match="超过 20 MB 的上限"):
        store_upload(FileStorage(Endless(), filename="x.mp4"), max_bytes=20 * MB)
    assert Endless.delivered <= 20 * MB + MB
    assert stored_counts(db) == (0, 0)


def test_exact_limit_is_accepted(app, db):
    data = mp4_bytes(payload=MB - 40)
    info = store_upload(upload(data, "x.mp4"), max_bytes=len(data))
    assert info.size == len(data)


# --- file names ----------------------------------------------------------------------------


@pytest.mark.parametrize("given, expected", [
    ("业主投诉照片（1号楼 2单元）.png", "业主投诉照片（1号楼 2单元）.png"),
    ("../../etc/passwd.png", "passwd.png"),
    ("C:\\Users\\客服\\Desktop\\现场.png", "现场.png"),
    ("..", "附件"),
    ("", "附件"),
    (None, "附件"),
    ("bad\x00name\x07\n.png", "badname.png"),
    ("invoice\u202egnp.exe", "invoicegnp.exe"),
    ('a<b>c:"d|e?f*.png', "a_b_c__d_e_f_.png"),
    ("  .hidden.png  ", "hidden.png"),
])
def test_sanitize_filename(given, expected):
    assert sanitize_filename(given) == expected


def test_long_names_are_cut_keeping_the_extension():
    name = sanitize_filename("长" * 300 + ".docx")
    assert len(name) == 120 and name.endswith(".docx") and name.startswith("长长")


def test_path_traversal_name_is_stored_sanitised(app, db):
    info = store_upload(upload(png_bytes(), "../../../var/www/现场照片.png"), max_bytes=MB)
    assert info.filename == "现场照片.png"
    assert db["attachments.files"].find_one({"_id": ObjectId(info.id)})["filename"] == "现场照片.png"


# --- lookups, linking, deleting ------------------------------------------------------------


def test_unknown_and_malformed_ids_are_not_found(app, db):
    for bad in (str(ObjectId()), "not-an-id", "", None, 12):
        with pytest.raises(NotFound):
            get_attachment(bad)
        with pytest.raises(NotFound):
            open_attachment(bad)


def test_attach_to_record_and_delete(app, db):
    first = store_upload(upload(png_bytes(), "1.png"), max_bytes=MB, record_type="complaint")
    second = store_upload(upload(pdf_bytes(), "2.pdf"), max_bytes=MB, record_type="complaint")
    record_id = ObjectId()
    assert [info.id for info in check_attachable([first.id, second.id])] == [first.id, second.id]
    assert attach_to_record([first.id, second.id], record_id) == 2
    with pytest.raises(Conflict, match="1.png"):
        check_attachable([first.id])  # already linked: not free for a new record
    assert len(check_attachable([first.id], record_id)) == 1
    assert get_attachment(first.id).record_id == str(record_id)
    assert db["attachments.files"].find_one({"_id": ObjectId(second.id)})["metadata"]["record_id"] == record_id
    assert attach_to_record([first.id], record_id) == 1  # idempotent
    with pytest.raises(Conflict):
        attach_to_record([first.id], ObjectId())
    with pytest.raises(NotFound):
        attach_to_record([str(ObjectId())], record_id)
    assert get_attachment(first.id).record_id == str(record_id)

    assert delete_attachments([first.id, str(ObjectId())]) == 1
    with pytest.raises(NotFound):
        get_attachment(first.id)
    assert delete_attachments(second.id) == 1
    assert stored_counts(db) == (0, 0)


def test_attachment_store_binds_the_uploader(app, db):
    uploader = ObjectId()
    store = AttachmentStore(uploaded_by=uploader, record_type="repair")
    info = store.store(upload(png_bytes(), "报修.png"), 5 * MB)
    assert info.uploaded_by == str(uploader) and info.record_type == "repair"
    with pytest.raises(UploadRefused, match="超过 5 MB"):
        store.store(upload(mp4_bytes(payload=5 * MB), "大.mp4"), 5 * MB)
