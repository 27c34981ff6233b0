"""Notifications: the in-app inbox, the outbox of email and webhook deliveries, and staff tasks.

Every reminder starts as an ``Alert``: one event (this record's clock became
overdue, this customer's care message for this occasion) with a unique key.
``Outbox.flush`` turns alerts into

- one ``Notification`` per recipient (the inbox; key = alert key + user),
- one email ``Delivery`` per recipient with an address, when SMTP is set up,
- one webhook ``Delivery`` per alert (a group robot mentions every recipient),

all written with unique keys: writing the same alert twice — two schedulers,
a sweep repeated after a crash — adds nothing. Deliveries wait in MongoDB
(``status`` pending, ``not_before`` after quiet hours) until the dispatcher
hands them to workers; ``deliver`` claims one (pending, or a claim whose
worker died: older than ``CLAIM_LEASE``), sends it and records the outcome.
A failed send stays pending for the next attempt (rq ``Retry`` with backoff)
until ``MAX_ATTEMPTS``, then it is ``failed`` and shown on the queue page.

Texts carry record values masked (``kefu.notify.messages.record_values``); the only personal data a delivery holds
is the phone numbers a robot mentions, so a webhook's JSON is stored encrypted with the data key
(``sealed_payload``) and opened when it is sent (``outgoing_payload``).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from bson import ObjectId
from flask import current_app
from mongoengine import BinaryField, BooleanField, DateTimeField, Document, IntField, ObjectIdField, StringField
from pymongo import InsertOne, ReturnDocument
from pymongo.errors import BulkWriteError

from kefu.calendar.workcalendar import get_calendar
from kefu.core.clock import utcnow
from kefu.core.encrypted_stores import EncryptedField, EncryptedFields
from kefu.core.errors import NotFound
from kefu.core.i18n import _l
from kefu.notify.channels import get_settings, next_send_time, smtp_settings, webhook_payload
from kefu.org.access import AccessPolicy
from kefu.org.roles import Action, Scope
from kefu.org.users import User, stored_phone
from kefu.records.store import readable_ids

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
CLAIM_LEASE = timedelta(minutes=5)
REQUEUE_AFTER = timedelta(minutes=15)  # a pending delivery handed to a worker that long ago is handed out again
INBOX_PAGE = 50

KIND_LABELS = {
    "due_soon": _l("即将到期"), "overdue": _l("已逾期"), "ladder": _l("逾期跟进"), "follow_up": _l("今日跟进"),
    "callback_due": _l("今日回访"), "care_handover": _l("交付关怀"), "care_holiday": _l("节日问候"),
    "weekly_summary": _l("每周汇总"), "monthly_report": _l("月度报告"), "export_ready": _l("导出完成"),
    "clock_started": _l("开始计时"), "callback_analysis": _l("周回访情况分析"), "pre_acceptance_list": _l("预验收工程名录"),
    "need_review": _l("需求定期回访"), "survey_reminder": _l("满意度调查提醒"),
}


class DeliveryStatus(str, Enum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


STATUS_LABELS = {DeliveryStatus.PENDING.value: _l("待发送"), DeliveryStatus.SENDING.value: _l("发送中"),
                 DeliveryStatus.SENT.value: _l("已发送"), DeliveryStatus.FAILED.value: _l("发送失败")}
CHANNEL_LABELS = {"email": _l("邮件"), "webhook": _l("群机器人")}


class Notification(Document):
    """One message in one user's inbox."""

    key = StringField(required=True, unique=True)
    user = ObjectIdField(required=True, verbose_name=_l("接收人"))
    kind = StringField(required=True, verbose_name=_l("类型"))
    title = StringField(required=True, verbose_name=_l("标题"))
    body = StringField(verbose_name=_l("内容"))
    record_id = ObjectIdField(verbose_name=_l("记录"))
    record_type = StringField()
    record_number = StringField(verbose_name=_l("编号"))
    clock = StringField(verbose_name=_l("时限"))
    url = StringField()
    urgent = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow, verbose_name=_l("时间"))
    read_at = DateTimeField(verbose_name=_l("已读时间"))

    meta = {"collection": "notifications", "ordering": ["-created_at"],
            "indexes": [{"fields": ["user", "-created_at", "-id"]},
                        {"fields": ["user"], "name": "unread", "partialFilterExpression": {"read_at": None}}]}


class Delivery(Document):
    """One message to send through one channel, and what became of it (the delivery log)."""

    key = StringField(required=True, unique=True, verbose_name=_l("去重键"))
    channel = StringField(required=True, choices=list(CHANNEL_LABELS), verbose_name=_l("渠道"))
    target = StringField(verbose_name=_l("发送对象"))
    kind = StringField(verbose_name=_l("类型"))
    subject = StringField(verbose_name=_l("标题"))
    body = StringField(verbose_name=_l("内容"))
    sealed_payload = BinaryField()  # a webhook's JSON (it names phone numbers), encrypted (PAYLOAD_CONTEXT)
    record_id = ObjectIdField(verbose_name=_l("记录"))
    record_number = StringField(verbose_name=_l("编号"))
    urgent = BooleanField(default=False, verbose_name=_l("紧急"))
    status = StringField(default=DeliveryStatus.PENDING.value, choices=[s.value for s in DeliveryStatus],
                         verbose_name=_l("状态"))
    attempts = IntField(default=0, verbose_name=_l("尝试次数"))
    error = StringField(verbose_name=_l("错误"))
    answer = StringField(verbose_name=_l("对方应答"))
    not_before = DateTimeField(verbose_name=_l("最早发送时间"))
    created_at = DateTimeField(default=utcnow, verbose_name=_l("创建时间"))
    enqueued_at = DateTimeField(verbose_name=_l("入队时间"))
    claimed_at = DateTimeField(verbose_name=_l("领取时间"))
    sent_at = DateTimeField(verbose_name=_l("发送时间"))

    meta = {"collection": "deliveries", "ordering": ["-created_at"],
            "indexes": [{"fields": ["status", "not_before"]}, {"fields": ["-created_at"]}]}


PAYLOAD_CONTEXT = "delivery.payload"
ENCRYPTED_STORES = [EncryptedFields(Delivery._get_collection_name(), (
    EncryptedField("sealed_payload", PAYLOAD_CONTEXT),))]


def _seal_payload(payload: dict) -> bytes:
    return current_app.extensions["kefu_cipher"].encrypt(json.dumps(payload, ensure_ascii=False),
                                                         context=PAYLOAD_CONTEXT)


def outgoing_payload(delivery) -> dict:
    """The JSON a webhook delivery (a stored document) posts, decrypted."""
    sealed = delivery.get("sealed_payload")
    if not sealed:
        return {}
    return json.loads(current_app.extensions["kefu_cipher"].decrypt(sealed, context=PAYLOAD_CONTEXT))


def seal_earlier_payloads() -> int:
    """Encrypt the webhook JSON that deliveries written before kept in clear (``payload``: the mentioned phone
    numbers); idempotent. Return how many deliveries were sealed."""
    collection, sealed = Delivery._get_collection(), 0
    for stored in collection.find({"payload": {"$exists": True}}, ["payload"]):
        change = {"$unset": {"payload": ""}}
        if stored["payload"]:
            change["$set"] = {"sealed_payload": _seal_payload(stored["payload"])}
        collection.update_one({"_id": stored["_id"]}, change)
        sealed += 1
    return sealed


class Task(Document):
    """A to-do of one user for one day: update the complainant (今日跟进), call back today (今日回访)."""

    key = StringField(required=True, unique=True)
    user = ObjectIdField(required=True, verbose_name=_l("负责人"))
    kind = StringField(required=True, verbose_name=_l("类型"))
    title = StringField(required=True, verbose_name=_l("任务"))
    record_id = ObjectIdField()
    record_type = StringField()
    record_number = StringField(verbose_name=_l("编号"))
    day = DateTimeField(required=True, verbose_name=_l("日期"))  # local midnight of the day, stored as UTC
    created_at = DateTimeField(default=utcnow)
    done_at = DateTimeField(verbose_name=_l("完成时间"))
    done_by = ObjectIdField()

    meta = {"collection": "tasks", "ordering": ["-day"],
            "indexes": [{"fields": ["user", "done_at", "-day"]}]}


# -- recipients ---------------------------------------------------------------------------------------------

class People:
    """Active users by id, and who among them answers for which records — read from their roles' permissions
    (``kefu.org.roles``, as a company set them), never from role names; read once (one sweep, one job).

    Who supervises a record is whoever may reassign it across its department: the users whose widest scope for
    ``reassign`` on its type is ``department`` (the shipped 客服主管, a company's 组长); the next level up is whoever
    may reassign it anywhere (scope ``all``: the shipped 客服经理 and 系统管理员)."""

    def __init__(self):
        self.users = {u["_id"]: u for u in User.objects(active=True).only(
            "id", "display_name", "email", "phone_enc", "roles", "department").as_pymongo()}
        self._reaching: dict[tuple[str, str, str], dict] = {}

    def _policy(self, user: dict) -> AccessPolicy:
        return AccessPolicy(role_keys=tuple(user.get("roles") or ()))

    def reaching(self, type_key: str, action: str, scope: str, department=None) -> list:
        """Users whose widest scope for ``action`` on records of ``type_key`` is ``scope`` (``kefu.org.roles.Scope``),
        those of ``department`` first: every such user when the department has none (or ``department`` is None)."""
        key = (type_key, action, scope)
        if key not in self._reaching:
            index: dict = {None: []}
            for user in self.users.values():
                if self._policy(user).scope(type_key, action) == scope:
                    index.setdefault(user.get("department"), []).append(user["_id"])
                    index[None].append(user["_id"])
            self._reaching[key] = index
        index = self._reaching[key]
        return list(index.get(department) or index[None])

    def supervisors(self, type_key: str, department=None) -> list:
        """Who supervises the records of ``type_key`` handled by ``department`` (see the class docstring)."""
        return self.reaching(type_key, Action.REASSIGN.value, Scope.DEPARTMENT.value, department)

    def managers(self, type_key: str, department=None) -> list:
        """The level above the supervisors: who may reassign the records of ``type_key`` anywhere."""
        return self.reaching(type_key, Action.REASSIGN.value, Scope.ALL.value, department)

    def with_capability(self, capability: str) -> list:
        """Users whose roles grant ``capability`` (``kefu.org.roles.Capability``)."""
        return [user_id for user_id, user in self.users.items() if self._policy(user).has(capability)]

    def name(self, user_id) -> str:
        user = self.users.get(user_id)
        return user["display_name"] if user else ""

    def active(self, user_id) -> bool:
        return user_id in self.users


# -- alerts and the outbox ----------------------------------------------------------------------------------

@dataclass
class Alert:
    """One event to tell people about. ``key`` is unique per event; ``recipients`` are user ids (inbox and
    email); ``webhook`` names the settings field of the robot to post to (``staff_webhook_url``,
    ``care_webhook_url``) or None; ``mobiles`` are mentioned by the robot."""

    key: str
    kind: str
    subject: str
    body: str
    recipients: list = field(default_factory=list)
    record: dict | None = None  # {"id", "type", "number"}
    clock: str | None = None
    url: str | None = None
    urgent: bool = False
    webhook: str | None = "staff_webhook_url"
    mobiles: list = field(default_factory=list)


class Outbox:
    """Collects alerts and writes their notifications and deliveries in bulk, each once (unique keys)."""

    def __init__(self, now: datetime, people: People | None = None, settings=None, calendar=None, tz=None):
        self.now = now
        self.people = people or People()
        self.settings = settings or get_settings()
        self.calendar = calendar or get_calendar()
        self.tz = tz or ZoneInfo(current_app.config["KEFU_TIMEZONE"])
        self.email_ready = bool(self.settings.email_enabled) and smtp_settings(
            self.settings, current_app.extensions["kefu_cipher"]).configured
        self.alerts: list[Alert] = []
        self._send_after = None

    def add(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def send_time(self, urgent: bool) -> datetime:
        if urgent:
            return self.now
        if self._send_after is None:
            self._send_after = next_send_time(self.now, self.settings, self.calendar, self.tz)
        return self._send_after

    def flush(self) -> int:
        """Write what the alerts collected; return how many notifications are new."""
        if not self.alerts:
            return 0
        notifications, deliveries = [], []
        for alert in self.alerts:
            record = alert.record or {}
            recipients = list(dict.fromkeys(r for r in alert.recipients if self.people.active(r)))
            for user_id in recipients:
                key = f"{alert.key}:{user_id}"
                notifications.append(InsertOne({
                    "key": key, "user": user_id, "kind": alert.kind, "title": alert.subject, "body": alert.body,
                    "record_id": record.get("id"), "record_type": record.get("type"),
                    "record_number": record.get("number"), "clock": alert.clock, "url": alert.url,
                    "urgent": alert.urgent, "created_at": self.now, "read_at": None}))
                email = (self.people.users[user_id].get("email") or "").strip()
                if self.email_ready and email:
                    deliveries.append(self._delivery(f"{key}:email", "email", email, alert))
            url = getattr(self.settings, alert.webhook) if alert.webhook else None
            if url and self.settings.webhook_enabled and (recipients or alert.mobiles):
                mobiles = alert.mobiles or [stored_phone(self.people.users[r]) for r in recipients]
                text = f"{alert.subject}\n{alert.body}"
                payload = webhook_payload(self.settings.webhook_format or "wecom", text, [m for m in mobiles if m])
                deliveries.append(self._delivery(f"{alert.key}:webhook", "webhook", url, alert, payload))
        created = _bulk_insert(Notification._get_collection(), notifications)
        _bulk_insert(Delivery._get_collection(), deliveries)
        self.alerts = []
        return created

    def _delivery(self, key: str, channel: str, target: str, alert: Alert, payload: dict | None = None) -> InsertOne:
        record = alert.record or {}
        return InsertOne({
            "key": key, "channel": channel, "target": target, "kind": alert.kind, "subject": alert.subject,
            "body": alert.body, "sealed_payload": _seal_payload(payload) if payload else None,
            "record_id": record.get("id"), "record_number": record.get("number"),
            "urgent": alert.urgent, "status": DeliveryStatus.PENDING.value, "attempts": 0, "error": None,
            "not_before": self.send_time(alert.urgent), "created_at": self.now, "enqueued_at": None,
            "claimed_at": None, "sent_at": None})


def _bulk_insert(collection, operations: list) -> int:
    """Insert, skipping keys that exist already; return how many are new."""
    if not operations:
        return 0
    try:
        return collection.bulk_write(operations, ordered=False).inserted_count
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors") or []
        if any(error.get("code") != 11000 for error in errors):
            raise
        return exc.details.get("nInserted", 0)


# -- the inbox ----------------------------------------------------------------------------------------------

def unread_count(user_id) -> int:
    """The bell's number, on every page: counted straight through pymongo (no queryset to build)."""
    return Notification._get_collection().count_documents({"user": user_id, "read_at": None})


def inbox(user_id, page: int = 1, per_page: int = INBOX_PAGE, unread_only: bool = False) -> tuple[int, list]:
    """``(total, page of notifications)`` of the user, newest first."""
    query = Notification.objects(user=user_id)
    if unread_only:
        query = query.filter(read_at=None)
    page = max(1, int(page or 1))
    per_page = max(1, min(int(per_page or INBOX_PAGE), 200))
    total = query.count()
    return total, list(query.order_by("-created_at", "-id").skip((page - 1) * per_page).limit(per_page))


def mark_read(user_id, notification_id) -> Notification:
    """Mark one of the user's notifications read (again: no change); ``NotFound`` for another's or a bad id."""
    try:
        oid = ObjectId(str(notification_id))
    except Exception:
        raise NotFound(_l("没有这条通知")) from None
    collection = Notification._get_collection()
    collection.update_one({"_id": oid, "user": user_id, "read_at": None}, {"$set": {"read_at": utcnow()}})
    notification = Notification.objects(pk=oid, user=user_id).first()
    if notification is None:
        raise NotFound(_l("没有这条通知"))
    return notification


def mark_all_read(user_id) -> int:
    return Notification._get_collection().update_many({"user": user_id, "read_at": None},
                                                      {"$set": {"read_at": utcnow()}}).modified_count


WITHHELD_NOTE = _l("此消息所关联的记录不在您的查看范围内")
TASK_WITHHELD_NOTE = _l("此任务所关联的记录不在您的查看范围内")


def withheld(items, access: AccessPolicy) -> set:
    """The ids of ``items`` (notifications, tasks) about a record ``access`` may not read (moved out of the reader's
    scope since): their title and text are not shown, in the inbox as in the API."""
    linked = {item.pk: item.record_id for item in items if item.record_id is not None}
    readable = readable_ids(list(linked.values()), access)
    return {pk for pk, record_id in linked.items() if str(record_id) not in readable}


def notification_json(notification: Notification, tz, *, hidden: bool = False) -> dict:
    """The API shape of a notification; ``hidden`` (see ``withheld``): without its title, text and record number."""
    return {
        "id": str(notification.pk), "kind": notification.kind,
        "title": str(WITHHELD_NOTE) if hidden else notification.title, "body": "" if hidden else notification.body,
        "record_id": str(notification.record_id) if notification.record_id else None,
        "record_type": notification.record_type, "record_number": None if hidden else notification.record_number,
        "withheld": hidden,
        "clock": notification.clock, "url": notification.url, "urgent": bool(notification.urgent),
        "created_at": notification.created_at.astimezone(tz).isoformat(),
        "read": notification.read_at is not None,
        "read_at": notification.read_at.astimezone(tz).isoformat() if notification.read_at else None,
    }


# -- tasks --------------------------------------------------------------------------------------------------

def task_json(task: Task, tz, *, hidden: bool = False) -> dict:
    """The API shape of a task; ``hidden`` (see ``withheld``): without its title and record number."""
    return {"id": str(task.pk), "kind": task.kind, "title": str(TASK_WITHHELD_NOTE) if hidden else task.title,
            "record_type": task.record_type, "record_id": str(task.record_id) if task.record_id else None,
            "record_number": None if hidden else task.record_number, "withheld": hidden,
            "day": task.day.astimezone(tz).date().isoformat()}


def task_day(day: date, tz) -> datetime:
    """How a task's day is stored: its local midnight."""
    return datetime.combine(day, datetime.min.time(), tzinfo=tz)


def add_tasks(tasks: list[dict]) -> int:
    """Insert tasks ``{key, user, kind, title, record_id, record_type, record_number, day}``, each once."""
    now = utcnow()
    return _bulk_insert(Task._get_collection(), [InsertOne({**task, "created_at": now, "done_at": None,
                                                             "done_by": None}) for task in tasks])


def open_tasks(user_id, today: date, tz) -> list[Task]:
    """The user's tasks of today and earlier ones not done yet, today's first."""
    return list(Task.objects(user=user_id, done_at=None, day__lte=task_day(today, tz)).order_by("-day", "id"))


def finish_task(user_id, task_id) -> Task:
    try:
        oid = ObjectId(str(task_id))
    except Exception:
        raise NotFound(_l("没有这项任务")) from None
    Task._get_collection().update_one({"_id": oid, "user": user_id, "done_at": None},
                                      {"$set": {"done_at": utcnow(), "done_by": user_id}})
    task = Task.objects(pk=oid, user=user_id).first()
    if task is None:
        raise NotFound(_l("没有这项任务"))
    return task


# -- deliveries ---------------------------------------------------------------------------------------------

def due_deliveries(now: datetime, limit: int = 1000) -> list[ObjectId]:
    """Deliveries to hand to workers now: pending and due, not handed out recently; claims whose worker died."""
    collection = Delivery._get_collection()
    query = {"$or": [
        {"status": DeliveryStatus.PENDING.value, "not_before": {"$lte": now},
         "$or": [{"enqueued_at": None}, {"enqueued_at": {"$lte": now - REQUEUE_AFTER}}]},
        {"status": DeliveryStatus.SENDING.value, "claimed_at": {"$lte": now - CLAIM_LEASE}},
    ]}
    return [d["_id"] for d in collection.find(query, {"_id": 1}).limit(limit)]


def mark_enqueued(ids: list, now: datetime) -> None:
    if ids:
        Delivery._get_collection().update_many({"_id": {"$in": ids}}, {"$set": {"enqueued_at": now}})


def claim(delivery_id, now: datetime) -> dict | None:
    """Take the delivery for sending; None when it is sent, failed, or another worker holds a live claim."""
    return Delivery._get_collection().find_one_and_update(
        {"_id": ObjectId(str(delivery_id)), "$or": [
            {"status": DeliveryStatus.PENDING.value},
            {"status": DeliveryStatus.SENDING.value, "claimed_at": {"$lte": now - CLAIM_LEASE}}]},
        {"$set": {"status": DeliveryStatus.SENDING.value, "claimed_at": now}, "$inc": {"attempts": 1}},
        return_document=ReturnDocument.AFTER)


def record_sent(delivery_id, answer: str | None = None) -> None:
    Delivery._get_collection().update_one(
        {"_id": delivery_id}, {"$set": {"status": DeliveryStatus.SENT.value, "sent_at": utcnow(),
                                        "answer": answer, "error": None}})


def record_failure(delivery: dict, error: str) -> bool:
    """Note a failed attempt; True when the delivery gave up (``MAX_ATTEMPTS`` reached)."""
    final = delivery["attempts"] >= MAX_ATTEMPTS
    Delivery._get_collection().update_one(
        {"_id": delivery["_id"]},
        {"$set": {"status": DeliveryStatus.FAILED.value if final else DeliveryStatus.PENDING.value,
                  "error": error[:1000], "claimed_at": None}})
    return final


def retry_delivery(delivery_id) -> None:
    """Send a failed delivery again (the queue page's 重试): pending, attempts counted from zero."""
    result = Delivery._get_collection().update_one(
        {"_id": ObjectId(str(delivery_id)), "status": DeliveryStatus.FAILED.value},
        {"$set": {"status": DeliveryStatus.PENDING.value, "attempts": 0, "enqueued_at": None, "claimed_at": None}})
    if not result.matched_count:
        raise NotFound(_l("没有这条发送失败的记录"))
