"""Reports: the weekly summary's numbers and the monthly report archived on the 5th.

Numbers come from MongoDB aggregation pipelines that start with an indexed
``$match`` on ``type`` and ``created_at`` (``records`` indexes ``type_created``).
The monthly report of a month is stored once in ``reports`` (``_id`` =
``monthly:YYYY-MM``); generating it again replaces it with fresh numbers.
The figures cover every record (they are for a role with ``view_reports``);
the records a report names are shown to a person only as far as they may
read them (``as_seen_by``).
"""
from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.i18n import _l
from kefu.insight.exports import neutralise, sheet_title
from kefu.org.access import AccessPolicy
from kefu.records.core_fields import core_field
from kefu.records.fields import FIELD_TYPES, get_field_type
from kefu.records.sections import usable, workflow_of
from kefu.records.store import RECORDS
from kefu.records.types import RecordType
from kefu.rules import callbacks, levels
from kefu.rules.report import report_of
from kefu.rules.sla import clocks_of

REPORTS = "reports"


def previous_month(today: date) -> str:
    """``YYYY-MM`` of the month before ``today``'s."""
    first = today.replace(day=1) - timedelta(days=1)
    return f"{first.year:04d}-{first.month:02d}"


def month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's, local midnight, as UTC."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=tz)
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def _types():
    return [t for t in RecordType.objects(active=True).order_by("sort_order", "key") if usable(t)]


def _closed_statuses(record_type) -> list[str]:
    return list(workflow_of(record_type).closed)


def type_numbers(record_type, start: datetime, end: datetime, now: datetime) -> dict:
    """New, closed and now-overdue counts of one type for ``[start, end)``."""
    collection = get_database()[RECORDS]
    new = collection.count_documents({"type": record_type.key, "created_at": {"$gte": start, "$lt": end}})
    closed_clauses = [{f"status_at.{status}": {"$gte": start, "$lt": end}} for status in _closed_statuses(record_type)]
    closed = collection.count_documents({"type": record_type.key, "$or": closed_clauses}) if closed_clauses else 0
    overdue = collection.count_documents({"type": record_type.key, "sla_due": {"$lte": now, "$type": "date"}})
    return {"new": new, "closed": closed, "overdue": overdue}


def week_numbers(now: datetime, start: datetime, end: datetime) -> list[str]:
    """Lines of the weekly summary: per type with any activity, and the total."""
    lines, totals = [], {"new": 0, "closed": 0, "overdue": 0}
    for record_type in _types():
        numbers = type_numbers(record_type, start, end, now)
        if not any(numbers.values()):
            continue
        for key in totals:
            totals[key] += numbers[key]
        lines.append(f"{record_type.name}：新增 {numbers['new']}，关闭 {numbers['closed']}，当前逾期 {numbers['overdue']}")
    lines.append(f"合计：新增 {totals['new']}，关闭 {totals['closed']}，当前逾期 {totals['overdue']}")
    return lines


def clock_rates(record_type, start: datetime, end: datetime) -> list[dict]:
    """Per SLA clock: how many were completed in ``[start, end)`` and how many of them on time."""
    rows = []
    collection = get_database()[RECORDS]
    for clock in clocks_of(record_type):
        met_path = f"sla.{clock.key}.met_at"
        pipeline = [
            {"$match": {"type": record_type.key, met_path: {"$gte": start, "$lt": end}}},
            {"$group": {"_id": None, "done": {"$sum": 1},
                        "on_time": {"$sum": {"$cond": [{"$lte": [f"${met_path}", f"$sla.{clock.key}.due_at"]}, 1, 0]}}}},
        ]
        result = next(collection.aggregate(pipeline), None) or {"done": 0, "on_time": 0}
        rows.append({"clock": clock.key, "name": clock.name, "done": result["done"], "on_time": result["on_time"],
                     "rate": round(result["on_time"] / result["done"], 4) if result["done"] else None})
    return rows


def archive_monthly(month: str, now: datetime | None = None) -> dict:
    """Compute ``month``'s report — every type's numbers and the complaint analysis of each type with level
    rules — store it in ``reports`` (replacing an earlier run) and return it (with ``summary_lines``)."""
    now = now or utcnow()
    tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
    start, end = month_bounds(month, tz)
    analyses = {t.key: complaint_analysis(t, month, now) for t in report_types()}
    types = []
    for record_type in _types():
        numbers = type_numbers(record_type, start, end, now)
        analysis = analyses.get(record_type.key)  # its on-time rates are counted already
        types.append({"type": record_type.key, "name": record_type.name, **numbers,
                      "clocks": analysis["clocks"] if analysis else clock_rates(record_type, start, end)})
    lines = [line for analysis in analyses.values() if analysis["total"] or analysis["previous"]
             for line in summary_lines(analysis)]
    report = {"_id": f"monthly:{month}", "kind": "monthly", "month": month, "generated_at": now, "types": types,
              "analyses": analyses, "summary_lines": lines or [f"{month} 无投诉记录"]}
    get_database()[REPORTS].replace_one({"_id": report["_id"]}, report, upsert=True)
    return report


def archived_monthly(month: str) -> dict | None:
    """The archived report of ``month`` (None when there is none). An analysis archived before its top issues
    named their columns gets ``issue_fields`` from its rows, labelled as the type's fields are now."""
    report = get_database()[REPORTS].find_one({"_id": f"monthly:{month}"})
    older = [analysis for analysis in (report or {}).get("analyses", {}).values() if "issue_fields" not in analysis]
    types = {t.key: t for t in RecordType.objects(key__in=[analysis["type"] for analysis in older])}
    for analysis in older:
        keys = [key for key in (analysis["top_issues"] or [{}])[0] if key != "count"]
        analysis["issue_fields"] = _issue_fields(types.get(analysis["type"]), keys)
    return report


# -- the monthly complaint analysis (月度投诉分析报告) ---------------------------------------------------------

DIMENSION_TYPES = tuple(name for name, field_type in FIELD_TYPES.items() if field_type.report_dimension)
TOP_ISSUES = 10
REPEAT_SHOWN = 10


def report_types() -> list:
    """The types the analysis is for: those with level rules (the complaint types of every pack)."""
    return [t for t in _types() if levels.rules_of(t) is not None]


def dimensions(record_type) -> list[tuple[str, str, str]]:
    """``(key, label, path)`` of the fields the report counts by: the type's filterable choice, multi-choice,
    project and department fields, and the record's own department."""
    rows = [(f.key, f.label, f"data.{f.key}") for f in record_type.active_fields
            if f.type in DIMENSION_TYPES and f.filter and not f.sensitive]
    return [*rows, ("department", "部门", "department")]


def _counts(match: dict, path: str, unwind: bool) -> dict:
    pipeline = [{"$match": match}]
    if unwind:
        pipeline.append({"$unwind": f"${path}"})
    pipeline.append({"$group": {"_id": f"${path}", "n": {"$sum": 1}}})
    return {row["_id"]: row["n"] for row in get_database()[RECORDS].aggregate(pipeline)}


def _label_map(record_type, key: str, values) -> dict:
    definition = core_field(record_type, key) or record_type.field(key)
    field_type = get_field_type(definition.type)
    if hasattr(field_type, "labels"):
        return field_type.labels(v for v in values if v is not None)
    return {}


def _percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of ``values`` (already sorted)."""
    if not values:
        return None
    rank = max(1, -(-len(values) * share // 1))  # ceil
    return values[int(rank) - 1]


def _handling_hours(record_type, start: datetime, end: datetime) -> list[float]:
    """Hours from registration to closing of the records closed in ``[start, end)``, ascending."""
    pipeline = [
        {"$match": {"type": record_type.key, "closed_at": {"$gte": start, "$lt": end, "$type": "date"}}},
        {"$project": {"hours": {"$divide": [{"$subtract": ["$closed_at", "$created_at"]}, 3_600_000]}}},
        {"$sort": {"hours": 1}},
    ]
    return [row["hours"] for row in get_database()[RECORDS].aggregate(pipeline)]


def _satisfaction(record_type, start: datetime, end: datetime) -> dict:
    """Callback answers recorded in ``[start, end)`` for this type's records: result → count."""
    pipeline = [{"$match": {"source.type": record_type.key, "outcome.at": {"$gte": start, "$lt": end}}},
                {"$group": {"_id": "$outcome.result", "n": {"$sum": 1}}}]
    return {row["_id"]: row["n"] for row in get_database()[RECORDS].aggregate(pipeline)}


def _rejected_answers(record_type) -> frozenset:
    """The callback answers that count as not satisfied: the type's ``callback.rejected_values``."""
    rules = callbacks.rules_of(record_type)
    return frozenset(rules.rejected_values) if rules else frozenset()


def _repeat_key(record_type) -> str | None:
    """Who a complaint is from: the customer archive link, else the blind index of a sensitive phone."""
    phone = next((f for f in record_type.active_fields if get_field_type(f.type).identifies_caller), None)
    if phone is not None:
        return f"bidx.{phone.key}" if phone.sensitive else f"data.{phone.key}"
    return "customer"


def _repeats(record_type, match: dict) -> list[dict]:
    """Complainants with two or more records in the month, most first: their numbers and names (the type's
    ``report.name_field``; the first record's number without one)."""
    key = _repeat_key(record_type)
    name_field = report_of(record_type).name_field
    pipeline = [{"$match": {**match, key: {"$ne": None}}},
                {"$group": {"_id": f"${key}", "n": {"$sum": 1}, "numbers": {"$push": "$number"},
                            "name": {"$first": f"$data.{name_field}" if name_field else "$number"}}},
                {"$match": {"n": {"$gte": 2}}}, {"$sort": {"n": -1, "_id": 1}}]
    return [{"name": row.get("name") or "", "count": row["n"], "numbers": sorted(row["numbers"])}
            for row in get_database()[RECORDS].aggregate(pipeline)]


def as_seen_by(analysis: dict, access: AccessPolicy) -> dict:
    """``analysis`` as ``access`` may see it: the figures whole, but in the repeat complainants only the numbers
    of the records the user may read, and no name for a complainant none of whose records they may read."""
    allowed = access.record_filter(analysis["type"])
    top = analysis["repeats"]["top"]
    numbers = [number for row in top for number in row["numbers"]]
    if allowed is None or not numbers:
        return analysis
    readable = {document["number"] for document in get_database()[RECORDS].find(
        {"type": analysis["type"], "number": {"$in": numbers}, "$and": [allowed]}, {"number": 1})}
    shown = []
    for row in top:
        mine = [number for number in row["numbers"] if number in readable]
        shown.append({**row, "numbers": mine, "name": row["name"] if mine else str(_l("（不在您的查看范围内）"))})
    return {**analysis, "repeats": {**analysis["repeats"], "top": shown}}


def _change(now_value, before_value):
    if before_value in (None, 0):
        return None
    return round((now_value - before_value) / before_value, 4)


def complaint_analysis(record_type, month: str, now: datetime | None = None) -> dict:
    """The month's numbers for one type (records registered in the month unless said otherwise):

    ``total`` and ``previous`` (the month before) with ``change``; ``by``: per dimension the counts this month
    and last, largest first; ``clocks``: per SLA clock completed in the month, on time / done and the rate;
    ``handling``: closed in the month, average and 90th-percentile hours from registration to closing;
    ``satisfaction``: callback answers recorded in the month; ``repeats``: complainants with 2+ records;
    ``top_issues``: the most frequent combinations of the type's ``report.issue_fields`` (e.g. project and
    category), each row the fields' shown values by key and ``count``; ``issue_fields``: those fields' ``key``,
    ``label`` and ``label_en``, in order (the table's columns).
    """
    now = now or utcnow()
    tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
    start, end = month_bounds(month, tz)
    previous = previous_month(start.astimezone(tz).date())
    previous_start, previous_end = month_bounds(previous, tz)
    match = {"type": record_type.key, "created_at": {"$gte": start, "$lt": end}}
    previous_match = {"type": record_type.key, "created_at": {"$gte": previous_start, "$lt": previous_end}}
    collection = get_database()[RECORDS]
    total, before = collection.count_documents(match), collection.count_documents(previous_match)
    by = []
    for key, label, path in dimensions(record_type):
        definition = record_type.field(key)
        unwind = definition is not None and get_field_type(definition.type).multiple
        current, last = _counts(match, path, unwind), _counts(previous_match, path, unwind)
        names = _label_map(record_type, key, [*current, *last])
        rows = [{"value": names.get(value, value if value is not None else "（未填写）"), "count": count,
                 "previous": last.get(value, 0), "change": _change(count, last.get(value, 0))}
                for value, count in sorted(current.items(), key=lambda item: (-item[1], str(item[0])))]
        rows += [{"value": names.get(value, value if value is not None else "（未填写）"), "count": 0,
                  "previous": count, "change": -1.0} for value, count in last.items() if value not in current]
        by.append({"key": key, "label": str(label), "label_en": definition.label_en if definition else "Department",
                   "rows": rows})
    hours = _handling_hours(record_type, start, end)
    satisfaction = _satisfaction(record_type, start, end)
    answered = sum(satisfaction.values())
    rejected = _rejected_answers(record_type)
    satisfied = sum(n for result, n in satisfaction.items() if result is not None and result not in rejected)
    top = _top_issues(record_type, match)
    repeats = _repeats(record_type, match)
    return {
        "type": record_type.key, "type_name": record_type.name, "type_name_en": record_type.name_en, "month": month, "previous_month": previous,
        "generated_at": now, "total": total, "previous": before, "change": _change(total, before), "by": by,
        "clocks": clock_rates(record_type, start, end),
        "handling": {"closed": len(hours), "average_hours": round(sum(hours) / len(hours), 2) if hours else None,
                     "p90_hours": round(_percentile(hours, 0.9), 2) if hours else None},
        "satisfaction": {"answers": satisfaction, "answered": answered, "satisfied": satisfied,
                         "rate": round(satisfied / answered, 4) if answered else None},
        "repeats": {"complainants": len(repeats), "top": repeats[:REPEAT_SHOWN]},
        "top_issues": top, "issue_fields": _issue_fields(record_type, report_of(record_type).issue_fields),
    }


def _issue_fields(record_type, keys) -> list[dict]:
    """The columns of the top issues: each field's ``key`` and labels (the key itself for one not defined)."""
    columns = []
    for key in keys:
        definition = record_type.field(key) if record_type is not None else None
        columns.append({"key": key, "label": str(definition.label) if definition else key,
                        "label_en": definition.label_en if definition else None})
    return columns


def _top_issues(record_type, match: dict) -> list[dict]:
    """The most frequent combinations of ``report.issue_fields`` among the records ``match`` finds."""
    keys = report_of(record_type).issue_fields
    if not keys:
        return []
    pipeline = [{"$match": match}, {"$group": {"_id": {key: f"$data.{key}" for key in keys}, "n": {"$sum": 1}}},
                {"$sort": {"n": -1, "_id": 1}}, {"$limit": TOP_ISSUES}]  # ties in one order, page and archive alike
    found = list(get_database()[RECORDS].aggregate(pipeline))
    names = {key: _label_map(record_type, key, [row["_id"].get(key) for row in found]) for key in keys}

    def shown(key, value):
        return (names[key].get(value) if names[key] else value) or "（未填写）"

    return [{**{key: shown(key, row["_id"].get(key)) for key in keys}, "count": row["n"]} for row in found]


def summary_lines(analysis: dict) -> list[str]:
    """The analysis in a few lines (the notification, the weekly/monthly messages)."""
    change = analysis["change"]
    lines = [f"{analysis['type_name']}：{analysis['total']} 件（上月 {analysis['previous']} 件"
             + (f"，{change:+.0%}" if change is not None else "") + "）"]
    rated = [c for c in analysis["clocks"] if c["rate"] is not None]
    if rated:
        lines.append("按时率：" + "；".join(f"{c['name']} {c['rate']:.0%}" for c in rated))
    if analysis["handling"]["closed"]:
        lines.append(f"关闭 {analysis['handling']['closed']} 件，平均处理 {analysis['handling']['average_hours']} 小时，"
                     f"90% 在 {analysis['handling']['p90_hours']} 小时内")
    if analysis["satisfaction"]["rate"] is not None:
        lines.append(f"回访满意率 {analysis['satisfaction']['rate']:.0%}（{analysis['satisfaction']['answered']} 次回访）")
    if analysis["repeats"]["complainants"]:
        lines.append(f"重复投诉客户 {analysis['repeats']['complainants']} 位")
    return lines


def analysis_xlsx(analysis: dict, tz) -> bytes:
    """The analysis as a workbook: an overview sheet, then one sheet per table (the same numbers as the page)."""
    import openpyxl  # optional: ~95 ms to import, needed only by the monthly report's XLSX, not by every process

    workbook = openpyxl.Workbook()
    bold = openpyxl.styles.Font(bold=True)
    get_column_letter = openpyxl.utils.get_column_letter

    def table(title: str, headers: list[str], rows: list[list], formats: dict | None = None):
        sheet = workbook.create_sheet(sheet_title(title))
        sheet.append(headers)
        for cell in sheet[1]:
            cell.font = bold
        for row in rows:
            sheet.append([neutralise(value) for value in row])
        for index, header in enumerate(headers, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = max(12, len(header) * 2 + 4)
            for cell in sheet[get_column_letter(index)][1:]:
                if formats and index in formats:
                    cell.number_format = formats[index]
        sheet.freeze_panes = "A2"
        return sheet

    overview = workbook.active
    overview.title = "概览"
    handling, satisfaction = analysis["handling"], analysis["satisfaction"]
    generated = analysis["generated_at"]
    for name, value in (("报告", f"{analysis['month']} {analysis['type_name']}月度分析"),
                        ("生成时间", generated.astimezone(tz).strftime("%Y-%m-%d %H:%M")),
                        ("本月登记", analysis["total"]), ("上月登记", analysis["previous"]),
                        ("环比", analysis["change"]), ("本月关闭", handling["closed"]),
                        ("平均处理时长（小时）", handling["average_hours"]),
                        ("90% 处理时长（小时）", handling["p90_hours"]),
                        ("回访次数", satisfaction["answered"]), ("回访满意率", satisfaction["rate"]),
                        ("重复投诉客户", analysis["repeats"]["complainants"])):
        overview.append([name, value])
        overview.cell(row=overview.max_row, column=1).font = bold
        if name in ("环比", "回访满意率") and value is not None:
            overview.cell(row=overview.max_row, column=2).number_format = "0.0%"
    overview.column_dimensions["A"].width = 24
    overview.column_dimensions["B"].width = 30
    for dimension in analysis["by"]:
        table(f"按{dimension['label']}", [dimension["label"], "本月", "上月", "环比"],
              [[r["value"], r["count"], r["previous"], r["change"]] for r in dimension["rows"]], {4: "0.0%"})
    table("时限按时率", ["时限", "完成", "按时", "按时率"],
          [[c["name"], c["done"], c["on_time"], c["rate"]] for c in analysis["clocks"]], {4: "0.0%"})
    table("回访满意度", ["回访结果", "次数"], [[k, v] for k, v in analysis["satisfaction"]["answers"].items()])
    table("重复投诉", ["客户", "次数", "编号"], [[r["name"], r["count"], "、".join(r["numbers"])]
                                          for r in analysis["repeats"]["top"]])
    issue_fields = analysis["issue_fields"]
    table("主要问题", [*(f["label"] for f in issue_fields), "件数"],
          [[*(r.get(f["key"]) for f in issue_fields), r["count"]] for r in analysis["top_issues"]])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
