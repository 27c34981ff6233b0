"""The simulated people of ``bench/load_bench.py``: threads on loopback, each one person with their own session.

Each person signs in first (the login form; the session cookie is kept) and, for the API, holds a Bearer token.
Then, until the run's end, they pick an action by the mix's weights, do it as a browser does (every request the
action takes, one after the other) and think for 0.5–1.5 s. A browser's requests: after any HTML page, the parts it
loads by itself (``data-kefu-load`` — the counts panel of 逾期督办); a create is its form and then the POST.

Bounded and self-stopping: no action starts after the deadline, each request waits at most ``REQUEST_TIMEOUT`` s,
and the threads are joined with a timeout. Only loopback addresses are ever asked.
"""
from __future__ import annotations

import random
import re
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

REQUEST_TIMEOUT = 30.0
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
LOADED_PARTS = re.compile(r'data-kefu-load="([^"]+)"')
THINK_SECONDS = (0.5, 1.5)


@dataclass
class Step:
    """One request of an action: ``kind`` names it in the figures; ``check`` says whether the answer is right."""

    kind: str
    method: str
    path: str
    data: dict | None = None
    api: bool = False  # sent with the Bearer token and no cookie
    with_csrf: bool = False  # a form's POST: with the CSRF token of the page the step before fetched
    expect: tuple[int, ...] = (200,)


@dataclass
class Person:
    """One simulated person: a signed-in browser (``web``) and an API client (``api``, Bearer token)."""

    username: str
    password: str
    web: requests.Session = field(default_factory=requests.Session)
    api: requests.Session = field(default_factory=requests.Session)
    rng: random.Random = field(default_factory=random.Random)


@dataclass
class Sample:
    kind: str
    started: float
    ms: float
    ok: bool
    status: int


def sign_in(base: str, person: Person, *, token: bool = True) -> None:
    """Sign ``person`` in through the login form (keeps the cookie) and, with ``token``, get an API token."""
    page = person.web.get(f"{base}/login", timeout=REQUEST_TIMEOUT)
    csrf = CSRF.search(page.text)
    answer = person.web.post(f"{base}/login", data={"username": person.username, "password": person.password,
                                                    "csrf_token": csrf.group(1) if csrf else ""},
                             allow_redirects=False, timeout=REQUEST_TIMEOUT)
    if answer.status_code != 302:
        raise RuntimeError(f"sign-in of {person.username} failed: {answer.status_code}")
    if token:
        issued = person.api.post(f"{base}/api/v1/auth/token", json={"username": person.username,
                                                                      "password": person.password},
                                 timeout=REQUEST_TIMEOUT)
        if issued.status_code != 201:
            raise RuntimeError(f"token of {person.username} refused: {issued.status_code} {issued.text[:200]}")
        person.api.headers["Authorization"] = f"Bearer {issued.json()['token']}"


class Run:
    """One load run: ``people`` acting on ``base`` with ``mix`` (``{action: (weight, plan)}``, where ``plan(person)``
    returns the action's steps) for ``seconds``, thinking between ``think`` seconds after each action."""

    def __init__(self, base: str, people: list[Person], mix: dict[str, tuple[float, Callable]], seconds: float,
                 think: tuple[float, float] = THINK_SECONDS):
        self.base, self.people, self.mix, self.seconds, self.think = base, people, mix, seconds, think
        self.samples: list[Sample] = []
        self.errors: list[str] = []  # the first 20, to show
        self.retried = 0  # GETs sent again after a reset connection (``_send``)
        # Filled in by whoever measured the servers meanwhile: CPU seconds of gunicorn and of mongod, the load average.
        self.server_cpu = self.mongod_cpu = self.load = float("nan")
        self._lock = threading.Lock()
        self.started = self.ended = 0.0

    def go(self) -> "Run":
        self.started = time.monotonic()
        deadline = self.started + self.seconds
        threads = [threading.Thread(target=self._act, args=(person, deadline), daemon=True) for person in self.people]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=self.seconds + 3 * REQUEST_TIMEOUT)
        self.ended = time.monotonic()
        return self

    def _act(self, person: Person, deadline: float) -> None:
        names = list(self.mix)
        weights = [self.mix[name][0] for name in names]
        time.sleep(person.rng.uniform(0, max(self.think[1], 0.2)))  # people do not all click at the same instant
        while time.monotonic() < deadline:
            action = person.rng.choices(names, weights)[0]
            page = ""
            for step in self.mix[action][1](person):
                page = self._request(person, step, page)
                if page is None:
                    break  # the rest of the action needs this answer
            time.sleep(person.rng.uniform(*self.think))

    def _request(self, person: Person, step: Step, previous: str) -> str | None:
        """Send ``step`` (a form's POST with the CSRF token of the ``previous`` page); the answer's text, None when
        it failed."""
        client = person.api if step.api else person.web
        data = step.data
        started = time.monotonic()
        try:
            if step.with_csrf:
                data = {**(data or {}), "csrf_token": CSRF.search(previous).group(1)}
            answer = self._send(client, step, data)
        except (requests.RequestException, AttributeError) as exc:
            self._record(step.kind, started, 0, False, f"{step.kind}: {type(exc).__name__}: {exc}")
            return None
        ok = answer.status_code in step.expect
        self._record(step.kind, started, answer.status_code, ok,
                     None if ok else f"{step.kind} {step.path}: {answer.status_code} {answer.text[:300]!r}")
        if not ok:
            return None
        if "text/html" in answer.headers.get("Content-Type", ""):
            for part in LOADED_PARTS.findall(answer.text):
                self._request(person, Step(f"{step.kind} (part)", "GET", urlsplit(part.replace("&amp;", "&")).path
                                           + _query(part)), "")
        return answer.text

    def _send(self, client: requests.Session, step: Step, data):
        """The answer to ``step``. A GET whose connection was reset is sent once more, as browsers do (a kept-alive
        connection the server closed just as the request went out); counted in ``retried``."""
        url = f"{self.base}{step.path}"
        try:
            return client.request(step.method, url, data=data, allow_redirects=False, timeout=REQUEST_TIMEOUT)
        except requests.ConnectionError:
            if step.method != "GET":
                raise
            with self._lock:
                self.retried += 1
            return client.request(step.method, url, allow_redirects=False, timeout=REQUEST_TIMEOUT)

    def _record(self, kind: str, started: float, status: int, ok: bool, error: str | None = None) -> None:
        sample = Sample(kind, started, (time.monotonic() - started) * 1000, ok, status)
        with self._lock:
            self.samples.append(sample)
            if error and len(self.errors) < 20:
                self.errors.append(error)

    # -- figures ------------------------------------------------------------------------------------------

    def error_count(self) -> int:
        """Failed requests in the whole run, warm-up included."""
        return sum(not sample.ok for sample in self.samples)

    def measured(self, warmup: float = 0.0) -> list[Sample]:
        """The samples of requests started after ``warmup`` seconds."""
        return [s for s in self.samples if s.started - self.started >= warmup]

    def table(self, warmup: float = 0.0) -> dict[str, dict]:
        """Per request kind and overall: count, requests/s, errors, p50/p95/p99 ms."""
        samples = self.measured(warmup)
        seconds = max(1e-9, self.ended - self.started - warmup)
        kinds = sorted({s.kind for s in samples})
        rows = {kind: figures([s for s in samples if s.kind == kind], seconds) for kind in kinds}
        rows["all"] = figures(samples, seconds)
        return rows


def _query(url: str) -> str:
    query = urlsplit(url.replace("&amp;", "&")).query
    return f"?{query}" if query else ""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")


def figures(samples: list[Sample], seconds: float) -> dict:
    times = [s.ms for s in samples]
    return {"n": len(samples), "rps": len(samples) / seconds, "errors": sum(not s.ok for s in samples),
            "p50": statistics.median(times) if times else float("nan"), "p95": percentile(times, 0.95),
            "p99": percentile(times, 0.99)}
