"""The record list's filters: one per field and operator, and the 逾期 / 即将到期 flags."""
from __future__ import annotations

from flask_admin.model.filters import BaseFilter

from kefu.core.i18n import _, _l
from kefu.records.fields import OPERATORS
from kefu.records.query import Condition, RecordQuery

FILTER_WIDGETS = {"date": "datepicker", "datetime": "datetimepicker"}
# Flask-Admin's filter script inserts a filter's name as HTML (``bs4_filters.js``: ``.append(name)``): the angle
# brackets of an admin-written label are shown as their full-width forms, so no label becomes a tag.
MARKUP_FREE = str.maketrans({"<": "＜", ">": "＞"})


class FieldFilter(BaseFilter):
    """A list filter ``[field, op, value]``; the query itself is built by ``kefu.records.query``."""

    def __init__(self, definition, op: str, label: str, options=None):
        field_type = definition.type
        if op in ("empty", "not_empty"):
            options = (("1", _("是")), ("0", _("否")))
        super().__init__(str(label).translate(MARKUP_FREE), options=options,
                         data_type=None if options else FILTER_WIDGETS.get(field_type))
        self.field_key = definition.key
        self.op = op

    def operation(self):
        return OPERATORS[self.op].reads

    def apply(self, query: RecordQuery, value) -> RecordQuery:
        """Add this filter's condition to the query ``kefu.records.query.find_records`` runs."""
        query.conditions.append(self.condition(value))
        return query

    def condition(self, value) -> Condition:
        """The condition this filter stands for with ``value``; 为空：否 is the condition 不为空."""
        if self.op in ("empty", "not_empty") and value == "0":
            return Condition(self.field_key, "not_empty" if self.op == "empty" else "empty")
        return Condition(self.field_key, self.op, value)


class SlaFilter(BaseFilter):
    """逾期 / 即将到期（是）: sets ``RecordQuery.overdue`` / ``due_soon`` — the API's ``overdue`` / ``due_soon``."""

    LABELS = {"overdue": _l("逾期"), "due_soon": _l("即将到期")}

    def __init__(self, flag: str):
        super().__init__(str(self.LABELS[flag]), options=(("1", _("是")),))
        self.flag = flag

    def operation(self):
        return OPERATORS["eq"].reads

    def apply(self, query: RecordQuery, value) -> RecordQuery:
        if value == "1":
            setattr(query, self.flag, True)
        return query
