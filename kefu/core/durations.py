"""How long, in words: ``3 天 4 小时``, ``5 小时 10 分钟``, ``25 分钟`` — for reminders, lists and exports."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from kefu.core.i18n import _


@dataclass(frozen=True)
class DurationWords:
    """The phrases of ``duration_text`` / ``lateness_text`` in the current language: translated once for a
    page of rows rather than twice per row."""

    days: str
    hours: str
    minutes: str
    late: str
    left: str

    @classmethod
    def current(cls) -> "DurationWords":
        return cls(days=_("%(days)s 天 %(hours)s 小时"), hours=_("%(hours)s 小时 %(minutes)s 分钟"),
                   minutes=_("%(minutes)s 分钟"), late=_("逾期 %(time)s"), left=_("剩余 %(time)s"))


def duration_text(delta: timedelta, words: DurationWords | None = None) -> str:
    """``3 天 4 小时``, ``5 小时 10 分钟`` or ``25 分钟`` (the two largest units, rounded down)."""
    words = words or DurationWords.current()
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return words.days % {"days": days, "hours": hours}
    if hours:
        return words.hours % {"hours": hours, "minutes": minutes}
    return words.minutes % {"minutes": minutes}
