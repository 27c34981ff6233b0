"""Record-type definitions: validation, live schema changes, stored values kept, shipped templates.

Every test drives the real HTTP surface (admin forms, JSON API, a second
gunicorn process) against real MongoDB and Redis, and checks the stored
document as well as the response.
"""
from __future__ import annotations

import copy
import csv
import http.cookiejar
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from bson import Decimal128, ObjectId

from kefu.records.definitions import shipped_definitions
from kefu.records.fields import FIELD_FLAGS
from kefu.records.sections import registered, section_keys
from kefu.runtime.embedded import free_port
from seed.demo import DEMO_PASSWORD
from tests.conftest import CSRF_PATTERN, csrf_token

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_TYPE_COUNT = 29
SHIPPED_KEYS = [definition["key"] for _pack, definition in shipped_definitions()]
SCHEMA_CHANGE_DEADLINE = 5.0  # seconds a second process may take to serve a changed definition


# -- fixtures -------------------------------------------------------------------

@pytest.fixture
def seeded(runner):
    """The demo data (20 record types, projects, units, customers, one user per role) via ``kefu seed``."""
    result = runner.invoke(args=["kefu", "seed"])
    assert result.exit_code == 0, result.output


@pytest.fixture
def admin_client(client, seeded, sign_in):
    """The test client, signed in as the demo admin through the login form."""
    response = sign_in("admin", DEMO_PASSWORD)
    assert response.status_code == 302
    return client


@pytest.fixture
def api_client(app, seeded):
    """A second test client without a session: API calls authenticate with their Bearer token only."""
    return app.test_client()


@pytest.fixture
def tokens(api_client):
    """Bearer tokens of the demo users, issued through ``POST /api/v1/auth/token``."""
    issued = {}

    def token_for(username: str) -> str:
        if username not in issued:
            response = api_client.post("/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD})
            assert response.status_code == 201, response.get_data(as_text=True)
            issued[username] = response.get_json()["token"]
        return issued[username]

    return token_for


@pytest.fixture
def api(api_client, tokens):
    """``api(method, path, json=None, as_user="admin")`` → the test response, called with a Bearer token."""
    def call(method: str, path: str, json=None, as_user: str = "admin", query: dict | None = None):
        return api_client.open(path, method=method, json=json, query_string=query,
                               headers={"Authorization": f"Bearer {tokens(as_user)}"})

    return call


@pytest.fixture
def refs(db, seeded):
    """Ids of seeded targets for reference fields: a project with one of its units, a customer, a user, a department."""
    project = db.projects.find_one({"code": "YQJNF"})
    return {
        "project": project["_id"],
        "unit": db.units.find_one({"project": project["_id"]})["_id"],
        "customer": db.customers.find_one({}, sort=[("_id", 1)])["_id"],
        "user": db.users.find_one({"username": "agent"})["_id"],
        "department": db.departments.find_one({"name": "工程部"})["_id"],
    }


# -- helpers --------------------------------------------------------------------

def stored_type(db, key: str) -> dict | None:
    return db.record_types.find_one({"key": key})


def field_of(definition: dict, key: str) -> dict | None:
    return next((f for f in definition["fields"] if f["key"] == key), None)


def yaml_definition(key: str) -> dict:
    return copy.deepcopy(next(d for _pack, d in shipped_definitions() if d["key"] == key))


def type_form(definition: dict, token: str) -> dict:
    """The admin record-type form (Flask-Admin InlineFieldList ``fields-N-…``) for a definition dict."""
    data = {"csrf_token": token, "key": definition.get("key", ""), "name": definition.get("name", ""),
            "name_en": definition.get("name_en") or "", "number_prefix": definition.get("number_prefix", ""),
            "description": definition.get("description") or ""}
    if definition.get("active", True):
        data["active"] = "y"
    for index, field in enumerate(definition["fields"]):
        prefix = f"fields-{index}-"
        data[prefix + "position"] = str((index + 1) * 10)
        for name in ("key", "label", "label_en", "type", "pattern", "help"):
            data[prefix + name] = str(field.get(name) or "")
        if field.get("active", True):
            data[prefix + "active"] = "y"
        for flag in FIELD_FLAGS:
            if field.get(flag):
                data[prefix + flag] = "y"
        data[prefix + "choices"] = "\n".join(field.get("choices") or [])
        for name in ("default", "min", "max", "max_length", "max_size_mb"):
            value = field.get(name)
            data[prefix + name] = "" if value is None else str(value)
    rules = {section: definition[section] for section in section_keys() if definition.get(section)}
    data["rules"] = yaml.safe_dump(rules, allow_unicode=True, sort_keys=False) if rules else ""
    return data


def definition_as_stored(db, key: str) -> dict:
    """The stored definition in API shape (for editing it through the form or the API)."""
    document = stored_type(db, key)
    fields = []
    for field in document["fields"]:
        # ``0`` and ``False`` are real option values (min: 0, default: false); unset options and false flags are not.
        shape = {k: v for k, v in field.items()
                 if not (v is None or v == "" or v == [] or (v is False and k in (*FIELD_FLAGS, "active")))}
        shape.pop("active", None)
        if not field.get("active", True):
            shape["active"] = False
        fields.append(shape)
    return {"key": document["key"], "name": document["name"], "name_en": document.get("name_en"),
            "number_prefix": document["number_prefix"], "description": document.get("description"),
            "fields": fields, **{s: document[s] for s in section_keys() if document.get(s)}}


def post_type_form(client, definition: dict, db=None):
    """Submit the admin form: create when ``db`` is None, else edit the stored type ``definition['key']``."""
    if db is None:
        path = "/admin/record_types/new/"
    else:
        path = f"/admin/record_types/edit/?id={stored_type(db, definition['key'])['_id']}"
    return client.post(path, data=type_form(definition, csrf_token(client, path)))


def flashed_errors(page: str) -> str:
    """The text of the page's error flashes, joined by " | "."""
    alerts = re.findall(r'alert-danger[^>]*>(.*?)</div>', page, flags=re.S)
    return " | ".join(re.sub(r"\s+", " ", re.sub(r"<[^>]+>|&times;", "", alert)).strip() for alert in alerts)


def error_of(response) -> dict:
    body = response.get_json()
    assert body and "error" in body, response.get_data(as_text=True)
    return body["error"]


def record_data(db, record_id) -> dict:
    return db.records.find_one({"_id": ObjectId(str(record_id))})


# Values a shipped field of each type accepts: (form input, JSON input, expected stored value, expected JSON back).
def sample_value(field: dict, refs: dict):
    """Generic valid input for a field definition, or None when the field is not filled (attachments)."""
    kind = field["type"]
    if kind in ("text", "textarea"):
        if field.get("pattern"):
            text = "TS-202611-0001"
            if not re.fullmatch(field["pattern"], text):
                return None
        else:
            text = ("样例" + field["label"])[: field.get("max_length") or 200]
        return text, text, text, text
    if kind in ("integer", "decimal", "money"):
        number = Decimal("12.5") if kind == "decimal" else Decimal(100 if kind == "money" else 3)
        if field.get("min") is not None and number < Decimal(str(field["min"])):
            number = Decimal(str(field["min"]))
        if field.get("max") is not None and number > Decimal(str(field["max"])):
            number = Decimal(str(field["max"]))
        if kind == "integer":
            return str(int(number)), int(number), int(number), int(number)
        if kind == "money":
            cents = number.quantize(Decimal("0.01"))
            return str(number), str(number), Decimal128(cents), str(cents)
        return str(number), str(number), Decimal128(number), str(number)
    if kind == "date":
        return "2026-11-20", "2026-11-20", datetime(2026, 11, 20, tzinfo=timezone.utc), "2026-11-20"
    if kind == "datetime":
        return ("2026-11-20T10:30", "2026-11-20T10:30:00+08:00", datetime(2026, 11, 20, 2, 30, tzinfo=timezone.utc),
                "2026-11-20T10:30:00+08:00")
    if kind == "choice":
        return field["choices"][0], field["choices"][0], field["choices"][0], field["choices"][0]
    if kind == "multi_choice":
        picked = [field["choices"][0]]
        return picked, picked, picked, picked
    if kind == "boolean":
        return "y", True, True, True
    if kind == "phone":
        return "138 1234 5678", "13812345678", "13812345678", "13812345678"
    if kind == "id_number":
        return "11010519491231002X", "11010519491231002X", "11010519491231002X", "11010519491231002X"
    if kind == "email":
        return "Kefu@Example.com", "kefu@example.com", "kefu@example.com", "kefu@example.com"
    if kind in ("project", "unit", "customer", "user", "department"):
        target = refs[kind]
        return str(target), str(target), target, str(target)
    return None  # attachments: uploads are covered by test_attachments.py


def check_stored(document: dict, field: dict, expected) -> str | None:
    """Why the stored ``document`` does not hold ``expected`` for ``field`` (None when it does)."""
    key = field["key"]
    if field.get("sensitive"):
        if key in document.get("data", {}):
            return f"{key}: sensitive value stored in plain text"
        if not document.get("pii", {}).get(key) or not document.get("bidx", {}).get(key):
            return f"{key}: no ciphertext / blind index stored"
        return None
    stored = document.get("data", {}).get(key)
    if isinstance(expected, Decimal128):
        ok = isinstance(stored, Decimal128) and str(stored) == str(expected)
    else:
        ok = stored == expected and type(stored) is type(expected)
    return None if ok else f"{key} ({field['type']}): stored {stored!r}, expected {expected!r}"


def record_form(client, type_key: str, values: dict) -> dict:
    data = {"csrf_token": csrf_token(client, f"/admin/records/{type_key}/new/")}
    data.update(values)
    return data


def number_pattern(prefix: str) -> str:
    return rf"^{prefix}-\d{{6}}-\d{{4}}$"


# -- a real second web process -------------------------------------------------------

@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict

    @property
    def text(self) -> str:
        return self.body.decode("utf-8-sig")

    def json(self):
        return json.loads(self.body)


class Browser:
    """An HTTP client for a real server: keeps cookies, follows redirects (urllib only, no extra packages)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def request(self, method: str, path: str, *, form: dict | None = None, json_body=None,
                headers: dict | None = None, query: dict | None = None) -> Reply:
        url = self.base_url + path
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query, doseq=True)
        sent_headers = dict(headers or {})
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            sent_headers["Content-Type"] = "application/json"
        elif form is not None:
            body = urllib.parse.urlencode(form, doseq=True).encode("utf-8")
            sent_headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(url, data=body, headers=sent_headers, method=method)
        try:
            with self.opener.open(request, timeout=15) as response:
                return Reply(response.status, response.read(), dict(response.headers))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read(), dict(exc.headers))

    def get(self, path: str, **kwargs) -> Reply:
        return self.request("GET", path, **kwargs)

    def sign_in(self, username: str, password: str) -> None:
        match = CSRF_PATTERN.search(self.get("/login").text)
        assert match, "no CSRF token on the second process's login page"
        reply = self.request("POST", "/login", form={"username": username, "password": password,
                                                      "csrf_token": match.group(1)})
        assert reply.status == 200, reply.text[:500]
        home = self.get("/admin/")
        assert home.status == 200 and 'name="password"' not in home.text, "not signed in on the second process"


@pytest.fixture
def second_process(app_config, seeded, tmp_path):
    """A separate gunicorn (2 workers) on the same database, started after the seed; always terminated."""
    port = free_port()
    env = {**os.environ,
           "MONGODB_URI": app_config["MONGODB_URI"], "MONGODB_DB": app_config["MONGODB_DB"],
           "REDIS_URL": app_config["REDIS_URL"], "SECRET_KEY": app_config["SECRET_KEY"],
           "KEFU_DATA_KEY": app_config["KEFU_DATA_KEY"], "KEFU_LOCALE": app_config["KEFU_LOCALE"],
           "KEFU_TIMEZONE": app_config["KEFU_TIMEZONE"]}
    env.pop("KEFU_EMBEDDED", None)
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "app:create_app()"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        browser = Browser(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "gunicorn exited:\n" + log_path.read_text(errors="replace")
            try:
                if browser.get("/healthz").status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn not healthy in 30 s:\n" + log_path.read_text(errors="replace")
            time.sleep(0.1)
        yield browser
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def eventually(check, timeout: float = SCHEMA_CHANGE_DEADLINE):
    """Call ``check()`` until it returns None (success) or ``timeout`` passes; return the last complaint."""
    deadline = time.monotonic() + timeout
    while True:
        complaint = check()
        if complaint is None or time.monotonic() >= deadline:
            return complaint
        time.sleep(0.1)


def filter_groups(page: str) -> dict:
    match = re.search(r'<div id="filter-groups-data" class="d-none">(.*?)</div>', page, flags=re.S)
    return json.loads(match.group(1)) if match else {}


def column_header(page: str, key: str) -> str | None:
    match = re.search(rf'<th class="column-header col-{key}">(.*?)</th>', page, flags=re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).strip() if match else None


def csv_rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


# == 1. definition validation ====================================================
# Seeding takes ~2 s per test, so each test below runs every case against one
# seeded database and reports all failing cases at once.

NEW_TYPE = {
    "key": "parking", "name": "车位咨询", "name_en": "Parking", "number_prefix": "CW",
    "fields": [
        {"key": "plate", "label": "车牌号", "type": "text", "required": True, "list": True, "search": True,
         "max_length": 20},
        {"key": "kind", "label": "车位类型", "type": "choice", "choices": ["地上", "地下"], "list": True,
         "filter": True},
        {"key": "phone", "label": "联系电话", "type": "phone", "sensitive": True},
    ],
}


def _broken(change) -> dict:
    definition = copy.deepcopy(NEW_TYPE)
    change(definition)
    return definition


# (case, the broken definition, where the API reports the problem, words the Chinese message must contain)
INVALID_DEFINITIONS = [
    ("duplicate field key",
     _broken(lambda d: d["fields"].append({"key": "plate", "label": "车牌", "type": "text"})),
     "fields.4", ["plate", "重复"]),
    ("bad type key",
     _broken(lambda d: d.update(key="Parking-Lot")), "key", ["类型键", "小写字母"]),
    ("bad field key",
     _broken(lambda d: d["fields"].append({"key": "2nd-plate", "label": "副车牌", "type": "text"})),
     "fields.4", ["副车牌", "小写字母"]),
    ("reserved field key",
     _broken(lambda d: d["fields"].append({"key": "status", "label": "车位状态", "type": "text"})),
     "fields.4", ["status", "保留"]),
    ("unknown field type",
     _broken(lambda d: d["fields"].append({"key": "colour", "label": "颜色", "type": "colour"})),
     "fields.4", ["颜色", "colour", "不存在"]),
    ("choice without choices",
     _broken(lambda d: d["fields"].append({"key": "size", "label": "尺寸", "type": "choice"})),
     "fields.4", ["尺寸", "可选项"]),
    ("bad number prefix",
     _broken(lambda d: d.update(number_prefix="cw1")), "number_prefix", ["编号前缀", "大写字母"]),
    ("duplicate number prefix",
     _broken(lambda d: d.update(number_prefix="TS")), "number_prefix", ["TS", "投诉"]),
]

# (case, change to the shipped complaint definition, words the message must contain)
INVALID_REPLACEMENTS = [
    ("duplicate field key", lambda d: d["fields"].append({"key": "owner_name", "label": "业主", "type": "text"}),
     ["owner_name", "重复"]),
    ("bad field key", lambda d: d["fields"].append({"key": "Mood", "label": "心情", "type": "text"}),
     ["心情", "小写字母"]),
    ("reserved field key", lambda d: d["fields"].append({"key": "created_at", "label": "创建", "type": "date"}),
     ["created_at", "保留"]),
    ("unknown field type", lambda d: d["fields"].append({"key": "mood", "label": "心情", "type": "emoji"}),
     ["emoji", "不存在"]),
    ("choice without choices", lambda d: d["fields"].append({"key": "mood", "label": "心情", "type": "choice"}),
     ["心情", "可选项"]),
    ("duplicate number prefix", lambda d: d.update(number_prefix="BX"), ["BX", "报修"]),
    ("bad number prefix", lambda d: d.update(number_prefix="T5"), ["编号前缀", "大写字母"]),
    ("changed type key", lambda d: d.update(key="complaint2"), ["类型键不能修改"]),
]


def test_api_refuses_each_invalid_definition_with_a_chinese_message_and_stores_nothing(api, db):
    failures = {}
    for case, definition, where, words in INVALID_DEFINITIONS:
        response = api("POST", "/api/v1/types", json=definition)
        body = response.get_json() or {}
        error = body.get("error", {})
        message = str(error.get("fields", {}).get(where, ""))
        if response.status_code != 422 or error.get("code") != "validation_failed":
            failures[case] = f"status {response.status_code}: {response.get_data(as_text=True)[:300]}"
        elif "记录类型定义有误" not in error.get("message", "") or not all(w in message for w in words):
            failures[case] = f"message at {where!r} lacks {words}: {error}"
        elif stored_type(db, definition["key"]) is not None or db.record_types.count_documents({}) != SHIPPED_TYPE_COUNT:
            failures[case] = "a definition was stored"
    assert not failures, failures


def test_api_refuses_each_invalid_replacement_and_changes_nothing(api, db):
    before = stored_type(db, "complaint")
    failures = {}
    for case, change, words in INVALID_REPLACEMENTS:
        definition = yaml_definition("complaint")
        change(definition)
        response = api("PUT", "/api/v1/types/complaint", json=definition)
        error = (response.get_json() or {}).get("error", {})
        messages = " ".join([error.get("message", ""), *error.get("fields", {}).values()])
        if response.status_code != 422:
            failures[case] = f"status {response.status_code}: {response.get_data(as_text=True)[:300]}"
        elif not all(word in messages for word in words):
            failures[case] = f"message lacks {words}: {error}"
        elif stored_type(db, "complaint") != before:
            failures[case] = "the stored complaint definition changed"
    assert not failures, failures
    assert stored_type(db, "complaint2") is None


def test_only_admins_may_create_or_replace_types(api, api_client, client, sign_in, db):
    before = stored_type(db, "complaint")
    edited = yaml_definition("complaint")
    edited["name"] = "客户投诉"
    failures = {}
    for username in ("manager", "supervisor", "agent", "handler", "approver"):
        for method, path, body in (("POST", "/api/v1/types", NEW_TYPE), ("PUT", "/api/v1/types/complaint", edited)):
            response = api(method, path, json=body, as_user=username)
            error = (response.get_json() or {}).get("error", {})
            if (response.status_code != 403 or response.mimetype != "application/json"
                    or error.get("code") != "forbidden" or "系统管理员" not in error.get("message", "")):
                failures[f"{username} {method}"] = f"{response.status_code} {response.get_data(as_text=True)[:200]}"
    assert not failures, failures

    anonymous = api_client.post("/api/v1/types", json=NEW_TYPE)
    assert anonymous.status_code == 401 and error_of(anonymous)["code"] == "unauthorized"

    sign_in("manager", DEMO_PASSWORD)
    assert client.get("/admin/record_types/").status_code == 403
    assert client.post("/admin/record_types/new/", data=type_form(NEW_TYPE, "x")).status_code == 403

    assert stored_type(db, "parking") is None
    assert stored_type(db, "complaint") == before


def test_admin_form_refuses_each_invalid_definition_and_stores_nothing(admin_client, db):
    failures = {}
    for case, definition, _where, words in INVALID_DEFINITIONS:
        response = post_type_form(admin_client, definition)
        page = response.get_data(as_text=True)
        shown = flashed_errors(page)
        if response.status_code != 200:
            failures[case] = f"status {response.status_code} → {response.headers.get('Location')}"
        elif case == "unknown field type":
            # The type picker lists the known types only: a forged value is marked on the picker, in Chinese.
            feedback = re.search(r'id="fields-3-type".*?class="invalid-feedback">(.*?)</div>', page, flags=re.S)
            if not feedback or not re.search(r"[\u4e00-\u9fff]", feedback.group(1)):
                failures[case] = "the type picker is not marked invalid with a Chinese message"
        elif not all(word in shown for word in words):
            failures[case] = f"flashed errors lack {words}: {shown!r}"
        if stored_type(db, definition["key"]) is not None or db.record_types.count_documents({}) != SHIPPED_TYPE_COUNT:
            failures[case] = "a definition was stored"
    assert not failures, failures

    # The base of all those cases is valid: the form saves it, flags and options intact.
    response = post_type_form(admin_client, NEW_TYPE)
    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    stored = stored_type(db, "parking")
    assert stored["name"] == "车位咨询" and stored["number_prefix"] == "CW" and stored["updated_by"] == "admin"
    assert [(f["key"], f["type"]) for f in stored["fields"]] == [("plate", "text"), ("kind", "choice"),
                                                                  ("phone", "phone")]
    plate = field_of(stored, "plate")
    assert plate["required"] and plate["list"] and plate["search"] and plate["max_length"] == 20
    assert field_of(stored, "kind")["choices"] == ["地上", "地下"]
    assert field_of(stored, "phone")["sensitive"] is True


def test_admin_form_validation_failure_is_flashed_in_chinese(admin_client, db):
    """A form the admin cannot save (here a forged field type) must not be answered in English."""
    forged = _broken(lambda d: d["fields"].append({"key": "colour", "label": "颜色", "type": "colour"}))
    created = post_type_form(admin_client, forged)
    definition = definition_as_stored(db, "complaint")
    definition["fields"].append({"key": "colour", "label": "颜色", "type": "colour"})
    before = stored_type(db, "complaint")
    edited = post_type_form(admin_client, definition, db=db)

    assert created.status_code == 200 and edited.status_code == 200
    assert stored_type(db, "parking") is None and stored_type(db, "complaint") == before
    shown = {"create": flashed_errors(created.get_data(as_text=True)),
             "edit": flashed_errors(edited.get_data(as_text=True))}
    english = {form: text for form, text in shown.items() if re.search(r"Failed to (create|save) record", text)}
    assert not english, f"English flash messages in the Chinese admin: {english}"


def test_admin_edit_form_refuses_a_duplicate_key_and_changes_nothing(admin_client, db):
    before = stored_type(db, "complaint")
    definition = definition_as_stored(db, "complaint")
    definition["fields"].append({"key": "content", "label": "内容2", "type": "text"})

    response = post_type_form(admin_client, definition, db=db)

    assert response.status_code == 200
    assert "字段键“content”重复" in flashed_errors(response.get_data(as_text=True))
    assert stored_type(db, "complaint") == before


# == 2. a field added in the admin reaches a second, already running process ==========

NEW_FIELD = {"key": "parking_space", "label": "车位编号", "type": "text", "list": True, "filter": True,
             "search": True}


def complaint_values(refs: dict, **extra) -> dict:
    return {"channel": ["来电"], "project": str(refs["project"]), "owner_name": "陈美华", "phone": "13900001111",
            "content": "地下车库渗水", "category": "工程质量", **extra}


def test_field_added_in_admin_reaches_a_running_second_process_within_5_seconds(
        admin_client, api, db, refs, second_process):
    browser = second_process
    browser.sign_in("admin", DEMO_PASSWORD)
    old = api("POST", "/api/v1/records/complaint", json=complaint_values(refs, owner_name="旧记录"))
    assert old.status_code == 201, old.get_data(as_text=True)
    # The second process serves the old definition first (its screens are built and cached).
    for _ in range(4):
        assert 'name="owner_name"' in browser.get("/admin/records/complaint/new/").text
        assert "车位编号" not in browser.get("/admin/records/complaint/").text
    assert "parking_space" not in browser.get("/api/v1/records/complaint").json()["items"][0]

    definition = definition_as_stored(db, "complaint")
    before_fields = copy.deepcopy(stored_type(db, "complaint")["fields"])
    definition["fields"].append(NEW_FIELD)
    saved = post_type_form(admin_client, definition, db=db)
    changed_at = time.monotonic()

    assert saved.status_code == 302, flashed_errors(saved.get_data(as_text=True))
    stored = stored_type(db, "complaint")
    assert stored["version"] == 2
    assert stored["fields"][:-1] == before_fields, "saving through the form changed other fields"
    assert {k: v for k, v in stored["fields"][-1].items() if v not in (False, None, "", [])} == {
        **NEW_FIELD, "active": True}

    def second_process_shows_it():
        for _ in range(4):  # several requests: gunicorn has two workers, each with its own screen cache
            form = browser.get("/admin/records/complaint/new/").text
            if 'name="parking_space"' not in form or "车位编号" not in form:
                return "create form lacks the new field"
            listing = browser.get("/admin/records/complaint/").text
            if column_header(listing, "parking_space") != "车位编号":
                return "list lacks the new column"
            if "车位编号" not in filter_groups(listing):
                return "list filters lack the new field"
            items = browser.get("/api/v1/records/complaint").json()["items"]
            if "parking_space" not in items[0]:
                return "the API's records lack the new field"
            if "车位编号" not in csv_rows(browser.get("/api/v1/records/complaint/export.csv").body)[0]:
                return "the CSV export's header lacks the new field"
        return None

    assert eventually(second_process_shows_it) is None
    assert time.monotonic() - changed_at < SCHEMA_CHANGE_DEADLINE

    # The second process's API accepts and returns the new field; its search, filter and export use it.
    token = browser.request("POST", "/api/v1/auth/token",
                            json_body={"username": "admin", "password": DEMO_PASSWORD}).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    created = browser.request("POST", "/api/v1/records/complaint", headers=bearer,
                              json_body=complaint_values(refs, parking_space="B2-088 蓝湾车位"))
    assert created.status == 201, created.text
    record = created.json()
    assert record["parking_space"] == "B2-088 蓝湾车位"
    assert record_data(db, record["id"])["data"]["parking_space"] == "B2-088 蓝湾车位"

    listed = browser.get("/api/v1/records/complaint", headers=bearer).json()
    assert listed["total"] == 2 and all("parking_space" in item for item in listed["items"])
    by_field = browser.get("/api/v1/records/complaint", headers=bearer, query={"parking_space": "B2-088 蓝湾车位"})
    assert [item["id"] for item in by_field.json()["items"]] == [record["id"]]

    searched = browser.get("/admin/records/complaint/", query={"search": "蓝湾"}).text
    assert record["number"] in searched and old.get_json()["number"] not in searched
    row = re.search(r'<td class="col-parking_space">\s*(.*?)\s*</td>', searched, flags=re.S)
    assert row and row.group(1) == "B2-088 蓝湾车位"

    listing = browser.get("/admin/records/complaint/").text
    eq_filter = next(f for f in filter_groups(listing)["车位编号"] if f["operation"] == "等于")
    filtered = browser.get("/admin/records/complaint/", query={f"flt0_{eq_filter['arg']}": "B2-088 蓝湾车位"}).text
    assert record["number"] in filtered and old.get_json()["number"] not in filtered

    exported = browser.get("/api/v1/records/complaint/export.csv")
    assert exported.status == 200
    rows = csv_rows(exported.body)
    assert "车位编号" in rows[0]
    column = rows[0].index("车位编号")
    values = {r[0]: r[column] for r in rows[1:]}
    assert values == {record["number"]: "B2-088 蓝湾车位", old.get_json()["number"]: ""}


# == 3. a new type is usable at once ===============================================

def test_type_created_through_the_api_is_usable_at_once(api, admin_client, db):
    # The admin screens are built before the type exists.
    assert admin_client.get("/admin/records/complaint/").status_code == 200
    assert admin_client.get("/admin/records/parking/").status_code == 404

    response = api("POST", "/api/v1/types", json=NEW_TYPE)

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["version"] == 1
    stored = stored_type(db, "parking")
    assert stored["number_prefix"] == "CW" and stored["version"] == 1 and stored["updated_by"] == "admin"
    assert [f["key"] for f in stored["fields"]] == ["plate", "kind", "phone"]
    assert "parking" in [t["key"] for t in api("GET", "/api/v1/types").get_json()["items"]]

    listing = admin_client.get("/admin/records/parking/")
    assert listing.status_code == 200
    assert column_header(listing.get_data(as_text=True), "plate") == "车牌号"
    form = admin_client.get("/admin/records/parking/new/").get_data(as_text=True)
    assert all(f'name="{key}"' in form for key in ("plate", "kind", "phone"))

    posted = admin_client.post("/admin/records/parking/new/", data=record_form(
        admin_client, "parking", {"plate": "浙A·12345", "kind": "地下", "phone": "139 0000 2222"}))
    assert posted.status_code == 302, flashed_errors(posted.get_data(as_text=True))
    from_form = db.records.find_one({"type": "parking"})
    assert re.match(number_pattern("CW"), from_form["number"])
    assert from_form["data"] == {"plate": "浙A·12345", "kind": "地下"}
    assert from_form["pii"]["phone"] and from_form["bidx"]["phone"] and "13900002222" not in str(from_form)
    assert from_form["created_by"] == db.users.find_one({"username": "admin"})["_id"]

    created = api("POST", "/api/v1/records/parking", json={"plate": "浙B·54321", "kind": "地上"})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert record_data(db, created.get_json()["id"])["data"] == {"plate": "浙B·54321", "kind": "地上"}
    listed = api("GET", "/api/v1/records/parking").get_json()
    assert listed["total"] == 2
    assert {item["plate"] for item in listed["items"]} == {"浙A·12345", "浙B·54321"}
    assert next(i for i in listed["items"] if i["plate"] == "浙A·12345")["phone"] == "13900002222"


# == 4. disabling or removing a field keeps its values ===============================

def test_disabled_and_removed_fields_keep_their_stored_values(admin_client, api, db, refs):
    created = api("POST", "/api/v1/records/complaint", json=complaint_values(
        refs, demand="希望三日内修复", plan="先行封堵渗水点"))
    assert created.status_code == 201, created.get_data(as_text=True)
    record_id = created.get_json()["id"]

    # Disable 客户诉求 through the admin form (its 启用 box unticked) ...
    definition = definition_as_stored(db, "complaint")
    field_of(definition, "demand")["active"] = False
    response = post_type_form(admin_client, definition, db=db)
    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    # ... and remove 处理方案 from the definition through the API.
    definition = definition_as_stored(db, "complaint")
    definition["fields"] = [f for f in definition["fields"] if f["key"] != "plan"]
    refused = api("PUT", "/api/v1/types/complaint", json=definition)  # the 整改方案确认 deadline still reads it
    assert refused.status_code == 422 and "sla.plan.done_when 的字段“plan”不存在" in refused.get_data(as_text=True)
    definition["sla"] = [clock for clock in definition["sla"] if "plan" not in str(clock.get("when")) + str(
        clock.get("done_when")) + str(clock.get("start"))]
    response = api("PUT", "/api/v1/types/complaint", json=definition)
    assert response.status_code == 200, response.get_data(as_text=True)

    stored = stored_type(db, "complaint")
    assert stored["version"] == 3
    assert field_of(stored, "demand")["active"] is False
    assert field_of(stored, "plan") is not None and field_of(stored, "plan")["active"] is False

    document = record_data(db, record_id)
    assert document["data"]["demand"] == "希望三日内修复" and document["data"]["plan"] == "先行封堵渗水点"

    body = api("GET", f"/api/v1/records/complaint/{record_id}").get_json()
    assert body["demand"] == "希望三日内修复" and body["plan"] == "先行封堵渗水点"

    details = admin_client.get(f"/admin/records/complaint/details/?id={record_id}").get_data(as_text=True)
    assert "已停用字段中保存的值" in details
    stored_only = details.split("已停用字段中保存的值", 1)[1]
    for label, value in (("客户诉求", "希望三日内修复"), ("处理方案", "先行封堵渗水点")):
        assert re.search(rf"<th[^>]*>{label}</th><td>{value}</td>", stored_only), label

    form = admin_client.get("/admin/records/complaint/new/").get_data(as_text=True)
    assert 'name="demand"' not in form and 'name="plan"' not in form
    assert 'name="content"' in form

    refused = api("POST", "/api/v1/records/complaint", json=complaint_values(refs, demand="再提一次"))
    assert refused.status_code == 422 and "已停用" in error_of(refused)["fields"]["demand"]
    assert db.records.count_documents({"type": "complaint"}) == 1


# == 5. type changes: refused with the records that would not convert, else converted ===

READING_TYPE = {
    "key": "meter_reading", "name": "抄表", "number_prefix": "CB",
    "fields": [{"key": "reading", "label": "读数", "type": "text", "list": True, "filter": True},
               {"key": "note", "label": "备注", "type": "textarea"}],
}


def test_type_change_is_refused_while_a_value_would_not_convert(admin_client, api, db):
    assert api("POST", "/api/v1/types", json=READING_TYPE).status_code == 201
    numbers = {}
    for name, reading in (("good", "42"), ("bad", "abc"), ("blank", None)):
        values = {"note": name, **({"reading": reading} if reading else {})}
        response = api("POST", "/api/v1/records/meter_reading", json=values)
        assert response.status_code == 201, response.get_data(as_text=True)
        numbers[name] = response.get_json()
    before_type = stored_type(db, "meter_reading")
    before_records = list(db.records.find({"type": "meter_reading"}, sort=[("_id", 1)]))
    as_integer = copy.deepcopy(READING_TYPE)
    as_integer["fields"][0]["type"] = "integer"

    refused = api("PUT", "/api/v1/types/meter_reading", json=as_integer)

    assert refused.status_code == 422, refused.get_data(as_text=True)
    message = error_of(refused)["message"]
    assert "读数" in message and "无法转换" in message
    assert numbers["bad"]["number"] in message
    assert numbers["good"]["number"] not in message and numbers["blank"]["number"] not in message
    assert "1 条" in error_of(refused)["fields"]["reading"]
    assert stored_type(db, "meter_reading") == before_type
    assert list(db.records.find({"type": "meter_reading"}, sort=[("_id", 1)])) == before_records

    # The admin form refuses it too and changes nothing.
    form_refused = post_type_form(admin_client, as_integer, db=db)
    assert form_refused.status_code == 200
    assert "无法转换" in flashed_errors(form_refused.get_data(as_text=True))
    assert stored_type(db, "meter_reading") == before_type
    assert list(db.records.find({"type": "meter_reading"}, sort=[("_id", 1)])) == before_records


def test_admin_form_type_change_refusal_names_the_records_that_would_not_convert(admin_client, api, db):
    """The admin form must say which records block the change, as the API does (it now shows only a count)."""
    assert api("POST", "/api/v1/types", json=READING_TYPE).status_code == 201
    bad = api("POST", "/api/v1/records/meter_reading", json={"reading": "abc"}).get_json()
    good = api("POST", "/api/v1/records/meter_reading", json={"reading": "42"}).get_json()
    before_type = stored_type(db, "meter_reading")
    as_integer = copy.deepcopy(READING_TYPE)
    as_integer["fields"][0]["type"] = "integer"

    response = post_type_form(admin_client, as_integer, db=db)

    assert response.status_code == 200
    shown = flashed_errors(response.get_data(as_text=True))
    assert stored_type(db, "meter_reading") == before_type
    assert "读数" in shown, f"the refusal does not name the field: {shown!r}"
    assert bad["number"] in shown and good["number"] not in shown, \
        f"the refusal does not list the record that would not convert: {shown!r}"


def test_convertible_type_change_converts_stored_values(api, db):
    assert api("POST", "/api/v1/types", json=READING_TYPE).status_code == 201
    ids = []
    for reading in ("42", " 7 ", "abc"):
        response = api("POST", "/api/v1/records/meter_reading", json={"reading": reading})
        assert response.status_code == 201
        ids.append(response.get_json()["id"])
    fixed = api("PATCH", f"/api/v1/records/meter_reading/{ids[2]}", json={"reading": "1,200", "version": 1})
    assert fixed.status_code == 200, fixed.get_data(as_text=True)
    as_integer = copy.deepcopy(READING_TYPE)
    as_integer["fields"][0]["type"] = "integer"

    response = api("PUT", "/api/v1/types/meter_reading", json=as_integer)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["version"] == 2
    assert field_of(stored_type(db, "meter_reading"), "reading")["type"] == "integer"
    stored = [record_data(db, record_id)["data"]["reading"] for record_id in ids]
    assert stored == [42, 7, 1200] and all(type(value) is int for value in stored)
    listed = api("GET", "/api/v1/records/meter_reading", query={"reading__gte": "10", "sort": "reading"}).get_json()
    assert [item["reading"] for item in listed["items"]] == [42, 1200]



def test_turning_search_on_finds_records_stored_before(api, db):
    """Search reads a stored index; switching a field's ``search`` on rebuilds it for the existing records."""
    assert api("POST", "/api/v1/types", json=READING_TYPE).status_code == 201
    created = api("POST", "/api/v1/records/meter_reading", json={"reading": "1", "note": "水表玻璃破裂"})
    assert created.status_code == 201
    search = {"q": "玻璃破裂"}
    assert api("GET", "/api/v1/records/meter_reading", query=search).get_json()["total"] == 0
    searched = copy.deepcopy(READING_TYPE)
    searched["fields"][1]["search"] = True

    assert api("PUT", "/api/v1/types/meter_reading", json=searched).status_code == 200

    found = api("GET", "/api/v1/records/meter_reading", query=search).get_json()
    assert [item["id"] for item in found["items"]] == [created.get_json()["id"]]
    assert "水表玻璃破裂" in record_data(db, created.get_json()["id"])["search_text"]


def test_admin_form_edits_the_rules_and_refuses_broken_yaml(admin_client, db):
    """Workflow and deadlines are edited in the same admin form, as YAML; a broken box changes nothing."""
    definition = definition_as_stored(db, "consultation")
    definition["sla"][0]["within"] = {"working_days": 2}
    response = post_type_form(admin_client, definition, db)
    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    stored = stored_type(db, "consultation")
    assert stored["sla"][0]["within"] == {"working_days": 2} and stored["version"] == 2

    path = f"/admin/record_types/edit/?id={stored['_id']}"
    data = type_form(definition, csrf_token(admin_client, path))
    data["rules"] = "sla:\n  - key: answer\n    within: {working_days: 2\n"
    page = admin_client.post(path, data=data).get_data(as_text=True)
    assert "流程与规则不是有效的 YAML" in flashed_errors(page)
    data["rules"] = "deadlines: []\n"
    page = admin_client.post(path, data=data).get_data(as_text=True)
    assert "不认识的节：deadlines" in flashed_errors(page)
    assert stored_type(db, "consultation")["version"] == 2

# == 6. every shipped template loads, and takes a record through the form and the API ==

def test_load_types_creates_the_21_shipped_types(runner, db):
    result = runner.invoke(args=["kefu", "load-types"])

    assert result.exit_code == 0, result.output
    assert db.record_types.count_documents({}) == SHIPPED_TYPE_COUNT == len(SHIPPED_KEYS)
    assert sorted(result.output.split(":", 1)[1].strip().split(", ")) == sorted(SHIPPED_KEYS)
    for pack, definition in shipped_definitions():
        stored = stored_type(db, definition["key"])
        assert stored["pack"] == pack and stored["version"] == 1 and stored["active"] is True
        assert [f["key"] for f in stored["fields"]] == [f["key"] for f in definition["fields"]]
        assert stored["number_prefix"] == definition["number_prefix"]
    again = runner.invoke(args=["kefu", "load-types"])
    assert again.exit_code == 0 and "none" in again.output
    assert db.record_types.count_documents({}) == SHIPPED_TYPE_COUNT


def _filled_fields(type_key: str, refs: dict, db) -> list[tuple[dict, tuple]]:
    definition = yaml_definition(type_key)
    levels = definition.get("levels") or {}
    parent = definition.get("parent") or {}
    entries = registered("computed").parse(definition["computed"]) if definition.get("computed") else ()
    computed = {target for entry in entries for target in entry.targets()}

    def sample_of(field):
        if field["key"] == levels.get("field"):  # the top level: no level rule raises it (tests/test_levels.py)
            return (levels["order"][-1],) * 4
        if field["key"] == parent.get("field"):  # the number of a parent record (its pack created some before)
            number = db.records.find_one({"type": parent["type"]}, sort=[("_id", -1)])["number"]
            return (number,) * 4
        return sample_value(field, refs)

    return [(field, sample) for field in definition["fields"]  # the engine fills the computed ones
            if field.get("active", True) and field["key"] not in computed and (sample := sample_of(field)) is not None]


def _create_through_the_form(client, db, type_key: str, refs: dict) -> str | None:
    filled = _filled_fields(type_key, refs, db)
    before = {d["_id"] for d in db.records.find({"type": type_key}, {"_id": 1})}
    response = client.post(f"/admin/records/{type_key}/new/",
                           data=record_form(client, type_key, {f["key"]: s[0] for f, s in filled}))
    if response.status_code != 302:
        page = response.get_data(as_text=True)
        invalid = re.findall(r'class="invalid-feedback">\s*(.*?)\s*<', page, flags=re.S)
        return f"form: status {response.status_code}: {flashed_errors(page)} {invalid}"
    created = [d for d in db.records.find({"type": type_key}) if d["_id"] not in before]
    if len(created) != 1:
        return f"form: {len(created)} records stored"
    document = created[0]
    prefix = stored_type(db, type_key)["number_prefix"]
    problems = [p for f, s in filled if (p := check_stored(document, f, s[2]))]
    if not re.match(number_pattern(prefix), document["number"]):
        problems.append(f"number {document['number']}")
    return f"form: {problems}" if problems else None


def _create_through_the_api(api, db, type_key: str, refs: dict) -> str | None:
    filled = _filled_fields(type_key, refs, db)
    response = api("POST", f"/api/v1/records/{type_key}", json={f["key"]: s[1] for f, s in filled})
    if response.status_code != 201:
        return f"api: status {response.status_code}: {response.get_data(as_text=True)[:400]}"
    body = response.get_json()
    document = record_data(db, body["id"])
    problems = [p for f, s in filled if (p := check_stored(document, f, s[2]))]
    problems += [f"{f['key']}: API returned {body.get(f['key'])!r}, expected {s[3]!r}"
                 for f, s in filled if body.get(f["key"]) != s[3]]
    if document["number"] != body["number"]:
        problems.append("number differs")
    return f"api: {problems}" if problems else None


PACKS = sorted({pack for pack, _definition in shipped_definitions()})


@pytest.mark.parametrize("pack", PACKS)
def test_every_shipped_type_takes_a_record_through_the_form_and_the_api(admin_client, api, db, refs, pack):
    failures = {}
    keys = [d["key"] for p, d in shipped_definitions() if p == pack]
    for type_key in keys:
        problems = [p for p in (_create_through_the_form(admin_client, db, type_key, refs),
                                _create_through_the_api(api, db, type_key, refs)) if p]
        if problems:
            failures[type_key] = problems
        elif db.records.count_documents({"type": type_key}) != 2:
            failures[type_key] = "expected exactly the two records"
    assert not failures, failures


# == 7. loading the shipped types again keeps an admin's edits ======================

def test_load_types_never_overwrites_an_admins_edit(admin_client, runner, db):
    definition = definition_as_stored(db, "complaint")
    field_of(definition, "owner_name")["label"] = "投诉人姓名"
    definition["name"] = "客户投诉"
    response = post_type_form(admin_client, definition, db=db)
    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    edited = stored_type(db, "complaint")
    db.record_types.delete_one({"key": "notice"})  # a shipped type that is missing gets created again

    result = runner.invoke(args=["kefu", "load-types"])

    assert result.exit_code == 0, result.output
    assert "notice" in result.output and "complaint" not in result.output
    assert stored_type(db, "complaint") == edited
    assert field_of(edited, "owner_name")["label"] == "投诉人姓名" and edited["name"] == "客户投诉"
    assert stored_type(db, "notice") is not None
    assert db.record_types.count_documents({}) == SHIPPED_TYPE_COUNT
    assert "投诉人姓名" in admin_client.get("/admin/records/complaint/new/").get_data(as_text=True)


def test_a_loaded_definition_is_shared_until_the_stored_one_changes(app, seeded, db):
    """``get_record_type`` builds a RecordType once per stored version: the same object while nothing changed,
    a new one as soon as the document differs — saved here or written by any other process."""
    from kefu.core.errors import NotFound
    from kefu.records.definitions import save_definition
    from kefu.records.types import get_record_type

    with app.test_request_context():
        first = get_record_type("consultation")
        assert get_record_type("consultation") is first
        definition = first.to_dict()
        definition["fields"].append({"key": "shared_probe", "label": "共享探针", "type": "text"})
        saved = save_definition(definition, key="consultation", by="admin")
        assert saved is not first and first.field("shared_probe") is None  # the shared one was not edited
        after_save = get_record_type("consultation")
        assert after_save is not first and after_save.field("shared_probe").label == "共享探针"
        assert after_save.version == db.record_types.find_one({"key": "consultation"})["version"] == first.version + 1

        db.record_types.update_one({"key": "consultation"}, {"$set": {"name": "咨询（另一进程改）"}})
        assert get_record_type("consultation").name == "咨询（另一进程改）"
        db.record_types.update_one({"key": "consultation"}, {"$set": {"active": False}})
        with pytest.raises(NotFound, match="没有记录类型“consultation”"):
            get_record_type("consultation")
        assert get_record_type("consultation", active_only=False).active is False


# == the sections of a definition ===================================================

def test_the_json_schema_of_every_section_is_served(api):
    response = api("GET", "/api/v1/types/schema")

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["order"] == ["workflow", "computed", "levels", "approvals", "callback", "sla", "reminders", "report",
                             "routing", "spawn", "loyalty", "parent", "knowledge"]
    schemas = body["sections"]
    sla = schemas["sla"]
    assert sla["title"] == "时限" and sla["type"] == "array"
    clock = sla["$defs"]["Clock"]
    assert {"key", "name", "within"} <= set(clock["required"]) and "by_level" in clock["properties"]
    assert "from" in schemas["approvals"]["$defs"]["Band"]["properties"]
    assert set(schemas["report"]["properties"]) == {"name_field", "issue_fields"}


def test_a_shape_error_names_the_path_in_chinese(api, db):
    definition = yaml_definition("complaint")
    definition["sla"][1]["within"] = {"hours": "三"}
    definition["levels"]["rules"][4]["units"] = True
    definition["report"] = {"name_field": "category"}

    response = api("PUT", "/api/v1/types/complaint", json=definition)

    fields = error_of(response)["fields"]
    assert "sla 第 2 个的 within.hours 应为整数" in fields["sla"]
    assert "levels.rules 第 5 条的 units 应为整数" in fields["levels"]
    assert "report.name_field 应为本类型的文本字段" in fields["report"]
    assert "Input should" not in str(fields)


def test_a_section_is_parsed_once_per_definition_version(api, db, app):
    from kefu.records.sections import parsed
    from kefu.records.types import get_record_type

    with app.app_context():
        first = parsed(get_record_type("complaint"), "levels")
        assert parsed(get_record_type("complaint"), "levels") is first
        assert first.top == "重大" and first.rules[0].value == 20000

        definition = yaml_definition("complaint")
        definition["levels"]["order"] = ["一般", "重要", "重大", "特大"]
        definition["fields"] = [{**f, "choices": [*f["choices"], "特大"]} if f["key"] == "level" else f
                                for f in definition["fields"]]
        assert api("PUT", "/api/v1/types/complaint", json=definition).status_code == 200

        changed = parsed(get_record_type("complaint"), "levels")
        assert changed is not first and changed.top == "特大"


def test_start_up_writes_the_guessed_report_settings_of_types_stored_before_the_section(api, runner, db):
    """A type stored before ``report:`` existed (no ``report`` key) gets, at the next start (``flask kefu prepare``),
    what the monthly report guessed for it then — once, written out even when empty; one with settings keeps them."""
    survey = {"key": "survey", "name": "满意度调查", "number_prefix": "DC", "fields": [
        {"key": "visitor", "label": "来访人", "type": "text"},
        {"key": "customer_name", "label": "客户姓名", "type": "text"},
        {"key": "project", "label": "项目", "type": "project"},
        {"key": "category", "label": "类别", "type": "choice", "choices": ["服务", "质量"]}]}
    for definition in (survey, NEW_TYPE):
        assert api("POST", "/api/v1/types", json=definition).status_code == 201
    earlier = ("survey", "parking", "complaint")
    db.record_types.update_many({"key": {"$in": list(earlier)}}, {"$unset": {"report": ""}})
    db.record_types.update_one({"key": "consultation"}, {"$set": {"report": {"name_field": None}}})
    versions = {key: stored_type(db, key)["version"] for key in (*earlier, "consultation")}

    result = runner.invoke(args=["kefu", "prepare"])

    assert result.exit_code == 0, result.output
    written = re.search(r"monthly report settings written for earlier record types: (.*)", result.output)
    assert written and set(written.group(1).split(", ")) == set(earlier)
    assert stored_type(db, "survey")["report"] == {"name_field": "customer_name",
                                                   "issue_fields": ["project", "category"]}
    assert stored_type(db, "parking")["report"] == {"name_field": None, "issue_fields": []}
    assert stored_type(db, "complaint")["report"] == yaml_definition("complaint")["report"]
    assert stored_type(db, "consultation")["report"] == {"name_field": None}
    for key in earlier:
        migrated = stored_type(db, key)
        assert migrated["version"] == versions[key] + 1 and migrated["updated_by"] == "migration"
    again = runner.invoke(args=["kefu", "prepare"])
    assert again.exit_code == 0 and "report settings" not in again.output
    assert {key: stored_type(db, key)["version"] for key in versions} == {
        **{key: versions[key] + 1 for key in earlier}, "consultation": versions["consultation"]}
    cleared = {**yaml_definition("complaint"), "report": None}
    assert api("PUT", "/api/v1/types/complaint", json=cleared).status_code == 200
    assert "report" not in stored_type(db, "complaint")
    assert runner.invoke(args=["kefu", "prepare"]).exit_code == 0
    assert "report" not in stored_type(db, "complaint")  # the migration ran once: an admin's clearing stays


def test_a_type_may_not_take_a_key_an_api_route_uses(api, db):
    response = api("POST", "/api/v1/types", json={**NEW_TYPE, "key": "schema", "number_prefix": "SCH"})

    assert response.status_code == 422
    assert "类型键“schema”是系统保留字" in error_of(response)["fields"]["key"]
    assert stored_type(db, "schema") is None


def test_a_stored_definition_the_section_models_refuse_answers_a_message_not_a_traceback(admin_client, api, runner,
                                                                                          db):
    """A definition stored before the stricter section models (here a ``workflow.rework`` outside its statuses,
    which the old checks let through) answers the API and the admin with a Chinese message naming the type and the
    problem — never a traceback — and every start names it."""
    db.record_types.update_one({"key": "complaint"}, {"$set": {"workflow.rework": "返工中"}, "$inc": {"version": 1}})
    problem = "workflow.rework“返工中”不在 statuses 中"

    response = api("POST", "/api/v1/records/complaint", json={"title": "楼道灯不亮"})

    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "definition_invalid"
    assert "记录类型“投诉”的 workflow 设置无法使用" in error["message"] and problem in error["message"]
    assert db.records.count_documents({"type": "complaint"}) == 0

    page = admin_client.get("/admin/records/complaint/new/")
    text = page.get_data(as_text=True)
    assert page.status_code == 500 and problem in text and "Traceback" not in text
    assert admin_client.get("/admin/records/consultation/new/").status_code == 200  # the other types work on

    result = runner.invoke(args=["kefu", "prepare"])

    assert result.exit_code == 0, result.output
    assert f"record type complaint cannot be used until an admin fixes its definition: workflow: {problem}" \
        in result.output
    assert "record type consultation" not in result.output


def test_optional_keys_written_empty_mean_their_default_as_they_always_have(api, db):
    """``when:`` with nothing after it is null in YAML: an optional key left empty is read as its default, so a
    definition that saved before the sections had models still saves, and the type keeps working."""
    definition = yaml_definition("complaint")
    clock = definition["sla"][1]
    clock.update({"by_level": None, "when": None, "done_when": None, "name_en": 5})
    clock.pop("level_field", None)
    definition["approvals"]["bands"][0].update({"note": None, "from": None})

    response = api("PUT", "/api/v1/types/complaint", json=definition)

    assert response.status_code == 200, response.get_json()
    stored = stored_type(db, "complaint")
    assert stored["sla"][1]["when"] is None and stored["approvals"]["bands"][0]["note"] is None
    assert api("GET", "/api/v1/records/complaint").status_code == 200
    assert api("GET", "/api/v1/types/complaint").get_json()["sla"][1]["name_en"] == 5


def test_a_transition_to_no_status_is_refused_on_save_but_a_stored_one_still_works(api, db):
    """The check that transition targets are statuses came with the section models: saving such a definition is
    refused, but one stored before keeps working (the target is never offered)."""
    definition = yaml_definition("repair")
    source = definition["workflow"]["statuses"][0]
    definition["workflow"]["transitions"][source] = [*definition["workflow"]["transitions"][source], "归档"]

    refused = api("PUT", "/api/v1/types/repair", json=definition)

    assert refused.status_code == 422
    assert f"workflow.transitions.{source} 中的“归档”不在 statuses 中" in error_of(refused)["fields"]["workflow"]
    db.record_types.update_one({"key": "repair"}, {"$set": {
        f"workflow.transitions.{source}": definition["workflow"]["transitions"][source]}, "$inc": {"version": 1}})
    assert api("GET", "/api/v1/records/repair").status_code == 200
    assert api("GET", "/api/v1/types/repair").status_code == 200
