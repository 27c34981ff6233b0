"""Schema changes done in the background: moving stored values of renamed choices (``kefu.records.choice_migrations``),
building the list sort indexes a saved type calls for (``kefu.records.indexes.sync_list_indexes``)."""
from __future__ import annotations

from jobs import enqueue
from kefu.core.clock import utcnow
from kefu.records.choice_migrations import MigrationStalled, fail, run, unfinished
from kefu.schedule.routines import update_list_indexes


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


def queue_list_indexes(type_key: str):
    """Queue the list indexes duty's work (``routines.update_list_indexes``) after a type was saved; one job id for
    every type (it looks at them all), so saves in a row queue it once. None when Redis cannot be reached (the
    nightly duty catches up)."""
    return enqueue(update_list_indexes, utcnow(), job_id="list-indexes")
