"""Configuration errors are one readable line; passwords never appear in them."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from kefu.core.config import PROJECT_ROOT, ConfigError, Settings, redact_uri
from kefu.runtime.embedded import free_port


def test_redact_uri_hides_the_password():
    assert redact_uri("mongodb://kefu:s3cret@db1.example:27017/kefu") == "mongodb://kefu:***@db1.example:27017/kefu"
    assert redact_uri("mongodb://db1:27017/") == "mongodb://db1:27017/"


def test_unreachable_mongodb_fails_fast_with_one_line(app_config):
    from app import create_app

    port = free_port()
    config = {**app_config, "MONGODB_URI": f"mongodb://kefu:s3cret@127.0.0.1:{port}/kefu", "MONGODB_TIMEOUT_MS": 1500}
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        create_app(config)
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "s3cret" not in message and "\n" not in message


def test_start_with_unreachable_mongodb_prints_one_line(tmp_path):
    """The operator sees one line naming the host, not a traceback, and it takes < 15 s."""
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "KEFU_VAR_DIR": str(tmp_path), "KEFU_PORT": str(free_port()), "MONGODB_URI": f"mongodb://ops:hunter22@127.0.0.1:{port}/kefu",
           "REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": "x", "MONGODB_TIMEOUT_MS": "2000"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "kefu.runtime.launcher", "up"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=30)
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    output = (result.stdout + result.stderr).strip()
    assert "Traceback" not in output and "hunter22" not in output
    assert f"127.0.0.1:{port}" in output and len(output.splitlines()) == 1


def test_secret_key_required_outside_embedded_mode(monkeypatch):
    monkeypatch.setattr("kefu.core.config.read_embedded_addresses", lambda: {})
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("KEFU_EMBEDDED", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.load({"MONGODB_URI": "mongodb://db:27017/", "REDIS_URL": "redis://r:6379/0"})


def test_bad_timezone_and_locale_are_named():
    base = {"MONGODB_URI": "mongodb://db:27017/", "REDIS_URL": "redis://r:6379/0", "SECRET_KEY": "k"}
    with pytest.raises(ConfigError, match="KEFU_TIMEZONE"):
        Settings.load({**base, "KEFU_TIMEZONE": "Mars/Olympus"})
    with pytest.raises(ConfigError, match="KEFU_LOCALE"):
        Settings.load({**base, "KEFU_LOCALE": "fr"})
