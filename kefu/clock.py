"""The current time, in UTC, in one place so every rule reads the same clock.

``at(moment)`` makes ``utcnow()`` answer ``moment`` inside a block, in this
thread or task only: how an import of history (or the demo data) registers a
record last month through the same services, with the times it really had.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone

_frozen: ContextVar[datetime | None] = ContextVar("kefu_now", default=None)


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
