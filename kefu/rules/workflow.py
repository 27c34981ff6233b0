"""Statuses and the moves between them, per record type (the ``workflow:`` section of a definition).

```yaml
workflow:
  statuses: [待受理, 处理中, 等待客户, 待审批, 待回访, 已关闭, 重新打开]
  initial: 待受理            # a new record's status (default: the first)
  transitions:               # from → the statuses it may move to; omitted: any move is allowed
    待受理: [处理中, 已关闭]
    已关闭: [重新打开]
  closed: [已关闭]           # entering one requires the ``required_on_close`` fields
  pausing: [等待客户]        # SLA clocks stand still while the record is in one
  rework: 处理中             # where a record goes back to when the customer rejects the result (default: the second)
```

A type without the section has the default workflow: 待受理 → 处理中 → 已解决 → 已关闭,
any move allowed, 已关闭 closing. Every area reads it through ``kefu.records.sections.workflow_of``.
"""
from __future__ import annotations

from pydantic import Field, StrictStr, model_validator

from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l
from kefu.records.sections import WORKFLOW, Section, SectionModel, at, refuse
from kefu.rules.shapes import Name, picker

DEFAULT_STATUSES = ("待受理", "处理中", "已解决", "已关闭")


class Workflow(SectionModel):
    """A type's statuses and moves; ``transitions`` None: every move between ``statuses`` is allowed."""

    statuses: tuple[Name, ...] = Field(min_length=1, title=_l("状态"), description=_l("状态名称，按流程顺序"))
    initial: Name | None = Field(None, title=_l("新记录的状态"), description=_l("新记录的状态（默认第一个）"),
                                 json_schema_extra=picker("status"))
    transitions: dict[StrictStr, tuple[Name, ...] | None] | None = Field(
        None, title=_l("允许的转换"), description=_l("状态 → 可转到的状态；不写则任意转换"))
    closed: tuple[Name, ...] = Field((), title=_l("关闭状态"), description=_l("关闭状态：进入时须填写“关闭时必填”字段"),
                                     json_schema_extra=picker("statuses"))
    pausing: tuple[Name, ...] = Field((), title=_l("暂停状态"), description=_l("暂停状态：时限停止计时"),
                                      json_schema_extra=picker("statuses"))
    rework: Name | None = Field(None, title=_l("退回重新处理的状态"),
                                description=_l("客户不接受处理结果时退回的状态（默认第二个）"),
                                json_schema_extra=picker("status"))

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data):
        statuses = data.get("statuses") if isinstance(data, dict) else None
        if isinstance(statuses, list | tuple) and statuses:
            data = {**data, "initial": data.get("initial") or statuses[0],
                    "rework": data.get("rework") or statuses[min(1, len(statuses) - 1)]}
        return data

    @model_validator(mode="after")
    def _known_statuses(self):
        problems = []
        known = set(self.statuses)
        if len(known) != len(self.statuses):
            problems.append(_l(".statuses 有重复的状态"))
        for key in ("initial", "rework"):
            if getattr(self, key) not in known:
                problems.append(_l(".%(key)s“%(status)s”不在 statuses 中", key=key, status=getattr(self, key)))
        for key in ("closed", "pausing"):
            unknown = [s for s in getattr(self, key) if s not in known]
            if unknown:
                problems.append(_l(".%(key)s 中的“%(statuses)s”不在 statuses 中", key=key, statuses="、".join(unknown)))
        for source in (self.transitions or {}):
            if source not in known:
                problems.append(_l(".transitions 中的“%(status)s”不在 statuses 中", status=source))
        if problems:
            raise refuse("；workflow".join(str(p) for p in problems))
        return self

    def allowed(self, before: str, after: str) -> bool:
        if before == after:
            return True
        if self.transitions is None:
            return after in self.statuses
        return after in (self.transitions.get(before) or ())

    def next_statuses(self, before: str) -> tuple[str, ...]:
        if self.transitions is None:
            return tuple(s for s in self.statuses if s != before)
        return tuple(self.transitions.get(before) or ())

    def is_closed(self, status) -> bool:
        return status in self.closed

    @property
    def open_statuses(self) -> tuple[str, ...]:
        """Every status but the closed ones, in order."""
        return tuple(s for s in self.statuses if s not in self.closed)

    def is_pausing(self, status) -> bool:
        return status in self.pausing


DEFAULT_WORKFLOW = Workflow(statuses=DEFAULT_STATUSES, initial=DEFAULT_STATUSES[0], closed=("已关闭",),
                            rework="处理中")


def check_change(record_type, workflow: Workflow, before_status: str | None, after_status: str, values: dict) -> None:
    """Refuse a status move the workflow does not allow, or a close with ``required_on_close`` fields empty.

    ``before_status`` is None for a new record; ``values`` are the record's values after the change.
    """
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


class WorkflowSection(Section):
    """``workflow:``: the statuses; refuses moves it does not allow (but not a system move)."""

    key = WORKFLOW
    title = _l("流程")
    model = Workflow

    def default(self) -> Workflow:
        return DEFAULT_WORKFLOW

    def problems(self, draft, model: Workflow) -> list:
        """Checked when a definition is saved, not when a stored one is read: definitions saved before this check
        existed may name a target that is no status (it is never offered, so such a move cannot happen)."""
        known = set(model.statuses)
        return [at(f"{WORKFLOW}.transitions",
                   _l("workflow.transitions.%(status)s 中的“%(statuses)s”不在 statuses 中", status=source,
                      statuses="、".join(unknown)))
                for source, targets in (model.transitions or {}).items()
                if (unknown := [s for s in targets or () if s not in known])]

    def before_save(self, record_type, model, current, after, changed, *, system):
        if not system:
            check_change(record_type, model, current.get("status") if current else None, after["status"], after)
