"""Who approves by a field's value (``approver_by`` of the ``approvals:`` section, 003 §4.2–§4.3): the same amount
band is approved by another title, or reviewed by other titles, when a field of the record holds a given value.

```yaml
approvals:
  approver_by:                          # optional: every band without its own
    field: category
    reviewers: {销售承诺: [营销总监, 财务总监, 项目总监]}
  bands:
    - below: 5000
      approver: 项目总监
      approver_by:                      # this band's own (replaces the section's)
        field: category                 # a choice field of the type (not sensitive)
        values: {销售承诺: 营销总监, 规划设计: 研发总监}             # value → the approver title
        reviewers: {规划设计: [项目研发经理, 项目总监]}               # value → the titles reviewing first
```

A record whose field holds none of the values named gets the band as written. ``values`` and ``reviewers`` replace
the band's approver and reviewers for that value (a reviewers list may be written "营销总监、财务总监"); the titles a
value ends with must still be distinct. The choice opens the request (its ``approver`` and ``reviewers`` are kept
on it); a change of the field while the request is pending opens a fresh one.
"""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field, StrictStr, model_validator

from kefu.core.i18n import _l
from kefu.records.sections import SectionModel, at, refuse
from kefu.rules.shapes import SINGLE_CHOICE, Name, picker


def _titles(value):
    """A list of titles, or the editors' text of one ("营销总监、财务总监")."""
    if isinstance(value, str):
        return [word.strip() for word in re.split(r"[、,，;；\s]+", value) if word.strip()]
    return value


Titles = Annotated[tuple[Name, ...], BeforeValidator(_titles)]


class ApproverBy(SectionModel):
    """The approver and reviewers of a band by the value of ``field``."""

    field: StrictStr = Field(title=_l("按字段"), description=_l("单选字段，如“类别”"),
                             json_schema_extra=picker("field", "choice"))
    values: dict[StrictStr, Name] = Field({}, title=_l("取值 = 审批职务"),
                                          json_schema_extra=picker("pairs"))
    reviewers: dict[StrictStr, Titles] = Field({}, title=_l("取值 = 先审核的职务"),
                                               description=_l("多个职务用“、”分隔"),
                                               json_schema_extra=picker("pairs"))

    @model_validator(mode="after")
    def _names_something(self):
        if not self.values and not self.reviewers:
            raise refuse(_l(" 应至少写 values（取值 = 审批职务）或 reviewers（取值 = 先审核的职务）之一"))
        return self

    def named(self) -> list[str]:
        """The field values this names, in order."""
        return list(dict.fromkeys([*self.values, *self.reviewers]))

    def titles_for(self, value, approver: str, reviewers: tuple) -> tuple[str, tuple]:
        """The approver and reviewers of a band (``approver``, ``reviewers``) for a record whose field holds
        ``value``."""
        key = str(value) if value is not None else None
        return self.values.get(key, approver), tuple(self.reviewers.get(key, reviewers))

    def clashes(self, approver: str, reviewers: tuple) -> list:
        """Messages for each value whose titles are not distinct, given the band's ``approver`` and ``reviewers``."""
        problems = []
        for value in self.named():
            chosen, reviewing = self.titles_for(value, approver, reviewers)
            if chosen in reviewing:
                problems.append(_l("的 approver_by“%(value)s”：审批职务“%(title)s”不能同时是审核人", value=value,
                                   title=chosen))
            elif len(set(reviewing)) != len(reviewing):
                problems.append(_l("的 approver_by“%(value)s”：审核人有重复", value=value))
        return problems


def chooser_problems(rules, draft) -> list:
    """The problems of each ``approver_by`` of ``rules`` (the ``approvals:`` section), at its path."""
    choosers = [("approvals.approver_by", rules.approver_by)] + [
        (f"approvals.bands.{n}.approver_by", band.approver_by) for n, band in enumerate(rules.bands)]
    return [at(path, problem) for path, chooser in choosers if chooser is not None
            for problem in _problems(chooser, draft)]


def _problems(chooser: ApproverBy, draft) -> list:
    """``chooser``'s field must be a non-sensitive field of the definition with choices, and the values it names
    among them."""
    field = draft.field(chooser.field)
    if field is None or field.get("sensitive") or not field.get("choices") or field.get("type") not in SINGLE_CHOICE:
        usable = "、".join(key for key, f in draft.fields.items()
                          if f.get("choices") and not f.get("sensitive") and f.get("type") in SINGLE_CHOICE)
        return [_l("approver_by.field 应为本类型有可选项的字段；“%(field)s”不是（可用：%(fields)s）",
                   field=chooser.field, fields=usable or "-")]
    return [_l("approver_by 的“%(value)s”不是字段“%(field)s”的可选项；可选：%(choices)s", value=value,
               field=chooser.field, choices="、".join(field["choices"]))
            for value in chooser.named() if value not in field["choices"]]
