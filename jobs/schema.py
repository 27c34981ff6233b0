"""Schema changes that rewrite stored values in the background (``kefu.records.choice_migrations``)."""
from __future__ import annotations

from jobs import enqueue
from kefu.records.choice_migrations import MigrationStalled, fail, run, unfinished


def migrate_choices(migration_id: str) -> str:
    """Move the records of a choice rename to the new names; idempotent (a finished migration is left alone).
    Fails (rq records it) when the migration fails; the scheduler's tick queues it again (``queue_unfinished``)."""
    try:
        migration = run(migration_id)
    except MigrationStalled:
        raise  # noted on the migration already
    except Exception as exc:
        fail(migration_id, f"{type(exc).__name__}: {exc}")
        raise
    return f"choice migration {migration_id}: {migration.done if migration else 0} records"


def queue_choice_migration(migration_id: str):
    """Queue the migration's job; the stable job id makes a repeat a no-op. None when Redis cannot be reached."""
    return enqueue(migrate_choices, migration_id, job_id=f"choices-{migration_id}")


def queue_unfinished(now=None) -> int:
    """Queue again the migrations whose job was lost or died (``choice_migrations.unfinished``); return how many."""
    return sum(queue_choice_migration(migration_id) is not None for migration_id in unfinished(now))
