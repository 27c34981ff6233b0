"""The current time, in UTC, in one place so every rule reads the same clock.

``at(moment)`` makes ``utcnow()`` answer ``moment`` inside a block, in this
thread or task only: how an import of history (or the demo data) registers a
record last month through the same services, with the times it really had.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, time, timezone

_frozen: ContextVar[datetime | None] = ContextVar("kefu_now", default=None)
TIME_OF_DAY = r"^([01]\d|2[0-3]):([0-5]\d)$"  # "HH:MM", 00:00–23:59
_TIME_OF_DAY = re.compile(TIME_OF_DAY)


def utcnow() -> datetime:
    """Timezone-aware current time in UTC (what MongoDB stores)."""
    frozen = _frozen.get()
    return frozen if frozen is not None else datetime.now(timezone.utc)


@contextmanager
def at(moment: datetime):
    """Within the block, ``utcnow()`` is ``moment`` (aware; converted to UTC)."""
    token = _frozen.set(moment.astimezone(timezone.utc))
    try:
        yield
    finally:
        _frozen.reset(token)


def aware(moment: datetime | None) -> datetime | None:
    """``moment`` with its time zone; a naive one is UTC (pymongo's raw reads and rq return naive UTC)."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def time_of_day(text: str) -> time:
    """The time ``HH:MM`` names; ``ValueError`` when it is not one."""
    match = _TIME_OF_DAY.match(text or "")
    if match is None:
        raise ValueError(f"not a time of day: {text!r}")
    return time(int(match.group(1)), int(match.group(2)))
