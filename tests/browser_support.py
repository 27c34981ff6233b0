"""What the browser tests (tests/test_browser.py) need around Playwright: the app served over real HTTP from a
thread, and a watch on each page for what a person would not see but a broken screen shows — console errors,
uncaught script errors and Content-Security-Policy violations (a script or style the policy blocked).

Playwright itself is imported by the test module (which skips, saying why, when it or Chromium is missing), so this
module only takes its objects as arguments.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from seed.demo import DEMO_PASSWORD

# Debian's chromium (apt-get install chromium fonts-noto-cjk): Playwright drives it instead of a downloaded build.
CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 15_000  # one step of a journey (a page load, a wait for a script's result) on a busy machine

# Reports every CSP violation to the test through the binding below; added to a context, it runs in every page
# and after every navigation before the page's own scripts.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (event) {
  window.kefuCspViolation(event.violatedDirective + " blocked " + (event.blockedURI || "inline") +
                          " at " + event.sourceFile + ":" + event.lineNumber);
});
"""


class QuietRequestHandler(WSGIRequestHandler):
    """Logs errors only: a failing journey's report shows what went wrong, not every static file it loaded."""

    def log_request(self, code="-", size="-") -> None:
        pass


class LiveServer:
    """``app`` served on a free port of 127.0.0.1 by werkzeug's threaded server, in a daemon thread; a context
    manager that shuts it down (stop it before the app's database is dropped)."""

    def __init__(self, app):
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="kefu-live-server", daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@dataclass
class PageProblems:
    """What went wrong in a browser context's pages, collected as it happens."""

    console_errors: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def watch(self, context) -> None:
        """Collect from every page ``context`` opens (call before opening any)."""
        context.expose_function("kefuCspViolation", self._csp_violation)
        context.add_init_script(CSP_LISTENER)
        context.on("page", self._watch_page)

    def _csp_violation(self, text: str) -> None:
        self.csp_violations.append(text)

    def _watch_page(self, page) -> None:
        page.on("console", self._console_message)
        page.on("pageerror", lambda error: self.script_errors.append(f"{error} ({page.url})"))

    def _console_message(self, message) -> None:
        source = message.location.get("url") or ""
        # The browser asks for /favicon.ico by itself (no page links it): its 404 is not a page's error.
        if message.type == "error" and urlsplit(source).path != "/favicon.ico":
            self.console_errors.append(f"{message.text} ({source})")

    def assert_none(self) -> None:
        """Fail naming every problem seen so far."""
        problems = ([f"CSP violation: {text}" for text in self.csp_violations]
                    + [f"console error: {text}" for text in self.console_errors]
                    + [f"script error: {text}" for text in self.script_errors])
        assert not problems, "the browser reported:\n" + "\n".join(problems)


def skip_without_browser():
    """Playwright's sync API for a browser test module, called at its top: the whole module is skipped, saying why,
    where Debian's chromium or the playwright package is missing (.ci/run installs chromium when it can)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"browser tests skipped: {CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)",
                    allow_module_level=True)
    return pytest.importorskip("playwright.sync_api", reason="browser tests skipped: the playwright package is "
                               "missing (pip install -r requirements.txt)")


def signed_in_page(new_context, username: str):
    """A new context's page signed in as ``username`` (a demo user) through the login form, on the home page."""
    page = new_context().new_page()
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/admin/")
    return page


def success_message(page) -> str:
    alert = page.locator(".alert-success")
    alert.first.wait_for()
    return alert.first.inner_text()
