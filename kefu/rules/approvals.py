"""Approval by amount (审批): the ``approvals:`` section of a record type (003 §3, domain §5).

```yaml
approvals:
  amount_field: compensation_amount   # a money, decimal or integer field (not sensitive)
  on_status: 待审批                    # entering it opens an approval request for the amount at that moment
  approved_status: 处理中              # optional: where approving moves the record
  rejected_status: 处理中              # optional: where rejecting moves it
  bands:                               # from 0 up, each starting at the previous one's ``below``
    - {below: 5000, approver: 项目总监, note: 抄送总经理}
    - {from: 5000, below: 20000, approver: 区域总经理, reviewers: [财务总监, 项目总监]}
    - {from: 20000, approver: 集团赔付委员会, reviewers: [财务总监, 项目总监, 总经理]}
```

A band covers ``from`` ≤ amount < ``below`` (the last one has no ``below``).
``approver`` and ``reviewers`` are approval titles (审批职务) that users hold
(``kefu.org.users.User.approval_titles``). Acting needs the approver role (or
admin) *and* the title: every reviewer title reviews first, then the approver
approves or rejects. Entering ``on_status`` without an amount is refused;
while a request is pending the record leaves ``on_status`` only by a decision,
and a changed amount opens a fresh request (its band may differ).

The request lives on the record as ``approval`` = {id, key, state
(pending/approved/rejected), amount, band, band_text, approver, reviewers,
note, reviews: [{title, by, by_name, at, comment}], opened_at, decided_at,
decided_by, decided_by_name, comment}. Opening, each review and the decision
are timeline events of kind ``approval`` (their ``data`` holds the action,
amount, band and comment).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from types import SimpleNamespace

from bson import Decimal128, ObjectId

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.errors import Conflict, DomainError, PermissionDenied, ValidationFailed
from kefu.core.i18n import _, _l
from kefu.org.roles import Role, role_label
from kefu.records.fields import get_field_type
from kefu.rules.workflow import workflow_of

SECTION_KEYS = ("amount_field", "on_status", "approved_status", "rejected_status", "bands")
BAND_KEYS = ("from", "below", "approver", "reviewers", "note")
AMOUNT_TYPES = ("money", "decimal", "integer")
ACTING_ROLES = (Role.APPROVER.value, Role.ADMIN.value)
RECORDS = "records"


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


def _amount_text(amount: Decimal) -> str:
    return f"{int(amount):,}" if amount == amount.to_integral_value() else f"{amount:,.2f}"


@dataclass(frozen=True)
class Band:
    """One amount band: ``lower`` ≤ amount < ``upper`` (None: no upper bound)."""

    lower: Decimal
    upper: Decimal | None
    approver: str
    reviewers: tuple[str, ...] = ()
    note: str = ""

    def covers(self, amount: Decimal) -> bool:
        return amount >= self.lower and (self.upper is None or amount < self.upper)

    def text(self) -> str:
        if self.upper is None:
            return _("%(lower)s 元及以上", lower=_amount_text(self.lower))
        if self.lower == 0:
            return _("%(upper)s 元以下", upper=_amount_text(self.upper))
        return _("%(lower)s–%(upper)s 元", lower=_amount_text(self.lower), upper=_amount_text(self.upper))


@dataclass(frozen=True)
class Rules:
    amount_field: str
    on_status: str
    approved_status: str | None
    rejected_status: str | None
    bands: tuple[Band, ...]

    def band_for(self, amount: Decimal) -> tuple[int, Band]:
        for index, band in enumerate(self.bands):
            if band.covers(amount):
                return index, band
        raise ValidationFailed(_l("金额 %(amount)s 不在任何审批档位内", amount=_amount_text(amount)))


def _number(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number >= 0 else None


def rules_of(record_type) -> Rules | None:
    """The type's approval rules, or None when it has no ``approvals:`` section."""
    section = getattr(record_type, "approvals", None) or {}
    if not section:
        return None
    bands = tuple(
        Band(lower=_number(band.get("from", 0)) or Decimal(0),
             upper=_number(band["below"]) if band.get("below") is not None else None,
             approver=band["approver"], reviewers=tuple(band.get("reviewers") or ()), note=band.get("note") or "")
        for band in section["bands"]
    )
    return Rules(amount_field=section["amount_field"], on_status=section["on_status"],
                 approved_status=section.get("approved_status"), rejected_status=section.get("rejected_status"),
                 bands=bands)


# -- definition checks -------------------------------------------------------------------------------

def _title_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def section_problems(section, definition: dict) -> list:
    """What is wrong with an ``approvals:`` section, as messages for a person (empty when it is fine)."""
    if not isinstance(section, dict):
        return [_l("approvals 应为包含 amount_field、on_status、bands 的对象")]
    problems = []
    unknown = sorted(set(section) - set(SECTION_KEYS))
    if unknown:
        problems.append(_l("approvals 有不认识的项：%(keys)s", keys="、".join(map(str, unknown))))
    fields = {f.get("key"): f for f in definition.get("fields") or [] if isinstance(f, dict)}
    amount_field = section.get("amount_field")
    field = fields.get(amount_field) if isinstance(amount_field, str) else None
    if field is None:
        numeric = "、".join(k for k, f in fields.items() if f.get("type") in AMOUNT_TYPES) or "-"
        problems.append(_l("approvals.amount_field 应为本类型的金额字段；“%(field)s”不存在（可用：%(fields)s）",
                           field=amount_field if amount_field is not None else "", fields=numeric))
    elif field.get("type") not in AMOUNT_TYPES:
        problems.append(_l("approvals.amount_field“%(field)s”应为金额、小数或整数字段", field=amount_field))
    elif field.get("sensitive"):
        problems.append(_l("approvals.amount_field 不能是敏感字段“%(field)s”", field=amount_field))
    try:
        statuses = workflow_of(SimpleNamespace(workflow=definition.get("workflow"))).statuses
    except (KeyError, TypeError, AttributeError):
        statuses = None  # the workflow section is broken: its own check reports it
    for key in ("on_status", "approved_status", "rejected_status"):
        value = section.get(key)
        if value is None and key != "on_status":
            continue
        if not isinstance(value, str) or not value.strip():
            problems.append(_l("approvals.%(key)s 应为一个流程状态", key=key))
        elif statuses is not None and value not in statuses:
            problems.append(_l("approvals.%(key)s“%(status)s”不在流程状态中；可选：%(statuses)s", key=key,
                               status=value, statuses="、".join(statuses)))
        elif key != "on_status" and value == section.get("on_status"):
            problems.append(_l("approvals.%(key)s 不能与 on_status 相同", key=key))
    problems.extend(_band_problems(section.get("bands")))
    return problems


def _band_problems(bands) -> list:
    if not isinstance(bands, list) or not bands:
        return [_l("approvals.bands 应为金额档位列表，如 {below: 5000, approver: 项目总监}")]
    problems = []
    expected_lower = Decimal(0)
    for position, band in enumerate(bands, start=1):
        if not isinstance(band, dict):
            problems.append(_l("approvals.bands 第 %(n)s 档格式不正确", n=position))
            return problems
        unknown = sorted(set(band) - set(BAND_KEYS))
        if unknown:
            problems.append(_l("approvals.bands 第 %(n)s 档有不认识的项：%(keys)s", n=position,
                               keys="、".join(map(str, unknown))))
        if not isinstance(band.get("approver"), str) or not band["approver"].strip():
            problems.append(_l("approvals.bands 第 %(n)s 档缺少审批职务 approver", n=position))
        reviewers = band.get("reviewers", [])
        if not _title_list(reviewers):
            problems.append(_l("approvals.bands 第 %(n)s 档的 reviewers 应为审批职务列表", n=position))
        elif band.get("approver") in reviewers:
            problems.append(_l("approvals.bands 第 %(n)s 档的审批职务“%(title)s”不能同时是审核人", n=position,
                               title=band["approver"]))
        elif len(set(reviewers)) != len(reviewers):
            problems.append(_l("approvals.bands 第 %(n)s 档的 reviewers 有重复", n=position))
        if band.get("note") is not None and not isinstance(band["note"], str):
            problems.append(_l("approvals.bands 第 %(n)s 档的 note 应为文字", n=position))
        lower = _number(band.get("from", 0))
        upper = _number(band["below"]) if band.get("below") is not None else None
        for key, value in (("from", lower), ("below", upper)):
            if band.get(key) is not None and value is None:
                problems.append(_l("approvals.bands 第 %(n)s 档的 %(key)s 应为不小于 0 的金额", n=position, key=key))
        if lower is None or (band.get("below") is not None and upper is None):
            return problems
        if lower != expected_lower:
            if position == 1:
                problems.append(_l("approvals.bands 应从 0 元开始（第 1 档不写 from 或写 0）"))
            else:
                problems.append(_l("approvals.bands 第 %(n)s 档应从 %(amount)s 元开始，紧接上一档的 below",
                                   n=position, amount=_amount_text(expected_lower)))
            return problems
        if upper is None:
            if position != len(bands):
                problems.append(_l("approvals.bands 第 %(n)s 档缺少 below（只有最后一档可以不写）", n=position))
                return problems
        elif upper <= lower:
            problems.append(_l("approvals.bands 第 %(n)s 档的 below 应大于 from", n=position))
            return problems
        elif position == len(bands):
            problems.append(_l("approvals.bands 最后一档不应写 below（它覆盖以上所有金额）"))
        expected_lower = upper
    return problems


# -- the request ---------------------------------------------------------------------------------------

def _stored_amount(record_type, rules: Rules, document: dict) -> Decimal | None:
    definition = record_type.field(rules.amount_field)
    stored = (document.get("data") or {}).get(rules.amount_field)
    if definition is None or stored is None:
        return None
    value = get_field_type(definition.type).from_storage(stored)
    return None if value is None else Decimal(str(value))


def _amount_label(record_type, rules: Rules) -> str:
    definition = record_type.field(rules.amount_field)
    return definition.label if definition is not None else rules.amount_field


def before_save(record_type, current: dict | None, after: dict, changed) -> None:
    """Refuse, before anything is written: entering ``on_status`` without an amount; leaving it, or clearing
    the amount, while a request is pending. ``current`` is the stored document (None for a new record),
    ``after`` the record's values after the change."""
    rules = rules_of(record_type)
    if rules is None:
        return
    status_before = current.get("status") if current else None
    pending = bool(current) and (current.get("approval") or {}).get("state") == State.PENDING.value
    label = _amount_label(record_type, rules)
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


def after_save(record_type, document: dict, before: dict | None, changed, actor) -> None:
    """Open an approval request when the record enters ``on_status``, or when its amount changes there."""
    rules = rules_of(record_type)
    if rules is None or document.get("status") != rules.on_status:
        return
    if "status" not in changed and rules.amount_field not in changed:
        return
    amount = _stored_amount(record_type, rules, document)
    if amount is None:
        return  # before_save refuses this; a record stored before the rule existed just has no request
    open_request(record_type, document, amount, actor)


def _request_key(document: dict, rules: Rules, amount: Decimal) -> str:
    entered = (document.get("status_at") or {}).get(rules.on_status)
    return f"{entered.isoformat() if entered else '-'}|{amount}"


def open_request(record_type, document: dict, amount: Decimal, actor) -> dict | None:
    """Open the request for ``amount`` (replacing a pending one for another amount); idempotent: the same
    entry into ``on_status`` with the same amount opens one request only. Returns the request, or None."""
    from kefu.records.timeline import record_event

    rules = rules_of(record_type)
    key = _request_key(document, rules, amount)
    existing = document.get("approval") or {}
    if existing.get("key") == key:
        return None
    index, band = rules.band_for(amount)
    now = utcnow()
    request = {
        "id": str(ObjectId()), "key": key, "state": State.PENDING.value, "amount": Decimal128(str(amount)),
        "band": index, "band_text": band.text(), "lower": Decimal128(str(band.lower)),
        "upper": None if band.upper is None else Decimal128(str(band.upper)),
        "approver": band.approver, "reviewers": list(band.reviewers),
        "note": band.note, "reviews": [], "opened_at": now, "opened_by": actor.user_id, "opened_by_name": actor.name,
    }
    guard = {"approval.key": existing["key"]} if existing.get("key") else {"approval.key": {"$exists": False}}
    written = get_database()[RECORDS].update_one({"_id": document["_id"], **guard}, {"$set": {"approval": request}})
    if not written.matched_count:
        return None  # another run opened it first
    replaced = existing.get("state") == State.PENDING.value
    text = _l("重新发起审批：%(label)s %(amount)s 元（%(band)s），由“%(approver)s”审批", label=_amount_label(
        record_type, rules), amount=_amount_text(amount), band=band.text(), approver=band.approver) if replaced else \
        _l("发起审批：%(label)s %(amount)s 元（%(band)s），由“%(approver)s”审批", label=_amount_label(
            record_type, rules), amount=_amount_text(amount), band=band.text(), approver=band.approver)
    parts = [str(text)]
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


def refusal(record_type, document: dict, action: str, user) -> DomainError | None:
    """Why ``user`` may not take ``action`` on the record's request now (None: they may)."""
    rules = rules_of(record_type)
    if action not in ACTION_LABELS:
        allowed = "、".join(f"{k}（{v}）" for k, v in ACTION_LABELS.items())
        return ValidationFailed(_l("审批操作“%(action)s”无效；可选：%(allowed)s", action=action, allowed=allowed),
                                {"action": _l("审批操作无效")})
    if rules is None:
        return ValidationFailed(_l("“%(type)s”没有审批规则", type=record_type.name))
    request = document.get("approval") or {}
    if request.get("state") != State.PENDING.value or document.get("status") != rules.on_status:
        return Conflict(_l("此记录没有待审批的申请（当前状态：%(status)s）", status=document.get("status") or "-"))
    if user is None or not user.has_role(*ACTING_ROLES):
        roles = "、".join(role_label(r) for r in getattr(user, "roles", None) or []) or "-"
        return PermissionDenied(_l("您没有审批权限：需要“%(role)s”角色（您的角色：%(mine)s）",
                                   role=role_label(Role.APPROVER.value), mine=roles))
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
                                   amount=_amount_text(request["amount"].to_decimal()), band=request["band_text"],
                                   title=request["approver"], mine=_mine(user)))
    if action == Action.APPROVE.value and outstanding:
        return Conflict(_l("请先由以下审核人审核：%(titles)s", titles="、".join(outstanding)))
    return None


def act(type_key: str, record_id, action: str, actor, comment: str = "", request_id: str | None = None) -> dict:
    """Review, approve or reject the record's pending request as ``actor``; return the record as stored.

    Raises ``PermissionDenied`` (no approver role, or not the band's title), ``Conflict`` (no pending request,
    reviewers not done, or the request changed since ``request_id`` was read) and ``ValidationFailed`` (an
    unknown action, a rejection without a reason). Nothing is written when it raises.
    """
    from kefu.records.store import get_record
    from kefu.records.timeline import record_event
    from kefu.records.types import get_record_type

    record_type = get_record_type(type_key, active_only=False)
    document = get_record(type_key, record_id)
    comment = (comment or "").strip()
    problem = refusal(record_type, document, action, actor.user)
    if problem is not None:
        raise problem
    request = document["approval"]
    if request_id and request_id != request["id"]:
        raise Conflict(_l("审批申请已更新（金额或档位有变化），请刷新后再操作"))
    if action == Action.REJECT.value and not comment:
        message = _l("驳回请填写理由")
        raise ValidationFailed(message, {"comment": message})
    now = utcnow()
    guard = {"_id": document["_id"], "approval.id": request["id"], "approval.state": State.PENDING.value}
    if action == Action.REVIEW.value:
        done = {review["title"] for review in request.get("reviews") or []}
        titles = [t for t in request["reviewers"] if t not in done and t in set(_titles(actor.user))]
        reviews = [{"title": title, "by": actor.user_id, "by_name": actor.name, "at": now, "comment": comment}
                   for title in titles]
        update = {"$push": {"approval.reviews": {"$each": reviews}}}
        guard["approval.reviews.title"] = {"$nin": titles}
    else:
        titles = [request["approver"]]
        state = State.APPROVED.value if action == Action.APPROVE.value else State.REJECTED.value
        update = {"$set": {"approval.state": state, "approval.decided_at": now, "approval.decided_by": actor.user_id,
                           "approval.decided_by_name": actor.name, "approval.comment": comment}}
    if not get_database()[RECORDS].update_one(guard, update).matched_count:
        raise Conflict(_l("审批状态已变化，请刷新后重试"))
    amount = request["amount"].to_decimal()
    text = _l("%(action)s（%(titles)s）：%(amount)s 元，%(band)s", action=ACTION_LABELS[action],
              titles="、".join(titles), amount=_amount_text(amount), band=request["band_text"])
    record_event(type_key, document["_id"], "approval", actor,
           text=f"{text}；{_('意见')}：{comment}" if comment else str(text),
           data={"action": action, "request": request["id"], "titles": titles, "amount": str(amount),
                 "band": request["band"], "band_text": request["band_text"], "comment": comment})
    rules = rules_of(record_type)
    target = {Action.APPROVE.value: rules.approved_status, Action.REJECT.value: rules.rejected_status}.get(action)
    if target:
        _move_status(type_key, document["_id"], rules.on_status, target, actor)
    return get_record(type_key, document["_id"])


def _move_status(type_key: str, record_id, expected: str, target: str, actor) -> None:
    """Move the record from ``expected`` to ``target`` as the decision says, whatever its version (retrying
    when someone saves in between); left alone when someone already moved it elsewhere."""
    from kefu.records.store import get_record
    from kefu.records.write import update_record

    for _attempt in range(5):
        current = get_record(type_key, record_id)
        if current.get("status") != expected:
            return
        try:
            update_record(type_key, record_id, {"status": target}, actor, version=current["version"],
                          enforce_workflow=False)
            return
        except Conflict:
            continue
    raise Conflict(_l("记录正被频繁修改，请稍后重试"))


# -- reading ------------------------------------------------------------------------------------------

def request_json(document: dict, tz) -> dict | None:
    """The record's approval request for the API and the screens (None when it never had one)."""
    request = document.get("approval")
    if not request:
        return None
    done = {review["title"] for review in request.get("reviews") or []}

    def moment(value):
        return value.astimezone(tz).isoformat() if value else None

    amount = request["amount"].to_decimal()
    band_text = request["band_text"]
    if "lower" in request:  # shown in the reader's language
        band_text = Band(request["lower"].to_decimal(), request["upper"].to_decimal() if request["upper"] else None,
                         request["approver"]).text()
    return {
        "id": request["id"], "state": request["state"], "state_text": str(STATE_LABELS[request["state"]]),
        "amount": f"{amount:.2f}", "amount_text": _amount_text(amount), "band": request["band"], "band_text": band_text,
        "approver": request["approver"], "reviewers": list(request.get("reviewers") or []),
        "pending_reviewers": [t for t in request.get("reviewers") or [] if t not in done],
        "note": request.get("note") or "",
        "reviews": [{"title": r["title"], "by_name": r.get("by_name"), "at": moment(r.get("at")),
                     "comment": r.get("comment") or ""} for r in request.get("reviews") or []],
        "opened_at": moment(request.get("opened_at")), "decided_at": moment(request.get("decided_at")),
        "decided_by_name": request.get("decided_by_name"), "comment": request.get("comment") or "",
    }


def panel(record_type, document: dict, user, tz) -> dict | None:
    """What the details page shows: the request, the band the current amount falls in, and for each action
    whether ``user`` may take it (None) or why not (a message). None when the type has no rules."""
    rules = rules_of(record_type)
    if rules is None:
        return None
    amount = _stored_amount(record_type, rules, document)
    preview = None
    if amount is not None:
        index, band = rules.band_for(amount)
        preview = {"amount": _amount_text(amount), "band_text": band.text(), "approver": band.approver,
                   "reviewers": list(band.reviewers), "note": band.note}
    request = request_json(document, tz)
    actions = {}
    if request and request["state"] == State.PENDING.value:
        for action in ACTION_LABELS:
            problem = refusal(record_type, document, action, user)
            actions[action] = None if problem is None else str(problem.message)
    return {"rules": rules, "on_status": rules.on_status, "amount_label": _amount_label(record_type, rules),
            "preview": preview, "request": request, "actions": actions, "action_labels": ACTION_LABELS}
