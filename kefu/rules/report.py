"""What the monthly complaint analysis (``kefu.insight.reports``) reads from a type: the ``report:`` section.

```yaml
report:
  name_field: owner_name             # a text field: how a repeat complainant is named
  issue_fields: [project, category]  # the fields the top issues are counted by, together
```

Without ``name_field`` repeat complainants are shown by record number; without ``issue_fields`` there are no top
issues. The engine never guesses them from labels or keys — except once, in ``backfill_report_settings``, for the
types stored before the section existed.
"""
from __future__ import annotations

import logging

from pydantic import Field, StrictStr

from kefu.core.db import mark_migration_done, migration_done
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l
from kefu.records.definitions import save_definition
from kefu.records.sections import Section, SectionModel, at, definition_problems, parsed
from kefu.records.types import RecordType
from kefu.rules.shapes import FieldKind, named_kind, picker

log = logging.getLogger(__name__)

# What issues are counted by: a field the report breaks down by, or a short text.
ISSUE_TYPES = named_kind("issue", FieldKind(lambda t: t.report_dimension or t.one_line_text,
                                           ("choice", "multi_choice", "project", "department", "text")))
# How a repeat complainant is named: a short text.
NAME_TYPES = named_kind("text", FieldKind(lambda t: t.one_line_text, ("text",)))


class Report(SectionModel):
    name_field: StrictStr | None = Field(None, title=_l("客户姓名字段"), description=_l("重复投诉客户按它显示姓名"),
                                         json_schema_extra=picker("field", "text"))
    issue_fields: tuple[StrictStr, ...] = Field((), title=_l("主要问题按字段"),
                                                description=_l("主要问题按这些字段的取值组合计数"),
                                                json_schema_extra=picker("fields", "issue"))


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
            if field is None or field.get("type") not in NAME_TYPES:
                problems.append(at("report.name_field", _l("report.name_field 应为本类型的文本字段；“%(field)s”不是",
                                                           field=model.name_field)))
        for key in model.issue_fields:
            field = draft.field(key)
            if field is None or field.get("type") not in ISSUE_TYPES or field.get("sensitive"):
                problems.append(at("report.issue_fields", _l(
                    "report.issue_fields 中的“%(field)s”应为本类型非敏感的 %(types)s 字段", field=key,
                    types="/".join(ISSUE_TYPES))))
        return problems


def report_of(record_type) -> Report:
    """The type's report settings (empty ones when its definition has none)."""
    return parsed(record_type, ReportSection.key)


# -- the one-off migration of the types stored before ``report:`` existed -----------------------------------------

# What the monthly report guessed before ``report:`` existed — kept only for ``backfill_report_settings``.
GUESSED_NAME_WORD = "姓名"  # the name column: the first active text field whose label contains it
GUESSED_ISSUE_FIELDS = ("project", "category")  # the top issues: these fields together, when the type has both


def _guessed_report(record_type) -> dict:
    """The report settings the monthly report used to guess for ``record_type``, written out in full."""
    name_field = next((f.key for f in record_type.active_fields
                       if f.type in NAME_TYPES and GUESSED_NAME_WORD in f.label), None)
    has_issue_fields = all(record_type.field(key) is not None for key in GUESSED_ISSUE_FIELDS)
    return {"name_field": name_field, "issue_fields": list(GUESSED_ISSUE_FIELDS) if has_issue_fields else []}


REPORT_BACKFILL = "report_settings_backfill"


def backfill_report_settings() -> list[str]:
    """Give every stored type without a ``report`` key (stored before the section existed, when the monthly report
    guessed) the settings the guess found (``_guessed_report``), through ``save_definition`` (``by="migration"``);
    return the keys of the types changed.

    The settings are written out even when empty, so a type is migrated once and keeps what the report showed.
    Guessed settings today's checks refuse (a sensitive ``category`` …) are written empty; a type whose definition
    does not save at all is left without (logged, and tried again at the next start). Once every type is migrated
    the migration is noted as done and never runs again: a ``report`` an admin clears later stays cleared."""
    if migration_done(REPORT_BACKFILL):
        return []
    changed, failed = [], False
    for record_type in RecordType.objects():
        if record_type.section_data(ReportSection.key) is not None:
            continue
        definition = {**record_type.to_dict(), ReportSection.key: _guessed_report(record_type)}
        if ReportSection.key in definition_problems(definition):
            definition[ReportSection.key] = {"name_field": None, "issue_fields": []}
        try:
            save_definition(definition, by="migration", key=record_type.key)
        except ValidationFailed as exc:
            log.warning("record type %s keeps no report settings: %s %s", record_type.key, exc, exc.fields)
            failed = True
            continue
        changed.append(record_type.key)
    if not failed:
        mark_migration_done(REPORT_BACKFILL)
    return changed
