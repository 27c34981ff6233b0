"""One pass of an import over its rows (``kefu.insight.imports``): each row checked by its target, recognised when
it was written before, and — when writing — written; every problem noted at its cell.

A row's key is ``<target>:<identity>``: the identity the target finds in the row (a record number, a phone …), or
the digest of the row's mapped cells with its occurrence in the file (the second of two identical rows is
``…#2``), so that the same file gives the same keys each time, whatever else changed around it.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Callable, Iterable

from mongoengine import ValidationError as DocumentInvalid
from pymongo.errors import DuplicateKeyError

from kefu.core.errors import DomainError, ValidationFailed
from kefu.core.i18n import _l
from kefu.insight.imports_sheet import SheetRow
from kefu.records.actor import Actor

PROGRESS_EVERY = 50


def row_digest(raw: dict) -> str:
    """A row's digest: its mapped cells as text."""
    text = json.dumps(sorted((k, str(v)) for k, v in raw.items()), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def process(target, actor: Actor, rows: Iterable[SheetRow], mapping: dict[int, str], *, write: bool, job_key: str,
            note: Callable, progress: Callable[[int], None]) -> Counter:
    """Check (and with ``write`` write) every row; return the counts: ``valid`` (rows without problems, not written
    before), ``invalid``, ``existing`` (written before, or repeating an earlier row of the file: skipped) and
    ``written``. ``note(row number, field key, message, cell)`` is called for each problem,
    ``progress(rows done)`` now and then."""
    counts, occurrences, first_rows = Counter(), Counter(), {}
    done = 0
    for row in rows:
        done += 1
        if done % PROGRESS_EVERY == 0:
            progress(done)
        raw = {key: row.cells[index] for index, key in mapping.items() if row.cells[index] is not None}
        try:
            prepared = target.prepare(raw, actor)
        except ValidationFailed as exc:
            counts["invalid"] += 1
            for key, message in (exc.fields or {"": exc.message}).items():
                note(row.number, key, str(message), raw.get(key))
            continue
        digest = row_digest(raw)
        occurrences[digest] += 1
        key = f"{target.key}:{prepared.identity or f'row:{digest}#{occurrences[digest]}'}"
        if key in first_rows or target.exists(prepared, key):
            counts["existing"] += 1
            continue
        first_rows[key] = row.number
        counts["valid"] += 1
        if write:
            _write(target, actor, prepared, key, {"import": job_key, "row": row.number}, counts,
                   lambda k, m: note(row.number, k, m, raw.get(k)))
    progress(done)
    return counts


def _write(target, actor, prepared, key: str, where: dict, counts: Counter, note: Callable) -> None:
    """Write one checked row; what refuses it now (the data changed since the check) is noted at its field."""
    try:
        target.write(prepared, key, actor, where)
    except DuplicateKeyError:  # the same row written meanwhile by another run of the same file
        counts["valid"] -= 1
        counts["existing"] += 1
        return
    except DomainError as exc:
        counts["valid"] -= 1
        counts["invalid"] += 1
        for field_key, message in (exc.fields or {"": exc.message}).items():
            note(field_key, str(message))
        return
    except DocumentInvalid as exc:  # the organisation's documents check themselves on save
        counts["valid"] -= 1
        counts["invalid"] += 1
        note("", str(_l("未能保存：%(reason)s", reason=str(exc))))
        return
    counts["written"] += 1
