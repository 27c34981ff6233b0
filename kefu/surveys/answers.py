"""Distribution, answers and the distribution and return rates of a survey.

Each respondent is one document in ``survey_answers``::

    {_id, survey, customer, customer_name, project, token, distributed_at,
     answered_at (None until answered), channel: link|phone, entered_by, answers: {question key: value}}

Distributing gives every (not archived) customer of the survey's projects a document with a random token — the
answer link ``/s/<token>``; distributing again adds only the customers not reached yet (unique per survey and
customer). An answer is accepted once: the write is conditional on ``answered_at`` still being empty, so a second
submission of the same link (or a phone entry racing it) is refused.

Rates (004 满意度调查): distribution = distributed / planned, target 100 %; return = answered / distributed,
target the survey's ``return_target`` (≥ 70 %). When short, the gap says how many more are needed.
"""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.errors import Conflict, NotFound, ValidationFailed
from kefu.core.i18n import _, _l
from kefu.org.customers import Customer
from kefu.surveys.plans import DISTRIBUTION_TARGET, Stage, get_survey, survey_id

ANSWERS = "survey_answers"
TOKEN_BYTES = 18  # 24 URL-safe characters: not guessable
MAX_TEXT = 500
INDEXES = [
    IndexModel([("token", ASCENDING)], name="token", unique=True),
    IndexModel([("survey", ASCENDING), ("customer", ASCENDING)], name="survey_customer", unique=True),
    IndexModel([("survey", ASCENDING), ("answered_at", ASCENDING)], name="survey_answered"),
]


def ensure_indexes() -> None:
    """Create the answers' indexes (idempotent; the unique ones keep tokens and respondents single)."""
    get_database()[ANSWERS].create_indexes(INDEXES)


def distribute(value) -> int:
    """Give every customer of the survey's projects not reached yet an answer link; return how many were added.

    Only an approved survey is distributed (``Conflict`` otherwise)."""
    survey = get_survey(value)
    if survey["status"] != Stage.APPROVED:
        raise Conflict(_l("调查计划批准后才能发放问卷"))
    reached = set(get_database()[ANSWERS].distinct("customer", {"survey": survey["_id"]}))
    added = 0
    targets = Customer.objects(project__in=survey["projects"], archived__ne=True).only("name", "project")
    for customer in targets.as_pymongo():
        if customer["_id"] in reached:
            continue
        try:
            get_database()[ANSWERS].insert_one({
                "survey": survey["_id"], "customer": customer["_id"], "customer_name": customer.get("name"),
                "project": customer.get("project"),
                "token": secrets.token_urlsafe(TOKEN_BYTES), "distributed_at": utcnow(), "answered_at": None,
                "channel": None, "entered_by": None, "answers": {}})
            added += 1
        except DuplicateKeyError:  # distributed at the same moment by someone else
            continue
    return added


def by_token(token: str) -> tuple[dict, dict]:
    """``(answer document, survey)`` of the link ``token``; ``NotFound`` for an unknown token."""
    found = get_database()[ANSWERS].find_one({"token": str(token or "")[:64]})
    if found is None:
        raise NotFound(_l("问卷链接无效或已失效，请与客服中心联系"))
    return found, get_survey(found["survey"])


def respondents(value, *, answered: bool | None = None, limit: int = 200) -> list[dict]:
    """The survey's respondents (``answered`` True/False: only those), by name."""
    query: dict = {"survey": survey_id(value)}
    if answered is not None:
        query["answered_at"] = {"$ne": None} if answered else None
    return list(get_database()[ANSWERS].find(query, sort=[("customer_name", 1), ("_id", 1)], limit=limit))


def clean_answers(survey: dict, raw: dict) -> dict:
    """The answers of the form ``raw`` (question key → text), checked against the questionnaire: every score
    question answered 1–5, a choice one of its options, a text at most 500 characters. ``ValidationFailed`` names
    each question wrongly answered."""
    errors, answers = {}, {}
    for question in survey["questions"]:
        key, value = question["key"], str(raw.get(question["key"]) or "").strip()
        if question["kind"] == "score":
            if value not in {"1", "2", "3", "4", "5"}:
                errors[key] = _("请为此题打分（1–5 分）")
                continue
            answers[key] = int(value)
        elif question["kind"] == "choice":
            if value and value not in question["choices"]:
                errors[key] = _("请从选项中选择")
                continue
            answers[key] = value or None
        else:
            if len(value) > MAX_TEXT:
                errors[key] = _("最多 %(n)s 个字", n=MAX_TEXT)
                continue
            answers[key] = value or None
    if errors:
        raise ValidationFailed(_l("问卷尚未填写完整，请按提示修改"), errors)
    return answers


def submit(token: str, raw: dict, *, channel: str = "link", entered_by=None) -> dict:
    """Store the answers of the link ``token`` (``channel`` "phone" with ``entered_by``: an agent's phone entry);
    return the stored document. ``NotFound`` for an unknown token, ``Conflict`` when the questionnaire was answered
    already or the survey is not open for answers."""
    found, survey = by_token(token)
    if found.get("answered_at") is not None:
        raise Conflict(_l("此问卷已提交，感谢您的参与；每份问卷只能提交一次"))
    if survey["status"] != Stage.APPROVED:
        raise Conflict(_l("本次调查已结束或尚未开始，暂不能提交"))
    answers = clean_answers(survey, raw)
    stored = get_database()[ANSWERS].find_one_and_update(
        {"_id": found["_id"], "answered_at": None},
        {"$set": {"answers": answers, "answered_at": utcnow(), "channel": channel, "entered_by": entered_by}},
        return_document=ReturnDocument.AFTER)
    if stored is None:  # answered in between
        raise Conflict(_l("此问卷已提交，感谢您的参与；每份问卷只能提交一次"))
    return stored


def token_of(value, answer_id) -> str:
    """The token of respondent ``answer_id`` of the survey (for an agent's phone entry); ``NotFound`` otherwise."""
    found = get_database()[ANSWERS].find_one({"_id": survey_id(answer_id), "survey": survey_id(value)})
    if found is None:
        raise NotFound(_l("受访者不存在"))
    return found["token"]


@dataclass(frozen=True)
class Rates:
    """The survey's progress against its targets; a ``*_gap`` is how many more are needed (0 when reached)."""

    planned: int
    distributed: int
    answered: int
    distribution_rate: float | None
    return_rate: float | None
    return_target: float
    distribution_gap: int
    return_gap: int

    @property
    def distribution_reached(self) -> bool:
        return self.distribution_gap == 0 and self.planned > 0

    @property
    def return_reached(self) -> bool:
        return self.return_gap == 0 and self.distributed > 0


def rates(survey: dict) -> Rates:
    """Distribution and return rates of ``survey`` now (``planned``: the plan's sample size, else the customers
    of its projects)."""
    answers = get_database()[ANSWERS]
    distributed = answers.count_documents({"survey": survey["_id"]})
    answered = answers.count_documents({"survey": survey["_id"], "answered_at": {"$ne": None}})
    planned = survey.get("planned") or Customer.objects(project__in=survey["projects"], archived__ne=True).count()
    target = survey.get("return_target") or 0.7
    return Rates(
        planned=planned, distributed=distributed, answered=answered,
        distribution_rate=distributed / planned if planned else None,
        return_rate=answered / distributed if distributed else None, return_target=target,
        distribution_gap=max(0, math.ceil(planned * DISTRIBUTION_TARGET) - distributed),
        return_gap=max(0, math.ceil(round(distributed * target, 6)) - answered),
    )
