"""Distribution, answers and the distribution and return rates of a survey.

Each respondent is one document in ``survey_answers``::

    {_id, survey, customer, customer_name, project, token, prepared_at, sent_at, sent_by, sent_via: list|manual,
     answered_at (None until answered), channel: link|phone, entered_by, answers: {question key: value}}

Preparing (``prepare_links``) gives every (not archived) customer of the survey's projects a document with a
random token — the answer link ``/s/<token>``; preparing again adds only the customers not reached yet (unique per
survey and customer). A link is *distributed* only once it is sent: the distribution list downloaded as XLSX
(``distribution_list``) marks the rows it carries sent, an agent marks one row sent (``mark_sent``), and an answer
(through the link or on the phone) shows the respondent was reached. An answer is accepted once: the write is
conditional on ``answered_at`` still being empty, so a second submission of the same link (or a phone entry racing
it) is refused.

Rates (004 满意度调查): distribution = sent / planned, target 100 %; return = answered / sent, target the survey's
``return_target`` (≥ 70 %). When short, the gap says how many more are needed.
"""
from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Font
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import BulkWriteError

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.errors import Conflict, NotFound, ValidationFailed
from kefu.core.i18n import _, _l
from kefu.org.customers import Customer, sees_personal_data, shown
from kefu.org.roles import Action
from kefu.surveys.plans import DEFAULT_RETURN_TARGET, DISTRIBUTION_TARGET, Stage, get_survey, survey_id

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


def prepare_links(value, actor) -> int:
    """Give every customer of the survey's projects not reached yet an answer link (prepared, not yet sent);
    return how many were added. Only an approved survey in the actor's scope (``Conflict`` otherwise)."""
    survey = get_survey(value, actor.access, Action.EDIT.value)
    if survey["status"] != Stage.APPROVED:
        raise Conflict(_l("调查计划批准后才能发放问卷"))
    reached = set(get_database()[ANSWERS].distinct("customer", {"survey": survey["_id"]}))
    now = utcnow()
    targets = Customer.objects(project__in=survey["projects"], archived__ne=True).only("name", "project")
    documents = [{"survey": survey["_id"], "customer": customer["_id"], "customer_name": customer.get("name"),
                  "project": customer.get("project"), "token": secrets.token_urlsafe(TOKEN_BYTES),
                  "prepared_at": now, "sent_at": None, "answered_at": None, "channel": None, "entered_by": None,
                  "answers": {}}
                 for customer in targets.as_pymongo() if customer["_id"] not in reached]
    if not documents:
        return 0
    try:
        return len(get_database()[ANSWERS].insert_many(documents, ordered=False).inserted_ids)
    except BulkWriteError as exc:  # some prepared at the same moment by someone else: the others are stored
        return exc.details.get("nInserted", 0)


def mark_sent(value, answer_id, actor) -> bool:
    """Mark respondent ``answer_id`` of the survey sent by ``actor`` (the link given by SMS, WeChat …); False when
    it was sent already. ``NotFound`` outside the actor's scope or for an unknown respondent."""
    survey = get_survey(value, actor.access)
    found = get_database()[ANSWERS].update_one(
        {"_id": survey_id(answer_id), "survey": survey["_id"], "sent_at": None},
        {"$set": {"sent_at": utcnow(), "sent_by": actor.user_id, "sent_via": "manual"}})
    if not found.matched_count and not get_database()[ANSWERS].count_documents(
            {"_id": survey_id(answer_id), "survey": survey["_id"]}):
        raise NotFound(_l("受访者不存在"))
    return bool(found.modified_count)


def distribution_list(value, actor, link: Callable[[str], str]) -> bytes:
    """The distribution list of the survey's unanswered respondents as XLSX (客户, 电话 — masked unless the actor
    sees customers' personal data —, 答卷链接 ``link(token)``, 状态); the rows not sent yet are marked sent by
    this download. Only while the survey takes answers (``Conflict`` otherwise)."""
    survey = get_survey(value, actor.access)
    if survey["status"] != Stage.APPROVED:
        raise Conflict(_l("调查计划批准后才能发放问卷"))
    rows = list(get_database()[ANSWERS].find({"survey": survey["_id"], "answered_at": None},
                                             {"customer": 1, "customer_name": 1, "token": 1, "sent_at": 1},
                                             sort=[("customer_name", 1), ("_id", 1)]))
    unmasked = sees_personal_data(actor.access)
    customers = {c.pk: c for c in Customer.objects(pk__in=[r["customer"] for r in rows]).only("phone_enc")}
    book = Workbook()
    sheet = book.active
    sheet.title = _("发放名单")
    sheet.append((_("客户"), _("电话"), _("答卷链接"), _("状态")))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        customer = customers.get(row["customer"])
        sheet.append((row.get("customer_name"), shown(customer, "phone", unmasked) if customer else "",
                      link(row["token"]), _("已发送") if row.get("sent_at") else _("本次发送")))
    unsent = [row["_id"] for row in rows if not row.get("sent_at")]
    if unsent:
        get_database()[ANSWERS].update_many({"_id": {"$in": unsent}, "sent_at": None},
                                            {"$set": {"sent_at": utcnow(), "sent_by": actor.user_id,
                                                      "sent_via": "list"}})
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def by_token(token: str) -> tuple[dict, dict]:
    """``(answer document, survey)`` of the link ``token``; ``NotFound`` for an unknown token."""
    found = get_database()[ANSWERS].find_one({"token": str(token or "")[:64]})
    if found is None:
        raise NotFound(_l("问卷链接无效或已失效，请与客服中心联系"))
    return found, get_survey(found["survey"])


def respondents(value, *, answered: bool | None = None, limit: int = 200) -> list[dict]:
    # The caller has checked the survey is in the user's scope (``get_survey`` with the access).
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
    now = utcnow()
    stored = get_database()[ANSWERS].find_one_and_update(  # answered: reached, so sent (when not marked yet)
        {"_id": found["_id"], "answered_at": None},
        [{"$set": {"answers": {"$literal": answers}, "answered_at": now, "channel": channel,
                   "entered_by": entered_by, "sent_at": {"$ifNull": ["$sent_at", now]}}}],
        return_document=ReturnDocument.AFTER)
    if stored is None:  # answered in between
        raise Conflict(_l("此问卷已提交，感谢您的参与；每份问卷只能提交一次"))
    return stored


def token_of(value, answer_id, access) -> str:
    """The token of respondent ``answer_id`` of the survey (for an agent's phone entry); ``NotFound`` otherwise,
    also when the survey is outside ``access``'s scope."""
    survey = get_survey(value, access)
    found = get_database()[ANSWERS].find_one({"_id": survey_id(answer_id), "survey": survey["_id"]})
    if found is None:
        raise NotFound(_l("受访者不存在"))
    return found["token"]


@dataclass(frozen=True)
class Rates:
    """The survey's progress against its targets: ``prepared`` links, ``distributed`` (sent) ones, ``answered``
    ones; a ``*_gap`` is how many more are needed (0 when reached)."""

    planned: int
    prepared: int
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


def _counted(value) -> dict:
    return {"$sum": {"$cond": [{"$ifNull": [value, False]}, 1, 0]}}


def rates_of(surveys: list[dict]) -> dict:
    """``{survey id: Rates}`` of ``surveys`` now, in two queries whatever their number (``planned``: the plan's
    sample size, else the customers of its projects)."""
    ids = [survey["_id"] for survey in surveys]
    counts = {row["_id"]: row for row in get_database()[ANSWERS].aggregate([
        {"$match": {"survey": {"$in": ids}}},
        {"$group": {"_id": "$survey", "prepared": {"$sum": 1}, "sent": _counted("$sent_at"),
                    "answered": _counted("$answered_at")}}])}
    unplanned = {project for survey in surveys if not survey.get("planned") for project in survey["projects"]}
    per_project = {}
    if unplanned:
        per_project = {row["_id"]: row["n"] for row in Customer._get_collection().aggregate([
            {"$match": {"project": {"$in": list(unplanned)}, "archived": {"$ne": True}}},
            {"$group": {"_id": "$project", "n": {"$sum": 1}}}])}
    found = {}
    for survey in surveys:
        row = counts.get(survey["_id"], {})
        planned = survey.get("planned") or sum(per_project.get(project, 0) for project in survey["projects"])
        found[survey["_id"]] = _rates(planned, row.get("prepared", 0), row.get("sent", 0), row.get("answered", 0),
                                      survey.get("return_target") or DEFAULT_RETURN_TARGET)
    return found


def rates(survey: dict) -> Rates:
    """Distribution and return rates of ``survey`` now (``rates_of`` for one)."""
    return rates_of([survey])[survey["_id"]]


def _rates(planned: int, prepared: int, sent: int, answered: int, target: float) -> Rates:
    return Rates(
        planned=planned, prepared=prepared, distributed=sent, answered=answered,
        distribution_rate=sent / planned if planned else None,
        return_rate=answered / sent if sent else None, return_target=target,
        distribution_gap=max(0, math.ceil(planned * DISTRIBUTION_TARGET) - sent),
        return_gap=max(0, math.ceil(round(sent * target, 6)) - answered),
    )
