"""What an uploaded file is, decided from its bytes — never from its name or the Content-Type the browser sent.

* the first 8 KB are sniffed with the ``filetype`` package;
* ISO media files (MP4, MOV, 3GP, M4A, HEIC share one container) are told apart
  by their ``ftyp`` brands, read here because ``filetype`` misses 3GP;
* Office files are containers and are opened after upload: OOXML (docx, xlsx,
  pptx) must be a zip whose ``[Content_Types].xml`` declares the main document
  part, so a plain zip or a macro-enabled file renamed ``.docx`` is refused;
  the older binary formats (doc, xls, ppt, and WPS files in those formats) must
  be an OLE compound file holding a ``WordDocument``, ``Workbook``/``Book`` or
  ``PowerPoint Document`` stream, so an installer (.msi) renamed ``.xls`` is
  refused.

:func:`sniff` reads the first bytes; for a container, :func:`container_content_type`
reads the whole stored file (``kefu.records.attachments`` stores it first).
"""
from __future__ import annotations

import xml.etree.ElementTree as ElementTree
import zipfile
from dataclasses import dataclass
from enum import Enum

import filetype

from kefu.core.i18n import _, _l

SNIFF_BYTES = 8 * 1024


class AttachmentKind(str, Enum):
    """What an accepted file is, as kept in its metadata."""

    IMAGE = "image"
    VIDEO = "video"
    PDF = "pdf"
    OFFICE = "office"
    AUDIO = "audio"

    @property
    def label(self) -> str:
        """The kind's name for a person."""
        return str(KIND_LABELS[self])

    @property
    def opens_in_browser(self) -> bool:
        """True for the kind served inline (images); every other kind is served as a download, since a PDF or an
        Office file opened by the browser or a plug-in can run scripts of its own (a page's ``<video>`` or
        ``<audio>`` still plays a download)."""
        return self is AttachmentKind.IMAGE


KIND_LABELS = {
    AttachmentKind.IMAGE: _l("图片"),
    AttachmentKind.VIDEO: _l("视频"),
    AttachmentKind.PDF: _l("PDF"),
    AttachmentKind.OFFICE: _l("Office 文档"),
    AttachmentKind.AUDIO: _l("录音"),
}


def allowed_kinds_text() -> str:
    """The allowed kinds for a person: ``图片、视频、PDF、Office 文档、录音``."""
    return _("、").join(str(label) for label in KIND_LABELS.values())


# --- type sniffing --------------------------------------------------------------

# MIME types reported by ``filetype`` that are accepted as they are.
_ACCEPTED_MIMES = {
    "image/jpeg": (AttachmentKind.IMAGE, "image/jpeg"),
    "image/png": (AttachmentKind.IMAGE, "image/png"),
    "image/apng": (AttachmentKind.IMAGE, "image/png"),
    "image/gif": (AttachmentKind.IMAGE, "image/gif"),
    "image/webp": (AttachmentKind.IMAGE, "image/webp"),
    "image/bmp": (AttachmentKind.IMAGE, "image/bmp"),
    "video/webm": (AttachmentKind.VIDEO, "video/webm"),
    "video/x-msvideo": (AttachmentKind.VIDEO, "video/x-msvideo"),
    "application/pdf": (AttachmentKind.PDF, "application/pdf"),
    "audio/mpeg": (AttachmentKind.AUDIO, "audio/mpeg"),
    "audio/amr": (AttachmentKind.AUDIO, "audio/amr"),
    "audio/x-wav": (AttachmentKind.AUDIO, "audio/wav"),
}
# The file name extension of each accepted type (the first one) and the others that mean the same type; a stored
# file is named with one of them whatever the name it was uploaded with.
EXTENSIONS = {
    "image/jpeg": (".jpg", ".jpeg", ".jpe"), "image/png": (".png",), "image/gif": (".gif",),
    "image/webp": (".webp",), "image/bmp": (".bmp",), "image/heic": (".heic", ".heif"),
    "video/webm": (".webm",), "video/x-msvideo": (".avi",), "video/quicktime": (".mov", ".qt"),
    "video/3gpp": (".3gp",), "video/3gpp2": (".3g2",), "video/mp4": (".mp4", ".m4v"),
    "application/pdf": (".pdf",),
    "audio/mpeg": (".mp3",), "audio/amr": (".amr",), "audio/wav": (".wav",), "audio/mp4": (".m4a",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx",),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (".pptx",),
    "application/msword": (".doc", ".wps"), "application/vnd.ms-excel": (".xls", ".et"),
    "application/vnd.ms-powerpoint": (".ppt", ".dps"),
}


def extensions_for(content_type: str) -> tuple[str, ...]:
    """The extensions a file of ``content_type`` may be named with, the usual one first (``.bin`` if unknown)."""
    return EXTENSIONS.get(content_type, (".bin",))


# ``filetype`` results that are zip containers: decided by their [Content_Types].xml.
_ZIP_MIMES = {
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
# ``filetype`` checks only the first bytes of these; a text file beginning with
# "BM" or "GIF" must not pass as an image.
_STRICT_SIGNATURES = {
    "image/png": lambda head: head.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/apng": lambda head: head.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/gif": lambda head: head[:6] in (b"GIF87a", b"GIF89a"),
    "image/bmp": lambda head: (
        len(head) >= 18 and head[6:10] == b"\0\0\0\0"
        and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124)
    ),
}

_CFB_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_MP4_BRANDS = {
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1",
    b"M4V ", b"M4VH", b"M4VP", b"mmp4", b"MSNV", b"NDAS", b"dash", b"XAVC",
}

# OOXML main-part content types (macro-enabled variants are deliberately absent).
_OOXML_MAIN_PARTS = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml":
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml":
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml":
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_CONTENT_TYPES_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_MAX_CONTENT_TYPES_BYTES = 1024 * 1024

# Streams that mark the binary Office formats inside an OLE compound file.
_CFB_MAIN_STREAMS = (
    ("WordDocument", "application/msword"),
    ("Workbook", "application/vnd.ms-excel"),
    ("Book", "application/vnd.ms-excel"),
    ("PowerPoint Document", "application/vnd.ms-powerpoint"),
)

# The containers ``Sniffed.container`` names: opened after upload to find the document inside.
ZIP = "zip"
CFB = "cfb"


@dataclass(frozen=True)
class Sniffed:
    """What the first bytes say a file is; ``container`` (``ZIP`` / ``CFB``) is decided by opening the stored file."""

    kind: AttachmentKind
    content_type: str
    container: str | None = None


def _iso_media_type(head: bytes) -> tuple[AttachmentKind, str] | None:
    """Kind and MIME type of an ISO base media file, from the brands in its ``ftyp`` box."""
    box_size = int.from_bytes(head[:4], "big")
    if head[4:8] != b"ftyp" or box_size < 16 or box_size > len(head):
        return None
    major = head[8:12]
    compatible = {head[i:i + 4] for i in range(16, box_size - 3, 4)}
    if major in _HEIC_BRANDS or (major in (b"mif1", b"msf1") and compatible & _HEIC_BRANDS):
        return AttachmentKind.IMAGE, "image/heic"
    if major == b"qt  ":
        return AttachmentKind.VIDEO, "video/quicktime"
    if major.startswith(b"3gp"):
        return AttachmentKind.VIDEO, "video/3gpp"
    if major.startswith(b"3g2"):
        return AttachmentKind.VIDEO, "video/3gpp2"
    if major == b"M4A ":
        return AttachmentKind.AUDIO, "audio/mp4"
    if major in _MP4_BRANDS or compatible & {b"isom", b"mp41", b"mp42"}:
        return AttachmentKind.VIDEO, "video/mp4"
    return None


def sniff(head: bytes) -> Sniffed | None:
    """What the first bytes of a file say it is, when that is an allowed type."""
    if head.startswith(_CFB_SIGNATURE):
        return Sniffed(AttachmentKind.OFFICE, "application/x-ole-storage", CFB)
    if head[4:8] == b"ftyp":
        found = _iso_media_type(head)
        return Sniffed(*found) if found else None
    guess = filetype.guess(head)
    if guess is None:
        return None
    if guess.mime in _ZIP_MIMES:
        return Sniffed(AttachmentKind.OFFICE, guess.mime, ZIP)
    if guess.mime not in _ACCEPTED_MIMES:
        return None
    strict = _STRICT_SIGNATURES.get(guess.mime)
    if strict is not None and not strict(head):
        return None
    return Sniffed(*_ACCEPTED_MIMES[guess.mime])


def _ooxml_content_type(stream) -> str | None:
    """The document MIME type of an OOXML package (docx, xlsx, pptx), or None for any other zip."""
    try:
        with zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
            info = archive.getinfo("[Content_Types].xml")
            if info.file_size > _MAX_CONTENT_TYPES_BYTES:
                return None
            with archive.open(info) as handle:
                root = ElementTree.fromstring(handle.read(_MAX_CONTENT_TYPES_BYTES + 1))
    except (KeyError, zipfile.BadZipFile, ElementTree.ParseError, ValueError, NotImplementedError,
            RuntimeError, OSError, EOFError):
        return None
    if root.tag != f"{_CONTENT_TYPES_NS}Types":
        return None
    for override in root.iter(f"{_CONTENT_TYPES_NS}Override"):
        document_type = _OOXML_MAIN_PARTS.get((override.get("ContentType") or "").strip())
        part = (override.get("PartName") or "").lstrip("/")
        if document_type and part in names:
            return document_type
    return None


def _cfb_stream_names(stream) -> set[str]:
    """Names of the streams in an OLE compound file (MS-CFB), read from its directory chain."""
    stream.seek(0, 2)
    file_size = stream.tell()
    stream.seek(0)
    header = stream.read(512)
    if len(header) < 512 or not header.startswith(_CFB_SIGNATURE):
        return set()

    def u32(data: bytes, offset: int) -> int:
        return int.from_bytes(data[offset:offset + 4], "little")

    sector_shift = int.from_bytes(header[0x1E:0x20], "little")
    if sector_shift not in (9, 12):
        return set()
    sector_size = 1 << sector_shift
    entries_per_sector = sector_size // 4
    sector_count = max(file_size // sector_size, 1)
    special = 0xFFFFFFFA  # at and above: free, end of chain and other markers

    def read_sector(number: int) -> bytes:
        stream.seek((number + 1) * sector_size)
        return stream.read(sector_size)

    fat_sectors = [u32(header, 0x4C + 4 * i) for i in range(109)]
    difat_sector, hops = u32(header, 0x44), 0
    while difat_sector < special and hops < sector_count:
        data = read_sector(difat_sector)
        fat_sectors += [u32(data, 4 * i) for i in range(entries_per_sector - 1)]
        difat_sector, hops = u32(data, sector_size - 4), hops + 1
    fat_sectors = [number for number in fat_sectors if number < special]

    def next_sector(number: int) -> int:
        index, position = divmod(number, entries_per_sector)
        if index >= len(fat_sectors):
            return special
        return u32(read_sector(fat_sectors[index]), 4 * position)

    names: set[str] = set()
    directory_sector, hops = u32(header, 0x30), 0
    while directory_sector < special and hops < sector_count:
        data = read_sector(directory_sector)
        for offset in range(0, len(data) - 127, 128):
            entry = data[offset:offset + 128]
            name_length = int.from_bytes(entry[0x40:0x42], "little")
            if entry[0x42] == 2 and 2 <= name_length <= 64:  # 2 = stream
                names.add(entry[:name_length - 2].decode("utf-16-le", errors="replace"))
        directory_sector, hops = next_sector(directory_sector), hops + 1
    return names


def _cfb_content_type(stream) -> str | None:
    """The MIME type of a binary Office document (doc, xls, ppt, WPS), or None for any other compound file."""
    try:
        names = _cfb_stream_names(stream)
    except (OSError, ValueError, IndexError):
        return None
    for stream_name, content_type in _CFB_MAIN_STREAMS:
        if stream_name in names:
            return content_type
    return None


def container_content_type(container: str, stream) -> str | None:
    """The document MIME type of a stored Office container (``ZIP`` or ``CFB``), or None when it is no allowed
    Office document; ``stream`` is the whole file, seekable."""
    check = _ooxml_content_type if container == ZIP else _cfb_content_type
    return check(stream)
