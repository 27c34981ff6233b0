"""The API is a complete contract: the OpenAPI document names every route, is valid OpenAPI 3.1
(openapi-spec-validator), and the running server keeps it under fuzzing (schemathesis).

One live server (werkzeug in a thread, its own database with the demo data and demo records) serves the whole
module. Schemathesis generates requests for every operation of the document the server itself answers — valid
ones and invalid ones — sends them with the demo admin's bearer token (a second, smaller pass as the demo agent
meets the 403s and the scopes) and checks each answer: no server error, the status, content type, headers and
body as documented. Every failure is collected and the test fails listing them; the counts are printed
(``pytest -s``) for the closing note.
"""
from __future__ import annotations

import time
import uuid
from collections import Counter
from types import SimpleNamespace

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from pymongo import MongoClient
from redis import Redis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_headers_conformance, response_schema_conformance, status_code_conformance,
)

from seed.demo import DEMO_PASSWORD
from tests.browser_support import LiveServer
from tests.conftest import TEST_DATA_KEY, TEST_SECRET_KEY, load_snapshot

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
SCHEMA_CHECKS = {"response_schema_conformance", "status_code_conformance", "content_type_conformance",
                 "response_headers_conformance"}

# Examples per operation and generation mode: the admin pass covers every operation (about 270: each of the 29
# record types has its own paths, all served by the same code, which the deep types below exercise most), the agent
# pass the record types' reads and writes again as a role with less. Together they run in about a minute and a half
# on two busy cores.
ADMIN_EXAMPLES = 4
AGENT_EXAMPLES = 3
# Types whose operations get more examples (they have demo records, approvals, levels and callbacks).
DEEP_TYPES = ("complaint", "repair", "consultation")
DEEP_EXAMPLES = 20


@pytest.fixture(scope="module")
def live_api(mongo_server, redis_server, demo_records_snapshot):
    """The app on a free port with ``kefu seed``'s data, the calendar and the demo records; bearer headers of the
    demo admin and agent, and ids of real records and notifications to aim at."""
    from app import create_app

    name = f"kefu_contract_{uuid.uuid4().hex[:12]}"
    app = create_app({"TESTING": True, "MONGODB_URI": mongo_server.uri, "MONGODB_DB": name,
                      "REDIS_URL": redis_server.url, "SECRET_KEY": TEST_SECRET_KEY, "KEFU_DATA_KEY": TEST_DATA_KEY,
                      "KEFU_LOCALE": "zh_Hans_CN", "KEFU_TIMEZONE": "Asia/Shanghai"})
    client = MongoClient(mongo_server.uri)
    database = client[name]
    load_snapshot(database, demo_records_snapshot)
    try:
        with LiveServer(app) as server:
            headers = {who: _bearer(server.url, who) for who in ("admin", "agent")}
            records = {}
            for document in database.records.find({}, {"type": 1}):
                records.setdefault(document["type"], []).append(str(document["_id"]))
            yield SimpleNamespace(app=app, url=server.url, headers=headers, records=records, database=database,
                                  notifications=[str(n["_id"]) for n in database.notifications.find({}, {"_id": 1})])
    finally:
        client.drop_database(name)
        client.close()
        Redis.from_url(redis_server.url).flushdb()


def _bearer(url: str, username: str) -> dict:
    response = requests.post(f"{url}/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD},
                             timeout=30)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _document(live_api) -> dict:
    response = requests.get(f"{live_api.url}/api/v1/openapi.json", headers=live_api.headers["admin"], timeout=60)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    return response.json()


def test_the_document_is_valid_openapi_and_names_every_route(live_api):
    document = _document(live_api)
    validate(document)  # openapi-spec-validator: raises naming the first problem
    assert document["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item
                  if method != "parameters"}
    types = [t["key"] for t in requests.get(f"{live_api.url}/api/v1/types", headers=live_api.headers["admin"],
                                            timeout=30).json()["items"]]
    routes = [rule for rule in live_api.app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")]
    for rule in routes:
        for type_key in (types if rule.rule.startswith("/api/v1/records/<type_key>") else [None]):
            path = _as_openapi_path(rule.rule, type_key)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method) in documented, f"{method} {path} is not in the OpenAPI document"
    assert len(documented) >= len(routes)

    security = document["components"]["securitySchemes"]
    assert security["bearer"]["type"] == "http" and security["bearer"]["scheme"] == "bearer"
    assert security["session"]["in"] == "cookie" and security["csrf"]["name"] == "X-CSRFToken"
    create = document["paths"]["/api/v1/records/complaint"]["post"]
    assert {"201", "401", "403", "422", "503"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in create["parameters"])
    listing = {p["name"] for p in document["paths"]["/api/v1/records/complaint"]["get"]["parameters"]}
    assert {"view", "overdue", "due_soon", "page", "per_page", "sort", "status", "status__in", "level__ne",
            "received_at__gte", "phone__empty"} <= listing
    assert {"content", "phone", "level"} <= set(document["components"]["schemas"]["complaint_input"]["required"])
    responses = document["components"]["responses"]
    assert responses["Unavailable"]["headers"]["Retry-After"]["required"] is True
    assert responses["MethodNotAllowed"]["headers"]["Allow"]["required"] is True


def _as_openapi_path(rule: str, type_key: str | None) -> str:
    path = rule.replace("<type_key>", type_key) if type_key else rule
    return path.replace("<path:", "<").replace("<", "{").replace(">", "}")


def test_a_path_with_another_method_answers_405_with_allow(live_api):
    """Every documented path, asked with a method no route takes there: 405, ``Allow`` naming those it has."""
    document = _document(live_api)
    admin = live_api.headers["admin"]
    adapter = live_api.app.url_map.bind("localhost")
    asked = 0
    for path, item in document["paths"].items():
        methods = {m.upper() for m in item if m != "parameters"}
        concrete = path.replace("{record_id}", "0" * 24).replace("{fmt}", "csv").replace("{kind}", "project")
        concrete = concrete.replace("{type_key}", "complaint")
        for part in ("{key}", "{token_id}", "{job_id}", "{notification_id}", "{task_id}", "{view_id}"):
            concrete = concrete.replace(part, "x" * 24)
        # A method no route takes here (DELETE /views/<type>/default is routed: to the view keyed "default").
        other = next((m for m in ("DELETE", "PATCH", "PUT", "POST", "GET")
                      if m not in methods and adapter.match(concrete, method=m)[0] == "api.not_found"), None)
        if other is None:
            continue
        asked += 1
        response = requests.request(other, live_api.url + concrete, headers=admin, json={}, timeout=30)
        assert response.status_code == 405, (other, concrete, response.status_code, response.text[:300])
        allowed = {m.strip() for m in response.headers["Allow"].split(",")} - {"HEAD", "OPTIONS"}
        # Its documented methods, and any another route takes at the same URL (PUT /types/schema: the type keyed
        # "schema", which cannot exist).
        routed = {m for m in ("GET", "POST", "PUT", "PATCH", "DELETE")
                  if adapter.match(concrete, method=m)[0] != "api.not_found"}
        assert methods <= allowed == routed, (concrete, response.headers["Allow"])
        assert response.json()["error"]["code"] == "method_not_allowed"
    assert asked >= len(document["paths"]) - 5
    response = requests.request("TRACE", f"{live_api.url}/api/v1/me", headers=admin, timeout=30)
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


class Fuzzed:
    """What one fuzzing pass saw: examples per operation and the failures, by check."""

    def __init__(self):
        self.examples = Counter()
        self.planned = Counter()  # examples asked for, per operation
        self.statuses = Counter()
        self.failures: list[tuple[str, str, str]] = []  # (operation, check, message)

    def failed(self, label: str, exc: BaseException) -> None:
        for failure in (exc.exceptions if isinstance(exc, FailureGroup) else [exc]):
            check = getattr(failure, "title", type(failure).__name__) if isinstance(failure, Failure) else repr(failure)
            self.failures.append((label, _check_name(failure), str(failure)[:1500] or check))

    def starved(self) -> list[str]:
        """The operations that got fewer than half the examples asked for."""
        return [label for label, count in self.planned.items() if self.examples[label] < max(1, count // 2)]

    def report(self, who: str) -> str:
        by_check = Counter(check for _label, check, _message in self.failures)
        return (f"schemathesis as {who}: {len(self.examples)} operations, {sum(self.examples.values())} examples; "
                f"server errors: {by_check['not_a_server_error']}, schema violations: "
                f"{sum(n for check, n in by_check.items() if check in SCHEMA_CHECKS)}, other: "
                f"{sum(n for check, n in by_check.items() if check not in SCHEMA_CHECKS | {'not_a_server_error'})}; "
                f"answers by status: {dict(sorted(self.statuses.items()))}")


def _check_name(failure) -> str:
    """The name of the check a failure came from (schemathesis keeps it on the failure's class or title)."""
    names = {"ServerError": "not_a_server_error", "ContentTypeServerError": "not_a_server_error",
             "JsonSchemaError": "response_schema_conformance", "MalformedJson": "response_schema_conformance",
             "UndefinedStatusCode": "status_code_conformance", "UndefinedContentType": "content_type_conformance",
             "MalformedMediaType": "content_type_conformance", "MissingContentType": "content_type_conformance",
             "MissingHeaders": "response_headers_conformance"}
    return names.get(type(failure).__name__, type(failure).__name__)


def fuzz(live_api, who: str, examples_for) -> Fuzzed:
    """Run every operation of the live document as ``who``; ``examples_for(operation)`` is how many examples per
    generation mode (0: skip the operation). Real record ids are offered beside generated ones."""
    schema = schemathesis.openapi.from_url(f"{live_api.url}/api/v1/openapi.json", headers=live_api.headers[who])
    seen = Fuzzed()
    headers = live_api.headers[who]
    for result in schema.get_all_operations():
        operation = result.ok()
        count = examples_for(operation)
        if not count:
            continue
        label = operation.label
        seen.planned[label] = count
        strategy = st.one_of(*(_strategies(operation, live_api)))

        # Only the checks about our own speed and size are off (a live server is slow for hypothesis); one that says
        # generation had to throw most cases away stays on, and ``starved`` below catches operations left untried.
        @settings(max_examples=count, deadline=None, database=None, derandomize=True, phases=[Phase.generate],
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.large_base_example])
        @given(case=strategy)
        def run(case):
            seen.examples[label] += 1
            response = case.call(headers=headers, timeout=60)
            seen.statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (Failure, FailureGroup) as exc:
                seen.failed(label, exc)

        run()
    return seen


def _strategies(operation, live_api):
    """Positive and negative cases; for a record's paths also positive ones aimed at a real record."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    parameters = {p.name for p in operation.path_parameters}
    if "record_id" in parameters:
        type_key = operation.path.split("/")[4]
        ids = live_api.records.get(type_key)
        if ids:
            strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters={"record_id": ids[0]}))
    if "notification_id" in parameters and live_api.notifications:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE,
                                                path_parameters={"notification_id": live_api.notifications[0]}))
    return strategies


def _admin_examples(operation) -> int:
    parts = operation.path.split("/")
    if len(parts) > 4 and parts[3] == "records":
        return DEEP_EXAMPLES if parts[4] in DEEP_TYPES else ADMIN_EXAMPLES
    return DEEP_EXAMPLES


def _agent_examples(operation) -> int:
    parts = operation.path.split("/")
    if len(parts) > 4 and parts[3] == "records":
        return AGENT_EXAMPLES if parts[4] in DEEP_TYPES else 0
    return AGENT_EXAMPLES


@pytest.mark.parametrize("who, examples_for", [("admin", _admin_examples), ("agent", _agent_examples)])
def test_fuzzing_finds_no_server_error_and_no_schema_violation(live_api, who, examples_for):
    """As the admin every operation; as the agent the record types' again, meeting the 403s and the scopes."""
    started = time.monotonic()
    seen = fuzz(live_api, who, examples_for)
    print(f"\n{seen.report(who)} in {time.monotonic() - started:.0f} s")
    assert not seen.failures, _listed(seen)
    assert not seen.starved(), f"operations that got too few examples: {seen.starved()}"


def _listed(seen: Fuzzed) -> str:
    distinct = {}
    for label, check, message in seen.failures:
        distinct.setdefault((label, check, message.split("\n")[0]), message)
    return f"{len(seen.failures)} failures, {len(distinct)} distinct:\n" + "\n\n".join(
        f"[{check}] {label}\n{message}" for (label, check, _first), message in list(distinct.items())[:40])
