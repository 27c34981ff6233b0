"""Membership (会员): tier rules, grade settings and the points ledger of each customer (001 §六2; 002 第五章).

Everything here is data an admin edits (``save_settings``, the 会员等级 screen), never code:

- **tiers**: ordered ``[{"name", "min_deals", "min_amount"}]``; a customer holds the last tier whose ``min_deals``
  (completed deals) or ``min_amount`` (their total amount, yuan) they reach — either threshold suffices; a tier with
  neither is the base tier everyone holds (普通).
- **grades**: per customer grade (A/B/C, ``Customer.grade``) the callback ``script`` and ``every_days``: how often the
  customer is called back (``kefu.rules.loyalty.grade_callbacks``).
- **callback**: which record type those callbacks are (``type``), the field that takes the customer's name
  (``name_field``), the one that takes the script (``script_field``, optional) and fixed ``values``.

Each customer has one account (``loyalty_accounts``, ``_id`` = the customer's id): ``balance`` (points),
``deals`` and ``amount_cents`` (completed deals and their total), ``tier``. Every change of the balance is one
entry of the ledger (``points_entries``: ``points`` +/-, ``reason``, ``record`` link, ``by``, ``at``, ``kind``), written
with the account in one transaction. A redemption is a conditional update (``balance >= points``): two concurrent
redemptions cannot overdraw. A reversed deal may leave the balance negative (the points were spent already): it is
then shown as owed, and nothing can be redeemed until it is positive again. Merging two archives moves the ledger
and adds the removed customer's account to the kept one (``merge_accounts``); an archived or merged customer
redeems nothing.
"""
from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from kefu.core.clock import aware, utcnow
from kefu.core.db import get_database, in_transaction
from kefu.core.errors import NotFound, PermissionDenied, ValidationFailed
from kefu.core.i18n import _l
from kefu.org.customers import GRADES, Customer
from kefu.org.roles import Capability

SETTINGS, ACCOUNTS, LEDGER = "loyalty_settings", "loyalty_accounts", "points_entries"
SETTINGS_ID = "settings"
MAX_TIERS = 20
MAX_POINTS = 10_000_000
MAX_SCRIPT = 2000
MAX_REASON = 200
LEDGER_PAGE = 50


class Kind:
    DEAL = "deal"            # a completed deal's points
    REVERSAL = "reversal"    # the deal left its completed status: its points taken back
    REDEEM = "redeem"        # 兑换
    ADJUST = "adjust"


DEFAULT_SETTINGS = {
    # 001 §六2: 根据客户交易次数或金额设定会员等级
    "tiers": [{"name": "普通", "min_deals": None, "min_amount": None},
              {"name": "银卡", "min_deals": 1, "min_amount": None},
              {"name": "金卡", "min_deals": 3, "min_amount": 3_000_000},
              {"name": "钻石卡", "min_deals": 5, "min_amount": 10_000_000}],
    # 002 第五章: 客户分级管理，按等级确定回访话术与频率
    "grades": {"A": {"script": "您好，我是客服专员，感谢您一直以来的信任。请问近期居住/使用情况如何？有什么需要我们协助的吗？",
                     "every_days": 30},
               "B": {"script": "您好，我是客服专员，回访了解您近期的情况和意见建议。", "every_days": 90},
               "C": {"script": "您好，我是客服专员，例行回访，请问有什么需要帮助的吗？", "every_days": 180}},
    "callback": {"type": "callback", "name_field": "customer_name", "script_field": "",
                 "values": {"callback_type": "定期回访"}},
}

INDEXES = {
    LEDGER: [IndexModel([("customer", ASCENDING), ("at", DESCENDING)], name="customer_at"),
             # one entry per key: a completed deal's grant and its reversal are written once, however often a save
             # is retried
             IndexModel([("key", ASCENDING)], unique=True, name="entry_key",
                        partialFilterExpression={"key": {"$type": "string"}})],
    ACCOUNTS: [IndexModel([("tier", ASCENDING)], name="tier")],
}


def ensure_indexes() -> None:
    """Create the ledger's and accounts' indexes (outside a transaction; harmless to repeat)."""
    database = get_database()
    for name, models in INDEXES.items():
        database[name].create_indexes(models)


# -- settings ----------------------------------------------------------------------------------------------------

def ensure_shipped_settings() -> None:
    """Store the default settings when a database has none: from then on the tiers, scripts and callback values are
    the company's data (renamed and translated by its admins like a pack's types), never code constants on a screen."""
    shipped = {**DEFAULT_SETTINGS, "updated_at": utcnow()}
    get_database()[SETTINGS].update_one({"_id": SETTINGS_ID}, {"$setOnInsert": shipped}, upsert=True)


def settings() -> dict:
    """The settings in force: the stored ones over the defaults (each top-level key as a whole)."""
    stored = get_database()[SETTINGS].find_one({"_id": SETTINGS_ID}) or {}
    return {key: stored.get(key, default) for key, default in DEFAULT_SETTINGS.items()}


def _whole(raw, where: str, problems: dict, *, minimum: int = 0, maximum: int | None = None) -> int | None:
    """``raw`` as a whole number ≥ ``minimum`` (blank: None); a problem noted at ``where`` otherwise."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        number = Decimal(str(raw).replace(",", "").replace("，", "").strip())
    except InvalidOperation:
        number = None
    if number is None or number != number.to_integral_value() or number < minimum or \
            (maximum is not None and number > maximum):
        problems[where] = str(_l("应为不小于 %(min)s 的整数", min=minimum)) if maximum is None else \
            str(_l("应为 %(min)s 到 %(max)s 之间的整数", min=minimum, max=maximum))
        return None
    return int(number)


def _tiers(raw, problems: dict) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        problems["tiers"] = str(_l("至少需要一个会员等级"))
        return []
    if len(raw) > MAX_TIERS:
        problems["tiers"] = str(_l("会员等级最多 %(n)s 个", n=MAX_TIERS))
        return []
    tiers, names, messages = [], set(), []
    for position, item in enumerate(raw, 1):
        item = item if isinstance(item, Mapping) else {}
        name = str(item.get("name") or "").strip()
        found: dict = {}
        deals = _whole(item.get("min_deals"), "deals", found, maximum=100_000)
        amount = _whole(item.get("min_amount"), "amount", found, maximum=10**12)
        if not name or len(name) > 20:
            messages.append(_l("第 %(n)s 行：等级名称不能为空，最多 20 个字", n=position))
        elif name in names:
            messages.append(_l("第 %(n)s 行：等级名称“%(name)s”重复", n=position, name=name))
        if "deals" in found:
            messages.append(_l("第 %(n)s 行：成交笔数%(problem)s", n=position, problem=found["deals"]))
        if "amount" in found:
            messages.append(_l("第 %(n)s 行：成交金额%(problem)s", n=position, problem=found["amount"]))
        names.add(name)
        tiers.append({"name": name, "min_deals": deals, "min_amount": amount})
    if not messages and any(t["min_deals"] is None and t["min_amount"] is None for t in tiers[1:]):
        messages.append(_l("只有第一个等级（基础等级）可以不设门槛"))
    if messages:
        problems["tiers"] = "；".join(str(m) for m in messages)
    return tiers


def _grades(raw, problems: dict) -> dict:
    raw = raw if isinstance(raw, Mapping) else {}
    grades = {}
    for grade in GRADES:
        item = raw.get(grade) if isinstance(raw.get(grade), Mapping) else {}
        script = str(item.get("script") or "").strip()
        if len(script) > MAX_SCRIPT:
            problems[f"script_{grade}"] = str(_l("话术最多 %(n)s 个字", n=MAX_SCRIPT))
        days = _whole(item.get("every_days"), f"every_days_{grade}", problems, minimum=1, maximum=3660)
        if days is None and f"every_days_{grade}" not in problems:
            problems[f"every_days_{grade}"] = str(_l("请填写回访间隔天数"))
        grades[grade] = {"script": script, "every_days": days}
    return grades


def check_settings(values: Mapping, callback_problems=None) -> dict:
    """``values`` (tiers, grades, callback) as they are stored; ``ValidationFailed`` naming each bad field (``tiers``,
    ``script_A``, ``every_days_B``, ``callback_type`` …). ``callback_problems(callback) -> {field: message}``: the
    checks of the callback settings against the record types (``kefu.rules.loyalty``), which live above this area."""
    problems: dict[str, str] = {}
    tiers = _tiers(values.get("tiers"), problems)
    grades = _grades(values.get("grades"), problems)
    raw = values.get("callback") if isinstance(values.get("callback"), Mapping) else {}
    callback = {"type": str(raw.get("type") or "").strip(), "name_field": str(raw.get("name_field") or "").strip(),
                "script_field": str(raw.get("script_field") or "").strip(),
                "values": dict(raw.get("values") or {})}
    if not callback["type"]:
        problems["callback_type"] = str(_l("请填写回访记录类型"))
    elif callback_problems is not None:
        problems.update(callback_problems(callback))
    if problems:
        raise ValidationFailed(_l("会员设置有误：%(problems)s", problems="；".join(problems.values())), problems)
    return {"tiers": tiers, "grades": grades, "callback": callback}


def save_settings(values: Mapping, by=None, callback_problems=None) -> dict:
    """Check and store the settings; every account's tier follows the new rules. Return the stored settings."""
    checked = check_settings(values, callback_problems)
    get_database()[SETTINGS].replace_one({"_id": SETTINGS_ID}, {"_id": SETTINGS_ID, **checked, "updated_at": utcnow(),
                                                                "updated_by": by}, upsert=True)
    retier_all(checked["tiers"])
    return checked


# -- tiers --------------------------------------------------------------------------------------------------------

def tier_for(deals: int, amount_cents: int, tiers: list[dict]) -> str | None:
    """The tier ``deals`` completed deals worth ``amount_cents`` in total reach: the last whose threshold is met."""
    reached = None
    for tier in tiers:
        by_count = tier.get("min_deals") is not None and deals >= tier["min_deals"]
        by_amount = tier.get("min_amount") is not None and amount_cents >= tier["min_amount"] * 100
        if (tier.get("min_deals") is None and tier.get("min_amount") is None) or by_count or by_amount:
            reached = tier["name"]
    return reached


def retier_all(tiers: list[dict]) -> int:
    """Recompute every account's tier under ``tiers``; return how many changed."""
    collection, changed = get_database()[ACCOUNTS], 0
    for account in collection.find({}, {"deals": 1, "amount_cents": 1, "tier": 1}):
        tier = tier_for(account.get("deals", 0), account.get("amount_cents", 0), tiers)
        if tier != account.get("tier"):
            collection.update_one({"_id": account["_id"]}, {"$set": {"tier": tier, "tier_at": utcnow()}})
            changed += 1
    return changed


def base_tier() -> str | None:
    return tier_for(0, 0, settings()["tiers"])


# -- the ledger ---------------------------------------------------------------------------------------------------

def points_for_deal(amount: Decimal | None, per_deal: int, per_10000: int) -> int:
    """A completed deal's points: ``per_deal`` plus ``per_10000`` for each whole 10,000 yuan of ``amount``."""
    whole = int((amount or Decimal(0)) // Decimal(10000))
    return per_deal + per_10000 * max(whole, 0)


def _entry(customer_id, points: int, kind: str, reason: str, *, by=None, record: dict | None = None,
           key: str | None = None, amount_cents: int = 0) -> dict:
    entry = {"customer": customer_id, "points": points, "kind": kind, "reason": reason, "by": by, "at": utcnow(),
             "record": record, "amount_cents": amount_cents}
    if key is not None:
        entry["key"] = key
    return entry


def _apply(customer_id, entry: dict, deals: int = 0) -> dict:
    """Write ``entry`` and move the account by it (in the transaction in progress); return the account after."""
    database = get_database()
    database[LEDGER].insert_one(entry)
    account = database[ACCOUNTS].find_one_and_update(
        {"_id": customer_id},
        {"$inc": {"balance": entry["points"], "deals": deals, "amount_cents": entry["amount_cents"] * deals},
         "$set": {"updated_at": entry["at"]}},
        upsert=True, return_document=True)
    return _retier(account, entry["at"])


def _retier(account: dict, at) -> dict:
    """Store the tier ``account``'s deals and amount reach now (in the transaction in progress); return it after."""
    tier = tier_for(account.get("deals", 0), account.get("amount_cents", 0), settings()["tiers"])
    if tier != account.get("tier"):
        get_database()[ACCOUNTS].update_one({"_id": account["_id"]}, {"$set": {"tier": tier, "tier_at": at}})
        account["tier"] = tier
    return account


def merge_accounts(removed_id, kept_id) -> int:
    """Move the membership of the archive ``removed_id`` to ``kept_id`` (a customer merge,
    ``kefu.insight.customer_merge``): every ledger entry of the removed customer now names the kept one
    (``merged_from`` says whose it was), the removed account's balance, deals and amount are added to the kept
    account, whose tier is recomputed, and the removed account is deleted. Joins the transaction in progress;
    return how many ledger entries moved."""
    database, now = get_database(), utcnow()
    moved = database[LEDGER].update_many({"customer": removed_id},
                                         {"$set": {"customer": kept_id, "merged_from": removed_id}}).modified_count
    removed = database[ACCOUNTS].find_one_and_delete({"_id": removed_id})
    if removed is not None:
        account = database[ACCOUNTS].find_one_and_update(
            {"_id": kept_id},
            {"$inc": {"balance": removed.get("balance", 0), "deals": removed.get("deals", 0),
                      "amount_cents": removed.get("amount_cents", 0)}, "$set": {"updated_at": now}},
            upsert=True, return_document=True)
        _retier(account, now)
    return moved


def grant_deal(customer_id, record: dict, completed_key: str, points: int, amount_cents: int, by=None) -> bool:
    """Credit a completed deal once: the entry ``deal:<record id>:<completed_key>`` (``completed_key`` names this
    completion, so a deal completed again after a reopen earns again); count the deal and its amount towards the
    tier. Joins the transaction in progress (the record's save). False when credited already."""
    key = f"{Kind.DEAL}:{record['id']}:{completed_key}"
    if get_database()[LEDGER].find_one({"key": key}, {"_id": 1}) is not None:
        return False
    reason = str(_l("成交 %(number)s", number=record.get("number") or ""))
    _apply(customer_id, _entry(customer_id, points, Kind.DEAL, reason, by=by, record=record, key=key,
                               amount_cents=amount_cents), deals=1)
    return True


def reverse_deal(record_id, by=None, number: str | None = None) -> bool:
    """Take back the latest grant of record ``record_id`` not yet reversed (the deal was reopened or cancelled):
    a negative entry, the deal no longer counted. Joins the transaction in progress. False when there is none."""
    database = get_database()
    grant = database[LEDGER].find_one({"record.id": record_id, "kind": Kind.DEAL, "reversed": {"$ne": True}},
                                      sort=[("at", DESCENDING)])
    if grant is None:
        return False
    database[LEDGER].update_one({"_id": grant["_id"]}, {"$set": {"reversed": True}})
    reason = str(_l("撤销成交 %(number)s 的积分", number=number or (grant.get("record") or {}).get("number") or ""))
    _apply(grant["customer"], _entry(grant["customer"], -grant["points"], Kind.REVERSAL, reason, by=by,
                                     record=grant.get("record"), key=f"{Kind.REVERSAL}:{grant['_id']}",
                                     amount_cents=grant.get("amount_cents", 0)), deals=-1)
    return True


def redeem(customer_id, points, reason, by=None) -> dict:
    """兑换: take ``points`` from the customer's balance for ``reason``, in one transaction; return the account after.

    ``ValidationFailed`` at ``points`` (not a whole number from 1, or more than the balance — nothing is written) or
    at ``reason``. The balance is taken by a conditional update, so two concurrent redemptions cannot overdraw."""
    problems: dict[str, str] = {}
    amount = _whole(points, "points", problems, minimum=1, maximum=MAX_POINTS)
    if amount is None and "points" not in problems:
        problems["points"] = str(_l("请填写要兑换的积分"))
    reason = str(reason or "").strip()
    if not reason:
        problems["reason"] = str(_l("请填写兑换内容"))
    elif len(reason) > MAX_REASON:
        problems["reason"] = str(_l("兑换内容最多 %(n)s 个字", n=MAX_REASON))
    if problems:
        raise ValidationFailed(_l("兑换未完成：%(problems)s", problems="；".join(problems.values())), problems)

    def take() -> dict:
        database = get_database()
        account = database[ACCOUNTS].find_one_and_update(
            {"_id": customer_id, "balance": {"$gte": amount}},
            {"$inc": {"balance": -amount}, "$set": {"updated_at": utcnow()}}, return_document=True)
        if account is None:
            balance = (database[ACCOUNTS].find_one({"_id": customer_id}, {"balance": 1}) or {}).get("balance", 0)
            message = str(_l("积分不足：当前余额 %(balance)s，不能兑换 %(points)s", balance=balance, points=amount))
            raise ValidationFailed(message, {"points": message})
        database[LEDGER].insert_one(_entry(customer_id, -amount, Kind.REDEEM,
                                           str(_l("兑换：%(reason)s", reason=reason)), by=by))
        return account

    return in_transaction(take)


def redeem_for(customer_id, points, reason, access, user_id=None) -> dict:
    """The 兑换 use-case: ``PermissionDenied`` without ``manage_customers``, ``NotFound`` for an unknown customer,
    ``ValidationFailed`` at ``customer`` for an archived or merged one, then :func:`redeem`; return
    :func:`account_of` after."""
    if not access.has(Capability.MANAGE_CUSTOMERS.value):
        raise PermissionDenied(_l("您的角色不能为客户兑换积分"))
    wanted = ObjectId(customer_id) if ObjectId.is_valid(str(customer_id)) else None
    customer = Customer.objects(pk=wanted).only("name", "archived", "merged_into").first() if wanted else None
    if customer is None:
        raise NotFound(_l("客户“%(id)s”不存在", id=str(customer_id)[:40]))
    if customer.archived:
        # A merged archive's points moved with it (``merge_accounts``); an archived one is no longer served.
        message = str(_l("客户“%(name)s”已合并到其他档案，请在保留的档案中兑换", name=customer.name)
                      if customer.merged_into else _l("客户“%(name)s”已归档，不能兑换积分", name=customer.name))
        raise ValidationFailed(message, {"customer": message})
    redeem(wanted, points, reason, by=user_id)
    return account_of(wanted)


# -- reading ------------------------------------------------------------------------------------------------------

def account_of(customer_id) -> dict:
    """``{"tier", "points", "deals", "amount"}`` of a customer (the base tier and 0 without an account)."""
    account = get_database()[ACCOUNTS].find_one({"_id": customer_id}) or {}
    return {"tier": account.get("tier") or base_tier(), "points": account.get("balance", 0),
            "deals": account.get("deals", 0), "amount": str(Decimal(account.get("amount_cents", 0)) / 100)}


def tiers_of(customer_ids) -> dict:
    """Customer id → tier, for a page of customers (one query; the base tier for those without an account)."""
    found = {a["_id"]: a.get("tier") for a in get_database()[ACCOUNTS].find({"_id": {"$in": list(customer_ids)}},
                                                                             {"tier": 1})}
    base = base_tier()
    return {customer_id: found.get(customer_id) or base for customer_id in customer_ids}


def ledger_of(customer_id, limit: int = LEDGER_PAGE) -> list[dict]:
    """The customer's ledger entries, newest first (as stored)."""
    return list(get_database()[LEDGER].find({"customer": customer_id}, sort=[("at", DESCENDING), ("_id", DESCENDING)],
                                            limit=limit))


def amount_cents(amount: Decimal | None) -> int:
    """A money amount in whole fen (what the account sums)."""
    return int((amount or Decimal(0)).quantize(Decimal("0.01"), rounding=ROUND_FLOOR) * 100)


def history(customer_id, tz, limit: int = LEDGER_PAGE) -> list[dict]:
    """The ledger as the archive shows it, newest first: points, reason, kind, the record it came from, who, when."""
    entries = ledger_of(customer_id, limit)
    by_ids = {e["by"] for e in entries if e.get("by") is not None}
    names = {u["_id"]: u["display_name"] for u in get_database()["users"].find({"_id": {"$in": list(by_ids)}},
                                                                                {"display_name": 1})}
    return [{"points": e["points"], "reason": e.get("reason") or "", "kind": e.get("kind"),
             "record": {"type": e["record"]["type"], "id": str(e["record"]["id"]), "number": e["record"].get("number")}
             if e.get("record") else None,
             "by": names.get(e.get("by")), "at": aware(e["at"]).astimezone(tz).isoformat()} for e in entries]
