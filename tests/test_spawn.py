"""Records created on reaching a stage (kefu.rules.spawn, the ``spawn:`` section).

002 在施工程电话回访制度 (a site callback at 开工 / 隐蔽工程 / 中期 / 完工, made when the job reaches the stage),
002 日常流程 (care after a visit: at send-off, 3 days, 5 days, 1 week, half a month) and 002 工程预验收流程 (attempt
1–3 of one job). The types are defined through the types API the way a pack or an admin writes them; every record
is made by the real app over HTTP against a real mongod, and the stored documents are checked.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from seed.demo import DEMO_PASSWORD
from tests.conftest import token_headers
from tests.test_callbacks import SHANGHAI, patch, working_days_after
from tests.test_records_api import assert_error

STAGES = ["开工", "隐蔽工程", "中期", "完工"]
AUDIENCES = ["商户", "业户", "消费者"]

FOLLOW_UP = {
    "key": "probe_follow_up", "name": "跟进测试", "number_prefix": "GJ",
    "fields": [
        {"key": "customer_name", "label": "客户姓名", "type": "text", "required": True},
        {"key": "phone", "label": "电话", "type": "phone", "sensitive": True},
        {"key": "checkpoint", "label": "节点", "type": "choice", "choices": [*STAGES, "送别", "关怀"]},
        {"key": "due_at", "label": "期限", "type": "datetime", "readonly": True},
        {"key": "planned_date", "label": "计划日期", "type": "date"},
        {"key": "attempt", "label": "第几次", "type": "integer"},
        {"key": "round", "label": "验收次数", "type": "choice", "choices": ["第一次验收", "第二次验收", "第三次验收"]},
        {"key": "audience", "label": "告知对象", "type": "choice", "choices": AUDIENCES},
    ],
    "sla": [{"key": "call", "name": "按期跟进", "start": "created", "within": {"working_days": 1},
             "until": "due_at", "done_when": {"status": ["已关闭"]}}],
}


def job(spawn: list) -> dict:
    """A job under construction whose ``spawn:`` section is ``spawn``."""
    return {
        "key": "probe_job", "name": "工程测试", "number_prefix": "GC",
        "fields": [
            {"key": "customer_name", "label": "客户姓名", "type": "text", "required": True},
            {"key": "phone", "label": "电话", "type": "phone", "sensitive": True},
            {"key": "inspection", "label": "预验收结果", "type": "choice", "choices": ["合格", "不合格"]},
            {"key": "note", "label": "备注", "type": "text"},
            {"key": "audiences", "label": "告知对象", "type": "multi_choice", "choices": AUDIENCES},
        ],
        "workflow": {"statuses": ["待开工", *STAGES, "已到访", "已关闭"], "closed": ["已关闭"]},
        "spawn": spawn,
    }


SITE_CALLBACKS = [
    {"key": f"stage_{n}", "name": f"{stage}回访", "on_status": stage, "type": "probe_follow_up",
     "values": {"checkpoint": stage}, "copy": {"customer_name": "customer_name", "phone": "phone"},
     "due": {"working_days": 1}, "due_field": "due_at"}
    for n, stage in enumerate(STAGES, start=1)
]


@pytest.fixture
def types(client, admin, calendar):
    """Define the follow-up type, then a job type with the given ``spawn:`` entries."""
    assert client.post("/api/v1/types", json=FOLLOW_UP, headers=admin).status_code == 201

    def define(spawn: list) -> None:
        response = client.post("/api/v1/types", json=job(spawn), headers=admin)
        assert response.status_code == 201, response.get_data(as_text=True)

    return define


def new_job(client, headers, **values) -> str:
    created = client.post("/api/v1/records/probe_job", headers=headers,
                          json={"customer_name": "赵六", "phone": "13612345678", **values})
    assert created.status_code == 201, created.get_data(as_text=True)
    return created.get_json()["id"]


def spawned_of(db, record_id) -> list[dict]:
    return list(db.records.find({"spawned_from.id": ObjectId(record_id)}).sort("created_at", 1))


# 002 在施工程电话回访制度 一、二: at least 4 callbacks per job — 开工、隐蔽工程、中期、完工 — each made when the job
# reaches its stage.
def test_each_stage_reached_creates_its_site_callback(app, client, types, agent, supervisor, db):
    types(SITE_CALLBACKS)
    record_id = new_job(client, agent)

    for stage in STAGES:
        response = patch(client, supervisor, "probe_job", record_id, status=stage)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["status"] == stage

    job_doc = db.records.find_one({"_id": ObjectId(record_id)})
    made = spawned_of(db, record_id)
    assert [m["data"]["checkpoint"] for m in made] == STAGES
    for n, (stage, made_doc) in enumerate(zip(STAGES, made), start=1):
        reached = job_doc["status_at"][stage]
        assert made_doc["type"] == "probe_follow_up" and made_doc["data"]["customer_name"] == "赵六"
        assert "phone" in made_doc["pii"] and made_doc["assignee"] == job_doc["created_by"]  # no assignee yet: whoever registered it
        assert made_doc["data"]["due_at"] == working_days_after(reached, 1)
        assert made_doc["spawned_from"] == {
            "type": "probe_job", "id": job_doc["_id"], "number": job_doc["number"], "rule": f"stage_{n}",
            "name": f"{stage}回访", "at": reached, "due_at": made_doc["data"]["due_at"], "attempt": 1,
            "within": {"working_days": 1}, "due_field": "due_at"}
        # The follow-up's own clock runs to its due date (a missed one stays overdue).
        assert made_doc["sla"]["call"]["due_at"] == made_doc["data"]["due_at"]
    assert [(e["rule"], e["id"], e["attempt"]) for e in job_doc["spawned"]] == [
        (f"stage_{n}", m["_id"], 1) for n, m in enumerate(made, start=1)]
    notes = list(db.record_events.find({"record_id": job_doc["_id"], "kind": "spawn"}))
    assert len(notes) == 4 and made[0]["number"] in notes[0]["text"] and "1 个工作日" in notes[0]["text"]


def test_running_the_rule_again_creates_nothing_more(app, client, types, agent, supervisor, db):
    from kefu.records import lifecycle
    from kefu.records.actor import system_actor
    from kefu.records.types import get_record_type

    types(SITE_CALLBACKS)
    record_id = new_job(client, agent)
    assert patch(client, supervisor, "probe_job", record_id, status="开工").status_code == 200
    assert patch(client, supervisor, "probe_job", record_id, note="材料进场").status_code == 200  # no new stage

    with app.test_request_context():
        document = db.records.find_one({"_id": ObjectId(record_id)})
        lifecycle.after_save(get_record_type("probe_job"), document, {"status": "待开工"}, {"status"},
                             system_actor())

    made, = spawned_of(db, record_id)
    assert len(db.records.find_one({"_id": ObjectId(record_id)})["spawned"]) == 1
    assert made["data"]["checkpoint"] == "开工"


# 002 日常流程: after a visit, care at send-off, 3 days, 5 days, 1 week and half a month.
def test_care_after_a_visit_at_send_off_3_5_7_and_15_days(client, types, agent, supervisor, db):
    offsets = {"send_off": 0, "day_3": 3, "day_5": 5, "week": 7, "half_month": 15}
    types([{"key": key, "name": f"到访关怀（{days} 天）", "on_status": "已到访", "type": "probe_follow_up",
            "values": {"checkpoint": "送别" if days == 0 else "关怀"}, "copy": {"customer_name": "customer_name"},
            "due": {"days": days}, "due_field": "planned_date"} for key, days in offsets.items()])
    record_id = new_job(client, agent)

    response = patch(client, supervisor, "probe_job", record_id, status="已到访")

    assert response.status_code == 200, response.get_data(as_text=True)
    visited = db.records.find_one({"_id": ObjectId(record_id)})["status_at"]["已到访"]
    made = {m["spawned_from"]["rule"]: m for m in spawned_of(db, record_id)}
    assert set(made) == set(offsets)
    for key, days in offsets.items():
        day = (visited + timedelta(days=days)).astimezone(SHANGHAI).date()
        assert made[key]["data"]["planned_date"] == datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        shown = client.get(f"/api/v1/records/probe_follow_up/{made[key]['_id']}", headers=agent).get_json()
        assert shown["planned_date"] == day.isoformat() and shown["customer_name"] == "赵六"


# 002 工程预验收流程: each failed inspection gets a rectification notice; attempts 1–3 are linked to one job, the
# attempt number stored on the notice for the rules that derive the third failure's penalty.
def test_each_failed_inspection_is_attempt_n_of_the_job(client, types, agent, supervisor, db):
    types([{"key": "rectify", "name": "限期整改通知", "when": {"inspection": "不合格"}, "type": "probe_follow_up",
            "copy": {"customer_name": "customer_name"}, "attempt_field": "attempt",
            "due": {"working_days": 3}, "due_field": "due_at"},
           {"key": "inspection_round", "name": "预验收", "when": {"inspection": "不合格"}, "type": "probe_follow_up",
            "copy": {"customer_name": "customer_name"}, "attempt_field": "round"}])
    record_id = new_job(client, agent)

    # A save that leaves it 不合格 (the note) is no new failure.
    for values in ({"inspection": "不合格"}, {"inspection": "合格"}, {"inspection": "不合格"}, {"note": "复查"},
                   {"inspection": "合格"}, {"inspection": "不合格"}):
        response = patch(client, supervisor, "probe_job", record_id, **values)
        assert response.status_code == 200, response.get_data(as_text=True)

    made = spawned_of(db, record_id)
    notices = [m for m in made if m["spawned_from"]["rule"] == "rectify"]
    rounds = [m for m in made if m["spawned_from"]["rule"] == "inspection_round"]
    assert [n["data"]["attempt"] for n in notices] == [1, 2, 3]
    assert [n["spawned_from"]["attempt"] for n in notices] == [1, 2, 3]
    assert [r["data"]["round"] for r in rounds] == ["第一次验收", "第二次验收", "第三次验收"]
    job_doc = db.records.find_one({"_id": ObjectId(record_id)})
    assert [e["attempt"] for e in job_doc["spawned"] if e["rule"] == "rectify"] == [1, 2, 3]
    assert all(n["spawned_from"]["id"] == job_doc["_id"] for n in made)


def test_a_due_date_counted_in_working_days_follows_a_calendar_edit(app, client, types, agent, supervisor, db):
    from kefu.calendar import workcalendar

    types(SITE_CALLBACKS)
    record_id = new_job(client, agent)
    assert patch(client, supervisor, "probe_job", record_id, status="开工").status_code == 200
    made, = spawned_of(db, record_id)
    due_day = made["data"]["due_at"].astimezone(SHANGHAI).date()

    with app.test_request_context():
        workcalendar.set_day(due_day, "holiday", "公司团建")

    moved = db.records.find_one({"_id": made["_id"]})
    expected = working_days_after(made["spawned_from"]["at"], 1)  # the package's calendar, without the new day off
    assert moved["data"]["due_at"] > expected and moved["data"]["due_at"].astimezone(SHANGHAI).date() > due_day
    assert moved["spawned_from"]["due_at"] == moved["data"]["due_at"] == moved["sla"]["call"]["due_at"]
    assert db.records.find_one({"_id": ObjectId(record_id)})["spawned"][0]["due_at"] == moved["data"]["due_at"]
    assert db.record_events.find_one({"record_id": made["_id"], "kind": "spawn", "text": {"$regex": "工作日历"}})


@pytest.mark.parametrize("change, where, words", [
    (lambda e: e.pop("on_status"), "spawn", ["on_status", "when"]),
    (lambda e: e.update({"on_status": "归档"}), "spawn", ["归档", "不在流程状态中"]),
    (lambda e: e.update({"due_field": None}), "spawn", ["due_field"]),
    (lambda e: e.update({"due_field": "checkpoint"}), "spawn", ["checkpoint", "日期"]),
    (lambda e: e.update({"attempt_field": "customer_name"}), "spawn", ["customer_name", "整数或选项"]),
    (lambda e: e.update({"copy": {"nothing": "customer_name"}}), "spawn", ["nothing"]),
    (lambda e: e.update({"type": "probe_job"}), "spawn", ["本类型自己"]),
    (lambda e: e.update({"when": {"nothing": "x"}}), "spawn", ["nothing", "不存在"]),
    (lambda e: e.update({"for_each": "audiences"}), "spawn", ["for_each", "each_into", "同时写"]),
    (lambda e: e.update({"each_into": "audience"}), "spawn", ["for_each", "each_into", "同时写"]),
    (lambda e: e.update({"for_each": "note", "each_into": "audience"}), "spawn", ["for_each", "多选字段", "note"]),
    (lambda e: e.update({"for_each": "audiences", "each_into": "nothing"}), "spawn", ["each_into", "单值字段"]),
    (lambda e: e.update({"for_each": "audiences", "each_into": "checkpoint"}), "spawn",
     ["each_into", "节点", "商户、业户、消费者"]),
])
def test_a_bad_spawn_section_is_refused_with_a_chinese_message(client, types, db, change, where, words):
    admin = token_headers(client, "admin")
    types(SITE_CALLBACKS)
    definition = client.get("/api/v1/types/probe_job", headers=admin).get_json()
    version = db.record_types.find_one({"key": "probe_job"})["version"]
    change(definition["spawn"][0])

    response = client.put("/api/v1/types/probe_job", headers=admin, json=definition)

    message = assert_error(response, 422, "validation_failed")["fields"][where]
    for word in words:
        assert word in message, message
    assert db.record_types.find_one({"key": "probe_job"})["version"] == version


# for_each: one record per value of a multi-valued field (004 沟通事项: one confirmation per target of a notice).
EACH_AUDIENCE = [{"key": "confirm", "name": "通知确认", "on_status": "开工", "type": "probe_follow_up",
                  "for_each": "audiences", "each_into": "audience", "copy": {"customer_name": "customer_name"},
                  "attempt_field": "attempt", "due": {"working_days": 1}, "due_field": "due_at"}]


def test_for_each_makes_one_record_per_value_once_even_when_the_hook_runs_again(app, client, types, agent,
                                                                                 supervisor, db):
    from kefu.records import lifecycle
    from kefu.records.actor import system_actor
    from kefu.records.types import get_record_type

    types(EACH_AUDIENCE)
    record_id = new_job(client, agent, audiences=["业户", "商户"])
    response = patch(client, supervisor, "probe_job", record_id, status="开工")
    assert response.status_code == 200, response.get_data(as_text=True)

    # The hook run again on the same save (a retried transaction) finds the records made, makes none.
    with app.test_request_context():
        document = db.records.find_one({"_id": ObjectId(record_id)})
        lifecycle.after_save(get_record_type("probe_job"), document, {"status": "待开工"}, {"status"},
                             system_actor())

    job_doc = db.records.find_one({"_id": ObjectId(record_id)})
    made = spawned_of(db, record_id)
    reached = job_doc["status_at"]["开工"]
    assert sorted(m["data"]["audience"] for m in made) == sorted(["商户", "业户"])
    for made_doc in made:
        assert made_doc["spawned_from"]["each"] == made_doc["data"]["audience"]
        # Seen where the job is seen: its registering department (the agent's), though the system made it.
        assert made_doc["created_department"] == job_doc["created_department"] is not None
        assert made_doc["spawned_from"]["at"] == reached and made_doc["data"]["attempt"] == 1  # counted per value
        assert made_doc["data"]["due_at"] == working_days_after(reached, 1) == made_doc["sla"]["call"]["due_at"]
    assert sorted((e["each"], e["id"]) for e in job_doc["spawned"]) == sorted(
        (m["data"]["audience"], m["_id"]) for m in made)
    notes = [e["text"] for e in db.record_events.find({"record_id": job_doc["_id"], "kind": "spawn"})]
    assert len(notes) == 2 and any("通知确认（商户）" in text for text in notes)
    shown = client.get(f"/api/v1/records/probe_follow_up/{made[0]['_id']}", headers=agent).get_json()
    assert shown["audience"] == made[0]["data"]["audience"]

    # A value added later is served by the same occurrence; the values already served are not doubled.
    assert patch(client, supervisor, "probe_job", record_id, audiences=AUDIENCES).status_code == 200
    made = spawned_of(db, record_id)
    assert sorted(m["data"]["audience"] for m in made) == sorted(AUDIENCES)
    assert {m["spawned_from"]["at"] for m in made} == {reached}
    assert len(db.records.find_one({"_id": ObjectId(record_id)})["spawned"]) == 3


def test_for_each_on_an_empty_field_makes_nothing_and_the_index_keeps_values_apart(app, client, types, agent,
                                                                                  supervisor, db):
    from pymongo.errors import DuplicateKeyError

    types(EACH_AUDIENCE)
    empty = new_job(client, agent)
    assert patch(client, supervisor, "probe_job", empty, status="开工").status_code == 200
    assert spawned_of(db, empty) == [] and "spawned" not in db.records.find_one({"_id": ObjectId(empty)})
    # Values given later, while the job is still at the stage, get their records from that same entry into it.
    assert patch(client, supervisor, "probe_job", empty, audiences=["业户"]).status_code == 200
    late, = spawned_of(db, empty)
    assert late["data"]["audience"] == "业户"
    assert late["spawned_from"]["at"] == db.records.find_one({"_id": ObjectId(empty)})["status_at"]["开工"]

    record_id = new_job(client, agent, audiences=["消费者"])
    assert patch(client, supervisor, "probe_job", record_id, status="开工").status_code == 200
    made, = spawned_of(db, record_id)
    twin = {k: v for k, v in made.items() if k not in ("_id", "number")}
    with pytest.raises(DuplicateKeyError):  # one record per (trigger occurrence, value), enforced by MongoDB
        db.records.insert_one({**twin, "number": "GJ-TWIN"})
    other = {**twin, "number": "GJ-OTHER", "spawned_from": {**made["spawned_from"], "each": "商户"}}
    db.records.insert_one(other)  # another value of the same occurrence is a record of its own


def test_the_rule_editor_offers_for_each_as_a_pick_of_the_types_multi_choice_fields(client, seeded, sign_in, db):
    """The record-type screen's spawn list (``listEditor`` of static/kefu_rule_editor.js, generic over the entry's
    JSON Schema): ``for_each`` is a field picker of the multi-choice fields, ``each_into`` a text box; the shipped
    通知 rule (004 沟通事项) is handed to it as stored."""
    from tests.test_rule_editor import edit_path, editor_config

    assert sign_in("admin", DEMO_PASSWORD).status_code == 302
    page = client.get(edit_path(db, "notice"))
    assert page.status_code == 200
    config = editor_config(page.get_data(as_text=True))
    entry = next(s for s in config["sections"] if s["key"] == "spawn")["schema"]["$defs"]["SpawnRule"]
    assert entry["properties"]["for_each"]["x-kefu-picker"] == "field"
    assert entry["properties"]["for_each"]["x-kefu-kind"] == "multiple" and config["kinds"]["multiple"] == [
        "multi_choice"]
    assert entry["properties"]["each_into"]["title"] == "逐项值写入"
    rule, = config["rules"]["spawn"]
    assert (rule["for_each"], rule["each_into"], rule["type"]) == ("targets", "target", "notice_confirmation")
    assert db.record_types.find_one({"key": "notice"})["spawn"][0]["for_each"] == "targets"
