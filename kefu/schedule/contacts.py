"""Monthly contact with anchor stores and merchants (004 沟通对象 1, 2: 物业管理部负责主力店的沟通、营运部负责商户的沟通，
每月至少 1 次) — the ``monthly_contacts`` duty of the timetable (``kefu.schedule.duties``).

Who is a merchant: the customer archive entries of the commercial projects the duty's ``projects`` option names
(project codes) — a mall's tenants are the customers of its project, each on its 铺位 (the archive's unit); a
project has no industry of its own, so the option says which projects are malls (none by default: the duty does
nothing until an admin names them). Which of them are anchor stores (主力店): those whose grade (客户等级) is one
of ``anchor_grades`` (default A) — the archive's grade already ranks a customer's importance and decides the
callback frequency (002 第五章), and an anchor store is the mall's A-grade tenant; the others are 商户.

What: on each run, one record of ``type`` (default the commercial pack's 座谈会 ``meeting``) per such customer for
the run's local month: the counterpart (主力店 / 商户) in ``counterpart_field``, the department responsible for it
(``departments``: 主力店 → 物业管理部, 商户 → 营运部), a title naming the month and the customer, the record's
customer and project, the fixed ``values`` (沟通方式 上门访谈) and the month's last day in ``due_field`` — the
type's clock on that field makes a contact not held by then overdue on 逾期督办.

Once per customer and month: each record carries ``scheduled_contact`` = {key: "<customer id>:<YYYY-MM>", month,
counterpart}, unique in the records collection (``RECORD_INDEXES``): a second run in the same
month — a catch-up, a retry, a run after the admin moved the day — finds it and makes nothing.
"""
from __future__ import annotations

import calendar as months
import logging
from datetime import date, datetime

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from kefu.core.db import get_database
from kefu.core.errors import DomainError, NotFound
from kefu.org.customers import Customer
from kefu.org.structure import Project
from kefu.records.actor import system_actor
from kefu.records.store import RECORDS
from kefu.records.types import get_record_type
from kefu.records.write import create_record

log = logging.getLogger(__name__)

SCHEDULED_CONTACT = "scheduled_contact"
ANCHOR_STORE = "主力店"   # 004 沟通对象 1
MERCHANT = "商户"         # 004 沟通对象 2
DEFAULT_OPTIONS = {
    "type": "meeting", "projects": [], "anchor_grades": ["A"], "counterpart_field": "counterpart",
    "title_field": "title", "due_field": "contact_by", "values": {"method": "上门访谈"},
    "departments": {ANCHOR_STORE: "物业管理部", MERCHANT: "营运部"},
}


# One contact per customer and month (created with the other records indexes: kefu.runtime.storage).
RECORD_INDEXES = [IndexModel([(f"{SCHEDULED_CONTACT}.key", ASCENDING)], unique=True, name=SCHEDULED_CONTACT,
                             partialFilterExpression={f"{SCHEDULED_CONTACT}.key": {"$exists": True}})]


def monthly_contacts(now: datetime, *, type: str = "meeting", projects=(), anchor_grades=("A",),
                     counterpart_field: str = "counterpart", title_field: str = "title",
                     due_field: str = "contact_by", values: dict | None = None,
                     departments: dict | None = None) -> str:
    """Register this month's contact with every anchor store and merchant (see the module docstring); return
    what was done."""
    try:
        target = get_record_type(type)
    except NotFound:
        return f"contact type {type!r} not found: nothing done"
    project_ids = list(Project.objects(code__in=list(projects)).scalar("id")) if projects else []
    if not project_ids:
        return "no commercial project named (option projects): nothing done"
    actor = system_actor()
    local = now.astimezone(actor.tz).date()
    month = f"{local:%Y-%m}"
    last_day = date(local.year, local.month, months.monthrange(local.year, local.month)[1])
    customers = get_database()[Customer._get_collection_name()].find(
        {"project": {"$in": project_ids}, "archived": {"$ne": True}}, {"name": 1, "project": 1, "grade": 1})
    created = existing = failed = 0
    for customer in customers:
        key = f"{customer['_id']}:{month}"
        if get_database()[RECORDS].find_one({f"{SCHEDULED_CONTACT}.key": key}, {"_id": 1}) is not None:
            existing += 1
            continue
        counterpart = ANCHOR_STORE if customer.get("grade") in set(anchor_grades) else MERCHANT
        fields = {**(values or {}), counterpart_field: counterpart, due_field: last_day.isoformat(),
                  title_field: f"{month} {counterpart}月度沟通：{customer['name']}",
                  "customer": str(customer["_id"]), "project": str(customer["project"])}
        department = (departments or {}).get(counterpart)
        if department:
            fields["department"] = department
        try:
            create_record(target.key, fields, actor,
                          extra={SCHEDULED_CONTACT: {"key": key, "month": month, "counterpart": counterpart}})
        except DuplicateKeyError:  # made at the same moment by another run
            existing += 1
        except DomainError as exc:
            failed += 1
            log.warning("monthly contact with customer %s not registered: %s %s", customer["_id"], exc,
                        getattr(exc, "fields", ""))
        else:
            created += 1
    return f"contacts created: {created}; already made this month: {existing}; failed: {failed}"
