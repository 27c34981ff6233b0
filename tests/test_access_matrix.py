"""The role matrix (issue 14, "Done means"): for every shipped role × demo record type × action × relation of the
record to the user (own / department / other), what the role's grant in ``SHIPPED_ROLES`` says — computed here
from the data, not from a hand-written table — is what the API and the admin screens do, and what is stored.

Relations: ``own`` — assigned to the user (complaints, repair orders) or registered by them (consultations);
``department`` — the record's department (complaints, repair orders) or its registering department
(consultations) is the user's; ``other`` — neither.
Records are made by the system in the needed relation; users are fresh, made through ``create_user``. Every case
is run and every mismatch reported together, naming role, type, action, relation, path and status.
"""
from __future__ import annotations

import re

import pytest
from bson import ObjectId

from kefu.core.db import get_database
from kefu.org.roles import ACTION_LABELS, ALL_ACTIONS, ANY_TYPE, SCOPE_LABELS, SCOPE_ORDER, SHIPPED_ROLES, Action, Scope
from kefu.org.structure import Department
from kefu.org.users import User, create_user
from kefu.records.actor import system_actor
from kefu.records.types import get_record_type
from kefu.records.write import create_record, update_record
from kefu.rules.approvals import rules_of
from tests.conftest import CSRF_PATTERN, csrf_token
from tests.test_records import AdminForm
from tests.test_records_api import MASKED_PHONE, PHONE, complaint

# The types ``seed.records`` fills with demo records.
DEMO_TYPES = ("complaint", "consultation", "repair")
RELATIONS = ("own", "department", "other")
REACH = {"own": Scope.OWN.value, "department": Scope.DEPARTMENT.value, "other": Scope.ALL.value}
"""The narrowest scope that reaches a record in each relation."""
MY_DEPARTMENT, OTHER_DEPARTMENT = "客服中心", "法务部"
MY_TITLE = "项目总监"  # approves the complaint's first band (below 5,000)
PASSWORD = "correct-horse"
AWAITING = "待本人审批职务的"


# --- what the data says ---------------------------------------------------------------------------------

def grant_of(role: dict, type_key: str) -> dict | None:
    """The role's grant for the type: its own, else the ``*`` one."""
    grants = {grant["record_type"]: grant for grant in role["grants"]}
    return grants.get(type_key) or grants.get(ANY_TYPE)


def granted(role: dict, type_key: str, action: str, relation: str, awaiting: bool = False) -> bool:
    """Whether the role's grant allows ``action`` on a record in ``relation`` to the user; ``awaiting``: the
    record's approval waits on the user's title (then a role that approves the type sees and decides it)."""
    grant = grant_of(role, type_key)
    if grant is None:
        return False
    if action in grant["actions"] and SCOPE_ORDER.index(grant["scope"]) >= SCOPE_ORDER.index(REACH[relation]):
        return True
    return awaiting and action in (Action.READ.value, Action.APPROVE.value) and Action.APPROVE.value in grant["actions"]


def refusal_status(role, type_key, relation, awaiting=False) -> int:
    """A refused write: 403 when the user may read the record, else 404 (no existence leak)."""
    return 403 if granted(role, type_key, Action.READ.value, relation, awaiting) else 404


def role_matrix_markdown() -> str:
    """The shipped roles × actions with the scope each reaches, as a Markdown table (for the closing note)."""
    actions = list(ALL_ACTIONS)
    lines = ["| 角色 | " + " | ".join(f"{ACTION_LABELS[Action(a)]} ({a})" for a in actions) + " |",
             "|---|" + "---|" * len(actions)]
    for role in SHIPPED_ROLES:
        cells = []
        grant = grant_of(role, ANY_TYPE)
        for action in actions:
            cell = str(SCOPE_LABELS[Scope(grant["scope"])]) if action in grant["actions"] else "—"
            approves = Action.APPROVE.value in grant["actions"]
            if action == Action.READ.value and approves and grant["scope"] != Scope.ALL.value:
                cell = AWAITING if cell == "—" else f"{cell}＋{AWAITING}"
            if action == Action.APPROVE.value and approves:
                cell = AWAITING  # whatever the scope: a decision needs the title the approval waits on
            cells.append(cell)
        lines.append(f"| {role['name']} ({role['key']}) | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("本人＝负责或登记的记录；本部门＝另加部门或登记部门为本部门的记录；全部＝该类型全部记录；"
                 f"{AWAITING}＝审批申请正等待用户的审批职务（用户 → 审批职务）。"
                 "删除 (delete)：记录只关闭、不删除——API 没有 DELETE 记录的路由，后台不提供删除。")
    return "\n".join(lines)


# --- records and people -----------------------------------------------------------------------------------

def values_for(type_key: str) -> dict:
    """Valid values of a new demo record (complaints and repair orders name a seeded project and unit)."""
    if type_key == "consultation":
        return {"channel": "来电", "customer_name": "李四", "phone": PHONE, "question": "交房需要带哪些材料？",
                "complexity": "一般性问题"}
    project = str(get_database().projects.find_one({"code": "YQJNF"})["_id"])
    if type_key == "complaint":
        return complaint(project=project, unit="1幢1单元101")
    return {"contact_name": "王五", "phone": PHONE, "project": project, "unit": "1幢1单元101", "problem": "厨房水龙头漏水"}


def record_in(type_key: str, relation: str, user) -> dict:
    """A record the system registers in ``relation`` to ``user`` (see the module's docstring); its stored
    document. Needs an app context."""
    # Complaints and repair orders relate through their assignee and department, consultations through who
    # registered them (stamped as ``create_record`` stamps a user's own registration).
    by_assignment = type_key != "consultation"
    mine = user.to_mongo().get("department")
    elsewhere = _department(OTHER_DEPARTMENT)
    stranger = _user("stranger", "handler", OTHER_DEPARTMENT)
    core = {"assignee": str(stranger.pk), "department": str(elsewhere)}
    if relation == "own" and by_assignment:
        core["assignee"] = str(user.pk)
    elif relation == "department" and by_assignment:
        core["department"] = str(mine)
    document = create_record(type_key, {**values_for(type_key), **core}, system_actor())
    registered = {"own": {"created_by": user.pk, "created_department": elsewhere},
                  "department": {"created_by": stranger.pk, "created_department": mine}}.get(relation)
    if registered and not by_assignment:
        get_database().records.update_one({"_id": document["_id"]}, {"$set": registered})
    return get_database().records.find_one({"_id": document["_id"]})


def pending_in(relation: str, user) -> dict:
    """A complaint in relation ``relation`` to ``user`` whose approval waits on ``MY_TITLE``."""
    record = record_in("complaint", relation, user)
    actor = system_actor()
    record = update_record("complaint", record["_id"], {"status": "处理中"}, actor, version=record["version"])
    record = update_record("complaint", record["_id"], {"status": "待审批", "compensation_amount": "1000"}, actor,
                           version=record["version"])
    assert record["approval"]["state"] == "pending" and record["approval"]["approver"] == MY_TITLE
    return record


def _department(name: str) -> ObjectId:
    return Department.objects(name=name).first().pk


def _user(username: str, role: str, department: str) -> User:
    return User.objects(username=username).first() or create_user(username, PASSWORD, [role], department=department)


def text_field(type_key: str) -> str:
    """The first textarea of the type: what the matrix edits."""
    return next(f.key for f in get_record_type(type_key).active_fields if f.type == "textarea")


# --- the matrix -------------------------------------------------------------------------------------------

class Probe:
    """One role's user, their API and admin clients, and the mismatches found."""

    def __init__(self, app, db, role: dict, make_user):
        self.app, self.db, self.role = app, db, role
        self.user = make_user(f"m_{role['key']}", role=role["key"], department=MY_DEPARTMENT,
                              approval_titles=[MY_TITLE])
        with app.app_context():
            self.target = _user("target", "agent", OTHER_DEPARTMENT)  # whom records are reassigned to
        self.api = app.test_client()
        token = self.api.post("/api/v1/auth/token", json={"username": self.user.username, "password": PASSWORD})
        self.headers = {"Authorization": f"Bearer {token.get_json()['token']}"}
        self.admin = app.test_client()
        login = csrf_token(self.admin, "/login")
        assert self.admin.post("/login", data={"username": self.user.username, "password": PASSWORD,
                                               "csrf_token": login}).status_code == 302
        self.problems: list[str] = []

    def expect(self, case: str, path: str, expected, got) -> None:
        if expected != got:
            self.problems.append(f"{self.role['key']} · {case} · {path}: expected {expected}, got {got}")

    def stored(self, record_id) -> dict:
        return self.db.records.find_one({"_id": record_id})

    def records(self, type_key: str) -> dict[str, dict]:
        with self.app.app_context():
            return {relation: record_in(type_key, relation, self.user) for relation in RELATIONS}

    # -- reads -------------------------------------------------------------------------------------------

    def check_reads(self, type_key: str, records: dict[str, dict]) -> None:
        listed = self.api.get(f"/api/v1/records/{type_key}?per_page=100", headers=self.headers)
        api_ids = {item["id"] for item in listed.get_json().get("items", [])} if listed.status_code == 200 else set()
        admin_list = self.admin.get(f"/admin/records/{type_key}/").get_data(as_text=True)
        export = self.api.get(f"/api/v1/records/{type_key}/export.csv", headers=self.headers)
        may_export = Action.EXPORT.value in (grant_of(self.role, type_key) or {}).get("actions", ())
        self.expect(f"{type_key} export", f"GET /api/v1/records/{type_key}/export.csv", 200 if may_export else 403,
                    export.status_code)
        exported = export.get_data(as_text=True) if export.status_code == 200 else ""
        for relation, record in records.items():
            case, number, rid = f"{type_key} {{}} {relation}", record["number"], record["_id"]
            readable = granted(self.role, type_key, Action.READ.value, relation)
            got = self.api.get(f"/api/v1/records/{type_key}/{rid}", headers=self.headers)
            self.expect(case.format("read"), f"GET /api/v1/records/{type_key}/<id>", 200 if readable else 404,
                        got.status_code)
            self.expect(case.format("read"), f"GET /api/v1/records/{type_key} lists it", readable, str(rid) in api_ids)
            self.expect(case.format("read"), f"admin /admin/records/{type_key}/ lists it", readable,
                        bool(re.search(rf"\b{re.escape(number)}\b", admin_list)))
            details = self.admin.get(f"/admin/records/{type_key}/details/?id={rid}")
            self.expect(case.format("read"), f"admin /admin/records/{type_key}/details/", 200 if readable else 404,
                        details.status_code)
            self.expect(case.format("export"), f"GET /api/v1/records/{type_key}/export.csv contains it",
                        granted(self.role, type_key, Action.EXPORT.value, relation), number in exported)
            if readable:
                unmasked = granted(self.role, type_key, Action.VIEW_PII.value, relation)
                shown = got.get_json().get("phone")
                self.expect(case.format("view_pii"), f"GET /api/v1/records/{type_key}/<id> phone",
                            PHONE if unmasked else MASKED_PHONE, shown)
                page = details.get_data(as_text=True)
                self.expect(case.format("view_pii"), f"admin /admin/records/{type_key}/details/ shows the phone",
                            unmasked, PHONE in page)
                self.expect(case.format("view_pii"), f"admin /admin/records/{type_key}/details/ shows it masked",
                            True, unmasked or MASKED_PHONE in page)

    # -- writes ------------------------------------------------------------------------------------------

    def check_create(self, type_key: str) -> None:
        allowed = Action.CREATE.value in (grant_of(self.role, type_key) or {}).get("actions", ())
        with self.app.app_context():
            values = values_for(type_key)
        before = self.db.records.count_documents({"type": type_key})
        response = self.api.post(f"/api/v1/records/{type_key}", json=values, headers=self.headers)
        self.expect(f"{type_key} create", f"POST /api/v1/records/{type_key}", 201 if allowed else 403,
                    response.status_code)
        self.expect(f"{type_key} create", "stored", before + allowed,
                    self.db.records.count_documents({"type": type_key}))
        form = self.admin.get(f"/admin/records/{type_key}/new/")
        self.expect(f"{type_key} create", f"admin /admin/records/{type_key}/new/", 200 if allowed else 403,
                    form.status_code)

    def check_edits(self, type_key: str, records: dict[str, dict]) -> None:
        field = text_field(type_key)
        token = csrf_token(self.admin, f"/admin/records/{type_key}/")
        for relation, record in records.items():
            case, rid = f"{type_key} edit {relation}", record["_id"]
            allowed = granted(self.role, type_key, Action.EDIT.value, relation)
            refused = refusal_status(self.role, type_key, relation)
            version = self.stored(rid)["version"]
            response = self.api.patch(f"/api/v1/records/{type_key}/{rid}", headers=self.headers,
                                      json={"version": version, field: "矩阵测试：接口修改"})
            self.expect(case, f"PATCH /api/v1/records/{type_key}/<id>", 200 if allowed else refused,
                        response.status_code)
            self.expect(case, "stored after PATCH", version + allowed, self.stored(rid)["version"])
            version = self.stored(rid)["version"]
            url = f"/admin/records/{type_key}/edit/?id={rid}"
            page = self.admin.get(url)
            self.expect(case, f"admin GET /admin/records/{type_key}/edit/", 200 if allowed else refused,
                        page.status_code)
            if page.status_code == 200:
                html = page.get_data(as_text=True)
                # The admin form's own token (the page also carries the API's, in another field order).
                form = {**AdminForm(html).fields, "csrf_token": CSRF_PATTERN.search(html).group(1)}
            else:
                form = {"csrf_token": token, "version": str(version)}
            form[field] = "矩阵测试：后台修改"
            posted = self.admin.post(url, data=form)
            self.expect(case, f"admin POST /admin/records/{type_key}/edit/", 302 if allowed else refused,
                        posted.status_code)
            self.expect(case, "stored after admin edit", version + allowed, self.stored(rid)["version"])

    def check_reassign(self, type_key: str) -> None:
        token = csrf_token(self.admin, f"/admin/records/{type_key}/")
        for path in ("api", "admin"):
            for relation, record in self.records(type_key).items():
                case, rid = f"{type_key} reassign {relation}", record["_id"]
                allowed = (granted(self.role, type_key, Action.REASSIGN.value, relation)
                           and granted(self.role, type_key, Action.EDIT.value, relation))
                if path == "api":
                    response = self.api.patch(f"/api/v1/records/{type_key}/{rid}", headers=self.headers,
                                              json={"version": record["version"], "assignee": str(self.target.pk)})
                    self.expect(case, f"PATCH /api/v1/records/{type_key}/<id> assignee",
                                200 if allowed else refusal_status(self.role, type_key, relation), response.status_code)
                else:
                    response = self.admin.post("/admin/overdue/reassign/", data={
                        "csrf_token": token, "assignee": str(self.target.pk), "record": f"{rid}:{record['version']}"})
                    # Refused rows are reported on the page (as not found); a role the page is closed to gets 403.
                    self.expect(case, "admin POST /admin/overdue/reassign/", True,
                                response.status_code == 302 or (not allowed and response.status_code == 403))
                self.expect(case, f"stored assignee after {path} reassign", allowed,
                            self.stored(rid)["assignee"] == self.target.pk)

    def check_approvals(self) -> None:
        with self.app.app_context():
            pending = {path: {relation: pending_in(relation, self.user) for relation in RELATIONS}
                       for path in ("api", "admin")}
        token = csrf_token(self.admin, "/admin/records/complaint/")
        for path, records in pending.items():
            for relation, record in records.items():
                case, rid = f"complaint approve {relation}", record["_id"]
                allowed = granted(self.role, "complaint", Action.APPROVE.value, relation, awaiting=True)
                refused = refusal_status(self.role, "complaint", relation, awaiting=True)
                if path == "api":
                    readable = granted(self.role, "complaint", Action.READ.value, relation, awaiting=True)
                    got = self.api.get(f"/api/v1/records/complaint/{rid}", headers=self.headers)
                    self.expect(f"complaint read {relation} (awaiting my title)", "GET /api/v1/records/complaint/<id>",
                                200 if readable else 404, got.status_code)
                    response = self.api.post(f"/api/v1/records/complaint/{rid}/approval", headers=self.headers,
                                             json={"action": "approve"})
                    self.expect(case, "POST /api/v1/records/complaint/<id>/approval", 200 if allowed else refused,
                                response.status_code)
                else:
                    response = self.admin.post(f"/admin/records/complaint/approval/?id={rid}", data={
                        "csrf_token": token, "action": "approve", "request_id": record["approval"]["id"]})
                    self.expect(case, "admin POST /admin/records/complaint/approval/", 302 if allowed else refused,
                                response.status_code)
                self.expect(case, f"stored approval after {path}", "approved" if allowed else "pending",
                            self.stored(rid)["approval"]["state"])


@pytest.mark.parametrize("role", SHIPPED_ROLES, ids=[role["key"] for role in SHIPPED_ROLES])
def test_role_matrix(app, db, seeded, make_user, role):
    """Role × demo type × action × relation over the API and the admin screens, against the stored documents."""
    probe = Probe(app, db, role, make_user)
    for type_key in DEMO_TYPES:
        records = probe.records(type_key)
        probe.check_reads(type_key, records)
        probe.check_create(type_key)
        probe.check_edits(type_key, records)
        probe.check_reassign(type_key)
    approval_types = [t for t in DEMO_TYPES if rules_of(get_record_type(t, active_only=False)) is not None]
    assert approval_types == ["complaint"]
    probe.check_approvals()
    assert not probe.problems, "\n".join(probe.problems)


def test_no_path_deletes_a_record(app, db, seeded, make_user, client, sign_in):
    """``delete`` is in the data model but records are closed, never deleted: the API has no DELETE route for
    records and the admin offers no delete, even to a role whose grant includes it."""
    assert Action.DELETE.value in grant_of(SHIPPED_ROLES[0], "complaint")["actions"]  # the admin's grant has it
    deleting = [rule.rule for rule in app.url_map.iter_rules()
                if "DELETE" in (rule.methods or ()) and "/records" in rule.rule]
    assert deleting == []
    boss = make_user("m_boss", role="admin")
    with app.app_context():
        record = record_in("complaint", "own", boss)
    headers = {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
        "username": "m_boss", "password": PASSWORD}).get_json()["token"]}
    response = client.delete(f"/api/v1/records/complaint/{record['_id']}", headers=headers)
    assert response.status_code in (404, 405)
    sign_in("m_boss")
    listing = client.get("/admin/records/complaint/").get_data(as_text=True)
    assert "/admin/records/complaint/delete/" not in listing
    token = csrf_token(client, "/admin/records/complaint/")
    client.post("/admin/records/complaint/delete/", data={"csrf_token": token, "id": str(record["_id"])})
    assert db.records.find_one({"_id": record["_id"]}) is not None


def test_the_role_matrix_table(capsys):
    """The table the closing note carries (run with ``-s`` to see it)."""
    table = role_matrix_markdown()
    print(table)
    assert table.count("\n| ") == len(SHIPPED_ROLES)
    assert "| 客服专员 (agent) | 本部门 | 本部门 | 本部门 | — | 本部门 | — | — | — |" in table
    assert "| 审批人 (approver) | 待本人审批职务的 | — | — | — | — | — | — | 待本人审批职务的 |" in table
