"""Merging two archives of the same person (客户档案合并): every record linked to the archive removed is relinked to
the one kept, and the removed one is archived pointing at the kept one — all in one transaction, or nothing.

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
from kefu.org import customers
from kefu.org.roles import Capability
from kefu.records.actor import Actor, system_actor
from kefu.records.store import AUDIT, RECORDS
from kefu.records.types import RecordType
from kefu.records.write import system_update

MERGE_EVENT_KIND = "updated"  # the timeline's 修改: what happened to the record, explained by the event's text


def merge_customers(kept_id, removed_id, actor: Actor) -> dict:
    """Merge the archive ``removed_id`` into ``kept_id``; return ``{"kept", "removed", "moved": [record ids]}``.

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

    def work() -> list[str]:
        # Every type, inactive ones too ("type" first: the index type_customer serves each).
        keys = RecordType._get_collection().distinct("key")
        linked = list(get_database()[RECORDS].find({"type": {"$in": keys}, "customer": removed.pk}, {"type": 1}))
        for document in linked:
            system_update(document["type"], document["_id"], {"customer": str(kept.pk)}, mover,
                          event_kind=MERGE_EVENT_KIND, event_text=text)
        customers.mark_merged(removed, kept, actor.user_id)
        get_database()[AUDIT].insert_one({
            "record_id": None, "record_type": None, "action": "customer_merge", "at": utcnow(),
            "by": actor.user_id, "by_name": actor.name, "changes": [],
            "customer_kept": kept.pk, "customer_removed": removed.pk, "records": [d["_id"] for d in linked]})
        return [str(d["_id"]) for d in linked]

    moved = in_transaction(work)
    return {"kept": str(kept.pk), "removed": str(removed.pk), "moved": moved}

