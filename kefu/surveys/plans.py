"""The survey: plan, questionnaire, targets, and the stages it goes through (draft → approved → closed → archived).

A survey is one document in ``surveys``::

    {_id, title, kind: consumer|merchant, purpose, target_group, method, staff, starts_on, ends_on ("YYYY-MM-DD"),
     projects: [project ids], planned, return_target (0–1), threshold (1–5),
     dimensions: [names], questions: [{key, text, kind: score|choice|text, dimension, choices}],
     status, approve_by, archive_by, approved_at, approved_by, closed_at, archived_at,
     plan_record: {id, number}, actions: {question key: {id, number}}, created_at, created_by}

004 满意度调查 1: the plan is approved 20 days before the survey starts (``approve_by`` = start − 20 days); 5: the
survey's records are archived within 5 days of its end (``archive_by`` = end + 5 days). Both deadlines are clocks of
the survey's ``survey_plan`` record, created and moved here through ``kefu.records.write``.
"""
from __future__ import annotations

import re
from datetime import date, timedelta, tzinfo

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument

from kefu.core.clock import aware, utcnow
from kefu.core.db import get_database, in_transaction
from kefu.core.errors import Conflict, NotFound, ValidationFailed
from kefu.core.i18n import _, _l
from kefu.org.access import NOTHING, AccessPolicy
from kefu.org.roles import Action
from kefu.org.structure import Project
from kefu.records.store import RECORDS, get_record
from kefu.records.write import create_record, update_record

SURVEYS = "surveys"
PLAN_TYPE = "survey_plan"
APPROVE_DAYS_BEFORE = 20  # 004 满意度调查 1：调查前20天将调查计划报批
ARCHIVE_DAYS_AFTER = 5    # 004 满意度调查 5：调查结束后5天内归档
DEFAULT_DIMENSIONS = ("整体", "售前", "售中", "售后", "房屋质量", "物业服务")  # 000 §五; editable per survey
DEFAULT_RETURN_TARGET = 0.7  # 004 满意度调查：问卷回收率不低于 70%
MIN_RETURN_TARGET = 70       # … so a lower target is refused (percent)
LIST_LIMIT = 100             # the survey list shows the latest ones
DISTRIBUTION_TARGET = 1.0    # every planned respondent gets the questionnaire
DEFAULT_THRESHOLD = 3.5
KINDS = {"consumer": _l("业主/消费者"), "merchant": _l("商户")}
KIND_CHOICES = {"consumer": "业主/消费者", "merchant": "商户"}  # the survey_plan record's choice values
METHODS = (_l("问卷链接"), _l("电话访问"), _l("上门访问"), _l("座谈会"))
QUESTION_KINDS = {"score": _l("评分"), "choice": _l("选择"), "text": _l("文字")}
# The words an admin may write for a question's kind in the questionnaire box, in either language.
KIND_WORDS = {"score": "score", "评分": "score", "choice": "choice", "选择": "choice", "text": "text", "文字": "text"}
MAX_QUESTIONS = 60
MAX_DIMENSIONS = 20


class Stage:
    DRAFT = "draft"
    APPROVED = "approved"
    CLOSED = "closed"
    ARCHIVED = "archived"


STAGE_LABELS = {Stage.DRAFT: _l("待审批"), Stage.APPROVED: _l("实施中"), Stage.CLOSED: _l("已结束"),
                Stage.ARCHIVED: _l("已归档")}
PLAN_STATUS = {Stage.APPROVED: "已批准", Stage.CLOSED: "已结束", Stage.ARCHIVED: "已归档"}  # survey_plan statuses


def survey_id(value) -> ObjectId:
    try:
        return ObjectId(str(value))
    except (InvalidId, TypeError) as exc:
        raise NotFound(_l("调查不存在")) from exc


def get_survey(value, access: AccessPolicy | None = None, action: str = Action.READ.value) -> dict:
    """The survey with id ``value``; ``NotFound`` otherwise. With ``access``: only when the user may ``action``
    the survey's ``survey_plan`` record — a survey is in a user's scope exactly as its plan record is (own,
    department, all: ``kefu.org.access``); ``NotFound`` when they may not read it (no existence leak),
    ``PermissionDenied`` when they may read but not ``action`` it."""
    found = get_database()[SURVEYS].find_one({"_id": survey_id(value)})
    if found is None:
        raise NotFound(_l("调查不存在"))
    if access is not None:
        access.check(get_record(PLAN_TYPE, found["plan_record"]["id"]), action)
    return found


def scope_filter(access: AccessPolicy) -> dict | None:
    """The clause selecting the surveys ``access`` may read (None: every survey): those whose plan record it may
    read."""
    clause = access.record_filter(PLAN_TYPE, Action.READ.value)
    if clause is None:
        return None
    if clause == NOTHING:
        return NOTHING
    readable = get_database()[RECORDS].distinct("_id", {"type": PLAN_TYPE, **clause})
    return {"plan_record.id": {"$in": readable}}


def list_surveys(access: AccessPolicy, limit: int = LIST_LIMIT) -> list[dict]:
    """The surveys ``access`` may read, the latest start first, at most ``limit``."""
    return list(get_database()[SURVEYS].find(scope_filter(access) or {}, sort=[("starts_on", -1), ("_id", -1)],
                                             limit=limit))


def _date(raw, key: str, errors: dict) -> date | None:
    text = str(raw or "").strip()
    if not text:
        errors[key] = _("请填写日期")
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[key] = _("日期格式应为 YYYY-MM-DD，如 2027-05-10：%(value)s", value=text)
        return None


def _number(raw, key: str, low: float, high: float, default, errors: dict, message: str):
    text = str(raw if raw is not None else "").strip().rstrip("%％")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        errors[key] = message
        return None
    if not low <= value <= high:
        errors[key] = message
        return None
    return value


def _whole(value, key: str, errors: dict, message: str):
    """``value`` when it is a whole number (or None); a decimal is refused with ``message``, never truncated."""
    if value is not None and not float(value).is_integer():
        errors[key] = message
        return None
    return value


def parse_dimensions(raw, errors: dict) -> list[str]:
    """One dimension a line (or separated by 、 , ，); empty: the default six."""
    parts = raw if isinstance(raw, (list, tuple)) else re.split(r"[\n,，、]+", str(raw or ""))
    names = []
    for part in (str(p).strip() for p in parts):
        if part and part not in names:
            names.append(part[:20])
    if len(names) > MAX_DIMENSIONS:
        errors["dimensions"] = _("维度最多 %(n)s 个", n=MAX_DIMENSIONS)
    return names or list(DEFAULT_DIMENSIONS)


def parse_questions(raw, dimensions: list[str], errors: dict) -> list[dict]:
    """The questionnaire, one question a line: ``维度|类型|题目`` or, for a choice, ``维度|选择|题目|选项1/选项2``.

    类型: 评分 (score 1–5), 选择 (choice), 文字 (text); a line without ``|`` is a score question of the first
    dimension. Questions keep their order; each gets the key ``q1``, ``q2`` … by position."""
    if isinstance(raw, list):
        return _checked_questions(raw, dimensions, errors)
    lines = [line.strip() for line in str(raw or "").splitlines() if line.strip()]
    questions = []
    for number, line in enumerate(lines, start=1):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 1:
            parts = [dimensions[0], "score", parts[0]]
        if len(parts) < 3:
            errors["questions"] = _("第 %(n)s 行应为“维度|类型|题目”：%(line)s", n=number, line=line)
            return []
        choices = [c.strip() for c in re.split(r"[/／]", parts[3]) if c.strip()] if len(parts) > 3 else []
        questions.append({"dimension": parts[0], "kind": KIND_WORDS.get(parts[1], parts[1]), "text": parts[2],
                          "choices": choices})
    return _checked_questions(questions, dimensions, errors)


def _checked_questions(questions: list[dict], dimensions: list[str], errors: dict) -> list[dict]:
    if not questions:
        errors["questions"] = _("请至少填写一道题目")
        return []
    if len(questions) > MAX_QUESTIONS:
        errors["questions"] = _("题目最多 %(n)s 道", n=MAX_QUESTIONS)
        return []
    checked = []
    for number, question in enumerate(questions, start=1):
        kind, text = question.get("kind"), str(question.get("text") or "").strip()
        problem = None
        if question.get("dimension") not in dimensions:
            problem = _("第 %(n)s 题的维度“%(value)s”不在维度列表中", n=number, value=question.get("dimension"))
        elif kind not in QUESTION_KINDS:
            problem = _("第 %(n)s 题的类型“%(value)s”应为 评分、选择 或 文字", n=number, value=kind)
        elif not text or len(text) > 200:
            problem = _("第 %(n)s 题的题目须为 1–200 个字", n=number)
        elif kind == "choice" and len(question.get("choices") or []) < 2:
            problem = _("第 %(n)s 题是选择题，请用 / 分隔至少两个选项", n=number)
        if problem:
            errors["questions"] = problem
            return []
        checked.append({"key": f"q{number}", "text": text, "kind": kind, "dimension": question["dimension"],
                        "choices": list(question.get("choices") or []) if kind == "choice" else []})
    return checked


def _projects(raw, errors: dict) -> list[ObjectId]:
    ids = []
    for value in raw or []:
        try:
            project = Project.objects(pk=ObjectId(str(value))).first()
        except InvalidId:
            project = None
        if project is None:
            errors["projects"] = _("项目不存在：%(value)s", value=value)
            return []
        ids.append(project.pk)
    if not ids:
        errors["projects"] = _("请至少选择一个调查项目")
    return ids


def clean_plan(values: dict) -> dict:
    """The survey's plan from form or API ``values``, checked; ``ValidationFailed`` naming each bad field."""
    errors: dict = {}
    title = str(values.get("title") or "").strip()
    if not title or len(title) > 80:
        errors["title"] = _("请填写调查名称（最多 80 个字）")
    kind = values.get("kind") or "consumer"
    if kind not in KINDS:
        errors["kind"] = _("请选择调查对象类别")
    starts, ends = _date(values.get("starts_on"), "starts_on", errors), _date(values.get("ends_on"), "ends_on", errors)
    if starts and ends and ends < starts:
        errors["ends_on"] = _("结束日期不能早于开始日期")
    dimensions = parse_dimensions(values.get("dimensions"), errors)
    planned_message = _("计划样本数须为 1 到 1000000 之间的整数")
    plan = {
        "title": title, "kind": kind,
        "purpose": str(values.get("purpose") or "").strip()[:1000],
        "target_group": str(values.get("target_group") or "").strip()[:200],
        "method": str(values.get("method") or METHODS[0]).strip()[:40],
        "staff": str(values.get("staff") or "").strip()[:200],
        "starts_on": starts.isoformat() if starts else None, "ends_on": ends.isoformat() if ends else None,
        "projects": _projects(values.get("projects"), errors),
        "planned": _whole(_number(values.get("planned"), "planned", 1, 1_000_000, None, errors, planned_message),
                          "planned", errors, planned_message),
        "return_target": _number(values.get("return_target"), "return_target", MIN_RETURN_TARGET, 100,
                                 DEFAULT_RETURN_TARGET * 100, errors,
                                 _("回收率目标须为 70–100 之间的百分数（004 满意度调查：不低于 70%）")),
        "threshold": _number(values.get("threshold"), "threshold", 1, 5, DEFAULT_THRESHOLD, errors,
                             _("整改阈值须在 1–5 之间，如 3.5")),
        "dimensions": dimensions,
        "questions": parse_questions(values.get("questions"), dimensions, errors),
    }
    if errors:
        raise ValidationFailed(_l("调查计划有误，请按提示修改"), errors)
    plan["planned"] = int(plan["planned"]) if plan["planned"] is not None else None
    plan["return_target"] = round(plan["return_target"] / 100, 4)
    return plan


def create_survey(values: dict, actor) -> dict:
    """Store a new survey (a draft waiting for approval) and its ``survey_plan`` record; return the survey.

    ``approve_by`` = start − 20 days and ``archive_by`` = end + 5 days (004 满意度调查 1 and 5)."""
    plan = clean_plan(values)
    starts, ends = date.fromisoformat(plan["starts_on"]), date.fromisoformat(plan["ends_on"])
    survey = {"_id": ObjectId(), **plan, "status": Stage.DRAFT,
              "approve_by": (starts - timedelta(days=APPROVE_DAYS_BEFORE)).isoformat(),
              "archive_by": (ends + timedelta(days=ARCHIVE_DAYS_AFTER)).isoformat(),
              "actions": {}, "created_at": utcnow(), "created_by": actor.user_id}

    def store() -> dict:
        record = create_record(PLAN_TYPE, {
            "title": plan["title"], "survey_kind": KIND_CHOICES[plan["kind"]], "purpose": plan["purpose"] or None,
            "starts_on": plan["starts_on"], "ends_on": plan["ends_on"], "approve_by": survey["approve_by"],
            "archive_by": survey["archive_by"], "survey_ref": str(survey["_id"])}, actor)
        survey["plan_record"] = {"id": record["_id"], "number": record["number"]}
        get_database()[SURVEYS].insert_one(survey)
        return survey

    return in_transaction(store)  # the plan record and the survey: both stored, or neither


def _move(survey: dict, expected: str, stage: str, actor, stamp: dict) -> dict:
    """Move ``survey`` from ``expected`` to ``stage`` and its plan record along, in one transaction (a refused
    record update leaves the survey where it was); ``Conflict`` when it is not at ``expected`` any more."""
    def move() -> dict:
        moved = get_database()[SURVEYS].find_one_and_update(
            {"_id": survey["_id"], "status": expected}, {"$set": {"status": stage, **stamp}},
            return_document=ReturnDocument.AFTER)
        if moved is None:
            now_at = get_survey(survey["_id"])["status"]
            raise Conflict(_l("调查当前为“%(stage)s”，不能执行此操作", stage=STAGE_LABELS[now_at]))
        record = get_record(PLAN_TYPE, survey["plan_record"]["id"])
        update_record(PLAN_TYPE, record["_id"], {"status": PLAN_STATUS[stage]}, actor, version=record["version"])
        return moved

    return in_transaction(move)


def approve(value, actor) -> dict:
    """Approve the plan (draft → approved): the survey may be distributed and answered; the plan record's
    approval clock is met — on time when before ``approve_by`` ends."""
    return _move(get_survey(value, actor.access, Action.EDIT.value), Stage.DRAFT, Stage.APPROVED, actor,
                 {"approved_at": utcnow(), "approved_by": actor.user_id})


def close(value, actor) -> dict:
    """End the survey (approved → closed): no more answers."""
    return _move(get_survey(value, actor.access, Action.EDIT.value), Stage.APPROVED, Stage.CLOSED, actor,
                 {"closed_at": utcnow()})


def archive(value, actor) -> dict:
    """Archive the ended survey's records (closed → archived), meeting the plan record's archive clock."""
    return _move(get_survey(value, actor.access, Action.EDIT.value), Stage.CLOSED, Stage.ARCHIVED, actor,
                 {"archived_at": utcnow()})


def approval_late(survey: dict, today: date, tz: tzinfo) -> bool:
    """The plan was not approved by ``approve_by`` (still waiting after it, or approved after it); ``today`` and
    the moment of approval are compared as local dates in ``tz`` (``approve_by`` is a local date)."""
    return _late(survey.get("approved_at"), survey["approve_by"], today, tz)


def archive_late(survey: dict, today: date, tz: tzinfo) -> bool:
    """The ended survey was not archived by ``archive_by`` (local dates in ``tz``, as ``approval_late``)."""
    return _late(survey.get("archived_at"), survey["archive_by"], today, tz)


def _late(done_at, due: str, today: date, tz: tzinfo) -> bool:
    return (aware(done_at).astimezone(tz).date() if done_at else today) > date.fromisoformat(due)
