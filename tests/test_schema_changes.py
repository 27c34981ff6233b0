"""Schema changes never lose data: a choice renamed in the admin or the API moves every stored value (in a background
job with progress), a removed choice stays as an inactive one, a save that did not touch a field never changes it,
a relabel moves nothing, and a type change that some values would not survive is refused naming those records.

Real MongoDB and Redis; the background job runs in a burst worker; every test checks the responses and the stored
documents."""
from __future__ import annotations

import copy
import re
from datetime import timedelta

import pytest
from bson import ObjectId
from rq import SimpleWorker

from jobs.schedule import tick
from kefu.core.clock import utcnow
from kefu.records.choice_migrations import MAX_ATTEMPTS, STALE_AFTER, fail, run
from kefu.records.migrations import rewrite_records
from seed.demo import DEMO_PASSWORD
from tests.conftest import token_headers
from tests.test_record_types import (
    definition_as_stored, filter_groups, flashed_errors, post_type_form, stored_type,
)
from tests.test_records import AdminForm

HANDOVER = {
    "key": "handover", "name": "交付问题", "number_prefix": "JF",
    "fields": [
        {"key": "stage", "label": "阶段", "type": "choice", "choices": ["交付前", "交付后"], "required": True,
         "list": True, "filter": True, "search": True},
        {"key": "areas", "label": "部位", "type": "multi_choice", "choices": ["厨房", "卫生间", "客厅"], "filter": True,
         "list": True},
        {"key": "note", "label": "备注", "type": "text", "list": True},
    ],
}


@pytest.fixture
def api(app, seeded):
    """``api(method, path, json=None, query=None)`` as the demo admin, with a Bearer token (no session)."""
    caller = app.test_client()
    headers = token_headers(caller, "admin")

    def call(method, path, json=None, query=None):
        return caller.open(path, method=method, json=json, query_string=query, headers=headers)

    return call


@pytest.fixture
def admin_client(client, seeded, sign_in):
    assert sign_in("admin", DEMO_PASSWORD).status_code == 302
    return client


@pytest.fixture
def handover(api):
    """The type, with records: two 交付后 (one of them with 厨房 and 卫生间), one 交付前; number → id."""
    assert api("POST", "/api/v1/types", json=HANDOVER).status_code == 201
    made = {}
    for name, values in (("after1", {"stage": "交付后", "areas": ["厨房", "卫生间"], "note": "漏水"}),
                         ("after2", {"stage": "交付后", "note": "墙面开裂"}),
                         ("before", {"stage": "交付前", "areas": ["客厅"], "note": "验房"})):
        response = api("POST", "/api/v1/records/handover", json=values)
        assert response.status_code == 201, response.get_data(as_text=True)
        made[name] = response.get_json()
    return made


def run_background_jobs(app) -> None:
    with app.app_context():
        SimpleWorker(["default"], connection=app.extensions["kefu_redis"]).work(burst=True, with_scheduler=False)


def stored(db, record) -> dict:
    return db.records.find_one({"_id": ObjectId(record["id"])})


def with_field(definition: dict, key: str, **changes) -> dict:
    changed = copy.deepcopy(definition)
    field = next(f for f in changed["fields"] if f["key"] == key)
    field.update(changes)
    return changed


def listed_numbers(api, **query) -> set[str]:
    response = api("GET", "/api/v1/records/handover", query=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {item["number"] for item in response.get_json()["items"]}


def admin_filter_arg(page: str, label: str, operation: str = "等于") -> dict:
    return next(entry for entry in filter_groups(page)[label] if entry["operation"] == operation)


def assert_migrated(app, db, handover, migration_query: dict) -> None:
    """The rename is queued, not done, until the worker runs; then every stored value, its grams, version and
    audit entry follow, and the migration says it is done."""
    migration = db.choice_migrations.find_one(migration_query)
    assert migration is not None and migration["status"] == "queued" and migration["total"] == 2
    assert stored(db, handover["after1"])["data"]["stage"] == "交付后"

    run_background_jobs(app)

    migration = db.choice_migrations.find_one({"_id": migration["_id"]})
    assert (migration["status"], migration["done"], migration["renames"]) == ("done", 2, [["交付后", "交付以后"]])
    for name in ("after1", "after2"):
        document = stored(db, handover[name])
        assert document["data"]["stage"] == "交付以后" and document["version"] == 2
        assert "以后" in document["grams"] and "交付以后" in document["search_text"]
        entry = db.audit_log.find_one({"record_id": document["_id"], "migration": str(migration["_id"])})
        assert entry["changes"] == [{"field": "stage", "label": "阶段", "before": "交付后", "after": "交付以后"}]
    untouched = stored(db, handover["before"])
    assert untouched["data"]["stage"] == "交付前" and untouched["version"] == 1
    assert stored(db, handover["after1"])["data"]["areas"] == ["厨房", "卫生间"]
    definition = stored_type(db, "handover")
    stage = next(f for f in definition["fields"] if f["key"] == "stage")
    assert stage["choices"] == ["交付前", "交付以后"] and stage["renamed_choices"] == [["交付后", "交付以后"]]
    assert not stage.get("inactive_choices")

    # A second run of the same job changes nothing (idempotent).
    with app.app_context():
        assert run(str(migration["_id"])).done == 2
    assert stored(db, handover["after1"])["version"] == 2


def test_choice_rename_through_the_admin_form_migrates_every_stored_value(app, admin_client, api, db, handover):
    renamed = with_field(HANDOVER, "stage", choices=["交付前", "交付后 → 交付以后"])

    response = post_type_form(admin_client, renamed, db=db)

    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    assert_migrated(app, db, handover, {"record_type": "handover", "field": "stage", "created_by": "admin"})
    listing = admin_client.get("/admin/record_types/").get_data(as_text=True)
    assert "阶段：交付后 → 交付以后，2/2 条（已完成）" in listing

    # Old and new names find the same records, in the admin list filter and the API.
    after = {handover["after1"]["number"], handover["after2"]["number"]}
    assert listed_numbers(api, stage="交付以后") == after
    assert listed_numbers(api, stage__eq="交付后") == after
    assert listed_numbers(api, stage__in="交付后,交付前") == {*after, handover["before"]["number"]}
    page = admin_client.get("/admin/records/handover/").get_data(as_text=True)
    stage_eq = admin_filter_arg(page, "阶段")
    assert [value for value, _label in stage_eq["options"]] == ["交付前", "交付以后"]
    filtered = admin_client.get(f"/admin/records/handover/?flt0_{stage_eq['arg']}=交付以后").get_data(as_text=True)
    assert all(number in filtered for number in after) and handover["before"]["number"] not in filtered
    # The history of a record shows the rename.
    details = admin_client.get(f"/admin/records/handover/details/?id={handover['after1']['id']}")
    assert "交付以后" in details.get_data(as_text=True)


def test_choice_rename_through_the_api_migrates_every_stored_value(app, api, db, handover):
    renamed = with_field(HANDOVER, "stage", choices=["交付前", "交付以后"], rename_choices={"交付后": "交付以后"})

    response = api("PUT", "/api/v1/types/handover", json=renamed)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert "rename_choices" not in str(response.get_json())
    assert_migrated(app, db, handover, {"record_type": "handover", "field": "stage"})
    after = {handover["after1"]["number"], handover["after2"]["number"]}
    assert listed_numbers(api, stage="交付后") == listed_numbers(api, stage="交付以后") == after
    assert listed_numbers(api, stage__ne="交付后") == {handover["before"]["number"]}
    body = api("GET", f"/api/v1/records/handover/{handover['after2']['id']}").get_json()
    assert body["stage"] == "交付以后"


def test_a_rename_whose_job_was_lost_is_queued_again_by_the_tick(app, api, db, handover):
    """Redis lost the queued job (emptied here as a restart without persistence would): the scheduler's tick queues
    the migration again once it is older than STALE_AFTER, and the worker finishes it."""
    renamed = with_field(HANDOVER, "stage", choices=["交付前", "交付以后"], rename_choices={"交付后": "交付以后"})
    assert api("PUT", "/api/v1/types/handover", json=renamed).status_code == 200
    app.extensions["kefu_redis"].flushdb()
    with app.app_context():
        assert "choice migrations queued again: 0" in tick()  # not stale yet: its job may still be on its way
        assert "choice migrations queued again: 1" in tick(utcnow() + STALE_AFTER + timedelta(seconds=1))
    run_background_jobs(app)
    migration = db.choice_migrations.find_one({"record_type": "handover"})
    assert (migration["status"], migration["done"]) == ("done", 2)
    assert stored(db, handover["after1"])["data"]["stage"] == "交付以后"


def test_rename_of_a_multi_choice_option_and_refusals(app, api, db, handover):
    refused = api("PUT", "/api/v1/types/handover",
                  json=with_field(HANDOVER, "areas", choices=["厨房", "客厅"], rename_choices={"阳台": "客厅"}))
    assert refused.status_code == 422 and "不是原有的可选项" in refused.get_data(as_text=True)
    refused = api("PUT", "/api/v1/types/handover",
                  json=with_field(HANDOVER, "note", rename_choices={"a": "b"}))
    assert refused.status_code == 422 and "只有已有的单选、多选字段" in refused.get_data(as_text=True)
    assert db.choice_migrations.count_documents({}) == 0

    merged = with_field(HANDOVER, "areas", choices=["厨房", "客厅"], rename_choices={"卫生间": "厨房"})
    assert api("PUT", "/api/v1/types/handover", json=merged).status_code == 200
    run_background_jobs(app)

    assert stored(db, handover["after1"])["data"]["areas"] == ["厨房"]  # merged into one, no repeat
    assert stored(db, handover["before"])["data"]["areas"] == ["客厅"]
    assert listed_numbers(api, areas="卫生间") == {handover["after1"]["number"]}


def test_removed_choice_stays_as_an_inactive_choice(app, admin_client, api, db, handover):
    removed = with_field(HANDOVER, "stage", choices=["交付前", "交付以后"])
    removed = with_field(removed, "areas", choices=["厨房", "卫生间"])  # 客厅 is held by one record

    assert api("PUT", "/api/v1/types/handover", json=removed).status_code == 200

    definition = stored_type(db, "handover")
    stage, areas = (next(f for f in definition["fields"] if f["key"] == key) for key in ("stage", "areas"))
    assert stage["inactive_choices"] == ["交付后"] and areas["inactive_choices"] == ["客厅"]
    assert stored(db, handover["after1"])["data"]["stage"] == "交付后"  # nothing rewritten
    assert db.choice_migrations.count_documents({}) == 0
    # Still found, shown and exported …
    after = {handover["after1"]["number"], handover["after2"]["number"]}
    assert listed_numbers(api, stage="交付后") == after
    assert listed_numbers(api, areas="客厅") == {handover["before"]["number"]}
    page = admin_client.get("/admin/records/handover/").get_data(as_text=True)
    assert page.count("交付后") >= 2
    stage_eq = admin_filter_arg(page, "阶段")
    assert ["交付后", "交付后（已停用）"] in [list(option) for option in stage_eq["options"]]
    details = admin_client.get(f"/admin/records/handover/details/?id={handover['after1']['id']}")
    assert "交付后" in details.get_data(as_text=True)
    exported = api("GET", "/api/v1/records/handover/export.csv").get_data(as_text=True)
    assert exported.count("交付后") == 2
    # … but a new record cannot pick it.
    refused = api("POST", "/api/v1/records/handover", json={"stage": "交付后"})
    assert refused.status_code == 422 and "不是可选项" in refused.get_data(as_text=True)
    # Putting one back makes it active again; a choice no record holds is simply dropped.
    for choices in (["厨房", "卫生间", "客厅", "阳台"], ["厨房", "卫生间", "客厅"]):
        assert api("PUT", "/api/v1/types/handover", json=with_field(removed, "areas", choices=choices)
                   ).status_code == 200
        areas = next(f for f in stored_type(db, "handover")["fields"] if f["key"] == "areas")
        assert areas["choices"] == choices and not areas.get("inactive_choices")
    # The admin's field editor shows the inactive choices.
    editor = admin_client.get(f"/admin/record_types/edit/?id={stored_type(db, 'handover')['_id']}")
    assert re.search(r'<textarea[^>]*name="fields-0-inactive_choices"[^>]*readonly[^>]*>\s*交付后\s*</textarea>',
                     editor.get_data(as_text=True))


def test_untouched_field_survives_an_admin_form_save(app, admin_client, api, db, handover):
    assert api("PUT", "/api/v1/types/handover", json=with_field(
        with_field(HANDOVER, "stage", choices=["交付前", "交付以后"]), "areas", choices=["厨房"])).status_code == 200
    record = handover["after1"]
    path = f"/admin/records/handover/edit/?id={record['id']}"

    page = admin_client.get(path).get_data(as_text=True)
    assert re.search(r'<option selected value="交付后">交付后（已停用）</option>', page), page
    form = AdminForm(page).fields
    assert form["stage"] == "交付后" and form["areas"] == ["厨房", "卫生间"]
    form["note"] = "漏水已修"
    response = admin_client.post(path, data=form)

    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    document = stored(db, record)
    assert document["data"] == {"stage": "交付后", "areas": ["厨房", "卫生间"], "note": "漏水已修"}
    entry = db.audit_log.find_one({"record_id": document["_id"], "action": "update"})
    assert [change["field"] for change in entry["changes"]] == ["note"]

    # Taking one inactive option off a multi-choice keeps the other held one.
    form = AdminForm(admin_client.get(path).get_data(as_text=True)).fields
    form["areas"] = ["卫生间"]
    assert admin_client.post(path, data=form).status_code == 302
    assert stored(db, record)["data"]["areas"] == ["卫生间"]


def test_untouched_field_survives_an_api_save(api, db, handover):
    assert api("PUT", "/api/v1/types/handover", json=with_field(
        with_field(HANDOVER, "stage", choices=["交付前", "交付以后"]), "areas", choices=["厨房"])).status_code == 200
    record = handover["after1"]
    current = api("GET", f"/api/v1/records/handover/{record['id']}").get_json()

    # The whole record sent back, unchanged stored values included, with one change.
    sent = {key: current[key] for key in ("stage", "areas", "note")}
    response = api("PATCH", f"/api/v1/records/handover/{record['id']}",
                   json={**sent, "note": "已回访", "version": current["version"]})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["stage"] == "交付后"
    assert stored(db, record)["data"] == {"stage": "交付后", "areas": ["厨房", "卫生间"], "note": "已回访"}
    # Left out: kept.
    response = api("PATCH", f"/api/v1/records/handover/{record['id']}", json={"note": "再次回访", "version": 2})
    assert response.status_code == 200 and stored(db, record)["data"]["stage"] == "交付后"
    # Picking the inactive choice anew is refused; so is adding an inactive option to a record that lacks it.
    other = handover["before"]
    refused = api("PATCH", f"/api/v1/records/handover/{other['id']}", json={"stage": "交付后", "version": 1})
    assert refused.status_code == 422 and stored(db, other)["data"]["stage"] == "交付前"
    refused = api("PATCH", f"/api/v1/records/handover/{other['id']}", json={"areas": ["卫生间"], "version": 1})
    assert refused.status_code == 422 and stored(db, other)["version"] == 1
    # Changing it to an active choice works.
    changed = api("PATCH", f"/api/v1/records/handover/{record['id']}", json={"stage": "交付以后", "version": 3})
    assert changed.status_code == 200 and stored(db, record)["data"]["stage"] == "交付以后"


def test_relabel_moves_nothing(api, db, handover):
    before = list(db.records.find({"type": "handover"}, sort=[("_id", 1)]))
    relabelled = with_field(HANDOVER, "stage", label="交付阶段", label_en="Stage")

    response = api("PUT", "/api/v1/types/handover", json=relabelled)

    assert response.status_code == 200 and response.get_json()["version"] == 2
    assert list(db.records.find({"type": "handover"}, sort=[("_id", 1)])) == before
    stage = next(f for f in stored_type(db, "handover")["fields"] if f["key"] == "stage")
    assert (stage["key"], stage["label"]) == ("stage", "交付阶段")
    body = api("GET", f"/api/v1/records/handover/{handover['after1']['id']}").get_json()
    assert body["stage"] == "交付后"
    assert db.choice_migrations.count_documents({}) == 0


def test_type_change_refusal_lists_the_records_at_the_admin_field(admin_client, api, db, handover):
    as_text = with_field(HANDOVER, "note", type="integer")
    before = stored_type(db, "handover")

    response = post_type_form(admin_client, as_text, db=db)

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert stored_type(db, "handover") == before
    numbers = "、".join(handover[name]["number"] for name in ("after1", "after2", "before"))
    assert f"3 条记录的值无法转换为“整数”，请先修改：{numbers}" in re.sub(r"\s+", " ", page)
    field_error = re.search(r'name="fields-2-type".*?</select>(.*?)</div>', page, flags=re.S)
    assert field_error and "无法转换" in field_error.group(1), page
    refused = api("PUT", "/api/v1/types/handover", json=as_text)
    assert refused.status_code == 422 and handover["after2"]["number"] in refused.get_json()["error"]["fields"]["note"]


# -- a rename the rules name, retries, chained renames, type changes, untouched values ---------------------------

DONE_WHEN_HANDED_OVER = [{"key": "handed", "name": "交付完成", "within": {"days": 3}, "done_when": {"stage": "交付后"}}]


def test_rename_of_a_choice_an_sla_condition_names_is_refused_until_the_rule_follows(app, api, db):
    """A done_when naming 交付后: renaming 交付后 alone is refused at the field, naming the clock; renaming it with
    the condition changed in the same save works, and a record saved before its value moved keeps its met clock."""
    assert api("POST", "/api/v1/types", json={**HANDOVER, "sla": DONE_WHEN_HANDED_OVER}).status_code == 201
    made = api("POST", "/api/v1/records/handover", json={"stage": "交付后", "note": "漏水"}).get_json()
    met_at = stored(db, made)["sla"]["handed"]["met_at"]
    assert met_at is not None
    definition = stored_type(db, "handover")

    refused = api("PUT", "/api/v1/types/handover", json={**with_field(
        HANDOVER, "stage", choices=["交付前", "交付以后"], rename_choices={"交付后": "交付以后"}),
        "sla": DONE_WHEN_HANDED_OVER})

    assert refused.status_code == 422
    assert refused.get_json()["error"]["fields"]["fields.1"] == (
        "字段“阶段”：时限“交付完成”的完成条件使用了“交付后”，请先修改该规则再改名")
    assert stored_type(db, "handover") == definition and db.choice_migrations.count_documents({}) == 0

    followed = [{**DONE_WHEN_HANDED_OVER[0], "done_when": {"stage": "交付以后"}}]
    response = api("PUT", "/api/v1/types/handover", json={**with_field(
        HANDOVER, "stage", choices=["交付前", "交付以后"], rename_choices={"交付后": "交付以后"}), "sla": followed})
    assert response.status_code == 200, response.get_data(as_text=True)
    # Saved while it still holds the old name (the migration has not run): the clock stays met, not re-armed.
    saved = api("PATCH", f"/api/v1/records/handover/{made['id']}", json={"note": "漏水已修", "version": 1})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    document = stored(db, made)
    assert document["data"]["stage"] == "交付后" and document["sla"]["handed"]["met_at"] == met_at
    assert document["sla_live"] == 0
    run_background_jobs(app)
    document = stored(db, made)
    assert document["data"]["stage"] == "交付以后" and document["sla"]["handed"]["met_at"] == met_at


def test_rename_of_a_callback_answer_another_type_names_is_refused(api, db):
    """The complaint's callback rule names the callback type's 不满意 (rejected_values) and 投诉回访 (values)."""
    callback = definition_as_stored(db, "callback")
    result = next(f for f in callback["fields"] if f["key"] == "result")
    kind = next(f for f in callback["fields"] if f["key"] == "callback_type")
    before = stored_type(db, "callback")

    for field, old, new in ((result, "不满意", "很不满意"), (kind, "投诉回访", "投诉类回访")):
        changed = with_field(callback, field["key"], rename_choices={old: new},
                             choices=[new if choice == old else choice for choice in field["choices"]])
        refused = api("PUT", "/api/v1/types/callback", json=changed)
        assert refused.status_code == 422, refused.get_data(as_text=True)
        part = "rejected_values" if old == "不满意" else "values"
        message = next(iter(refused.get_json()["error"]["fields"].values()))
        assert re.search(f"“(投诉|报修)”的回访规则 callback.{part}使用了“{old}”，请先修改该规则再改名", message), message
    assert stored_type(db, "callback") == before and db.choice_migrations.count_documents({}) == 0


def rename_stage(api, new: str = "交付以后", old: str = "交付后", choices=("交付前",)) -> None:
    response = api("PUT", "/api/v1/types/handover", json=with_field(
        HANDOVER, "stage", choices=[*choices, new], rename_choices={old: new}))
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_failed_migration_is_retried_by_the_tick_a_few_times_and_resumes_where_it_stopped(app, api, db, handover):
    rename_stage(api)
    app.extensions["kefu_redis"].flushdb()  # its job lost
    migration = db.choice_migrations.find_one({"record_type": "handover"})
    first, second = sorted((ObjectId(handover[name]["id"]) for name in ("after1", "after2")))
    # A run stopped after the first record (its worker killed): noted as failed, its place kept.
    db.choice_migrations.update_one({"_id": migration["_id"]}, {"$set": {"last_id": first, "attempts": 1}})
    with app.app_context():
        fail(str(migration["_id"]), "WorkerKilled: the job's worker was killed")
        assert "choice migrations queued again: 0" in tick()
        assert "choice migrations queued again: 1" in tick(utcnow() + STALE_AFTER + timedelta(seconds=1))
    run_background_jobs(app)

    migration = db.choice_migrations.find_one({"_id": migration["_id"]})
    assert (migration["status"], migration["done"], migration["attempts"]) == ("done", 2, 2)
    assert "last_id" not in migration and migration["error"] is None
    assert [stored(db, {"id": str(i)})["data"]["stage"] for i in (first, second)] == ["交付以后", "交付以后"]
    # It resumed after the record it had got to, then went over all of them again.
    entries = list(db.audit_log.find({"migration": str(migration["_id"])}).sort("_id", 1))
    assert [entry["record_id"] for entry in entries] == [second, first]

    # A migration that failed as often as allowed is left failed.
    rename_stage(api, "交付完成", old="交付以后")
    app.extensions["kefu_redis"].flushdb()
    again = db.choice_migrations.find_one({"record_type": "handover", "_id": {"$ne": migration["_id"]}})
    db.choice_migrations.update_one({"_id": again["_id"]}, {"$set": {"attempts": MAX_ATTEMPTS}})
    with app.app_context():
        fail(str(again["_id"]), "RuntimeError: boom")
        assert "choice migrations queued again: 0" in tick(utcnow() + STALE_AFTER + timedelta(seconds=1))
    assert db.choice_migrations.find_one({"_id": again["_id"]})["status"] == "failed"
    assert stored(db, handover["after1"])["data"]["stage"] == "交付以后"


def test_a_name_renamed_again_before_its_migration_ran_ends_at_the_last_name(app, api, db, handover):
    rename_stage(api)  # 交付后 → 交付以后
    rename_stage(api, "交付完成", old="交付以后")  # then 交付以后 → 交付完成, before the first one ran
    first, second = (str(m["_id"]) for m in db.choice_migrations.find({"record_type": "handover"}).sort("_id", 1))
    with app.app_context():
        assert run(second).done == 0  # nothing holds 交付以后 yet
        assert run(first).done == 2  # 交付后 goes straight to 交付完成

    for name in ("after1", "after2"):
        assert stored(db, handover[name])["data"]["stage"] == "交付完成"
    stage = next(f for f in stored_type(db, "handover")["fields"] if f["key"] == "stage")
    assert stage["choices"] == ["交付前", "交付完成"]
    assert stage["renamed_choices"] == [["交付后", "交付完成"], ["交付以后", "交付完成"]]
    assert listed_numbers(api, stage="交付后") == {handover["after1"]["number"], handover["after2"]["number"]}


def test_a_choice_with_an_arrow_stays_a_choice_in_the_admin_field_editor(admin_client, api, db):
    arrowed = with_field(HANDOVER, "stage", choices=["交付前", "交付后->返修"])
    assert api("POST", "/api/v1/types", json=arrowed).status_code == 201
    made = api("POST", "/api/v1/records/handover", json={"stage": "交付后->返修"})
    assert made.status_code == 201, made.get_data(as_text=True)

    response = post_type_form(admin_client, with_field(arrowed, "note", label="说明"), db=db)

    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    fields = stored_type(db, "handover")["fields"]
    assert fields[0]["choices"] == ["交付前", "交付后->返修"] and fields[2]["label"] == "说明"
    assert db.choice_migrations.count_documents({}) == 0
    assert stored(db, made.get_json())["data"]["stage"] == "交付后->返修"
    # A line whose left side is a held name is a rename.
    response = post_type_form(admin_client, with_field(arrowed, "stage", choices=["交付前 → 交付之前", "交付后->返修"]),
                              db=db)
    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    stage = stored_type(db, "handover")["fields"][0]
    assert stage["choices"] == ["交付之前", "交付后->返修"] and stage["renamed_choices"] == [["交付前", "交付之前"]]


def test_type_change_never_overwrites_a_newer_value_and_refuses_a_sensitive_field(app, api, db, handover):
    response = api("PUT", "/api/v1/types/handover", json=with_field(HANDOVER, "note", type="textarea"))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [stored(db, handover[n])["data"]["note"] for n in ("after1", "after2")] == ["漏水", "墙面开裂"]
    assert stored(db, handover["after1"])["version"] == 1  # the value means the same: a form opened before saves

    # The write-back compares the value it read: a save between the read and the write stands.
    def converted(document):
        if document["_id"] == ObjectId(handover["after1"]["id"]):
            saved = api("PATCH", f"/api/v1/records/handover/{handover['after1']['id']}",
                        json={"note": "漏水已修", "version": 1})
            assert saved.status_code == 200, saved.get_data(as_text=True)
        return {"data.note": document["data"]["note"] + "（已转换）"}

    with app.app_context():
        changed = rewrite_records({"type": "handover", "data.note": {"$ne": None}}, {"data.note": 1}, converted,
                                  unchanged="data.note")
    assert changed == 2
    assert stored(db, handover["after1"])["data"]["note"] == "漏水已修"
    assert stored(db, handover["after2"])["data"]["note"] == "墙面开裂（已转换）"

    # A sensitive field's values are stored encrypted: a type change is refused while records hold any.
    secret = {**HANDOVER, "fields": [*HANDOVER["fields"],
                                     {"key": "owner", "label": "业主", "type": "text", "sensitive": True}]}
    assert api("PUT", "/api/v1/types/handover", json=secret).status_code == 200
    assert api("PUT", "/api/v1/types/handover", json=with_field(secret, "owner", type="textarea")).status_code == 200
    secret = with_field(secret, "owner", type="textarea")
    saved = api("PATCH", f"/api/v1/records/handover/{handover['before']['id']}",
                json={"owner": "张三", "version": 1})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    definition, blob = stored_type(db, "handover"), stored(db, handover["before"])["pii"]["owner"]

    refused = api("PUT", "/api/v1/types/handover", json=with_field(secret, "owner", type="text"))

    assert refused.status_code == 422
    assert refused.get_json()["error"]["fields"]["owner"] == (
        f"敏感字段已有记录保存了值，不能改类型（可新建一个字段）：{handover['before']['number']}")
    assert stored_type(db, "handover") == definition and stored(db, handover["before"])["pii"]["owner"] == blob
    body = api("GET", f"/api/v1/records/handover/{handover['before']['id']}").get_json()
    assert body["owner"] == "张三"


TEXTAREA = {"key": "detail", "label": "详情", "type": "textarea", "max_length": 100}


def test_an_untouched_multiline_text_or_reordered_multi_choice_is_not_rewritten(app, admin_client, api, db):
    definition = {**HANDOVER, "fields": [*HANDOVER["fields"], TEXTAREA]}
    assert api("POST", "/api/v1/types", json=definition).status_code == 201
    made = api("POST", "/api/v1/records/handover", json={
        "stage": "交付后", "areas": ["厨房", "卫生间"], "detail": "第一行\n第二行"}).get_json()
    # Tighter since: detail at most 3 characters; the areas offered in another order.
    tightened = with_field(with_field(definition, "detail", max_length=3), "areas", choices=["卫生间", "客厅", "厨房"])
    assert api("PUT", "/api/v1/types/handover", json=tightened).status_code == 200
    path = f"/admin/records/handover/edit/?id={made['id']}"

    form = AdminForm(admin_client.get(path).get_data(as_text=True)).fields
    assert form["areas"] == ["卫生间", "厨房"]
    form["detail"] = form["detail"].replace("\n", "\r\n")  # as a browser posts a textarea
    assert form["detail"] == "第一行\r\n第二行"
    form["note"] = "已约验房"
    response = admin_client.post(path, data=form)

    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    document = stored(db, made)
    assert document["data"] == {"stage": "交付后", "areas": ["厨房", "卫生间"], "note": "已约验房",
                                "detail": "第一行\n第二行"}
    entry = db.audit_log.find_one({"record_id": document["_id"], "action": "update"})
    assert [change["field"] for change in entry["changes"]] == ["note"]

    # The API alike: sent back in another order and with "\r\n", nothing changes (no new version).
    response = api("PATCH", f"/api/v1/records/handover/{made['id']}", json={
        "areas": ["卫生间", "厨房"], "detail": "第一行\r\n第二行", "version": 2})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["areas"] == ["厨房", "卫生间"]
    assert stored(db, made)["version"] == 2 and stored(db, made)["data"] == document["data"]
    # A real change to the text is held to the tighter limit.
    refused = api("PATCH", f"/api/v1/records/handover/{made['id']}", json={"detail": "第一行\n第三行", "version": 2})
    assert refused.status_code == 422 and "最多 3 个字符" in refused.get_data(as_text=True)


@pytest.mark.parametrize("option, value", [("choices", 5), ("inactive_choices", 5), ("renamed_choices", 5),
                                           ("inactive_choices", [[1]]), ("choices", ["交付前", ["交付后"]])])
def test_choice_options_of_a_wrong_shape_are_refused_not_a_server_error(api, db, handover, option, value):
    before = stored_type(db, "handover")
    response = api("PUT", "/api/v1/types/handover", json=with_field(HANDOVER, "stage", **{option: value}))
    assert response.status_code == 422, response.get_data(as_text=True)
    assert stored_type(db, "handover")["fields"] == before["fields"]
