"""The navigation bar's menus (admin_views.navigation): rendered once per permissions, language, page and record
types, and never shown to the wrong person: each check below runs after the other cases have filled the cache.
A role lists only the screens its capabilities open and the record types it may read; an edited role shows at
once."""
from __future__ import annotations

import re

import pytest

from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token

MENU = re.compile(r'<ul class="nav navbar-nav mr-auto">(.*?)</ul>\s*<ul class="nav navbar-nav navbar-right', re.S)


def menu_of(client, path: str = "/admin/") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    match = MENU.search(response.get_data(as_text=True))
    assert match, f"no navigation bar on {path}"
    return match.group(1)


def active_items(menu: str) -> list[str]:
    return re.findall(r'<li class="active">\s*<a class="nav-link[^"]*" href="([^"]+)"', menu)


@pytest.fixture
def people(app, seeded):
    """A signed-in client each for the demo agent, supervisor, approver and admin."""
    clients = {}
    for username in ("agent", "supervisor", "approver", "admin"):
        client = app.test_client()
        response = client.post("/login", data={"username": username, "password": DEMO_PASSWORD,
                                               "csrf_token": csrf_token(client, "/login")})
        assert response.status_code == 302, username
        clients[username] = client
    return clients


def test_each_role_sees_its_own_menu_whatever_was_shown_before(people):
    for _round in range(2):  # the second round is served from what the first rendered
        agent, supervisor, approver, admin = (menu_of(people[name])
                                              for name in ("agent", "supervisor", "approver", "admin"))
        assert 'href="/admin/overdue/"' in agent and 'href="/admin/records/complaint/"' in agent
        assert "记录类型" not in agent and "月度分析" not in agent and "客户档案" in agent
        assert 'href="/admin/overdue/"' in supervisor and "月度分析" in supervisor and "记录类型" not in supervisor
        assert "逾期督办" not in approver and "客户档案" not in approver and "月度分析" not in approver
        assert 'href="/admin/records/complaint/"' in approver  # what waits on their approval title
        assert 'href="/admin/overdue/"' in admin and "记录类型" in admin and "工作日历" in admin


def test_the_page_shown_is_marked_active(people):
    supervisor = people["supervisor"]
    assert active_items(menu_of(supervisor, "/admin/overdue/")) == ["/admin/overdue/"]
    assert active_items(menu_of(supervisor, "/admin/tasks/")) == ["/admin/tasks/"]
    assert active_items(menu_of(supervisor, "/admin/overdue/")) == ["/admin/overdue/"]


def test_the_menu_speaks_the_language_of_each_user(people, db):
    agent, supervisor = people["agent"], people["supervisor"]
    assert "投诉" in menu_of(supervisor)
    supervisor.get("/locale/en")
    english = menu_of(supervisor)
    assert "Overdue follow-up" in english and "逾期督办" not in english
    assert db.users.find_one({"username": "supervisor"})["locale"] == "en"
    chinese = menu_of(agent)
    assert "投诉" in chinese and "Home" not in chinese


def test_a_new_record_type_is_in_the_menu_at_once_and_a_disabled_one_leaves_it(app, people, admin, db):
    from kefu.records.definitions import set_type_active

    agent = people["agent"]
    assert "维修回访" not in menu_of(agent)
    response = people["admin"].post("/api/v1/types", headers=admin, json={
        "key": "repair_visit", "name": "维修回访", "number_prefix": "WXHF",
        "fields": [{"key": "note", "label": "说明", "type": "text"}]})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert db.record_types.find_one({"key": "repair_visit"})["active"] is True
    assert 'href="/admin/records/repair_visit/"' in menu_of(agent)

    with app.app_context():
        set_type_active("repair_visit", False, by="admin")
    assert db.record_types.find_one({"key": "repair_visit"})["active"] is False
    assert "维修回访" not in menu_of(agent)


def test_a_record_type_the_role_may_not_read_leaves_its_menu_at_once(app, people, db):
    from kefu.org.roles import AccessRole, TypeGrant

    agent = people["agent"]
    assert 'href="/admin/records/complaint/"' in menu_of(agent)
    with app.app_context():
        role = AccessRole.objects(key="agent").first()
        role.grants.append(TypeGrant(record_type="complaint", actions=[], scope="own"))
        role.save()
    assert [g["record_type"] for g in db.roles.find_one({"key": "agent"})["grants"]] == ["*", "complaint"]
    menu = menu_of(agent)
    assert 'href="/admin/records/complaint/"' not in menu and 'href="/admin/records/consultation/"' in menu
    refused = agent.get("/admin/records/complaint/")
    assert refused.status_code == 403 and "您没有“查看”“投诉”的权限" in refused.get_data(as_text=True)
    assert 'href="/admin/records/complaint/"' in menu_of(people["supervisor"])  # another role, unchanged
