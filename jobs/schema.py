"""Schema changes that rewrite stored values in the background (``kefu.records.choice_migrations``)."""
from __future__ import annotations

from kefu.records.choice_migrations import fail, run


def migrate_choices(migration_id: str) -> str:
    """Move the records of a choice rename to the new names; idempotent (a finished migration is left alone)."""
    try:
        migration = run(migration_id)
    except Exception as exc:
        fail(migration_id, f"{type(exc).__name__}: {exc}")
        raise
    return f"choice migration {migration_id}: {migration.done if migration else 0} records"
