"""The demo records: registered through the services at the times they happened, once. ``kefu seed-records`` runs
once per test session after ``kefu seed`` and the calendar (the ``demo_records`` fixture, tests/conftest.py); this
test checks what it wrote, then runs it again."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


def test_demo_records_fill_six_weeks_once(app, runner, demo_records, db):
    counts = {t: db.records.count_documents({"type": t}) for t in ("complaint", "consultation", "repair", "callback")}
    assert counts["complaint"] == 70 and counts["consultation"] == 25 and counts["repair"] == 25
    assert counts["callback"] > 10  # closing created them
    now = datetime.now(timezone.utc)
    oldest = db.records.find_one(sort=[("created_at", 1)])["created_at"]
    assert now - timedelta(days=46) < oldest < now - timedelta(days=30)
    assert db.records.count_documents({"closed_at": {"$type": "date"}}) > 20
    assert db.records.count_documents({"sla_due": {"$lte": now, "$type": "date"}}) > 0  # some overdue
    assert db.records.count_documents({"outcome.result": "不满意"}) >= 1
    audit = db.audit_log.count_documents({"action": "create"})
    assert audit == sum(counts.values())  # every record through the write path
    again = runner.invoke(args=["kefu", "seed-records"])
    assert "none added" in again.output
    assert db.records.count_documents({}) == sum(counts.values())
