"""Records stored before the department scope existed get the department of whoever registered them, once."""
from __future__ import annotations

from bson import ObjectId


def test_backfill_stamps_the_registering_department_once(app, db, make_user):
    from kefu.records.migrations import backfill_created_department

    agent = make_user("agent1", "agent", department="客服中心")
    centre = db.departments.find_one({"name": "客服中心"})["_id"]
    by_agent, by_system, stamped = ObjectId(), ObjectId(), ObjectId()
    db.records.insert_many([
        {"_id": by_agent, "type": "complaint", "number": "TS-1", "created_by": agent.pk},
        {"_id": by_system, "type": "complaint", "number": "TS-2", "created_by": None},
        {"_id": stamped, "type": "complaint", "number": "TS-3", "created_by": agent.pk, "created_department": None},
    ])

    with app.app_context():
        assert backfill_created_department() == 2
        assert backfill_created_department() == 0

    assert db.records.find_one({"_id": by_agent})["created_department"] == centre
    assert db.records.find_one({"_id": by_system})["created_department"] is None
    assert db.records.find_one({"_id": stamped})["created_department"] is None  # stamped before: left alone


def test_backfill_notes_the_departments_of_earlier_records(app, db, seeded):
    from kefu.records.migrations import backfill_departments

    engineering = db.departments.find_one({"name": "工程部"})["_id"]
    sales = db.departments.find_one({"name": "营销部"})["_id"]
    old = ObjectId()
    db.records.insert_one({"_id": old, "type": "complaint", "number": "TS-OLD", "department": sales,
                           "data": {"responsible_department": engineering}})

    with app.app_context():
        assert backfill_departments() >= 1
        assert backfill_departments() == 0

    assert db.records.find_one({"_id": old})["departments"] == [sales, engineering]


def test_a_handler_reads_and_edits_what_is_forwarded_to_the_department_and_nothing_else(client, db, seeded):
    from tests.conftest import token_headers
    from tests.test_records_api import complaint

    agent, handler = token_headers(client, "agent"), token_headers(client, "handler")
    engineering = str(db.departments.find_one({"name": "工程部"})["_id"])
    kept = client.post("/api/v1/records/complaint", headers=agent, json=complaint()).get_json()
    forwarded = client.post("/api/v1/records/complaint", headers=agent,
                            json=complaint(responsible_department=engineering)).get_json()
    assert db.records.find_one({"number": forwarded["number"]})["departments"] == [ObjectId(engineering)]

    listed = client.get("/api/v1/records/complaint?per_page=200", headers=handler).get_json()["items"]
    numbers = {item["number"] for item in listed}
    assert forwarded["number"] in numbers and kept["number"] not in numbers
    assert client.get(f"/api/v1/records/complaint/{kept['id']}", headers=handler).status_code == 404
    changed = client.patch(f"/api/v1/records/complaint/{forwarded['id']}", headers=handler,
                           json={"version": forwarded["version"], "content": "工程部已到现场核实"})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert db.records.find_one({"_id": ObjectId(forwarded["id"])})["data"]["content"] == "工程部已到现场核实"


def test_personal_data_is_unmasked_only_within_the_view_pii_scope(client, db, seeded):
    """A handler who may also see personal data of their own records (a second role, scope own) reads the phone of
    a record assigned to them, and only masked in one merely forwarded to their department."""
    from kefu.org.roles import AccessRole
    from kefu.org.users import create_user
    from tests.conftest import token_headers
    from tests.test_records_api import PHONE, complaint

    with client.application.app_context():
        AccessRole(key="pii_own", name="本人明文", grants=[{"record_type": "*", "actions": ["view_pii"],
                                                          "scope": "own"}]).save()
        worker = create_user("gongcheng2", "correct-horse", ["handler", "pii_own"], department="工程部")
    agent, mine = token_headers(client, "agent"), token_headers(client, "gongcheng2", "correct-horse")
    engineering = str(db.departments.find_one({"name": "工程部"})["_id"])
    forwarded = client.post("/api/v1/records/complaint", headers=agent,
                            json=complaint(responsible_department=engineering)).get_json()
    assigned = client.post("/api/v1/records/complaint", headers=agent,
                           json=complaint(responsible_department=engineering, assignee=str(worker.pk))).get_json()

    shown = {record["id"]: client.get(f"/api/v1/records/complaint/{record['id']}", headers=mine).get_json()["phone"]
             for record in (forwarded, assigned)}
    assert shown[assigned["id"]] == PHONE
    assert shown[forwarded["id"]] != PHONE and "****" in shown[forwarded["id"]]
    listed = {item["id"]: item["phone"] for item in
              client.get("/api/v1/records/complaint?per_page=200", headers=mine).get_json()["items"]}
    assert listed[assigned["id"]] == PHONE and "****" in listed[forwarded["id"]]


def test_an_export_wider_than_the_view_pii_scope_masks_personal_data(client, db, seeded, sign_in):
    """A user who reads and sees personal data of their own records (one role) but exports every complaint (another)
    gets the phone of a record not theirs masked in the export: unmasked only where ``view_pii`` covers every record
    the export holds."""
    from kefu.org.roles import AccessRole
    from kefu.org.users import create_user
    from tests.conftest import token_headers
    from tests.test_records_api import MASKED_PHONE, PHONE, complaint

    with client.application.app_context():
        AccessRole(key="reads_own_pii", name="本人记录明文", grants=[
            {"record_type": "complaint", "actions": ["read", "view_pii"], "scope": "own"}]).save()
        AccessRole(key="exports_all", name="导出全部投诉", grants=[
            {"record_type": "complaint", "actions": ["export"], "scope": "all"}]).save()
        create_user("analyst", "correct-horse", ["reads_own_pii", "exports_all"], department="客服中心")
    registered = client.post("/api/v1/records/complaint", headers=token_headers(client, "agent"),
                             json=complaint()).get_json()
    stored = db.records.find_one({"_id": ObjectId(registered["id"])})
    assert PHONE not in str(stored) and stored["pii"]["phone"]  # kept encrypted

    view = client.post("/api/v1/views/complaint", headers=token_headers(client, "analyst", "correct-horse"),
                       json={"name": "电话", "filters": [], "columns": ["number", "owner_name", "phone"]})
    assert view.status_code == 201, view.get_data(as_text=True)

    assert sign_in("analyst").status_code == 302
    exported = client.get(f"/admin/records/complaint/export/?fmt=csv&view={view.get_json()['id']}")
    assert exported.status_code == 200, exported.get_data(as_text=True)[:500]
    body = exported.get_data(as_text=True)
    assert registered["number"] in body
    assert PHONE not in body and MASKED_PHONE in body
