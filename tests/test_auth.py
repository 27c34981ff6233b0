"""Sign-in, sign-out, CSRF and role checks, through the real HTTP routes (rate limits, server-side sessions and
security headers: test_signin_hardening)."""
from __future__ import annotations

import pytest

from tests.conftest import csrf_token


def test_admin_redirects_to_login_when_signed_out(client):
    for path in ("/admin/", "/admin/customers/", "/admin/users/", "/admin/projects/new/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/login" in response.headers["Location"]


def test_api_answers_json_401_when_signed_out(client):
    for path in ("/api/v1/me", "/api/v1/anything/else"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.json["error"]["code"] == "unauthorized"


def test_login_page_is_chinese_by_default(client):
    page = client.get("/login").get_data(as_text=True)
    assert "客服管理系统" in page and "登录名" in page and "密码" in page


def test_sign_in_and_out(client, make_user, sign_in, db):
    make_user("agent1")
    response = sign_in("agent1")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
    home = client.get("/admin/")
    assert home.status_code == 200
    assert "欢迎" in home.get_data(as_text=True)
    stored = db.users.find_one({"username": "agent1"})
    assert stored["last_login_at"] is not None
    assert "correct-horse" not in str(stored) and stored["password_hash"].startswith("scrypt:")

    token = csrf_token(client, "/admin/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 302


def test_session_cookie_is_httponly_and_samesite_lax(client, make_user, sign_in):
    make_user("agent1")
    sign_in("agent1")
    cookie = next(c for c in client._cookies.values() if c.key == "session")
    assert cookie.http_only and cookie.same_site == "Lax"


def test_wrong_password_says_so_without_a_count_down(client, make_user, sign_in, db):
    make_user("agent1")
    response = sign_in("agent1", "wrong-password")
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert "用户名或密码错误" in page and "再错" not in page and "锁定" not in page
    stored = db.users.find_one({"username": "agent1"})
    assert not {"failed_logins", "locked_until"} & set(stored)  # nothing about failures is kept on the account


def test_unknown_user_gets_the_same_message(client, sign_in):
    response = sign_in("nobody", "whatever1")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.get_data(as_text=True)


def test_login_without_csrf_token_is_refused(client, make_user, db):
    make_user("agent1")
    response = client.post("/login", data={"username": "agent1", "password": "correct-horse"})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302
    assert db.users.find_one({"username": "agent1"}).get("last_login_at") is None


def test_admin_form_without_csrf_token_is_refused(client, make_user, sign_in, db):
    make_user("boss", role="admin")
    sign_in("boss")
    response = client.post("/admin/departments/new/", data={"name": "测试部", "sort_order": "5"})
    assert response.status_code == 200  # the form is shown again with the error
    assert db.departments.find_one({"name": "测试部"}) is None
    token = csrf_token(client, "/admin/departments/new/")
    client.post("/admin/departments/new/", data={"name": "测试部", "sort_order": "5", "csrf_token": token})
    assert db.departments.find_one({"name": "测试部"}) is not None


def test_role_without_access_gets_a_403_page_that_says_so(client, make_user, sign_in):
    make_user("agent1", role="agent")
    sign_in("agent1")
    response = client.get("/admin/users/")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "系统设置（用户、角色、部门、记录类型、日历、通知）" in page and "客服专员" in page  # what it needs, who they are
    # The agent's own screens open.
    assert client.get("/admin/customers/").status_code == 200


def test_disabled_user_cannot_sign_in_and_loses_the_session(client, make_user, sign_in):
    from kefu.org.users import set_active

    user = make_user("agent1")
    sign_in("agent1")
    assert client.get("/admin/").status_code == 200
    set_active(user, False)
    assert client.get("/admin/").status_code == 302
    response = sign_in("agent1")
    assert response.status_code == 401 and "已停用" in response.get_data(as_text=True)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/",
                                    "javascript:alert(1)"])
def test_open_redirect_is_refused(client, make_user, target):
    make_user("agent1")
    token = csrf_token(client, "/login")
    response = client.post("/login", query_string={"next": target}, data={
        "username": "agent1", "password": "correct-horse", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")


def test_a_path_on_this_site_is_followed_after_login(client, make_user):
    make_user("agent1")
    token = csrf_token(client, "/login")
    response = client.post("/login", query_string={"next": "/admin/customers/"}, data={
        "username": "agent1", "password": "correct-horse", "csrf_token": token})
    assert response.headers["Location"].endswith("/admin/customers/")


def test_english_on_request(client, make_user, sign_in, db):
    make_user("agent1")
    sign_in("agent1")
    client.get("/locale/en")
    page = client.get("/admin/customers/").get_data(as_text=True)
    assert "Customers" in page or "Customer" in page
    assert db.users.find_one({"username": "agent1"})["locale"] == "en"
