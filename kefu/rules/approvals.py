"""Approval by amount (审批): the ``approvals:`` section of a record type (003 §3, domain §5).

```yaml
approvals:
  amount_field: compensation_amount   # a money, decimal or integer field (not sensitive)
  on_status: 待审批                    # entering it opens an approval request for the amount at that moment
  approved_status: 处理中              # optional: where approving moves the record
  rejected_status: 处理中              # optional: where rejecting moves it
  requires_approval: [待回访, 已关闭]   # optional: entered only when approved for the amount (default below)
  bands:                               # from 0 up, each starting at the previous one's ``below``
    - {below: 5000, approver: 项目总监, note: 抄送总经理}
    - {from: 5000, below: 20000, approver: 区域总经理, reviewers: [财务总监, 项目总监]}
    - {from: 20000, approver: 集团赔付委员会, reviewers: [财务总监, 项目总监, 总经理]}
```

A band covers ``from`` ≤ amount < ``below`` (the last one has no ``below``). ``approver`` and ``reviewers`` are
approval titles (审批职务) that users hold (``kefu.org.users.User.approval_titles``). Acting needs ``approve`` on the
type (``kefu.org.roles``) *and* the title: every reviewer title reviews first, then the approver approves or rejects.
Entering ``on_status`` without an amount is refused; while a request is pending the record leaves ``on_status`` only
by a decision, and a changed amount opens a fresh request (its band may differ).

``approver_by`` (section-wide or per band, ``kefu.rules.approvers``) chooses the titles by a field's value.

Approval cannot be skipped: while the amount has a value, a person's save may not enter a status past the approval
point (``requires_approval``; default: ``approved_status`` and the workflow's closed statuses) unless the request is
approved for that very amount. Changing an approved amount, wherever the record is, opens a new pending request that
its approvers decide there. The engine's own moves (a decision moving the status, a rework) are not held back.

The request lives on the record as ``approval`` = {id, key, state (pending/approved/rejected), amount, band,
band_text, approver, reviewers, note, reviews: [{title, by, by_name, at, comment}], opened_at, decided_at, decided_by,
decided_by_name, comment}. Opening, each review and the decision are timeline events of kind ``approval`` (their
``data`` holds the action, amount, band and comment); an amount given past the approval point without an approved
request is refused.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Annotated

from bson import Decimal128, ObjectId
from pydantic import BeforeValidator, Field, StrictStr, model_validator

from kefu.core.clock import utcnow
from kefu.core.db import transactional
from kefu.core.errors import Conflict, DomainError, PermissionDenied, ValidationFailed
from kefu.core.i18n import _, _l, in_user_language
from kefu.org.roles import Action as AccessAction
from kefu.org.roles import role_label
from kefu.records.actor import system_actor
from kefu.records.engine_state import add_approval_reviews, decide_approval, set_approval
from kefu.records.fields import get_field_type
from kefu.records.sections import WORKFLOW, Section, SectionModel, at, parsed, refuse, workflow_of
from kefu.records.store import get_record, get_record_for
from kefu.records.timeline import record_event
from kefu.records.types import get_record_type
from kefu.records.values import read_plain_values
from kefu.records.write import update_record
from kefu.rules.approvers import ApproverBy, chooser_problems
from kefu.rules.shapes import NUMBERS, Name, picker


class State(str, Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Action(str, Enum):
    REVIEW = "review"
    APPROVE = "approve"
    REJECT = "reject"


STATE_LABELS = {State.PENDING.value: _l("待审批"), State.APPROVED.value: _l("已通过"),
                State.REJECTED.value: _l("已驳回")}
ACTION_LABELS = {Action.REVIEW.value: _l("审核"), Action.APPROVE.value: _l("通过"), Action.REJECT.value: _l("驳回")}


def amount_text(amount: Decimal) -> str:
    """``3,000`` or ``3,000.50``: an amount as messages show it."""
    return f"{int(amount):,}" if amount == amount.to_integral_value() else f"{amount:,.2f}"


def _number(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def _amount(value) -> Decimal:
    number = _number(value)
    if number is None:
        raise refuse(_l("应为不小于 0 的金额"))
    return number


Amount = Annotated[Decimal, BeforeValidator(_amount)]


class Band(SectionModel):
    """One amount band: ``lower`` ≤ amount < ``upper`` (None: no upper bound)."""

    lower: Amount = Field(Decimal(0), alias="from", title=_l("起始金额（含）"), description=_l("第 1 档为 0"))
    upper: Amount | None = Field(None, alias="below", title=_l("上限金额（不含）"), description=_l("最后一档不写"))
    approver: Name = Field(title=_l("审批职务"))
    reviewers: tuple[Name, ...] = Field((), title=_l("先审核的职务"), json_schema_extra=picker("words"))
    note: StrictStr = Field("", title=_l("备注"))
    approver_by: ApproverBy | None = Field(None, title=_l("按字段值确定审批人"),
                                           description=_l("003 §4.2–§4.3：如销售类由营销总监、设计类由研发总监审批"))

    @model_validator(mode="after")
    def _distinct_titles(self):
        if self.approver in self.reviewers:
            raise refuse(_l("的审批职务“%(title)s”不能同时是审核人", title=self.approver))
        if len(set(self.reviewers)) != len(self.reviewers):
            raise refuse(_l("的 reviewers 有重复"))
        clashes = self.approver_by.clashes(self.approver, self.reviewers) if self.approver_by else []
        if clashes:
            raise refuse(clashes[0])
        return self

    @classmethod
    def of(cls, lower: Decimal, upper: Decimal | None, approver: str) -> "Band":
        return cls(lower=lower, upper=upper, approver=approver)

    def covers(self, amount: Decimal) -> bool:
        return amount >= self.lower and (self.upper is None or amount < self.upper)

    def text(self) -> str:
        if self.upper is None:
            return _("%(lower)s 元及以上", lower=amount_text(self.lower))
        if self.lower == 0:
            return _("%(upper)s 元以下", upper=amount_text(self.upper))
        return _("%(lower)s–%(upper)s 元", lower=amount_text(self.lower), upper=amount_text(self.upper))


class Approvals(SectionModel):
    """The ``approvals:`` section: bands from 0 up, each starting at the previous one's ``below``."""

    amount_field: StrictStr = Field(title=_l("金额字段"), description=_l("金额、小数或整数字段（非敏感）"),
                                    json_schema_extra=picker("field", "number"))
    on_status: Name = Field(title=_l("发起审批的状态"), description=_l("进入该状态时按金额发起审批"),
                            json_schema_extra=picker("status"))
    approved_status: Name | None = Field(None, title=_l("通过后转到"), json_schema_extra=picker("status"))
    rejected_status: Name | None = Field(None, title=_l("驳回后转到"), json_schema_extra=picker("status"))
    requires_approval: tuple[Name, ...] | None = Field(
        None, min_length=1, title=_l("须审批通过才能进入的状态"),
        description=_l("金额有值时须审批通过才能进入的状态（默认：通过后转到的状态与流程的关闭状态）"),
        json_schema_extra=picker("statuses"))
    approver_by: ApproverBy | None = Field(None, title=_l("按字段值确定审批人"),
                                           description=_l("各档未单独设置时适用"))
    bands: tuple[Band, ...] = Field(min_length=1, title=_l("金额档位"), json_schema_extra=picker("table"))

    @model_validator(mode="after")
    def _contiguous_bands(self):
        for key in ("approved_status", "rejected_status"):
            if getattr(self, key) == self.on_status:
                raise refuse(_l(".%(key)s 不能与 on_status 相同", key=key))
        if self.on_status in (self.requires_approval or ()):
            raise refuse(_l(".requires_approval 不能包含 on_status“%(status)s”（进入它才发起审批）", status=self.on_status))
        expected = Decimal(0)
        for n, band in enumerate(self.bands, start=1):
            if band.lower != expected:
                if n == 1:
                    raise refuse(_l(".bands 应从 0 元开始（第 1 档不写 from 或写 0）"))
                raise refuse(_l(".bands 第 %(n)s 档应从 %(amount)s 元开始，紧接上一档的 below", n=n,
                                amount=amount_text(expected)))
            if band.upper is None and n != len(self.bands):
                raise refuse(_l(".bands 第 %(n)s 档缺少 below（只有最后一档可以不写）", n=n))
            if band.upper is not None and band.upper <= band.lower:
                raise refuse(_l(".bands 第 %(n)s 档的 below 应大于 from", n=n))
            if band.upper is not None and n == len(self.bands):
                raise refuse(_l(".bands 最后一档不应写 below（它覆盖以上所有金额）"))
            expected = band.upper
            clashes = self.approver_by.clashes(band.approver, band.reviewers) \
                if self.approver_by and not band.approver_by else []
            if clashes:
                raise refuse(_l(".bands 第 %(n)s 档%(problem)s", n=n, problem=clashes[0]))
        return self

    def chooser(self, band: Band) -> ApproverBy | None:
        """Who chooses the band's approver by a field's value: its own ``approver_by``, else the section's."""
        return band.approver_by or self.approver_by

    def band_for(self, amount: Decimal, values: dict | None = None) -> tuple[int, Band]:
        """The band ``amount`` falls in; with the record's ``values``, its titles as ``approver_by`` chooses."""
        for index, band in enumerate(self.bands):
            if band.covers(amount):
                chooser = self.chooser(band)
                if values is None or chooser is None:
                    return index, band
                approver, reviewers = chooser.titles_for(values.get(chooser.field), band.approver, band.reviewers)
                return index, band.model_copy(update={"approver": approver, "reviewers": reviewers})
        raise ValidationFailed(_l("金额 %(amount)s 不在任何审批档位内", amount=amount_text(amount)))

    def chooser_fields(self) -> set[str]:
        """The fields an ``approver_by`` reads."""
        return {chooser.field for chooser in (self.approver_by, *(band.approver_by for band in self.bands))
                if chooser is not None}

    def past_approval(self, workflow) -> frozenset[str]:
        """The statuses past the approval point: entered, while the amount has a value, only with the request
        approved for that amount (``requires_approval``, else ``approved_status`` and ``workflow``'s closed ones)."""
        if self.requires_approval is not None:
            return frozenset(self.requires_approval)
        return frozenset((*workflow.closed, *((self.approved_status,) if self.approved_status else ())))


def rules_of(record_type) -> Approvals | None:
    """The type's approval rules, or None when it has no ``approvals:`` section."""
    return parsed(record_type, ApprovalsSection.key)


class ApprovalsSection(Section):
    """``approvals:``: refuse entering ``on_status`` without an amount; open a request on entering it."""

    key = "approvals"
    title = _l("审批规则")
    model = Approvals
    item_words = {"bands": "档"}

    def problems(self, draft, model: Approvals) -> list:
        problems = []
        field = draft.field(model.amount_field)
        if field is None:
            numeric = "、".join(k for k, f in draft.fields.items() if f.get("type") in NUMBERS) or "-"
            problems.append(_l("approvals.amount_field 应为本类型的金额字段；“%(field)s”不存在（可用：%(fields)s）",
                               field=model.amount_field, fields=numeric))
        elif field.get("type") not in NUMBERS:
            problems.append(_l("approvals.amount_field“%(field)s”应为金额、小数或整数字段", field=model.amount_field))
        elif field.get("sensitive"):
            problems.append(_l("approvals.amount_field 不能是敏感字段“%(field)s”", field=model.amount_field))
        problems = [at("approvals.amount_field", problem) for problem in problems]
        problems += chooser_problems(model, draft)
        workflow = draft.section(WORKFLOW)
        named = [(key, getattr(model, key)) for key in ("on_status", "approved_status", "rejected_status")]
        named += [("requires_approval", status) for status in model.requires_approval or ()]
        for key, value in named:
            if value is not None and workflow is not None and value not in workflow.statuses:
                problems.append(at(f"approvals.{key}", _l(
                    "approvals.%(key)s“%(status)s”不在流程状态中；可选：%(statuses)s", key=key, status=value,
                    statuses="、".join(workflow.statuses))))
        return problems

    def choice_references(self, owner, model, type_key, field_key):
        """The choice texts the type's own ``approver_by`` settings name."""
        if owner.key != type_key or model is None:
            return []
        choosers = (model.approver_by, *(band.approver_by for band in model.bands))
        return [(_l("审批规则 approvals 的 approver_by"), value) for chooser in choosers
                if chooser is not None and chooser.field == field_key for value in chooser.named()]

    def before_save(self, record_type, model, current, after, changed, *, system):
        if model is not None:
            _refuse_without_decision(record_type, model, current, after, changed)
            if not system:  # the engine's own moves: a decision moving the record, a rework
                _refuse_skipping(record_type, model, current, after, changed)

    def after_save(self, record_type, model, document, before, changed, actor):
        if model is not None:
            _open_on_entry(record_type, model, document, changed, actor)


# -- the request ---------------------------------------------------------------------------------------

def stored_amount(record_type, rules: Approvals, document: dict) -> Decimal | None:
    """The record's amount as stored (None when it has none)."""
    definition = record_type.field(rules.amount_field)
    stored = (document.get("data") or {}).get(rules.amount_field)
    if definition is None or stored is None:
        return None
    value = get_field_type(definition.type).from_storage(stored)
    return None if value is None else Decimal(str(value))


def amount_label(record_type, rules: Approvals) -> str:
    """The amount field's label in the user's language (its key when the field is gone)."""
    definition = record_type.field(rules.amount_field)
    return in_user_language(definition.label, definition.label_en) if definition is not None else rules.amount_field


def _refuse_without_decision(record_type, rules: Approvals, current: dict | None, after: dict, changed) -> None:
    """Refuse, before anything is written: entering ``on_status`` without an amount; leaving it, or clearing
    the amount, while a request is pending. ``current`` is the stored document (None for a new record),
    ``after`` the record's values after the change."""
    status_before = current.get("status") if current else None
    pending = bool(current) and (current.get("approval") or {}).get("state") == State.PENDING.value
    label = amount_label(record_type, rules)
    if "status" in changed and after.get("status") == rules.on_status != status_before:
        if after.get(rules.amount_field) is None:
            message = _l("进入“%(status)s”前请填写“%(label)s”：审批人按金额确定", status=rules.on_status, label=label)
            raise ValidationFailed(message, {rules.amount_field: message})
    if pending and status_before == rules.on_status and after.get("status") != rules.on_status:
        message = _l("审批中，不能直接改为“%(status)s”：须由审批人通过或驳回", status=after.get("status"))
        raise ValidationFailed(message, {"status": message})
    if pending and rules.amount_field in changed and after.get(rules.amount_field) is None:
        message = _l("审批中不能清空“%(label)s”", label=label)
        raise ValidationFailed(message, {rules.amount_field: message})


def _refuse_skipping(record_type, rules: Approvals, current: dict | None, after: dict, changed) -> None:
    """Refuse entering a status past the approval point (``Approvals.past_approval``) while the amount has a
    value, unless the request is approved for that amount; and refuse giving a record past that point an amount
    no request was ever approved for (a changed approved amount is let through: ``_open_on_entry`` reopens it)."""
    status = after.get("status")
    if status not in rules.past_approval(workflow_of(record_type)):
        return
    amount = _number(after.get(rules.amount_field))
    request = (current or {}).get("approval") or {}
    if "status" not in changed:
        if rules.amount_field in changed and amount is not None and request.get("state") != State.APPROVED.value:
            message = _l("记录已是“%(status)s”，填写“%(label)s”须先审批：请先转到“%(on_status)s”发起审批",
                         status=status, label=amount_label(record_type, rules), on_status=rules.on_status)
            raise ValidationFailed(message, {rules.amount_field: message})
        return
    if amount is None or (request.get("state") == State.APPROVED.value and request["amount"].to_decimal() == amount):
        return
    values = {"label": amount_label(record_type, rules), "amount": amount_text(amount), "status": status}
    if request.get("state") == State.PENDING.value and request["amount"].to_decimal() == amount:
        message = _l("“%(label)s” %(amount)s 元的审批尚未通过（待“%(approver)s”审批），不能改为“%(status)s”",
                     approver=request["approver"], **values)
    else:
        message = _l("“%(label)s”为 %(amount)s 元，须审批通过后才能改为“%(status)s”：请先转到“%(on_status)s”发起审批",
                     on_status=rules.on_status, **values)
    raise ValidationFailed(message, {"status": message})


def _open_on_entry(record_type, rules: Approvals, document: dict, changed, actor) -> None:
    """Open an approval request when the record enters ``on_status`` or its amount changes there, and when the
    amount of an approved request changes anywhere (the record does not pass the approval point again until the
    new amount is approved)."""
    if "status" not in changed and rules.amount_field not in changed and not rules.chooser_fields() & set(changed):
        return
    amount = stored_amount(record_type, rules, document)
    if amount is None:
        return  # before_save refuses this in on_status; a record stored before the rule existed has no request
    request = document.get("approval") or {}
    if document.get("status") == rules.on_status or (
            rules.amount_field in changed and request.get("state") == State.APPROVED.value
            and request["amount"].to_decimal() != amount):
        open_request(record_type, document, amount, actor)


def _request_key(document: dict, rules: Approvals, amount: Decimal) -> str:
    """One request per entry into ``on_status`` and amount (and, for a band a field's value chooses the titles of,
    per titles: ``open_request``)."""
    entered = (document.get("status_at") or {}).get(rules.on_status)
    return f"{entered.isoformat() if entered else '-'}|{amount}"


def open_request(record_type, document: dict, amount: Decimal, actor) -> dict | None:
    """Open the request for ``amount`` (replacing a pending one for another amount); idempotent: the same
    entry into ``on_status`` with the same amount opens one request only. Returns the request, or None."""
    rules = rules_of(record_type)
    index, band = rules.band_for(amount, read_plain_values(record_type, document))
    key = _request_key(document, rules, amount)
    existing = document.get("approval") or {}
    same_titles = rules.chooser(band) is None or (
        (existing.get("approver"), existing.get("reviewers")) == (band.approver, list(band.reviewers)))
    if existing.get("key") == key and same_titles:
        return None
    now = utcnow()
    request = {
        "id": str(ObjectId()), "key": key, "state": State.PENDING.value, "amount": Decimal128(str(amount)),
        "band": index, "band_text": band.text(), "lower": Decimal128(str(band.lower)),
        "upper": None if band.upper is None else Decimal128(str(band.upper)),
        "approver": band.approver, "reviewers": list(band.reviewers),
        "note": band.note, "reviews": [], "opened_at": now, "opened_by": actor.user_id, "opened_by_name": actor.name,
    }
    if not set_approval(document["_id"], existing.get("key"), request):
        return None  # another run opened it first
    said = {"label": amount_label(record_type, rules), "amount": amount_text(amount), "band": band.text(),
            "approver": band.approver}
    if existing.get("state") in (State.PENDING.value, State.APPROVED.value):  # a new amount replaces it
        parts = [str(_l("重新发起审批：%(label)s %(amount)s 元（%(band)s），由“%(approver)s”审批", **said))]
    else:
        parts = [str(_l("发起审批：%(label)s %(amount)s 元（%(band)s），由“%(approver)s”审批", **said))]
    if band.reviewers:
        parts.append(str(_l("须先由 %(titles)s 审核", titles="、".join(band.reviewers))))
    if band.note:
        parts.append(band.note)
    record_event(record_type.key, document["_id"], "approval", actor, text="；".join(parts),
                 data={"action": "open", "request": request["id"], "amount": str(amount), "band": index,
                 "band_text": band.text(), "approver": band.approver, "reviewers": list(band.reviewers)})
    return request


# -- acting on a request --------------------------------------------------------------------------------

def _titles(user) -> list[str]:
    return list(getattr(user, "approval_titles", None) or [])


def _mine(user) -> str:
    return "、".join(_titles(user)) or "-"


def refusal(record_type, document: dict, action: str, actor) -> DomainError | None:
    """Why ``actor`` (their roles' ``approve`` on the type and their approval titles) may not take ``action`` on the
    record's request now (None: they may)."""
    user = actor.user
    rules = rules_of(record_type)
    if action not in ACTION_LABELS:
        allowed = "、".join(f"{k}（{v}）" for k, v in ACTION_LABELS.items())
        return ValidationFailed(_l("审批操作“%(action)s”无效；可选：%(allowed)s", action=action, allowed=allowed),
                                {"action": _l("审批操作无效")})
    if rules is None:
        return ValidationFailed(_l("“%(type)s”没有审批规则", type=record_type.name))
    request = document.get("approval") or {}
    if request.get("state") != State.PENDING.value:  # wherever the record is: an approved amount may be changed
        return Conflict(_l("此记录没有待审批的申请（当前状态：%(status)s）", status=document.get("status") or "-"))
    if user is None or not actor.access.allows(record_type.key, AccessAction.APPROVE.value):
        roles = "、".join(role_label(r) for r in getattr(user, "roles", None) or []) or "-"
        return PermissionDenied(_l("您没有审批“%(type)s”的权限（您的角色：%(mine)s）", type=record_type.name,
                                   mine=roles))
    titles = set(_titles(user))
    done = {review["title"] for review in request.get("reviews") or []}
    outstanding = [title for title in request.get("reviewers") or [] if title not in done]
    if action == Action.REVIEW.value:
        if not request.get("reviewers"):
            return Conflict(_l("本次审批（%(band)s）无需审核，由“%(approver)s”直接审批", band=request["band_text"],
                               approver=request["approver"]))
        if not outstanding:
            return Conflict(_l("审核已全部完成，等待“%(approver)s”审批", approver=request["approver"]))
        if not titles & set(outstanding):
            return PermissionDenied(_l("您不能审核：尚待审核的职务为 %(titles)s（您的审批职务：%(mine)s）",
                                       titles="、".join(outstanding), mine=_mine(user)))
        return None
    if request["approver"] not in titles:
        return PermissionDenied(_l("您不能审批这笔 %(amount)s 元（%(band)s）：需要审批职务“%(title)s”（您的审批职务：%(mine)s）",
                                   amount=amount_text(request["amount"].to_decimal()), band=request["band_text"],
                                   title=request["approver"], mine=_mine(user)))
    if action == Action.APPROVE.value and outstanding:
        return Conflict(_l("请先由以下审核人审核：%(titles)s", titles="、".join(outstanding)))
    return None


@transactional
def act(type_key: str, record_id, action: str, actor, comment: str = "", request_id: str | None = None) -> dict:
    """Review, approve or reject the record's pending request as ``actor``; return the record as stored.

    Raises ``NotFound`` (a record the actor may not read), ``PermissionDenied`` (no ``approve`` on the type, or not
    the band's title), ``Conflict`` (no pending request, reviewers not done, or the request changed since
    ``request_id`` was read) and ``ValidationFailed`` (an unknown action, a rejection without a reason). Nothing is
    written when it raises.
    """
    record_type = get_record_type(type_key, active_only=False)
    document = get_record_for(type_key, record_id, actor.access)
    comment = (comment or "").strip()
    problem = refusal(record_type, document, action, actor)
    if problem is not None:
        raise problem
    request = document["approval"]
    if request_id and request_id != request["id"]:
        raise Conflict(_l("审批申请已更新（金额或档位有变化），请刷新后再操作"))
    if action == Action.REJECT.value and not comment:
        message = _l("驳回请填写理由")
        raise ValidationFailed(message, {"comment": message})
    now = utcnow()
    if action == Action.REVIEW.value:
        done = {review["title"] for review in request.get("reviews") or []}
        titles = [t for t in request["reviewers"] if t not in done and t in set(_titles(actor.user))]
        written = add_approval_reviews(document["_id"], request["id"], [
            {"title": title, "by": actor.user_id, "by_name": actor.name, "at": now, "comment": comment}
            for title in titles])
    else:
        titles = [request["approver"]]
        state = State.APPROVED.value if action == Action.APPROVE.value else State.REJECTED.value
        written = decide_approval(document["_id"], request["id"], {
            "state": state, "decided_at": now, "decided_by": actor.user_id, "decided_by_name": actor.name,
            "comment": comment})
    if not written:
        raise Conflict(_l("审批状态已变化，请刷新后重试"))
    amount = request["amount"].to_decimal()
    text = _l("%(action)s（%(titles)s）：%(amount)s 元，%(band)s", action=ACTION_LABELS[action],
              titles="、".join(titles), amount=amount_text(amount), band=request["band_text"])
    record_event(type_key, document["_id"], "approval", actor,
                 text=f"{text}；{_('意见')}：{comment}" if comment else str(text),
                 data={"action": action, "request": request["id"], "titles": titles, "amount": str(amount),
                 "band": request["band"], "band_text": request["band_text"], "comment": comment})
    rules = rules_of(record_type)
    target = {Action.APPROVE.value: rules.approved_status, Action.REJECT.value: rules.rejected_status}.get(action)
    if target:
        # The decision moves the record, not the approver's own edit right (an approver acts only by deciding).
        _move_status(type_key, document["_id"], rules.on_status, target, system_actor(actor.user))
    return get_record(type_key, document["_id"])


def _move_status(type_key: str, record_id, expected: str, target: str, actor) -> None:
    """Move the record from ``expected`` to ``target`` as the decision says, whatever its version, in the
    decision's transaction; left alone when someone already moved it elsewhere."""
    current = get_record(type_key, record_id)
    if current.get("status") == expected:
        update_record(type_key, record_id, {"status": target}, actor, version=current["version"],
                      enforce_workflow=False)
