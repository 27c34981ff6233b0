"""Complaint levels as rules (kefu.rules.levels, the ``levels:`` section of the shipped complaint templates).

Levels rise automatically — a claim of 20,000 CNY, a safety or brand risk, the same issue from 5 units of a
project, a customer's repeat complaint, 3 communications, an important complaint open over 3 months — and never
fall without a person. Each raise is a ``level`` timeline event with its reason and the new level's deadlines
apply at once. The customer rejecting the result raises one level and sends the record back to rework. Every
test drives the real app over HTTP against a real mongod and checks the response and what is stored.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from kefu.records.fields import FIELD_TYPES
from kefu.rules import level_rules, report, shapes
from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token, token_headers
from tests.test_record_list import COMMANDS, copies
from tests.test_records_api import assert_error, complaint

SHANGHAI = ZoneInfo("Asia/Shanghai")
UNITS = ("1幢1单元101", "1幢1单元102", "1幢1单元201", "1幢1单元202", "1幢2单元101", "1幢2单元102")


def phone(n: int) -> str:
    """A distinct customer's phone (the repeat-customer rule compares phones)."""
    return f"1391234{n:04d}"


def create(client, headers, **overrides) -> dict:
    response = client.post("/api/v1/records/complaint", json=complaint(**overrides), headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def patch(client, headers, record_id, **values):
    current = client.get(f"/api/v1/records/complaint/{record_id}", headers=headers).get_json()
    return client.patch(f"/api/v1/records/complaint/{record_id}", headers=headers,
                        json={"version": current["version"], **values})


def stored(db, record_id) -> dict:
    return db.records.find_one({"_id": ObjectId(record_id)})


def level_of(db, record_id) -> str:
    return stored(db, record_id)["data"]["level"]


def level_events(db, record_id) -> list[dict]:
    return list(db.record_events.find({"record_id": ObjectId(record_id), "kind": "level"}).sort("at", 1))


def add_event(client, headers, record_id, kind, text="与业主沟通整改方案"):
    return client.post(f"/api/v1/records/complaint/{record_id}/events", headers=headers,
                       json={"kind": kind, "text": text})


# -- rules on the record's own values ------------------------------------------------------------------

def test_a_claim_of_20000_makes_it_major_with_a_reason_and_the_major_deadlines(client, agent, db):
    below = create(client, agent, phone=phone(1), claim_amount="19999.99")
    major = create(client, agent, phone=phone(2), claim_amount="20000")

    assert below["level"] == "一般" and level_of(db, below["id"]) == "一般" and not level_events(db, below["id"])
    assert major["level"] == "重大"  # the response already shows the raised level
    document = stored(db, major["id"])
    assert document["data"]["level"] == "重大" and document["level_rules"] == ["at_least:claim_amount:重大"]
    event, = level_events(db, major["id"])
    assert event["text"] == "等级 一般 → 重大：客户索赔 2 万元及以上" and event["by_name"] == "系统"
    # The major level's deadlines apply at once (004 投诉处理 1: "immediately" is a 30-minute forward clock, not
    # "0 hours" — overdue the moment it is registered), and its plan clock (003 §4.1.3).
    assert document["sla"]["forward"]["due_at"] == document["data"]["received_at"] + timedelta(minutes=30)
    assert "major_plan" in document["sla"] and "resolve" not in document["sla"]
    assert "major_plan" in major["sla"]
    shown = client.get(f"/api/v1/records/complaint/{major['id']}", headers=agent).get_json()
    assert [e["text"] for e in shown["events"] if e["kind"] == "level"] == ["等级 一般 → 重大：客户索赔 2 万元及以上"]


def test_a_safety_or_brand_flag_makes_it_major_when_registered_or_edited(client, agent, db):
    safety = create(client, agent, phone=phone(1), safety_risk=True)
    assert safety["level"] == "重大"
    assert "已发生或潜在发生客户安全的情况" in level_events(db, safety["id"])[0]["text"]

    later = create(client, agent, phone=phone(2), category="销售承诺")
    assert later["level"] == "一般"
    response = patch(client, agent, later["id"], brand_risk="是")

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["level"] == "重大" and level_of(db, later["id"]) == "重大"
    event, = level_events(db, later["id"])
    assert event["text"] == "等级 一般 → 重大：对企业品牌、声誉、利益或诉讼造成负面影响"


def test_levels_never_fall_automatically_but_a_person_may_set_any_level(client, agent, supervisor, db):
    record = create(client, agent, phone=phone(1), claim_amount="30000")
    assert level_of(db, record["id"]) == "重大"

    # The claim drops: the level stays.
    assert patch(client, agent, record["id"], claim_amount="100").status_code == 200
    assert level_of(db, record["id"]) == "重大" and len(level_events(db, record["id"])) == 1

    # A person lowers it through the normal edit: it stands, also when the claim is edited again.
    response = patch(client, supervisor, record["id"], level="一般")
    assert response.status_code == 200 and response.get_json()["level"] == "一般"
    assert patch(client, supervisor, record["id"], claim_amount="35000", content="业主补充索赔").status_code == 200
    assert level_of(db, record["id"]) == "一般" and len(level_events(db, record["id"])) == 1
    audit = db.audit_log.find_one({"record_id": ObjectId(record["id"]), "changes.field": "level",
                                   "by_name": "陈立峰"})
    assert audit["changes"][0]["before"] == "重大" and audit["changes"][0]["after"] == "一般"

    # 无效 is outside the order: never raised.
    invalid = create(client, agent, phone=phone(2), level="无效", claim_amount="50000", safety_risk=True)
    assert invalid["level"] == "无效" and not level_events(db, invalid["id"])


# -- the same issue from 5 units of a project ------------------------------------------------------------

def test_the_same_category_from_5_units_of_a_project_makes_all_of_them_major(client, agent, db):
    # Four units (one of them twice), another category and another project: no five units yet.
    first = [create(client, agent, phone=phone(n), unit=unit)["id"] for n, unit in enumerate(UNITS[:4], start=1)]
    first.append(create(client, agent, phone=phone(5), unit=UNITS[0])["id"])
    other_category = create(client, agent, phone=phone(6), unit=UNITS[4], category="销售承诺")["id"]
    other_project = create(client, agent, phone=phone(7), project="钱塘·星澜苑", unit="1幢1单元101")["id"]
    assert {level_of(db, record_id) for record_id in [*first, other_category, other_project]} == {"一般"}

    fifth = create(client, agent, phone=phone(8), unit=UNITS[5])

    assert fifth["level"] == "重大"
    for record_id in [*first, fifth["id"]]:
        assert level_of(db, record_id) == "重大"
        event, = level_events(db, record_id)
        assert event["text"] == "等级 一般 → 重大：同一项目相同类别的投诉 30 天内来自 5 户及以上"
    assert level_of(db, other_category) == "一般" and level_of(db, other_project) == "一般"

    # Reclassified and back: the rule runs again, nobody is raised twice and nothing falls.
    assert patch(client, agent, first[0], category="销售承诺").status_code == 200
    assert level_of(db, first[0]) == "重大"
    assert patch(client, agent, first[0], category="工程质量").status_code == 200
    assert all(len(level_events(db, record_id)) == 1 for record_id in [*first, fifth["id"]])


def test_a_closed_complaint_counts_but_is_not_raised(client, agent, supervisor, db):
    ids = [create(client, agent, phone=phone(n), unit=unit)["id"] for n, unit in enumerate(UNITS[:4], start=1)]
    assert patch(client, supervisor, ids[0], status="已关闭", result="已维修").status_code == 200

    create(client, agent, phone=phone(9), unit=UNITS[4])

    assert level_of(db, ids[0]) == "一般" and not level_events(db, ids[0])
    assert [level_of(db, record_id) for record_id in ids[1:]] == ["重大"] * 3


def test_a_new_record_of_a_raised_group_is_raised_without_reading_the_group_again(client, agent, db):
    # A history import: 300 records of one issue in one project, all raised already by the rule. Each save used to
    # read the whole group and call the raise on every member (a transaction each), so registering an import slowed
    # down with every record.
    ids = [create(client, agent, phone=phone(n), unit=unit)["id"] for n, unit in enumerate(UNITS[:5], start=1)]
    original = stored(db, ids[0])
    copies(db, original, 300, lambda n, copy: copy["data"].update(unit=f"2幢{n:03d}"))
    assert db.records.count_documents({"data.category": "工程质量", "level_rules": original["level_rules"][0]}) == 305
    # 50 more of the issue judged 无效 (a level outside the order): they neither count nor are ever raised or read.
    copies(db, original, 50, lambda n, copy: (copy["data"].update(unit=f"3幢{n:03d}", level="无效"),
                                              copy.update(number=f"TS-W-{n:05d}"), copy.pop("level_rules")))

    made = []
    commands = COMMANDS.during(db.name, lambda: made.append(create(client, agent, phone=phone(9), unit=UNITS[5])))

    assert made[0]["level"] == "重大" and level_of(db, made[0]["id"]) == "重大"
    assert len(level_events(db, made[0]["id"])) == 1
    assert [len(level_events(db, record_id)) for record_id in ids] == [1] * 5
    assert len([c for c in commands if c[1] == "records"]) < 20, commands  # 13 here; 300+ before
    assert db.records.count_documents({"data.category": "工程质量", "data.level": "无效"}) == 50


# -- the customer complains again; communications -----------------------------------------------------------

def test_a_customer_complaining_twice_about_the_same_category_is_important(client, agent, db):
    first = create(client, agent, phone="13812345678")
    other_category = create(client, agent, phone="13812345678", category="物业管理")
    again = create(client, agent, phone="+86 138 1234 5678")  # the same phone as typed differently

    assert first["level"] == "一般" and other_category["level"] == "一般"
    assert again["level"] == "重要" and level_of(db, again["id"]) == "重要"
    event, = level_events(db, again["id"])
    assert event["text"] == "等级 一般 → 重要：客户两次以上对同一类问题投诉"
    assert level_of(db, first["id"]) == "一般"
    assert "13812345678" not in event["text"]


def test_three_communications_without_agreement_make_it_important(client, agent, db):
    record = create(client, agent, phone=phone(1))["id"]
    assert add_event(client, agent, record, "call").status_code == 201
    assert add_event(client, agent, record, "comment", "内部备注不算沟通").status_code == 201
    assert add_event(client, agent, record, "visit").status_code == 201
    assert level_of(db, record) == "一般"

    response = add_event(client, agent, record, "call", "第三次电话沟通，业主仍不同意方案")

    assert response.status_code == 201 and response.get_json()["kind"] == "call"
    assert level_of(db, record) == "重要"
    event, = level_events(db, record)
    assert event["text"] == "等级 一般 → 重要：三次沟通仍不能协调一致"
    assert "important_plan" in stored(db, record)["sla"]
    assert add_event(client, agent, record, "call").status_code == 201
    assert len(level_events(db, record)) == 1


# -- an important complaint open more than 3 months (the daily job) -------------------------------------------

def test_an_important_complaint_open_over_3_months_becomes_major(app, client, agent, supervisor, db):
    from kefu.rules.levels import escalate_by_age

    old = create(client, agent, phone=phone(1), level="重要", received_at="2026-06-30 09:00")["id"]
    recent = create(client, agent, phone=phone(2), level="重要", received_at="2026-07-05 09:00")["id"]
    general = create(client, agent, phone=phone(3), level="一般", received_at="2026-05-01 09:00")["id"]
    closed = create(client, agent, phone=phone(4), level="重要", received_at="2026-05-01 09:00")["id"]
    assert patch(client, supervisor, closed, status="已关闭", result="已协商解决").status_code == 200
    now = datetime(2026, 10, 1, 12, 0, tzinfo=SHANGHAI)  # three months back: 2026-07-01 12:00

    with app.app_context():
        assert escalate_by_age(now) == 1
        assert escalate_by_age(now) == 0  # idempotent
        assert escalate_by_age(now + timedelta(days=5)) == 1  # the other one is now old enough

    assert level_of(db, old) == "重大" and level_of(db, recent) == "重大"
    assert level_of(db, general) == "一般" and level_of(db, closed) == "重要"
    event, = level_events(db, old)
    assert event["text"] == "等级 重要 → 重大：重要投诉超过三个月未关闭"
    shown = client.get(f"/api/v1/records/complaint/{old}", headers=agent).get_json()
    assert shown["level"] == "重大"


def test_months_before_keeps_the_local_day_or_the_last_day_of_a_shorter_month():
    from kefu.rules.levels import months_before

    assert months_before(datetime(2026, 5, 31, 8, 0, tzinfo=SHANGHAI), 3, SHANGHAI) == \
        datetime(2026, 2, 28, 8, 0, tzinfo=SHANGHAI)
    assert months_before(datetime(2026, 1, 15, 0, 30, tzinfo=SHANGHAI), 2, SHANGHAI) == \
        datetime(2025, 11, 15, 0, 30, tzinfo=SHANGHAI)


# -- the customer rejects the result ------------------------------------------------------------------------

def reject(client, headers, record_id, note="仍然漏水，不接受处理结果"):
    return client.post(f"/api/v1/records/complaint/{record_id}/reject", headers=headers, json={"note": note})


def test_the_customer_rejecting_the_result_raises_one_level_and_sends_it_back(client, agent, supervisor, db):
    record = create(client, agent, phone=phone(1))["id"]
    assert patch(client, supervisor, record, status="已关闭", result="已更换防水层").status_code == 200

    response = reject(client, agent, record)

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["level"] == "重要" and body["status"] == "处理中"
    document = stored(db, record)
    assert document["data"]["level"] == "重要" and document["status"] == "处理中"
    event, = level_events(db, record)
    assert event["text"] == "客户不接受处理结果：仍然漏水，不接受处理结果；等级 一般 → 重要；退回“处理中”重新处理"
    assert event["by_name"] == "林晓雯"
    assert [e["text"] for e in body["events"] if e["kind"] == "level"] == [event["text"]]
    assert "important_plan" in document["sla"]  # the important level's deadlines apply

    # Again: one more level; at the top it stays there.
    assert reject(client, agent, record, "仍不满意").get_json()["level"] == "重大"
    top = reject(client, agent, record, "要求赔偿")
    assert top.status_code == 200 and top.get_json()["level"] == "重大"
    assert level_events(db, record)[-1]["text"] == "客户不接受处理结果：要求赔偿；等级仍为 重大；退回“处理中”重新处理"


def test_rejecting_needs_the_reason(client, agent, db):
    record = create(client, agent, phone=phone(1))["id"]
    version = stored(db, record)["version"]

    error = assert_error(reject(client, agent, record, "  "), 422, "validation_failed")

    assert "原因" in error["message"] and "note" in error["fields"]
    assert stored(db, record)["version"] == version and not level_events(db, record)
    assert_error(reject(client, agent, str(ObjectId())), 404, "not_found")


def signed_in(app, username):
    other = app.test_client()
    token = csrf_token(other, "/login")
    response = other.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return other


def test_the_details_page_sends_a_rejected_result_back(app, client, agent, db):
    record = create(client, agent, phone=phone(1))["id"]
    browser = signed_in(app, "supervisor")
    details = f"/admin/records/complaint/details/?id={record}"

    page = browser.get(details).get_data(as_text=True)
    assert "客户不接受处理结果" in page and "等级 一般 → 重要" in page and "退回“处理中”重新处理" in page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.split("kefu-reject", 1)[1]).group(1)

    empty = browser.post(f"/admin/records/complaint/reject/?id={record}", data={"csrf_token": token, "note": ""})
    assert empty.status_code == 302 and level_of(db, record) == "一般"

    response = browser.post(f"/admin/records/complaint/reject/?id={record}",
                            data={"csrf_token": token, "note": "业主认为维修不到位"})

    assert response.status_code == 302
    document = stored(db, record)
    assert document["data"]["level"] == "重要" and document["status"] == "处理中"
    assert "业主认为维修不到位" in level_events(db, record)[0]["text"]
    after = browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "已退回重新处理" in after and "业主认为维修不到位" in after


# -- the section is checked when a definition is saved ----------------------------------------------------

@pytest.mark.parametrize("change, words", [
    (lambda s: s["rules"].append({"rule": "vip", "level": "重大"}), ["第 9 条", "vip", "不存在", "at_least"]),
    (lambda s: s["rules"][0].update({"level": "特大"}), ["第 1 条", "特大", "不在 levels.order 中"]),
    (lambda s: s["rules"][0].update({"field": "owner_name"}), ["owner_name", "money/decimal/integer"]),
    (lambda s: s["rules"][0].update({"field": "no_such"}), ["no_such", "没有字段"]),
    (lambda s: s["rules"][0].update({"value": -5}), ["第 1 条", "value", "大于 0"]),
    (lambda s: s["rules"][4].update({"units": 1}), ["第 5 条", "units", "不小于 2"]),
    (lambda s: s["rules"][4].pop("project_field"), ["第 5 条", "缺少 project_field"]),
    (lambda s: s["rules"][6].update({"kinds": ["telepathy"]}), ["第 7 条", "kinds", "call"]),
    (lambda s: s["rules"][7].update({"from": "重大"}), ["第 8 条", "应高于"]),
    (lambda s: s["rules"][1].update({"field": "level"}), ["等级字段"]),
    (lambda s: s.update({"order": ["一般", "紧急"]}), ["紧急", "可选项"]),
    (lambda s: s.update({"field": "phone"}), ["levels.field", "choice"]),
    (lambda s: s.update({"on_rejected": {"steps": 0}}), ["on_rejected"]),
    (lambda s: s.update({"when": "always"}), ["不认识", "when"]),
])
def test_a_bad_levels_section_is_refused_with_a_chinese_message(client, seeded, db, change, words):
    admin = token_headers(client, "admin")
    definition = client.get("/api/v1/types/complaint", headers=admin).get_json()
    version = db.record_types.find_one({"key": "complaint"})["version"]
    change(definition["levels"])

    response = client.put("/api/v1/types/complaint", headers=admin, json=definition)

    error = assert_error(response, 422, "validation_failed")
    message = error["fields"]["levels"]
    for word in words:
        assert word in message, message
    assert db.record_types.find_one({"key": "complaint"})["version"] == version


def test_a_sound_section_is_saved_and_used(client, seeded, agent, db):
    admin = token_headers(client, "admin")
    definition = client.get("/api/v1/types/complaint", headers=admin).get_json()
    definition["levels"]["rules"][0] = {"rule": "at_least", "field": "claim_amount", "value": 5000, "level": "重要"}

    response = client.put("/api/v1/types/complaint", headers=admin, json=definition)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["levels"]["rules"][0]["value"] == 5000
    assert db.record_types.find_one({"key": "complaint"})["levels"]["rules"][0]["level"] == "重要"
    record = create(client, agent, phone=phone(1), claim_amount="6000")
    assert record["level"] == "重要"
    assert level_events(db, record["id"])[0]["text"] == "等级 一般 → 重要：“索赔金额”达到 5000"


def test_each_kind_of_field_a_section_names_lists_exactly_the_types_it_accepts():
    kinds = {name: kind for module in (shapes, level_rules, report) for name, kind in vars(module).items()
             if isinstance(kind, shapes.FieldKind)}
    assert {"NUMBERS", "DATES", "MOMENTS", "SINGLE_CHOICE", "SAME_VALUES", "CUSTOMERS", "ISSUE_TYPES"} <= set(kinds)
    for name, kind in kinds.items():
        assert set(kind.shown) == {type_name for type_name in FIELD_TYPES if type_name in kind}, name
    assert "textarea" not in kinds["SAME_VALUES"] and "email" in kinds["CUSTOMERS"] and "nonsense" not in kinds["DATES"]
