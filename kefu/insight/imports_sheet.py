"""Reading an uploaded spreadsheet for an import (``kefu.insight.imports``): the first sheet of an XLSX, or a CSV as
Chinese Excel saves it (UTF-8 with or without a BOM, else GBK/GB18030; comma, tab or semicolon separated).

The first row holds the headers; every later row that is not blank is a data row, numbered as the spreadsheet
numbers it (the header is row 1), so a problem is reported at the row the person sees. Cells come as Python values:
text stripped (a blank cell is None), and from an XLSX numbers, dates and yes/no as the cells hold them — the field
types accept those (``kefu.records.fields``: 13812345678.0 loses its ".0", a date cell is a date).
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterator

from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l

FORMATS = ("xlsx", "csv")
MAX_COLUMNS = 200
CSV_ENCODINGS = ("utf-8-sig", "gb18030")  # GB18030 reads every GBK file (what Chinese Excel writes as "CSV")
# Marks people put on a header that are no part of the field's name: "联系电话*", "业主姓名（必填）".
_HEADER_MARKS = re.compile(r"(\s*[*＊]\s*|\s*[（(]\s*(必填|选填|可选|required|optional)\s*[)）]\s*)+$", re.IGNORECASE)


@dataclass(frozen=True)
class SheetRow:
    """One data row: its number in the spreadsheet and its cells, one per header (None for a blank cell)."""

    number: int
    cells: tuple


def format_of(filename: str) -> str:
    """``xlsx`` or ``csv`` from the file's name; ``ValidationFailed`` at ``file`` for anything else."""
    suffix = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    if suffix not in FORMATS:
        message = _l("请上传 Excel（.xlsx）或 CSV 文件；.xls 请先在 Excel 中另存为 .xlsx")
        raise ValidationFailed(message, {"file": message})
    return suffix


def header_key(text) -> str:
    """A header as it is compared with field names: full-width folded, trimmed, without a trailing ``*`` or
    ``（必填）``, lower case."""
    folded = unicodedata.normalize("NFKC", str(text or "")).strip()
    return _HEADER_MARKS.sub("", folded).strip().lower()


def _cell(value):
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _unreadable() -> ValidationFailed:
    message = _l("无法读取文件：请确认是 Excel（.xlsx）或 CSV 文件且未加密")
    return ValidationFailed(message, {"file": message})


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, tuple]]:
    from openpyxl import load_workbook  # optional: ~95 ms to import, needed only while an import reads its file
    from openpyxl.utils.exceptions import InvalidFileException  # optional: with load_workbook, for the same reason

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise _unreadable() from exc
    try:
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # some writers store a wrong size: read what the sheet holds
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, tuple(_cell(v) for v in values)
    finally:
        book.close()


def _decoded(data: bytes) -> str:
    for encoding in CSV_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _unreadable()


def _csv_rows(data: bytes) -> Iterator[tuple[int, tuple]]:
    text = _decoded(data)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        # A quoted cell may span lines: the row's number is the spreadsheet's (one per record), not the file's line.
        for number, values in enumerate(reader, start=1):
            yield number, tuple(_cell(v) for v in values)
    except csv.Error as exc:
        raise _unreadable() from exc


def read_sheet(data: bytes, fmt: str) -> tuple[list[str], Iterator[SheetRow]]:
    """``(headers, data rows)`` of the file; ``ValidationFailed`` at ``file`` for a file that cannot be read or has
    no header row. The rows are read lazily: the file is read once, as they are taken."""
    rows = _xlsx_rows(data) if fmt == "xlsx" else _csv_rows(data)
    first = next(rows, None)
    headers = [str(v).strip() if v is not None else "" for v in (first[1] if first else ())]
    while headers and not headers[-1]:
        headers.pop()
    if not any(headers):
        message = _l("文件第一行应为表头（字段名称），当前为空")
        raise ValidationFailed(message, {"file": message})
    if len(headers) > MAX_COLUMNS:
        message = _l("最多 %(n)s 列，文件有 %(count)s 列", n=MAX_COLUMNS, count=len(headers))
        raise ValidationFailed(message, {"file": message})
    width = len(headers)

    def data_rows() -> Iterator[SheetRow]:
        for number, values in rows:
            cells = (tuple(values[:width]) + (None,) * width)[:width]
            if any(cell is not None for cell in cells):
                yield SheetRow(number, cells)

    return headers, data_rows()


def column_letter(index: int) -> str:
    """The spreadsheet's name of column ``index`` (from 0): A, B, … Z, AA …"""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters
