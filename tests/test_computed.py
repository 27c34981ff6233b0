"""Computed fields (kefu.rules.computed, the ``computed:`` section): values the handbooks derive from a record's
other values — the item-loan fee (004 有偿服务), the third failed pre-acceptance's penalty (002 工程预验收流程),
the drawing review's warning and commission deductions (002 图纸审核奖惩办法) — set by the engine in the save
itself, refused when a person types them, and definitions naming the wrong fields refused naming the entry. Every
test goes through the JSON API against a real mongod and checks the response and the stored document.
"""
from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from bson import ObjectId

from tests.test_records_api import assert_error

LOAN = {
    "key": "loan_probe", "name": "借用测试", "number_prefix": "JYT",
    "fields": [
        {"key": "lent_at", "label": "借出时间", "type": "datetime", "required": True},
        {"key": "returned_at", "label": "归还时间", "type": "datetime"},
        {"key": "quantity", "label": "数量", "type": "integer", "min": 1, "default": 1},
        {"key": "note", "label": "备注", "type": "text"},
        {"key": "fee", "label": "借用费用", "type": "money", "min": 0},
    ],
    # 004 有偿服务 2：如物品借用时间超过一小时的则需收费 — at a published rate of ¥10 per started hour and item.
    "computed": [{"kind": "duration_fee", "target": "fee", "start": "lent_at", "end": "returned_at",
                  "over": {"hours": 1}, "unit": {"hours": 1}, "rate": 10, "per": "quantity"}],
}

INSPECTION = {
    "key": "inspection_probe", "name": "预验收测试", "number_prefix": "YST",
    "fields": [
        {"key": "attempt", "label": "验收次数", "type": "choice", "required": True,
         "choices": ["第一次验收", "第二次验收", "第三次验收"]},
        {"key": "result", "label": "验收结果", "type": "choice", "choices": ["合格", "不合格"]},
        {"key": "penalty", "label": "处罚情况", "type": "textarea"},
        {"key": "fine", "label": "罚款", "type": "money", "min": 0},
        {"key": "replace_foreman", "label": "更换工长", "type": "boolean"},
    ],
    # 002 工程预验收流程：第三次验收不合格 → 更换工长并处罚 500 元罚款，停单 3 个月；项目经理严重过失处罚。
    "computed": [{"kind": "by_attempt", "field": "attempt", "when": {"result": "不合格"},
                  "table": [{"attempt": "第三次验收", "set": {
                      "penalty": "更换工长；罚款 500 元；停单 3 个月；项目经理严重过失处罚", "fine": 500,
                      "replace_foreman": True}}],
                  "otherwise": {"fine": 0, "replace_foreman": False}}],
}

DRAWING = {
    "key": "drawing_probe", "name": "图纸审核测试", "number_prefix": "TZT",
    "fields": [
        {"key": "score", "label": "审核分数", "type": "integer", "min": 0, "max": 100},
        {"key": "rectification", "label": "整改情况", "type": "choice", "choices": ["全部修改", "未全部修改", "未修改即签约"]},
        {"key": "commission", "label": "设计提成", "type": "money", "min": 0},
        {"key": "warning", "label": "设计师警告", "type": "choice", "choices": ["无", "一次警告"]},
        {"key": "deduction_percent", "label": "扣除提成比例（%）", "type": "decimal", "min": 0},
        {"key": "deduction", "label": "扣除提成金额", "type": "money", "min": 0},
        {"key": "branch_fault", "label": "分部经理一般过失单", "type": "boolean"},
    ],
    "computed": [
        # 002 图纸审核奖惩办法（一）：审核分数低于 80 分，对该设计师给予“一次警告”处罚。
        {"kind": "below_threshold", "field": "score", "below": 80, "set": {"warning": "一次警告"},
         "otherwise": {"warning": "无"}},
        # 002 图纸审核奖惩办法（二）：未全部修改扣除 0.5% 提成；不修改而直接签约扣除 1% 提成，分部经理“一般过失单”。
        {"kind": "by_value", "field": "rectification",
         "table": [{"value": "未全部修改", "set": {"deduction_percent": 0.5}},
                   {"value": "未修改即签约", "set": {"deduction_percent": 1, "branch_fault": True}}],
         "otherwise": {"deduction_percent": 0, "branch_fault": False}},
        {"kind": "percent_of", "target": "deduction", "base": "commission", "percent_field": "deduction_percent"},
    ],
}


def define(client, headers, definition):
    response = client.post("/api/v1/types", json=definition, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)


def new(client, headers, type_key, **values) -> dict:
    response = client.post(f"/api/v1/records/{type_key}", json=values, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def patch(client, headers, type_key, record_id, **values):
    current = client.get(f"/api/v1/records/{type_key}/{record_id}", headers=headers).get_json()
    return client.patch(f"/api/v1/records/{type_key}/{record_id}", headers=headers,
                        json={"version": current["version"], **values})


def data(db, record_id) -> dict:
    """The stored values, numbers as Decimal."""
    stored = db.records.find_one({"_id": ObjectId(record_id)})["data"]
    return {k: v.to_decimal() if hasattr(v, "to_decimal") else v for k, v in stored.items()}


def computed_events(db, record_id) -> list[str]:
    return [e["text"] for e in db.record_events.find({"record_id": ObjectId(record_id), "kind": "updated"})]


# -- 004 有偿服务: the item-loan fee -------------------------------------------------------------------

def test_004_loan_fee_is_charged_only_over_one_hour_per_started_hour(client, admin, db):
    define(client, admin, LOAN)
    short = new(client, admin, "loan_probe", lent_at="2026-03-02T09:00:00+08:00",
                returned_at="2026-03-02T09:50:00+08:00")
    assert data(db, short["id"])["fee"] == Decimal("0.00") and short["fee"] == "0.00"

    long = new(client, admin, "loan_probe", lent_at="2026-03-02T09:00:00+08:00", quantity=2)
    assert data(db, long["id"]).get("fee") is None  # not returned yet: no fee
    response = patch(client, admin, "loan_probe", long["id"], returned_at="2026-03-02T11:10:00+08:00")
    assert response.status_code == 200, response.get_data(as_text=True)
    # 2 h 10 min: 3 started hours × ¥10 × 2 items, in the answer and stored, noted on the timeline once.
    assert data(db, long["id"])["fee"] == Decimal("60.00")
    assert response.get_json()["fee"] == "60.00"
    assert computed_events(db, long["id"]) == ["规则计算：借用费用 → ¥60.00"]

    # Saving another field again computes the same fee: nothing more is written (idempotent).
    version = db.records.find_one({"_id": ObjectId(long["id"])})["version"]
    assert patch(client, admin, "loan_probe", long["id"], note="梯子完好").status_code == 200
    assert db.records.find_one({"_id": ObjectId(long["id"])})["version"] == version + 1
    assert len(computed_events(db, long["id"])) == 1


def test_004_loan_fee_is_not_typed_by_hand(client, admin, db):
    define(client, admin, LOAN)
    typed = client.post("/api/v1/records/loan_probe", headers=admin,
                        json={"lent_at": "2026-03-02T09:00:00+08:00", "fee": "5"})
    error = assert_error(typed, 422)
    assert "借用费用" in error["fields"]["fee"] and "不能手工填写" in error["fields"]["fee"]
    assert db.records.count_documents({"type": "loan_probe"}) == 0

    record = new(client, admin, "loan_probe", lent_at="2026-03-02T09:00:00+08:00",
                 returned_at="2026-03-02T10:30:00+08:00")
    assert data(db, record["id"])["fee"] == Decimal("20.00")
    error = assert_error(patch(client, admin, "loan_probe", record["id"], fee="0"), 422)
    assert "不能手工填写" in error["fields"]["fee"]
    assert data(db, record["id"])["fee"] == Decimal("20.00")


def test_004_loan_fee_rounding_and_excess_are_configurable(client, admin, db):
    definition = copy.deepcopy(LOAN)
    definition["computed"][0].update({"rounding": "exact", "charge": "excess", "unit": {"minutes": 30}, "rate": 3})
    define(client, admin, definition)
    record = new(client, admin, "loan_probe", lent_at="2026-03-02T09:00:00+08:00",
                 returned_at="2026-03-02T10:45:00+08:00")
    # 45 minutes over the free hour, ¥3 per half hour, exactly: ¥4.50.
    assert data(db, record["id"])["fee"] == Decimal("4.50")


# -- 002 工程预验收流程: the third failure's penalty ----------------------------------------------------

def test_002_third_failed_pre_acceptance_derives_the_penalty(client, admin, db):
    define(client, admin, INSPECTION)
    second = new(client, admin, "inspection_probe", attempt="第二次验收", result="不合格")
    stored = data(db, second["id"])
    assert stored["fine"] == Decimal("0.00") and stored["replace_foreman"] is False and stored.get("penalty") is None

    third = new(client, admin, "inspection_probe", attempt="第三次验收")
    assert data(db, third["id"])["fine"] == Decimal("0.00")  # no result yet
    assert patch(client, admin, "inspection_probe", third["id"], result="不合格").status_code == 200
    stored = data(db, third["id"])
    assert stored["penalty"] == "更换工长；罚款 500 元；停单 3 个月；项目经理严重过失处罚"
    assert stored["fine"] == Decimal("500.00") and stored["replace_foreman"] is True

    # Passed after all (a correction): the penalty goes away with the condition.
    assert patch(client, admin, "inspection_probe", third["id"], result="合格").status_code == 200
    stored = data(db, third["id"])
    assert stored.get("penalty") is None and stored["fine"] == Decimal("0.00") and stored["replace_foreman"] is False


def test_002_an_attempt_counter_applies_the_highest_row_reached(client, admin, db):
    definition = copy.deepcopy(INSPECTION)
    definition["fields"][0] = {"key": "attempt", "label": "验收次数", "type": "integer", "min": 1, "required": True}
    definition["computed"][0]["table"][0]["attempt"] = 3
    define(client, admin, definition)
    fourth = new(client, admin, "inspection_probe", attempt=4, result="不合格")
    first = new(client, admin, "inspection_probe", attempt=1, result="不合格")
    assert data(db, fourth["id"])["fine"] == Decimal("500.00")
    assert data(db, first["id"])["fine"] == Decimal("0.00")


# -- 002 图纸审核奖惩办法: warning and commission deductions ------------------------------------------------

def test_002_drawing_score_below_80_warns_the_designer(client, admin, db):
    define(client, admin, DRAWING)
    low = new(client, admin, "drawing_probe", score=79)
    good = new(client, admin, "drawing_probe", score=80)
    unscored = new(client, admin, "drawing_probe")
    assert data(db, low["id"])["warning"] == "一次警告" and low["warning"] == "一次警告"
    assert data(db, good["id"])["warning"] == "无"
    assert data(db, unscored["id"])["warning"] == "无"


def test_002_unfixed_drawing_issues_deduct_commission_and_signing_unfixed_adds_a_fault(client, admin, db):
    define(client, admin, DRAWING)
    record = new(client, admin, "drawing_probe", score=85, commission="3000", rectification="未全部修改")
    stored = data(db, record["id"])
    assert stored["deduction_percent"] == Decimal("0.5") and stored["deduction"] == Decimal("15.00")
    assert stored["branch_fault"] is False

    assert patch(client, admin, "drawing_probe", record["id"], rectification="未修改即签约").status_code == 200
    stored = data(db, record["id"])
    assert stored["deduction_percent"] == Decimal("1") and stored["deduction"] == Decimal("30.00")
    assert stored["branch_fault"] is True

    fixed = new(client, admin, "drawing_probe", score=90, commission="3000", rectification="全部修改")
    assert data(db, fixed["id"])["deduction"] == Decimal("0.00")


# -- definitions ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["computed"][0].update(target="missing"), "computed 第 1 条（时长计费）要设置的字段“missing”不存在"),
    (lambda d: d["computed"][0].update(target="note"), "要设置的字段“note”应为 money/decimal 字段"),
    (lambda d: d["computed"][0].update(end="quantity"), "computed 第 1 条（时长计费）的 end“quantity”应为非敏感的 datetime 字段"),
    (lambda d: d["fields"][4].update(default=0), "要设置的字段“fee”由计算得出，不能设 default"),
    (lambda d: d["computed"][0].update(rate_field="quantity"), "应恰好写 rate 或 rate_field 之一"),
    (lambda d: d["computed"].append({"kind": "percent_of", "target": "fee", "base": "quantity", "percent": 5}),
     "由多条计算设置"),
    (lambda d: d["computed"].insert(0, {"kind": "below_threshold", "field": "quantity", "below": 2,
                                        "set": {"note": 3}}),
     "computed 第 1 条（低于阈值）给字段“note”的值“3”不是它可取的值"),
    (lambda d: d["computed"].insert(0, {"kind": "percent_of", "target": "fee", "base": "fee", "percent": 1}),
     "由多条计算设置"),
    (lambda d: d["computed"][0].update(kind="formula"), "computed 第 1 条 的 kind“formula”不存在"),
])
def test_definition_problems_are_refused_naming_the_entry(client, admin, db, change, expected):
    definition = copy.deepcopy(LOAN)
    change(definition)
    error = assert_error(client.post("/api/v1/types", json=definition, headers=admin), 422)
    assert expected in error["fields"]["computed"], error
    assert db.record_types.count_documents({"key": "loan_probe"}) == 0


def test_an_entry_reads_no_target_of_itself_or_a_later_entry(client, admin, db):
    definition = copy.deepcopy(DRAWING)
    definition["computed"].insert(0, definition["computed"].pop())  # percent_of before the percent is set
    error = assert_error(client.post("/api/v1/types", json=definition, headers=admin), 422)
    assert "computed 第 1 条（百分比）的 percent_field 不能读取本条或后面各条计算的字段“deduction_percent”" in \
        error["fields"]["computed"]
    choice = copy.deepcopy(INSPECTION)
    choice["computed"][0]["table"][0]["attempt"] = "第四次验收"
    error = assert_error(client.post("/api/v1/types", json=choice, headers=admin), 422)
    assert "对照表中“第四次验收”不是字段“attempt”可取的值" in error["fields"]["computed"]
