"""Per-process copies of the pick lists (kefu.core.versioned_cache): the process that writes sees the edit at once,
another process after its next version check, and no database is answered from another's copy."""
from __future__ import annotations

import re

from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token


def options_of(page: str, select_id: str) -> list[str]:
    select = re.search(rf'<select[^>]*id="{select_id}"[^>]*>(.*?)</select>', page, re.S).group(1)
    return re.findall(r"<option[^>]*>([^<]*)</option>", select)


def test_another_process_sees_a_change_after_its_next_version_check(app, db):
    from kefu.core.versioned_cache import NamedCache

    loads = []

    def load():
        loads.append(1)
        return tuple(d["name"] for d in db.departments.find(sort=[("name", 1)]))

    now = [1000.0]
    writer = NamedCache("probe", load)
    other_process = NamedCache("probe", load, max_age=2.0, clock=lambda: now[0])
    with app.app_context():
        db.departments.insert_one({"name": "甲"})
        assert other_process.get() == ("甲",) and writer.get() == ("甲",) and len(loads) == 2
        db.departments.insert_one({"name": "乙"})
        writer.changed()
        assert db.cache_versions.find_one({"_id": "probe"})["version"] == 1
        assert writer.get() == ("乙", "甲")          # the writing process: at once
        now[0] += 1.0
        assert other_process.get() == ("甲",)        # checked less than 2 s ago: no query
        now[0] += 1.5
        assert other_process.get() == ("乙", "甲")   # the version moved: loaded again
        loads.clear()
        now[0] += 5.0
        assert other_process.get() == ("乙", "甲") and loads == []  # the version did not move: no load


def test_each_database_has_its_own_copy(app, app_config, db):
    from app import create_app
    from kefu.core.db import get_database
    from kefu.core.versioned_cache import NamedCache

    names = NamedCache("probe", lambda: [d["name"] for d in get_database().departments.find()])
    with app.app_context():
        db.departments.insert_one({"name": "客服中心"})
        assert names.get() == ["客服中心"]
    # One connection per process: the next app (another database, as the next test has) replaces it.
    other = create_app({**app_config, "MONGODB_DB": app_config["MONGODB_DB"] + "_other"})
    try:
        with other.app_context():
            assert get_database().name.endswith("_other") and names.get() == []
            get_database().client.drop_database(get_database().name)
    finally:
        create_app(app_config)  # this test's database again, which the app fixture drops


def test_a_department_added_or_renamed_in_the_admin_shows_on_the_overdue_page_at_once(app, client, seeded, db):
    admin, supervisor = app.test_client(), client
    for person, username in ((admin, "admin"), (supervisor, "supervisor")):
        response = person.post("/login", data={"username": username, "password": DEMO_PASSWORD,
                                               "csrf_token": csrf_token(person, "/login")})
        assert response.status_code == 302
    assert "法务专班" not in options_of(supervisor.get("/admin/overdue/").get_data(as_text=True), "flt-department")

    response = admin.post("/admin/departments/new/", data={
        "csrf_token": csrf_token(admin, "/admin/departments/new/"), "name": "法务专班", "sort_order": "5",
        "active": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    stored = db.departments.find_one({"name": "法务专班"})
    assert stored is not None and stored["active"] is True
    assert "法务专班" in options_of(supervisor.get("/admin/overdue/").get_data(as_text=True), "flt-department")

    response = admin.post(f"/admin/departments/edit/?id={stored['_id']}", data={
        "csrf_token": csrf_token(admin, f"/admin/departments/edit/?id={stored['_id']}"), "name": "法务专班",
        "sort_order": "5"})  # the 启用 box unticked
    assert response.status_code == 302, response.get_data(as_text=True)
    assert db.departments.find_one({"_id": stored["_id"]})["active"] is False
    assert "法务专班" not in options_of(supervisor.get("/admin/overdue/").get_data(as_text=True), "flt-department")


def test_a_disabled_user_leaves_the_pick_lists_at_once(app, client, seeded, db, sign_in):
    from kefu.org.users import User, set_active

    sign_in("supervisor", DEMO_PASSWORD)
    label = "{display_name}（{username}）".format(**db.users.find_one({"username": "approver"}))
    assert label in options_of(client.get("/admin/overdue/").get_data(as_text=True), "flt-assignee")
    with app.app_context():
        set_active(User.objects(username="approver").first(), False)
    assert db.users.find_one({"username": "approver"})["active"] is False
    page = client.get("/admin/overdue/").get_data(as_text=True)
    assert label not in options_of(page, "flt-assignee")
