"""The cells of an export, made a batch of records at a time, each column's conversion decided once per export.

``export_batches`` reads only what the exported columns need (``stored_paths``), in the query's order, the next
batches fetched while this one is converted (``read_ahead``), and yields batches of rows (one tuple of cells per
record, made as they are written). Each column has a plan, made once per export, that turns a whole batch's stored
values into that column's cells:

- references (project, unit, user …) are named through ``ReferenceNames``: each target once per export, those not
  met before with one query per kind of target and batch, never one per cell;
- a field with a few values (choices, yes/no) shows each value once per export and reuses it;
- moments are moved to the actor's zone in one step; dates and times are spreadsheet dates (text
  ``YYYY-MM-DD HH:MM`` in a CSV), numbers are numbers (text in a CSV), everything else is text — never a formula
  (``neutralise``) and never longer than a spreadsheet cell holds;
- sensitive values are masked unless the actor may see personal data in every record of the type, and values a
  record keeps encrypted (``pii``) are decrypted (``read_stored``).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from queue import Full, Queue
from typing import Callable, Iterator

import bson

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.i18n import _, _l
from kefu.org.roles import Action
from kefu.records.actor import Actor
from kefu.records.fields import FieldType, get_field_type
from kefu.records.query import RecordQuery, iter_records
from kefu.records.references import is_reference, reference_labels
from kefu.records.store import RECORDS
from kefu.records.types import RecordType
from kefu.records.values import decrypt_stored, read_stored
from kefu.rules.sla import SLA_COLUMN, STATE_LABELS, nearest_clock, state_at

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BATCH = 1000  # records read, named and converted together
READ_AHEAD = 2  # batches fetched ahead of the one being converted
NAMES_KEPT = 10_000  # reference names an export keeps per column between batches (then it starts afresh)
EXCEL_TEXT_MAX = 32767  # UTF-16 code units in one spreadsheet cell
NOTHING: dict = {}


def neutralise(cell):
    """A text cell a spreadsheet would evaluate (``=``, ``+``, ``-``, ``@``) gets a leading apostrophe."""
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell


def as_text(cell) -> str:
    """A CSV cell: numbers plain (Excel reads them as numbers), times as local ``YYYY-MM-DD HH:MM``."""
    if isinstance(cell, datetime):
        return cell.isoformat(" ", "minutes")[:16]
    if isinstance(cell, date):
        return cell.isoformat()
    return str(cell)


def excel_text(text: str) -> str:
    """``text`` cut to what one spreadsheet cell holds (32,767 UTF-16 code units), as XlsxWriter cut it."""
    if len(text) <= EXCEL_TEXT_MAX // 2 or len(text.encode("utf-16-le")) <= 2 * EXCEL_TEXT_MAX:
        return text
    return text.encode("utf-16-le")[:2 * EXCEL_TEXT_MAX].decode("utf-16-le", errors="ignore")


@dataclass(frozen=True)
class SlaColumn:
    """The list's 时限 column: the nearest running deadline's state, as text."""

    key: str = SLA_COLUMN
    label: object = _l("时限")
    type: str = "text"
    sensitive: bool = False


def sla_text(document: dict, tz, now: datetime) -> str | None:
    """``已逾期 · 处理完成 11-17 10:00`` for the nearest running clock (else how the clocks ended)."""
    clock = nearest_clock(document, now)
    if clock is None:
        return None
    due = clock["due_at"].astimezone(tz)
    return f"{STATE_LABELS[state_at(clock, now)]} · {clock.get('name', '')} {due.month}-{due.day} {due:%H:%M}"


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


class Batch:
    """Records as the column plans read them: the documents, their ``data`` and ``pii`` parts, and the keys any of
    them keeps encrypted (only those columns look into ``pii``)."""

    __slots__ = ("documents", "datas", "piis", "encrypted")

    def __init__(self, documents: list[dict]):
        self.documents = documents
        self.datas = [document.get("data") or NOTHING for document in documents]
        self.piis = [document.get("pii") or NOTHING for document in documents]
        self.encrypted = set().union(*self.piis)


@dataclass(frozen=True)
class ColumnPlan:
    """How one column's cells are made for a batch, decided once per export: ``read(batch)`` gives the batch's
    values, ``make(values)`` their cells — or, for a reference the actor may see named (``make`` None), the
    export's ``ReferenceNames``."""

    column: object
    read: Callable[[Batch], list]
    make: Callable[[list], list] | None


def _stored_values(record_type: RecordType, column, field_type, actor: Actor, *, as_stored: bool = False,
                   text: bool = False) -> Callable[[Batch], list]:
    """A batch's Python values of one column: core fields from the top of the record, configured ones from ``data``
    or, where a record keeps the field encrypted, decrypted from ``pii`` (``read_stored``). ``as_stored``: the values
    in ``data`` as they are stored (the cells convert them). ``text``: an encrypted value whose JSON is text is that
    text as saved — checked when it was saved, as a value in ``data`` is (any other goes through ``read_stored``)."""
    # A type that keeps its stored values as they are (text, choices) skips a call per cell.
    keeps = as_stored or type(field_type).from_storage is FieldType.from_storage
    convert = None if keeps else field_type.from_storage
    path, key = column.path, column.key

    def decrypted(pii: dict):
        if text:
            loaded = decrypt_stored(record_type, key, pii[key], actor)
            if loaded.__class__ is str:
                return loaded
        return read_stored(record_type, column, field_type, NOTHING, pii, actor)

    def values(batch: Batch) -> list:
        if column.core:
            stored = [document.get(path) for document in batch.documents]
        else:
            stored = [data.get(key) for data in batch.datas]
        if convert is not None:
            stored = [None if value is None else convert(value) for value in stored]
        if not column.core and key in batch.encrypted:
            stored = [value if pii.get(key) is None else decrypted(pii) for value, pii in zip(stored, batch.piis)]
        return stored

    return values


def _masked_cells(field_type):
    mask = field_type.mask
    # A mask keeps a character or two of the value (an e-mail's first one may be ``=``): neutralised like any text.
    return lambda values: [None if value is None or value == "" or value == [] else neutralise(mask(value))
                           for value in values]


def _remembered_cells(field_type, actor: Actor, text_only: bool):
    """A field with a few values, read as stored: each value is converted (``from_storage``) and made a cell once per
    export, then reused."""
    shown: dict = {}
    plain, convert = _plain_cells(field_type, actor, text_only), field_type.from_storage

    def remember(token, value):
        shown[token] = plain([None if value is None else convert(value)])[0]
        return shown[token]

    def cells(values: list) -> list:
        tokens = [tuple(value) if value.__class__ is list else value for value in values]
        return [shown[token] if token in shown else remember(token, value) for token, value in zip(tokens, values)]

    return cells


def _finish(field_type, text_only: bool) -> Callable:
    """What becomes of an export cell that is not text: a CSV's text (``as_text``), else the spreadsheet date
    (``export_dates``) or number (``holds_numbers``) it is, or its text."""
    if text_only:
        return as_text
    if field_type.export_dates:
        return lambda cell: cell if isinstance(cell, (datetime, date)) else str(cell)
    if field_type.holds_numbers:
        return lambda cell: (cell if isinstance(cell, (int, float, Decimal)) and not isinstance(cell, bool)
                             else str(cell))
    return str


def _plain_cells(field_type, actor: Actor, text_only: bool):
    """The type's export cell (``export_cell``) in the form the file keeps it (``_finish``); text that a spreadsheet
    would run is neutralised, and cut to what a spreadsheet cell holds."""
    export_cell, tz, finish = field_type.export_cell, actor.tz, _finish(field_type, text_only)

    def cells(values: list) -> list:
        made = []
        for value in values:
            if value is None or value == "" or value == []:
                made.append(None)
                continue
            cell = export_cell(value, tz)
            if cell.__class__ is str:
                cell = neutralise(cell)
                if not text_only and len(cell) > EXCEL_TEXT_MAX // 2:
                    cell = excel_text(cell)
            elif cell is not None:
                # A number or a time, as CSV text or a spreadsheet cell: never a formula (a negative amount is
                # written -12.50, which Excel reads as a number).
                cell = finish(cell)
            made.append(cell)
        return made

    return cells


def _text_cells(field_type, actor: Actor, text_only: bool):
    """A type whose export cell is its value's text (the default ``export_cell`` and ``display``): text values are
    their own cells (neutralised), without a call per cell; anything else goes the way of ``_plain_cells``."""
    plain = _plain_cells(field_type, actor, text_only)
    longest = None if text_only else EXCEL_TEXT_MAX // 2

    def cells(values: list) -> list:
        return [None if value is None or value == "" else
                (("'" + value) if value.startswith(FORMULA_PREFIXES) else value)
                if value.__class__ is str and (longest is None or len(value) <= longest) else
                plain([value])[0] for value in values]

    return cells


def _moment_cells(field_type, actor: Actor, text_only: bool):
    """Moments (``has_time_of_day``), as stored — aware times — moved to the actor's zone in one step: the CSV text
    ``YYYY-MM-DD HH:MM``, or the spreadsheet date (the writer keeps the wall time). What ``export_cell`` makes of
    them, without three calls per cell; any other value goes the way of ``_plain_cells`` (after ``from_storage``)."""
    plain, convert, tz = _plain_cells(field_type, actor, text_only), field_type.from_storage, actor.tz

    def other(value):
        return plain([convert(value)])[0]

    if text_only:
        return lambda values: [None if value is None else value.astimezone(tz).isoformat(" ", "minutes")[:16]
                               if value.__class__ is datetime and value.tzinfo is not None else other(value)
                               for value in values]
    return lambda values: [None if value is None else value.astimezone(tz)
                           if value.__class__ is datetime and value.tzinfo is not None else other(value)
                           for value in values]


def _cells_are_text(field_type) -> bool:
    kind = type(field_type)
    return kind.export_cell is FieldType.export_cell and kind.display is FieldType.display


def column_plan(record_type: RecordType, column, actor: Actor, now: datetime, *, text_only: bool,
                unmasked: bool) -> ColumnPlan:
    """How one column's cells are made, decided once per export (``unmasked``: the actor sees personal data)."""
    if column.key == SLA_COLUMN:
        tz = actor.tz
        return ColumnPlan(column, lambda batch: batch.documents,
                          lambda documents: [sla_text(document, tz, now) for document in documents])
    field_type = get_field_type(column.type)
    masked = column.sensitive and not unmasked
    if field_type.has_time_of_day and field_type.export_dates and not masked:
        return ColumnPlan(column, _stored_values(record_type, column, field_type, actor, as_stored=True),
                          _moment_cells(field_type, actor, text_only))
    if field_type.finite_values and not column.sensitive:
        return ColumnPlan(column, _stored_values(record_type, column, field_type, actor, as_stored=True),
                          _remembered_cells(field_type, actor, text_only))
    if is_reference(column) and not masked:
        return ColumnPlan(column, _stored_values(record_type, column, field_type, actor, as_stored=True), None)
    text = _cells_are_text(field_type)
    read = _stored_values(record_type, column, field_type, actor, text=text)
    if masked:
        return ColumnPlan(column, read, _masked_cells(field_type))
    if text:
        return ColumnPlan(column, read, _text_cells(field_type, actor, text_only))
    return ColumnPlan(column, read, _plain_cells(field_type, actor, text_only))


_UNKNOWN = object()


class ReferenceNames:
    """The names of the references an export meets, each target asked for once: those a batch meets for the first
    time with one query per kind of target (``reference_labels``), kept for the rest of the export (at most
    ``NAMES_KEPT`` per column, then that column starts afresh). The values come as stored and are converted
    (``from_storage``) only when asked for. A removed target reads （已删除）; a name is never run as a formula."""

    def __init__(self):
        self.known: dict[str, dict] = {}
        self.deleted = _("（已删除）")

    def cells(self, columns_values: list[tuple[object, list]]) -> list[list]:
        """The cells of each ``(column, values)``: one look-up per value, a query only for targets not met yet."""
        made, missing = [], []
        for column, values in columns_values:
            known = self.known.setdefault(column.key, {})
            cells = [None if value is None else known.get(value, _UNKNOWN) for value in values]
            gaps = [index for index, cell in enumerate(cells) if cell is _UNKNOWN]
            targets = {values[index] for index in gaps}
            convert = get_field_type(column.type).from_storage
            targets = {value: convert(value) for value in targets}
            made.append((column, values, cells, gaps, targets))
            missing += [{column.key: target} for target in targets.values()]
        if missing:
            found = reference_labels([column for column, *_rest in made], missing)
            for column, values, cells, gaps, targets in made:
                self._fill(column.key, found.get(column.key) or NOTHING, values, cells, gaps, targets)
        return [cells for _column, _values, cells, _gaps, _targets in made]

    def _fill(self, key: str, found: dict, values: list, cells: list, gaps: list[int], targets: dict) -> None:
        known = self.known[key]
        if len(known) + len(targets) > NAMES_KEPT:
            known.clear()
        for value, target in targets.items():
            known[value] = neutralise(found[target]) if target in found else self.deleted
        for index in gaps:
            cells[index] = known[values[index]]


class Rows:
    """A batch's rows: ``len()`` of them, each a tuple of cells made as the rows are iterated (one at a time, so
    nothing of a row outlives its writing)."""

    __slots__ = ("count", "columns")

    def __init__(self, count: int, columns: list[list]):
        self.count, self.columns = count, columns

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[tuple]:
        return zip(*self.columns)


def batch_rows(plans: list[ColumnPlan], names: ReferenceNames, documents: list[dict]) -> Rows:
    """The rows of ``documents``, made column by column (the references through ``names``)."""
    batch = Batch(documents)
    values = [plan.read(batch) for plan in plans]
    named = iter(names.cells([(plan.column, column_values) for plan, column_values in zip(plans, values)
                              if plan.make is None]))
    return Rows(len(documents), [next(named) if plan.make is None else plan.make(column_values)
                                 for plan, column_values in zip(plans, values)])


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


_DONE = object()


def read_ahead(batches: Iterator[bytes], codec_options) -> Iterator[list[dict]]:
    """The documents of ``batches`` (undecoded BSON, one server batch each), decoded here while a thread fetches
    the next ones: the database's share of an export — finding, sorting, sending — overlaps the conversion instead
    of adding to it. The thread only waits on the network (decoding stays with the caller), so the two barely
    contend for the interpreter. The first batch is fetched here (the query starts in the caller's context); an
    error of the thread is raised here, and a caller that stops early stops the thread, which closes the cursor."""
    first = next(batches, _DONE)
    if first is _DONE:
        return
    fetched: Queue = Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                fetched.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def fetch() -> None:
        try:
            for raw in batches:
                if not hand_over(raw):
                    return
            hand_over(_DONE)
        except BaseException as error:  # handed to the caller, who raises it
            hand_over(_Failed(error))
        finally:
            batches.close()

    fetcher = threading.Thread(target=fetch, name="export-read-ahead", daemon=True)
    fetcher.start()
    try:
        raw = first
        while raw is not _DONE:
            if isinstance(raw, _Failed):
                raise raw.error
            yield bson.decode_all(raw, codec_options)
            raw = fetched.get()
    finally:
        stop.set()
        fetcher.join()


def export_batches(record_type: RecordType, columns, query: RecordQuery, actor: Actor, *,
                   text_only: bool) -> Iterator[Rows]:
    """The export's rows in the query's order, up to ``BATCH`` rows (tuples of cells) at a time.
    ``text_only``: every cell as CSV text (else spreadsheet dates and numbers)."""
    # Unmasked only where the roles show personal data in every record they may export, not only read.
    unmasked = actor.access.sees_pii(record_type.key, shown_by=Action.EXPORT.value)
    now = utcnow()
    plans = [column_plan(record_type, column, actor, now, text_only=text_only, unmasked=unmasked)
             for column in columns]
    names = ReferenceNames()
    batches = iter_records(record_type.key, query, actor, batch_size=BATCH, fields=stored_paths(columns),
                           action=Action.EXPORT.value, raw_batches=True)
    # Times come aware, in UTC (as the client reads them) but without its conversion to one UTC zone object:
    # each column moves them to the reader's zone anyway.
    codec_options = get_database()[RECORDS].codec_options.with_options(tzinfo=None)
    for documents in read_ahead(batches, codec_options):
        if documents:
            yield batch_rows(plans, names, documents)
