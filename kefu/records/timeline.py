"""A record's timeline: events (登记, 备注, 电话沟通, 状态变更 …) people see, their attachments, and the audit log of
every change.

``record_event`` and ``audit`` are the public way for any area to add to them; ``add_event`` is what a person adds
by hand (a call, a visit, a comment, attachments); ``attachment_for`` is who may open a stored file."""
from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING

from kefu.core.clock import utcnow
from kefu.core.db import get_database, in_transaction
from kefu.core.errors import NotFound, ValidationFailed
from kefu.core.i18n import _l
from kefu.org.roles import Action
from kefu.records import lifecycle
from kefu.records.actor import Actor
from kefu.records.attachments import AttachmentInfo, attach_to_record, get_attachment, removes_uploads_on_failure
from kefu.records.store import AUDIT, EVENTS, get_record_for, object_id, readable_ids
from kefu.records.types import RecordType

EVENT_KINDS = {
    "created": _l("登记"), "updated": _l("修改"), "comment": _l("备注"), "call": _l("电话沟通"),
    "visit": _l("上门/来访"), "forward": _l("转办部门"), "plan": _l("处理方案"), "approval": _l("审批"),
    "callback": _l("回访"), "status": _l("状态变更"), "level": _l("等级变更"), "attachment": _l("附件"),
    "assign": _l("转派"), "spawn": _l("生成记录"),
}
# Kinds a person may add by hand; the others are written by the engine.
MANUAL_EVENT_KINDS = ("comment", "call", "visit", "forward", "plan", "approval", "callback", "attachment")


def audit(action: str, record_type: RecordType, document: dict | None, actor: Actor, changes: list | None = None,
          extra: dict | None = None) -> None:
    """Append to the audit log: who did ``action`` to ``document`` (None for an action on the type, such as an
    export) and when, with its field ``changes``; ``extra`` adds or overrides keys of the entry."""
    entry = {
        "record_id": document["_id"] if document else None, "record_type": record_type.key,
        "number": document.get("number") if document else None, "action": action, "at": utcnow(),
        "by": actor.user_id, "by_name": actor.name, "changes": changes or [],
    }
    if extra:
        entry.update(extra)
    get_database()[AUDIT].insert_one(entry)


def record_event(record_type_key: str, record_id, kind: str, actor: Actor, text: str = "", attachments=(),
                 data: dict | None = None, at: datetime | None = None) -> dict:
    """Append an event of ``kind`` (``EVENT_KINDS``) to the record's timeline; return it as stored. The engine's
    own events (登记, 状态变更, 等级变更 …) come here; a person's go through ``add_event``."""
    event = {
        "record_id": record_id, "record_type": record_type_key, "kind": kind, "at": at or utcnow(),
        "by": actor.user_id, "by_name": actor.name, "text": text, "attachments": list(attachments),
        "data": data or {},
    }
    get_database()[EVENTS].insert_one(event)
    return event


@removes_uploads_on_failure
def add_event(type_key: str, record_id, kind: str, text: str, actor: Actor, files=()) -> dict:
    """Append a process record (comment, phone call, visit …) with attachments to the timeline."""
    if kind not in MANUAL_EVENT_KINDS:
        allowed = "、".join(f"{k}（{EVENT_KINDS[k]}）" for k in MANUAL_EVENT_KINDS)
        raise ValidationFailed(_l("事件类型“%(kind)s”无效；可选：%(allowed)s", kind=kind, allowed=allowed),
                               {"kind": _l("事件类型无效")})
    text = (text or "").strip()
    if not text and not files:
        raise ValidationFailed(_l("请填写内容或上传附件"), {"text": _l("请填写内容或上传附件")})
    document = get_record_for(type_key, record_id, actor.access, Action.EDIT.value)
    attachments = []
    for upload in files:
        if actor.attachments is None:
            raise ValidationFailed(_l("此处不能上传附件"))
        info = actor.attachments.store(upload, 20 * 1024 * 1024)
        attachments.append(info.id)
    # The files are stored before the transaction: it reads from a snapshot taken when it starts.
    return in_transaction(lambda: _add(type_key, document["_id"], kind, text, actor, attachments))


def _add(type_key: str, record_id, kind: str, text: str, actor: Actor, attachments: list) -> dict:
    attach_to_record(attachments, record_id)
    event = record_event(type_key, record_id, kind, actor, text=text, attachments=attachments)
    lifecycle.after_event(type_key, record_id, kind, actor)
    return event


def record_events(record_id) -> list[dict]:
    """The record's timeline, oldest first."""
    return list(get_database()[EVENTS].find({"record_id": object_id(record_id)}).sort("at", ASCENDING))


def record_audit(record_id) -> list[dict]:
    return list(get_database()[AUDIT].find({"record_id": object_id(record_id)}).sort("at", ASCENDING))


def attachment_for(attachment_id, actor: Actor) -> AttachmentInfo:
    """The stored file if ``actor`` may open it: a file of a record they may read, or their own upload not attached
    to a record yet (a save in progress); ``NotFound`` otherwise, as for a file that does not exist."""
    info = get_attachment(attachment_id)
    if info.record_id is not None:
        allowed = info.record_id in readable_ids([info.record_id], actor.access)
    else:
        allowed = actor.user_id is not None and info.uploaded_by == str(actor.user_id)
    if not allowed:
        raise NotFound(_l("附件“%(id)s”不存在", id=attachment_id))
    return info
