"""Benchmark: exporting complaints (CSV, XLSX) through the app, next to a raw pymongo read of the same fields.

    .venv/bin/python bench/export_bench.py [--sizes 100000,1000000] [--xlsx-sizes 100000] [--writer-sizes 100000]
                                           [--runs 3] [--masked] [--profile] [--quick]

Starts its own mongod and Redis (``kefu.runtime.embedded``) in a temporary folder the way ``overdue_bench`` does and
reuses its data functions: ``kefu seed``, the working-day calendar, then complaints with the shape the services
write (data, ``pii`` with a real encrypted phone, ``bidx``, grams, search text, SLA clocks). The sizes are
loaded in turn (the first N, then more up to the next size), so each size is measured on its own data. The
defaults take about a quarter of an hour on 2 cores; run nothing else meanwhile.

Measured at every size, each in a fresh child process (this script re-run with ``--child``) so that its peak
RSS is that measurement's alone, ``--runs`` times in turn (raw, app, raw, app …: a shared machine's drift hits both
alike); the table gives the minimum and the median. An app child builds the app, then freezes what it loaded out
of the garbage collector's sight, as a web worker does (gunicorn.conf.py). Peak RSS is the child's ``VmHWM`` (/proc/self/status), not
``ru_maxrss``: Linux carries ``ru_maxrss`` over an exec, so a child's would never be below the parent's RSS.

- raw CSV: ``find({"type": "complaint"})`` with exactly the app's projection (``export_cells.stored_paths`` of the
  export's columns) in the same order (``batch_size=1000``, pymongo's default decoding: naive UTC times) →
  ``csv.writer`` rows of the same columns, the stored values as ``str`` (nothing decrypted, no names looked up, no
  time zone) → /dev/null. The CSV target is against this;
- app CSV: ``kefu.insight.exports.export_records`` for every complaint (``RecordQuery()``: newest first), full-access
  actor (phones decrypted), its ``chunks`` consumed to the end and written to /dev/null;
- app CSV, masked (with ``--masked``): the same, actor without the personal-data permission (phones masked);
- app XLSX, only at the ``--xlsx-sizes``: seconds to the first byte and to the end of the stream;
- the XLSX writers on our rows, at the ``--writer-sizes``: the rows ``export_batches`` makes for the XLSX (dates,
  numbers, text), built in memory first (untimed), then written to a file by rustpy-xlsxwriter (what the app uses,
  ``exports.write_xlsx``), by XlsxWriter in constant-memory mode (what the app used before) and by PyExcelerate —
  each with the same sheet: bold header, frozen, filtered, widths, date/time/money number formats, and the
  导出说明 sheet. PyExcelerate is not a dependency of the app: without it installed that line says so.

Before each size one untimed scan reads every complaint, so all measurements read from mongod's cache.
Prints seconds, rows/s, RSS before the export starts and peak RSS in MB, app CSV rows/s as a share of raw, and the
targets: CSV ≥ 80 % of raw rows/s, XLSX of 100,000 rows ≤ 8 s, peak memory of a 1,000,000-row export < 300 MB.
With ``--profile``, the app CSV export of the smallest size also runs under cProfile (in its own child) and the
top 25 functions by cumulative and by own time follow the table. ``--quick``: 10,000 rows, one run. Not part of
the test suite.
"""
from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from decimal import Decimal
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import overdue_bench  # noqa: E402

DB_NAME = "kefu_bench_export"
RESULT_MARK = "RESULT "
TARGET_CSV_SHARE = 0.8
TARGET_XLSX_SIZE, TARGET_XLSX_S = 100_000, 8
TARGET_MEMORY_SIZE, TARGET_MEMORY_MB = 1_000_000, 300
WRITERS = {"writer-rustpy": "rustpy-xlsxwriter 0.8", "writer-xlsxwriter": "XlsxWriter",
           "writer-pyexcelerate": "PyExcelerate"}
MEASUREMENTS = {"raw-csv": "raw pymongo → csv", "app-csv": "app CSV", "app-csv-masked": "app CSV, masked",
                "app-xlsx": "app XLSX", **WRITERS}


def sizes(text: str) -> list[int]:
    return sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=sizes, default=[100_000, 1_000_000],
                        help="complaints to export as CSV, comma-separated (default 100000,1000000)")
    parser.add_argument("--xlsx-sizes", type=sizes, default=[100_000],
                        help="sizes also exported as XLSX (default 100000)")
    parser.add_argument("--writer-sizes", type=sizes, default=[100_000],
                        help="sizes at which the XLSX writers are compared on the app's rows, held in memory "
                             "(default 100000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measurement (default 3: min and median)")
    parser.add_argument("--masked", action="store_true",
                        help="also export CSV as an actor without the personal-data permission")
    parser.add_argument("--profile", action="store_true",
                        help="also profile the app CSV export of the smallest size (cProfile)")
    parser.add_argument("--quick", action="store_true", help="10,000 complaints (CSV and XLSX), one run")
    parser.add_argument("--cache-gb", type=float, default=4.0, help="mongod WiredTiger cache (default 4 GB)")
    parser.add_argument("--seed", type=int, default=20261124, help="random seed of the generated data")
    parser.add_argument("--child", metavar="MEASUREMENT",
                        help="internal: run one measurement against --mongo-uri/--redis-url and print its result")
    parser.add_argument("--mongo-uri", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.xlsx_sizes, args.writer_sizes, args.runs = [10_000], [10_000], [10_000], 1
    return args


def memory_mb(key: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(key + ":"))
    return int(line.split()[1]) / 1024  # kB


# -- child: one measurement -------------------------------------------------------------------------------

def child(measurement: str, mongo_uri: str, redis_url: str) -> dict:
    if measurement == "raw-csv":
        return raw_csv(mongo_uri)
    from app import create_app

    app = create_app(overdue_bench.bench_config(mongo_uri, redis_url, DB_NAME))
    # As a web worker does once it has built the app (gunicorn.conf.py, post_worker_init): what the app loaded lives
    # as long as the process, and the collector stops walking it.
    gc.collect()
    gc.freeze()
    with app.test_request_context():
        if measurement == "profile-csv":
            return profile_csv(app)
        if measurement in WRITERS:
            return plain_writer(app, measurement)
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


def raw_csv(mongo_uri: str) -> dict:
    """The stored values of the export's columns, as text, straight from pymongo (the app's projection) into
    csv.writer."""
    from pymongo import DESCENDING, MongoClient

    columns = [path.split(".") for path in json.loads(os.environ["EXPORT_BENCH_COLUMNS"])]
    projection = dict.fromkeys(json.loads(os.environ["EXPORT_BENCH_PROJECTION"]), 1)
    collection = MongoClient(mongo_uri)[DB_NAME]["records"]  # pymongo's defaults: naive UTC times, the quickest
    start_mb = memory_mb("VmRSS")
    count = 0
    started = time.perf_counter()
    cursor = collection.find({"type": "complaint"}, projection, sort=[("created_at", DESCENDING), ("_id", DESCENDING)],
                             batch_size=1000)
    with open(os.devnull, "w", encoding="utf-8-sig", newline="") as sink:
        writer = csv.writer(sink, lineterminator="\r\n")
        writer.writerow([".".join(parts) for parts in columns])
        for document in cursor:
            row = []
            for parts in columns:
                value = document
                for part in parts:
                    value = value.get(part) if isinstance(value, dict) else None
                row.append("" if value is None else str(value))
            writer.writerow(row)
            count += 1
    seconds = time.perf_counter() - started
    return {"rows": count, "seconds": seconds, "first_byte": None, "bytes": None, "start_mb": start_mb,
            "peak_mb": memory_mb("VmHWM")}


def plain_writer(app, measurement: str) -> dict:
    """One writer alone on the rows the app's XLSX export writes (made first, untimed), to a file."""
    from kefu.insight.export_cells import export_batches
    from kefu.insight.exports import export_columns, neutralise

    record_type, query, actor, _fmt = export_setup(app, "app-xlsx")
    columns = export_columns(record_type)
    headers = [neutralise(str(column.label)) for column in columns]
    rows = [row for batch in export_batches(record_type, columns, query, actor, text_only=False) for row in batch]
    if measurement != "writer-rustpy":  # they take wall times only: made so here, untimed, as the app did before
        rows = [tuple(cell.replace(tzinfo=None) if isinstance(cell, datetime) else cell for cell in row)
                for row in rows]
    notes = [("记录类型", record_type.name), ("筛选条件", "全部记录（无筛选）"), ("导出人", "系统"),
             ("导出时间", "2026-12-06 12:00:00"), ("行数", len(rows)), ("说明", "敏感字段按导出人的权限显示")]
    write = {"writer-rustpy": write_rustpy, "writer-xlsxwriter": write_xlsxwriter,
             "writer-pyexcelerate": write_pyexcelerate}[measurement]
    start_mb = memory_mb("VmRSS")
    with tempfile.TemporaryDirectory(prefix="kefu-export-bench-") as folder:
        path = os.path.join(folder, "export.xlsx")
        started = time.perf_counter()
        try:
            write(path, record_type, columns, headers, rows, notes)
        except ImportError as missing:
            return {"rows": len(rows), "missing": str(missing)}
        seconds = time.perf_counter() - started
        written = os.path.getsize(path)
    return {"rows": len(rows), "seconds": seconds, "first_byte": None, "bytes": written, "start_mb": start_mb,
            "peak_mb": memory_mb("VmHWM")}


def write_rustpy(path, record_type, columns, headers, rows, notes) -> None:
    from kefu.insight.exports import write_xlsx

    write_xlsx(path, record_type, columns, headers, iter([rows]), lambda: notes)


def write_xlsxwriter(path, record_type, columns, headers, rows, notes) -> None:
    """What the app did before: XlsxWriter in constant-memory mode, each column's write method chosen once."""
    import xlsxwriter

    from kefu.insight.exports import column_width, sheet_title
    from kefu.records.fields import get_field_type

    workbook = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_formulas": False,
                                          "strings_to_urls": False, "strings_to_numbers": False})
    sheet = workbook.add_worksheet(sheet_title(record_type.name))
    writers = []
    for index, column in enumerate(columns):
        sheet.set_column(index, index, column_width(column))
        field_type = get_field_type(column.type)
        number_format = field_type.export_number_format
        cell_format = workbook.add_format({"num_format": number_format}) if number_format else None
        if field_type.export_dates:
            writers.append(lambda r, c, cell, f=cell_format: sheet.write_datetime(r, c, cell, f)
                           if isinstance(cell, (datetime, date)) else sheet.write_string(r, c, str(cell)))
        elif field_type.holds_numbers:
            writers.append(lambda r, c, cell, f=cell_format: sheet.write_number(r, c, float(cell), f)
                           if isinstance(cell, (int, float, Decimal)) else sheet.write_string(r, c, str(cell)))
        else:
            writers.append(lambda r, c, cell: sheet.write_string(r, c, cell if isinstance(cell, str) else str(cell)))
    sheet.freeze_panes(1, 0)
    sheet.write_row(0, 0, headers, workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1}))
    for number, row in enumerate(rows, start=1):
        for index, cell in enumerate(row):
            if cell is not None:
                writers[index](number, index, cell)
    sheet.autofilter(0, 0, len(rows), len(columns) - 1)
    about = workbook.add_worksheet("导出说明")
    bold, wrap = workbook.add_format({"bold": True}), workbook.add_format({"text_wrap": True, "valign": "top"})
    for line, (name, value) in enumerate(notes):
        about.write_string(line, 0, name, bold)
        about.write(line, 1, value, wrap)
    workbook.close()


def write_pyexcelerate(path, record_type, columns, headers, rows, notes) -> None:
    """PyExcelerate: the whole sheet is built in memory, then written (it cannot stream rows)."""
    from pyexcelerate import Color, Fill, Font, Format, Panes, Style, Workbook

    from kefu.insight.exports import column_width, sheet_title
    from kefu.records.fields import get_field_type

    workbook = Workbook()
    sheet = workbook.new_sheet(sheet_title(record_type.name), data=[headers, *(list(row) for row in rows)])
    for index, column in enumerate(columns, start=1):
        number_format = get_field_type(column.type).export_number_format
        sheet.set_col_style(index, Style(size=column_width(column),
                                         format=Format(number_format) if number_format else None))
    sheet.set_row_style(1, Style(font=Font(bold=True), fill=Fill(background=Color(0xDD, 0xEB, 0xF7))))
    sheet.panes = Panes(y=1)
    sheet.auto_filter = True
    workbook.new_sheet("导出说明", data=[list(note) for note in notes])
    workbook.save(path)


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


def run_child(measurement: str, rows: int, mongo, redis, paths: dict) -> tuple[dict, str]:
    """The child's result and what else it printed."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", measurement,
               "--mongo-uri", mongo.uri, "--redis-url", redis.url]
    environment = {**os.environ, "EXPORT_BENCH_COLUMNS": json.dumps(paths["columns"]),
                   "EXPORT_BENCH_PROJECTION": json.dumps(paths["projection"])}
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


def stored_paths(app) -> dict:
    """What the raw read reads: the app's projection, and where each column's value is stored (core paths,
    ``data.<key>``, ``pii.<key>`` encrypted)."""
    from kefu.insight.export_cells import stored_paths as projection
    from kefu.insight.exports import export_columns
    from kefu.records.core_fields import core_field
    from kefu.records.types import get_record_type

    with app.test_request_context():
        record_type = get_record_type("complaint")
        columns = export_columns(record_type)
        paths = []
        for column in columns:
            core = core_field(record_type, column.key)
            paths.append(core.path if core is not None else f"{'pii' if column.sensitive else 'data'}.{column.key}")
        return {"columns": paths, "projection": projection(columns)}


def measured(size: int, args) -> list[str]:
    wanted = []
    if size in args.sizes:
        wanted += ["raw-csv", "app-csv", *(["app-csv-masked"] if args.masked else [])]
    if size in args.xlsx_sizes:
        wanted.append("app-xlsx")
    if size in args.writer_sizes:
        wanted += list(WRITERS)
    return wanted


def run(args, mongo, redis) -> int:
    from kefu.core.db import get_database
    from kefu.records.store import RECORDS

    app, users, departments = overdue_bench.seeded_app(mongo.uri, redis.url, DB_NAME)
    collection = get_database()[RECORDS]
    templates = [t for t in overdue_bench.make_templates(app) if t["type"] == "complaint"]
    paths = stored_paths(app)
    all_sizes = sorted({*args.sizes, *args.xlsx_sizes, *args.writer_sizes})
    largest = all_sizes[-1]
    documents = overdue_bench.generate(templates, users, departments, largest, largest // 100,
                                       random.Random(args.seed), datetime.now(timezone.utc))
    collection.delete_many({"type": "complaint"})
    loaded, results, profile = 0, {}, ""
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
        for run_number in range(1, args.runs + 1):
            for measurement in measured(size, args):
                print(f"  {MEASUREMENTS[measurement]}, {size:,} rows, run {run_number} …", flush=True)
                result, printed = run_child(measurement, size, mongo, redis, paths)
                print(printed, end="", flush=True)
                results.setdefault((measurement, size), []).append(result)
        if args.profile and size == all_sizes[0]:
            print(f"  app CSV under cProfile, {size:,} rows …", flush=True)
            profile = run_child("profile-csv", size, mongo, redis, paths)[1]
    report(results, load_before, len(paths["columns"]), args.runs)
    print(profile)
    return 0


def summary(runs: list[dict]) -> dict:
    """The quickest run's figures with the median seconds of all runs and the largest peak RSS of any."""
    quickest = min(runs, key=lambda result: result["seconds"])
    return {**quickest, "median": statistics.median(result["seconds"] for result in runs),
            "peak_mb": max(result["peak_mb"] for result in runs)}


def report(results: dict, load_before: float, column_count: int, runs: int) -> None:
    print()
    print(f"complaints, {column_count} columns, {runs} run(s) each   load average: {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)")
    print(f"{'measurement':24} {'rows':>10} {'min s':>7} {'median s':>8} {'rows/s':>9} {'first byte s':>12} "
          f"{'MB':>5} {'RSS before MB':>13} {'peak RSS MB':>11}")
    summaries = {}
    for (measurement, size), runs_of in results.items():
        if "missing" in runs_of[0]:
            print(f"{MEASUREMENTS[measurement]:24} {size:10,}   not installed ({runs_of[0]['missing']})")
            continue
        result = summaries[measurement, size] = summary(runs_of)
        first_byte = f"{result['first_byte']:12.1f}" if measurement == "app-xlsx" else f"{'':12}"
        megabytes = f"{result['bytes'] / 1e6:5.0f}" if result["bytes"] is not None else f"{'':5}"
        print(f"{MEASUREMENTS[measurement]:24} {size:10,} {result['seconds']:7.1f} {result['median']:8.1f} "
              f"{size / result['seconds']:9,.0f} {first_byte} {megabytes} {result['start_mb']:13.0f} "
              f"{result['peak_mb']:11.0f}")
    print()
    targets(summaries)


def targets(summaries: dict) -> None:
    shares = {}
    for (measurement, size), result in summaries.items():
        if measurement.startswith("app-csv"):
            raw = summaries["raw-csv", size]
            shares[measurement, size] = (raw["seconds"] / result["seconds"], raw["median"] / result["median"])
            print(f"{MEASUREMENTS[measurement]} rows/s at {size:,}: {shares[measurement, size][0]:.1%} of raw "
                  f"(min against min), {shares[measurement, size][1]:.1%} (median against median)")
    csv_shares = {size: share for (measurement, size), share in shares.items() if measurement == "app-csv"}
    met = all(share[0] >= TARGET_CSV_SHARE for share in csv_shares.values())
    print(f"target: CSV ≥ {TARGET_CSV_SHARE:.0%} of raw: {'met' if met else 'NOT met'} ("
          + ", ".join(f"{share[0]:.1%} at {size:,}" for size, share in csv_shares.items()) + ")")
    xlsx = summaries.get(("app-xlsx", TARGET_XLSX_SIZE))
    print(f"target: XLSX {TARGET_XLSX_SIZE // 1000}k ≤ {TARGET_XLSX_S} s: " + (
        "not measured" if xlsx is None else
        f"{'met' if xlsx['seconds'] <= TARGET_XLSX_S else 'NOT met'} ({xlsx['seconds']:.1f} s)"))
    peaks = [result["peak_mb"] for (measurement, size), result in summaries.items()
             if size == TARGET_MEMORY_SIZE and measurement.startswith("app-")]
    print(f"target: peak memory {TARGET_MEMORY_SIZE // 1_000_000}M < {TARGET_MEMORY_MB} MB: " + (
        "not measured" if not peaks else
        f"{'met' if max(peaks) < TARGET_MEMORY_MB else 'NOT met'} ({max(peaks):.0f} MB)"))


if __name__ == "__main__":
    sys.exit(main())
