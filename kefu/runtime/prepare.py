"""What every start does before the web app and the workers run: the shipped record types, the working-day
calendar, message templates, the report settings, reminder schedules and search grams of earlier records, and — in
demo mode, into an empty database — the demo data. Each step is idempotent, so a second start adds nothing."""
from __future__ import annotations

import time
from typing import Callable

from kefu.calendar.workcalendar import seed_calendar
from kefu.core.db import mark_migration_done, migration_done
from kefu.insight import export_jobs, exports, views
from kefu.notify import notifications
from kefu.notify.messages import ensure_templates
from kefu.org.migrations import encrypt_plaintext_personal_data
from kefu.org.users import User, forget_lockout_state
from kefu.records.definitions import load_shipped_types, unparsable_types
from kefu.records.migrations import backfill_created_department, backfill_departments
from kefu.records.search import index_unindexed_records
from kefu.rules import sla
from kefu.rules.report import backfill_report_settings
from seed.demo import seed_demo
from seed.records import seed_demo_records


def _once(name: str, migrate: Callable[[], int]) -> int:
    """Run the one-off migration ``name`` unless it ran to the end on this database before (each is resumable: a
    stop in the middle leaves it to the next start); return what it changed. Later starts skip its scan."""
    if migration_done(name):
        return 0
    changed = migrate()
    mark_migration_done(name)
    return changed


def prepare_database(demo: bool, say: Callable[[str], None]) -> dict[str, int] | None:
    """Run every start-up step inside an app context, telling ``say`` what was done; return the demo data's counts
    when it was loaded now (``demo`` and no user yet), else None."""
    created = load_shipped_types()
    if created:
        say(f"record types loaded from schemas/: {len(created)}")
    for key, problems in unparsable_types().items():
        say(f"record type {key} cannot be used until an admin fixes its definition: {problems}")
    migrated = backfill_report_settings()
    if migrated:
        say(f"monthly report settings written for earlier record types: {', '.join(migrated)}")
    started = time.monotonic()
    seeded_days = seed_calendar()
    if seeded_days:
        say(f"working-day calendar: {seeded_days} holidays and make-up workdays entered "
            f"from chinesecalendar ({time.monotonic() - started:.2f} s)")
    ensure_templates()
    encrypted = _once("encrypt_personal_data", lambda: encrypt_plaintext_personal_data(say=say))
    if encrypted:
        say(f"personal data of {encrypted} earlier customers and users encrypted (plaintext removed)")
    sealed = {"saved views": _once("seal_views", views.seal_earlier_views),
              "background exports": _once("seal_export_jobs", export_jobs.seal_earlier_jobs),
              "export audit entries": _once("mask_export_audits", exports.mask_earlier_export_audits),
              "webhook deliveries": _once("seal_webhook_payloads", notifications.seal_earlier_payloads)}
    if any(sealed.values()):
        say("phone and ID numbers no longer kept in clear: " + ", ".join(f"{n} {what}" for what, n in sealed.items()))
    forgotten = _once("forget_lockout_state", forget_lockout_state)
    if forgotten:
        say(f"per-account lock-out state removed from {forgotten} users (sign-in is limited per address now)")
    repaired = sla.repair_derived_state()
    if repaired:
        say(f"deadlines and reminder schedule computed for {repaired} records that lacked them")
    stamped = _once("created_department", backfill_created_department) + _once("departments", backfill_departments)
    if stamped:
        say(f"departments noted on {stamped} earlier records (the department scope reads them)")
    indexed = index_unindexed_records()
    if indexed:
        say(f"search index built for {indexed} earlier records")
    if not demo or User.objects.count() > 0:
        return None
    say("first start: loading demo data …")
    counts = seed_demo()
    started = time.monotonic()
    counts["records"] = seed_demo_records()
    say(f"demo records registered through the services ({time.monotonic() - started:.1f} s)")
    return counts
