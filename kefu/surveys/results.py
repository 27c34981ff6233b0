"""What a survey found: scores per dimension and per question, the corrective actions of the lowest items, and the
report as XLSX.

Scores are the averages of the 1–5 answers of the score questions (a dimension: over all its score questions'
answers). An item whose average is below the survey's ``threshold`` is *low*: ``open_actions`` makes one
``corrective_action`` record per low item (000 §五; 004 满意度调查 4: 针对问题制定整改措施) through
``kefu.records.write`` with its owner and deadline, linked back to the survey (``survey_ref``, ``survey_plan``) and
noted on the survey (``actions.<question key>``), so it is opened once; its clock runs until the deadline and a
late one is listed on 逾期督办.
"""
from __future__ import annotations

from collections import Counter
from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Font

from kefu.core.db import get_database, in_transaction
from kefu.core.i18n import _
from kefu.org.roles import Action
from kefu.records.write import create_record
from kefu.surveys.answers import ANSWERS, Rates
from kefu.surveys.plans import KINDS, STAGE_LABELS, SURVEYS, get_survey

ACTION_TYPE = "corrective_action"


def _average(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def scores(survey: dict) -> dict:
    """``{"questions": [{key, text, kind, dimension, average, count, choices: {option: n}}],
    "dimensions": [{name, average, count}]}`` over the survey's answered questionnaires, in questionnaire order."""
    given: dict[str, list] = {q["key"]: [] for q in survey["questions"]}
    for document in get_database()[ANSWERS].find({"survey": survey["_id"], "answered_at": {"$ne": None}},
                                                 {"answers": 1}):
        for key, value in (document.get("answers") or {}).items():
            if key in given and value not in (None, ""):
                given[key].append(value)
    questions, by_dimension = [], {name: [] for name in survey["dimensions"]}
    for question in survey["questions"]:
        values = given[question["key"]]
        row = {**question, "count": len(values), "average": None, "counts": {}}
        if question["kind"] == "score":
            row["average"] = _average(values)
            by_dimension.setdefault(question["dimension"], []).extend(values)
        elif question["kind"] == "choice":
            counted = Counter(values)
            row["counts"] = {option: counted.get(option, 0) for option in question["choices"]}
        questions.append(row)
    dimensions = [{"name": name, "average": _average(values), "count": len(values)}
                  for name, values in by_dimension.items()]
    return {"questions": questions, "dimensions": dimensions}


def low_items(survey: dict, found: dict) -> list[dict]:
    """The score questions whose average is below the survey's threshold, the lowest first."""
    threshold = survey.get("threshold") or 0
    low = [q for q in found["questions"] if q["average"] is not None and q["average"] < threshold]
    return sorted(low, key=lambda q: q["average"])


def open_actions(value, owner, deadline, actor, *, measures: str | None = None) -> list[dict]:
    """A ``corrective_action`` record for every low item of the survey that has none yet; return the records made.

    ``owner``: a user (id, login or name); ``deadline``: a date. One transaction: each item is claimed on the
    survey, its record made and noted on the survey — all of them, or (a bad owner or deadline: the records
    service's ``ValidationFailed`` naming the field) none. ``NotFound`` outside the actor's scope."""
    survey = get_survey(value, actor.access, Action.EDIT.value)

    def open_all() -> list[dict]:
        made = []
        for item in low_items(survey, scores(survey)):
            key = item["key"]
            claimed = get_database()[SURVEYS].update_one(
                {"_id": survey["_id"], f"actions.{key}": {"$exists": False}}, {"$set": {f"actions.{key}": None}})
            if not claimed.modified_count:
                continue  # opened already (or by someone else just now)
            record = create_record(ACTION_TYPE, {
                "item": item["text"], "dimension": item["dimension"], "average_score": str(item["average"]),
                "owner": owner, "assignee": owner, "deadline": deadline, "measures": measures or None,
                "survey_ref": str(survey["_id"]), "survey_plan": survey["plan_record"]["number"]}, actor)
            get_database()[SURVEYS].update_one(
                {"_id": survey["_id"]},
                {"$set": {f"actions.{key}": {"id": record["_id"], "number": record["number"]}}})
            made.append(record)
        return made

    return in_transaction(open_all)


def _percent(value) -> str:
    return f"{value * 100:.1f}%" if value is not None else "-"


def report_xlsx(survey: dict, progress: Rates, found: dict) -> bytes:
    """The survey report as an XLSX workbook: 概况 (plan and rates), 维度得分, 题目得分."""
    book = Workbook()
    bold = Font(bold=True)
    summary = book.active
    summary.title = _("概况")
    rows = [
        (_("调查名称"), survey["title"]), (_("调查对象"), str(KINDS[survey["kind"]])),
        (_("调查期间"), f"{survey['starts_on']} ~ {survey['ends_on']}"), (_("状态"), str(STAGE_LABELS[survey["status"]])),
        (_("计划样本数"), progress.planned), (_("已生成链接"), progress.prepared), (_("已发放"), progress.distributed),
        (_("已回收"), progress.answered),
        (_("发放率"), _percent(progress.distribution_rate)), (_("回收率"), _percent(progress.return_rate)),
        (_("回收率目标"), _percent(progress.return_target)), (_("整改阈值"), survey.get("threshold")),
    ]
    for row in rows:
        summary.append(row)
        summary.cell(summary.max_row, 1).font = bold
    dimensions = book.create_sheet(_("维度得分"))
    dimensions.append((_("维度"), _("平均分"), _("答题数")))
    for row in found["dimensions"]:
        dimensions.append((row["name"], row["average"], row["count"]))
    questions = book.create_sheet(_("题目得分"))
    questions.append((_("序号"), _("维度"), _("题目"), _("类型"), _("平均分"), _("答题数"), _("选项统计"), _("整改措施")))
    actions = survey.get("actions") or {}
    for number, row in enumerate(found["questions"], start=1):
        counts = "；".join(f"{k}: {v}" for k, v in row["counts"].items())
        action = (actions.get(row["key"]) or {}).get("number", "")
        questions.append((number, row["dimension"], row["text"], row["kind"], row["average"], row["count"], counts,
                          action))
    for sheet in (dimensions, questions):
        for cell in sheet[1]:
            cell.font = bold
    out = BytesIO()
    book.save(out)
    return out.getvalue()
