"""Nothing acknowledged is lost, nothing half-made is kept: one save is one transaction, outages answer 503 with
Retry-After, a create retried with its Idempotency-Key makes one record, a start repairs records lacking their
clocks. Failures are made by the real server (``configureFailPoint``) or by stopping it, never by fakes."""
from __future__ import annotations

import signal
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
from bson import ObjectId
from pymongo import MongoClient

from kefu.runtime.embedded import EmbeddedMongo, free_port
from seed.demo import DEMO_PASSWORD
from tests.conftest import TEST_DATA_KEY, TEST_SECRET_KEY, csrf_token, load_snapshot, token_headers
from tests.test_records_api import complaint

COMPLAINT = complaint()


@pytest.fixture
def app_config(app_config):
    """A save that keeps failing gives up after 3 s here (MONGODB_TIMEOUT_MS; 15 s by default, above an election)."""
    return {**app_config, "MONGODB_TIMEOUT_MS": 3000}


@contextmanager
def fail_point(db, data: dict, times: int = 1):
    """The server fails the next ``times`` commands ``data`` names, as it would on its own."""
    admin = db.client.admin
    admin.command({"configureFailPoint": "failCommand", "mode": {"times": times}, "data": data})
    try:
        yield
    finally:
        admin.command({"configureFailPoint": "failCommand", "mode": "off"})


def stored(db, query: dict) -> dict:
    """How many records, audit entries and timeline events exist for the records ``query`` finds."""
    ids = [d["_id"] for d in db.records.find(query, {"_id": 1})]
    return {"records": len(ids), "audit": db.audit_log.count_documents({"record_id": {"$in": ids}}),
            "events": db.record_events.count_documents({"record_id": {"$in": ids}})}


def test_embedded_server_is_a_replica_set_and_writes_are_majority_journaled(app, db):
    hello = db.client.admin.command("hello")
    assert hello["setName"] == EmbeddedMongo.REPLICA_SET and hello["isWritablePrimary"]
    concern = db.client.write_concern.document
    assert concern == {"w": "majority", "j": True}


def test_a_save_whose_audit_entry_fails_leaves_nothing_behind(client, db, admin):
    title = f"审计失败-{uuid.uuid4().hex[:6]}"
    # The server refuses the audit entry's insert, after the record's, as a primary stepping down in the middle of
    # the save would — and keeps refusing until the save's time runs out.
    with fail_point(db, {"failCommands": ["insert"], "errorCode": 10107, "namespace": f"{db.name}.audit_log"},
                    times=100_000):
        response = client.post("/api/v1/records/complaint", json={**COMPLAINT, "content": title}, headers=admin)
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "10"
    assert response.get_json()["error"]["code"] == "unavailable"
    assert stored(db, {"data.content": title}) == {"records": 0, "audit": 0, "events": 0}


def test_a_write_conflict_is_retried_and_the_save_lands_once_with_its_clocks(client, db, admin):
    title = f"写冲突-{uuid.uuid4().hex[:6]}"
    with fail_point(db, {"failCommands": ["insert"], "errorCode": 112, "errorLabels": ["TransientTransactionError"],
                         "namespace": f"{db.name}.record_events"}, times=2):
        response = client.post("/api/v1/records/complaint", json={**COMPLAINT, "content": title}, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert stored(db, {"data.content": title}) == {"records": 1, "audit": 1, "events": 1}
    record = db.records.find_one({"data.content": title})
    assert record["number"] == response.get_json()["number"] and record["sla_rev"] >= 1 and record["sla"]


def test_a_create_retried_with_its_idempotency_key_makes_one_record(client, db, admin):
    title, key = f"重试-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    headers = {**admin, "Idempotency-Key": key}
    first = client.post("/api/v1/records/complaint", json={**COMPLAINT, "content": title}, headers=headers)
    again = client.post("/api/v1/records/complaint", json={**COMPLAINT, "content": title}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert stored(db, {"data.content": title}) == {"records": 1, "audit": 1, "events": 1}
    other = client.post("/api/v1/records/complaint", json={**COMPLAINT, "content": title + "改"}, headers=headers)
    assert other.status_code == 409 and "Idempotency-Key" in other.get_json()["error"]["fields"]
    assert db.records.count_documents({"data.content": title + "改"}) == 0


def test_a_key_is_the_callers_own(client, db, admin, supervisor):
    key = uuid.uuid4().hex
    mine = client.post("/api/v1/records/complaint", json={**COMPLAINT, "content": "甲"},
                       headers={**admin, "Idempotency-Key": key})
    theirs = client.post("/api/v1/records/complaint", json={**COMPLAINT, "content": "甲"},
                         headers={**supervisor, "Idempotency-Key": key})
    assert mine.status_code == theirs.status_code == 201
    assert mine.get_json()["id"] != theirs.get_json()["id"]


def test_an_unusable_idempotency_key_is_refused_at_the_header(client, db, admin):
    response = client.post("/api/v1/records/complaint", json={**COMPLAINT, "content": "键太长"},
                           headers={**admin, "Idempotency-Key": "x" * 300})
    assert response.status_code == 422
    assert "Idempotency-Key" in response.get_json()["error"]["fields"]
    assert db.records.count_documents({"data.content": "键太长"}) == 0


def test_the_same_create_sent_at_once_from_many_clients_makes_one_record(app, db, admin):
    title, key = f"并发-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    answers, barrier = [], threading.Barrier(6)

    def send():
        barrier.wait()
        response = app.test_client().post("/api/v1/records/complaint", json={**COMPLAINT, "content": title},
                                          headers={**admin, "Idempotency-Key": key})
        answers.append((response.status_code, response.get_json().get("id")))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {status for status, _ in answers} == {201}
    assert len({record_id for _, record_id in answers}) == 1
    assert stored(db, {"data.content": title}) == {"records": 1, "audit": 1, "events": 1}


def test_a_start_repairs_records_stored_without_their_clocks(app, db, admin, client, runner):
    response = client.post("/api/v1/records/complaint", json={**COMPLAINT, "content": "缺时限"}, headers=admin)
    record_id = db.records.find_one({"data.content": "缺时限"})["_id"]
    derived = ("sla", "sla_open", "sla_due", "sla_live", "paused_since", "sla_next", "sla_rev")
    expected = {k: v for k, v in db.records.find_one({"_id": record_id}).items() if k in derived and k != "sla_rev"}
    # As a save interrupted between its insert and its clocks left records before saves were transactions.
    db.records.update_one({"_id": record_id}, {"$unset": {k: "" for k in derived}})
    result = runner.invoke(args=["kefu", "prepare"])
    assert result.exit_code == 0, result.output
    assert "1 records that lacked them" in result.output
    repaired = db.records.find_one({"_id": record_id})
    assert response.status_code == 201 and repaired["sla_rev"] == 1
    assert {k: v for k, v in repaired.items() if k in expected} == expected


# --- a real outage: the server stopped under the app ------------------------------------------------------


@pytest.fixture
def own_mongo(tmp_path):
    """A MongoDB of this test's own, to stop and start again."""
    server = EmbeddedMongo(tmp_path / "mongo", free_port()).start(timeout=60)
    yield server
    server.stop()


def app_on(server: EmbeddedMongo, redis_server, seed_snapshot, timeout_ms: int):
    """An app on ``server`` with the demo data, its MongoDB waits bounded by ``timeout_ms``; its client signed in to
    the API as the demo admin (a list answers 200 before the outage) and its bearer headers."""
    from app import create_app

    # Not TESTING: Flask would re-raise an error escaping an error handler instead of answering, as it does in
    # production.
    app = create_app({
        "TESTING": False, "MONGODB_URI": server.uri, "MONGODB_DB": "kefu_outage", "REDIS_URL": redis_server.url,
        "SECRET_KEY": TEST_SECRET_KEY, "KEFU_DATA_KEY": TEST_DATA_KEY, "MONGODB_TIMEOUT_MS": timeout_ms,
    })
    load_snapshot(MongoClient(server.uri)["kefu_outage"], seed_snapshot)
    client = app.test_client()
    headers = token_headers(client, "admin")
    assert client.get("/api/v1/records/complaint", headers=headers).status_code == 200
    return app, client, headers


def test_an_outage_answers_503_with_retry_after_on_the_api_and_the_screens(own_mongo, redis_server, seed_snapshot):
    app, client, headers = app_on(own_mongo, redis_server, seed_snapshot, timeout_ms=1500)
    browser = app.test_client()
    browser.post("/login", data={"username": "admin", "password": DEMO_PASSWORD,
                                 "csrf_token": csrf_token(browser, "/login")})
    assert browser.get("/admin/records/complaint/").status_code == 200
    own_mongo.kill()
    started = time.monotonic()
    api = client.post("/api/v1/records/complaint", json=COMPLAINT, headers=headers)
    page = browser.get("/admin/records/complaint/")
    assert time.monotonic() - started < 10
    assert api.status_code == 503 and api.headers["Retry-After"] == "10"
    assert "数据库" in api.get_json()["error"]["message"]
    assert page.status_code == 503 and page.headers["Retry-After"] == "10"
    assert "请 10 秒后刷新查看或重试" in page.get_data(as_text=True) and "Traceback" not in page.get_data(as_text=True)
    # An error page needs the signed-in user from the database too: its failure is still the outage's 503.
    missing = browser.get("/admin/no-such-page/")
    assert missing.status_code == 503 and missing.headers["Retry-After"] == "10"
    own_mongo.start(timeout=60)
    assert client.get("/api/v1/records/complaint", headers=headers).status_code == 200


def test_the_embedded_server_restarts_on_another_port_with_its_data(tmp_path):
    """``./kefu.sh up`` takes another port when the preferred one is busy: the one-member set follows it."""
    first = EmbeddedMongo(tmp_path / "mongo", free_port()).start(timeout=60)
    MongoClient(first.uri).kefu.records.insert_one({"number": "TS-202612-0001"})
    first.stop()
    again = EmbeddedMongo(tmp_path / "mongo", free_port()).start(timeout=60)
    try:
        client = MongoClient(again.uri)
        assert client.admin.command("hello")["isWritablePrimary"]
        assert client.kefu.records.find_one({}, {"_id": 0}) == {"number": "TS-202612-0001"}
    finally:
        again.stop()


def test_a_frozen_server_answers_503_within_the_requests_deadline(own_mongo, redis_server, seed_snapshot):
    """A server that stops answering without closing its connections (frozen, cut off by the network): each
    operation would wait its own timeout, with retries — the first request took minutes and gunicorn killed it with
    a bare 500. The request's operations share one deadline (MONGODB_TIMEOUT_MS), then it answers 503."""
    _app, client, headers = app_on(own_mongo, redis_server, seed_snapshot, timeout_ms=2000)
    own_mongo.process.send_signal(signal.SIGSTOP)
    try:
        for path in ("/api/v1/records/complaint", "/api/v1/me"):
            started = time.monotonic()
            response = client.get(path, headers=headers)
            assert response.status_code == 503 and response.headers["Retry-After"] == "10"
            assert time.monotonic() - started < 4, f"{path} waited {time.monotonic() - started:.1f} s"
    finally:
        own_mongo.process.send_signal(signal.SIGCONT)
    assert client.get("/api/v1/records/complaint", headers=headers).status_code == 200


def test_a_replay_answers_only_what_the_caller_may_read_now(client, db, agent):
    key = uuid.uuid4().hex
    headers = {**agent, "Idempotency-Key": key}
    first = client.post("/api/v1/records/complaint", json={**COMPLAINT, "content": "转走"}, headers=headers)
    assert first.status_code == 201
    # Moved out of the agent's reach since (another department registered and follows it).
    other = db.departments.find_one({"_id": {"$nin": [db.users.find_one({"username": "agent"})["department"]]}})
    db.records.update_one({"_id": ObjectId(first.get_json()["id"])}, {"$set": {
        "created_by": None, "assignee": None, "created_department": other["_id"], "departments": [other["_id"]]}})
    again = client.post("/api/v1/records/complaint", json={**COMPLAINT, "content": "转走"}, headers=headers)
    assert again.status_code == 404
    assert db.records.count_documents({"data.content": "转走"}) == 1
