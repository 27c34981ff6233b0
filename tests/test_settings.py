"""Every variable of the README's Configuration table takes effect when set in the environment.

The app here is built the way ``./kefu.sh up`` builds it: ``create_app()`` reads everything from the process
environment (``kefu.core.config.Settings``), nothing is passed as an override but ``TESTING``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature
from redis import Redis

from kefu.core.config import PROJECT_ROOT, ConfigError, Settings
from kefu.runtime.embedded import free_port
from tests.conftest import TEST_DATA_KEY, TEST_SECRET_KEY
from tests.test_records_api import create

SETTINGS = ("MONGODB_URI", "MONGODB_DB", "REDIS_URL", "SECRET_KEY", "KEFU_DATA_KEY", "KEFU_TIMEZONE", "KEFU_LOCALE",
            "KEFU_DEMO", "KEFU_EMBEDDED", "KEFU_BASE_URL", "KEFU_SMTP_HOST", "KEFU_SMTP_PORT", "KEFU_SMTP_USER",
            "KEFU_SMTP_PASSWORD", "KEFU_SMTP_FROM", "KEFU_SMTP_SECURITY", "KEFU_TICK_SECONDS", "KEFU_RETRY_INTERVALS",
            "KEFU_EXPORT_ASYNC_ROWS", "MONGODB_TIMEOUT_MS", "KEFU_PORT", "KEFU_WORKER_LEASE_SECONDS")


@pytest.fixture
def extra_env() -> dict:
    """The variables a test sets on top of the servers' (parametrise ``extra_env`` to change them)."""
    return {}


@pytest.fixture
def environment(mongo_server, redis_server, monkeypatch, extra_env) -> dict:
    """The process environment of a start against the test's servers: a database of its own, named by the URI."""
    env = {"MONGODB_URI": mongo_server.uri_for(f"kefu_settings_{uuid.uuid4().hex[:10]}"), "REDIS_URL": redis_server.url,
           "SECRET_KEY": TEST_SECRET_KEY, "KEFU_DATA_KEY": TEST_DATA_KEY, **extra_env}
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def make_app(environment):
    """``create_app`` as ``./kefu.sh up`` calls it: everything from the environment as it is now."""
    from app import create_app
    from kefu.core.db import get_database

    built = []

    def make():
        built.append(create_app({"TESTING": True}))
        return built[-1]

    yield make
    if built:
        database = get_database()
        database.client.drop_database(database.name)
    for app in built:
        Redis.from_url(app.config["REDIS_URL"]).flushdb()


@pytest.fixture
def app(make_app):
    """Overrides conftest's ``app``: built from the environment alone."""
    return make_app()


# -- the servers and keys ----------------------------------------------------------------------------------

def test_mongodb_uri_names_the_database(app, db, environment):
    assert db.name == environment["MONGODB_URI"].rsplit("/", 1)[1].split("?")[0]


def test_redis_url_is_where_jobs_are_queued(make_app, redis_server, monkeypatch):
    from jobs import enqueue
    from jobs.schedule import tick

    database_3 = redis_server.url.rsplit("/", 1)[0] + "/3"
    monkeypatch.setenv("REDIS_URL", database_3)
    with make_app().app_context():
        assert enqueue(tick, job_id="settings-probe") is not None
    assert Redis.from_url(database_3).exists("rq:job:settings-probe")
    assert not Redis.from_url(redis_server.url).exists("rq:job:settings-probe")


def test_secret_key_signs_the_session(app, client, make_user, sign_in, environment):
    make_user("settings_agent")
    assert sign_in("settings_agent").status_code == 302
    cookie = client.get_cookie("session").value

    def serializer(secret: str):
        probe = Flask("probe")
        probe.secret_key = secret
        return SecureCookieSessionInterface().get_signing_serializer(probe)

    assert serializer(environment["SECRET_KEY"]).loads(cookie)["_user_id"]
    with pytest.raises(BadSignature):
        serializer("another-secret").loads(cookie)


@pytest.mark.parametrize("extra_env", [{"KEFU_DATA_KEY": base64.b64encode(b"k" * 32).decode()}])
def test_data_key_encrypts_personal_data(client, agent, db):
    from kefu.core.crypto import DecryptionFailed, FieldCipher

    record = create(client, agent)
    sealed = db.records.find_one({"number": record["number"]})["pii"]["phone"]
    assert json.loads(FieldCipher(b"k" * 32).decrypt(sealed, context="complaint.phone")) == "13812345678"
    with pytest.raises(DecryptionFailed):
        FieldCipher(base64.b64decode(TEST_DATA_KEY)).decrypt(sealed, context="complaint.phone")


@pytest.mark.parametrize("extra_env", [{"KEFU_DATA_KEY": "not a key"}])
def test_a_malformed_data_key_stops_the_start_with_one_line(make_app):
    with pytest.raises(ConfigError) as caught:
        make_app()
    assert str(caught.value).startswith("KEFU_DATA_KEY decodes to 5 bytes") and "\n" not in str(caught.value)


def test_mongodb_timeout_ms_bounds_the_wait_for_an_unreachable_server(make_app, monkeypatch):
    monkeypatch.setenv("MONGODB_URI", f"mongodb://127.0.0.1:{free_port()}/kefu")
    monkeypatch.setenv("MONGODB_TIMEOUT_MS", "700")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="did not answer within 1 s"):
        make_app()
    assert time.monotonic() - started < 5  # the default would wait 10 s


# -- what people see --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("extra_env", "offset"), [({}, "+08:00"), ({"KEFU_TIMEZONE": "Asia/Tokyo"}, "+09:00"),
                                                   ({"KEFU_TIMEZONE": "Europe/London"}, "+00:00")])
def test_timezone_is_the_one_times_are_entered_and_shown_in(client, agent, db, offset):
    record = create(client, agent, received_at="2026-11-02T10:00")
    assert record["received_at"] == f"2026-11-02T10:00:00{offset}"
    assert record["created_at"].endswith(offset)
    stored = db.records.find_one({"number": record["number"]})["data"]["received_at"]
    hours = int(offset[1:3])
    assert (stored.hour, stored.minute) == (10 - hours, 0)  # stored in UTC


@pytest.mark.parametrize(("extra_env", "title"), [({}, "登录"), ({"KEFU_LOCALE": "en"}, "Sign in"),
                                                  ({"KEFU_LOCALE": "zh_Hans_CN"}, "登录")])
def test_locale_is_the_default_language(client, title):
    page = client.get("/login").get_data(as_text=True)
    assert f">{title}<" in page


@pytest.mark.parametrize("extra_env", [{"KEFU_EXPORT_ASYNC_ROWS": "5", "KEFU_BASE_URL": "https://kefu.example.com"}])
def test_export_async_rows_sends_larger_exports_to_the_background(app, client, agent, db):
    from rq import Queue, SimpleWorker

    for _ in range(5):
        create(client, agent)
    assert client.get("/api/v1/records/complaint/export.csv", headers=agent).status_code == 200  # 5 rows: at once
    assert db.export_jobs.count_documents({}) == 0

    create(client, agent)
    response = client.get("/api/v1/records/complaint/export.csv", headers=agent)
    assert response.status_code == 202, response.get_data(as_text=True)
    job = db.export_jobs.find_one()
    assert response.get_json()["export"]["id"] == str(job["_id"])
    assert (job["status"], job["total"], job["fmt"]) == ("queued", 6, "csv")
    redis = app.extensions["kefu_redis"]
    assert f"export-{job['_id']}" in Queue("default", connection=redis).job_ids

    with app.app_context():
        SimpleWorker(["default"], connection=redis).work(burst=True, with_scheduler=False)
    note = db.notifications.find_one({"kind": "export_ready"})
    assert note["url"] == "https://kefu.example.com/admin/exports/"  # KEFU_BASE_URL starts the links
    assert db.export_jobs.find_one()["status"] == "done"


def test_export_async_rows_defaults_to_20000(app):
    assert app.config["KEFU_EXPORT_ASYNC_ROWS"] == 20000


# -- background work -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("extra_env", "intervals"), [({}, [30, 120, 600]),
                                                      ({"KEFU_RETRY_INTERVALS": "5, 10,20"}, [5, 10, 20])])
def test_retry_intervals_are_the_backoff_of_deliveries(app, intervals):
    from jobs import retry_policy

    with app.app_context():
        policy = retry_policy(4)
    assert policy.max == 3 and policy.intervals == intervals


def test_tick_seconds_is_the_scheduler_interval(environment, tmp_path):
    """A scheduler started without ``--interval`` ticks every KEFU_TICK_SECONDS (here 1 s, by default 60)."""
    from rq import Queue

    redis_url = environment["REDIS_URL"].rsplit("/", 1)[0] + "/4"
    env = {**os.environ, "REDIS_URL": redis_url, "KEFU_TICK_SECONDS": "1", "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "scheduler.log", "wb")
    scheduler = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "kefu", "scheduler"], cwd=PROJECT_ROOT,
                                 env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    queue = Queue("schedule", connection=Redis.from_url(redis_url))
    try:
        deadline = time.monotonic() + 30
        while queue.count < 3 and time.monotonic() < deadline and scheduler.poll() is None:
            time.sleep(0.2)
        first_three = time.monotonic()
        assert queue.count >= 3, (tmp_path / "scheduler.log").read_text()
        while queue.count < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert queue.count >= 5 and time.monotonic() - first_three < 4  # two more ticks within a few seconds
    finally:
        scheduler.send_signal(signal.SIGTERM)
        try:
            scheduler.wait(15)
        except subprocess.TimeoutExpired:
            scheduler.kill()
        Redis.from_url(redis_url).flushdb()


SMTP = [
    ({"KEFU_SMTP_HOST": "smtp.example.com"}, "host", "smtp.example.com"),
    ({"KEFU_SMTP_PORT": "2525"}, "port", 2525),
    ({"KEFU_SMTP_USER": "kefu"}, "user", "kefu"),
    ({"KEFU_SMTP_PASSWORD": "s3cret"}, "password", "s3cret"),
    ({"KEFU_SMTP_FROM": "kefu@example.com"}, "sender", "kefu@example.com"),
    ({"KEFU_SMTP_SECURITY": "starttls"}, "security", "starttls"),
    ({"KEFU_SMTP_SECURITY": "ssl"}, "port", 465),   # ssl's port unless KEFU_SMTP_PORT says otherwise
    ({}, "configured", False),
    ({"KEFU_SMTP_HOST": "smtp.example.com", "KEFU_SMTP_FROM": "kefu@example.com"}, "configured", True),
]


@pytest.mark.parametrize(("extra_env", "attribute", "expected"), SMTP)
def test_smtp_variables_configure_email(app, attribute, expected):
    from kefu.notify.channels import get_settings, save_settings, smtp_settings

    with app.app_context():
        cipher = app.extensions["kefu_cipher"]
        assert getattr(smtp_settings(get_settings(), cipher), attribute) == expected
        save_settings({"smtp_host": "admin.example.com", "smtp_port": 587, "smtp_user": "admin",
                       "smtp_from": "admin@example.com", "smtp_security": "none"}, cipher,
                      smtp_password="admin-password")
        chosen = smtp_settings(get_settings(), cipher)  # 通知设置 win over the environment
    assert (chosen.host, chosen.port, chosen.user, chosen.password, chosen.sender, chosen.security) == \
        ("admin.example.com", 587, "admin", "admin-password", "admin@example.com", "none")


# -- the launcher and kefu.sh ------------------------------------------------------------------------------

def test_port_is_the_launcher_web_port(monkeypatch):
    from kefu.runtime.launcher import web_port

    port = free_port()
    monkeypatch.setenv("KEFU_PORT", str(port))
    assert web_port() == port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(ConfigError, match=f"port {port} \\(KEFU_PORT\\) is already in use"):
            web_port()
    monkeypatch.setenv("KEFU_PORT", "web")
    with pytest.raises(ConfigError, match="KEFU_PORT='web' should be a port number"):
        web_port()


@pytest.mark.parametrize(("extra_env", "loaded"), [({"KEFU_DEMO": "1"}, True), ({}, False)])
def test_demo_loads_demo_data_into_an_empty_database(make_app, monkeypatch, loaded):
    """The start-up step the launcher runs first (``flask kefu prepare``) loads demo data only with KEFU_DEMO=1."""
    from kefu.core.db import get_database
    from kefu.runtime import prepare

    monkeypatch.setattr(prepare, "seed_demo_records", lambda: 0)  # the six weeks of records: not needed here
    app = make_app()
    result = app.test_cli_runner().invoke(args=["kefu", "prepare"])
    assert result.exit_code == 0, result.output
    assert ("demo data: " in result.output) == loaded
    with app.app_context():
        assert (get_database().users.count_documents({}) > 0) == loaded


def test_venv_is_where_kefu_sh_keeps_the_virtualenv(tmp_path):
    """``./kefu.sh test`` with KEFU_VENV runs that virtualenv's python and links ``.venv`` to it."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("kefu.sh", "requirements.txt"):
        shutil.copy(PROJECT_ROOT / name, checkout / name)
    venv = tmp_path / "elsewhere" / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "calls"
    for tool in ("python", "pybabel"):
        script = venv / "bin" / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        script.chmod(0o755)
    requirements = hashlib.sha256((checkout / "requirements.txt").read_bytes()).hexdigest()
    (venv / ".requirements.sha256").write_text(requirements + "\n")

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KEFU_VENV": str(venv)}
    result = subprocess.run(["bash", str(checkout / "kefu.sh"), "test", "-k", "probe"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (checkout / ".venv").is_symlink() and Path(os.readlink(checkout / ".venv")) == venv
    assert "python -m pytest -k probe" in calls.read_text().splitlines()


# -- one line per mistake --------------------------------------------------------------------------------

BASE = {"MONGODB_URI": "mongodb://db:27017/", "REDIS_URL": "redis://r:6379/0", "SECRET_KEY": "k"}


@pytest.mark.parametrize(("variable", "value"), [
    ("KEFU_EXPORT_ASYNC_ROWS", "many"), ("KEFU_TICK_SECONDS", "-1"), ("MONGODB_TIMEOUT_MS", "soon"),
    ("KEFU_SMTP_PORT", "smtp"), ("KEFU_RETRY_INTERVALS", "30s,2m"), ("KEFU_TIMEZONE", "Mars/Olympus"),
    ("KEFU_LOCALE", "fr"),
])
def test_a_bad_value_is_named_in_one_line(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        Settings.load(BASE)
    message = str(caught.value)
    assert message.startswith(f"{variable}={value!r}") and "\n" not in message


def test_overrides_win_over_the_environment_and_the_rest_is_kept(monkeypatch):
    monkeypatch.setenv("KEFU_TIMEZONE", "Asia/Tokyo")
    monkeypatch.setenv("KEFU_EXPORT_ASYNC_ROWS", "7")
    settings = Settings.load({**BASE, "KEFU_TIMEZONE": "Europe/London", "TESTING": True})
    config = settings.flask_config()
    assert (settings.timezone, settings.export_async_rows) == ("Europe/London", 7)
    assert config["KEFU_TIMEZONE"] == "Europe/London" and config["KEFU_EXPORT_ASYNC_ROWS"] == 7
    assert config["TESTING"] is True and "TESTING" in settings.extra
    with pytest.raises(AttributeError):
        settings.timezone = "UTC"  # frozen: read once, never changed


def test_nothing_outside_the_settings_and_the_launcher_reads_the_environment():
    readers = []
    for folder in ("kefu", "web", "admin_views", "jobs", "seed"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "os.environ" in text or "getenv(" in text:
                readers.append(str(path.relative_to(PROJECT_ROOT)))
    assert sorted(readers) == ["kefu/core/config.py", "kefu/runtime/launcher.py"]

