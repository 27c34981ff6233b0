"""Records as JSON and as spreadsheets (CSV with BOM, XLSX), streamed in constant memory.

The columns are the record type's current fields, labels as headers; the rows
are exactly what ``find_records`` returns for the same query, in its order.
Sensitive values are masked unless the actor may see personal data, cells
that a spreadsheet would run as a formula are neutralised, and every export
is written to the audit log.
"""
from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterator
from urllib.parse import quote

from kefu.clock import utcnow
from kefu.db import get_database
from kefu.fields import get_field_type
from kefu.record_types import RecordType
from kefu.records import AUDIT, Actor, RecordQuery, core_fields, core_values, iter_records, read_values
from kefu.sla import clocks_json

FORMATS = {"csv": "text/csv",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CORE_JSON = ("number", "status", "assignee", "department", "customer", "created_at", "created_by", "updated_at")


def _shown(definition, value, actor: Actor):
    field_type = get_field_type(definition.type)
    if definition.sensitive and not actor.can_view_pii:
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
    for definition in record_type.fields:
        value = values.get(definition.key)
        if definition.active or value is not None:
            body[definition.key] = _shown(definition, value, actor) if value not in (None, "", []) else None
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


def export_columns(record_type: RecordType, include_inactive: bool = False) -> list:
    core = [f for f in core_fields(record_type) if f.key in ("number", "status", "assignee", "department", "customer",
                                                  "created_at", "updated_at")]
    configured = [f for f in record_type.fields if f.active or include_inactive]
    return [*core, *configured]


def _cell(definition, value, actor: Actor, *, text_only: bool):
    if value in (None, "", []):
        return None
    field_type = get_field_type(definition.type)
    if definition.sensitive and not actor.can_view_pii:
        return field_type.mask(value)
    cell = field_type.export_cell(value, actor.tz)
    return neutralise(_as_text(cell) if text_only else cell)


def _as_text(cell) -> str:
    """A CSV cell: numbers plain (Excel reads them as numbers), times as local ``YYYY-MM-DD HH:MM``."""
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d %H:%M")
    if isinstance(cell, date):
        return cell.isoformat()
    return str(cell)


def _rows(record_type: RecordType, columns, query: RecordQuery, actor: Actor, *, text_only: bool):
    for document in iter_records(record_type.key, query, actor):
        values = {**core_values(document), **read_values(record_type, document, actor)}
        yield [_cell(c, values.get(c.key), actor, text_only=text_only) for c in columns]


@dataclass
class Export:
    chunks: Iterator[bytes]
    mimetype: str
    filename: str

    @property
    def content_disposition(self) -> str:
        # RFC 5987: an ASCII fallback plus the UTF-8 (Chinese) name.
        ascii_name = "export." + self.filename.rsplit(".", 1)[-1]
        return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(self.filename)}"


def export_filename(record_type: RecordType, fmt: str, moment: datetime, actor: Actor) -> str:
    return f"{record_type.name}_{moment.astimezone(actor.tz):%Y%m%d}.{fmt}"


def export_records(record_type: RecordType, query: RecordQuery, actor: Actor, fmt: str,
                   filters_text: str = "", include_inactive: bool = False) -> Export:
    """A streamed export of every record matching ``query`` (all pages), audited."""
    columns = export_columns(record_type, include_inactive)
    headers = [str(c.label) for c in columns]
    now = utcnow()
    counter = {"rows": 0}

    def counted(rows):
        for row in rows:
            counter["rows"] += 1
            yield row
        get_database()[AUDIT].insert_one({
            "record_id": None, "record_type": record_type.key, "action": "export", "at": now,
            "by": actor.user_id, "by_name": actor.name, "format": fmt, "filters": filters_text,
            "rows": counter["rows"], "changes": [],
        })

    rows = counted(_rows(record_type, columns, query, actor, text_only=(fmt == "csv")))
    chunks = _csv_chunks(headers, rows) if fmt == "csv" else _xlsx_chunks(record_type, columns, headers, rows)
    return Export(chunks=chunks, mimetype=FORMATS[fmt], filename=export_filename(record_type, fmt, now, actor))


def _csv_chunks(headers: list[str], rows) -> Iterator[bytes]:
    buffer = io.StringIO()
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


def _xlsx_chunks(record_type: RecordType, columns, headers: list[str], rows) -> Iterator[bytes]:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=record_type.name[:31])
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    sheet.append([_styled(WriteOnlyCell(sheet, value=h), font=bold) for h in headers])
    formats = [get_field_type(c.type).export_number_format for c in columns]
    for row in rows:
        sheet.append([_styled(WriteOnlyCell(sheet, value=cell), number_format=fmt) if fmt and cell is not None
                      else cell for cell, fmt in zip(row, formats)])
    # openpyxl's write-only mode writes rows to a temporary file as it goes;
    # the workbook is then streamed from disk, not held in memory.
    with tempfile.TemporaryFile() as spool:
        workbook.save(spool)
        spool.seek(0)
        while chunk := spool.read(256 * 1024):
            yield chunk


def _styled(cell, font=None, number_format=None):
    if font is not None:
        cell.font = font
    if number_format is not None:
        cell.number_format = number_format
    return cell

