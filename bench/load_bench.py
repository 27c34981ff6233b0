"""Benchmark: many people at once against gunicorn with the production settings, next to stock Flask-Admin.

    .venv/bin/python bench/load_bench.py [--records 56000] [--users 50] [--seconds 60] [--quick]
        [--workers N --threads N --worker-class sync|gthread]   (override gunicorn.conf.py)
        [--sweep sync:2:1,sync:3:1,gthread:2:4 --repeat 2]      (the settings in turn, to choose them)
        [--db-profile] [--skip-stock] [--skip-load]

Builds its own data (``bench/overdue_bench.py``: its own mongod and Redis in a temporary folder, ``kefu seed``, the
working-day calendar, N generated records of every shipped type) and ``--users`` people of its own (four in five
客服专员, one in five 客服主管, in 客服中心). Then, in one run:

1. **Commands per request** of each kind of request, warm, in-process (a pymongo ``CommandListener``).
2. **API list vs raw**: ``GET /api/v1/records/complaint`` (Bearer token; an agent's first page of 50, and a
   supervisor's overdue records, most overdue first) through the app against pymongo's ``count_documents`` +
   ``find`` with the same filter, projection, sort and limit, in turn (``timed_in_turn``): median, p95, ratio.
3. **Load on the app**: gunicorn started as production starts it (``gunicorn.conf.py``; ``--workers`` and friends
   override it), the people signed in (cookie kept; a Bearer token for the API), then for ``--seconds`` each repeats
   an action — record list 25 %, record details 25 %, API list 20 %, 逾期督办 15 % (the page, then its counts
   panel, as the browser loads it), create 15 % (the form, then the POST) — and thinks 0.5–1.5 s.
4. **The list page against stock Flask-Admin**: the people ask for the first page of the complaints without
   thinking, for ``--list-seconds``, from kefu and then from a stock ``ModelView`` of the same collection
   (``bench/stock_admin.py``: no sign-in, no scopes, no labels — it has no details, create, API or 逾期督办 to run the
   rest of the mix on) under the same gunicorn settings: the list page's throughput against stock's.

Prints requests/s, p50/p95/p99 per request kind and overall, the errors (GETs whose kept-alive connection was reset
are sent again, as browsers do, and counted), CPU per request of gunicorn and of mongod (from /proc), and the
targets on 2 cores: 0 errors, p95 ≤ 500 ms, ≥ 50 requests/s, the list within 1.5× of stock, the API list ≤ 2× raw.
The first ``--warmup`` seconds of each load are left out of the latencies (not out of the errors). With 50 people
thinking 0.5–1.5 s the mix cannot exceed 65 requests/s, so ≥ 50 needs a mean answer under ~0.2 s. The load client
runs on the same cores (its share is printed). Not part of the test suite.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import resource
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pymongo.monitoring
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from load_client import CSRF, THINK_SECONDS as THINK, Person, Run, Step, sign_in  # noqa: E402
from overdue_bench import (  # noqa: E402
    bench_config, generate, load, make_templates, p95, seeded_app, servers, timed_in_turn,
)

PASSWORD = "load-bench-pass"
DEPARTMENT = "客服中心"
CREATE_FORM = {"status": "待受理", "received_at": "2026-11-20T09:30", "channel": "来电", "project": "云栖·江南府",
               "unit": "1幢1单元101", "owner_name": "钱七", "phone": "13900001111", "content": "阳台推拉门关不严，请派人查看",
               "category": "工程质量", "level": "一般"}
MIX = {"list": 0.25, "details": 0.25, "api list": 0.20, "逾期督办": 0.15, "create": 0.15}
TARGET_P95_MS, TARGET_RPS, TARGET_STOCK_RATIO, TARGET_API_RATIO = 500, 50, 1.5, 2.0
IDS_PER_TYPE = 500
LIST_TYPE = "complaint"  # the list compared with stock Flask-Admin's (bench/stock_admin.py lists one type)


class CommandCounter(pymongo.monitoring.CommandListener):
    """Counts the commands sent while ``on`` (registered before any client exists)."""

    def __init__(self):
        self.on = False
        self.seen: list[str] = []

    def started(self, event):
        if self.on:
            target = event.command.get(event.command_name)
            self.seen.append(f"{event.command_name} {target}" if isinstance(target, str) else event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


COUNTER = CommandCounter()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=56_000, help="records to generate (default 56,000)")
    parser.add_argument("--users", type=int, default=50, help="simultaneous people (default 50)")
    parser.add_argument("--seconds", type=float, default=60, help="length of each load run (default 60)")
    parser.add_argument("--warmup", type=float, default=5, help="first seconds left out of the figures (default 5)")
    parser.add_argument("--quick", action="store_true", help="5,000 records, 20 s runs (while developing)")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, help="gunicorn threads per worker (default: gunicorn.conf.py's)")
    parser.add_argument("--worker-class", help="gunicorn worker class (default: gunicorn.conf.py's)")
    parser.add_argument("--list-seconds", type=float, default=20, help="each list-only run (default 20)")
    parser.add_argument("--sweep", help="instead of one run: the mix against each gunicorn setting in turn, e.g. "
                        "'sync:4:1,gthread:2:8' (class:workers:threads), on the same data; a table at the end")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the sweep (default 1)")
    parser.add_argument("--db-profile", action="store_true", help="MongoDB's profiler on during the mix (it costs "
                        "time itself): where the database's time goes, by collection, operation and plan")
    parser.add_argument("--skip-stock", action="store_true", help="no list-only runs against stock Flask-Admin")
    parser.add_argument("--skip-load", action="store_true", help="only the commands and the API-vs-raw figures")
    parser.add_argument("--api-runs", type=int, default=30, help="timed API requests (default 30)")
    parser.add_argument("--cache-gb", type=float, default=1.0, help="mongod WiredTiger cache (default 1 GB)")
    parser.add_argument("--seed", type=int, default=20261201, help="random seed of the data and the people")
    args = parser.parse_args()
    if args.quick:
        args.records, args.seconds = min(args.records, 5_000), min(args.seconds, 20)
    return args


# -- data and people ------------------------------------------------------------------------------------------

def prepare(args, mongo, redis):
    """The app on the bench's data; the people (created through the user service); record ids per type."""
    from kefu.core.db import get_database
    from kefu.org.users import create_user

    pymongo.monitoring.register(COUNTER)
    app, users, departments = seeded_app(mongo.uri, redis.url)
    templates = make_templates(app)
    print(f"Loading {args.records:,} records of {len(templates)} types …", flush=True)
    seconds = load(get_database(), generate(templates, users, departments, args.records, args.records // 20,
                                            random.Random(args.seed), datetime.now(timezone.utc)), args.records)
    print(f"  loaded in {seconds:.0f} s; creating {args.users} people …", flush=True)
    people = []
    with app.app_context():
        for n in range(args.users):
            role = "supervisor" if n % 5 == 0 else "agent"
            user = create_user(f"load{n:03d}", PASSWORD, [role], department=DEPARTMENT, display_name=f"压测{n:03d}")
            people.append(Person(user.username, PASSWORD, rng=random.Random(args.seed + n)))
        database = get_database()
        department = database.departments.find_one({"name": DEPARTMENT})["_id"]
        ids = {t["type"]: [str(d["_id"]) for d in database.records.find(
            {"type": t["type"], "departments": department}, {"_id": 1}, limit=IDS_PER_TYPE)] for t in templates}
    return app, people, {key: found for key, found in ids.items() if found}


def app_mix(ids: dict[str, list[str]]) -> dict:
    """The product's pages and API for each action of the mix."""
    types = sorted(ids)

    def list_page(person):
        return [Step("list", "GET", f"/admin/records/{person.rng.choice(types)}/")]

    def details(person):
        key = person.rng.choice(types)
        return [Step("details", "GET", f"/admin/records/{key}/details/?id={person.rng.choice(ids[key])}")]

    def api_list(person):
        return [Step("api list", "GET", f"/api/v1/records/{person.rng.choice(types)}?per_page=50", api=True)]

    def overdue(person):
        return [Step("逾期督办", "GET", "/admin/overdue/")]  # its counts panel follows as "逾期督办 (part)"

    def create(person):
        return [Step("create: form", "GET", "/admin/records/complaint/new/"),
                Step("create: post", "POST", "/admin/records/complaint/new/", data=CREATE_FORM, with_csrf=True,
                     expect=(302,))]

    plans = {"list": list_page, "details": details, "api list": api_list, "逾期督办": overdue, "create": create}
    return {name: (MIX[name], plans[name]) for name in MIX}


# -- 1. commands per request ----------------------------------------------------------------------------------

def test_clients(app, username: str):
    """A Flask test client signed in through the login form, and API headers with a Bearer token."""
    web = app.test_client()
    token = CSRF.search(web.get("/login").get_data(as_text=True)).group(1)
    assert web.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
                    ).status_code == 302, "sign-in failed"
    issued = app.test_client().post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    return web, {"Authorization": f"Bearer {issued.get_json()['token']}"}


def commands_per_request(app, people, ids) -> None:
    """Each kind of request twice to warm up, then once counted; printed with the commands' names."""
    web, bearer = test_clients(app, people[1].username)
    api = app.test_client()
    key = "complaint" if "complaint" in ids else sorted(ids)[0]
    requests_ = {
        "list": lambda: web.get(f"/admin/records/{key}/"),
        "details": lambda: web.get(f"/admin/records/{key}/details/?id={ids[key][0]}"),
        "api list (50)": lambda: api.get(f"/api/v1/records/{key}?per_page=50", headers=bearer),
        "api list (10)": lambda: api.get(f"/api/v1/records/{key}?per_page=10", headers=bearer),
        "逾期督办": lambda: web.get("/admin/overdue/"),
        "逾期督办 counts": lambda: web.get("/admin/overdue/counts/overdue/"),
        "create: form": lambda: web.get("/admin/records/complaint/new/"),
        "create: post": lambda: web.post("/admin/records/complaint/new/", data={**CREATE_FORM, "csrf_token": form}),
    }
    form = CSRF.search(web.get("/admin/records/complaint/new/").get_data(as_text=True)).group(1)
    print("\n-- MongoDB commands per request (warm, in-process)")
    for name, send in requests_.items():
        send(), send()
        COUNTER.seen, COUNTER.on = [], True
        answer = send()
        COUNTER.on = False
        assert answer.status_code in (200, 302), (name, answer.status_code, answer.get_data(as_text=True)[:300])
        detail = ", ".join(f"{n}×{command}" for command, n in Counter(COUNTER.seen).most_common())
        print(f"{name:18} {len(COUNTER.seen):4}   {detail}")


# -- 2. API list against the raw query ------------------------------------------------------------------------

API_CASES = (  # (whose, the query string, the same as a RecordQuery)
    ("agent", {"per_page": 50}, {"per_page": 50}),
    ("supervisor", {"per_page": 50, "overdue": "true", "sort": "sla_due"},
     {"per_page": 50, "overdue": True, "sort": "sla_due"}),
)


def api_against_raw(app, people, ids, runs: int) -> float:
    """``GET /api/v1/records/<type>`` (an agent's first page; a supervisor's overdue records, most overdue first)
    against pymongo with the same filter, projection, sort and limit and the count; returns the larger ratio of
    the medians."""
    from kefu.core.db import get_database
    from kefu.org.users import User
    from kefu.records.actor import user_actor
    from kefu.records.query import READ_PROJECTION, RecordQuery, build_filter, sort_spec
    from kefu.records.store import RECORDS
    from kefu.records.types import get_record_type

    key, collection, ratios = LIST_TYPE, get_database()[RECORDS], []
    for role, arguments, query in API_CASES:
        username = next(p.username for n, p in enumerate(people) if (n % 5 == 0) == (role == "supervisor"))
        _web, bearer = test_clients(app, username)
        client = app.test_client()
        with app.test_request_context():
            actor, record_type = user_actor(User.objects(username=username).first()), get_record_type(key)

        def api():
            answer = client.get(f"/api/v1/records/{key}", query_string=arguments, headers=bearer)
            assert answer.status_code == 200, answer.get_data(as_text=True)
            return answer.get_json()

        def raw():
            with app.test_request_context():
                mongo_filter = build_filter(record_type, RecordQuery(**query), actor)
            total = collection.count_documents(mongo_filter)
            return total, list(collection.find(mongo_filter, READ_PROJECTION, limit=50,
                                               sort=sort_spec(record_type, query.get("sort"))))

        body, (total, rows) = api(), raw()
        assert body["total"] == total and [i["id"] for i in body["items"]] == [str(r["_id"]) for r in rows]
        measured = timed_in_turn({"app": api, "raw": raw}, runs)
        ratios.append(statistics.median(measured["app"]) / statistics.median(measured["raw"]))
        shown = "&".join(f"{name}={value}" for name, value in arguments.items())
        print(f"\n-- API list vs raw: {role}, GET /api/v1/records/{key}?{shown} ({total:,} match, {runs} runs)")
        for name, label in (("app", "app (Flask test client, Bearer)"), ("raw", "raw pymongo: count + find 50")):
            print(f"{label:40} median {statistics.median(measured[name]):7.1f} ms   p95 "
                  f"{p95(measured[name]):7.1f} ms")
        print(f"ratio app / raw (median): {ratios[-1]:.2f}x  (target ≤ {TARGET_API_RATIO}x: "
              f"{'met' if ratios[-1] <= TARGET_API_RATIO else 'NOT met'})")
    return max(ratios)


# -- 3./4. load through gunicorn ------------------------------------------------------------------------------

class Gunicorn:
    """gunicorn with ``gunicorn.conf.py`` (plus ``extra`` arguments) serving ``factory`` on a free port."""

    def __init__(self, factory: str, environment: dict, extra: list[str], log: Path, pythonpath: Path | None = None):
        from kefu.runtime.embedded import free_port

        self.port = free_port()
        self.log = log
        command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT),
                   "--bind", f"127.0.0.1:{self.port}", *extra, factory]
        if pythonpath is not None:
            command[-1:-1] = ["--pythonpath", str(pythonpath)]
        self.process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **environment},
                                        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self, path: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.base}{path}", timeout=5) as answer:
                    if answer.status < 500:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"gunicorn did not answer {path}: {self.log.read_text()[-2000:]}")

    def cpu_seconds(self) -> float:
        """CPU time used so far by the master and its workers (the live ones: read before stopping)."""
        return sum(process_cpu(pid) for pid in [self.process.pid, *children(self.process.pid)])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


def gunicorn_extra(args) -> list[str]:
    extra = []
    for option, value in (("--workers", args.workers), ("--threads", args.threads),
                          ("--worker-class", args.worker_class)):
        if value is not None:
            extra += [option, str(value)]
    return extra


def server_environment(mongo, redis, workdir: Path) -> dict:
    """The app's settings as production gives them: through the environment."""
    config = bench_config(mongo.uri, redis.url)
    return {**{k: str(v) for k, v in config.items()}, "KEFU_VAR_DIR": str(workdir), "KEFU_DEMO": "0"}


def load_run(title: str, server: Gunicorn, people: list[Person], mix: dict, args, token: bool | None = True,
             seconds: float | None = None, think: tuple[float, float] = THINK, mongod_pid: int | None = None) -> Run:
    """Sign the people in (outside the figures; ``token``: also an API token, None: no sign-in at all), then the
    timed run."""
    seconds = seconds or args.seconds
    server.wait("/login" if token is not None else "/admin/")
    for person in people:
        person.web.cookies.clear()
        person.api.headers.pop("Authorization", None)
        if token is not None:
            sign_in(server.base, person, token=token)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    server_before, mongod_before = server.cpu_seconds(), process_cpu(mongod_pid) if mongod_pid else 0.0
    print(f"\n-- {title}: {len(people)} people for {seconds:.0f} s …", flush=True)
    load_before = os.getloadavg()[0]
    run = Run(server.base, people, mix, seconds, think=think).go()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = cpu.ru_utime + cpu.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    run.server_cpu = server.cpu_seconds() - server_before
    run.mongod_cpu = process_cpu(mongod_pid) - mongod_before if mongod_pid else float("nan")
    elapsed, run.load = run.ended - run.started, (load_before + os.getloadavg()[0]) / 2
    print(f"   load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; CPU per request: gunicorn "
          f"{run.server_cpu / max(1, len(run.samples)) * 1000:.1f} ms, mongod "
          f"{run.mongod_cpu / max(1, len(run.samples)) * 1000:.1f} ms; busy cores: gunicorn "
          f"{run.server_cpu / elapsed:.2f}, mongod {run.mongod_cpu / elapsed:.2f}, "
          f"this client {client_cpu / elapsed:.2f}")
    if run.errors or run.retried:
        print(f"   {run.error_count()} errors in the whole run (warm-up included); {run.retried} GETs sent again after "
              f"a reset connection")
    print_table(run.table(args.warmup))
    for error in run.errors[:5]:
        print(f"   error: {error}")
    return run


def print_table(rows: dict) -> None:
    print(f"   {'request':26} {'n':>6} {'req/s':>7} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for kind, row in rows.items():
        print(f"   {kind:26} {row['n']:6} {row['rps']:7.1f} {row['errors']:6} {row['p50']:8.0f} "
              f"{row['p95']:8.0f} {row['p99']:8.0f}")


@dataclass
class Stage:
    """What every load run shares: the options, the servers' settings, the people and the records they open."""

    args: argparse.Namespace
    environment: dict
    workdir: Path
    people: list[Person]
    ids: dict
    mongod_pid: int
    started: int = 0  # servers started so far (each logs to its own file)

    def run(self, title: str, factory: str, extra: list[str], mix: dict, **options) -> Run:
        """gunicorn serving ``factory`` with ``gunicorn.conf.py`` and ``extra``; one load run against it."""
        self.started += 1
        log = self.workdir / f"gunicorn-{self.started}.log"
        server = Gunicorn(factory, self.environment, extra, log, pythonpath=ROOT / "bench")
        try:
            run = load_run(title, server, self.people, mix, self.args, mongod_pid=self.mongod_pid, **options)
        finally:
            server.stop()
        complaints = [line for line in log.read_text(errors="replace").splitlines()
                      if "[ERROR]" in line or "[CRITICAL]" in line or "Traceback" in line]
        for line in complaints[:10]:
            print(f"   gunicorn: {line}")
        return run


def list_only(url: str) -> dict:
    """A mix of one action: the first page of a record list (default sort)."""
    return {"list": (1.0, lambda person: [Step("list", "GET", url)])}


def saturated_lists(stage: Stage, key: str) -> tuple[Run, Run]:
    """The list page's throughput: the people ask for the first page of ``key`` records without thinking, for
    ``--list-seconds``, first from kefu (signed in), then from stock Flask-Admin (``bench/stock_admin.py``: no
    sign-in, no scopes, no labels) under the same gunicorn settings."""
    from stock_admin import STOCK_LIST_URL

    uri, database = stage.environment["MONGODB_URI"], stage.environment["MONGODB_DB"]
    runs = []
    for name, factory, url, token in (
            ("kefu", "app:create_app()", f"/admin/records/{key}/", False),
            ("stock", f"stock_admin:create_stock_app({uri!r}, {database!r}, {key!r})", STOCK_LIST_URL, None)):
        runs.append(stage.run(f"list page only, no thinking: {name} ({url})", factory, gunicorn_extra(stage.args),
                              list_only(url), token=token, seconds=stage.args.list_seconds, think=(0, 0)))
    return runs[0], runs[1]


def summary(app_run: Run, lists: tuple[Run, Run] | None, api_ratio: float, args) -> None:
    rows = app_run.table(args.warmup)
    overall = rows["all"]
    print("\n-- targets (2 cores)")
    errors = app_run.error_count()
    print(f"   errors: {errors} in the whole run, warm-up included (target 0) {'met' if errors == 0 else 'NOT met'}")
    print(f"   p95: {overall['p95']:.0f} ms (target ≤ {TARGET_P95_MS}) "
          f"{'met' if overall['p95'] <= TARGET_P95_MS else 'NOT met'}")
    print(f"   throughput: {overall['rps']:.1f} requests/s (target ≥ {TARGET_RPS}) "
          f"{'met' if overall['rps'] >= TARGET_RPS else 'NOT met'}")
    ceiling = len(app_run.people) / statistics.mean(THINK) * requests_per_action()
    print(f"   (with {len(app_run.people)} people thinking {THINK[0]}–{THINK[1]} s, the mix cannot exceed "
          f"{ceiling:.0f} requests/s even with instant answers)")
    if lists is not None:
        mine, theirs = (run.table(args.warmup)["all"] for run in lists)
        ratio = theirs["rps"] / mine["rps"] if mine["rps"] else float("inf")
        print(f"   list page, no thinking: kefu {mine['rps']:.1f} req/s (p50 {mine['p50']:.0f} ms, p95 "
              f"{mine['p95']:.0f} ms, {mine['errors']} errors) vs stock Flask-Admin {theirs['rps']:.1f} req/s (p50 "
              f"{theirs['p50']:.0f} ms, p95 {theirs['p95']:.0f} ms): stock / kefu {ratio:.2f}x "
              f"(target ≤ {TARGET_STOCK_RATIO}x) {'met' if ratio <= TARGET_STOCK_RATIO else 'NOT met'}")
    print(f"   API list / raw, the larger of the two cases: {api_ratio:.2f}x (target ≤ {TARGET_API_RATIO}x) "
          f"{'met' if api_ratio <= TARGET_API_RATIO else 'NOT met'}")


def sweep(stage: Stage) -> int:
    """The mix against each gunicorn setting of ``--sweep``, in turn, ``--repeat`` times (interleaved: a drift of
    the machine's speed hits every setting alike); one line per run at the end."""
    results = []
    for round_ in range(stage.args.repeat):
        for setting in stage.args.sweep.split(","):
            worker_class, workers, threads = setting.split(":")
            extra = ["--worker-class", worker_class, "--workers", workers, "--threads", threads]
            run = stage.run(f"kefu with {setting} (round {round_ + 1})", "app:create_app()", extra,
                            app_mix(stage.ids))
            results.append((setting, run))
    print(f"\n-- sweep: {len(stage.people)} people, {stage.args.seconds:.0f} s each, {stage.args.records:,} records")
    print(f"   {'class:workers:threads':22} {'req/s':>6} {'errors':>6} {'p50':>5} {'p95':>5} {'p99':>5} {'list p95':>8}"
          f" {'post p95':>8} {'CPU ms/req: gunicorn':>20} {'mongod':>6} {'load':>5}")
    for setting, run in sorted(results, key=lambda item: item[0]):
        rows = run.table(stage.args.warmup)
        row, requests = rows["all"], max(1, len(run.samples))
        print(f"   {setting:22} {row['rps']:6.1f} {run.error_count():6} {row['p50']:5.0f} {row['p95']:5.0f} "
              f"{row['p99']:5.0f} {rows.get('list', row)['p95']:8.0f} {rows.get('create: post', row)['p95']:8.0f} "
              f"{run.server_cpu / requests * 1000:20.1f} {run.mongod_cpu / requests * 1000:6.1f} {run.load:5.1f}")
    return 0


def print_db_profile(database, requests: int) -> None:
    """What the profiler recorded, by collection, operation and plan: count and milliseconds per request."""
    grouped = database.system.profile.aggregate([
        {"$match": {"command.profile": {"$exists": False}}},
        {"$group": {"_id": {"ns": "$ns", "op": "$op", "plan": {"$ifNull": ["$planSummary", ""]}},
                    "n": {"$sum": 1}, "ms": {"$sum": "$millis"}, "docs": {"$sum": "$docsExamined"}}},
        {"$sort": {"ms": -1}}, {"$limit": 15}])
    print(f"\n-- MongoDB's profiler during the mix (sign-ins, warm-up included), per request ({requests} requests)")
    print(f"   {'collection':22} {'op':8} {'n':>6} {'ms':>6} {'docs':>7}  plan")
    for row in grouped:
        key = row["_id"]
        print(f"   {key['ns'].split('.', 1)[1]:22} {key['op']:8} {row['n'] / requests:6.2f} "
              f"{row['ms'] / requests:6.2f} {row['docs'] / requests:7.1f}  {key['plan'][:100]}")


def requests_per_action() -> float:
    """Requests a browser sends per action of the mix: 逾期督办 loads its counts panel, a create its form first."""
    return sum(weight * (2 if name in ("逾期督办", "create") else 1) for name, weight in MIX.items())


def main() -> int:
    args = parse_args()
    with servers(args.cache_gb, prefix="kefu-load-") as (mongo, redis):
        app, people, ids = prepare(args, mongo, redis)
        commands_per_request(app, people, ids)
        api_ratio = api_against_raw(app, people, ids, args.api_runs)
        if args.skip_load:
            return 0
        workdir = Path(mongo.data_dir).parent
        stage = Stage(args, server_environment(mongo, redis, workdir), workdir, people, ids, mongo.process.pid)
        if args.sweep:
            return sweep(stage)
        database = MongoClient(mongo.uri)[stage.environment["MONGODB_DB"]]
        if args.db_profile:  # a profile large enough for the whole run (the default keeps 1 MB)
            database.drop_collection("system.profile")
            database.create_collection("system.profile", capped=True, size=256 * 1024 * 1024)
            database.command("profile", 2)
        app_run = stage.run(f"kefu (gunicorn.conf.py {' '.join(gunicorn_extra(args))})", "app:create_app()",
                            gunicorn_extra(args), app_mix(ids))
        if args.db_profile:
            database.command("profile", 0)
            print_db_profile(database, len(app_run.samples))
        lists = None if args.skip_stock else saturated_lists(stage, LIST_TYPE)
        summary(app_run, lists, api_ratio, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
