"""Benchmark: the admin record list against a stock Flask-Admin ModelView of the same collection and raw pymongo.

    .venv/bin/python bench/list_bench.py [--records 1000000] [--rounds 5] [--profile]
    .venv/bin/python bench/list_bench.py --quick                      # 100,000 records, 3 rounds
    .venv/bin/python bench/list_bench.py --mongo-uri URI --redis-url URL --records N   # reuse a loaded database

Starts its own mongod and Redis (``bench/overdue_bench.py``'s ``servers``) unless given ``--mongo-uri`` /
``--redis-url``, seeds the demo data and bulk-loads N records with ``overdue_bench.generate`` — each record's
owner name drawn from a pool of common names, a rare name in one record of 50,000, and the word 电梯 in the
content of 5 % of the records (search text and grams rebuilt to match). A database already holding N records is
reused.

Cases, on the 投诉 (complaint) list as the signed-in manager (who reads every record, as the stock view shows
them), page of 50:

- status = 已关闭, sorted by registration (newest first);
- level = 重大, sorted by number;
- search for the rare name; search for the common word (in 5 % of the records);
- the unfiltered first page (newest first).

For each case, in turn (``overdue_bench.timed_in_turn``, one of each per round): the app's page
(``GET /admin/records/complaint/``, Flask test client), the stock Flask-Admin view's page
(``bench/stock_admin.py``, the same filter, sort and page size) and the raw pymongo query (the filter the app
builds, its sort, 50 rows, and the total counted as the page counts it). Prints median and min over ``--rounds``,
the ratio app / raw and app / stock, the MongoDB commands one page sends (a pymongo ``CommandListener``), and
the plan of the page's query (its index, keys and documents examined, whether MongoDB sorted in memory).
With ``--profile``, ``--rounds`` × 4 pages of the slowest case run under cProfile. Not part of the test suite.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from pymongo import monitoring

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from overdue_bench import generate, load, make_templates, profiled, seeded_app, servers, timed_in_turn  # noqa: E402
from stock_admin import STOCK_LIST_URL, create_stock_app, stock_list_args  # noqa: E402

DATABASE = "kefu_list_bench"
TYPE_KEY = "complaint"
USER = "manager"  # reads every record: the app's filter is the stock view's
RARE_NAME = "欧阳晓岚"
RARE_EVERY = 50_000
COMMON_WORD = "电梯"
COMMON_SHARE = 0.05
SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀英", "桂英",
         "建华", "志强"]
CONTENTS = ["卫生间漏水严重，楼下天花板渗水，已影响正常使用，请尽快安排维修",
            "外墙空鼓开裂，雨天室内墙面发霉，要求查明原因并修复",
            "车库积水，排水沟堵塞，车辆进出困难",
            "交房时承诺的绿化未兑现，小区中庭仍是裸土",
            "物业收费标准与合同约定不一致，要求解释并退还多收部分"]
COMMON_CONTENT = "电梯运行时异响明显，夜间噪音影响休息，多次报修未解决"
TARGET_SEARCH_MS = 300


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records to load (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per case (default 5)")
    parser.add_argument("--quick", action="store_true", help="100,000 records, 3 rounds (unless given)")
    parser.add_argument("--cache-gb", type=float, default=2.0, help="mongod WiredTiger cache (default 2 GB)")
    parser.add_argument("--profile", action="store_true", help="profile the slowest case's page (cProfile)")
    parser.add_argument("--seed", type=int, default=20261124, help="random seed of the generated data")
    parser.add_argument("--mongo-uri", help="use this MongoDB (its database %s) instead of starting one" % DATABASE)
    parser.add_argument("--redis-url", help="use this Redis instead of starting one (with --mongo-uri)")
    args = parser.parse_args()
    if args.quick and "--records" not in sys.argv:
        args.records = 100_000
    if args.quick and "--rounds" not in sys.argv:
        args.rounds = 3
    return args


# -- data -------------------------------------------------------------------------------------------------

def with_search_words(documents, rng: random.Random):
    """``documents`` with varied owner names and contents (a rare name, a word in 5 %), search index rebuilt as
    ``kefu.records.search.search_index`` builds it: the number, then the searched fields' text."""
    from kefu.records.search import SEARCH_SEPARATOR, compact_text, text_grams

    for index, document in enumerate(documents):
        name = RARE_NAME if index % RARE_EVERY == RARE_EVERY // 2 else rng.choice(SURNAMES) + rng.choice(GIVEN)
        content = COMMON_CONTENT if rng.random() < COMMON_SHARE else rng.choice(CONTENTS)
        document["data"] = {**document["data"], "owner_name": name, "content": content}
        parts = [compact_text(document["number"]), compact_text(name), compact_text(content)]
        grams = set()
        for part in parts:
            grams |= text_grams(part)
        document["grams"], document["search_text"] = sorted(grams), SEARCH_SEPARATOR.join(parts)
        yield document


def ensure_data(args, app, users, departments, database) -> None:
    """Load ``args.records`` records unless the database holds that many already."""
    from kefu.records.store import RECORDS

    held = database[RECORDS].estimated_document_count()
    if held == args.records:
        print(f"Reusing the {held:,} records of {DATABASE}", flush=True)
        return
    database[RECORDS].delete_many({})
    templates = make_templates(app)
    rng = random.Random(args.seed)
    now = datetime.now(timezone.utc)
    print(f"Loading {args.records:,} records of {len(templates)} types …", flush=True)
    documents = generate(templates, users, departments, args.records, args.records // 100, rng, now)
    seconds = load(database, with_search_words(documents, rng), args.records)
    print(f"  loaded in {seconds:.0f} s", flush=True)


# -- measuring --------------------------------------------------------------------------------------------

class CommandCounter(monitoring.CommandListener):
    """Counts the MongoDB commands of every client of the process (registered before they are created), without
    the versioned caches' version checks (one per cache every 2 s, not per page)."""

    def __init__(self):
        self.commands = Counter()

    def started(self, event):
        if event.command.get(event.command_name) != "cache_versions":
            self.commands[event.command_name] += 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass

    def during(self, function) -> Counter:
        self.commands = Counter()
        function()
        return Counter(self.commands)


def plan_summary(collection, mongo_filter, sort, limit=50) -> str:
    """The winning plan of ``find`` as a stage chain (index names), keys and documents examined, in-memory SORT."""
    explained = collection.find(mongo_filter, sort=sort, limit=limit).explain()
    stages = []

    def walk(stage):
        name = stage["stage"] + (f"({stage['indexName']})" if "indexName" in stage else "")
        stages.append(name)
        for child in ([stage["inputStage"]] if "inputStage" in stage else []) + stage.get("inputStages", []):
            walk(child)

    walk(explained["queryPlanner"]["winningPlan"])
    stats = explained["executionStats"]
    in_memory = any(s.startswith("SORT") and not s.startswith("SORT_MERGE") for s in stages)
    return (f"{' > '.join(stages)}; keys {stats['totalKeysExamined']:,}, docs {stats['totalDocsExamined']:,}"
            f"{', IN-MEMORY SORT' if in_memory else ''}")


def sign_in(app, username: str):
    from seed.demo import DEMO_PASSWORD

    client = app.test_client()
    login_page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    response = client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
    assert response.status_code == 302, "sign-in failed"
    return client


def list_arguments(app) -> dict:
    """The app list's URL arguments: ``flt0_<n>`` of the status and level filters, ``sort`` of number and
    registration."""
    from kefu.records.types import get_record_type

    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "records")
    with app.test_request_context(f"/admin/records/{TYPE_KEY}/"):
        screen = view._screen_for(get_record_type(TYPE_KEY))
        filters = screen.get_filters()
        columns = [key for key, _label in screen._list_columns]

    def filter_arg(key):
        return "flt0_%d" % next(i for i, f in enumerate(filters) if getattr(f, "field_key", None) == key
                                and f.op == "eq")

    return {"status": filter_arg("status"), "level": filter_arg("level"), "number": columns.index("number"),
            "created_at": columns.index("created_at")}


def cases(app) -> list[dict]:
    """Per case: its name, the app's and the stock view's URL arguments, and the query the app builds."""
    from kefu.records.query import Condition, RecordQuery

    arg = list_arguments(app)
    return [
        {"name": "status=已关闭, by registration",
         "app": {arg["status"]: "已关闭", "sort": arg["created_at"], "desc": 1},
         "stock": stock_list_args(status="已关闭", sort="created_at", desc=True),
         "query": RecordQuery(conditions=[Condition("status", "eq", "已关闭")], sort="-created_at")},
        {"name": "level=重大, by number",
         "app": {arg["level"]: "重大", "sort": arg["number"]},
         "stock": stock_list_args(level="重大", sort="number"),
         "query": RecordQuery(conditions=[Condition("level", "eq", "重大")], sort="number")},
        {"name": f"search rare name {RARE_NAME}",
         "app": {"search": RARE_NAME}, "stock": stock_list_args(search=RARE_NAME), "query": RecordQuery(q=RARE_NAME)},
        {"name": f"search common word {COMMON_WORD} (5 %)",
         "app": {"search": COMMON_WORD}, "stock": stock_list_args(search=COMMON_WORD),
         "query": RecordQuery(q=COMMON_WORD)},
        {"name": "unfiltered first page", "app": {}, "stock": stock_list_args(), "query": RecordQuery()},
    ]


def main() -> int:
    args = parse_args()
    counter = CommandCounter()
    monitoring.register(counter)  # before any client exists: every client reports to it
    if args.mongo_uri:
        return run(args, counter, args.mongo_uri, args.redis_url)
    with servers(args.cache_gb, prefix="kefu-list-bench-") as (mongo, redis):
        return run(args, counter, mongo.uri, redis.url)


def run(args, counter: CommandCounter, mongo_uri: str, redis_url: str) -> int:
    from kefu.core.db import get_database
    from kefu.org.users import User
    from kefu.records import query as record_query
    from kefu.records.actor import user_actor
    from kefu.records.query import READ_PROJECTION, build_filter, sort_spec
    from kefu.records.store import RECORDS
    from kefu.records.types import get_record_type

    app, users, departments = seeded_app(mongo_uri, redis_url, DATABASE)
    database = get_database()
    ensure_data(args, app, users, departments, database)
    collection = database[RECORDS]
    client = sign_in(app, USER)
    stock = create_stock_app(mongo_uri, DATABASE, TYPE_KEY).test_client()
    count_limit = getattr(record_query, "COUNT_LIMIT", None)  # the page's counting, as the page does it
    with app.test_request_context():
        reader = user_actor(User.objects(username=USER).first())
        record_type = get_record_type(TYPE_KEY)

    def page_of(case):
        def page():
            response = client.get(f"/admin/records/{TYPE_KEY}/", query_string=case["app"])
            assert response.status_code == 200, response.status_code
            return response.get_data(as_text=True)
        return page

    def stock_of(case):
        def page():
            response = stock.get(STOCK_LIST_URL, query_string=case["stock"])
            assert response.status_code == 200, response.status_code
            return response.get_data(as_text=True)
        return page

    def raw_of(case):
        with app.test_request_context():
            mongo_filter = build_filter(record_type, case["query"], reader)
            sort = sort_spec(record_type, case["query"].sort)

        def raw():
            rows = list(collection.find(mongo_filter, READ_PROJECTION, sort=sort, limit=50))
            if count_limit is None:
                return collection.count_documents(mongo_filter), rows
            if len(rows) < 50:
                return len(rows), rows
            return collection.count_documents(mongo_filter, limit=count_limit + 1), rows
        return raw, mongo_filter, sort

    load_before = os.getloadavg()[0]
    results = []
    for case in cases(app):
        page, stock_page = page_of(case), stock_of(case)
        raw, mongo_filter, sort = raw_of(case)
        total, rows = raw()
        shown, stock_shown = page(), stock_page()
        missing = [r["number"] for r in rows if r["number"] not in shown]
        assert not missing, f"{case['name']}: app page lacks {missing[:3]}"
        stock_numbers = re.findall(r"\b[A-Z]+-B-\d{7}\b", stock_shown)
        assert stock_numbers[:len(rows)] == [r["number"] for r in rows], f"{case['name']}: stock differs"
        commands = {name: counter.during(function) for name, function in
                    (("app", page), ("stock", stock_page), ("raw", raw))}
        samples = timed_in_turn({"app": page, "stock": stock_page, "raw": raw}, args.rounds, warmup=2)
        results.append((case, total, samples, commands, plan_summary(collection, mongo_filter, sort)))
    report(args, results, load_before, count_limit)
    if args.profile:
        slowest = max(results, key=lambda result: statistics.median(result[2]["app"]))[0]
        profiled(page_of(slowest), args.rounds * 4, f"GET /admin/records/{TYPE_KEY}/ ({slowest['name']})")
    return 0


def report(args, results, load_before: float, count_limit) -> None:
    print()
    print(f"records: {args.records:,}   rounds: {args.rounds}   page of 50   count: "
          f"{'exact' if count_limit is None else f'up to {count_limit:,}, exact below'}   load average: "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)")
    print(f"{'case':38} {'hits':>9} {'':6} {'median ms':>10} {'min ms':>8} {'commands':>9}")
    met = {"app ≤ stock": True, "app ≤ 2× raw": True, f"common-word search ≤ {TARGET_SEARCH_MS} ms": True}
    for case, total, samples, commands, plan in results:
        median = {name: statistics.median(values) for name, values in samples.items()}
        for position, name in enumerate(("app", "stock", "raw")):
            label = case["name"] if position == 0 else ""
            capped = count_limit is not None and total > count_limit
            hits = (f"{count_limit:,}+" if capped else f"{total:,}") if position == 0 else ""
            print(f"{label:38} {hits:>9} {name:6} {median[name]:10.1f} {min(samples[name]):8.1f} "
                  f"{sum(commands[name].values()):9d}")
        print(f"{'':38} app/raw {median['app'] / median['raw']:.1f}x, app/stock {median['app'] / median['stock']:.2f}x;"
              f" app commands: {dict(commands['app'])}")
        print(f"{'':38} plan: {plan}")
        met["app ≤ stock"] &= median["app"] <= median["stock"]
        met["app ≤ 2× raw"] &= median["app"] <= 2 * median["raw"]
        if case["name"].startswith("search common"):
            met[f"common-word search ≤ {TARGET_SEARCH_MS} ms"] &= median["app"] <= TARGET_SEARCH_MS
    print()
    print("targets (medians, every case): " + "; ".join(f"{name} {'met' if ok else 'NOT met'}"
                                                        for name, ok in met.items()))


if __name__ == "__main__":
    sys.exit(main())
