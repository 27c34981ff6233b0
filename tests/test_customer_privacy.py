"""Customers' and users' personal data: encrypted at rest, masked per permission on every screen and in the API,
looked up by phone only exactly (for the roles that may, a limited number of times), customers archived instead of
deleted, and the plaintext of earlier versions encrypted by an idempotent migration."""
from __future__ import annotations

import re

import pytest
from bson import ObjectId

from seed.demo import DEMO_PASSWORD, DEMO_PHONES
from tests.conftest import csrf_token, token_headers

MASK = re.compile(r"^\d{3}\*{4}\d{4}$")


def plain(app, customer_id, name: str = "phone") -> str:
    """A customer's personal field in clear, read through the model (the stored document holds ciphertext)."""
    from kefu.org.customers import Customer

    with app.app_context():
        return getattr(Customer.objects(pk=customer_id).first(), name)


@pytest.fixture
def customer(app, db, seeded):
    """The first seeded customer in name order: ``{"id", "name", "phone", "id_number", "address"}``."""
    stored = db.customers.find_one({}, sort=[("name", 1), ("_id", 1)])
    return {"id": stored["_id"], "name": stored["name"],
            **{name: plain(app, stored["_id"], name) for name in ("phone", "id_number", "address")}}


def masked(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def lookup(client, headers, q, **extra):
    return client.post("/api/v1/refs/customer", headers=headers, json={"q": q, **extra})


# --- at rest ----------------------------------------------------------------------------------------------

def test_stored_customers_and_users_hold_no_plaintext(app, db, seeded, customer):
    for stored in db.customers.find():
        assert not {"phone", "id_number", "address"} & set(stored)
        assert isinstance(stored["phone_enc"], bytes) and len(stored["phone_bidx"]) == 64
        assert isinstance(stored["id_number_enc"], bytes) and isinstance(stored["address_enc"], bytes)
    text = str(list(db.customers.find()))
    assert customer["phone"] not in text and customer["id_number"] not in text and customer["address"] not in text
    users = str(list(db.users.find()))
    assert "phone" not in {key for user in db.users.find() for key in user}
    assert not any(phone in users for phone in DEMO_PHONES.values())
    from kefu.org.users import User

    with app.app_context():
        assert User.objects(username="agent").first().phone == DEMO_PHONES["agent"]


def test_a_ciphertext_is_bound_to_its_field(app, db, seeded, customer):
    from kefu.core.crypto import DecryptionFailed
    from kefu.org.customers import Customer

    stored = db.customers.find_one({"_id": customer["id"]})
    db.customers.update_one({"_id": customer["id"]}, {"$set": {"address_enc": stored["phone_enc"]}})
    with app.app_context(), pytest.raises(DecryptionFailed):
        Customer.objects(pk=customer["id"]).first().address


def test_admin_form_posts_plaintext_and_the_service_encrypts(app, client, db, seeded, sign_in):
    sign_in("agent", DEMO_PASSWORD)
    project = db.projects.find_one({"code": "YQJNF"})
    response = client.post("/admin/customers/new/", data={
        "csrf_token": csrf_token(client, "/admin/customers/new/"), "name": "赵一鸣", "gender": "男",
        "phone": "138 1234 5678", "id_number": "", "address": "杭州市西湖区文三路 1 号",
        "project": str(project["_id"]), "grade": "A"})
    assert response.status_code == 302, response.get_data(as_text=True)
    stored = db.customers.find_one({"name": "赵一鸣"})
    assert "phone" not in stored and "id_number_enc" not in stored and stored["grade"] == "A"
    assert "13812345678" not in str(stored) and "文三路" not in str(stored)
    assert plain(app, stored["_id"]) == "13812345678"
    assert plain(app, stored["_id"], "address") == "杭州市西湖区文三路 1 号"


# --- masked per permission ----------------------------------------------------------------------------------

def test_agent_sees_masked_values_in_list_details_and_edit_form(client, seeded, sign_in, customer):
    sign_in("agent", DEMO_PASSWORD)
    listing = client.get("/admin/customers/?search=" + customer["name"]).get_data(as_text=True)
    details = client.get(f"/admin/customers/details/?id={customer['id']}").get_data(as_text=True)
    form = client.get(f"/admin/customers/edit/?id={customer['id']}").get_data(as_text=True)
    for page in (listing, details, form):
        assert masked(customer["phone"]) in page
        assert customer["phone"] not in page and customer["id_number"] not in page
    assert customer["address"] not in details and customer["address"][:6] + "****" in details
    assert customer["address"] not in form
    assert "留空则不修改" in form


def test_supervisor_sees_values_in_clear(client, seeded, sign_in, customer):
    sign_in("supervisor", DEMO_PASSWORD)
    listing = client.get("/admin/customers/?search=" + customer["name"]).get_data(as_text=True)
    details = client.get(f"/admin/customers/details/?id={customer['id']}").get_data(as_text=True)
    form = client.get(f"/admin/customers/edit/?id={customer['id']}").get_data(as_text=True)
    assert customer["phone"] in listing and customer["id_number"] in listing
    assert customer["phone"] in details and customer["address"] in details
    assert f'value="{customer["phone"]}"' in form and customer["id_number"] in form


def test_agent_edit_with_empty_personal_inputs_keeps_the_stored_values(app, client, db, seeded, sign_in, customer):
    sign_in("agent", DEMO_PASSWORD)
    path = f"/admin/customers/edit/?id={customer['id']}"
    stored = db.customers.find_one({"_id": customer["id"]})
    response = client.post(path, data={
        "csrf_token": csrf_token(client, path), "name": customer["name"] + "改", "gender": stored.get("gender") or "",
        "phone": "", "id_number": "", "address": "", "grade": "C", "notes": "回访两次"})
    assert response.status_code == 302, response.get_data(as_text=True)
    after = db.customers.find_one({"_id": customer["id"]})
    assert after["name"] == customer["name"] + "改" and after["grade"] == "C"
    assert after["phone_enc"] == stored["phone_enc"] and after["id_number_enc"] == stored["id_number_enc"]
    assert after["address_enc"] == stored["address_enc"]
    response = client.post(path, data={"csrf_token": csrf_token(client, path), "name": customer["name"],
                                       "phone": "139-0000-1111", "grade": "C"})
    assert response.status_code == 302
    assert plain(app, customer["id"]) == "13900001111" and plain(app, customer["id"], "id_number") == customer[
        "id_number"]


def test_a_users_phone_is_masked_on_the_user_screens_to_a_system_keeper_without_view_customer_pii(
        app, client, db, seeded, sign_in, make_user):
    """Keeping the system (manage_system) is not seeing personal data: the edit form starts empty with the number
    masked, and a save with the input left empty keeps the number; typing one replaces it."""
    from kefu.org.roles import save_role
    from kefu.org.users import User

    with app.app_context():
        save_role({"key": "it_keeper", "name": "运维", "capabilities": ["manage_system"]}, set())
        make_user("keeper1", role="it_keeper")
    agent = db.users.find_one({"username": "agent"})
    phone = DEMO_PHONES["agent"]
    sign_in("keeper1")
    path = f"/admin/users/edit/?id={agent['_id']}"
    form = client.get(path).get_data(as_text=True)
    details = client.get(f"/admin/users/details/?id={agent['_id']}").get_data(as_text=True)
    assert phone not in form and phone not in details
    assert f'placeholder="{masked(phone)}（留空则不修改）"' in form
    department = str(agent["department"])

    def save(phone_input: str):
        return client.post(path, data={
            "csrf_token": csrf_token(client, path), "username": "agent", "display_name": agent["display_name"],
            "roles": agent["roles"], "department": department, "email": agent.get("email") or "",
            "phone": phone_input, "active": "y"})

    assert save("").status_code == 302
    with app.app_context():
        kept = User.objects(username="agent").first()
        assert kept.phone == phone and kept.display_name == agent["display_name"]
    assert save("139-0000-2222").status_code == 302
    with app.app_context():
        assert User.objects(username="agent").first().phone == "13900002222"

    # Who may see personal data (the shipped admin role) gets the number in the input, as before.
    with app.app_context():
        make_user("root1", role="admin")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/admin/")})
    sign_in("root1")
    assert 'value="13900002222"' in client.get(path).get_data(as_text=True)


def test_a_bad_phone_is_refused_naming_the_field(client, db, seeded, sign_in):
    sign_in("agent", DEMO_PASSWORD)
    response = client.post("/admin/customers/new/", data={
        "csrf_token": csrf_token(client, "/admin/customers/new/"), "name": "钱二", "phone": "12345", "grade": "B"})
    assert response.status_code == 200
    assert "联系电话：手机号码格式不正确" in response.get_data(as_text=True)
    assert db.customers.find_one({"name": "钱二"}) is None


def test_reference_labels_are_masked_for_agents_and_clear_for_supervisors(client, agent, supervisor, customer):
    for headers, label in ((agent, masked(customer["phone"])), (supervisor, customer["phone"])):
        items = lookup(client, headers, customer["phone"]).get_json()["items"]
        assert [item["id"] for item in items] == [str(customer["id"])]
        assert items[0]["label"] == f"{customer['name']}（{label}）" and items[0]["value"] == str(customer["id"])
    by_name = client.get(f"/api/v1/refs/customer?q={customer['name'][:1]}", headers=agent).get_json()["items"]
    assert str(customer["id"]) in [item["id"] for item in by_name]
    assert all(customer["phone"] not in item["label"] for item in by_name)


def test_record_customer_field_never_shows_the_phone_to_an_agent(app, client, agent, sign_in, customer):
    from tests.test_records_api import create

    record = create(client, agent, customer=str(customer["id"]))
    sign_in("agent", DEMO_PASSWORD)
    form = client.get(f"/admin/records/complaint/edit/?id={record['id']}")
    assert form.status_code == 200
    assert customer["phone"] not in form.get_data(as_text=True)
    body = client.get(f"/api/v1/records/complaint/{record['id']}", headers=agent).get_data(as_text=True)
    assert customer["phone"] not in body


def test_exports_with_the_customer_column_name_the_customer_without_personal_data(client, agent, supervisor,
                                                                                  customer):
    from tests.test_records_api import create, read_csv

    create(client, agent, customer=str(customer["id"]))
    for headers in (agent, supervisor):
        response = client.get("/api/v1/records/complaint/export.csv?columns=number,customer", headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        rows = read_csv(response)
        assert customer["name"] in [cell for row in rows[1:] for cell in row]
        text = response.get_data(as_text=True)
        assert customer["phone"] not in text and customer["id_number"] not in text


def test_ambiguous_customer_names_list_candidates_masked_unless_the_user_may_see_them(app, client, agent, supervisor,
                                                                                     customer):
    from kefu.org.customers import create_customer
    from tests.test_records_api import complaint

    with app.app_context():
        create_customer({"name": customer["name"], "phone": "13900002222"})
    for headers, shown, hidden in ((agent, (masked(customer["phone"]), "139****2222"), (customer["phone"],)),
                                   (supervisor, (customer["phone"], "13900002222"), ())):
        response = client.post("/api/v1/records/complaint", headers=headers, json=complaint(customer=customer["name"]))
        assert response.status_code == 422, response.get_data(as_text=True)
        message = response.get_json()["error"]["fields"]["customer"]
        assert "对应多个客户" in message and all(text in message for text in shown)
        assert not any(text in message for text in hidden)


# --- lookups by phone ----------------------------------------------------------------------------------------

def test_phone_lookup_is_exact(client, agent, customer):
    typed = f"+86 {customer['phone'][:3]}-{customer['phone'][3:7]}-{customer['phone'][7:]}"
    assert [i["id"] for i in lookup(client, agent, typed).get_json()["items"]] == [str(customer["id"])]
    for partial in (customer["phone"][:7], customer["phone"][-4:], customer["phone"][1:]):
        response = lookup(client, agent, partial)
        assert response.status_code == 200 and response.get_json()["items"] == []


def test_phone_in_a_url_is_refused(client, agent, customer):
    response = client.get(f"/api/v1/refs/customer?q={customer['phone']}", headers=agent)
    assert response.status_code == 400
    assert "POST" in response.get_json()["error"]["message"]


def test_session_lookup_needs_the_pages_csrf_token(client, seeded, sign_in, customer):
    sign_in("agent", DEMO_PASSWORD)
    page = client.get("/admin/customers/").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    assert client.post("/api/v1/refs/customer", json={"q": customer["phone"]}).status_code in (400, 403)
    response = client.post("/api/v1/refs/customer", json={"q": customer["phone"]}, headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.get_json()["items"][0]["id"] == str(customer["id"])


def test_phone_lookups_are_limited_per_user(client, agent, supervisor, customer):
    from kefu.org.customers import LOOKUP_LIMIT

    for _ in range(LOOKUP_LIMIT):
        assert lookup(client, agent, customer["phone"]).status_code == 200
    assert lookup(client, agent, customer["phone"][:5]).status_code == 200  # a partial number is not counted
    refused = lookup(client, agent, customer["phone"])
    assert refused.status_code == 429
    error = refused.get_json()["error"]
    assert error["code"] == "too_many_lookups" and "过于频繁" in error["message"]
    assert client.get("/api/v1/refs/customer?q=" + customer["name"], headers=agent).status_code == 200
    assert lookup(client, supervisor, customer["phone"]).status_code == 200  # counted per user


def test_a_role_without_lookup_customers_gets_403(app, client, seeded, customer):
    from kefu.org.roles import AccessRole
    from kefu.org.users import create_user

    with app.app_context():  # keeps the archive, may not look customers up by phone
        AccessRole(key="archivist", name="档案员", capabilities=["manage_customers"]).save()
        create_user("archivist1", "correct-horse", ["archivist"], department="客服中心")
    archivist = token_headers(client, "archivist1", "correct-horse")
    response = lookup(client, archivist, customer["phone"])
    assert response.status_code == 403 and "按电话查找客户" in response.get_json()["error"]["message"]
    assert client.get("/api/v1/refs/customer?q=" + customer["name"], headers=archivist).status_code == 200
    # A handler neither keeps nor looks up the archive: not even by name.
    handler = token_headers(client, "handler")
    assert lookup(client, handler, customer["phone"]).status_code == 403
    assert client.get("/api/v1/refs/customer?q=" + customer["name"], headers=handler).status_code == 403


def test_admin_search_box_finds_a_whole_phone_only(client, seeded, sign_in, customer):
    sign_in("agent", DEMO_PASSWORD)
    found = client.get("/admin/customers/?search=" + customer["phone"]).get_data(as_text=True)
    assert f"?id={customer['id']}" in found
    partial = client.get("/admin/customers/?search=" + customer["phone"][:7]).get_data(as_text=True)
    assert f"?id={customer['id']}" not in partial
    by_name = client.get("/admin/customers/?search=" + customer["name"]).get_data(as_text=True)
    assert f"?id={customer['id']}" in by_name


# --- archive, never delete -----------------------------------------------------------------------------------

def _action(client, name, customer_id):
    return client.post("/admin/customers/action/", data={
        "csrf_token": csrf_token(client, "/admin/customers/"), "action": name, "rowid": [str(customer_id)]})


def archived_filter(app) -> str:
    """The query parameter of the customer list's 档案状态 filter."""
    from admin_views.customers import ArchiveStateFilter

    view = next(view for view in app.extensions["admin"][0]._views if view.endpoint == "customers")
    index = next(i for i, flt in enumerate(view._filters) if isinstance(flt, ArchiveStateFilter))
    return f"flt0_{view.get_filter_arg(index, view._filters[index])}"


def test_admin_archives_and_restores_and_records_keep_their_link(app, client, db, agent, sign_in, customer):
    from tests.test_records_api import create

    record = create(client, agent, customer=str(customer["id"]))
    sign_in("admin", DEMO_PASSWORD)
    assert _action(client, "archive", customer["id"]).status_code == 302
    stored = db.customers.find_one({"_id": customer["id"]})
    assert stored["archived"] is True and stored["archived_at"] is not None
    assert db.records.find_one({"_id": ObjectId(record["id"])})["customer"] == customer["id"]
    assert client.get(f"/api/v1/records/complaint/{record['id']}", headers=agent).get_json()["customer"] == str(
        customer["id"])
    assert lookup(client, agent, customer["phone"]).get_json()["items"] == []
    assert f"?id={customer['id']}" not in client.get("/admin/customers/?search=" + customer["name"]).get_data(
        as_text=True)
    archived = client.get(f"/admin/customers/?search={customer['name']}&{archived_filter(app)}=archived")
    assert f"?id={customer['id']}" in archived.get_data(as_text=True)
    assert _action(client, "restore", customer["id"]).status_code == 302
    assert db.customers.find_one({"_id": customer["id"]})["archived"] is False
    assert [i["id"] for i in lookup(client, agent, customer["phone"]).get_json()["items"]] == [str(customer["id"])]


def test_agents_can_neither_archive_nor_delete(client, db, seeded, sign_in, customer):
    sign_in("agent", DEMO_PASSWORD)
    page = client.get("/admin/customers/").get_data(as_text=True)
    assert 'data-kefu-action="archive"' not in page and 'data-kefu-action="delete"' not in page
    _action(client, "archive", customer["id"])
    _action(client, "delete", customer["id"])
    client.post("/admin/customers/delete/", data={"csrf_token": csrf_token(client, "/admin/customers/"),
                                                   "id": str(customer["id"])})
    stored = db.customers.find_one({"_id": customer["id"]})
    assert stored is not None and not stored.get("archived")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/admin/")})
    sign_in("admin", DEMO_PASSWORD)
    page = client.get("/admin/customers/").get_data(as_text=True)
    assert 'data-kefu-action="archive"' in page and 'data-kefu-action="delete"' not in page
    client.post("/admin/customers/delete/", data={"csrf_token": csrf_token(client, "/admin/customers/"),
                                                   "id": str(customer["id"])})
    assert db.customers.find_one({"_id": customer["id"]}) is not None


# --- migration ----------------------------------------------------------------------------------------------

def test_migration_encrypts_plaintext_once_and_lookups_find_it(app, client, db, seeded):
    from kefu.org.access import SYSTEM_POLICY
    from kefu.org.customers import find_by_phone
    from kefu.org.migrations import encrypt_plaintext_personal_data
    from kefu.org.users import User

    old = [{"name": f"旧客户{n}", "phone": f"1390000{n:04d}", "id_number": "330106199001011236" if n == 0 else "",
            "address": "杭州市拱墅区丽水路 120 号", "grade": "B"} for n in range(7)]
    db.customers.insert_many(old)
    db.customers.insert_one({"name": "旧号码", "phone": "12345"})  # a legacy value no longer accepted
    db.users.update_one({"username": "handler"}, {"$set": {"phone": "0571-87654321"}, "$unset": {"phone_enc": ""}})
    with app.app_context():
        assert encrypt_plaintext_personal_data(batch_size=3) == 9
        assert encrypt_plaintext_personal_data(batch_size=3) == 0
        found = find_by_phone("139 0000 0003", SYSTEM_POLICY)
        assert [c.name for c in found] == ["旧客户3"] and found[0].address == "杭州市拱墅区丽水路 120 号"
        assert User.objects(username="handler").first().phone == "0571-87654321"
    for stored in db.customers.find({"name": {"$regex": "^旧"}}):
        assert not {"phone", "id_number", "address"} & set(stored), stored
    assert "1390000" not in str(list(db.customers.find())) and "丽水路" not in str(list(db.customers.find()))
    assert "87654321" not in str(db.users.find_one({"username": "handler"}))
    assert "phone_1" not in db.customers.index_information()


def test_migration_leaves_a_document_changed_meanwhile_for_the_next_batch(app, db, seeded):
    from kefu.org import migrations

    db.customers.insert_one({"name": "并发", "phone": "13900009999"})
    with app.app_context():
        collection = db.customers
        fields = migrations.PLAINTEXT_FIELDS["customers"]
        document = collection.find_one({"name": "并发"})
        collection.update_one({"_id": document["_id"]}, {"$set": {"phone": "13900008888"}})
        to_set, to_unset = migrations._changes(document, fields)
        guard = {"_id": document["_id"], "phone": document["phone"]}
        assert collection.update_one(guard, {"$set": to_set, "$unset": to_unset}).modified_count == 0
        assert migrations.encrypt_plaintext_personal_data() == 1
    stored = db.customers.find_one({"name": "并发"})
    assert "phone" not in stored and plain(app, stored["_id"]) == "13900008888"


def test_every_start_encrypts_what_an_upgrade_left_in_clear(app, runner, db, seeded):
    db.customers.insert_one({"name": "升级前", "phone": "13900007777", "id_number": "330106199001011236"})
    first = runner.invoke(args=["kefu", "prepare"])
    assert first.exit_code == 0, first.output
    assert "personal data of 1 earlier customers and users encrypted" in first.output
    stored = db.customers.find_one({"name": "升级前"})
    assert "phone" not in stored and "id_number" not in stored and "13900007777" not in str(stored)
    assert plain(app, stored["_id"], "id_number") == "330106199001011236"
    second = runner.invoke(args=["kefu", "prepare"])
    assert second.exit_code == 0 and "personal data" not in second.output
    assert db.customers.find_one({"name": "升级前"})["phone_enc"] == stored["phone_enc"]


def test_control_characters_in_a_customers_name_or_notes_are_refused_at_the_field(app, db):
    from kefu.core.errors import ValidationFailed
    from kefu.org.customers import create_customer

    with app.app_context():
        for field, value in (("name", "张\x00三"), ("notes", "备注\x1b")):
            with pytest.raises(ValidationFailed) as refused:
                create_customer({"name": "张三", **{field: value}})
            assert set(refused.value.fields) == {field} and "控制字符" in str(refused.value.fields[field])
        create_customer({"name": "张三", "notes": "第一行\n第二行"})  # line breaks belong in notes
    assert db.customers.count_documents({}) == 1
