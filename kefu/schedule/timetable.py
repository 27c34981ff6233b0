"""When each duty runs, as data (定时任务): the times an admin set, over the defaults in code.

A duty's *cadence* (every tick, daily, weekly, monthly) and what it does are code (``kefu.schedule.duties``); its
moment — time of day, weekday, day of month, working days only — and its options (the care offsets and holiday
greetings of ``care_messages``; the record list of a pack's list duty) are one document of ``duty_schedules`` per
duty, written only by ``save`` (the admin's 定时任务 screen) and removed by ``reset``. A duty without a document
runs at its defaults, so nothing changes until an admin edits. Every process reads the documents through a
``NamedCache``: a scheduler sees an edit at its next tick, without a restart.
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import time

from mongoengine import BooleanField, DateTimeField, DictField, Document, IntField, StringField

from kefu.core.clock import utcnow
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _, _l
from kefu.core.versioned_cache import NamedCache
from kefu.org.customers import GRADES
from kefu.org.structure import Project
from kefu.records.types import RecordType


class Cadence:
    TICK = "tick"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


CADENCE_LABELS = {Cadence.TICK: _l("每分钟"), Cadence.DAILY: _l("每天"), Cadence.WEEKLY: _l("每周"),
                  Cadence.MONTHLY: _l("每月")}
WEEKDAY_LABELS = (_l("周一"), _l("周二"), _l("周三"), _l("周四"), _l("周五"), _l("周六"), _l("周日"))
STATUS_CHOICES = {"open": _l("未关闭的记录"), "all": _l("全部记录")}
RECORD_DATES = {"created_at": _l("登记时间"), "updated_at": _l("更新时间")}  # besides a type's date fields
DATE_FIELD_TYPES = ("date", "datetime")
MAX_MONTHDAY = 28  # a day every month has: the 30th would skip February
MAX_OFFSETS = 10
TIME_PATTERN = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class DutySchedule(Document):
    """One duty's moment and options as an admin set them (see the module docstring)."""

    id = StringField(primary_key=True)  # the duty's name
    at = StringField(required=True)      # "HH:MM", local time
    weekday = IntField()                 # 0 = Monday (weekly duties)
    monthday = IntField()                # 1…28 (monthly duties)
    working_days = BooleanField(default=False)
    enabled = BooleanField(default=True)
    options = DictField()
    updated_at = DateTimeField()
    updated_by = StringField()

    meta = {"collection": "duty_schedules"}


def _load() -> dict[str, dict]:
    return {document["_id"]: document for document in DutySchedule.objects.as_pymongo()}


_stored = NamedCache("duty_schedules", _load)


def stored_schedules() -> dict[str, dict]:
    """Duty name → its stored document (as this process holds them; do not change)."""
    return _stored.get()


def cadence_of(duty) -> str:
    if duty.at is None:
        return Cadence.TICK
    if duty.monthday is not None:
        return Cadence.MONTHLY
    if duty.weekday is not None:
        return Cadence.WEEKLY
    return Cadence.DAILY


def applied(duty, stored: dict | None):
    """``duty`` (a ``kefu.schedule.duties.Duty`` at its defaults) at the moment and options of ``stored``."""
    if not stored or duty.at is None:
        return duty
    hours, minutes = (int(part) for part in stored["at"].split(":"))
    return replace(duty, at=time(hours, minutes), weekday=stored.get("weekday"), monthday=stored.get("monthday"),
                   working_days=bool(stored.get("working_days")), enabled=stored.get("enabled", True),
                   options={**duty.options, **(stored.get("options") or {})})


def describe(duty) -> str:
    """When ``duty`` runs, in words: 每周三 09:00, 每月 5 日 08:00, 工作日 09:00 …"""
    cadence = cadence_of(duty)
    if cadence == Cadence.TICK:
        return str(CADENCE_LABELS[cadence])
    at = duty.at.strftime("%H:%M")
    if cadence == Cadence.MONTHLY:
        return _("每月 %(day)s 日 %(at)s", day=duty.monthday, at=at)
    if cadence == Cadence.WEEKLY:
        return _("每%(weekday)s %(at)s", weekday=WEEKDAY_LABELS[duty.weekday], at=at)
    return _("工作日 %(at)s", at=at) if duty.working_days else _("每天 %(at)s", at=at)


def pack_types(pack: str | None) -> list[RecordType]:
    """The record types of menu group ``pack`` (disabled ones too), in menu order: what a list duty may list."""
    return list(RecordType.objects(pack=pack).order_by("sort_order", "key")) if pack else []


def date_fields(types: list[RecordType]) -> dict[str, str]:
    """Key → label of the dates a list duty may filter ``types`` by: the record's own, then their date fields."""
    found = {key: str(label) for key, label in RECORD_DATES.items()}
    for record_type in types:
        for spec in record_type.specs:
            if spec.type in DATE_FIELD_TYPES:
                found.setdefault(spec.key, f"{spec.label}（{record_type.name}）")
    return found


def save(duty, values: dict, *, by: str | None = None) -> dict:
    """Store the moment and options of ``duty`` (a ``Duty`` at its defaults) from ``values`` (the form's: ``at``
    "HH:MM", ``weekday``, ``monthday``, ``working_days``, ``enabled``, and the options the duty has); return the
    stored document. ``ValidationFailed`` names each field at fault; nothing is stored then."""
    cadence = cadence_of(duty)
    errors: dict[str, str] = {}
    if cadence == Cadence.TICK:
        raise ValidationFailed(_("“%(label)s”每分钟运行，时间不可修改", label=duty.label))
    document = {"_id": duty.name, "at": _time_text(values.get("at"), errors), "weekday": None, "monthday": None,
                "working_days": bool(values.get("working_days")) if cadence == Cadence.DAILY else False,
                "enabled": bool(values.get("enabled", True)) if duty.pack else True,
                "options": _options(duty, values, errors)}
    if cadence == Cadence.WEEKLY:
        document["weekday"] = _number(values.get("weekday"), 0, 6, "weekday", _("请选择星期几"), errors)
    if cadence == Cadence.MONTHLY:
        document["monthday"] = _number(values.get("monthday"), 1, MAX_MONTHDAY, "monthday",
                                       _("每月几号须是 1–%(max)s 之间的整数（每个月都有的日子）", max=MAX_MONTHDAY),
                                       errors)
    if errors:
        raise ValidationFailed(_("保存失败：请检查标出的项目"), errors)
    document.update(updated_at=utcnow(), updated_by=by)
    DutySchedule._get_collection().replace_one({"_id": duty.name}, document, upsert=True)
    _stored.changed()
    return document


def reset(name: str) -> bool:
    """Back to the defaults in code; True when there was something stored."""
    removed = DutySchedule._get_collection().delete_one({"_id": name}).deleted_count
    _stored.changed()
    return bool(removed)


def _time_text(value, errors: dict) -> str | None:
    if isinstance(value, time):
        return value.strftime("%H:%M")
    matched = TIME_PATTERN.match((value or "").strip()) if isinstance(value, str) else None
    if not matched:
        errors["at"] = _("请填写 00:00–23:59 之间的时间，如 09:00")
        return None
    return f"{int(matched.group(1)):02d}:{matched.group(2)}"


def _number(value, low: int, high: int, name: str, message: str, errors: dict) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high:
        errors[name] = message
        return None
    return number


def _options(duty, values: dict, errors: dict) -> dict:
    """The options ``duty`` has (those of its defaults), checked."""
    options = {}
    if "offsets" in duty.options:
        options["offsets"] = _offsets(values.get("offsets"), errors)
        options["holiday_greetings"] = bool(values.get("holiday_greetings"))
    if "types" in duty.options:
        options.update(_list_options(duty, values, errors))
    if "projects" in duty.options:
        options.update(_contact_options(values, errors))
    if "months" in duty.options:
        months = sorted({int(m) for m in values.get("months") or [] if str(m).isdigit() and 1 <= int(m) <= 12})
        if not months:
            errors["months"] = _("请至少选择一个月份")
        options["months"] = months
    return options


def _contact_options(values: dict, errors: dict) -> dict:
    """Which projects' customers are a mall's tenants (project codes) and which grades are its anchor stores."""
    codes = [code for code in values.get("projects") or [] if code]
    known = set(Project.objects(code__in=codes).scalar("code")) if codes else set()
    if set(codes) - known:
        errors["projects"] = _("项目不存在：%(value)s", value="、".join(sorted(set(codes) - known)))
    grades = [grade for grade in values.get("anchor_grades") or [] if grade]
    if any(grade not in GRADES for grade in grades):
        errors["anchor_grades"] = _("客户等级应为 %(grades)s", grades="、".join(GRADES))
    return {"projects": codes, "anchor_grades": grades}


def _offsets(value, errors: dict) -> list[int]:
    """"30、15、3" (or a list) → [30, 15, 3]: days before the handover, each 1–365, at most ``MAX_OFFSETS``."""
    parts = value if isinstance(value, (list, tuple)) else re.split(r"[,，、\s]+", str(value or "").strip())
    days = []
    for part in (p for p in parts if str(p).strip()):
        try:
            day = int(str(part).strip())
        except ValueError:
            errors["offsets"] = _("“%(value)s”不是整数：请填写天数，用顿号分隔，如 30、15、3", value=part)
            return []
        if not 1 <= day <= 365:
            errors["offsets"] = _("提前天数须在 1–365 之间：%(value)s", value=day)
            return []
        if day not in days:
            days.append(day)
    if len(days) > MAX_OFFSETS:
        errors["offsets"] = _("提前天数最多 %(n)s 个", n=MAX_OFFSETS)
    return sorted(days, reverse=True)


def _list_options(duty, values: dict, errors: dict) -> dict:
    """The record list of a pack's list duty: which types, which statuses, the date and its window in days
    around the run's day (``window_from`` ≤ day < ``window_to``)."""
    types = {t.key: t for t in pack_types(duty.pack)}
    chosen = [key for key in (values.get("types") or []) if key]
    if not chosen:
        errors["types"] = _("请至少选择一个记录类型")
    elif any(key not in types for key in chosen):
        errors["types"] = _("只能选择本行业模板的记录类型")
    statuses = values.get("statuses") or "open"
    if statuses not in STATUS_CHOICES:
        errors["statuses"] = _("请选择列出哪些记录")
    date_field = values.get("date_field") or "created_at"
    if date_field not in date_fields([types[k] for k in chosen if k in types]):
        errors["date_field"] = _("所选类型没有日期字段“%(key)s”", key=date_field)
    window_from = _number(values.get("window_from"), -366, 366, "window_from",
                          _("请填写 -366 到 366 之间的整数（负数为之前的天数）"), errors)
    window_to = _number(values.get("window_to"), -366, 366, "window_to",
                        _("请填写 -366 到 366 之间的整数（负数为之前的天数）"), errors)
    if window_from is not None and window_to is not None and window_to <= window_from:
        errors["window_to"] = _("结束须晚于开始")
    return {"types": chosen, "statuses": statuses, "date_field": date_field,
            "window_from": window_from, "window_to": window_to}
