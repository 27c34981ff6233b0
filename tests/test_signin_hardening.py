"""Hardened sign-in through the real HTTP routes: rate limits counted in the real Redis, server-side sessions that
signing out (or a password change, or a disabled account) ends, people's own API tokens, CSRF on cookie-signed-in
API writes, and the security headers of pages, API answers and exports."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from redis import Redis

from kefu.core.clock import utcnow
from kefu.org import users
from kefu.org.sessions import IDLE_LIFETIME
from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token

ADDRESS_A, ADDRESS_B = "10.0.0.1", "10.0.0.2"
TOO_MANY = "尝试次数过多"
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def attempt(client, username, password, address=ADDRESS_A):
    """One sign-in on the login page from ``address``."""
    token = csrf_token(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def token_attempt(client, username, password, address=ADDRESS_A, **extra):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password, **extra},
                       environ_base={"REMOTE_ADDR": address})


def issue(client, username, name=None):
    response = token_attempt(client, username, "correct-horse", name=name)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["token"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def signed_in_browser(app, username, password="correct-horse"):
    browser = app.test_client()
    assert attempt(browser, username, password).status_code == 302
    return browser


@pytest.fixture
def app_with(app_config):
    """An app built with settings of the test's choosing (instead of the ``app`` fixture), cleaned up after."""
    from app import create_app
    from kefu.core.db import get_database

    yield lambda **settings: create_app({**app_config, **settings})
    database = get_database()
    database.client.drop_database(database.name)
    Redis.from_url(app_config["REDIS_URL"]).flushdb()


def assert_too_many(response):
    """429 with a Retry-After of at most the window (15 minutes) and the Chinese message."""
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    return response


# --- rate limits ---------------------------------------------------------------------------------------------


def test_five_failures_for_a_name_from_one_address_are_limited_there_only(app, client, make_user, db):
    user = make_user("agent1")
    for _ in range(5):
        response = attempt(client, "agent1", "wrong-password")
        assert response.status_code == 401 and "用户名或密码错误" in response.get_data(as_text=True)
    page = assert_too_many(attempt(client, "agent1", "correct-horse")).get_data(as_text=True)
    assert TOO_MANY in page and "分钟后再试" in page
    assert 'value="agent1"' in page and "correct-horse" not in page  # the form again, without the password
    assert client.get("/admin/").status_code == 302  # the right password did not get through from there
    assert db.sessions.count_documents({}) == 0

    # Typing someone's name five times from one's own address does not lock them out: they sign in from theirs.
    elsewhere = app.test_client()
    assert attempt(elsewhere, "agent1", "correct-horse", ADDRESS_B).status_code == 302
    assert elsewhere.get("/admin/").status_code == 200
    assert db.sessions.count_documents({"user": user.pk}) == 1
    # Another name from the first address is not limited by agent1's count.
    make_user("agent2")
    assert attempt(app.test_client(), "agent2", "correct-horse").status_code == 302
    # The account itself records nothing: no lock to wait out.
    assert not {"failed_logins", "locked_until"} & set(db.users.find_one({"_id": user.pk}))


def test_counts_live_in_redis_without_the_login_name(app, client, make_user):
    make_user("agent1")
    attempt(client, "agent1", "wrong-password")
    keys = [key.decode() for key in Redis.from_url(app.config["REDIS_URL"]).keys("*kefu-sign-in*")]
    assert keys and not any("agent1" in key for key in keys)


def test_successful_sign_ins_use_up_nothing(app, make_user):
    make_user("agent1")
    for _ in range(8):
        assert attempt(app.test_client(), "agent1", "correct-horse").status_code == 302


def test_known_and_unknown_names_get_the_same_answers(client, make_user):
    make_user("agent1")
    known = [attempt(client, "agent1", "wrong-password") for _ in range(6)]
    unknown = [attempt(client, "nobody1", "wrong-password") for _ in range(6)]

    def message(response):
        return re.findall(r'role="alert">([^<]+)<', response.get_data(as_text=True))

    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401] * 5 + [429]
    assert [message(r) for r in known] == [message(r) for r in unknown]

    api_known = token_attempt(client, "agent1", "wrong", ADDRESS_B)
    api_unknown = token_attempt(client, "nobody1", "wrong", ADDRESS_B)
    assert api_known.status_code == api_unknown.status_code == 401
    assert api_known.get_json() == api_unknown.get_json()


def test_token_endpoint_is_limited_together_with_the_login_page(client, make_user, db):
    make_user("agent1")
    for _ in range(3):
        assert attempt(client, "agent1", "wrong-password").status_code == 401
    for _ in range(2):
        assert token_attempt(client, "agent1", "wrong-password").status_code == 401
    response = assert_too_many(token_attempt(client, "agent1", "correct-horse"))
    error = response.get_json()["error"]
    assert error["code"] == "too_many_requests" and TOO_MANY in error["message"] and error["fields"] == {}
    assert db.api_tokens.count_documents({}) == 0
    assert token_attempt(client, "agent1", "correct-horse", ADDRESS_B).status_code == 201


def test_one_address_trying_many_names_is_limited(app_with):
    app = app_with(KEFU_SIGN_IN_LIMIT_PER_ADDRESS="8")
    users.create_user("agent1", "correct-horse", ["agent"])
    client = app.test_client()
    for number in range(8):
        assert token_attempt(client, f"guess{number:03d}", "wrong-password").status_code == 401
    assert_too_many(token_attempt(client, "agent1", "correct-horse"))
    assert_too_many(attempt(client, "agent1", "correct-horse"))
    assert token_attempt(client, "agent1", "correct-horse", ADDRESS_B).status_code == 201


def test_forwarded_for_names_the_client_only_behind_a_trusted_proxy(app, app_with, make_user):
    make_user("agent1")
    client = app.test_client()
    for number in range(5):  # the header is not trusted: every attempt comes from the one address
        forged = {"X-Forwarded-For": f"192.0.2.{number}"}
        assert client.post("/api/v1/auth/token", json={"username": "agent1", "password": "wrong"},
                           headers=forged).status_code == 401
    assert_too_many(client.post("/api/v1/auth/token", json={"username": "agent1", "password": "wrong"},
                                headers={"X-Forwarded-For": "192.0.2.99"}))

    proxied = app_with(KEFU_TRUSTED_PROXIES="1").test_client()
    for _ in range(5):
        assert proxied.post("/api/v1/auth/token", json={"username": "agent1", "password": "wrong"},
                            headers={"X-Forwarded-For": "192.0.2.1"}).status_code == 401
    assert proxied.post("/api/v1/auth/token", json={"username": "agent1", "password": "correct-horse"},
                        headers={"X-Forwarded-For": "192.0.2.2"}).status_code == 201


def test_a_limit_below_one_refuses_to_start(app_config):
    from app import create_app
    from kefu.core.config import ConfigError

    with pytest.raises(ConfigError, match="KEFU_SIGN_IN_LIMIT_PER_NAME='0' should be at least 1"):
        create_app({**app_config, "KEFU_SIGN_IN_LIMIT_PER_NAME": "0"})


# --- sessions ------------------------------------------------------------------------------------------------


def test_sign_out_ends_the_session_on_the_server(app, client, make_user, db):
    user = make_user("agent1")
    assert attempt(client, "agent1", "correct-horse").status_code == 302
    stored = db.sessions.find_one({"user": user.pk})
    assert stored["expires"] - stored["created_at"] == IDLE_LIFETIME
    copied = client.get_cookie("session").value
    assert stored["_id"] not in copied  # the cookie holds the key, the database only its digest

    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/admin/")})
    assert response.status_code == 302
    assert db.sessions.count_documents({}) == 0

    thief = app.test_client()
    thief.set_cookie("session", copied)
    response = thief.get("/admin/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert thief.get("/api/v1/me").status_code == 401


def test_a_session_left_idle_ends(client, make_user, db):
    make_user("agent1")
    assert attempt(client, "agent1", "correct-horse").status_code == 302
    expiry = [index for index in db.sessions.index_information().values() if index["key"] == [("expires", 1)]]
    assert expiry and expiry[0]["expireAfterSeconds"] == 0  # MongoDB removes ended sessions itself
    db.sessions.update_many({}, {"$set": {"expires": utcnow() - timedelta(seconds=1)}})
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("change", ["password", "disable"])
def test_a_password_change_or_a_disabled_account_ends_every_session_and_token(app, make_user, db, change):
    user = make_user("agent1")
    other = make_user("agent2")
    office, home, bystander = (signed_in_browser(app, "agent1"), signed_in_browser(app, "agent1"),
                               signed_in_browser(app, "agent2"))
    client = app.test_client()
    token, their_token = issue(client, "agent1"), issue(client, "agent2")
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert db.sessions.count_documents({"user": user.pk}) == 2

    if change == "password":
        users.set_password(user, "a-new-secret-1")
    else:
        users.set_active(user, False)

    for browser in (office, home):
        assert browser.get("/admin/").status_code == 302
        assert browser.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert db.sessions.count_documents({"user": user.pk}) == 0
    assert db.api_tokens.find_one({"user": user.pk})["revoked"] is True
    # Nobody else's.
    assert bystander.get("/admin/").status_code == 200
    assert db.sessions.count_documents({"user": other.pk}) == 1
    assert client.get("/api/v1/me", headers=bearer(their_token)).status_code == 200
    if change == "password":
        assert attempt(app.test_client(), "agent1", "a-new-secret-1").status_code == 302


def test_an_upgrade_forgets_the_old_lockout_state(app, make_user, db):
    make_user("agent1")
    db.users.update_one({"username": "agent1"}, {"$set": {"failed_logins": [], "locked_until": None,
                                                           "session_version": 3}})
    with app.app_context():
        assert users.forget_lockout_state() == 1
        assert users.forget_lockout_state() == 0
    assert not {"failed_logins", "locked_until", "session_version"} & set(db.users.find_one({"username": "agent1"}))
    assert attempt(app.test_client(), "agent1", "correct-horse").status_code == 302


# --- own API tokens ------------------------------------------------------------------------------------------


def test_people_list_and_revoke_their_own_tokens(client, make_user, db):
    make_user("agent1")
    make_user("agent2")
    hotline, forms = issue(client, "agent1", "热线对接"), issue(client, "agent1", "微信表单")
    theirs = issue(client, "agent2", "别人的")

    listed = client.get("/api/v1/auth/tokens", headers=bearer(hotline))
    assert listed.status_code == 200
    items = listed.get_json()["items"]
    assert [item["name"] for item in items] == ["微信表单", "热线对接"]
    assert set(items[0]) == {"id", "name", "created_at", "expires_at", "last_used_at", "revoked"}
    assert hotline not in listed.get_data(as_text=True)
    assert not any(stored["digest"] in listed.get_data(as_text=True) for stored in db.api_tokens.find())

    their_id = str(db.api_tokens.find_one({"name": "别人的"})["_id"])
    response = client.delete(f"/api/v1/auth/tokens/{their_id}", headers=bearer(hotline))
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert client.delete("/api/v1/auth/tokens/not-an-id", headers=bearer(hotline)).status_code == 404
    assert db.api_tokens.find_one({"name": "别人的"})["revoked"] is False
    assert client.get("/api/v1/me", headers=bearer(theirs)).status_code == 200

    forms_id = next(item["id"] for item in items if item["name"] == "微信表单")
    response = client.delete(f"/api/v1/auth/tokens/{forms_id}", headers=bearer(hotline))
    assert response.status_code == 200 and response.get_json()["revoked"] is True
    assert db.api_tokens.find_one({"name": "微信表单"})["revoked"] is True
    assert client.get("/api/v1/me", headers=bearer(forms)).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(hotline)).status_code == 200


def test_token_name_too_long_names_the_field(client, make_user, db):
    make_user("agent1")
    response = token_attempt(client, "agent1", "correct-horse", name="长" * 61)
    assert response.status_code == 422 and "name" in response.get_json()["error"]["fields"]
    assert db.api_tokens.count_documents({}) == 0


def test_the_token_screen_shows_people_their_own_and_whoever_keeps_the_system_everyone_s(app, client, make_user,
                                                                                           db):
    from kefu.org.roles import save_role

    make_user("agent1")
    make_user("agent2")
    with app.app_context():  # not the shipped admin role: a role a company added, with manage_system
        save_role({"key": "it_keeper", "name": "运维", "capabilities": ["manage_system"]}, set())
    make_user("boss", role="it_keeper")
    issue(client, "agent1", "热线对接")
    issue(client, "agent2", "别人的")
    theirs = db.api_tokens.find_one({"name": "别人的"})["_id"]

    agent = signed_in_browser(app, "agent1")
    page = agent.get("/admin/api_tokens/").get_data(as_text=True)
    assert "热线对接" in page and "别人的" not in page
    assert agent.get(f"/admin/api_tokens/details/?id={theirs}").status_code == 302  # as if it did not exist
    token = csrf_token(agent, "/admin/api_tokens/")
    agent.post("/admin/api_tokens/action/", data={"action": "revoke", "rowid": [str(theirs)], "csrf_token": token})
    assert db.api_tokens.find_one({"_id": theirs})["revoked"] is False
    own = db.api_tokens.find_one({"name": "热线对接"})["_id"]
    agent.post("/admin/api_tokens/action/", data={"action": "revoke", "rowid": [str(own)], "csrf_token": token})
    assert db.api_tokens.find_one({"_id": own})["revoked"] is True

    admin = signed_in_browser(app, "boss")
    page = admin.get("/admin/api_tokens/").get_data(as_text=True)
    assert "热线对接" in page and "别人的" in page
    token = csrf_token(admin, "/admin/api_tokens/")
    admin.post("/admin/api_tokens/action/", data={"action": "revoke", "rowid": [str(theirs)], "csrf_token": token})
    assert db.api_tokens.find_one({"_id": theirs})["revoked"] is True


# --- CSRF for the API ----------------------------------------------------------------------------------------


def test_cookie_signed_in_api_writes_need_the_csrf_token(app, client, make_user, db):
    make_user("agent1")
    issue(client, "agent1", "热线对接")
    token_id = str(db.api_tokens.find_one({})["_id"])
    browser = signed_in_browser(app, "agent1")

    response = browser.delete(f"/api/v1/auth/tokens/{token_id}")
    assert response.status_code == 400 and response.is_json
    error = response.get_json()["error"]
    assert error["code"] == "csrf_failed" and "X-CSRFToken" in error["message"] and "令牌" in error["message"]
    assert browser.delete(f"/api/v1/auth/tokens/{token_id}", headers={"X-CSRFToken": "forged"}).status_code == 400
    assert db.api_tokens.find_one({})["revoked"] is False
    assert browser.get("/api/v1/auth/tokens").status_code == 200  # reading needs no token

    meta_token = META_CSRF.search(browser.get("/admin/").get_data(as_text=True)).group(1)
    response = browser.delete(f"/api/v1/auth/tokens/{token_id}", headers={"X-CSRFToken": meta_token})
    assert response.status_code == 200
    assert db.api_tokens.find_one({})["revoked"] is True


def test_bearer_token_writes_need_no_csrf_token(client, make_user, db):
    make_user("agent1")
    token = issue(client, "agent1")
    token_id = str(db.api_tokens.find_one({})["_id"])
    assert client.delete(f"/api/v1/auth/tokens/{token_id}", headers=bearer(token)).status_code == 200


# --- headers ------------------------------------------------------------------------------------------------


def assert_security_headers(response):
    headers = response.headers
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in \
        policy.split("script-src")[1].split(";")[0]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"


def test_pages_api_answers_and_exports_carry_the_security_headers(app, client, seeded, supervisor):
    assert_security_headers(client.get("/login"))
    assert_security_headers(client.get("/api/v1/me", headers=supervisor))
    assert_security_headers(client.get("/api/v1/me"))  # an error too
    export = client.get("/api/v1/records/complaint/export.csv", headers=supervisor)
    assert export.status_code == 200
    assert_security_headers(export)
    with client.get("/static/kefu_admin.js") as static:
        assert static.status_code == 200 and static.headers.get("Cache-Control") != "no-store"
        assert static.headers["X-Content-Type-Options"] == "nosniff"


def _inline_script_problems(page: str, nonce: str) -> list[str]:
    """Scripts the CSP would block or that come from elsewhere, and inline event handlers."""
    problems = []
    for tag, body in re.findall(r"(<script\b[^>]*>)(.*?)</script>", page, re.S):
        source = re.search(r'\ssrc="([^"]+)"', tag)
        if source:
            if not source.group(1).startswith("/"):
                problems.append(f"script from elsewhere: {tag}")
        elif 'type="application/json"' not in tag and f'nonce="{nonce}"' not in tag:
            problems.append(f"inline script without the nonce: {tag}{body[:60]}")
    problems += re.findall(r"<[^>]*\son[a-z]+=\"[^>]*>", page)
    return problems


def test_admin_pages_run_only_our_own_scripts(app, seeded):
    browser = app.test_client()
    token = csrf_token(browser, "/login")
    assert browser.post("/login", data={"username": "admin", "password": DEMO_PASSWORD,
                                        "csrf_token": token}).status_code == 302
    for path in ("/admin/", "/admin/departments/", "/admin/departments/new/", "/admin/deliveries/",
                 "/admin/users/", "/admin/api_tokens/", "/admin/records/complaint/", "/admin/records/complaint/new/",
                 "/admin/overdue/", "/admin/reports/", "/admin/customers/"):
        response = browser.get(path)
        assert response.status_code == 200, path
        nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
        assert _inline_script_problems(response.get_data(as_text=True), nonce) == [], path


def test_session_cookie_is_secure_when_the_base_url_is_https(app_with):
    app = app_with(KEFU_BASE_URL="https://kefu.example.com")
    users.create_user("agent1", "correct-horse", ["agent"])
    response = attempt(app.test_client(), "agent1", "correct-horse")
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_session_cookie_is_not_secure_over_plain_http(client, make_user):
    make_user("agent1")
    response = attempt(client, "agent1", "correct-horse")
    assert "Secure" not in response.headers["Set-Cookie"]
