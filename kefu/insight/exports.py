"""Records as JSON and as spreadsheets (CSV with BOM, XLSX), streamed in bounded memory.

The columns are what the list shows (or every current field), labels as
headers; the rows are exactly what ``find_records`` returns for the same
query, in its order, made a batch at a time with each column's conversion
decided once per export (``kefu.insight.export_cells``). The XLSX has real date
and money cells, a frozen header, an autofilter, widths by field type, the
sheet named after the type and a second sheet 导出说明 (filters, who, when, how
many rows); it is written by rustpy-xlsxwriter (Rust, constant memory), chosen
by ``bench/export_bench.py`` over XlsxWriter and PyExcelerate.
Sensitive values are masked unless the actor may see personal data, cells
and headers that a spreadsheet would run as a formula are neutralised, and every
export is written to the audit log — its filters with the values of sensitive
fields and the digits of a search masked (``describe_query``, ``query_text``).
"""
from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterator
from urllib.parse import quote

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.i18n import _
from kefu.insight.export_cells import SlaColumn, export_batches, neutralise
from kefu.insight.export_notes import DIGIT_RUN, describe_query, export_label, mask_digits, query_text
from kefu.org.roles import Action
from kefu.records.actor import Actor
from kefu.records.core_fields import core_field, core_fields
from kefu.records.fields import get_field_type
from kefu.records.query import RecordQuery, build_filter
from kefu.records.store import AUDIT, RECORDS
from kefu.records.timeline import audit
from kefu.records.types import RecordType
from kefu.records.values import core_values, read_stored
from kefu.rules.sla import SLA_COLUMN, clocks_json

__all__ = ["FORMATS", "Export", "content_disposition", "count_rows", "event_json", "export_columns",
           "export_records", "mask_earlier_export_audits", "neutralise", "record_json", "records_json", "sheet_title"]

FORMATS = {"csv": "text/csv",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
DEFAULT_CORE_COLUMNS = ("number", "status", "assignee", "department", "customer", "created_at", "updated_at")
PROGRESS_EVERY = 1000
DIGIT_RUN_PATTERN = {"$regex": DIGIT_RUN.pattern}
HEADER_BACKGROUND = "#DDEBF7"


class _RecordJson:
    """The API shape of records of one type for one reader: the core and configured fields with their types are
    looked up once, then ``body`` makes each record's."""

    def __init__(self, record_type: RecordType, actor: Actor, explained: bool):
        self.record_type, self.actor, self.explained = record_type, actor, explained
        self.core = [(definition.key, get_field_type(definition.type)) for definition in core_fields(record_type)]
        self.fields = record_type.typed_specs

    def body(self, document: dict, unmasked: bool) -> dict:
        record_type, actor, tz = self.record_type, self.actor, self.actor.tz
        core = core_values(document)
        body = {"id": str(document["_id"]), "type": record_type.key, "version": document["version"]}
        for key, field_type in self.core:
            value = core.get(key)
            body[key] = field_type.to_json(value, tz) if value is not None else None
        data, pii = document.get("data") or {}, document.get("pii") or {}
        for definition, field_type in self.fields:
            key = definition.key
            absent = data.get(key) is None and pii.get(key) is None  # most records leave some fields empty
            value = None if absent else read_stored(record_type, definition, field_type, data, pii, actor)
            if value in (None, "", []):
                if definition.active or value is not None:
                    body[key] = None
            elif definition.sensitive and not unmasked:
                body[key] = field_type.mask(value)
            else:
                body[key] = field_type.to_json(value, tz)
        body["sla"] = clocks_json(document, tz, explained=self.explained)
        return body


def record_json(record_type: RecordType, document: dict, actor: Actor, *, explained: bool = True) -> dict:
    """The API shape of a record: id, core fields, every configured field with a value, timestamps, SLA clocks
    (with the deadline explanations unless ``explained`` is false, as in lists)."""
    return _RecordJson(record_type, actor, explained).body(document, actor.sees_pii(record_type.key, document))


def records_json(record_type: RecordType, documents, actor: Actor, *, explained: bool = True) -> list[dict]:
    """``record_json`` of each of ``documents``, records of ``record_type`` the actor may read (a page of a list):
    what depends only on the type and the reader — the fields and their types, whether the reader sees personal
    data in every record of the type — is decided once for all of them."""
    shape = _RecordJson(record_type, actor, explained)
    everywhere = actor.access.sees_pii(record_type.key)  # then in every record they may read
    return [shape.body(document, everywhere or actor.sees_pii(record_type.key, document)) for document in documents]


def event_json(event: dict, actor: Actor) -> dict:
    return {
        "id": str(event["_id"]), "kind": event["kind"], "at": event["at"].astimezone(actor.tz).isoformat(),
        "by": str(event["by"]) if event.get("by") else None, "by_name": event.get("by_name"),
        "text": event.get("text", ""), "attachments": [str(a) for a in event.get("attachments", [])],
    }


# -- columns ----------------------------------------------------------------------------------------------

def export_columns(record_type: RecordType, keys=None, include_inactive: bool = False) -> list:
    """The columns of an export: ``keys`` in their order (what the list shows), else the core columns and every
    active field (every field with ``include_inactive``). Unknown keys are left out."""
    if not keys:
        core = [f for f in core_fields(record_type) if f.key in DEFAULT_CORE_COLUMNS]
        return [*core, *(f for f in record_type.specs if f.active or include_inactive)]
    columns = []
    for key in keys:
        definition = SlaColumn() if key == SLA_COLUMN else (
            core_field(record_type, key) or record_type.field(key))
        if definition is not None and (getattr(definition, "active", True) or include_inactive):
            columns.append(definition)
    return columns


@dataclass
class Export:
    chunks: Iterator[bytes]
    mimetype: str
    filename: str
    counter: dict = field(default_factory=lambda: {"rows": 0})

    @property
    def rows(self) -> int:
        """Rows written so far (all of them once ``chunks`` is exhausted)."""
        return self.counter["rows"]

    @property
    def content_disposition(self) -> str:
        return content_disposition(self.filename)


def content_disposition(filename: str) -> str:
    # RFC 5987: an ASCII fallback plus the UTF-8 (Chinese) name.
    ascii_name = "export." + filename.rsplit(".", 1)[-1]
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def export_filename(record_type: RecordType, fmt: str, moment: datetime, actor: Actor, label: str | None = None) -> str:
    """``投诉_逾期_20261122.xlsx`` (characters a file name cannot hold are replaced)."""
    parts = [record_type.name, *([label] if label else []), f"{moment.astimezone(actor.tz):%Y%m%d}"]
    return re.sub(r'[\\/:*?"<>|\s]+', "-", "_".join(parts)) + f".{fmt}"


def count_rows(record_type: RecordType, query: RecordQuery, actor: Actor) -> int:
    return get_database()[RECORDS].count_documents(build_filter(record_type, query, actor, Action.EXPORT.value))


def mask_earlier_export_audits() -> int:
    """Mask the phone and ID numbers that export entries of the audit log written before filters were masked keep
    in clear (the raw query string, the search in the description): every long digit run; idempotent. Return how
    many entries were changed."""
    collection, changed = get_database()[AUDIT], 0
    for entry in collection.find({"action": "export", "$or": [{"filters": DIGIT_RUN_PATTERN},
                                                              {"description": DIGIT_RUN_PATTERN}]}):
        description = [mask_digits(line) for line in entry.get("description") or []]
        collection.update_one({"_id": entry["_id"]}, {"$set": {"filters": mask_digits(entry.get("filters") or ""),
                                                               "description": description}})
        changed += 1
    return changed


def export_records(record_type: RecordType, query: RecordQuery, actor: Actor, fmt: str, *, columns=None, view=None,
                   include_inactive: bool = False, progress=None) -> Export:
    """A streamed export of every record matching ``query`` (all pages, in its order), audited when the last
    row is written (its filters masked: ``query_text``, ``describe_query``). ``columns``: the keys on screen
    (default: every field). ``progress(rows)`` is called every ``PROGRESS_EVERY`` rows written (background exports)."""
    columns = export_columns(record_type, columns, include_inactive)
    headers = [neutralise(str(c.label)) for c in columns]
    now = utcnow()
    counter = {"rows": 0}
    description = describe_query(record_type, query, actor, view)

    def counted(batches):
        for rows in batches:
            yield rows
            before = counter["rows"]
            counter["rows"] += len(rows)
            if progress is not None and counter["rows"] // PROGRESS_EVERY > before // PROGRESS_EVERY:
                progress(counter["rows"])
        audit("export", record_type, None, actor, extra={
            "at": now, "format": fmt, "filters": query_text(record_type, query), "description": description,
            "view": getattr(view, "key", None), "columns": [c.key for c in columns], "rows": counter["rows"]})

    batches = counted(export_batches(record_type, columns, query, actor, text_only=(fmt == "csv")))
    if fmt == "csv":
        chunks = _csv_chunks(headers, batches)
    else:
        def notes():
            return [(_("记录类型"), record_type.name), (_("筛选条件"), "\n".join(description)),
                    (_("导出人"), actor.name), (_("导出时间"), now.astimezone(actor.tz).strftime("%Y-%m-%d %H:%M:%S")),
                    (_("行数"), counter["rows"]), (_("说明"), _("敏感字段按导出人的权限显示；以 = + - @ 开头的内容已加 ' 防止被当作公式"))]

        chunks = _xlsx_chunks(record_type, columns, headers, batches, notes)
    label = export_label(query, view)
    return Export(chunks=chunks, mimetype=FORMATS[fmt], filename=export_filename(record_type, fmt, now, actor, label),
                  counter=counter)


def _csv_chunks(headers: list[str], batches) -> Iterator[bytes]:
    """The CSV a batch of rows at a time: UTF-8 with BOM (Excel on Windows opens Chinese correctly only with it),
    RFC 4180 (CRLF rows; a cell with a comma, quote or line break is quoted, its line breaks kept; None is empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(headers)
    for rows in batches:
        writer.writerows(rows)
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def _text_width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def column_width(column) -> int:
    """A sensible Excel column width: by the field's type (``export_width``), never narrower than its header."""
    base = 26 if column.key == SLA_COLUMN else get_field_type(column.type).export_width
    return min(60, max(base, _text_width(str(column.label)) + 3))


def sheet_title(name: str) -> str:
    """An Excel sheet name: at most 31 characters, none of ``[]:*?/\\``."""
    return re.sub(r"[\[\]:*?/\\]", "-", name)[:31] or "Sheet1"


def distinct_headers(headers: list[str]) -> list[str]:
    """The headers as the XLSX writer keys a row's cells by (one key per column): a label that is already a
    column's gets the column's position (``状态（9）``)."""
    taken, distinct = set(), []
    for position, header in enumerate(headers, start=1):
        if header in taken:
            header = f"{header}（{position}）"
        taken.add(header)
        distinct.append(header)
    return distinct


def _records(keys: list[str], batches) -> Iterator[dict]:
    """The rows as the writer takes them (``{header: cell}``); an export of nothing is its header row alone."""
    empty = True
    for rows in batches:
        empty = False
        for row in rows:
            yield dict(zip(keys, row))
    if empty:
        yield dict.fromkeys(keys)


def _about_rows(keys: tuple[str, str], notes) -> Iterator[dict]:
    """The 导出说明 sheet's rows, made when the writer comes to them — after the last data row, whose count they
    give."""
    for name, value in notes():
        yield {keys[0]: str(name), keys[1]: value if isinstance(value, int) else str(neutralise(value))}


def _xlsx_chunks(record_type: RecordType, columns, headers: list[str], batches, notes) -> Iterator[bytes]:
    """The workbook (``write_xlsx``), written into a temporary folder, then streamed."""
    with tempfile.TemporaryDirectory(prefix="kefu-export-") as folder:
        path = os.path.join(folder, "export.xlsx")
        write_xlsx(path, record_type, columns, headers, batches, notes)
        with open(path, "rb") as written:
            while chunk := written.read(256 * 1024):
                yield chunk


def write_xlsx(path: str, record_type: RecordType, columns, headers: list[str], batches, notes) -> None:
    """Write the workbook to ``path`` with rustpy-xlsxwriter, in constant memory (the rows stream through).

    The sheet is named after the type; its header row is frozen and filtered; each column has its width and, for
    dates, times and money, its number format (``export_number_format``); the cells are what ``export_batches`` made
    of each value — dates, numbers or text, never a formula. The 导出说明 sheet follows, written once every row is
    (``notes()`` counts them)."""
    import rustpy_xlsxwriter as xlsx  # optional: a compiled writer that only the XLSX exports load

    data_sheet, about_sheet = sheet_title(record_type.name), sheet_title(str(_("导出说明")))
    number_formats = [get_field_type(column.type).export_number_format for column in columns]
    header = xlsx.Format().set_bold().set_background_color(HEADER_BACKGROUND).set_border("thin")
    sheets = [(data_sheet, _records(distinct_headers(headers), batches)),
              (about_sheet, _about_rows((str(_("名称")), str(_("内容"))), notes))]
    xlsx.write_worksheets(
        sheets, path, freeze_panes={data_sheet: {"row": 1, "col": 0}}, autofilter={data_sheet: True},
        header_format={data_sheet: header, about_sheet: xlsx.Format().set_bold()},
        column_widths={data_sheet: [column_width(column) for column in columns], about_sheet: [12, 80]},
        column_formats={
            data_sheet: [xlsx.Format().set_num_format(number_format) if number_format else None
                         for number_format in number_formats],
            about_sheet: [xlsx.Format().set_bold(), xlsx.Format().set_text_wrap().set_align("top")]})
