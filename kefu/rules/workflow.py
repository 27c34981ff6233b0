"""Statuses and the moves between them, per record type (the ``workflow:`` section of a definition).

```yaml
workflow:
  statuses: [待受理, 处理中, 等待客户, 待审批, 待回访, 已关闭, 重新打开]
  initial: 待受理            # a new record's status
  transitions:               # from → the statuses it may move to; omitted: any move is allowed
    待受理: [处理中, 已关闭]
    已关闭: [重新打开]
  closed: [已关闭]           # entering one requires the ``required_on_close`` fields
  pausing: [等待客户]        # SLA clocks stand still while the record is in one
  rework: 处理中             # where a record goes back to when the customer rejects the result
```

A type without the section has the default workflow: 待受理 → 处理中 → 已解决 → 已关闭,
any move allowed, 已关闭 closing.
"""
from __future__ import annotations

from dataclasses import dataclass

from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l

DEFAULT_STATUSES = ("待受理", "处理中", "已解决", "已关闭")
SECTION_KEYS = ("statuses", "initial", "transitions", "closed", "pausing", "rework")


@dataclass(frozen=True)
class Workflow:
    statuses: tuple[str, ...]
    initial: str
    transitions: dict[str, tuple[str, ...]] | None  # None: every move is allowed
    closed: tuple[str, ...]
    pausing: tuple[str, ...]
    rework: str

    def allowed(self, before: str, after: str) -> bool:
        if before == after:
            return True
        if self.transitions is None:
            return after in self.statuses
        return after in self.transitions.get(before, ())

    def next_statuses(self, before: str) -> tuple[str, ...]:
        if self.transitions is None:
            return tuple(s for s in self.statuses if s != before)
        return self.transitions.get(before, ())

    def is_closed(self, status) -> bool:
        return status in self.closed

    @property
    def open_statuses(self) -> tuple[str, ...]:
        """Every status but the closed ones, in order."""
        return tuple(s for s in self.statuses if s not in self.closed)

    def is_pausing(self, status) -> bool:
        return status in self.pausing


DEFAULT_WORKFLOW = Workflow(statuses=DEFAULT_STATUSES, initial=DEFAULT_STATUSES[0], transitions=None,
                            closed=("已关闭",), pausing=(), rework="处理中")


def workflow_of(record_type) -> Workflow:
    """The record type's workflow (the default one when its definition has none)."""
    section = getattr(record_type, "workflow", None) or {}
    if not section:
        return DEFAULT_WORKFLOW
    statuses = tuple(section["statuses"])
    transitions = section.get("transitions")
    return Workflow(
        statuses=statuses,
        initial=section.get("initial") or statuses[0],
        transitions=None if transitions is None else {k: tuple(v or ()) for k, v in transitions.items()},
        closed=tuple(section.get("closed") or ()),
        pausing=tuple(section.get("pausing") or ()),
        rework=section.get("rework") or (statuses[1] if len(statuses) > 1 else statuses[0]),
    )


def _string_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item.strip() for item in value)


def section_problems(section, definition: dict) -> list:
    """What is wrong with a ``workflow:`` section, as messages for a person (empty when it is fine)."""
    if not isinstance(section, dict):
        return [_l("workflow 应为包含 statuses 等项的对象")]
    problems = []
    unknown = sorted(set(section) - set(SECTION_KEYS))
    if unknown:
        problems.append(_l("workflow 有不认识的项：%(keys)s", keys="、".join(unknown)))
    statuses = section.get("statuses")
    if not _string_list(statuses) or not statuses:
        return [*problems, _l("workflow.statuses 应为状态名称列表")]
    if len(set(statuses)) != len(statuses):
        problems.append(_l("workflow.statuses 有重复的状态"))
    known = set(statuses)

    def unknown_in(names) -> list[str]:
        return [n for n in names if n not in known]

    for key in ("initial", "rework"):
        value = section.get(key)
        if value is not None and value not in known:
            problems.append(_l("workflow.%(key)s“%(status)s”不在 statuses 中", key=key, status=value))
    for key in ("closed", "pausing"):
        value = section.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(_l("workflow.%(key)s 应为状态名称列表", key=key))
        elif unknown_in(value):
            problems.append(_l("workflow.%(key)s 中的“%(statuses)s”不在 statuses 中", key=key,
                               statuses="、".join(unknown_in(value))))
    transitions = section.get("transitions")
    if transitions is not None:
        if not isinstance(transitions, dict):
            problems.append(_l("workflow.transitions 应为“状态: [可转到的状态]”"))
        else:
            for source, targets in transitions.items():
                if source not in known:
                    problems.append(_l("workflow.transitions 中的“%(status)s”不在 statuses 中", status=source))
                elif not _string_list(targets or []):
                    problems.append(_l("workflow.transitions.%(status)s 应为状态名称列表", status=source))
                elif unknown_in(targets or []):
                    problems.append(_l("workflow.transitions.%(status)s 中的“%(statuses)s”不在 statuses 中",
                                       status=source, statuses="、".join(unknown_in(targets))))
    return problems


def check_change(record_type, before_status: str | None, after_status: str, values: dict) -> None:
    """Refuse a status move the workflow does not allow, or a close with ``required_on_close`` fields empty.

    ``before_status`` is None for a new record; ``values`` are the record's values after the change.
    """
    workflow = workflow_of(record_type)
    if before_status is not None and not workflow.allowed(before_status, after_status):
        allowed = "、".join(workflow.next_statuses(before_status)) or _l("无")
        message = _l("不能从“%(before)s”改为“%(after)s”；可改为：%(allowed)s", before=before_status,
                     after=after_status, allowed=allowed)
        raise ValidationFailed(message, {"status": message})
    if workflow.is_closed(after_status) and before_status != after_status:
        missing = [f for f in record_type.active_fields if f.required_on_close and values.get(f.key) in (None, "", [])]
        if missing:
            errors = {f.key: _l("关闭前请填写“%(label)s”", label=f.label) for f in missing}
            raise ValidationFailed(_l("关闭前请填写：%(labels)s", labels="、".join(f.label for f in missing)), errors)
