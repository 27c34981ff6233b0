"""What the monthly complaint analysis (``kefu.insight.reports``) reads from a type: the ``report:`` section.

```yaml
report:
  name_field: owner_name             # a text field: how a repeat complainant is named
  issue_fields: [project, category]  # the fields the top issues are counted by, together
```

Without ``name_field`` repeat complainants are shown by record number; without ``issue_fields`` there are no top
issues. The engine never guesses them from labels or keys.
"""
from __future__ import annotations

from pydantic import Field, StrictStr

from kefu.core.i18n import _l
from kefu.records.sections import Section, SectionModel, parsed

ISSUE_TYPES = ("choice", "multi_choice", "project", "department", "text")


class Report(SectionModel):
    name_field: StrictStr | None = Field(None, description="文本字段：重复投诉客户按它显示姓名")
    issue_fields: tuple[StrictStr, ...] = Field((), description="主要问题按这些字段的取值组合计数，如 [project, category]")


def report_of(record_type) -> Report:
    """The type's report settings (empty ones when its definition has none)."""
    return parsed(record_type, "report")


class ReportSection(Section):
    key = "report"
    title = _l("月报设置")
    model = Report

    def default(self) -> Report:
        return Report()

    def problems(self, draft, model: Report) -> list:
        problems = []
        if model.name_field is not None:
            field = draft.field(model.name_field)
            if field is None or field.get("type") != "text":
                problems.append(_l("report.name_field 应为本类型的文本字段；“%(field)s”不是", field=model.name_field))
        for key in model.issue_fields:
            field = draft.field(key)
            if field is None or field.get("type") not in ISSUE_TYPES or field.get("sensitive"):
                problems.append(_l("report.issue_fields 中的“%(field)s”应为本类型非敏感的 %(types)s 字段", field=key,
                                   types="/".join(ISSUE_TYPES)))
        return problems
