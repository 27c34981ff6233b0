"""The demo data: realistic, complete, and idempotent."""
from __future__ import annotations

from kefu.core.validation import normalize_id_number, normalize_phone
from seed.demo import CUSTOMER_COUNT, DEMO_USERS, DEPARTMENTS, PROJECTS


def test_seed_twice_gives_the_same_counts(runner, db):
    first = runner.invoke(args=["kefu", "seed"])
    assert first.exit_code == 0, first.output
    counts = {name: db[name].count_documents({}) for name in
              ("departments", "projects", "buildings", "units", "users", "customers")}
    second = runner.invoke(args=["kefu", "seed"])
    assert second.exit_code == 0, second.output
    assert counts == {name: db[name].count_documents({}) for name in counts}
    assert first.output == second.output

    assert counts["departments"] == len(DEPARTMENTS)
    assert counts["projects"] == len(PROJECTS) == 3
    assert counts["users"] == len(DEMO_USERS)
    assert counts["customers"] == CUSTOMER_COUNT
    assert counts["units"] > 300


def test_seeded_data_is_valid_and_linked(app, runner, db):
    from kefu.org.customers import Customer

    runner.invoke(args=["kefu", "seed"])
    assert {u["roles"][0] for u in db.users.find()} == {"admin", "manager", "supervisor", "agent", "handler", "approver"}
    assert {d["name"] for d in db.departments.find()} >= {"客服中心", "工程部", "财务部", "物业服务中心"}
    with app.app_context():  # phone and ID number are stored encrypted: read through the model
        for customer in Customer.objects():
            assert normalize_phone(customer.phone) == customer.phone
            assert normalize_id_number(customer.id_number) == customer.id_number
            assert customer.unit.project.pk == customer.project.pk
    assert db.units.find_one({"label": "1幢1单元101"}) is not None


def test_seed_keeps_admin_edits(runner, db):
    runner.invoke(args=["kefu", "seed"])
    db.departments.update_one({"name": "法务部"}, {"$set": {"description": "改过的说明"}})
    runner.invoke(args=["kefu", "seed"])
    assert db.departments.find_one({"name": "法务部"})["description"] == "改过的说明"


def test_demo_login_works(client, runner, sign_in):
    from seed.demo import DEMO_PASSWORD

    runner.invoke(args=["kefu", "seed"])
    assert sign_in("admin", DEMO_PASSWORD).status_code == 302


def test_create_user_command(runner, db):
    runner.invoke(args=["kefu", "seed"])
    result = runner.invoke(args=["kefu", "create-user", "--username", "zhangsan", "--password", "long-enough-1",
                                 "--role", "supervisor", "--department", "工程部"])
    assert result.exit_code == 0, result.output
    stored = db.users.find_one({"username": "zhangsan"})
    assert stored["roles"] == ["supervisor"]
    assert stored["department"] == db.departments.find_one({"name": "工程部"})["_id"]


def test_create_user_command_explains_bad_input(runner, db):
    runner.invoke(args=["kefu", "seed"])
    result = runner.invoke(args=["kefu", "create-user", "--username", "lisi", "--password", "short",
                                 "--role", "boss"])
    assert result.exit_code != 0
    assert "角色无效" in result.output and "Traceback" not in result.output
    result = runner.invoke(args=["kefu", "create-user", "--username", "lisi", "--password", "long-enough-1",
                                 "--role", "agent", "--department", "不存在部"])
    assert result.exit_code != 0 and "现有部门" in result.output
    assert db.users.find_one({"username": "lisi"}) is None
