"""Benchmark: exporting complaints (CSV, XLSX) through the app, next to a raw pymongo → csv baseline.

    .venv/bin/python bench/export_bench.py [--sizes 100000,1000000] [--xlsx-sizes 100000] [--masked] [--profile]

Starts its own mongod and Redis (``kefu.runtime.embedded``) in a temporary folder the way ``overdue_bench`` does and
reuses its data functions: ``kefu seed``, the working-day calendar, then complaints with the shape the services
write (data, ``pii`` with a real encrypted phone, ``bidx``, grams, search text, SLA clocks). The sizes are
loaded in turn (the first N, then more up to the next size), so each size is measured on its own data.

Measured at every size, each in a fresh child process (this script re-run with ``--child``) so that its peak
RSS is that measurement's alone. Peak RSS is the child's ``VmHWM`` (/proc/self/status), not ``ru_maxrss``:
Linux carries ``ru_maxrss`` over an exec, so a child's would never be below the parent's RSS at the fork.

- app CSV: ``kefu.insight.exports.export_records`` for every complaint (``RecordQuery()``: newest first), full-access
  actor (phones decrypted), its ``chunks`` consumed to the end and written to /dev/null;
- app CSV, masked (with ``--masked``): the same, actor without the personal-data permission (phones masked);
- raw CSV: ``find({"type": "complaint"})`` in the same order (``batch_size=1000``) → ``csv.writer`` rows of the
  same columns, the stored values as ``str`` (nothing decrypted) → /dev/null; the CSV target is against this;
- raw CSV, projected: the same reading only the top-level fields the columns come from (the app leaves out
  just the search index), for reference;
- app XLSX, only at the ``--xlsx-sizes``: seconds to the first byte and to the end of the stream.

Before each size one untimed scan reads every complaint, so all measurements read from mongod's cache.
Prints seconds, rows/s, RSS before the export starts and peak RSS in MB, app CSV rows/s as a share of raw, and the
targets: CSV ≥ 50 % of raw rows/s, XLSX of 100,000 rows < 20 s, peak memory of the 1,000,000-row export
< 300 MB. With ``--profile``, the app CSV export of the smallest size also runs under cProfile (in its own child)
and the top 25 functions by cumulative and by own time follow the table. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import time
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import overdue_bench  # noqa: E402

DB_NAME = "kefu_bench_export"
RESULT_MARK = "RESULT "
TARGET_CSV_SHARE = 0.5
TARGET_XLSX_SIZE, TARGET_XLSX_S = 100_000, 20
TARGET_MEMORY_SIZE, TARGET_MEMORY_MB = 1_000_000, 300
MEASUREMENTS = {"app-csv": "app CSV", "app-csv-masked": "app CSV, masked", "raw-csv": "raw pymongo → csv",
                "raw-csv-projected": "raw, projected", "app-xlsx": "app XLSX"}


def sizes(text: str) -> list[int]:
    return sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=sizes, default=[100_000, 1_000_000],
                        help="complaints to export, comma-separated (default 100000,1000000)")
    parser.add_argument("--xlsx-sizes", type=sizes, default=[100_000],
                        help="sizes also exported as XLSX (default 100000; openpyxl takes long for 1M)")
    parser.add_argument("--masked", action="store_true",
                        help="also export CSV as an actor without the personal-data permission")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the app CSV export of the smallest size (cProfile)")
    parser.add_argument("--cache-gb", type=float, default=4.0, help="mongod WiredTiger cache (default 4 GB)")
    parser.add_argument("--seed", type=int, default=20261124, help="random seed of the generated data")
    parser.add_argument("--child", metavar="MEASUREMENT",
                        help="internal: run one measurement against --mongo-uri/--redis-url and print its result")
    parser.add_argument("--mongo-uri", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    return parser.parse_args()


def memory_mb(key: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(key + ":"))
    return int(line.split()[1]) / 1024  # kB


# -- child: one measurement -------------------------------------------------------------------------------

def child(measurement: str, mongo_uri: str, redis_url: str) -> dict:
    if measurement.startswith("raw-csv"):
        return raw_csv(mongo_uri, projected=measurement == "raw-csv-projected")
    from app import create_app

    app = create_app(overdue_bench.bench_config(mongo_uri, redis_url, DB_NAME))
    with app.test_request_context():
        if measurement == "profile-csv":
            return profile_csv(app)
        return app_export(app, measurement)


def export_setup(app, measurement: str):
    from kefu.org.access import MASKED_SYSTEM_POLICY
    from kefu.records.actor import system_actor
    from kefu.records.query import RecordQuery
    from kefu.records.types import get_record_type

    actor = system_actor()
    if measurement == "app-csv-masked":
        actor = system_actor(access=MASKED_SYSTEM_POLICY)
    return get_record_type("complaint"), RecordQuery(), actor, "xlsx" if measurement == "app-xlsx" else "csv"


def app_export(app, measurement: str) -> dict:
    from kefu.insight.exports import export_records

    record_type, query, actor, fmt = export_setup(app, measurement)
    start_mb = memory_mb("VmRSS")
    written, first_byte = 0, None
    started = time.perf_counter()
    export = export_records(record_type, query, actor, fmt)
    with open(os.devnull, "wb") as sink:
        for chunk in export.chunks:
            if first_byte is None and chunk:
                first_byte = time.perf_counter() - started
            written += sink.write(chunk)
    seconds = time.perf_counter() - started
    return {"rows": export.rows, "seconds": seconds, "first_byte": first_byte, "bytes": written,
            "start_mb": start_mb, "peak_mb": memory_mb("VmHWM")}


def raw_csv(mongo_uri: str, projected: bool) -> dict:
    """The stored values of the export's columns, as text, straight from pymongo into csv.writer (``projected``:
    reading only the top-level fields they come from)."""
    from pymongo import DESCENDING, MongoClient

    columns = json.loads(os.environ["EXPORT_BENCH_COLUMNS"])
    collection = MongoClient(mongo_uri)[DB_NAME]["records"]
    start_mb = memory_mb("VmRSS")
    count = 0
    started = time.perf_counter()
    projection = {path.split(".")[0]: 1 for path in columns} if projected else None
    cursor = collection.find({"type": "complaint"}, projection, sort=[("created_at", DESCENDING), ("_id", DESCENDING)],
                             batch_size=1000)
    with open(os.devnull, "w", encoding="utf-8-sig", newline="") as sink:
        writer = csv.writer(sink, lineterminator="\r\n")
        writer.writerow(columns)
        for document in cursor:
            row = []
            for path in columns:
                value = document
                for part in path.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                row.append("" if value is None else str(value))
            writer.writerow(row)
            count += 1
    seconds = time.perf_counter() - started
    return {"rows": count, "seconds": seconds, "first_byte": None, "bytes": None, "start_mb": start_mb,
            "peak_mb": memory_mb("VmHWM")}


def profile_csv(app) -> dict:
    from kefu.insight.exports import export_records

    record_type, query, actor, fmt = export_setup(app, "app-csv")
    exported = {}

    def export():
        exported["export"] = export_records(record_type, query, actor, fmt)
        for _chunk in exported["export"].chunks:
            pass

    started = time.perf_counter()
    overdue_bench.profiled(export, 1, "app CSV export")
    return {"rows": exported["export"].rows, "seconds": time.perf_counter() - started}


def run_child(measurement: str, rows: int, mongo, redis, columns: list[str]) -> tuple[dict, str]:
    """The child's result and what else it printed."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", measurement,
               "--mongo-uri", mongo.uri, "--redis-url", redis.url]
    environment = {**os.environ, "EXPORT_BENCH_COLUMNS": json.dumps(columns)}
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=environment, check=True)
    lines = completed.stdout.splitlines()
    result = json.loads(next(line for line in reversed(lines) if line.startswith(RESULT_MARK))[len(RESULT_MARK):])
    assert result["rows"] == rows, f"{measurement}: {result['rows']:,} rows written, {rows:,} expected"
    return result, "\n".join(line for line in lines if not line.startswith(RESULT_MARK))


# -- parent: data, children, report -----------------------------------------------------------------------

def main() -> int:
    args = parse_args()
    if args.child:
        print(RESULT_MARK + json.dumps(child(args.child, args.mongo_uri, args.redis_url)), flush=True)
        return 0
    with overdue_bench.servers(args.cache_gb, prefix="kefu-export-bench-") as (mongo, redis):
        return run(args, mongo, redis)


def stored_paths(app) -> list[str]:
    """Where the export's columns are stored: core paths, ``data.<key>``, ``pii.<key>`` (encrypted)."""
    from kefu.insight.exports import export_columns
    from kefu.records.core_fields import core_field
    from kefu.records.types import get_record_type

    with app.test_request_context():
        record_type = get_record_type("complaint")
        paths = []
        for column in export_columns(record_type):
            core = core_field(record_type, column.key)
            paths.append(core.path if core is not None else f"{'pii' if column.sensitive else 'data'}.{column.key}")
        return paths


def run(args, mongo, redis) -> int:
    from kefu.core.db import get_database
    from kefu.records.store import RECORDS

    app, users, departments = overdue_bench.seeded_app(mongo.uri, redis.url, DB_NAME)
    collection = get_database()[RECORDS]
    templates = [t for t in overdue_bench.make_templates(app) if t["type"] == "complaint"]
    columns = stored_paths(app)
    all_sizes = sorted({*args.sizes, *args.xlsx_sizes})
    largest = all_sizes[-1]
    documents = overdue_bench.generate(templates, users, departments, largest, largest // 100,
                                       random.Random(args.seed), datetime.now(timezone.utc))
    collection.delete_many({"type": "complaint"})
    loaded, results, profile = 0, [], ""
    load_before = os.getloadavg()[0]
    for size in all_sizes:
        print(f"Loading complaints {loaded + 1:,} to {size:,} …", flush=True)
        seconds = overdue_bench.load(get_database(), islice(documents, size - loaded), size - loaded)
        loaded = size
        assert collection.count_documents({"type": "complaint"}) == size
        print(f"  loaded in {seconds:.0f} s; warming the cache …", flush=True)
        for _document in collection.find({"type": "complaint"}, sort=[("created_at", -1), ("_id", -1)],
                                         batch_size=1000):
            pass
        wanted = []
        if size in args.sizes:
            wanted += ["raw-csv", "raw-csv-projected", "app-csv", *(["app-csv-masked"] if args.masked else [])]
        if size in args.xlsx_sizes:
            wanted.append("app-xlsx")
        for measurement in wanted:
            print(f"  {MEASUREMENTS[measurement]}, {size:,} rows …", flush=True)
            result, printed = run_child(measurement, size, mongo, redis, columns)
            print(printed, end="", flush=True)
            results.append((measurement, size, result))
        if args.profile and size == all_sizes[0]:
            print(f"  app CSV under cProfile, {size:,} rows …", flush=True)
            profile = run_child("profile-csv", size, mongo, redis, columns)[1]
    report(results, load_before, len(columns))
    print(profile)
    return 0


def report(results, load_before: float, column_count: int) -> None:
    by_key = {(measurement, size): result for measurement, size, result in results}
    print()
    print(f"complaints, {column_count} columns   load average: {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)")
    print(f"{'measurement':22} {'rows':>10} {'seconds':>9} {'rows/s':>9} {'first byte s':>12} {'MB':>7} "
          f"{'RSS before MB':>13} {'peak RSS MB':>11}")
    for measurement, size, result in results:
        first_byte = f"{result['first_byte']:12.1f}" if measurement == "app-xlsx" else f"{'':12}"
        megabytes = f"{result['bytes'] / 1e6:7.0f}" if result["bytes"] is not None else f"{'':7}"
        print(f"{MEASUREMENTS[measurement]:22} {size:10,} {result['seconds']:9.1f} "
              f"{size / result['seconds']:9,.0f} {first_byte} {megabytes} {result['start_mb']:13.0f} "
              f"{result['peak_mb']:11.0f}")
    print()
    shares = {}
    for (measurement, size), result in by_key.items():
        if measurement.startswith("app-csv"):
            shares[measurement, size] = by_key["raw-csv", size]["seconds"] / result["seconds"]
            projected = by_key["raw-csv-projected", size]["seconds"] / result["seconds"]
            print(f"{MEASUREMENTS[measurement]} rows/s at {size:,}: {shares[measurement, size]:.1%} of raw, "
                  f"{projected:.1%} of raw projected")
    print()
    csv_shares = {size: share for (measurement, size), share in shares.items() if measurement == "app-csv"}
    met = all(share >= TARGET_CSV_SHARE for share in csv_shares.values())
    print(f"target: CSV ≥ {TARGET_CSV_SHARE:.0%} of raw: {'met' if met else 'NOT met'} ("
          + ", ".join(f"{share:.1%} at {size:,}" for size, share in csv_shares.items()) + ")")
    xlsx = by_key.get(("app-xlsx", TARGET_XLSX_SIZE))
    print(f"target: XLSX {TARGET_XLSX_SIZE // 1000}k < {TARGET_XLSX_S} s: " + (
        "not measured" if xlsx is None else
        f"{'met' if xlsx['seconds'] < TARGET_XLSX_S else 'NOT met'} ({xlsx['seconds']:.1f} s)"))
    peaks = [result["peak_mb"] for (measurement, size), result in by_key.items()
             if size == TARGET_MEMORY_SIZE and measurement.startswith("app-")]
    print(f"target: peak memory {TARGET_MEMORY_SIZE // 1_000_000}M < {TARGET_MEMORY_MB} MB: " + (
        "not measured" if not peaks else
        f"{'met' if max(peaks) < TARGET_MEMORY_MB else 'NOT met'} ({max(peaks):.0f} MB)"))


if __name__ == "__main__":
    sys.exit(main())
