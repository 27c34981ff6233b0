"""Merging two archives of the same person (客户档案合并): every record linked to the archive removed is relinked to
the one kept, its membership (points ledger, balance, deals and amount: ``kefu.org.loyalty.merge_accounts``, the tier
recomputed) and its survey answers move to the kept one, and the removed one is archived pointing at the kept one —
all in one transaction, or nothing.

Each moved record goes through the records' own write path (``kefu.records.write.system_update``): its customer
change is audited like any edit and its timeline says why. Only roles that keep the archive (``manage_customers``)
merge; the records are moved whoever's scope they lie in, since the merge is a change to the archive, not to a case.
"""
from __future__ import annotations

from kefu.core.clock import utcnow
from kefu.core.db import get_database, in_transaction
from kefu.core.errors import PermissionDenied, ValidationFailed
from kefu.core.i18n import _l
from kefu.insight.customer_archive import get_customer
from kefu.org import customers, loyalty
from kefu.org.roles import Capability
from kefu.records.actor import Actor, system_actor
from kefu.records.store import AUDIT, RECORDS
from kefu.records.types import RecordType
from kefu.records.write import system_update

MERGE_EVENT_KIND = "updated"  # the timeline's 修改: what happened to the record, explained by the event's text
# The respondents of the surveys (kefu.surveys.answers.ANSWERS): that area lies above this one, so the merge names the
# collection itself (tests/test_customer_archive.py checks the two names agree).
SURVEY_ANSWERS = "survey_answers"


def _move_survey_answers(removed: customers.Customer, kept: customers.Customer) -> int:
    """Give the kept customer the removed one's survey answers (in the transaction in progress); return how many.

    One respondent per survey and customer (a unique index): where both archives were asked the same survey, the
    removed one's answer stays with it (still counted in that survey's rates) rather than aborting the merge."""
    answers = get_database()[SURVEY_ANSWERS]
    both = answers.distinct("survey", {"customer": kept.pk})
    return answers.update_many({"customer": removed.pk, "survey": {"$nin": both}},
                               {"$set": {"customer": kept.pk, "customer_name": kept.name}}).modified_count


def merge_customers(kept_id, removed_id, actor: Actor) -> dict:
    """Merge the archive ``removed_id`` into ``kept_id``; return ``{"kept", "removed", "moved": [record ids],
    "points_entries": n, "survey_answers": n}`` (how many ledger entries and survey answers moved).

    ``PermissionDenied`` without ``manage_customers``; ``NotFound`` for an unknown id; ``ValidationFailed`` when
    both ids name the same customer, or the one to keep is archived, or the one to remove was merged already."""
    if not actor.access.has(Capability.MANAGE_CUSTOMERS.value):
        raise PermissionDenied(_l("只有具备“登记和修改客户档案”权限的角色可以合并客户档案"))
    kept, removed = get_customer(kept_id, actor.access), get_customer(removed_id, actor.access)
    if kept.pk == removed.pk:
        raise ValidationFailed(_l("请选择两位不同的客户"), {"removed": _l("与保留的客户相同")})
    if kept.archived:
        raise ValidationFailed(_l("保留的客户“%(name)s”已归档，请先恢复", name=kept.name), {"kept": _l("已归档")})
    if removed.merged_into:
        raise ValidationFailed(_l("客户“%(name)s”已合并到其他档案", name=removed.name), {"removed": _l("已合并")})
    # On behalf of the person merging (named in each timeline), across every scope: their right was checked above.
    mover = system_actor(actor.user)
    text = str(_l("客户档案合并：%(removed)s → %(kept)s", removed=removed.name, kept=kept.name))

    def work() -> dict:
        # Every type, inactive ones too ("type" first: the index type_customer serves each).
        keys = RecordType._get_collection().distinct("key")
        linked = list(get_database()[RECORDS].find({"type": {"$in": keys}, "customer": removed.pk}, {"type": 1}))
        for document in linked:
            system_update(document["type"], document["_id"], {"customer": str(kept.pk)}, mover,
                          event_kind=MERGE_EVENT_KIND, event_text=text)
        moved = {"points_entries": loyalty.merge_accounts(removed.pk, kept.pk),
                 "survey_answers": _move_survey_answers(removed, kept)}
        customers.mark_merged(removed, kept, actor.user_id)
        get_database()[AUDIT].insert_one({
            "record_id": None, "record_type": None, "action": "customer_merge", "at": utcnow(),
            "by": actor.user_id, "by_name": actor.name, "changes": [],
            "customer_kept": kept.pk, "customer_removed": removed.pk, "records": [d["_id"] for d in linked],
            **moved})
        return {"moved": [str(d["_id"]) for d in linked], **moved}

    return {"kept": str(kept.pk), "removed": str(removed.pk), **in_transaction(work)}

