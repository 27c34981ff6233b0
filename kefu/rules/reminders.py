"""Reminder settings of a record type (the ``reminders:`` section) and when a clock's next alert is due.

```yaml
reminders:
  ladder: {at: "09:00", manager_after: 2}   # while overdue: remind every working day at 09:00; from the 2nd
                                            # working day on the manager is told too. ``ladder: false`` = off
  daily_update: {after_working_days: 5}     # open longer than 5 working days: a 今日跟进 task every working day
```

A type without the section gets the ladder at 09:00 with the manager after 2 working days, and no daily update
task. The SLA clocks (``kefu.rules.sla``) store, with ``next_alert_at``, when the sweep
(``kefu.notify.reminders``) has something to send; the sweep itself lives with the notifications.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, Field, PlainSerializer, StrictInt, WithJsonSchema, field_validator

from kefu.core.clock import TIME_OF_DAY, aware, time_of_day
from kefu.core.i18n import _l
from kefu.records.sections import Section, SectionModel, parsed, refuse
from kefu.rules.shapes import picker

DEFAULT_MANAGER_AFTER = 2


def _time_of_day(value) -> time:
    if isinstance(value, time):
        return value
    try:
        return time_of_day(value if isinstance(value, str) else "")
    except ValueError:
        raise refuse(_l("应为“时:分”，如 09:00")) from None


# Written "HH:MM" in definitions (and so in their JSON Schema and its defaults), read as a ``time``.
TimeOfDay = Annotated[time, BeforeValidator(_time_of_day),
                      PlainSerializer(lambda t: t.strftime("%H:%M"), when_used="json"),
                      WithJsonSchema({"type": "string", "pattern": TIME_OF_DAY})]


class Ladder(SectionModel):
    """While a clock is overdue: a reminder every working day at ``at``; the managers too from ``manager_after``."""

    # The default as written in a definition: pydantic would write the time as "09:00:00", which "HH:MM" refuses.
    at: TimeOfDay = Field(time(9, 0), title=_l("每个工作日提醒的时间"), description=_l("时:分，如 09:00"),
                          json_schema_extra={"default": "09:00", **picker("time")})
    manager_after: StrictInt = Field(DEFAULT_MANAGER_AFTER, ge=1, title=_l("逾期第几个工作日起通知经理"))


class DailyUpdate(SectionModel):
    after_working_days: StrictInt = Field(ge=1, title=_l("受理超过几个工作日起每天生成“今日跟进”任务"))


class Reminders(SectionModel):
    """``ladder`` None: no follow-up after the overdue alert; ``daily_update`` None: no 今日跟进 tasks."""

    ladder: Ladder | None = Field(Ladder(), title=_l("逾期后的逐日提醒"), description=_l("不勾选则逾期提醒后不再提醒"))
    daily_update: DailyUpdate | None = Field(None, title=_l("每日跟进任务"))

    @field_validator("ladder", mode="before")
    @classmethod
    def _ladder_off(cls, value):
        """``false`` turns the ladder off; an empty or missing one is the default ladder."""
        if value is False:
            return None
        return value if value else {}

    @property
    def daily_update_after(self) -> int | None:
        return self.daily_update.after_working_days if self.daily_update else None


DEFAULT_REMINDERS = Reminders()


def reminders_of(record_type) -> Reminders:
    """The type's reminder settings (the defaults when its definition has no section)."""
    return parsed(record_type, RemindersSection.key)


class RemindersSection(Section):
    key = "reminders"
    title = _l("提醒规则")
    model = Reminders

    def default(self) -> Reminders:
        return DEFAULT_REMINDERS


# -- when the next alert is due ------------------------------------------------------------------------------

def same_moment(first, second) -> bool:
    """Two stored times within a second of each other (MongoDB keeps milliseconds)."""
    if first is None or second is None:
        return False
    return abs((aware(first) - aware(second)).total_seconds()) < 1


def ladder_time(due_at: datetime, step: int, ladder: Ladder, calendar, tz: ZoneInfo) -> datetime:
    """The ``step``-th follow-up: ``ladder.at`` local on the step-th working day after the deadline's day.
    O(log n) in the calendar's index, however many steps."""
    day = calendar.nth_workday_after(aware(due_at).astimezone(tz).date(), step)
    return datetime.combine(day, ladder.at, tzinfo=tz).astimezone(timezone.utc)


def ladder_steps(due_at: datetime, now: datetime, ladder: Ladder, calendar, tz: ZoneInfo) -> int:
    """How many follow-up times have come by ``now``: the largest k with ``ladder_time(k) <= now`` (0 if none).

    Counted directly, not step by step: the working days after the deadline's local day up to the last day
    whose ``ladder.at`` has come (today when it has, else yesterday). O(log n) however long overdue.
    """
    now = aware(now)
    today = now.astimezone(tz).date()
    last = today if datetime.combine(today, ladder.at, tzinfo=tz) <= now else today - timedelta(days=1)
    return max(calendar.working_days_between(aware(due_at).astimezone(tz).date(), last), 0)


def carried_alerts(previous: dict, due_at: datetime) -> dict:
    """The alerts already sent for this deadline (none when the deadline moved)."""
    alerts = (previous or {}).get("alerts") or {}
    return dict(alerts) if same_moment(alerts.get("for_due"), due_at) else {}


def next_alert_at(state: dict, reminders: Reminders, calendar, tz: ZoneInfo) -> datetime | None:
    """When this clock's next alert is due (None: met, paused or nothing left to send)."""
    if state.get("met_at") is not None or state.get("paused"):
        return None
    alerts = state.get("alerts") or {}
    due, warn = aware(state["due_at"]), aware(state["warn_at"])
    if not alerts.get("overdue"):
        if not alerts.get("due_soon") and warn < due:
            return warn
        return due
    if reminders.ladder is None:
        return None
    return ladder_time(due, int(alerts.get("ladder") or 0) + 1, reminders.ladder, calendar, tz)


def sla_next(clocks: dict, reminders: Reminders, calendar, tz: ZoneInfo) -> datetime | None:
    times = [t for t in (next_alert_at(state, reminders, calendar, tz) for state in clocks.values()) if t]
    return min(times, default=None)
