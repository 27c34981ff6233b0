"""Benchmark: the overdue list (first page of 50 with its total) through the app, next to raw pymongo.

    .venv/bin/python bench/overdue_bench.py [--records 1000000] [--overdue 10000] [--runs 30] [--profile]

Starts its own mongod and Redis (``kefu.runtime.embedded``, as the tests do) in a temporary folder, builds the app
with ``create_app``, seeds the demo data (``kefu seed``: record types, users, departments) and the working-day
calendar, then bulk-loads N records of every shipped type with SLA clocks: ``--overdue`` of them overdue
(``sla_due`` up to 45 days ago), 0.5 % due soon, 3.5 % running on time, the rest closed with met or missed
clocks. Documents have the shape the services write (data, grams, search text, ``sla.<clock>``, ``sla_open``,
``sla_due``, ``sla_live``); the complaints carry a real encrypted phone.

Measured ``--runs`` times after warm-up, in one process; each app measurement in turn with its raw one (a
round calls both once), so that drift of a shared machine hits both alike:

- app: ``GET /admin/overdue/`` (signed-in supervisor: the list page with its total),
  ``GET /admin/overdue/counts/overdue/`` (its counts panel, which the page loads once shown) and
  ``GET /api/v1/records/complaint?overdue=true&sort=sla_due&per_page=50`` (Bearer token), Flask test client;
- raw: the same page of 50 (the same fields) and the same total with plain pymongo (``count_documents`` +
  ``find``), and for the counts panel its aggregation (whose buckets sum to the total).

Prints median and p95 in milliseconds and the ratio app / raw. With ``--profile``, ``--runs`` more requests
of the overdue page and of the API run under cProfile and the top 25 functions by cumulative and by own time follow.
Not part of the test suite.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kefu.runtime.embedded import EmbeddedMongo, EmbeddedRedis, free_port  # noqa: E402

DATA_KEY = "YmVuY2gtZGF0YS1rZXktbm90LWZvci1wcm9kdWN0aW8="  # base64 of 32 bytes
BATCH = 5000
TARGET_MS = 100
TARGET_RATIO = 3


class BenchMongo(EmbeddedMongo):
    """The embedded mongod with a cache sized for a million records (the first-run default is 1 GB)."""

    def __init__(self, data_dir, port, cache_gb: float):
        super().__init__(data_dir, port)
        self.cache_gb = cache_gb

    def command(self) -> list[str]:
        command = super().command()
        command[command.index("--wiredTigerCacheSizeGB") + 1] = str(self.cache_gb)
        return command


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records to load (default 1,000,000)")
    parser.add_argument("--overdue", type=int, default=10_000, help="of which overdue (default 10,000)")
    parser.add_argument("--runs", type=int, default=30, help="timed requests per measurement (default 30)")
    parser.add_argument("--cache-gb", type=float, default=2.0, help="mongod WiredTiger cache (default 2 GB)")
    parser.add_argument("--profile", action="store_true", help="also profile the overdue page (cProfile)")
    parser.add_argument("--seed", type=int, default=20261124, help="random seed of the generated data")
    return parser.parse_args()


# -- data -------------------------------------------------------------------------------------------------

def clock_window(clock) -> timedelta:
    """A clock's window as clock time (working days counted as 1.4 calendar days: weekends)."""
    unit, amount = next(iter(clock.within.to_dict().items()))
    if unit == "working_days":
        return timedelta(days=amount * 1.4)
    return timedelta(**{unit: amount}) or timedelta(minutes=30)


def clock_state(clock, started_at, due_at, met_at, level) -> dict:
    window = clock.window_for(level)
    soon = min(due_at - started_at, max((due_at - started_at) * 0.2, timedelta(hours=2)))
    state = {"name": clock.name, "started_at": started_at, "due_at": due_at, "warn_at": due_at - soon,
             "paused_s": 0.0, "met_at": met_at, "window": window.to_dict(),
             "level": level if window is not clock.within else None, "until": False, "rearmed_at": None,
             "paused": False}
    if met_at is not None:
        state["state"] = "met" if met_at <= due_at else "missed"
    return state


def make_templates(app):
    """Per record type with clocks: its clocks, level choices, open/closed statuses and a data template."""
    from kefu.org.structure import Project
    from kefu.records.actor import system_actor
    from kefu.records.sections import workflow_of
    from kefu.records.types import RecordType
    from kefu.records.write import create_record
    from kefu.rules import sla

    with app.test_request_context():
        actor = system_actor()
        project = Project.objects(code="YQJNF").first()
        complaint = create_record("complaint", {
            "channel": ["来电"], "project": str(project.pk), "unit": "1幢1单元101", "owner_name": "张三",
            "phone": "13812345678", "content": "卫生间漏水严重，楼下天花板渗水，已影响正常使用，请尽快安排维修",
            "category": "工程质量", "received_at": "2026-11-20T09:30"}, actor)
        templates = []
        for record_type in RecordType.objects(active=True):
            clocks = sla.clocks_of(record_type)
            if not clocks:
                continue
            workflow = workflow_of(record_type)
            level = record_type.field("level")
            closed = [s for s in workflow.statuses if workflow.is_closed(s)] or workflow.statuses[-1:]
            running = [s for s in workflow.statuses if s not in closed and not workflow.is_pausing(s)]
            document = {k: v for k, v in complaint.items() if k not in ("_id", "sla", "sla_open", "sla_due",
                                                                        "sla_live", "paused_since")}
            document["type"] = record_type.key
            if record_type.key != "complaint":
                document["pii"], document["bidx"] = {}, {}  # encrypted under the complaint's context
            templates.append({"type": record_type.key, "prefix": record_type.number_prefix, "clocks": clocks,
                              "levels": list(level.choices) if level is not None and level.choices else [],
                              "open": running or workflow.statuses[:1], "closed": closed, "document": document})
    from kefu.core.db import get_database

    get_database()["records"].delete_one({"_id": complaint["_id"]})  # only the generated records count
    return templates


def generate(templates, users, departments, count: int, overdue: int, rng: random.Random, now: datetime):
    """Yield ``count`` documents; ``overdue`` of them (spread over the whole range) are overdue."""
    due_soon, on_time = count // 200, count * 35 // 1000
    kinds = ["overdue"] * overdue + ["due_soon"] * due_soon + ["on_time"] * on_time
    kinds += ["closed"] * (count - len(kinds))
    rng.shuffle(kinds)
    sequence = {}
    for index, kind in enumerate(kinds):
        template = templates[index % len(templates)]
        document = dict(template["document"])
        document["data"] = dict(document["data"])
        n = sequence[template["type"]] = sequence.get(template["type"], 0) + 1
        document["number"] = f"{template['prefix']}-B-{n:07d}"
        level = rng.choice(template["levels"]) if template["levels"] else None
        if level is not None:
            document["data"]["level"] = level
        else:
            document["data"].pop("level", None)
        document["assignee"] = rng.choice(users) if rng.random() < 0.9 else None
        document["department"] = rng.choice(departments)
        document["departments"] = [document["department"]]  # what the department scope reads (kefu.org.access)
        document["created_department"] = rng.choice(departments)
        clocks = rng.sample(template["clocks"], k=min(len(template["clocks"]), rng.choice((1, 2))))
        states, open_clocks = {}, []
        if kind == "closed":
            created = now - timedelta(days=rng.uniform(1, 730))
            for clock in clocks:
                window = clock_window(clock)
                met = created + window * rng.uniform(0.1, 1.3)
                states[clock.key] = clock_state(clock, created, created + window, met, level)
            document["status"] = rng.choice(template["closed"])
        else:
            if kind == "overdue":
                due = now - timedelta(minutes=rng.uniform(5, 45 * 24 * 60))
            elif kind == "due_soon":
                due = now + timedelta(minutes=rng.uniform(5, 110))
            else:
                due = now + timedelta(hours=rng.uniform(3, 240))
            window = clock_window(clocks[0])
            created = due - window
            for position, clock in enumerate(clocks):
                clock_due = due if position == 0 else due + timedelta(hours=rng.uniform(1, 72))
                state = clock_state(clock, created, clock_due, None, level)
                if kind == "due_soon" and position == 0:
                    state["warn_at"] = min(state["warn_at"], now - timedelta(minutes=1))
                states[clock.key] = state
                open_clocks.append({"clock": clock.key, "warn_at": state["warn_at"], "due_at": clock_due})
            document["status"] = rng.choice(template["open"])
        for state in states.values():
            state["state"] = state.get("state") or ("overdue" if state["due_at"] <= now else
                                                    "due_soon" if state["warn_at"] <= now else "on_time")
        document.update({
            "created_at": created, "updated_at": created, "status_at": {document["status"]: created},
            "sla": states, "sla_open": open_clocks,
            "sla_due": min((c["due_at"] for c in open_clocks), default=None),
            "sla_live": len(open_clocks), "paused_since": None, "version": rng.randint(1, 6),
        })
        yield document


def load(database, documents, count: int) -> float:
    """Insert without secondary indexes, then build them (the list sort indexes too, as the nightly duty would);
    return seconds."""
    from kefu.records.indexes import sync_list_indexes
    from kefu.records.store import RECORDS
    from kefu.runtime.storage import ensure_collections

    started = time.monotonic()
    collection = database[RECORDS]
    collection.drop_indexes()
    batch, inserted = [], 0
    for document in documents:
        batch.append(document)
        if len(batch) >= BATCH:
            collection.insert_many(batch, ordered=False)
            inserted += len(batch)
            batch = []
            if inserted % 100_000 == 0:
                print(f"  {inserted:,} / {count:,} inserted ({time.monotonic() - started:.0f} s)", flush=True)
    if batch:
        collection.insert_many(batch, ordered=False)
    print(f"  building indexes ({time.monotonic() - started:.0f} s)", flush=True)
    ensure_collections()
    sync_list_indexes()
    return time.monotonic() - started


# -- timing -----------------------------------------------------------------------------------------------

def timed_in_turn(functions: dict, runs: int, warmup: int = 3) -> dict[str, list[float]]:
    """Milliseconds of ``runs`` calls of each function, called in turn (one of each per round): each sees the
    same moments of a shared machine, whose speed drifts by a third within minutes."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    samples = {name: [] for name in functions}
    for _ in range(runs):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


def profiled(function, runs: int, title: str) -> None:
    """Run ``function`` ``runs`` times under cProfile; print the top 25 by cumulative and by own time."""
    import cProfile

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(runs):
        function()
    profiler.disable()
    print_profile(profiler, f"{title} under cProfile ({time.perf_counter() - started:.1f} s)")


def print_profile(profiler, title: str) -> None:
    """The top 25 functions of ``profiler`` by cumulative and by own time."""
    import pstats

    for order in ("cumulative", "tottime"):
        print(f"\n-- {title}, top 25 by {order}")
        pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats(order).print_stats(25)


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@contextmanager
def servers(cache_gb: float, prefix: str = "kefu-bench-"):
    """A mongod (with ``cache_gb`` of cache) and a Redis of the bench's own, in a temporary folder removed after."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    mongo = BenchMongo(workdir / "mongo", free_port(), cache_gb).start(timeout=60)
    redis = EmbeddedRedis(workdir / "redis", free_port(), persistent=False).start()
    try:
        yield mongo, redis
    finally:
        mongo.stop()
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def bench_config(mongo_uri: str, redis_url: str, database: str = "kefu_bench") -> dict:
    return {"MONGODB_URI": mongo_uri, "MONGODB_DB": database, "REDIS_URL": redis_url,
            "SECRET_KEY": "bench-secret-key-not-for-production", "KEFU_DATA_KEY": DATA_KEY,
            "KEFU_LOCALE": "zh_Hans_CN", "KEFU_TIMEZONE": "Asia/Shanghai"}


def seeded_app(mongo_uri: str, redis_url: str, database: str = "kefu_bench"):
    """The app on the bench's servers with ``kefu seed`` and the working-day calendar loaded; also the active users'
    and the departments' ids (what generated records are assigned to)."""
    from app import create_app
    from kefu.calendar.workcalendar import seed_calendar
    from kefu.org.structure import Department
    from kefu.org.users import User

    app = create_app(bench_config(mongo_uri, redis_url, database))
    result = app.test_cli_runner().invoke(args=["kefu", "seed"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        seed_calendar()
        users = [u.pk for u in User.objects(active=True)]
        departments = [d.pk for d in Department.objects()]
    return app, users, departments


def main() -> int:
    args = parse_args()
    with servers(args.cache_gb) as (mongo, redis):
        return run(args, random.Random(args.seed), mongo, redis)


def run(args, rng, mongo, redis) -> int:
    import re

    from kefu.core.db import get_database
    from kefu.insight import overdue
    from kefu.insight.scope import readable_filter
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.records.query import READ_PROJECTION, RecordQuery, build_filter, sort_spec
    from kefu.records.store import RECORDS
    from kefu.records.types import get_record_type
    from seed.demo import DEMO_PASSWORD

    app, users, departments = seeded_app(mongo.uri, redis.url)
    database = get_database()
    templates = make_templates(app)
    now = datetime.now(timezone.utc)
    print(f"Loading {args.records:,} records of {len(templates)} types ({args.overdue:,} overdue) …", flush=True)
    seconds = load(database, generate(templates, users, departments, args.records, args.overdue, rng, now),
                   args.records)
    print(f"  loaded in {seconds:.0f} s", flush=True)

    # Sign in through the real login form; a Bearer token for the API.
    client = app.test_client()
    login_page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    signed_in = client.post("/login", data={"username": "supervisor", "password": DEMO_PASSWORD,
                                            "csrf_token": token})
    assert signed_in.status_code == 302, "sign-in failed"
    api_token = client.post("/api/v1/auth/token", json={"username": "supervisor", "password": DEMO_PASSWORD}
                            ).get_json()["token"]
    bearer = {"Authorization": f"Bearer {api_token}"}
    api_client = app.test_client()

    def page():
        response = client.get("/admin/overdue/")
        assert response.status_code == 200, response.status_code
        return response.get_data()

    def api():
        response = api_client.get("/api/v1/records/complaint", query_string={
            "overdue": "true", "sort": "sla_due", "per_page": 50}, headers=bearer)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    collection = database[RECORDS]

    # The raw baselines query what the supervisor may read: the same scope clause, built once.
    with app.test_request_context():
        supervisor = user_actor(User.objects(username="supervisor").first())
        scope = readable_filter(supervisor.access)

    def raw_page():
        query = overdue.SlaListQuery(scope=scope)
        mongo_filter = overdue.list_filter(query, datetime.now(timezone.utc))
        total = collection.count_documents(mongo_filter)
        rows = list(collection.find(mongo_filter, overdue.LIST_FIELDS, sort=overdue.SORT, limit=50))
        return total, rows

    def counts_panel():
        response = client.get("/admin/overdue/counts/overdue/")
        assert response.status_code == 200, response.status_code
        return response.get_data()

    def raw_counts():
        """The counts panel's aggregation; its buckets sum to the total."""
        query = overdue.SlaListQuery(scope=scope)
        buckets = list(collection.aggregate(overdue.counts_pipeline(query, datetime.now(timezone.utc))))
        return sum(b["n"] for b in buckets)

    with app.test_request_context():
        record_type = get_record_type("complaint")

    def raw_api():
        with app.test_request_context():
            query = RecordQuery(sort="sla_due", overdue=True, per_page=50)
            mongo_filter = build_filter(record_type, query, supervisor)
        total = collection.count_documents(mongo_filter)
        rows = list(collection.find(mongo_filter, READ_PROJECTION, sort=sort_spec(record_type, query.sort), limit=50))
        return total, rows

    # The same answer both ways.
    total, rows = raw_page()
    shown = page().decode()
    assert f"共 {total} 条" in shown and all(str(r["_id"]) in shown for r in rows), "app and raw differ"
    panel = counts_panel().decode()
    by_type = re.search(r'data-group="type">(.*?)</ul>', panel, flags=re.S).group(1)
    assert sum(int(n) for n in re.findall(r'data-count="(\d+)"', by_type)) == raw_counts() == total, "counts differ"
    api_body, (api_total, api_rows) = api(), raw_api()
    assert api_body["total"] == api_total and [i["id"] for i in api_body["items"]] == [str(r["_id"]) for r in
                                                                                        api_rows]

    load_before = os.getloadavg()[0]
    measured = {  # each pair in turn, one pair after the other
        **timed_in_turn({"GET /admin/overdue/ (app)": page, "  raw pymongo: page of 50 + total": raw_page},
                        args.runs),
        **timed_in_turn({"GET /api/v1/records/complaint?overdue=true&sort=sla_due (app)": api,
                         "  raw pymongo: page of 50 + total ": raw_api}, args.runs),
        **timed_in_turn({"GET /admin/overdue/counts/overdue/ (the page's counts panel)": counts_panel,
                         "  raw pymongo: the counts aggregation": raw_counts}, args.runs),
    }
    print()
    print(f"records: {args.records:,}   overdue: {total:,} (complaints: {api_total:,})   runs: {args.runs}   "
          f"load average: {load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)")
    print(f"{'measurement':64} {'median ms':>10} {'p95 ms':>10}")
    for name, samples in measured.items():
        print(f"{name:64} {statistics.median(samples):10.1f} {p95(samples):10.1f}")
    names = list(measured)
    page_ratio, api_ratio, counts_ratio = (statistics.median(measured[names[i]]) /
                                           statistics.median(measured[names[i + 1]]) for i in (0, 2, 4))
    print()
    print(f"ratio app / raw (median): overdue page {page_ratio:.1f}x, API {api_ratio:.1f}x, "
          f"counts panel {counts_ratio:.1f}x")
    ok = all(statistics.median(measured[n]) < TARGET_MS for n in (names[0], names[2], names[4]))
    print(f"target: median < {TARGET_MS} ms {'met' if ok else 'NOT met'}; "
          f"< {TARGET_RATIO}x raw: page {'met' if page_ratio < TARGET_RATIO else 'NOT met'}, "
          f"API {'met' if api_ratio < TARGET_RATIO else 'NOT met'}")
    if args.profile:
        profiled(page, args.runs, f"GET /admin/overdue/ × {args.runs}")
        profiled(api, args.runs, f"GET /api/v1/records/complaint?overdue=true × {args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
