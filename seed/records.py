"""Demo records: six weeks of a developer's customer service, so the lists, the overdue page, the dashboard and
the monthly report have something to show on a first start.

Every record goes through the services (``kefu.records.write``) at the time it happened (``kefu.core.clock.at``):
complaints, consultations and repair orders are registered, forwarded, handled and closed; closing creates the
callback, and most callbacks get an answer (a few 不满意, which sends the complaint back one level up). Recent
ones are still open — some within their deadlines, some overdue. Only an empty ``records`` collection is seeded.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app

from kefu.core import clock
from kefu.core.db import get_database
from kefu.core.errors import DomainError
from kefu.org.access import SYSTEM_POLICY
from kefu.org.customers import Customer
from kefu.org.users import User
from kefu.records.actor import Actor
from kefu.records.store import RECORDS, get_record
from kefu.records.write import create_record, update_record

DAYS = 45
COMPLAINTS, CONSULTATIONS, REPAIRS = 70, 25, 25

COMPLAINT_TEXTS = {
    "工程质量": ["卫生间地面渗水，楼下邻居天花板出现水渍", "外墙瓷砖空鼓，有脱落风险", "入户门变形，关门不严",
              "主卧窗户密封条老化漏风", "客厅墙面开裂，裂缝约一米"],
    "规划设计": ["小区绿化与销售时展示的效果图不符", "地下车库坡道过陡，雨天打滑", "单元门禁位置不便老人通行"],
    "销售承诺": ["购房时承诺的车位优惠未兑现", "按揭办理进度迟迟没有答复", "交付标准与合同附件不一致"],
    "物业管理": ["夜间小区噪音无人处理", "电梯经常停运，维修不及时", "垃圾清运不及时，楼道有异味"],
    "其他": ["客服热线长时间无人接听", "对上次投诉的处理结果不满意，要求说明"],
}
DEMANDS = ["尽快上门维修并赔偿损失", "给出书面整改方案和完成时间", "按合同约定兑现", "希望物业加强管理"]
QUESTIONS = [("交房需要带哪些材料？", "一般性问题"), ("办理产权证的流程和时间？", "较为复杂的问题"),
             ("装修押金何时退还？", "一般性问题"), ("车位租售政策是怎样的？", "较为复杂的问题"),
             ("物业费的收费标准？", "一般性问题")]
PROBLEMS = ["厨房水龙头漏水", "卧室插座无电", "阳台地漏堵塞", "入户门锁芯卡顿", "卫生间排风扇不转"]
CALLBACK_RESULTS = ["满意"] * 7 + ["基本满意"] * 2 + ["不满意"]


@dataclass
class DemoScene:
    """Who works the demo records and when: the agent at the desk, the supervisor who closes, the handling
    department's user, the customers who call, and one random source so every run tells the same story."""

    now: datetime
    tz: ZoneInfo
    rng: random.Random
    agent: User
    handler: User | None
    desk: Actor  # the agent: registers, forwards and answers
    boss: Actor  # the supervisor: sends for callback and closes
    customers: list
    department: object | None  # the agent's department id

    def when(self, max_days: float) -> datetime:
        """A working hour on a random day within the last ``max_days`` days."""
        return _working_hour(self.now - timedelta(days=self.rng.uniform(0.05, max_days)), self.rng, self.tz)


def _actor(user, tz):
    return Actor(user=user, tz=tz, cipher=current_app.extensions["kefu_cipher"], access=SYSTEM_POLICY)


def _local(moment: datetime, tz) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


def _working_hour(day: datetime, rng: random.Random, tz) -> datetime:
    local = day.astimezone(tz).replace(hour=rng.randint(8, 17), minute=rng.choice((5, 12, 20, 33, 41, 56)),
                                       second=0, microsecond=0)
    return local.astimezone(timezone.utc)


def _move(type_key: str, record: dict, moment: datetime, actor, **values) -> dict:
    with clock.at(moment):
        current = get_record(type_key, record["_id"])
        return update_record(type_key, record["_id"], values, actor, version=current["version"])


def _answer_callbacks(document: dict, moment: datetime, actor, rng: random.Random) -> None:
    for link in document.get("callbacks") or []:
        if rng.random() < 0.85:
            callback = get_record(link["type"], link["id"])
            _move(link["type"], callback, moment, actor, result=rng.choice(CALLBACK_RESULTS), method="电话",
                  called_at=_local(moment, actor.tz), opinion="业主对处理情况的意见已记录")


def _demo_scene(now: datetime | None) -> DemoScene | None:
    """The people and customers of the demo, or None when ``kefu seed`` has not created them."""
    tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
    agent, supervisor = User.objects(username="agent").first(), User.objects(username="supervisor").first()
    handler = User.objects(username="handler").first()
    if agent is None or supervisor is None:
        return None
    customers = list(Customer.objects(project__ne=None, unit__ne=None).limit(120))
    if not customers:
        return None
    return DemoScene(now=now or clock.utcnow(), tz=tz, rng=random.Random(2026), agent=agent, handler=handler,
                    desk=_actor(agent, tz), boss=_actor(supervisor, tz), customers=customers,
                    department=agent.department.pk if agent.department else None)


def seed_demo_records(now: datetime | None = None) -> int:
    """Create the demo records when there are none yet; return how many records exist afterwards."""
    collection = get_database()[RECORDS]
    if collection.count_documents({}, limit=1):
        return 0
    scene = _demo_scene(now)
    if scene is None:
        return 0
    for _n in range(COMPLAINTS):
        _seed_complaint(scene)
    for _n in range(CONSULTATIONS):
        _seed_consultation(scene)
    for _n in range(REPAIRS):
        _seed_repair(scene)
    return collection.count_documents({})


def _register_complaint(scene: DemoScene) -> tuple[dict, datetime]:
    """A complaint as the agent registers it; returns the record and when the call came in."""
    rng, customer = scene.rng, scene.rng.choice(scene.customers)
    category = rng.choice(list(COMPLAINT_TEXTS))
    received = min(scene.when(DAYS), scene.now - timedelta(minutes=20))
    values = {"received_at": _local(received, scene.tz), "channel": [rng.choice(["来电", "来电", "来访", "网络", "来函"])],
              "project": str(customer.project.pk), "unit": str(customer.unit.pk), "owner_name": customer.name,
              "phone": customer.phone, "content": rng.choice(COMPLAINT_TEXTS[category]),
              "demand": rng.choice(DEMANDS), "category": category, "phase": "交付后",
              "assignee": str(scene.agent.pk), "department": str(scene.department) if scene.department else None,
              "customer": str(customer.pk)}
    if category == "工程质量" and rng.random() < 0.3:
        values["claim_amount"] = str(rng.choice((3000, 8000, 12000, 26000)))
    with clock.at(received + timedelta(minutes=rng.randint(3, 40))):
        record = create_record("complaint", {k: v for k, v in values.items() if v is not None}, scene.desk)
    return record, received


def _seed_complaint(scene: DemoScene) -> None:
    """One complaint, taken as far as its age allows: forwarded, handled, closed, its callback answered."""
    rng = scene.rng
    try:
        record, received = _register_complaint(scene)
        age = (scene.now - received).days
        if age < 1:
            return  # just registered
        step = received + timedelta(hours=rng.uniform(0.5, 4 if rng.random() < 0.8 else 30))
        fields = {"status": "已转办"}
        if scene.handler and scene.handler.department:
            fields["responsible_department"] = str(scene.handler.department.pk)
        record = _move("complaint", record, step, scene.desk, **fields)
        if age < 3 and rng.random() < 0.5:
            return  # still with the department
        step += timedelta(hours=rng.uniform(2, 40))
        record = _move("complaint", record, step, scene.desk, status="处理中", plan="现场核实后安排整改，三日内完成")
        if age < 6 and rng.random() < 0.6:
            return
        step += timedelta(hours=rng.uniform(6, 70))
        record = _move("complaint", record, step, scene.boss, status="待回访", result="已整改完毕，业主现场确认")
        step += timedelta(hours=rng.uniform(1, 30))
        if step >= scene.now:
            return
        record = _move("complaint", record, step, scene.boss, status="已关闭")
        answered = step + timedelta(days=rng.uniform(1, 6))
        if answered < scene.now:
            _answer_callbacks(record, answered, scene.desk, rng)
    except DomainError as exc:  # a rule refused a step: the record stays where it got to
        current_app.logger.info("demo complaint stopped: %s", exc)


def _seed_consultation(scene: DemoScene) -> None:
    """One consultation, answered unless it came in within the last day (and then only half of them)."""
    rng, customer = scene.rng, scene.rng.choice(scene.customers)
    question, complexity = rng.choice(QUESTIONS)
    received = min(scene.when(DAYS), scene.now - timedelta(minutes=30))
    with clock.at(received + timedelta(minutes=2)):
        record = create_record("consultation", {
            "received_at": _local(received, scene.tz), "channel": rng.choice(["来电", "来访", "网络"]),
            "customer_name": customer.name, "phone": customer.phone, "question": question,
            "complexity": complexity, "assignee": str(scene.agent.pk)}, scene.desk)
    if (scene.now - received).days >= 1 or rng.random() < 0.5:
        reply = received + timedelta(hours=rng.uniform(0.3, 30))
        if reply < scene.now:
            _move("consultation", record, reply, scene.desk, answer="已电话答复客户，并发送书面说明")


def _seed_repair(scene: DemoScene) -> None:
    """One repair order, taken as far as its age allows: dispatched, repaired, closed, its callback answered."""
    rng, customer = scene.rng, scene.rng.choice(scene.customers)
    reported = min(scene.when(DAYS), scene.now - timedelta(minutes=45))
    with clock.at(reported + timedelta(minutes=1)):
        record = create_record("repair", {
            "reported_at": _local(reported, scene.tz), "contact_name": customer.name, "phone": customer.phone,
            "project": str(customer.project.pk), "unit": str(customer.unit.pk),
            "problem": rng.choice(PROBLEMS), "assignee": str(scene.agent.pk)}, scene.desk)
    age = (scene.now - reported).days
    if age < 1 and rng.random() < 0.5:
        return
    step = reported + timedelta(minutes=rng.uniform(10, 90))
    record = _move("repair", record, step, scene.desk, status="已派工")
    step += timedelta(hours=rng.uniform(1, 12))
    fixed = step + timedelta(hours=rng.uniform(1, 6))
    if fixed >= scene.now or age < 2:
        return
    record = _move("repair", record, step, scene.desk, status="维修中", arrived_at=_local(step, scene.tz))
    record = _move("repair", record, fixed, scene.desk, status="已完成", fixed_at=_local(fixed, scene.tz),
                   repair_record="更换配件，试用正常")
    closed = fixed + timedelta(hours=rng.uniform(2, 24))
    if closed < scene.now:
        record = _move("repair", record, closed, scene.boss, status="已关闭")
        answered = closed + timedelta(days=rng.uniform(1, 5))
        if answered < scene.now:
            _answer_callbacks(record, answered, scene.desk, rng)
