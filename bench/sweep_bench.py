"""Benchmark: the SLA reminder sweep (``kefu.notify.reminders.sweep``) through the app, next to raw pymongo.

    .venv/bin/python bench/sweep_bench.py [--records 1000000] [--crossing 10000] [--overdue 10000] [--profile]

Same set-up as ``bench/overdue_bench.py`` (whose functions it imports): its own mongod and Redis
(``kefu.runtime.embedded``) in a temporary folder, the app from ``create_app``, the demo data (``kefu seed``) and the
working-day calendar, then N records of every shipped type bulk-loaded with the document shape the services
write — here completed with what ``kefu.rules.sla.compute`` and the sweep keep for reminders:

- every running clock carries the alerts already sent for its deadline (``sla.<clock>.alerts``: due soon
  sent once its warning time has passed, overdue and the follow-up steps so far once its deadline has) and
  every record ``sla_next``, computed with ``kefu.rules.reminders.sla_next``: in the future, or None when closed;
- exactly ``--crossing`` running records have one clock whose threshold has just passed (1–50 minutes
  ago) and whose alert was not sent yet: half past the deadline (due soon sent, overdue not) → an
  ``overdue`` alert, half past the warning time with the deadline still ahead → a ``due_soon`` alert;
  ``sla_next`` is that threshold. ``--overdue`` more records are long overdue and already alerted.

The notifications expected are counted from the generated data, independently of ``kefu.notify.notifications``:
overdue → the assignee (none or inactive: the department's supervisors) and the department's supervisors
(a department without one: every supervisor) — no manager, a deadline under an hour old has no follow-up step
yet; due soon → the assignee (none or inactive: the department's supervisors). No SMTP or robot is set up:
in-app notifications only.

Measured in one process, at one fixed ``now`` (the generation time, so that nothing else crosses a
threshold while loading):

- raw pymongo first, leaving the data as it was: ``find`` of the due records (the sweep's filter, fields
  and order), ``insert_many`` of as many minimal notifications as expected into a scratch collection with
  the indexes of ``notifications``, ``bulk_write`` of one ``UpdateOne`` per due record (a ``bench_touch``
  field, removed afterwards with the scratch collection);
- app: ``sweep(now)`` in an app context, once (it must take exactly the crossing records and create
  exactly the expected notifications), then once more (nothing due: the steady per-minute cost).

Prints the times, documents per second (records; notifications for the insert) and the ratio app / raw;
``--profile`` runs the app sweep under cProfile (slower) and prints the functions taking the most time.
Not part of the test suite.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import overdue_bench  # noqa: E402

TARGET_S = 10
SCRATCH = "bench_notifications"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records to load (default 1,000,000)")
    parser.add_argument("--crossing", type=int, default=10_000,
                        help="of which with a clock crossing a threshold (default 10,000)")
    parser.add_argument("--overdue", type=int, default=10_000,
                        help="and long overdue, already alerted (default 10,000)")
    parser.add_argument("--cache-gb", type=float, default=2.0, help="mongod WiredTiger cache (default 2 GB)")
    parser.add_argument("--seed", type=int, default=20261124, help="random seed of the generated data")
    parser.add_argument("--profile", action="store_true", help="run the app sweep under cProfile")
    return parser.parse_args()


# -- data -------------------------------------------------------------------------------------------------

def sent_so_far(state: dict, now: datetime, ladder, calendar, tz) -> dict:
    """The alerts a sweep running every minute has sent for this clock's deadline by ``now``."""
    from kefu.rules.reminders import ladder_steps

    due, warn = state["due_at"], state["warn_at"]
    if due <= now:
        steps = ladder_steps(due, now, ladder, calendar, tz) if ladder else 0
        return {"for_due": due, **({"due_soon": warn} if warn < due else {}), "overdue": due, "ladder": steps}
    if warn <= now:
        return {"for_due": due, "due_soon": warn}
    return {}


def shift(document: dict, delta: timedelta) -> None:
    """Move a running record in time: its creation, status times and every clock."""
    document["created_at"] += delta
    document["updated_at"] += delta
    document["status_at"] = {status: moment + delta for status, moment in document["status_at"].items()}
    for state in document["sla"].values():
        for name in ("started_at", "due_at", "warn_at"):
            state[name] += delta
    for entry in document["sla_open"]:
        entry["warn_at"] += delta
        entry["due_at"] += delta
    document["sla_due"] = min(entry["due_at"] for entry in document["sla_open"])


def cross(document: dict, kind: str, now: datetime, rng: random.Random) -> None:
    """Make the record's first running clock cross its ``kind`` threshold 1–50 minutes before ``now``."""
    first = document["sla"][document["sla_open"][0]["clock"]]
    lag = timedelta(minutes=rng.uniform(1, 50))
    if kind == "overdue":
        shift(document, now - lag - first["due_at"])
        first["alerts"] = {"for_due": first["due_at"], "due_soon": first["warn_at"]}
    else:
        lag = min(lag, (first["due_at"] - first["warn_at"]) / 2)  # the deadline stays ahead
        shift(document, now - lag - first["warn_at"])
        first["alerts"] = {}


def with_reminders(documents, overdue_total: int, crossing: int, reminders: dict, calendar, tz,
                   rng: random.Random, now: datetime, crossed: list):
    """Complete ``overdue_bench.generate``'s documents with alerts and ``sla_next``; ``crossing`` of its
    ``overdue_total`` overdue ones cross a threshold instead ((kind, assignee, department) go to ``crossed``)."""
    from kefu.rules.reminders import sla_next
    from kefu.rules.sla import state_at

    picked = rng.sample(range(overdue_total), crossing)
    kinds = {position: "overdue" if n % 2 == 0 else "due_soon" for n, position in enumerate(picked)}
    overdue_seen = 0
    for document in documents:
        if not document["sla_open"]:
            document["sla_next"] = None
            yield document
            continue
        kind = None
        if document["sla_due"] <= now:
            kind = kinds.get(overdue_seen)
            overdue_seen += 1
        if kind:
            cross(document, kind, now, rng)
            crossed.append((kind, document["assignee"], document["department"]))
        type_reminders = reminders[document["type"]]
        running = {entry["clock"] for entry in document["sla_open"]}
        for key, state in document["sla"].items():
            if "alerts" not in state:
                state["alerts"] = sent_so_far(state, now, type_reminders.ladder, calendar, tz)
            state["state"] = state_at(state, now)
        document["sla_next"] = sla_next({k: s for k, s in document["sla"].items() if k in running},
                                        type_reminders, calendar, tz)
        yield document


def expected_notifications(database, crossed: list) -> int:
    """How many notifications the crossing records call for, from the users collection (see the docstring)."""
    from kefu.org.roles import Role

    active = {u["_id"]: u for u in database["users"].find({"active": True}, {"roles": 1, "department": 1})}
    supervisors_all = {i for i, u in active.items() if Role.SUPERVISOR.value in (u.get("roles") or [])}

    def supervisors(department) -> set:
        return {i for i in supervisors_all if active[i].get("department") == department} or supervisors_all

    total = 0
    for kind, assignee, department in crossed:
        owner = {assignee} if assignee in active else supervisors(department)
        total += len(owner | supervisors(department) if kind == "overdue" else owner)
    return total


# -- measuring ----------------------------------------------------------------------------------------------

def raw_baseline(database, now: datetime, notifications: int) -> tuple[dict, int]:
    """The sweep's work in plain pymongo, leaving records and notifications as they were: (seconds, found)."""
    from pymongo import IndexModel, UpdateOne

    from kefu.notify.reminders import SWEEP_FIELDS
    from kefu.records.store import RECORDS

    records, scratch = database[RECORDS], database[SCRATCH]
    scratch.drop()
    scratch.create_indexes([
        IndexModel(list(index["key"].items()), name=index["name"],
                   **{k: index[k] for k in ("unique", "partialFilterExpression") if k in index})
        for index in database["notifications"].list_indexes() if index["name"] != "_id_"])
    seconds = {}
    started = time.perf_counter()
    documents = list(records.find({"sla_next": {"$lte": now, "$type": "date"}}, SWEEP_FIELDS,
                                  sort=[("sla_next", 1)]))
    seconds["find"] = time.perf_counter() - started
    started = time.perf_counter()
    scratch.insert_many([{
        "key": f"{document['_id']}:{n}", "user": document["assignee"], "kind": "overdue", "title": "title",
        "body": "body", "record_id": document["_id"], "created_at": now, "read_at": None}
        for n, document in ((n, documents[n % len(documents)]) for n in range(notifications))], ordered=False)
    seconds["insert"] = time.perf_counter() - started
    started = time.perf_counter()
    records.bulk_write([UpdateOne({"_id": d["_id"], "sla_rev": d.get("sla_rev")}, {"$set": {"bench_touch": now}})
                        for d in documents], ordered=False)
    seconds["update"] = time.perf_counter() - started
    scratch.drop()
    records.update_many({"_id": {"$in": [d["_id"] for d in documents]}}, {"$unset": {"bench_touch": ""}})
    return seconds, len(documents)


def timed_sweep(app, now: datetime, profiler: cProfile.Profile | None = None):
    from kefu.notify.reminders import sweep

    with app.app_context():
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        result = sweep(now)
        if profiler is not None:
            profiler.disable()
        return result, time.perf_counter() - started


def main() -> int:
    args = parse_args()
    with overdue_bench.servers(args.cache_gb) as (mongo, redis):
        return run(args, random.Random(args.seed), mongo, redis)


def run(args, rng, mongo, redis) -> int:
    from kefu.calendar.workcalendar import get_calendar
    from kefu.core.db import get_database
    from kefu.rules.reminders import reminders_of
    from kefu.records.types import get_record_type

    app, users, departments = overdue_bench.seeded_app(mongo.uri, redis.url)
    templates = overdue_bench.make_templates(app)
    now = datetime.now(timezone.utc)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # what MongoDB keeps
    crossed: list = []
    with app.app_context():
        database = get_database()
        reminders = {t["type"]: reminders_of(get_record_type(t["type"])) for t in templates}
        overdue_total = args.overdue + args.crossing
        print(f"Loading {args.records:,} records of {len(templates)} types ({args.crossing:,} crossing a "
              f"threshold, {args.overdue:,} overdue and alerted) …", flush=True)
        documents = overdue_bench.generate(templates, users, departments, args.records, overdue_total, rng, now)
        seconds = overdue_bench.load(database, with_reminders(
            documents, overdue_total, args.crossing, reminders, get_calendar(),
            ZoneInfo(app.config["KEFU_TIMEZONE"]), rng, now, crossed), args.records)
        print(f"  loaded in {seconds:.0f} s", flush=True)
    crossing_overdue = sum(1 for kind, _, _ in crossed if kind == "overdue")
    expected = expected_notifications(database, crossed)
    notifications = database["notifications"]
    before = notifications.count_documents({})
    assert before == 0, f"{before} notifications before the sweep"

    load_before = os.getloadavg()[0]
    raw_seconds, found = raw_baseline(database, now, expected)
    assert found == args.crossing, f"{found:,} records due, {args.crossing:,} generated to cross"
    profiler = cProfile.Profile() if args.profile else None
    first, first_s = timed_sweep(app, now, profiler)
    created = notifications.count_documents({})
    deliveries = database["deliveries"].count_documents({})
    second, second_s = timed_sweep(app, now)
    raw_total = sum(raw_seconds.values())

    print()
    print(f"records: {args.records:,}   crossing: {args.crossing:,} (overdue {crossing_overdue:,}, due soon "
          f"{args.crossing - crossing_overdue:,})   notifications expected: {expected:,}   load average: "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)")
    print(f"sweep: {first.text()}")
    print(f"again: {second.text()}")
    print(f"in the database: {created:,} notifications, {deliveries:,} deliveries")
    print()
    print(f"{'measurement':58} {'seconds':>9} {'documents':>10} {'per second':>11}")
    rows = [
        (f"kefu.notify.reminders.sweep (app){' under cProfile' if profiler else ''}", first_s, first.records),
        ("  again right after (nothing due)", second_s, second.records),
        ("raw pymongo: find + insert_many + bulk_write", raw_total, found),
        ("  find sla_next <= now (the sweep's fields and order)", raw_seconds["find"], found),
        (f"  insert_many {expected:,} notifications", raw_seconds["insert"], expected),
        (f"  bulk_write {found:,} UpdateOne", raw_seconds["update"], found),
    ]
    for name, seconds, count in rows:
        rate = f"{count / seconds:11,.0f}" if count else f"{'-':>11}"
        print(f"{name:58} {seconds:9.3f} {count:10,} {rate}")
    print()
    print(f"ratio app / raw: {first_s / raw_total:.1f}x")
    fast = first_s < TARGET_S
    counted = first.notifications == expected == created and first.records == args.crossing \
        and second.records == 0
    print(f"target: sweep < {TARGET_S} s {'met' if fast else 'NOT met'}; "
          f"notifications == expected {'met' if counted else 'NOT met'} "
          f"(sweep {first.notifications:,}, database {created:,}, expected {expected:,})")
    if profiler is not None:
        overdue_bench.print_profile(profiler, "the first sweep under cProfile")
    return 0 if fast and counted else 1


if __name__ == "__main__":
    sys.exit(main())
