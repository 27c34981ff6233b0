"""系统设置 → 角色权限: roles are data an admin edits (``kefu.org.roles.save_role`` / ``delete_role`` behind the
admin screen ``admin_views.roles``); an edit takes effect without a restart; the users screen offers the roles
the data defines; the shipped defaults follow issue 14's list; ``AccessPolicy.permits`` and ``record_filter``
agree on stored documents."""
from __future__ import annotations

import re

import pytest
from bson import ObjectId

from kefu.core.errors import Conflict, ValidationFailed
from kefu.org.access import SYSTEM_POLICY, AccessPolicy, policy_for
from kefu.org.roles import (
    ALL_ACTIONS, ALL_CAPABILITIES, ANY_TYPE, SHIPPED_ROLES, Action, Capability, Scope, delete_role, role_keys,
    role_label, roles, save_role,
)
from tests.conftest import csrf_token
from tests.test_access_matrix import record_in

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def admin_client(client, make_user, sign_in):
    make_user("boss", role="admin")
    assert sign_in("boss").status_code == 302
    return client


def grid_form(token: str, **values) -> dict:
    """The editor's POST: ``values`` are the plain fields plus ``grants`` {type: (actions, scope)}."""
    grants = values.pop("grants", {})
    form = {"csrf_token": token, **values}
    for type_key, (actions, scope) in grants.items():
        form[f"actions-{type_key}"] = list(actions)
        form[f"scope-{type_key}"] = scope
    return form


# --- the shipped defaults -------------------------------------------------------------------------------

def test_shipped_defaults_follow_the_issue(app, db):
    """Issue 14: admin all; manager all, unmasked; supervisor department + reassign, unmasked; agent creates every
    type, reads and edits (and exports, masked) the department's records; handler reads and edits the department's
    or their own records, masked; approver only approves what waits on their title."""
    stored = {role["key"]: role for role in db.roles.find()}
    assert set(stored) == {"admin", "manager", "supervisor", "agent", "handler", "approver"}
    assert all(role["shipped"] for role in stored.values())

    def grant(key):
        (only,) = stored[key]["grants"]
        assert only["record_type"] == ANY_TYPE
        return set(only["actions"]), only["scope"]

    everything = set(ALL_ACTIONS)
    assert grant("admin") == (everything, Scope.ALL.value)
    assert grant("manager") == (everything, Scope.ALL.value)
    assert grant("supervisor") == ({"read", "create", "edit", "export", "view_pii", "reassign"}, "department")
    assert grant("agent") == ({"read", "create", "edit", "export"}, "department")
    assert grant("handler") == ({"read", "edit"}, "department")
    assert grant("approver") == ({"approve"}, "own")
    assert set(stored["admin"]["capabilities"]) == set(ALL_CAPABILITIES)
    # Only admins keep the system and archive customers; the archive is unmasked for manager and supervisor.
    holders = {c: {k for k, r in stored.items() if c in r["capabilities"]} for c in ALL_CAPABILITIES}
    assert holders["manage_system"] == {"admin"}
    assert holders["archive_customers"] == {"admin"}
    assert holders["view_customer_pii"] == {"admin", "manager", "supervisor"}
    assert holders["view_reports"] == {"admin", "manager", "supervisor"}
    assert holders["lookup_customers"] == {"admin", "manager", "supervisor", "agent"}
    assert stored["handler"]["capabilities"] == [] and stored["approver"]["capabilities"] == []
    assert [role["key"] for role in SHIPPED_ROLES] == ["admin", "manager", "supervisor", "agent", "handler",
                                                       "approver"]


# --- the service --------------------------------------------------------------------------------------

def test_save_role_validates_each_field_in_chinese(app, db):
    with app.app_context():
        cases = [
            ({"key": "Front Desk", "name": "前台"}, "key"),
            ({"key": "agent", "name": "另一个专员"}, "key"),  # taken
            ({"key": "front", "name": ""}, "name"),
            ({"key": "front", "name": "客服专员"}, "name"),  # another role's name
            ({"key": "front", "name": "前台", "description": "长" * 201}, "description"),
            ({"key": "front", "name": "前\x00台"}, "name"),
            ({"key": "front", "name": "前台", "description": "\ud800"}, "description"),
            ({"key": "front", "name": "前台", "capabilities": ["fly"]}, "capabilities"),
            ({"key": "front", "name": "前台", "grants": [{"record_type": "nope", "actions": ["read"],
                                                          "scope": "all"}]}, "grants.nope"),
            ({"key": "front", "name": "前台", "grants": [{"record_type": "complaint", "actions": ["burn"],
                                                          "scope": "all"}]}, "grants.complaint"),
            ({"key": "front", "name": "前台", "grants": [{"record_type": "*", "actions": ["read"],
                                                          "scope": "galaxy"}]}, "grants.*"),
            ({"key": "front", "name": "前台", "grants": [{"record_type": "*", "actions": ["read"], "scope": "all"},
                                                         {"record_type": "*", "actions": [], "scope": "own"}]},
             "grants.*"),
            ({"key": "front", "name": "前台", "grants": "read everything"}, "grants"),
        ]
        for values, field in cases:
            with pytest.raises(ValidationFailed) as caught:
                save_role(values, {"complaint"})
            assert field in caught.value.fields, (values, caught.value.fields)
            assert CHINESE.search(str(caught.value.fields[field])), caught.value.fields
        assert db.roles.count_documents({}) == len(SHIPPED_ROLES)  # nothing written


def test_a_saved_role_takes_effect_at_once_and_a_type_grant_overrides_the_star(app, db, make_user):
    with app.app_context():
        user = make_user("desk1", role="agent")
        save_role({"key": "front_desk", "name": "前台", "capabilities": ["lookup_customers"],
                   "grants": [{"record_type": "*", "actions": ["create", "read"], "scope": "own"},
                              {"record_type": "complaint", "actions": [], "scope": "own"}]},
                  {"complaint", "consultation"}, by="boss")
        stored = db.roles.find_one({"key": "front_desk"})
        assert stored["name"] == "前台" and stored["shipped"] is False and stored["updated_by"] == "boss"
        assert stored["grants"][0] == {"record_type": "*", "actions": ["read", "create"], "scope": "own"}
        assert "front_desk" in role_keys() and role_label("front_desk") == "前台"

        user.roles = ["front_desk"]
        policy = policy_for(user)
        assert policy.allows("consultation", "create") and not policy.allows("consultation", "edit")
        assert not policy.allows("complaint", "read")  # its own grant, without actions, denies it
        assert policy.has("lookup_customers") and not policy.has("view_reports")

        save_role({"name": "前台", "grants": [{"record_type": "*", "actions": ["read", "edit"], "scope": "all"}]},
                  {"complaint"}, key="front_desk")
        assert policy.allows("complaint", "edit") and policy.scope("complaint", "read") == "all"
        assert not policy.has("lookup_customers")


def test_shipped_and_held_roles_are_not_deleted(app, db, make_user):
    with app.app_context():
        with pytest.raises(Conflict, match="预置角色"):
            delete_role("handler")
        save_role({"key": "cashier", "name": "财务"}, set())
        user = make_user("cash1", role="cashier")
        with pytest.raises(Conflict, match="1 个用户"):
            delete_role("cashier")
        user.roles = ["agent"]
        user.save()
        delete_role("cashier")
        assert db.roles.find_one({"key": "cashier"}) is None
        assert "cashier" not in roles()


def test_the_last_system_keeper_keeps_the_capability(app, db, make_user):
    with app.app_context():
        make_user("boss", role="admin")
        everything = [c for c in ALL_CAPABILITIES if c != Capability.MANAGE_SYSTEM.value]
        with pytest.raises(Conflict, match="系统设置"):
            save_role({"name": "系统管理员", "capabilities": everything}, set(), key="admin")
        assert "manage_system" in db.roles.find_one({"key": "admin"})["capabilities"]
        make_user("boss2", role="manager")
        save_role({"key": "keeper", "name": "运维", "capabilities": ["manage_system"]}, set())
        make_user("ops", role="keeper")
        save_role({"name": "系统管理员", "capabilities": everything,
                   "grants": [{"record_type": "*", "actions": list(ALL_ACTIONS), "scope": "all"}]}, set(), key="admin")
        assert "manage_system" not in db.roles.find_one({"key": "admin"})["capabilities"]


# --- the admin screen -----------------------------------------------------------------------------------

def test_the_screen_lists_roles_with_their_grants_and_needs_manage_system(app, client, seeded, make_user, sign_in):
    make_user("desk", role="agent")
    desk = app.test_client()
    desk.post("/login", data={"username": "desk", "password": "correct-horse",
                              "csrf_token": csrf_token(desk, "/login")})
    refused = desk.get("/admin/roles/")
    assert refused.status_code == 403 and "系统设置" in refused.get_data(as_text=True)
    admin_client(client, make_user, sign_in)
    page = client.get("/admin/roles/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for key in ("admin", "manager", "supervisor", "agent", "handler", "approver"):
        assert f'data-role="{key}"' in html
    assert "全部类型：查看、登记、修改、导出（本部门）" in html  # the agent's summary
    assert "角色权限" in client.get("/admin/").get_data(as_text=True)  # in the menu
    editor = client.get("/admin/roles/edit/?key=agent").get_data(as_text=True)
    assert 'name="actions-*" value="edit" title="全部类型 * · 修改" checked>' in editor
    assert 'name="actions-*" value="reassign" title="全部类型 * · 改派">' in editor
    assert '<option value="department" selected>' in editor and 'name="scope-complaint"' in editor
    form = editor.split('class="kefu-role-editor"')[1].split("</form>")[0]
    assert "<textarea" not in form and "record_type" not in form  # a grid of checkboxes, not raw JSON
    assert client.get("/admin/roles/edit/?key=ghost").status_code == 404


def test_adding_editing_and_deleting_a_role_through_the_screen(app, client, db, seeded, make_user, sign_in):
    admin_client(client, make_user, sign_in)
    token = csrf_token(client, "/admin/roles/new/")
    bad = client.post("/admin/roles/new/", data=grid_form(token, key="Cashier!", name="财务",
                                                          grants={"complaint": (["read"], "")}))
    assert bad.status_code == 200
    html = bad.get_data(as_text=True)
    assert "角色代码须以小写字母开头" in html
    assert "记录权限“complaint”：勾选了操作时请选择范围" in html and "不单独设置时请不要勾选操作" in html
    assert db.roles.find_one({"name": "财务"}) is None

    saved = client.post("/admin/roles/new/", data=grid_form(
        token, key="cashier", name="财务", description="赔付审核", capabilities=["view_reports"],
        grants={"*": (["read"], "department"), "complaint": (["read", "edit", "approve"], "all"),
                "consultation": ([], "own")}))
    assert saved.status_code == 302
    stored = db.roles.find_one({"key": "cashier"})
    assert stored["capabilities"] == ["view_reports"] and stored["description"] == "赔付审核"
    assert {g["record_type"]: (g["actions"], g["scope"]) for g in stored["grants"]} == {
        "*": (["read"], "department"), "complaint": (["read", "edit", "approve"], "all"), "consultation": ([], "own")}
    listing = client.get("/admin/roles/").get_data(as_text=True)
    assert "投诉：查看、修改、审批（全部）" in listing and "咨询：无权限" in listing

    token = csrf_token(client, "/admin/roles/edit/?key=cashier")
    edited = client.post("/admin/roles/edit/?key=cashier", data=grid_form(
        token, key="hijack", name="财务部", grants={"*": (["read", "export"], "all")}))
    assert edited.status_code == 302
    stored = db.roles.find_one({"key": "cashier"})
    assert stored["name"] == "财务部" and not stored.get("capabilities")
    assert stored["grants"] == [{"record_type": "*", "actions": ["read", "export"], "scope": "all"}]
    assert db.roles.find_one({"key": "hijack"}) is None  # the key stays

    # The users screen offers the new role by its name, and the service accepts it.
    user_form = client.get("/admin/users/new/").get_data(as_text=True)
    assert 'value="cashier"' in user_form and "财务部" in user_form
    with app.app_context():
        make_user("cash1", role="cashier")
    refused = client.post("/admin/roles/delete/", data={"csrf_token": token, "key": "cashier"},
                          follow_redirects=True)
    assert "还有 1 个用户使用角色“财务部”" in refused.get_data(as_text=True)
    assert db.roles.find_one({"key": "cashier"}) is not None
    shipped = client.post("/admin/roles/delete/", data={"csrf_token": token, "key": "agent"}, follow_redirects=True)
    assert "预置角色，不能删除" in shipped.get_data(as_text=True)
    db.users.update_one({"username": "cash1"}, {"$set": {"roles": ["agent"]}})
    assert client.post("/admin/roles/delete/", data={"csrf_token": token, "key": "cashier"}).status_code == 302
    assert db.roles.find_one({"key": "cashier"}) is None
    forged = client.post("/admin/roles/new/", data=grid_form("forged", key="thief", name="小偷"))
    assert forged.status_code == 200 and db.roles.find_one({"key": "thief"}) is None


def test_an_edit_on_the_screen_changes_what_a_signed_in_user_may_do(app, client, db, seeded, make_user, sign_in):
    """No restart: the handler's next request reads the edited role."""
    admin_client(client, make_user, sign_in)
    handler = make_user("fixer", role="handler", department="工程部")
    with app.app_context():
        record = record_in("consultation", "other", handler)
    other = app.test_client()
    token = other.post("/api/v1/auth/token", json={"username": "fixer", "password": "correct-horse"}).get_json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    assert other.get(f"/api/v1/records/consultation/{record['_id']}", headers=headers).status_code == 404

    token = csrf_token(client, "/admin/roles/edit/?key=handler")
    response = client.post("/admin/roles/edit/?key=handler", data=grid_form(
        token, name="部门处理人", grants={"*": (["read", "edit"], "department"), "consultation": (["read"], "all")}))
    assert response.status_code == 302
    assert other.get(f"/api/v1/records/consultation/{record['_id']}", headers=headers).status_code == 200


def test_user_services_accept_only_defined_roles(app, db, make_user):
    with app.app_context():
        with pytest.raises(ValidationFailed) as caught:
            make_user("ghost1", role="wizard")
        assert "角色无效：wizard" in str(caught.value.fields["roles"])
        save_role({"key": "wizard", "name": "巫师"}, set())
        assert make_user("ghost1", role="wizard").roles == ["wizard"]


# --- permits and record_filter agree -----------------------------------------------------------------------

def test_permits_agrees_with_record_filter_on_stored_documents(app, db):
    """For every shipped role, action and relation of a document to the user, ``permits`` says yes exactly when
    ``record_filter`` run in MongoDB selects the document."""
    me, colleague, stranger = ObjectId(), ObjectId(), ObjectId()
    mine, others = ObjectId(), ObjectId()
    pending = {"state": "pending", "approver": "财务总监", "reviewers": ["项目总监"]}
    documents = {
        "assigned": {"assignee": me, "department": others},
        "registered": {"created_by": me, "created_department": others},
        "department": {"assignee": colleague, "department": mine},
        "registered_by_department": {"created_by": colleague, "created_department": mine},
        "other": {"assignee": stranger, "department": others, "created_department": others},
        "unassigned": {"assignee": None, "department": None, "created_department": None},
        "awaiting_my_title": {"assignee": stranger, "department": others, "approval": pending},
        "awaiting_me_as_reviewer": {"assignee": stranger, "approval": {**pending, "approver": "总经理"}},
        "decided": {"assignee": stranger, "approval": {**pending, "state": "approved"}},
        "awaiting_someone_else": {"assignee": stranger, "approval": {**pending, "approver": "总经理",
                                                                     "reviewers": []}},
    }
    collection = db.access_probe
    collection.insert_many([{"_id": name, "type": "complaint", **fields} for name, fields in documents.items()])
    with app.app_context():
        for role in SHIPPED_ROLES:
            for titles in ((), ("财务总监",)):
                policy = AccessPolicy(user_id=me, department_id=mine, titles=titles, role_keys=(role["key"],))
                for action in ALL_ACTIONS:
                    clause = policy.record_filter("complaint", action)
                    selected = {d["_id"] for d in collection.find({"type": "complaint", **(clause or {})})}
                    permitted = {name for name in documents
                                 if policy.permits({"_id": name, "type": "complaint", **documents[name]}, action)}
                    assert selected == permitted, (role["key"], titles, action, selected ^ permitted)
        assert SYSTEM_POLICY.record_filter("complaint", Action.READ.value) is None
        nobody = AccessPolicy(user_id=me, department_id=mine)
        assert collection.count_documents(nobody.record_filter("complaint")) == 0
