"""When a clock starts (``start:`` of an ``sla:`` clock), and the field conditions clocks share.

- ``created``: when the record was registered;
- ``status:<状态>``: when the record last entered the status (``status_at``, kept by ``kefu.records.write``);
- ``field:<key>=<value>``: when the field last took the value (``field:level=重要``: when the level became 重要);
- ``field:<key>``: when the field was first filled in;
- ``<key>`` of a datetime field: the moment it holds.

A start whose event has not happened yet gives no start: the clock does not run (it is not overdue from intake).

Field events are remembered on the record with its SLA state, in ``sla_marks`` — a list of ``{event, at, on}``
(``event`` as written after ``field:``; ``on``: whether it held at the last computation) — since a record keeps
only its fields' current values. ``marks`` updates them at every computation, which follows every save in the
same transaction: an event that starts to hold is dated by the save (the record's ``updated_at``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kefu.core.clock import aware
from kefu.core.i18n import _l
from kefu.records.fields import get_field_type
from kefu.records.sections import at

ANY_VALUE = "*"  # in when / done_when: the field is filled in
CORE_CONDITION_KEYS = ("status", "assignee", "department", "customer")  # named like fields by conditions
CREATED, STATUS, FIELD = "created", "status:", "field:"
MARKS = "sla_marks"


def matches(condition: dict, values: dict, record_type) -> bool:
    """Every ``field: value`` (or ``field: [values]``) holds; a list value matches when it shares one;
    ``field: "*"`` means the field is filled in. A value matches under every name of the same choice
    (``FieldType.same_choice``: a renamed choice's old name, held until the rename's migration reaches it)."""
    for name, expected in condition.items():
        value = values.get(name)
        if expected == ANY_VALUE:
            if value in (None, "", []):
                return False
            continue
        wanted = {str(w) for w in (expected if isinstance(expected, list) else [expected])}
        definition = record_type.field(name)
        if definition is not None:
            same = get_field_type(definition.type).same_choice
            wanted = {alias for w in wanted for alias in same(w, definition)}
        present = value if isinstance(value, list) else [value]
        if not any(str(v) in wanted for v in present if v is not None):
            return False
    return True


@dataclass(frozen=True)
class FieldEvent:
    """``field:<key>=<value>`` (``value`` set) or ``field:<key>`` (first filled in)."""

    key: str
    value: str | None

    @property
    def name(self) -> str:
        """The event as written after ``field:`` (its mark's ``event``)."""
        return self.key if self.value is None else f"{self.key}={self.value}"

    def holds(self, values: dict, record_type) -> bool:
        return matches({self.key: ANY_VALUE if self.value is None else self.value}, values, record_type)


def field_event(start: str) -> FieldEvent | None:
    """The field event a ``start`` names (None for the other kinds of start)."""
    if not start.startswith(FIELD):
        return None
    key, sep, value = start[len(FIELD):].partition("=")
    return FieldEvent(key.strip(), value.strip() if sep else None)


def marks(starts, document: dict, values: dict, record_type, now: datetime) -> list[dict]:
    """The record's ``sla_marks`` after this computation, for the clocks' ``starts``: an event that holds and did not
    hold before is dated by the record's last save; ``field:<key>`` keeps its first date for good."""
    previous = {mark["event"]: mark for mark in document.get(MARKS) or []}
    result, seen = [], set()
    for start in starts:
        event = field_event(start)
        if event is None or event.name in seen:
            continue
        seen.add(event.name)
        mark = previous.get(event.name)
        holds = event.holds(values, record_type)
        if holds and (mark is None or (not mark["on"] and event.value is not None)):
            mark = {"event": event.name, "at": aware(document.get("updated_at")) or now, "on": True}
        elif mark is not None:
            mark = {**mark, "on": holds}
        if mark is not None:
            result.append(mark)
    return result


def start_of(start: str, document: dict, values: dict, field_marks: list[dict]) -> datetime | None:
    """When a clock with this ``start`` started (None: its event has not happened yet)."""
    if start == CREATED:
        return aware(document.get("created_at"))
    if start.startswith(STATUS):
        return aware((document.get("status_at") or {}).get(start[len(STATUS):]))
    event = field_event(start)
    if event is not None:
        return next((aware(mark["at"]) for mark in field_marks if mark["event"] == event.name), None)
    value = values.get(start)
    return aware(value) if isinstance(value, datetime) else None


def start_problems(draft, where: str, start: str, statuses: set | None, moments) -> list:
    """What is wrong with a clock's ``start`` in the definition ``draft`` (``moments``: the datetime field kinds)."""
    if start.startswith(STATUS):
        status = start[len(STATUS):]
        if statuses is not None and status not in statuses:
            return [at(f"{where}.start", _l("%(where)s.start 的状态“%(status)s”不在流程中", where=where, status=status))]
        return []
    event = field_event(start)
    if event is not None:
        definition = draft.field(event.key) or ({} if event.key in CORE_CONDITION_KEYS else None)
        if definition is None or definition.get("sensitive"):
            return [at(f"{where}.start", _l("%(where)s.start 的字段“%(field)s”不存在或为敏感字段", where=where,
                                            field=event.key))]
        choices = definition.get("choices") or []
        if event.value is not None and choices and event.value not in choices:
            return [at(f"{where}.start", _l("%(where)s.start 的值“%(value)s”不在字段“%(field)s”的可选项中",
                                            where=where, value=event.value, field=event.key))]
        return []
    if start != CREATED and (draft.field(start) or {}).get("type") not in moments:
        return [at(f"{where}.start", _l("%(where)s.start 应为 created、status:状态、field:字段=值、field:字段 或一个日期时间字段",
                                        where=where))]
    return []
