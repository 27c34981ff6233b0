"""Benchmark: the SLA reminder sweep (``kefu.notify.reminders.sweep``) through the app, next to raw pymongo.

    .venv/bin/python bench/sweep_bench.py [--records 1000000] [--crossing 10000] [--overdue 10000]
                                          [--long-overdue 10000] [--profile]

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
- ``--long-overdue`` more records (default none) have been overdue for 1–10 years and are alerted up to the
  follow-up step before the latest: the latest one has come (``sla_next`` is its time), as every working morning
  for a record left open for years — each costs one ``ladder`` alert to the assignee and the managers.

The notifications expected are counted from the generated data, independently of ``kefu.notify.notifications``:
overdue → the assignee (none or inactive: the department's supervisors) and the department's supervisors
(a department without one: every supervisor) — no manager, a deadline under an hour old has no follow-up step
yet; due soon → the assignee (none or inactive: the department's supervisors); a follow-up step of a long
overdue record → the assignee (none or inactive: the department's supervisors) and the managers (the shipped
manager and admin roles; the department's, else all). No SMTP or robot is set up: in-app notifications only.

Measured in one process, at one fixed ``now`` (the generation time, so that nothing else crosses a
threshold while loading):

- raw pymongo first, leaving the data as it was: ``find`` of the due records (the sweep's filter, fields
  and order), ``insert_many`` of as many minimal notifications as expected into a scratch collection with
  the indexes of ``notifications``, ``bulk_write`` of one ``UpdateOne`` per due record (a ``bench_touch``
  field, removed afterwards with the scratch collection);
- app: ``sweep(now)`` in an app context, once (it must take exactly the due records and create
  exactly the expected notifications), then once more (nothing due: the steady per-minute cost).

Prints the times, documents per second (records; notifications for the insert) and the ratio app / raw.
With ``--long-overdue``, also: the raw baseline and the app sweep in turn, three rounds (every due record put back
as it was before the first sweep, its notifications removed, before each), the best of each and their ratio —
next to them the raw baseline writing the very ``$set`` the sweep wrote instead of ``bench_touch`` (it moves the
indexed ``sla_next``, so MongoDB updates the records' index keys, which a new unindexed field does not); the cost per record by years overdue (1–2, …, 9–10): each bucket put back and swept alone (milliseconds per
record, best of three), and the pure computation of its ladder (``ladder_steps`` and the next ``ladder_time``,
microseconds per record); one ``ladder_steps`` call for a deadline in 2012; the build of the calendar's
working-day index. Targets: the sweep ≤ 2× raw, and no bucket's cost per record over 1.5× another's.
``--profile`` runs the first app sweep under cProfile (slower) and prints the functions taking the most time.
Not part of the test suite. The long-overdue case on its own, at 10,000 records:

    .venv/bin/python bench/sweep_bench.py --records 100000 --crossing 0 --overdue 1000 --long-overdue 10000
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
TARGET_LONG_RATIO = 2
TARGET_SPREAD = 1.5
SCRATCH = "bench_notifications"
YEAR = timedelta(days=365.2425)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records to load (default 1,000,000)")
    parser.add_argument("--crossing", type=int, default=10_000,
                        help="of which with a clock crossing a threshold (default 10,000)")
    parser.add_argument("--overdue", type=int, default=10_000,
                        help="and long overdue, already alerted (default 10,000)")
    parser.add_argument("--long-overdue", type=int, default=0,
                        help="and overdue for 1–10 years, the latest follow-up step due (default 0)")
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


def age(document: dict, now: datetime, rng: random.Random) -> float:
    """Make the record's first running clock overdue for 1–10 years (its other clocks move with it); the years."""
    first = document["sla"][document["sla_open"][0]["clock"]]
    years = rng.uniform(1, 10)
    shift(document, now - years * YEAR - first["due_at"])
    return years


def pick_kinds(rng: random.Random, overdue_total: int, crossing: int, long_overdue: int) -> dict[int, str]:
    """Of the overdue records (by position): ``crossing`` cross a threshold (half overdue, half due soon),
    ``long_overdue`` others are overdue for years."""
    picked = rng.sample(range(overdue_total), crossing + long_overdue)
    kinds = {position: "overdue" if n % 2 == 0 else "due_soon" for n, position in enumerate(picked[:crossing])}
    kinds.update((position, "long") for position in picked[crossing:])
    return kinds


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


def with_reminders(documents, kinds: dict, reminders: dict, calendar, tz, rng: random.Random, now: datetime,
                   crossed: list, aged: list):
    """Complete ``overdue_bench.generate``'s documents with alerts and ``sla_next``; the overdue ones named in
    ``kinds`` (``pick_kinds``) cross a threshold or are overdue for years instead ((kind, assignee, department)
    go to ``crossed``; (document, years overdue) of the latter to ``aged``)."""
    from kefu.rules.reminders import sla_next
    from kefu.rules.sla import state_at

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
        type_reminders = reminders[document["type"]]
        if kind == "long":
            assert type_reminders.ladder is not None, f"{document['type']} has no follow-up ladder"
            aged.append((document, age(document, now, rng)))
            crossed.append(("ladder", document["assignee"], document["department"]))
        elif kind:
            cross(document, kind, now, rng)
            crossed.append((kind, document["assignee"], document["department"]))
        running = {entry["clock"] for entry in document["sla_open"]}
        for key, state in document["sla"].items():
            if "alerts" not in state:
                state["alerts"] = sent_so_far(state, now, type_reminders.ladder, calendar, tz)
            state["state"] = state_at(state, now)
        if kind == "long":  # alerted up to the step before the latest: the latest one is due
            document["sla"][document["sla_open"][0]["clock"]]["alerts"]["ladder"] -= 1
        document["sla_next"] = sla_next({k: s for k, s in document["sla"].items() if k in running},
                                        type_reminders, calendar, tz)
        yield document


def expected_notifications(database, crossed: list) -> int:
    """How many notifications the crossing records call for, from the users collection (see the docstring)."""
    from kefu.org.roles import Role

    active = {u["_id"]: u for u in database["users"].find({"active": True}, {"roles": 1, "department": 1})}

    def holding(*roles) -> set:
        return {i for i, u in active.items() if set(roles) & set(u.get("roles") or [])}

    supervisors_all, managers_all = holding(Role.SUPERVISOR.value), holding(Role.MANAGER.value, Role.ADMIN.value)

    def nearest(people: set, department) -> set:
        return {i for i in people if active[i].get("department") == department} or people

    total = 0
    for kind, assignee, department in crossed:
        owner = {assignee} if assignee in active else nearest(supervisors_all, department)
        also = {"overdue": nearest(supervisors_all, department), "ladder": nearest(managers_all, department)}
        total += len(owner | also.get(kind, set()))
    return total


# -- measuring ----------------------------------------------------------------------------------------------

def raw_baseline(database, now: datetime, notifications: int, marks: dict | None = None) -> tuple[dict, int]:
    """The sweep's work in plain pymongo, leaving records and notifications as they were: (seconds, found).

    ``marks``: per record id, a ``$set`` to write instead of the scratch field ``bench_touch`` — what the sweep
    wrote (``marks_of``), which moves the indexed ``sla_next``; the records are then left as the sweep leaves them."""
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
    records.bulk_write([UpdateOne({"_id": d["_id"], "sla_rev": d.get("sla_rev")},
                                  {"$set": marks[d["_id"]] if marks else {"bench_touch": now}})
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


def snapshot_of(database, now: datetime) -> dict:
    """What the sweep changes on the records due at ``now`` (clocks, ``sla_next``, revision), by id."""
    from kefu.records.store import RECORDS

    return {row.pop("_id"): row for row in database[RECORDS].find(
        {"sla_next": {"$lte": now, "$type": "date"}}, {"sla": 1, "sla_next": 1, "sla_rev": 1})}


def put_back(database, ids: list, snapshot: dict) -> None:
    """The records ``ids`` as ``snapshot`` holds them, their notifications and deliveries removed: due again."""
    from pymongo import UpdateOne

    from kefu.records.store import RECORDS

    database[RECORDS].bulk_write([UpdateOne({"_id": i}, {"$set": snapshot[i]}) for i in ids], ordered=False)
    for name in ("notifications", "deliveries"):
        database[name].delete_many({"record_id": {"$in": ids}})


def marks_of(database, ids) -> dict:
    """What the sweep wrote on the records ``ids`` (their clocks and ``sla_next``), by id, as a ``$set``."""
    from kefu.records.store import RECORDS

    return {row.pop("_id"): row for row in database[RECORDS].find({"_id": {"$in": list(ids)}},
                                                                  {"sla": 1, "sla_next": 1})}


def in_turn(app, database, now: datetime, snapshot: dict, expected: int, rounds: int = 3) -> dict[str, float]:
    """The best seconds over ``rounds`` rounds of one each of: the raw baseline (``raw``), the app sweep
    (``app``) and the raw baseline writing what the sweep wrote (``raw_marks``); every due record is put back
    before each (a shared machine's drift hits them alike)."""
    best = {"raw": float("inf"), "app": float("inf"), "raw_marks": float("inf")}
    marks = None
    for _ in range(rounds):
        put_back(database, list(snapshot), snapshot)
        raw_seconds, found = raw_baseline(database, now, expected)
        best["raw"] = min(best["raw"], sum(raw_seconds.values()))
        result, seconds = timed_sweep(app, now)
        assert found == result.records == len(snapshot) and result.notifications == expected, result.text()
        best["app"] = min(best["app"], seconds)
        marks = marks or marks_of(database, snapshot)
        put_back(database, list(snapshot), snapshot)
        raw_seconds, _found = raw_baseline(database, now, expected, marks)
        best["raw_marks"] = min(best["raw_marks"], sum(raw_seconds.values()))
    return best


def bucket_costs(app, database, now: datetime, aged: list, snapshot: dict,
                 rounds: int = 3) -> list[tuple[int, int, float]]:
    """Per bucket of years overdue (1–2, …, 9–10): (first year, records, app sweep milliseconds per record, the
    best of ``rounds``; the buckets take turns in each round so that a shared machine's drift hits them alike).

    A bucket is put back as ``snapshot`` holds it (before the first sweep) while the others stay swept, and
    ``sweep(now)`` takes exactly its records."""
    buckets: dict[int, list] = {}
    for document, years in aged:
        buckets.setdefault(int(years), []).append(document["_id"])
    best: dict[int, float] = {}
    for _ in range(rounds):
        for years, ids in sorted(buckets.items()):
            put_back(database, ids, snapshot)
            result, seconds = timed_sweep(app, now)
            assert result.records == len(ids), f"{result.records:,} records swept, {len(ids):,} put back"
            best[years] = min(best.get(years, seconds), seconds)
    return [(years, len(ids), best[years] * 1000 / len(ids)) for years, ids in sorted(buckets.items())]


def ladder_costs(aged: list, now: datetime, reminders: dict, calendar, tz, rounds: int = 20) -> dict[int, float]:
    """Per bucket of years overdue: microseconds per record of ``ladder_steps`` and the next ``ladder_time`` on the
    record's first running clock (pure computation, what used to walk the calendar once per step); the best of
    ``rounds``, the buckets taking turns."""
    from kefu.rules.reminders import ladder_steps, ladder_time

    buckets: dict[int, list] = {}
    for document, years in aged:
        due = document["sla"][document["sla_open"][0]["clock"]]["due_at"]
        buckets.setdefault(int(years), []).append((due, reminders[document["type"]].ladder))
    best: dict[int, float] = {}
    for _ in range(rounds):
        for years, clocks in buckets.items():
            started = time.perf_counter()
            for due, ladder in clocks:
                ladder_time(due, ladder_steps(due, now, ladder, calendar, tz) + 1, ladder, calendar, tz)
            best[years] = min(best.get(years, float("inf")), (time.perf_counter() - started) * 1e6 / len(clocks))
    return best


def calendar_costs(calendar, ladder, tz, now: datetime, runs: int = 2000) -> dict:
    """One ``ladder_steps`` call for a deadline in 2012 (microseconds, and its step) and the build of the
    working-day index of a fresh copy of ``calendar`` (milliseconds, and its working days)."""
    from kefu.calendar.arithmetic import WorkCalendar
    from kefu.rules.reminders import ladder_steps

    due = datetime(2012, 3, 6, 10, 0, tzinfo=tz)
    started = time.perf_counter()
    for _ in range(runs):
        steps = ladder_steps(due, now, ladder, calendar, tz)
    call_us = (time.perf_counter() - started) * 1e6 / runs
    builds = []
    for _ in range(5):
        copy = WorkCalendar(calendar.entries, calendar.version)
        started = time.perf_counter()
        index = copy.index
        builds.append((time.perf_counter() - started) * 1000)
    return {"steps": steps, "call_us": call_us, "build_ms": min(builds), "workdays": len(index.workdays)}


def long_overdue_case(app, database, now: datetime, aged: list, snapshot: dict, expected: int, reminders: dict,
                      calendar, tz) -> bool:
    """Measure and print the long-overdue figures (see the module docstring); whether their targets are met."""
    best = in_turn(app, database, now, snapshot, expected)
    raw_s, app_s = best["raw"], best["app"]
    buckets = bucket_costs(app, database, now, aged, snapshot)
    ladder_us = ladder_costs(aged, now, reminders, calendar, tz)
    figures = calendar_costs(calendar, next(iter(reminders.values())).ladder, tz, now)
    ratio = app_s / raw_s
    spread = max(ms for _y, _n, ms in buckets) / min(ms for _y, _n, ms in buckets)
    print()
    print(f"long overdue: {len(aged):,} records overdue 1–10 years, each with its latest follow-up step due")
    print(f"in turn, best of 3 (every due record put back before each): app sweep {app_s:.3f} s, raw {raw_s:.3f} s, "
          f"ratio {ratio:.2f}x   load average {os.getloadavg()[0]:.1f}")
    print(f"  raw writing what the sweep writes (sla_next moves: MongoDB updates the keys of the records' indexes): "
          f"{best['raw_marks']:.3f} s, ratio app / that {app_s / best['raw_marks']:.2f}x")
    print(f"{'years overdue':14} {'records':>8} {'sweep ms/record':>16} {'ladder µs/record':>17}")
    for years, count, ms in buckets:
        print(f"{f'{years}–{years + 1}':14} {count:8,} {ms:16.3f} {ladder_us[years]:17.1f}")
    print(f"spread of the sweep's cost per record (max / min bucket): {spread:.2f}x")
    print(f"ladder_steps for a deadline in 2012 (step {figures['steps']:,}): {figures['call_us']:.1f} µs per call")
    print(f"working-day index of the calendar: {figures['workdays']:,} working days built in "
          f"{figures['build_ms']:.1f} ms")
    print(f"target: sweep <= {TARGET_LONG_RATIO}x raw {'met' if ratio <= TARGET_LONG_RATIO else 'NOT met'}; "
          f"cost per record independent of the time overdue (spread <= {TARGET_SPREAD}x) "
          f"{'met' if spread <= TARGET_SPREAD else 'NOT met'}")
    return ratio <= TARGET_LONG_RATIO and spread <= TARGET_SPREAD


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
    aged: list = []
    tz = ZoneInfo(app.config["KEFU_TIMEZONE"])
    with app.app_context():
        database = get_database()
        calendar = get_calendar()
        reminders = {t["type"]: reminders_of(get_record_type(t["type"])) for t in templates}
        overdue_total = args.overdue + args.crossing + args.long_overdue
        print(f"Loading {args.records:,} records of {len(templates)} types ({args.crossing:,} crossing a "
              f"threshold, {args.overdue:,} overdue and alerted, {args.long_overdue:,} overdue for years) …",
              flush=True)
        documents = overdue_bench.generate(templates, users, departments, args.records, overdue_total, rng, now)
        kinds = pick_kinds(rng, overdue_total, args.crossing, args.long_overdue)
        seconds = overdue_bench.load(database, with_reminders(
            documents, kinds, reminders, calendar, tz, rng, now, crossed, aged), args.records)
        print(f"  loaded in {seconds:.0f} s", flush=True)
    due_total = args.crossing + args.long_overdue
    crossing_overdue = sum(1 for kind, _, _ in crossed if kind == "overdue")
    expected = expected_notifications(database, crossed)
    notifications = database["notifications"]
    before = notifications.count_documents({})
    assert before == 0, f"{before} notifications before the sweep"

    load_before = os.getloadavg()[0]
    raw_seconds, found = raw_baseline(database, now, expected)
    assert found == due_total, f"{found:,} records due, {due_total:,} generated to be"
    snapshot = snapshot_of(database, now)
    profiler = cProfile.Profile() if args.profile else None
    first, first_s = timed_sweep(app, now, profiler)
    created = notifications.count_documents({})
    deliveries = database["deliveries"].count_documents({})
    second, second_s = timed_sweep(app, now)
    raw_total = sum(raw_seconds.values())

    print()
    print(f"records: {args.records:,}   crossing: {args.crossing:,} (overdue {crossing_overdue:,}, due soon "
          f"{args.crossing - crossing_overdue:,})   overdue for years: {args.long_overdue:,}   "
          f"notifications expected: {expected:,}   load average: "
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
    counted = first.notifications == expected == created and first.records == due_total \
        and second.records == 0
    print(f"target: sweep < {TARGET_S} s {'met' if fast else 'NOT met'}; "
          f"notifications == expected {'met' if counted else 'NOT met'} "
          f"(sweep {first.notifications:,}, database {created:,}, expected {expected:,})")
    long_met = not aged or long_overdue_case(app, database, now, aged, snapshot, expected, reminders, calendar, tz)
    if profiler is not None:
        overdue_bench.print_profile(profiler, "the first sweep under cProfile")
    return 0 if fast and counted and long_met else 1


if __name__ == "__main__":
    sys.exit(main())
