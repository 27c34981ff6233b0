"""The API reference page (/api/docs): Swagger UI from our own static files renders the live OpenAPI document for a
signed-in person, under the site's Content-Security-Policy, with nothing fetched from another host."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from seed.demo import DEMO_PASSWORD
from tests.browser_support import CHROMIUM, LiveServer, PageProblems

TIMEOUT_MS = 30_000  # Swagger UI lays out about 200 operations: seconds on a busy machine


def test_the_page_sends_a_visitor_to_sign_in_and_serves_its_script_from_our_files(client, seeded, sign_in):
    response = client.get("/api/docs")
    assert response.status_code == 302 and "/login?next=/api/docs" in response.headers["Location"]

    sign_in("admin", DEMO_PASSWORD)
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'data-spec-url="/api/v1/openapi.json"' in html
    assert '<script src="/static/kefu_api_docs.js"></script>' in html and "<script>" not in html
    assert "http://" not in html and "https://" not in html  # no CDN
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    document = client.get("/api/v1/openapi.json")  # the page reads it with the session cookie
    assert document.status_code == 200 and document.get_json()["openapi"] == "3.1.0"


def test_swagger_ui_renders_the_document_in_a_real_browser_under_the_csp(app, seeded, tmp_path):
    if not CHROMIUM.is_file():
        pytest.skip(f"browser test skipped: {CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser test skipped: playwright is missing")
    problems = PageProblems()
    with LiveServer(app) as server, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = browser.new_context(base_url=server.url, locale="zh-CN", viewport={"width": 1280, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            problems.watch(context)
            hosts = set()
            context.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
            page = context.new_page()
            page.goto("/api/docs")
            page.wait_for_url("**/login**")
            page.fill("#username", "admin")
            page.fill("#password", DEMO_PASSWORD)
            page.click("form button[type=submit]")
            page.wait_for_url("**/api/docs")
            page.locator(".swagger-ui .info .title", has_text="kefu 客服管理 API").wait_for()
            page.get_by_role("heading", name="投诉").first.click()  # a tag's operations, collapsed at first
            approval = "/api/v1/records/complaint/{record_id}/approval"
            page.locator(".opblock-summary-path", has_text=approval).first.wait_for()
            page.screenshot(path=tmp_path / "api_docs.png")
            context.close()
        finally:
            browser.close()
    assert hosts <= {urlsplit(server.url).netloc}, hosts
    problems.assert_none()
