"""Failover: the primary of a 3-member replica set is killed (SIGKILL) under 16 clients creating records through the
HTTP API; the clients retry a 503 or a dropped connection with the same ``Idempotency-Key``, as the API asks.
Nothing acknowledged is lost, nothing answers 500, nothing is half-made, nothing is made twice.

The election is a normal one (~11 s). Twice: with ``MONGODB_TIMEOUT_MS``'s default (15 s) requests wait out the
election; with 4 s they answer 503 during it and the clients' retries with their keys must make no duplicate. The
app runs in this process behind werkzeug's threaded server, as a web process would. About a minute each."""
from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError
from werkzeug.serving import WSGIRequestHandler, make_server

from app import create_app
from kefu.records.store import AUDIT, EVENTS, RECORDS
from kefu.rules.sla import LACKING_DERIVED_STATE
from kefu.runtime.embedded import EmbeddedMongo, free_port
from seed.demo import DEMO_PASSWORD
from tests.conftest import TEST_DATA_KEY, TEST_SECRET_KEY, load_snapshot
from tests.test_records_api import complaint

CLIENTS = 16
BEFORE_KILL_S = 5
AFTER_ELECTION_S = 15
MAX_TRIES = 6  # per create: the first try and five retries (a 503 says retry after 10 s: one election)
DATABASE = "kefu_failover"


@pytest.fixture(scope="module")
def replica_set(tmp_path_factory):
    """Three members, started together and initiated, once for the module; killed afterwards. Equal priorities: a
    member restarted after a test killed it rejoins as a secondary and takes nothing over (see ``whole_set``)."""
    ports = [free_port() for _ in range(3)]
    members = [{"_id": n, "host": f"127.0.0.1:{port}"} for n, port in enumerate(ports)]
    folder = tmp_path_factory.mktemp("replica-set")
    servers = [EmbeddedMongo(folder / f"mongo{n}", port, members=members) for n, port in enumerate(ports)]
    try:
        with ThreadPoolExecutor(max_workers=len(servers)) as starting:
            list(starting.map(lambda server: server.start(timeout=60), servers))
        servers[0].initiate()
        deadline = time.monotonic() + 60
        while primary_of(servers) is None:
            assert time.monotonic() < deadline, "the new set elected no primary within 60 s"
            time.sleep(0.2)
        yield servers
    finally:
        for server in servers:
            server.kill()


@pytest.fixture
def whole_set(replica_set):
    """The module's set with all three members up (the member an earlier test killed restarted: back as a secondary,
    caught up with the primary) and a primary: each test kills a primary of a whole set."""
    for server in replica_set:
        if server.process.poll() is not None:
            server.start(timeout=60)
    deadline = time.monotonic() + 60
    while not set_is_whole(replica_set):
        assert time.monotonic() < deadline, "the set was not whole again within 60 s"
        time.sleep(0.2)
    return replica_set


def set_is_whole(servers: list[EmbeddedMongo]) -> bool:
    """One primary, every other member a healthy secondary at the primary's last write."""
    primary = primary_of(servers)
    if primary is None:
        return False
    client = MongoClient("127.0.0.1", primary.port, directConnection=True, serverSelectionTimeoutMS=300)
    try:
        members = client.admin.command("replSetGetStatus")["members"]
    except PyMongoError:
        return False
    finally:
        client.close()
    newest = max(member["optimeDate"] for member in members)
    return (sorted(member["stateStr"] for member in members) == ["PRIMARY", "SECONDARY", "SECONDARY"]
            and all(member["health"] == 1 and member["optimeDate"] == newest for member in members))


def primary_of(servers: list[EmbeddedMongo]) -> EmbeddedMongo | None:
    """The member that says it is the writable primary, asked directly (None during an election)."""
    for server in servers:
        if server.process.poll() is not None:
            continue
        client = MongoClient("127.0.0.1", server.port, directConnection=True, serverSelectionTimeoutMS=300)
        try:
            if client.admin.command("hello").get("isWritablePrimary"):
                return server
        except PyMongoError:
            pass
        finally:
            client.close()
    return None


class QuietHandler(WSGIRequestHandler):
    """No access log line per request (errors are still logged)."""

    def log_request(self, *args, **kwargs):
        pass


# MONGODB_TIMEOUT_MS: the default (15 s) waits out the election; 4 s answers 503 during it, and the clients retry.
TIMEOUTS = {"waits-out-the-election": None, "answers-503-and-clients-retry": 4000}


@pytest.fixture(params=list(TIMEOUTS.values()), ids=list(TIMEOUTS))
def web(request, whole_set, redis_server, seed_snapshot):
    """The app behind werkzeug's threaded server on a free port, on the set (all three hosts), with the demo data;
    yields its port and its MONGODB_TIMEOUT_MS (None: the default)."""
    uri = whole_set[0].uri
    timeout = {"MONGODB_TIMEOUT_MS": request.param} if request.param else {}
    app = create_app({"TESTING": True, "MONGODB_URI": uri, "MONGODB_DB": DATABASE, "REDIS_URL": redis_server.url,
                      "SECRET_KEY": TEST_SECRET_KEY, "KEFU_DATA_KEY": TEST_DATA_KEY, **timeout})
    client = MongoClient(uri)
    database = client[DATABASE]
    load_snapshot(database, seed_snapshot)
    server = make_server("127.0.0.1", free_port(), app, threaded=True, request_handler=QuietHandler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    yield server.server_port, request.param
    server.shutdown()
    serving.join(10)
    client.close()


def post(port: int, path: str, body: dict, headers: dict | None = None) -> tuple[int, dict, dict]:
    """``(status, JSON body, headers)``; raises ``OSError`` when the connection fails."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, body=json.dumps(body).encode(),
                           headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        text = response.read()
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            answer = {"raw": text[:500].decode("utf-8", "replace")}
        return response.status, answer, dict(response.getheaders())
    finally:
        connection.close()


@dataclass
class Tally:
    """What the clients saw: every answer, retries, what each acknowledged content got as its id."""

    answers: Counter = field(default_factory=Counter)
    retries: int = 0
    gave_up: int = 0
    slowest_s: float = 0.0  # the longest a client waited for one answer
    acknowledged: dict = field(default_factory=dict)  # content → record id answered with 201
    errors: list = field(default_factory=list)        # (status, body) of every answer other than 201/503
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_with_retries(port: int, headers: dict, content: str, tally: Tally) -> None:
    """One create, retried with the same key on 503 (after its Retry-After) or a dropped connection, bounded."""
    key = uuid.uuid4().hex
    for attempt in range(MAX_TRIES):
        sent = time.monotonic()
        try:
            status, body, answer_headers = post(port, "/api/v1/records/complaint", complaint(content=content),
                                                {**headers, "Idempotency-Key": key})
        except OSError:
            status, body, answer_headers = "connection error", {}, {}
        with tally.lock:
            tally.slowest_s = max(tally.slowest_s, time.monotonic() - sent)
            tally.answers[status] += 1
            tally.retries += attempt > 0
            if status == 201:
                tally.acknowledged[content] = body["id"]
                return
            if status not in (503, "connection error"):
                tally.errors.append((status, body))
                return
        time.sleep(min(float(answer_headers.get("Retry-After", 1)), 10))
    with tally.lock:
        tally.gave_up += 1


def test_killing_the_primary_loses_nothing_and_answers_no_500(replica_set, web):
    port, timeout_ms = web
    status, body, _ = post(port, "/api/v1/auth/token", {"username": "admin", "password": DEMO_PASSWORD})
    assert status == 201, body
    headers = {"Authorization": f"Bearer {body['token']}"}
    tag, tally, halt = uuid.uuid4().hex[:6], Tally(), threading.Event()

    def client(n: int) -> None:
        sent = 0
        while not halt.is_set():
            sent += 1
            create_with_retries(port, headers, f"故障切换 {tag} 客户端{n} 第{sent}条", tally)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(BEFORE_KILL_S)
        old_primary = primary_of(replica_set)
        before_kill = sum(tally.answers.values())
        old_primary.kill()
        killed_at = time.monotonic()
        while (new_primary := primary_of(replica_set)) is None:
            assert time.monotonic() - killed_at < 60, "no new primary within 60 s"
            time.sleep(0.1)
        election_s = time.monotonic() - killed_at
        time.sleep(AFTER_ELECTION_S)
    finally:
        halt.set()
        for thread in threads:
            thread.join(120)
    print(f"\nfailover: {sum(tally.answers.values())} requests ({before_kill} before the kill), "
          f"{tally.answers[201]} × 201, {tally.answers[503]} × 503, {tally.answers['connection error']} connection "
          f"errors, {tally.retries} retries, {tally.gave_up} gave up, slowest answer {tally.slowest_s:.1f} s; "
          f"primary {old_primary.port} killed, {new_primary.port} elected in {election_s:.1f} s; "
          f"other answers: {tally.errors[:5]}")

    client = MongoClient(replica_set[0].uri)
    try:
        database = client[DATABASE]
        mine = list(database[RECORDS].find({"data.content": {"$regex": f"^故障切换 {tag} "}},
                                           {"data.content": 1, "sla_rev": 1}))
        ids = [record["_id"] for record in mine]
        audited = set(database[AUDIT].distinct("record_id", {"record_id": {"$in": ids}, "action": "create"}))
        created = set(database[EVENTS].distinct("record_id", {"record_id": {"$in": ids}, "kind": "created"}))
        lacking = database[RECORDS].count_documents({"$and": [{"_id": {"$in": ids}}, LACKING_DERIVED_STATE]})
        by_content = Counter(record["data"]["content"] for record in mine)
        stored_id = {record["data"]["content"]: str(record["_id"]) for record in mine}
    finally:
        client.close()
    lost = [content for content, record_id in tally.acknowledged.items() if stored_id.get(content) != record_id]
    half_made = [i for i in ids if i not in audited or i not in created]
    duplicates = {content: n for content, n in by_content.items() if n > 1}
    print(f"stored {len(mine)} records: {len(lost)} acknowledged lost, {lacking} lacking derived state, "
          f"{len(half_made)} without audit entry or 'created' event, {len(duplicates)} duplicated contents")

    assert tally.answers[201] > 0 and tally.answers[201] == len(tally.acknowledged)
    assert tally.errors == [], "answers other than 201 and 503"
    assert tally.gave_up == 0
    assert lost == []
    assert lacking == 0 and half_made == []
    assert duplicates == {}
    if timeout_ms is not None:  # shorter than the election: the 503 and the retries with keys really happened
        assert tally.answers[503] > 0 and tally.retries > 0
