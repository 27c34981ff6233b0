"""Records as JSON and as spreadsheets (CSV with BOM, XLSX), streamed in constant memory.

The columns are what the list shows (or every current field), labels as
headers; the rows are exactly what ``find_records`` returns for the same
query, in its order. The XLSX has real date and money cells, a frozen header,
an autofilter, widths by field type, the sheet named after the type and a
second sheet 导出说明 (filters, who, when, how many rows).
Sensitive values are masked unless the actor may see personal data, cells
and headers that a spreadsheet would run as a formula are neutralised, and every
export is written to the audit log — its filters with the values of sensitive
fields and the digits of a search masked (``describe_query``, ``query_text``).
"""
from __future__ import annotations

import csv
import io
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Iterator
from urllib.parse import quote

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.i18n import _, _l
from kefu.insight.export_notes import DIGIT_RUN, describe_query, export_label, mask_digits, query_text
from kefu.org.roles import Action
from kefu.records.actor import Actor
from kefu.records.core_fields import core_field, core_fields
from kefu.records.fields import get_field_type
from kefu.records.query import RecordQuery, build_filter, iter_records
from kefu.records.store import AUDIT, RECORDS
from kefu.records.timeline import audit
from kefu.records.types import RecordType
from kefu.records.values import core_values, read_stored, read_values
from kefu.rules.sla import STATE_LABELS, clocks_json, state_at

FORMATS = {"csv": "text/csv",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
DEFAULT_CORE_COLUMNS = ("number", "status", "assignee", "department", "customer", "created_at", "updated_at")
SLA_COLUMN = "sla"  # the list's 时限 column
PROGRESS_EVERY = 1000
DIGIT_RUN_PATTERN = {"$regex": DIGIT_RUN.pattern}


def _shown(definition, value, actor: Actor, unmasked: bool):
    field_type = get_field_type(definition.type)
    if definition.sensitive and not unmasked:
        return field_type.mask(value)
    return field_type.to_json(value, actor.tz)


def record_json(record_type: RecordType, document: dict, actor: Actor, *, explained: bool = True) -> dict:
    """The API shape of a record: id, core fields, every configured field with a value, timestamps, SLA clocks
    (with the deadline explanations unless ``explained`` is false, as in lists)."""
    core = core_values(document)
    body = {"id": str(document["_id"]), "type": record_type.key, "version": document["version"]}
    for definition in core_fields(record_type):
        value = core.get(definition.key)
        body[definition.key] = get_field_type(definition.type).to_json(value, actor.tz) if value is not None else None
    values = read_values(record_type, document, actor)
    unmasked = actor.sees_pii(record_type.key, document)
    for definition in record_type.specs:
        value = values.get(definition.key)
        if definition.active or value is not None:
            body[definition.key] = _shown(definition, value, actor, unmasked) if value not in (None, "", []) else None
    body["sla"] = clocks_json(document, actor.tz, explained=explained)
    return body


def event_json(event: dict, actor: Actor) -> dict:
    return {
        "id": str(event["_id"]), "kind": event["kind"], "at": event["at"].astimezone(actor.tz).isoformat(),
        "by": str(event["by"]) if event.get("by") else None, "by_name": event.get("by_name"),
        "text": event.get("text", ""), "attachments": [str(a) for a in event.get("attachments", [])],
    }


def neutralise(cell):
    """A text cell a spreadsheet would evaluate (``=``, ``+``, ``-``, ``@``) gets a leading apostrophe."""
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell


def _cell(definition, value, actor: Actor, *, text_only: bool):
    """The export cell of a value of a non-sensitive field with a finite set of values."""
    if value in (None, "", []):
        return None
    field_type = get_field_type(definition.type)
    cell = field_type.export_cell(value, actor.tz)
    return neutralise(_as_text(cell) if text_only else cell)


def _as_text(cell) -> str:
    """A CSV cell: numbers plain (Excel reads them as numbers), times as local ``YYYY-MM-DD HH:MM``."""
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d %H:%M")
    if isinstance(cell, date):
        return cell.isoformat()
    return str(cell)




# -- columns ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SlaColumn:
    """The list's 时限 column: the nearest running deadline's state, as text."""

    key: str = SLA_COLUMN
    label: object = _l("时限")
    type: str = "text"
    sensitive: bool = False


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


def sla_text(document: dict, tz, now: datetime) -> str | None:
    """``已逾期 · 处理完成 11-17 10:00`` for the nearest running clock (else how the clocks ended)."""
    clocks = document.get("sla") or {}
    running = [entry for entry in document.get("sla_open") or [] if entry.get("clock") in clocks]
    if running:
        clock = clocks[min(running, key=lambda entry: entry["due_at"])["clock"]]
    elif clocks:
        ended = list(clocks.values())
        clock = next((c for c in ended if state_at(c, now) == "missed"), ended[-1])
    else:
        return None
    due = clock["due_at"].astimezone(tz)
    return f"{STATE_LABELS[state_at(clock, now)]} · {clock.get('name', '')} {due.month}-{due.day} {due:%H:%M}"


LABEL_BATCH = 1000  # rows whose references (project, unit, user …) are named with one query per kind


def _column_cells(columns, actor: Actor, now: datetime, *, text_only: bool, unmasked: bool) -> list:
    """Per column, how a row's value becomes its cell: ``cell(document, values, labels)``. Decided once per
    export, not per cell; the shown form of a choice or yes/no is remembered per column."""
    deleted = _("（已删除）")
    cells = []
    for column in columns:
        if column.key == SLA_COLUMN:
            cells.append(lambda document, values, labels: sla_text(document, actor.tz, now))
            continue
        field_type = get_field_type(column.type)
        key = column.key
        if hasattr(field_type, "labels") and not (column.sensitive and not unmasked):
            def reference(document, values, labels, key=key):
                value = values.get(key)
                return None if value is None else neutralise(labels[key].get(value, deleted))
            cells.append(reference)
        elif field_type.finite_values and not column.sensitive:
            cells.append(_remembered(column, actor, text_only))
        else:
            cells.append(_plain(column, field_type, actor, text_only, unmasked))
    return cells


def _plain(column, field_type, actor: Actor, text_only: bool, unmasked: bool):
    """A column's cell with its type's export (masked for a sensitive field the actor may not see)."""
    key, tz = column.key, actor.tz
    masked = column.sensitive and not unmasked

    def cell(document, values, labels):
        value = values.get(key)
        if value is None or value == "" or value == []:
            return None
        if masked:
            return field_type.mask(value)
        shown = field_type.export_cell(value, tz)
        return neutralise(_as_text(shown) if text_only else shown)

    return cell


def _remembered(column, actor: Actor, text_only: bool):
    shown: dict = {}

    def cell(document, values, labels):
        value = values.get(column.key)
        token = tuple(value) if isinstance(value, list) else value
        if token not in shown:
            shown[token] = _cell(column, value, actor, text_only=text_only)
        return shown[token]

    return cell


def _readers(record_type: RecordType, columns, actor: Actor) -> list:
    """``(key, read(document, data, pii))`` of the exported columns only: core fields from the top of the record,
    configured ones through ``read_stored`` (decrypted when stored encrypted)."""
    readers = []
    for column in columns:
        if column.key == SLA_COLUMN:
            continue
        field_type = get_field_type(column.type)
        if column.core:
            def read(document, data, pii, key=column.key, from_storage=field_type.from_storage):
                stored = document.get(key)
                return None if stored is None else from_storage(stored)
        else:
            def read(document, data, pii, column=column, field_type=field_type):
                return read_stored(record_type, column, field_type, data, pii, actor)
        readers.append((column.key, read))
    return readers


def stored_paths(columns) -> list[str]:
    """What an export reads of each record: its columns' stored paths (a configured field may be in ``data`` or,
    encrypted, in ``pii``), the SLA clocks for the 时限 column — not the history, search index or other fields."""
    paths = []
    for column in columns:
        if column.key == SLA_COLUMN:
            paths += ["sla", "sla_open"]
        elif column.core:
            paths.append(column.path)
        else:
            paths += [f"data.{column.key}", f"pii.{column.key}"]
    return paths or ["_id"]


def _rows(record_type: RecordType, columns, query: RecordQuery, actor: Actor, *, text_only: bool):
    """The export's rows, in the query's order. Only the exported columns are read; references are named a batch
    of rows at a time (one query per reference column and batch), never one query per cell."""
    unmasked = actor.sees_pii(record_type.key)
    cells = _column_cells(columns, actor, utcnow(), text_only=text_only, unmasked=unmasked)
    readers = _readers(record_type, columns, actor)
    references = [c for c in columns if c.key != SLA_COLUMN and hasattr(get_field_type(c.type), "labels")
                  and not (c.sensitive and not unmasked)]
    batch = []

    def flush():
        labels = {c.key: get_field_type(c.type).labels(values.get(c.key) for _d, values in batch) for c in references}
        for document, values in batch:
            yield [cell(document, values, labels) for cell in cells]
        batch.clear()

    for document in iter_records(record_type.key, query, actor, fields=stored_paths(columns),
                                 action=Action.EXPORT.value):
        data, pii = document.get("data") or {}, document.get("pii") or {}
        batch.append((document, {key: read(document, data, pii) for key, read in readers}))
        if len(batch) >= LABEL_BATCH:
            yield from flush()
    yield from flush()


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
    (default: every field). ``progress(rows)`` is called every ``PROGRESS_EVERY`` rows (background exports)."""
    columns = export_columns(record_type, columns, include_inactive)
    headers = [neutralise(str(c.label)) for c in columns]
    now = utcnow()
    counter = {"rows": 0}
    description = describe_query(record_type, query, actor, view)

    def counted(rows):
        for row in rows:
            counter["rows"] += 1
            if progress is not None and counter["rows"] % PROGRESS_EVERY == 0:
                progress(counter["rows"])
            yield row
        audit("export", record_type, None, actor, extra={
            "at": now, "format": fmt, "filters": query_text(record_type, query), "description": description,
            "view": getattr(view, "key", None), "columns": [c.key for c in columns], "rows": counter["rows"]})

    rows = counted(_rows(record_type, columns, query, actor, text_only=(fmt == "csv")))
    if fmt == "csv":
        chunks = _csv_chunks(headers, rows)
    else:
        def notes():
            return [(_("记录类型"), record_type.name), (_("筛选条件"), "\n".join(description)),
                    (_("导出人"), actor.name), (_("导出时间"), now.astimezone(actor.tz).strftime("%Y-%m-%d %H:%M:%S")),
                    (_("行数"), counter["rows"]), (_("说明"), _("敏感字段按导出人的权限显示；以 = + - @ 开头的内容已加 ' 防止被当作公式"))]

        chunks = _xlsx_chunks(record_type, columns, headers, rows, notes)
    label = export_label(query, view)
    return Export(chunks=chunks, mimetype=FORMATS[fmt], filename=export_filename(record_type, fmt, now, actor, label),
                  counter=counter)


def _csv_chunks(headers: list[str], rows) -> Iterator[bytes]:
    buffer = io.StringIO()
    # RFC 4180: CRLF rows; a cell with a comma, quote or line break is quoted (its line breaks kept).
    writer = csv.writer(buffer, lineterminator="\r\n")
    # UTF-8 with BOM: Excel on Windows opens Chinese correctly only with it.
    yield "\ufeff".encode("utf-8")
    writer.writerow(headers)
    for count, row in enumerate(rows, start=1):
        writer.writerow(["" if cell is None else cell for cell in row])
        if count % 500 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def _text_width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _width(column) -> int:
    """A sensible Excel column width: by the field's type (``export_width``), never narrower than its header."""
    base = 26 if column.key == SLA_COLUMN else get_field_type(column.type).export_width
    return min(60, max(base, _text_width(str(column.label)) + 3))


def sheet_title(name: str) -> str:
    """An Excel sheet name: at most 31 characters, none of ``[]:*?/\\``."""
    return re.sub(r"[\[\]:*?/\\]", "-", name)[:31] or "Sheet1"


def _xlsx_chunks(record_type: RecordType, columns, headers: list[str], rows, notes) -> Iterator[bytes]:
    """The workbook, written row by row by XlsxWriter in constant-memory mode to a temporary file, then streamed.

    Each column is written with the method its type calls for, decided once: dates and times as Excel dates,
    numbers (money with its ¥ format) as numbers, the rest as text — never as a formula.
    """
    import xlsxwriter  # optional: ~50 ms to import, needed only by the XLSX exports, not by every process

    with tempfile.TemporaryFile() as spool:
        workbook = xlsxwriter.Workbook(spool, {"constant_memory": True, "strings_to_formulas": False,
                                               "strings_to_urls": False, "strings_to_numbers": False})
        sheet = workbook.add_worksheet(sheet_title(record_type.name))
        header = workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        writers = []
        for index, column in enumerate(columns):
            sheet.set_column(index, index, _width(column))
            field_type = get_field_type(column.type)
            number_format = field_type.export_number_format
            writers.append(_xlsx_writer(sheet, field_type, workbook.add_format({"num_format": number_format})
                                        if number_format else None))
        sheet.freeze_panes(1, 0)
        sheet.write_row(0, 0, headers, header)
        count = 0
        for count, row in enumerate(rows, start=1):
            for index, cell in enumerate(row):
                if cell is not None:
                    writers[index](count, index, cell)
        sheet.autofilter(0, 0, count, max(0, len(columns) - 1))
        about = workbook.add_worksheet(sheet_title(str(_("导出说明"))))
        about.set_column(0, 0, 12)
        about.set_column(1, 1, 80)
        bold, wrap = workbook.add_format({"bold": True}), workbook.add_format({"text_wrap": True, "valign": "top"})
        for line, (name, value) in enumerate(notes()):
            about.write_string(line, 0, str(name), bold)
            if isinstance(value, (int, float)):
                about.write_number(line, 1, value, wrap)
            else:
                about.write_string(line, 1, str(neutralise(value)), wrap)
        workbook.close()
        spool.seek(0)
        while chunk := spool.read(256 * 1024):
            yield chunk


def _xlsx_writer(sheet, field_type, cell_format):
    """How one column's cells are written, decided once: Excel dates, numbers in their format, or text."""
    if field_type.export_dates:
        def write(row: int, column: int, cell) -> None:
            if isinstance(cell, (datetime, date)):
                sheet.write_datetime(row, column, cell, cell_format)
            else:
                sheet.write_string(row, column, str(cell))
    elif cell_format is not None:
        def write(row: int, column: int, cell) -> None:
            if isinstance(cell, (int, float, Decimal)) and not isinstance(cell, bool):
                sheet.write_number(row, column, float(cell), cell_format)
            else:
                sheet.write_string(row, column, str(cell))
    else:
        write_string = sheet.write_string

        def write(row: int, column: int, cell) -> None:
            write_string(row, column, cell if isinstance(cell, str) else str(cell))
    return write
