"""What a clock being edited would give: its deadline from a sample start, on the real calendar (the record-type
screen shows it under each clock while the admin types: "受理于 12-04 16:00 → 截止 12-08 23:59（跳过 12-05、12-06 周末）").

Computed by the engine itself — ``Window.due`` and the calendar's ``explain_working_days`` /
``explain_working_hours``, as ``kefu.rules.sla``
computes a record's deadline — so the preview and the records agree.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _, _l, clauses, enumeration
from kefu.rules.clock_start import field_event
from kefu.rules.shapes import Window

# Sample starts the calendar arithmetic is asked about (its index covers a bounded span of years).
FIRST_YEAR, LAST_YEAR = 2000, 2099
MAX_WORKING_DAYS = 1000  # a preview walks the window day by day
MAX_LABEL = 40


def _window(raw, where: str) -> Window:
    try:
        return Window.model_validate(raw)
    except ValidationError:
        message = _l("请填写时限的数量（不小于 0 的整数）和单位")
        raise ValidationFailed(message, {where: message}) from None


def _sample(raw, tz: ZoneInfo) -> datetime:
    """The sample start as written by a ``datetime-local`` input ("2026-12-04T16:00"), local time."""
    try:
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        moment = None
    if moment is None or not FIRST_YEAR <= moment.year <= LAST_YEAR:
        message = _l("示例开始时间应为 %(first)s–%(last)s 年间的日期和时间，如 2026-12-04 16:00", first=FIRST_YEAR,
                     last=LAST_YEAR)
        raise ValidationFailed(message, {"sample": message})
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)


def _day(day: date) -> str:
    return f"{day:%m-%d}"


def _skipped_text(runs: list[dict]) -> str:
    """"12-05、12-06 周末；10-01…10-08 国庆节": each run of days off with its name."""
    parts = []
    for run in runs:
        first, last = run["first"], run["last"]
        if first == last:
            days = _day(first)
        elif (last - first).days == 1:
            days = enumeration((_day(first), _day(last)))
        else:
            days = f"{_day(first)}…{_day(last)}"
        parts.append(f"{days} {run['name']}")
    return _("；").join(parts)


def preview_deadline(window: Window, start: datetime, calendar, tz: ZoneInfo) -> dict:
    """The deadline ``window`` gives from ``start`` (aware): ``{due_at, skipped: [{first, last, name}],
    makeup: [{day, name}], fallback_years, text}`` — ``text`` like "截止 12-08 23:59（跳过 12-05、12-06 周末）".
    Days are skipped only for working days and working hours; minutes, hours and days are clock time."""
    if window.unit in ("working_days", "working_hours"):
        limit = MAX_WORKING_DAYS * (1 if window.unit == "working_days" else calendar.hours.seconds_per_day // 3600)
        if window.amount > limit:
            message = _l("预览最多计算 %(n)s 个工作日", n=MAX_WORKING_DAYS)
            raise ValidationFailed(message, {"within": message})
        reasons = getattr(calendar, f"explain_{window.unit}")(start, window.amount, tz)
        due_at = reasons["due_at"].astimezone(tz)
        notes = []
        if window.unit == "working_hours":
            notes.append(_("只计工作日的工作时间 %(hours)s", hours=calendar.hours.text()))
        if reasons["skipped"]:
            notes.append(_("跳过 %(days)s", days=_skipped_text(reasons["skipped"])))
        notes.extend(_("%(day)s 调休上班", day=_day(m["day"])) for m in reasons["makeup"])
        if reasons["fallback_years"]:
            notes.append(_("%(years)s 年节假日未录入，按周末及元旦、劳动节、国庆节计算",
                           years=enumeration(reasons["fallback_years"])))
        skipped, makeup, fallback = reasons["skipped"], reasons["makeup"], reasons["fallback_years"]
    else:
        try:
            due_at = (start + timedelta(**{window.unit: window.amount})).astimezone(tz)
        except OverflowError:
            message = _l("时限过长，无法计算截止时间")
            raise ValidationFailed(message, {"within": message}) from None
        notes, skipped, makeup, fallback = [_("按自然时间计算，含夜间和节假日")], [], [], []
    text = _("截止 %(due)s", due=f"{due_at:%m-%d %H:%M}")
    if notes:
        text += _("（%(notes)s）", notes=clauses(notes))
    return {"due_at": due_at.isoformat(), "skipped": [{**run, "first": run["first"].isoformat(),
                                                        "last": run["last"].isoformat()} for run in skipped],
            "makeup": [{**m, "day": m["day"].isoformat()} for m in makeup], "fallback_years": fallback, "text": text}


def _start_words(start, label) -> str:
    """How the clock's start reads before the sample time: 受理于 / 进入“已转办”于 / “约定时间”为."""
    if not start or start == "created":
        return _("受理于")
    if isinstance(start, str) and start.startswith("status:"):
        return _("进入“%(status)s”于", status=start[len("status:"):][:MAX_LABEL])
    event = field_event(start) if isinstance(start, str) else None
    if event is not None:
        name = (label if isinstance(label, str) and label.strip() else event.key)[:MAX_LABEL]
        if event.value is None:
            return _("“%(field)s”首次填写于", field=name)
        return _("“%(field)s”变为“%(value)s”于", field=name, value=event.value[:MAX_LABEL])
    name = label if isinstance(label, str) and label.strip() else start
    return _("“%(field)s”为", field=str(name)[:MAX_LABEL])


def preview_clock(data, calendar, tz: ZoneInfo) -> dict:
    """The preview of a clock as the editor holds it: ``data`` = ``{start, start_label, within, by_level, sample}``
    (``by_level``: level → window; ``start_label``: the start field's label). Returns ``{start, lines: [{level,
    text, due_at, skipped …}]}``: the clock's own window first, then one line per level. ``ValidationFailed`` with
    a message at ``within`` / ``by_level.<level>`` / ``sample`` for what cannot be previewed."""
    if not isinstance(data, dict):
        message = _l("预览请求格式不正确")
        raise ValidationFailed(message, {"within": message})
    start = _sample(data.get("sample"), tz)
    words = f"{_start_words(data.get('start'), data.get('start_label'))} {start:%m-%d %H:%M}"
    lines = [{"level": None, **preview_deadline(_window(data.get("within"), "within"), start, calendar, tz)}]
    by_level = data.get("by_level") or {}
    if not isinstance(by_level, dict):
        by_level = {}
    for level, raw in list(by_level.items())[:20]:
        line = preview_deadline(_window(raw, f"by_level.{level}"), start, calendar, tz)
        lines.append({**line, "level": str(level)[:MAX_LABEL]})
    for line in lines:
        prefix = _("等级“%(level)s”：", level=line["level"]) if line["level"] is not None else ""
        line["text"] = f"{prefix}{words} → {line['text']}"
    return {"start": start.isoformat(), "lines": lines}
