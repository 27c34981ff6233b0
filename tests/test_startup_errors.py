"""Start-up errors are one readable line from every entry point — ``flask --app app:create_app kefu …``, gunicorn,
the launcher — never a traceback: the real commands run as subprocesses with settings that cannot work."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from pymongo import MongoClient

from kefu.core.config import PROJECT_ROOT
from kefu.runtime.embedded import free_port
from tests.conftest import TEST_DATA_KEY

CANNOT_START = "[kefu] cannot start: "
OTHER_DATA_KEY = "b3RoZXIta2V5LW9mLTMyLWJ5dGVzLWZvci10ZXN0cyE="  # base64 of 32 bytes, not the test key


def environment(tmp_path, **settings) -> dict:
    """A bare environment (no var/ of a running demo) with ``settings``."""
    return {"PATH": "/usr/bin:/bin", "KEFU_VAR_DIR": str(tmp_path), "MONGODB_TIMEOUT_MS": "1500",
            "KEFU_DATA_KEY": TEST_DATA_KEY, **settings}


def unanswered_mongodb() -> str:
    return f"mongodb://ops:hunter22@127.0.0.1:{free_port()}/kefu"


@pytest.fixture
def database_of_another_key(mongo_server):
    """A database whose values were written under another KEFU_DATA_KEY than the test key."""
    name = f"kefu_test_{uuid.uuid4().hex[:12]}"
    client = MongoClient(mongo_server.uri)
    client[name].kefu_meta.insert_one({"_id": "data_key", "key_id": "k-not-the-test-key", "older_key_ids": []})
    yield name
    client.drop_database(name)
    client.close()


def bad_settings(case: str, mongo_server, redis_server, database_of_another_key) -> dict:
    good = {"MONGODB_URI": mongo_server.uri, "MONGODB_DB": f"kefu_test_{uuid.uuid4().hex[:12]}",
            "REDIS_URL": redis_server.url, "SECRET_KEY": "x"}
    return {
        "mongodb-not-answering": {**good, "MONGODB_URI": unanswered_mongodb()},
        "mongodb-credentials-refused": {**good,
                                        "MONGODB_URI": mongo_server.uri.replace("//", "//ops:hunter22@", 1)},
        "mongodb-uri-malformed": {**good, "MONGODB_URI": "mongdb://ops:hunter22@db1:27017/kefu"},
        "wrong-data-key": {**good, "MONGODB_DB": database_of_another_key},
        "malformed-data-key": {**good, "KEFU_DATA_KEY": "hunter22"},
        "secret-key-missing": {key: value for key, value in good.items() if key != "SECRET_KEY"},
        "redis-url-malformed": {**good, "REDIS_URL": "http://ops:hunter22@127.0.0.1:6379/0"},
        "bad-timezone": {**good, "KEFU_TIMEZONE": "Mars/Olympus"},
    }[case]


CASES = ["mongodb-not-answering", "mongodb-credentials-refused", "mongodb-uri-malformed", "wrong-data-key", "malformed-data-key",
         "secret-key-missing", "redis-url-malformed", "bad-timezone"]


def assert_one_line(result: subprocess.CompletedProcess, expected_exit: int = 1) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "hunter22" not in output, output
    assert result.returncode == expected_exit, output
    lines = [line for line in output.splitlines() if CANNOT_START in line]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("case", CASES)
def test_a_flask_command_with_bad_settings_prints_one_line(case, tmp_path, mongo_server, redis_server,
                                                           database_of_another_key):
    settings = bad_settings(case, mongo_server, redis_server, database_of_another_key)
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app:create_app", "kefu", "load-types"],
                            cwd=PROJECT_ROOT, env=environment(tmp_path, **settings), capture_output=True, text=True,
                            timeout=60)
    line = assert_one_line(result)
    assert result.stdout == "" and result.stderr.strip() == line  # nothing else: no usage, no "No such command"
    if case == "mongodb-credentials-refused":
        assert "refused the credentials" in line and "ops:" not in line


@pytest.mark.parametrize("case", ["mongodb-not-answering", "wrong-data-key", "redis-url-malformed"])
def test_gunicorn_with_bad_settings_prints_one_line_and_exits(case, tmp_path, mongo_server, redis_server,
                                                              database_of_another_key):
    settings = bad_settings(case, mongo_server, redis_server, database_of_another_key)
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{free_port()}",
                             "--no-control-socket", "app:create_app()"], cwd=PROJECT_ROOT,
                            env=environment(tmp_path, **settings), capture_output=True, text=True, timeout=60)
    assert_one_line(result)
    assert "[ERROR]" not in result.stderr and "Booting worker" not in result.stderr  # no worker was started


def test_gunicorn_given_the_config_by_path_from_another_folder_checks_and_serves(tmp_path, mongo_server,
                                                                                 redis_server, app):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def gunicorn(port: int) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "-c", str(PROJECT_ROOT / "gunicorn.conf.py"), "--chdir",
                str(PROJECT_ROOT), "--workers", "1", "--bind", f"127.0.0.1:{port}", "--no-control-socket",
                "app:create_app()"]

    good = {"MONGODB_URI": mongo_server.uri, "MONGODB_DB": app.config["MONGODB_DB"], "REDIS_URL": redis_server.url,
            "SECRET_KEY": "x"}
    refused = subprocess.run(gunicorn(free_port()), cwd=elsewhere,
                             env=environment(tmp_path, **{**good, "MONGODB_URI": unanswered_mongodb()}),
                             capture_output=True, text=True, timeout=60)
    assert "MongoDB" in assert_one_line(refused)
    port, log = free_port(), tmp_path / "gunicorn.log"
    with open(log, "wb") as handle:
        server = subprocess.Popen(gunicorn(port), cwd=elsewhere, env=environment(tmp_path, **good), stdout=handle,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, answer = time.monotonic() + 40, None
        while answer is None and server.poll() is None and time.monotonic() < deadline:
            try:
                answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
            except OSError:
                time.sleep(0.3)
        assert answer is not None and answer.status == 200, log.read_text()
        assert json.load(answer) == {"mongo": "ok", "redis": "ok"}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize("case", ["redis-not-answering", "wrong-data-key", "redis-url-malformed"])
def test_the_launcher_with_bad_settings_prints_one_line(case, tmp_path, mongo_server, redis_server,
                                                        database_of_another_key):
    if case == "redis-not-answering":
        settings = {"MONGODB_URI": mongo_server.uri, "MONGODB_DB": f"kefu_test_{uuid.uuid4().hex[:12]}",
                    "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "SECRET_KEY": "x"}
    else:
        settings = bad_settings(case, mongo_server, redis_server, database_of_another_key)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "kefu.runtime.launcher", "up"], cwd=PROJECT_ROOT,
                            env=environment(tmp_path, KEFU_PORT=str(free_port()), **settings), capture_output=True,
                            text=True, timeout=60)
    line = assert_one_line(result)
    assert time.monotonic() - started < 20
    assert (result.stdout + result.stderr).strip() == line
    if case == "redis-not-answering":
        assert "REDIS_URL" in line and settings["REDIS_URL"].split("//")[1].split("/")[0] in line


def test_a_worker_started_while_redis_is_down_waits_with_one_line_per_attempt(tmp_path, mongo_server, app):
    settings = {"MONGODB_URI": mongo_server.uri, "MONGODB_DB": app.config["MONGODB_DB"],
                "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "SECRET_KEY": "x"}
    log = tmp_path / "worker.log"
    with open(log, "wb") as handle:
        worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app:create_app", "kefu", "worker"],
                                  cwd=PROJECT_ROOT, env=environment(tmp_path, **settings), stdout=handle,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while "Redis unreachable" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert worker.poll() is None, log.read_text()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(15)
    output = log.read_text()
    assert "Traceback" not in output
    assert output.strip().splitlines()[0].startswith("worker: Redis unreachable (")
