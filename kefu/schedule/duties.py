"""Scheduled work (定时任务): what runs when, each occurrence exactly once, with catch-up after an outage.

What each duty does and its cadence are code (``DUTIES``, at their default
moments); the moment of each — time, weekday, day of month — and its options
are data an admin edits on 定时任务 (``kefu.schedule.timetable``:
``current_duties`` applies them, read at every tick). The state is in MongoDB
(``duty_runs``, one document per duty and occurrence). ``due_now`` names, for
every enabled duty, its latest occurrence up to now and *claims* it by
inserting that document:
however many schedulers tick at the same moment, one claim wins. The worker
that runs a claim *starts* it (``run``): one worker per claim, however often
its job was queued. A run whose worker is gone (its rq heartbeat lapsed —
within half a minute of a ``kill -9``, ``kefu.runtime.worker``), that is
still ``running`` the duty's lease after it started, or that no worker started
within the lease after its claim (its job was lost) is marked *abandoned*
(``abandon_stale``, first thing in ``due_now``); an abandoned or failed run of
a duty's latest occurrence is claimed again, ``MAX_ATTEMPTS`` times in all —
an every-tick duty's next occurrence does the work of an abandoned one. A
Redis restart that loses its data while a worker runs a duty can make the run
look abandoned: it may then run twice, which every duty allows (below).
An occurrence's key (``run_id``) is its *period* — the minute of an every-tick
duty, the local day of a daily one, the ISO week of a weekly one, the month of
a monthly one — not its time: an admin who moves 09:00 to 10:00 after today's
09:00 run does not make it run again today, nor moving Wednesday to Thursday
this week, nor the 5th to the 10th this month.

Because occurrences are computed from the clock, a
scheduler that was down (or a Redis outage) catches up at its next tick: the
latest missed occurrence runs, if it is not older than the duty's
``catch_up`` (yesterday's 09:00 follow-ups are not sent at noon today).

Every duty derives its work from MongoDB and writes with unique keys, so a
repeated run sends nothing twice:

| duty | when (local time) | what |
|---|---|---|
| ``sla_sweep`` | every tick | ``kefu.notify.reminders.sweep`` |
| ``escalate_levels`` | daily 01:00 | ``kefu.rules.levels.escalate_by_age`` (重要 open > 3 months → 重大) |
| ``follow_up_tasks`` | working days 09:00 | 今日跟进 task + reminder: open longer than ``daily_update`` working days |
| ``callbacks_due`` | working days 09:00 | 今日回访 task + reminder for each callback due today |
| ``care_messages`` | daily 10:00 | handover care 30/15/3 days before; greetings the working day before a statutory holiday |
| ``weekly_summary`` | Wednesdays 09:00 | the week's numbers to the roles with ``view_reports`` |
| ``monthly_report`` | the 5th 08:00 | last month's report archived (``kefu.insight.reports``), ``view_reports`` told |
| ``remove_old_exports`` | daily 03:00 | background exports and imports older than 7 days deleted with their files |
| ``list_indexes`` | daily 02:00 | the list sort indexes the types' sizes call for |
| ``callback_analysis`` | 装修: Tuesdays 09:00 | the week's 在施工程节点回访 listed to their supervisors (002 在施工程电话回访制度 五) |
| ``pre_acceptance_list`` | 装修: Wednesdays 09:00 | open 预验收 due from tomorrow to next Wednesday (002 工程预验收流程) |
| ``need_review`` | 中介: Mondays 09:00 | open 需求 last reviewed 30 days to a year ago (001 §二3 定期回访和更新) |
| ``consumer_survey`` | 1 April 09:00 | remind to plan the yearly consumer survey of May (``kefu.surveys.duties``) |
| ``merchant_survey`` | the 1st 09:00 of Dec, Mar, Jun, Sep | remind to plan the next quarter's merchant survey |
| ``grade_callbacks`` | working days 08:30 | the callbacks customers' grades call for (``kefu.rules.loyalty``, 002 第五章) |
| ``monthly_contacts`` | 商业物业: the 1st 09:00 | a contact per anchor store and merchant (``kefu.schedule.contacts``) |

``callback_analysis``, ``pre_acceptance_list`` and ``need_review`` are *list duties* (``routines.record_list``):
which types, statuses and date window they list is data too, per pack.
"""
from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app
from mongoengine import DateTimeField, Document, IntField, StringField
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from kefu.calendar.workcalendar import get_calendar
from kefu.core.clock import aware, utcnow
from kefu.core.i18n import _l
from kefu.rules.loyalty import grade_callbacks
from kefu.schedule import routines
from kefu.schedule.contacts import DEFAULT_OPTIONS as CONTACT_OPTIONS, monthly_contacts
from kefu.schedule.timetable import Cadence, applied, cadence_of, stored_schedules
from kefu.surveys.duties import CONSUMER_MONTHS, MERCHANT_MONTHS, survey_reminder

log = logging.getLogger(__name__)

RUN_HISTORY = timedelta(days=7)  # every-tick runs are kept this long (TTL)
MAX_ATTEMPTS = 3


class RunState:
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    ABANDONED = "abandoned"  # its worker died or it outlived its lease; claimed again if still due


STATE_LABELS = {RunState.RUNNING: _l("运行中"), RunState.DONE: _l("完成"), RunState.FAILED: _l("失败"),
                RunState.ABANDONED: _l("已中断")}


@dataclass(frozen=True)
class Duty:
    name: str
    label: object
    function: Callable[[datetime], str]  # called with the occurrence's moment
    at: time | None = None             # None: every tick
    weekday: int | None = None         # 0 = Monday
    monthday: int | None = None
    working_days: bool = False         # only on working days of the company calendar
    catch_up: timedelta = timedelta(hours=12)
    # How long a run may stay ``running`` after its start (or, never started, after its claim) before it counts as
    # abandoned whatever its worker: longer than the job timeout of the schedule queue (10 minutes,
    # ``jobs.TIMEOUTS``), so a live worker's run is stopped by rq first (``run`` records it failed); the lease only
    # catches a run whose outcome was never written. Time spent waiting in the queue does not count against it.
    lease: timedelta = timedelta(minutes=15)
    pack: str | None = None            # the menu group (行业模板) a duty belongs to; None: the whole system
    enabled: bool = True               # a pack's duty can be switched off
    options: dict = field(default_factory=dict, compare=False)  # keyword arguments of ``function`` (editable)

    def latest(self, now: datetime, calendar, tz: ZoneInfo) -> datetime | None:
        """The latest occurrence at or before ``now`` (UTC; for every-tick duties: ``now``'s minute)."""
        if self.at is None:
            return now.replace(second=0, microsecond=0)
        day = now.astimezone(tz).date()
        for _offset in range(400):
            moment = datetime.combine(day, self.at, tzinfo=tz).astimezone(timezone.utc)
            if moment <= now and self._on(day, calendar):
                return moment
            day -= timedelta(days=1)
        return None

    def next_after(self, now: datetime, calendar, tz: ZoneInfo) -> datetime | None:
        """The first occurrence after ``now`` (for the queue page)."""
        if self.at is None:
            return now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = now.astimezone(tz).date()
        for _offset in range(400):
            moment = datetime.combine(day, self.at, tzinfo=tz).astimezone(timezone.utc)
            if moment > now and self._on(day, calendar):
                return moment
            day += timedelta(days=1)
        return None

    def _on(self, day: date, calendar) -> bool:
        if self.weekday is not None and day.weekday() != self.weekday:
            return False
        if self.monthday is not None and day.day != self.monthday:
            return False
        return not self.working_days or calendar.is_workday(day)


DUTIES = (
    Duty("sla_sweep", _l("时限扫描与提醒"), routines.run_sweep, catch_up=timedelta(days=3650)),
    Duty("escalate_levels", _l("投诉等级按时升级"), routines.escalate_levels, at=time(1, 0)),
    Duty("follow_up_tasks", _l("今日跟进任务"), routines.follow_up_tasks, at=time(9, 0), working_days=True,
         catch_up=timedelta(hours=9)),
    Duty("callbacks_due", _l("今日回访提醒"), routines.callbacks_due, at=time(9, 0), working_days=True,
         catch_up=timedelta(hours=9)),
    Duty("care_messages", _l("客户关怀消息"), routines.care_messages, at=time(10, 0),
         catch_up=timedelta(hours=8),
         options={"offsets": list(routines.CARE_DAYS), "holiday_greetings": True}),
    Duty("weekly_summary", _l("每周汇总"), routines.weekly_summary, at=time(9, 0), weekday=2,
         catch_up=timedelta(days=3)),
    Duty("monthly_report", _l("月度报告"), routines.monthly_report, at=time(8, 0), monthday=5,
         catch_up=timedelta(days=20), lease=timedelta(minutes=60)),
    Duty("remove_old_exports", _l("清理过期导出与导入文件"), routines.remove_old_exports, at=time(3, 0),
         catch_up=timedelta(hours=20)),
    # A type saved in the admin has its indexes built at once (``jobs.schema.queue_list_indexes``); a type that has
    # grown past the size that needs them gets them here.
    Duty("list_indexes", _l("列表排序索引"), routines.update_list_indexes, at=time(2, 0),
         catch_up=timedelta(hours=20), lease=timedelta(minutes=60)),
    # 002 在施工程电话回访制度 五: the week's callbacks analysed and handed to the department manager every Tuesday.
    Duty("callback_analysis", _l("周回访情况分析"),
         partial(routines.record_list, name="callback_analysis", title=_l("周回访情况分析"),
                 kind="callback_analysis"), at=time(9, 0),
         weekday=1, catch_up=timedelta(days=1), pack="renovation",
         options={"types": ["construction_checkpoint"], "statuses": "all", "date_field": "created_at",
                  "window_from": -7, "window_to": 0}),
    # 002 工程预验收流程: 工程部 lists next week's jobs every Wednesday, 客服监察部 inspects them every Thursday.
    Duty("pre_acceptance_list", _l("预验收工程名录"),
         partial(routines.record_list, name="pre_acceptance_list", title=_l("预验收工程名录"),
                 kind="pre_acceptance_list"), at=time(9, 0),
         weekday=2, catch_up=timedelta(days=1), pack="renovation",
         options={"types": ["pre_acceptance"], "statuses": "open", "date_field": "inspection_date",
                  "window_from": 1, "window_to": 8}),
    # 001 §二3 定期回访和更新客户信息 (no period given): every Monday the open 需求 last reviewed 30 days to a year ago
    # (``reviewed_at`` is filled in at registration) — the period and window are editable data.
    Duty("need_review", _l("需求定期回访"),
         partial(routines.record_list, name="need_review", title=_l("需求定期回访"), kind="need_review"),
         at=time(9, 0), weekday=0, catch_up=timedelta(days=1), pack="agency",
         options={"types": ["need"], "statuses": "open", "date_field": "reviewed_at",
                  "window_from": -366, "window_to": -30}),
    # 000 §五, 004 满意度调查: the yearly consumer survey (May) and the quarterly merchant survey — ``months`` are the
    # survey months; reminded on the 1st of the month before, so the plan is approved 20 days ahead (004 满意度调查 1).
    Duty("consumer_survey", _l("消费者满意度调查提醒"), partial(survey_reminder, kind="consumer"), at=time(9, 0),
         monthday=1, catch_up=timedelta(days=7), options={"months": list(CONSUMER_MONTHS)}),
    Duty("merchant_survey", _l("商户满意度调查提醒"), partial(survey_reminder, kind="merchant"), at=time(9, 0),
         monthday=1, catch_up=timedelta(days=7), options={"months": list(MERCHANT_MONTHS)}),
    # 002 第五章: each grade's callback frequency and script (会员等级 settings, kefu.rules.loyalty).
    Duty("grade_callbacks", _l("按客户等级生成回访"), grade_callbacks, at=time(8, 30), working_days=True,
         catch_up=timedelta(days=3)),
    # 004 沟通对象 1, 2: 主力店 (物业管理部) and 商户 (营运部) contacted at least once a month.
    Duty("monthly_contacts", _l("主力店与商户月度沟通"), monthly_contacts, at=time(9, 0), monthday=1,
         catch_up=timedelta(days=20), pack="commercial", options=dict(CONTACT_OPTIONS)),
)
DUTY_BY_NAME = {duty.name: duty for duty in DUTIES}  # at their defaults; ``current_duties`` for the stored moments


def current_duties() -> list[Duty]:
    """Every duty at the moment and with the options an admin stored (``kefu.schedule.timetable``), in order."""
    stored = stored_schedules()
    return [applied(duty, stored.get(duty.name)) for duty in DUTIES]


def current_duty(name: str) -> Duty:
    """The duty ``name`` as ``current_duties`` has it; KeyError for an unknown name."""
    return applied(DUTY_BY_NAME[name], stored_schedules().get(name))


class DutyRun(Document):
    """One occurrence of one duty: claimed, done or failed (the schedule's memory)."""

    id = StringField(primary_key=True)  # "<duty>:<occurrence as YYYYmmddTHHMM UTC>"
    duty = StringField(required=True, verbose_name=_l("任务"))
    occurrence = DateTimeField(required=True, verbose_name=_l("计划时间"))
    state = StringField(required=True, verbose_name=_l("状态"))
    attempts = IntField(default=1)
    claimed_at = DateTimeField(verbose_name=_l("开始时间"))
    started_at = DateTimeField()
    worker = StringField(verbose_name=_l("工作进程"))  # the rq worker that started this attempt
    finished_at = DateTimeField(verbose_name=_l("结束时间"))
    result = StringField(verbose_name=_l("结果"))
    error = StringField(verbose_name=_l("错误"))
    expire_at = DateTimeField()

    meta = {"collection": "duty_runs", "ordering": ["-occurrence"],
            "indexes": [{"fields": ["duty", "-occurrence"]}, {"fields": ["state"]},
                        {"fields": ["expire_at"], "expireAfterSeconds": 0}]}


def run_id(duty: Duty, occurrence: datetime) -> str:
    """``<duty>:<period>``: the UTC minute of an every-tick duty's occurrence, else its local day, ISO week or
    month by the duty's cadence (see the module docstring)."""
    cadence = cadence_of(duty)
    if cadence == Cadence.TICK:
        return f"{duty.name}:{occurrence.astimezone(timezone.utc):%Y%m%dT%H%M}"
    day = occurrence.astimezone(ZoneInfo(current_app.config["KEFU_TIMEZONE"])).date()
    if cadence == Cadence.MONTHLY:
        return f"{duty.name}:{day:%Y-%m}"
    if cadence == Cadence.WEEKLY:
        year, week, _weekday = day.isocalendar()
        return f"{duty.name}:{year}-W{week:02d}"
    return f"{duty.name}:{day.isoformat()}"


def claim(duty: Duty, occurrence: datetime, now: datetime) -> bool:
    """Take this occurrence; False when it is running (``abandon_stale`` decides when it no longer is) or done,
    or failed or was abandoned ``MAX_ATTEMPTS`` times."""
    collection = DutyRun._get_collection()
    identifier = run_id(duty, occurrence)
    document = {"_id": identifier, "duty": duty.name, "occurrence": occurrence, "state": RunState.RUNNING,
                "attempts": 1, "claimed_at": now, "started_at": None, "worker": None, "finished_at": None,
                "result": None, "error": None, "expire_at": occurrence + RUN_HISTORY if duty.at is None else None}
    try:
        collection.insert_one(document)
        return True
    except DuplicateKeyError:
        pass
    taken = collection.find_one_and_update(
        {"_id": identifier, "attempts": {"$lt": MAX_ATTEMPTS}, "state": {"$in": [RunState.FAILED, RunState.ABANDONED]}},
        {"$set": {"state": RunState.RUNNING, "claimed_at": now, "started_at": None, "worker": None,
                  "finished_at": None, "error": None}, "$inc": {"attempts": 1}},
        return_document=ReturnDocument.AFTER)
    return taken is not None


def abandon_stale(now: datetime, worker_alive: Callable[[str], bool] | None = None) -> list[str]:
    """Mark abandoned every run still ``running`` that was started by a worker ``worker_alive`` says is gone,
    started longer than its duty's lease ago, or never started and claimed longer than the lease ago; return their
    ids. Each attempt is marked once, however many schedulers look at the same moment. Without ``worker_alive``
    only the lease counts."""
    collection = DutyRun._get_collection()
    abandoned = []
    for document in collection.find({"state": RunState.RUNNING}, {"duty": 1, "attempts": 1, "claimed_at": 1,
                                                                  "started_at": 1, "worker": 1}):
        duty = DUTY_BY_NAME.get(document["duty"])
        lease = duty.lease if duty else Duty.lease
        worker = document.get("worker")
        started_at = document.get("started_at")
        if started_at is None:
            if aware(document["claimed_at"]) > now - lease:
                continue
            reason = f"abandoned: no worker started it {lease} after it was claimed (its job was lost)"
        elif worker and worker_alive is not None and not worker_alive(worker):
            reason = f"abandoned: worker {worker} stopped (its heartbeat lapsed)"
        elif aware(started_at) <= now - lease:
            reason = f"abandoned: still running {lease} after it started (its outcome was never written)"
        else:
            continue
        marked = collection.update_one({"_id": document["_id"], "state": RunState.RUNNING,
                                        "attempts": document["attempts"]},
                                       {"$set": {"state": RunState.ABANDONED, "finished_at": now, "error": reason}})
        if marked.modified_count:
            log.warning("duty run %s %s", document["_id"], reason)
            abandoned.append(document["_id"])
    return abandoned


def due_now(now: datetime | None = None, worker_alive: Callable[[str], bool] | None = None
            ) -> list[tuple[Duty, datetime]]:
    """Mark stale runs abandoned (``abandon_stale``), then claim and return every duty occurrence that should run
    now (see the module docstring)."""
    now = now or utcnow()
    abandon_stale(now, worker_alive)
    tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
    calendar = get_calendar()
    claimed = []
    for duty in current_duties():
        if not duty.enabled:
            continue
        occurrence = duty.latest(now, calendar, tz)
        if occurrence is None or now - occurrence > duty.catch_up:
            continue
        if claim(duty, occurrence, now):
            claimed.append((duty, occurrence))
    return claimed


def start(duty: Duty, occurrence: datetime, worker: str | None, now: datetime) -> dict | None:
    """Mark a claimed occurrence started at ``now`` by ``worker`` (the rq worker's name) and return its document;
    None when a worker started it already or it is no longer running."""
    return DutyRun._get_collection().find_one_and_update(
        {"_id": run_id(duty, occurrence), "state": RunState.RUNNING, "started_at": None},
        {"$set": {"started_at": now, "worker": worker}})


def run(name: str, occurrence: datetime, now: datetime | None = None, worker: str | None = None) -> str:
    """Start one claimed occurrence in ``worker`` (the rq worker's name) and record its outcome; return its result
    text (raises on failure). A claim some worker has started already, or that is no longer running, is left alone:
    each claim runs once, however often its job was queued."""
    duty = current_duty(name)
    collection = DutyRun._get_collection()
    identifier = run_id(duty, occurrence)
    started = start(duty, occurrence, worker, utcnow())
    if started is None:
        return f"{identifier}: not waiting for a worker (started elsewhere, finished or abandoned); nothing done"
    this_attempt = {"_id": identifier, "attempts": started["attempts"]}
    try:
        result = duty.function(now or utcnow(), **duty.options)
    except Exception:
        collection.update_one(this_attempt, {"$set": {"state": RunState.FAILED, "finished_at": utcnow(),
                                                      "error": traceback.format_exc()[-4000:]}})
        raise
    text = str(result)
    collection.update_one(this_attempt, {"$set": {"state": RunState.DONE, "finished_at": utcnow(),
                                                  "result": text[:2000]}})
    return text


def schedule_overview(now: datetime | None = None) -> list[dict]:
    """Per duty: label, last run (occurrence, state, result, error) and next occurrence (None: switched off), for
    the queue page and 定时任务."""
    now = now or utcnow()
    tz = ZoneInfo(current_app.config["KEFU_TIMEZONE"])
    calendar = get_calendar()
    rows = []
    for duty in current_duties():
        last = DutyRun.objects(duty=duty.name).order_by("-occurrence").first()
        rows.append({"duty": duty, "last": last,
                     "next": duty.next_after(now, calendar, tz) if duty.enabled else None})
    return rows
