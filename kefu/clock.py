"""The current time, in UTC, in one place so every rule reads the same clock."""
from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Timezone-aware current time in UTC (what MongoDB stores)."""
    return datetime.now(timezone.utc)
