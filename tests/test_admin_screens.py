"""Every admin screen of the foundation opens for the role it is meant for and saves through its form."""
from __future__ import annotations

import pytest

from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token

SCREENS = ("/admin/", "/admin/customers/", "/admin/projects/", "/admin/buildings/", "/admin/units/",
           "/admin/departments/", "/admin/users/")


@pytest.fixture
def seeded(runner):
    result = runner.invoke(args=["kefu", "seed"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("path", SCREENS)
def test_admin_opens_every_screen_in_chinese(client, seeded, sign_in, path):
    sign_in("admin", DEMO_PASSWORD)
    response = client.get(path)
    assert response.status_code == 200, path
    page = response.get_data(as_text=True)
    assert "客服管理系统" in page
    assert "Traceback" not in page
    if path != "/admin/":
        assert client.get(path + "new/").status_code == 200


def newest_customer(app, db) -> tuple[dict, str]:
    """The newest customer's document and phone (stored encrypted: read through the model)."""
    from kefu.org.customers import Customer

    customer = db.customers.find_one({}, sort=[("created_at", -1)])
    with app.app_context():
        return customer, Customer.objects(pk=customer["_id"]).first().phone


def test_customer_list_shows_seeded_customers_masked_for_agents(app, client, seeded, sign_in, db):
    customer, phone = newest_customer(app, db)
    sign_in("agent", DEMO_PASSWORD)
    page = client.get("/admin/customers/?search=" + customer["name"]).get_data(as_text=True)
    assert phone[:3] + "****" + phone[-4:] in page
    assert phone not in page


def test_customer_list_unmasked_for_supervisors(app, client, seeded, sign_in, db):
    customer, phone = newest_customer(app, db)
    sign_in("supervisor", DEMO_PASSWORD)
    page = client.get("/admin/customers/?search=" + customer["name"]).get_data(as_text=True)
    assert phone in page


def test_create_customer_through_the_form_normalises_phone(app, client, seeded, sign_in, db):
    sign_in("agent", DEMO_PASSWORD)
    project = db.projects.find_one({"code": "YQJNF"})
    token = csrf_token(client, "/admin/customers/new/")
    response = client.post("/admin/customers/new/", data={
        "csrf_token": token, "name": "赵一鸣", "gender": "男", "phone": "138 1234 5678",
        "project": str(project["_id"]), "grade": "A"})
    assert response.status_code == 302
    stored, phone = newest_customer(app, db)
    assert stored["name"] == "赵一鸣" and phone == "13812345678" and stored["grade"] == "A"
    assert "phone" not in stored and "13812345678" not in str(stored)


def test_bad_phone_is_refused_with_a_chinese_message_and_nothing_saved(client, seeded, sign_in, db):
    sign_in("agent", DEMO_PASSWORD)
    token = csrf_token(client, "/admin/customers/new/")
    response = client.post("/admin/customers/new/", data={
        "csrf_token": token, "name": "钱二", "phone": "12345", "grade": "B"})
    assert response.status_code == 200
    assert "手机" in response.get_data(as_text=True) or "电话" in response.get_data(as_text=True)
    assert db.customers.find_one({"name": "钱二"}) is None


def test_admin_creates_a_user_with_hashed_password(client, seeded, sign_in, db):
    sign_in("admin", DEMO_PASSWORD)
    department = db.departments.find_one({"name": "工程部"})
    token = csrf_token(client, "/admin/users/new/")
    response = client.post("/admin/users/new/", data={
        "csrf_token": token, "username": "gongcheng1", "display_name": "吴工", "roles": ["handler"],
        "department": str(department["_id"]), "new_password": "site-visit-2026", "active": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    stored = db.users.find_one({"username": "gongcheng1"})
    assert stored["roles"] == ["handler"] and "site-visit-2026" not in str(stored)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/admin/")})
    from tests.conftest import csrf_token as token_for
    response = client.post("/login", data={"username": "gongcheng1", "password": "site-visit-2026",
                                           "csrf_token": token_for(client, "/login")})
    assert response.status_code == 302


def test_admin_user_form_refuses_duplicate_username(client, seeded, sign_in, db):
    sign_in("admin", DEMO_PASSWORD)
    token = csrf_token(client, "/admin/users/new/")
    response = client.post("/admin/users/new/", data={
        "csrf_token": token, "username": "agent", "display_name": "重复", "roles": ["agent"],
        "new_password": "long-enough-1"})
    assert "已被使用" in response.get_data(as_text=True)
    assert db.users.count_documents({"username": "agent"}) == 1


def test_unit_must_belong_to_its_project(client, seeded, sign_in, db):
    sign_in("admin", DEMO_PASSWORD)
    one, other = db.projects.find().limit(2)
    building = db.buildings.find_one({"project": other["_id"]})
    token = csrf_token(client, "/admin/units/new/")
    response = client.post("/admin/units/new/", data={
        "csrf_token": token, "project": str(one["_id"]), "building": str(building["_id"]), "room": "9901"})
    assert "楼栋不属于所选项目" in response.get_data(as_text=True)
    assert db.units.find_one({"room": "9901"}) is None


def test_times_are_shown_in_the_configured_zone(client, seeded, sign_in, db):
    from datetime import datetime, timezone

    db.customers.update_many({}, {"$set": {"created_at": datetime(2026, 11, 22, 16, 30, tzinfo=timezone.utc)}})
    sign_in("supervisor", DEMO_PASSWORD)
    page = client.get("/admin/customers/").get_data(as_text=True)
    assert "2026-11-23 00:30" in page  # 16:30 UTC is 00:30 the next day in Asia/Shanghai
    assert "16:30" not in page


def test_a_project_added_after_start_up_is_offered_in_the_list_filters(client, seeded, sign_in, db):
    """The reference filters (项目, 部门 …) read their names with each list page, not once when the views are made."""
    sign_in("admin", DEMO_PASSWORD)
    assert "滨江·新建项目" not in client.get("/admin/customers/").get_data(as_text=True)
    added = db.projects.insert_one({"name": "滨江·新建项目", "code": "BJXJ", "city": "杭州市"}).inserted_id
    page = client.get("/admin/customers/").get_data(as_text=True)
    assert "滨江·新建项目" in page and str(added) in page  # offered by name, picked by its id
