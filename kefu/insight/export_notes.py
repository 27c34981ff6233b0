"""What an export says about itself — its filters, search and sort — in the 导出说明 sheet, the file name and
the audit log; the values of sensitive fields and the long digit runs of a search (a phone or ID number) masked."""
from __future__ import annotations

import re

from kefu.core.i18n import _
from kefu.core.validation import mask_id_number, mask_phone
from kefu.records.actor import Actor
from kefu.records.core_fields import field_for
from kefu.records.fields import OPERATORS, get_field_type
from kefu.records.query import SLA_SORT, RecordQuery
from kefu.records.types import RecordType

# A phone (7–8 digit landline, 11 digit mobile) or ID number (15 or 18, maybe ending in X) typed into a search;
# shorter runs stay readable: a record number's parts (TS-202611-0001), an amount.
DIGIT_RUN = re.compile(r"\d{7,}[Xx]?")


def _masked_run(found) -> str:
    run = found.group()
    return mask_id_number(run) if len(run) in (15, 18) else mask_phone(run)


def mask_digits(text: str) -> str:
    """``text`` with every run of seven or more digits masked as the phone (``138****8000``) or ID number it may
    be: a search may be one."""
    return DIGIT_RUN.sub(_masked_run, text)


def _masked_value(field_type, value) -> str:
    values = value if isinstance(value, list) else [value]
    return "、".join(field_type.mask(str(v)) for v in values)


def _filter_value_text(record_type: RecordType, condition, actor: Actor) -> str:
    if condition.op in ("empty", "not_empty"):
        return ""
    definition = field_for(record_type, condition.field)
    field_type = get_field_type(definition.type)
    raw = condition.value
    if definition.sensitive:
        return _masked_value(field_type, raw)
    if hasattr(field_type, "labels"):
        try:
            ids = raw if isinstance(raw, list) else str(raw).split(",")
            labels = field_type.labels(field_type.clean(i, definition, actor.field_context()) for i in ids)
            return "、".join(labels.values()) or str(raw)
        except Exception:  # a name typed by hand: shown as typed
            return str(raw)
    return "、".join(map(str, raw)) if isinstance(raw, list) else str(raw)


def describe_query(record_type: RecordType, query: RecordQuery, actor: Actor, view=None) -> list[str]:
    """The filters, search and sort of ``query`` as lines a person reads (the 导出说明 sheet, the audit log); the
    values of sensitive fields and the long digit runs of a search are masked."""
    lines = []
    if view is not None:
        lines.append(f"{_('视图')}：{view.name}")
    for condition in query.conditions:
        label = str(field_for(record_type, condition.field).label)
        value = _filter_value_text(record_type, condition, actor)
        reads = OPERATORS[condition.op].reads if condition.op in OPERATORS else condition.op
        lines.append(f"{label} {reads} {value}".rstrip())
    if query.overdue:
        lines.append(_("逾期：是"))
    if query.due_soon:
        lines.append(_("即将到期：是"))
    if query.due_within is not None:
        lines.append(_("%(hours)s 小时内到期", hours=round(query.due_within.total_seconds() / 3600, 1)))
    if query.q:
        lines.append(f"{_('搜索')}：{mask_digits(query.q)}")
    if query.sort:
        key = query.sort.lstrip("-")
        label = _("时限") if key == SLA_SORT else str(field_for(record_type, key).label)
        lines.append(f"{_('排序')}：{label}（{_('降序') if query.sort.startswith('-') else _('升序')}）")
    for dropped in getattr(view, "dropped", None) or []:
        lines.append(dropped)
    return lines or [_("全部记录（无筛选）")]


def query_text(record_type: RecordType, query: RecordQuery) -> str:
    """``query`` in the API's list parameters (``category=工程质量&phone=138****8000&sort=-created_at``), for the
    audit log: the values of sensitive fields and the long digit runs of a search masked."""
    pairs = []
    for condition in query.conditions:
        name = condition.field if condition.op == "eq" else f"{condition.field}__{condition.op}"
        definition = field_for(record_type, condition.field)
        if definition.sensitive:
            value = _masked_value(get_field_type(definition.type), condition.value)
        else:
            value = ",".join(map(str, condition.value)) if isinstance(condition.value, list) else condition.value
        pairs.append((name, "" if value is None else str(value)))
    pairs += [(flag, "true") for flag in ("overdue", "due_soon") if getattr(query, flag)]
    if query.due_within is not None:
        pairs.append(("due_within_hours", f"{query.due_within.total_seconds() / 3600:g}"))
    if query.q:
        pairs.append(("q", mask_digits(query.q)))
    if query.sort:
        pairs.append(("sort", query.sort))
    return "&".join(f"{name}={value}" for name, value in pairs)


def export_label(query: RecordQuery, view=None) -> str | None:
    """What the file name says about the rows: the view's name, 逾期, 即将到期, 筛选 — or nothing for all."""
    if view is not None:
        return view.name
    if query.overdue:
        return _("逾期")
    if query.due_soon:
        return _("即将到期")
    if query.conditions or query.q:
        return _("筛选")
    return None
