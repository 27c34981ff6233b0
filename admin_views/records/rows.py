"""A record as the record screens show it: its row, its fields' labels, the 时限 column."""
from __future__ import annotations

from kefu.core.i18n import in_user_language
from kefu.records.actor import Actor
from kefu.records.query import SLA_SORT
from kefu.records.types import RecordType
from kefu.records.values import core_values, read_values
from kefu.rules.sla import SLA_COLUMN

SORT_FIELDS = {SLA_COLUMN: SLA_SORT}  # list columns that sort by another key


class RecordRow:
    """A stored record as a screen shows it: Python values of core and configured fields — of the configured
    fields only those named in ``keys`` when given (a list row reads its columns, not every field: a sensitive one is
    decrypted only when shown) — and the labels of its references (``{field key: {id: label}}``, set by the screen
    for a whole page at once; empty: look each up)."""

    def __init__(self, record_type: RecordType, document: dict, actor: Actor, keys=None):
        self.document = document
        self.id = str(document["_id"])
        self.version = document["version"]
        self.values = {**core_values(document), **read_values(record_type, document, actor, keys)}
        self.labels: dict = {}
        self.cells: dict = {}  # how a list shows each column (set by the list for its whole page)


def field_label(definition) -> str:
    """The field's label in the user's language (its ``label_en`` for English, when the definition has one)."""
    return in_user_language(str(definition.label), getattr(definition, "label_en", None))
