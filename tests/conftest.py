"""Fixtures: real MongoDB and Redis servers started once per test session from the
same embedded-server code the run command uses; every test gets its own database.
The demo data comes from ``kefu seed``, run once per session into a scratch database
and copied into each test's own (the seed takes seconds; a copy takes milliseconds)."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from pymongo import MongoClient
from redis import Redis

from kefu.runtime.embedded import EmbeddedMongo, EmbeddedRedis, free_port
from seed.demo import DEMO_PASSWORD
from tests.browser_support import CHROMIUM, TIMEOUT_MS, LiveServer, PageProblems

TEST_SECRET_KEY = "test-secret-key-not-for-production"
TEST_DATA_KEY = "a2VmdS10ZXN0LWRhdGEta2V5LW5vdC1mb3ItdXNlISE="  # base64 of 32 bytes


def pytest_configure(config):
    # Tests never read or write the product's ./var (a running demo keeps its data there).
    os.environ["KEFU_VAR_DIR"] = tempfile.mkdtemp(prefix="kefu-test-var-")


# The files that take longest (about a minute or more each on two busy cores: outages, elections, real worker
# processes, fuzzing, browsers), longest first. The two processes take whole files in collection order (pytest.ini:
# xdist's own order, most tests first, put exactly these last, and one process ran the last of them alone while the
# other had nothing left); handed out first, they run while the many quick files fill the gaps.
SLOWEST_FILES = (
    "test_background_outages.py", "test_api_contract.py", "test_browser.py", "test_failover.py", "test_workers.py",
    "test_durability.py", "test_imports.py", "test_admin_language.py", "test_admin_screens.py",
)


def pytest_collection_modifyitems(config, items):
    """The slowest files first (``SLOWEST_FILES``), the rest in their usual order: the same order in every process."""
    rank = {name: position for position, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOWEST_FILES)))


# The session's MongoDB keeps its files in memory where the machine has /dev/shm: every write is acknowledged only
# after the journal is flushed (w: majority, j: true), which on a disk makes the suite wait on fsync, not work.
# Crashes and elections are tested on servers of their own (tests/test_durability.py, tests/test_failover.py).
SCRATCH_DIR = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@pytest.fixture(scope="session")
def mongo_server():
    data_dir = tempfile.mkdtemp(prefix="kefu-test-mongo-", dir=SCRATCH_DIR)
    server = EmbeddedMongo(data_dir, free_port(), test_commands=True, oplog_size_mb=256,
                           many_short_lived_databases=True).start(timeout=60)
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), free_port(), persistent=False).start()
    yield server
    server.stop()


@pytest.fixture
def app_config(mongo_server, redis_server):
    """Settings for one test: its own database, the session's servers."""
    return {
        "TESTING": True,
        "MONGODB_URI": mongo_server.uri,
        "MONGODB_DB": f"kefu_test_{uuid.uuid4().hex[:12]}",
        "REDIS_URL": redis_server.url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "KEFU_DATA_KEY": TEST_DATA_KEY,
        "KEFU_LOCALE": "zh_Hans_CN",
        "KEFU_TIMEZONE": "Asia/Shanghai",
    }


@pytest.fixture(scope="session")
def drop_later(mongo_server):
    """``drop_later(name)`` drops a test's database in a thread of its own while the next test runs (a drop waits
    about 0.1 s for the replica set's acknowledgement); the session's end waits for every drop, raising a failed
    one's error."""
    client = MongoClient(mongo_server.uri)
    dropping = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-test-databases") as dropper:
        yield lambda name: dropping.append(dropper.submit(client.drop_database, name))
    for drop in dropping:
        drop.result()
    client.close()


@pytest.fixture
def app(app_config, drop_later):
    from app import create_app

    # No app context is held open here: each request must get its own, as in
    # production (Flask-Login caches the user on ``g``).
    app = create_app(app_config)
    yield app
    from kefu.core.db import get_database

    drop_later(get_database().name)
    Redis.from_url(app_config["REDIS_URL"]).flushdb()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    """The test's pymongo Database, for asserting what is really stored."""
    from kefu.core.db import get_database

    return get_database()


CSRF_PATTERN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client, path: str) -> str:
    """The CSRF token of the form served at ``path``."""
    page = client.get(path).get_data(as_text=True)
    match = CSRF_PATTERN.search(page) or re.search(r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def make_user(app):
    """Create a user with one role through the service (the real write path)."""
    from kefu.org.users import create_user
    from seed.demo import seed_departments

    seed_departments()

    def make(username="agent1", role="agent", password="correct-horse", department="客服中心", **extra):
        return create_user(username, password, [role], department=department, **extra)

    return make


@pytest.fixture
def sign_in(client):
    """Sign ``client`` in through the real login form; returns the response."""
    def do_sign_in(username, password="correct-horse"):
        token = csrf_token(client, "/login")
        return client.post("/login", data={"username": username, "password": password, "csrf_token": token})

    return do_sign_in


# --- demo data and its people -------------------------------------------------------------

@pytest.fixture(scope="session")
def seed_snapshot(mongo_server, redis_server):
    """Every collection ``kefu seed`` writes, as documents (seeded once into a scratch database)."""
    from app import create_app

    name = f"kefu_seed_{uuid.uuid4().hex[:12]}"
    app = create_app({
        "TESTING": True, "MONGODB_URI": mongo_server.uri, "MONGODB_DB": name, "REDIS_URL": redis_server.url,
        "SECRET_KEY": TEST_SECRET_KEY, "KEFU_DATA_KEY": TEST_DATA_KEY, "KEFU_LOCALE": "zh_Hans_CN",
        "KEFU_TIMEZONE": "Asia/Shanghai",
    })
    result = app.test_cli_runner().invoke(args=["kefu", "seed"])
    assert result.exit_code == 0, result.output
    client = MongoClient(mongo_server.uri)
    try:
        source = client[name]
        snapshot = {collection: list(source[collection].find())
                    for collection in source.list_collection_names() if not collection.startswith("system.")}
    finally:
        client.drop_database(name)
        client.close()
    assert {"record_types", "users", "projects", "units", "customers", "departments"} <= set(snapshot)
    return {collection: documents for collection, documents in snapshot.items() if documents}


@pytest.fixture(scope="session")
def demo_records_snapshot(mongo_server, redis_server, seed_snapshot):
    """Every collection after ``kefu seed``, the calendar and ``kefu seed-records`` (six weeks of records through the
    services), as documents: the command runs once per session into a scratch database (it takes seconds; a copy
    milliseconds) and tests/test_seed_records.py checks what it wrote. The scratch app uses a Redis database of its
    own, so the jobs its writes queue never reach the test that asked for the snapshot."""
    from app import create_app
    from kefu.calendar.workcalendar import seed_calendar

    name = f"kefu_records_{uuid.uuid4().hex[:12]}"
    scratch_redis = redis_server.url.rsplit("/", 1)[0] + "/15"
    app = create_app({
        "TESTING": True, "MONGODB_URI": mongo_server.uri, "MONGODB_DB": name, "REDIS_URL": scratch_redis,
        "SECRET_KEY": TEST_SECRET_KEY, "KEFU_DATA_KEY": TEST_DATA_KEY, "KEFU_LOCALE": "zh_Hans_CN",
        "KEFU_TIMEZONE": "Asia/Shanghai",
    })
    client = MongoClient(mongo_server.uri)
    try:
        source = client[name]
        load_snapshot(source, seed_snapshot)
        with app.app_context():
            seed_calendar()
        result = app.test_cli_runner().invoke(args=["kefu", "seed-records"])
        assert result.exit_code == 0 and "none added" not in result.output, result.output
        snapshot = {collection: list(source[collection].find())
                    for collection in source.list_collection_names() if not collection.startswith("system.")}
    finally:
        client.drop_database(name)
        client.close()
        Redis.from_url(scratch_redis).flushdb()
    assert snapshot["records"]
    return {collection: documents for collection, documents in snapshot.items() if documents}


def load_snapshot(database, snapshot: dict) -> None:
    """Make ``database`` hold exactly the snapshot's documents (``seed_snapshot``, ``demo_records_snapshot``) in the
    collections it names."""
    for collection, documents in snapshot.items():
        database[collection].delete_many({})
        database[collection].insert_many([dict(document) for document in documents])


@pytest.fixture
def seeded(app, db, seed_snapshot):
    """This test's database holds exactly what ``kefu seed`` writes (replacing what the app wrote at start: the
    shipped roles)."""
    load_snapshot(db, seed_snapshot)


@pytest.fixture
def demo_records(app, db, seeded, demo_records_snapshot):
    """This test's database holds what ``kefu seed``, the calendar and ``kefu seed-records`` write (the demo data
    and six weeks of records, open, closed and overdue ones)."""
    load_snapshot(db, demo_records_snapshot)


@pytest.fixture
def calendar(app):
    """The working-day calendar as ``kefu seed`` enters it (every year the chinesecalendar package knows)."""
    from kefu.calendar.workcalendar import seed_calendar

    with app.app_context():
        seed_calendar()


def token_headers(client, username: str, password: str = DEMO_PASSWORD) -> dict:
    response = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 201, response.get_data(as_text=True)
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


@pytest.fixture
def agent(client, seeded):
    """Bearer headers of the demo agent (客服专员: may not see personal data)."""
    return token_headers(client, "agent")


@pytest.fixture
def supervisor(client, seeded):
    """Bearer headers of the demo supervisor (客服主管: sees personal data)."""
    return token_headers(client, "supervisor")


@pytest.fixture
def admin(client, seeded):
    """Bearer headers of the demo admin."""
    return token_headers(client, "admin")


# -- browser journeys (modules calling tests.browser_support.skip_without_browser() first) --------------------------

@pytest.fixture(scope="module")
def browser():
    """One Chromium for the whole module (a launch costs about a second)."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def live_server(app, seeded):
    """The test's app with the demo data, served over HTTP until the test ends (before its database is dropped)."""
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def problems():
    """What the browser reports in this test's contexts (each journey asserts there was nothing)."""
    return PageProblems()


@pytest.fixture
def new_context(browser, live_server, problems):
    """Opens browser contexts (separate cookie jars) on the live server, watched by ``problems``."""
    contexts = []

    def open_context(**options):
        context = browser.new_context(base_url=live_server.url, locale="zh-CN",
                                      viewport={"width": 1280, "height": 900}, **options)
        context.set_default_timeout(TIMEOUT_MS)
        problems.watch(context)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()
