"""The rule editors of the record-type screen: where each problem of a definition is (``problem_paths``), the clock
preview on the real calendar, and a save of the form with the rules written as JSON (what the editors submit)."""
from __future__ import annotations

import json
import re

import pytest

from seed.demo import DEMO_PASSWORD
from tests.test_record_types import definition_as_stored, stored_type, type_form, yaml_definition


@pytest.fixture
def admin_client(client, seeded, sign_in):
    assert sign_in("admin", DEMO_PASSWORD).status_code == 302
    return client


def edit_path(db, key: str) -> str:
    return f"/admin/record_types/edit/?id={stored_type(db, key)['_id']}"


def page_token(page: str) -> str:
    """The page's ``<meta name="csrf-token">`` (what the editors' script sends as X-CSRFToken)."""
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def editor_config(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="kefu-rule-editor-config">(.*?)</script>', page, re.S)
    assert found, "the page has no rule editors"
    return json.loads(found.group(1))


# -- where each problem is -----------------------------------------------------------------------------

def test_problem_paths_name_the_value_each_problem_is_about(app):
    from kefu.records.sections import definition_problems, problem_paths

    definition = yaml_definition("complaint")
    definition["sla"][1]["within"] = {"hours": "三"}
    definition["sla"][0]["start"] = "status:不存在"
    definition["levels"]["rules"][4]["units"] = True
    definition["levels"]["rules"][0]["level"] = "特大"
    definition["report"] = {"name_field": "category"}
    definition["workflow"]["transitions"] = {"待受理": ["火星"]}

    with app.test_request_context():
        paths = problem_paths(definition)
        joined = definition_problems(definition)

    assert paths["sla.1.within.hours"] == "sla 第 2 个的 within.hours 应为整数"
    assert "sla.0.start" in paths and "不在流程中" in paths["sla.0.start"]
    assert paths["levels.rules.4.units"] == "levels.rules 第 5 条的 units 应为整数"
    assert paths["report.name_field"].startswith("report.name_field 应为本类型的文本字段")
    assert "火星" in paths["workflow.transitions"]
    # The API's messages are unchanged: the same texts, joined per section.
    assert "sla 第 2 个的 within.hours 应为整数" in joined["sla"] and paths["sla.0.start"] in joined["sla"]
    assert "levels.rules 第 5 条的 units 应为整数" in joined["levels"]


def test_problem_paths_of_a_missing_setting_and_an_unknown_one(app):
    from kefu.records.sections import problem_paths

    definition = yaml_definition("complaint")
    del definition["approvals"]["bands"][1]["approver"]
    definition["callback"]["colour"] = "红"

    with app.test_request_context():
        paths = problem_paths(definition)

    assert paths["approvals.bands.1.approver"] == "approvals.bands 第 2 档 缺少 approver"
    assert paths["callback"] == "callback 有不认识的项：colour"


# -- the clock preview -----------------------------------------------------------------------------------

def test_two_working_days_from_a_friday_afternoon_end_on_tuesday_night(admin_client, db, calendar):
    page = admin_client.get(edit_path(db, "complaint")).get_data(as_text=True)
    url = editor_config(page)["urls"]["preview"]

    response = admin_client.post(url, json={"start": "created", "within": {"working_days": 2},
                                            "by_level": {"重大": {"hours": 4}}, "sample": "2026-12-04T16:00"},
                                 headers={"X-CSRFToken": page_token(page)})

    assert response.status_code == 200, response.get_data(as_text=True)
    first, major = response.get_json()["lines"]
    assert first["due_at"] == "2026-12-08T23:59:59+08:00"
    assert first["skipped"] == [{"first": "2026-12-05", "last": "2026-12-06", "name": "周末"}]
    assert first["text"] == "受理于 12-04 16:00 → 截止 12-08 23:59（跳过 12-05、12-06 周末）"
    assert major["level"] == "重大" and major["due_at"] == "2026-12-04T20:00:00+08:00"
    assert major["text"].startswith("等级“重大”：受理于 12-04 16:00 → 截止 12-04 20:00")


def test_the_preview_skips_a_holiday_by_its_name(admin_client, db, calendar):
    page = admin_client.get(edit_path(db, "complaint")).get_data(as_text=True)

    response = admin_client.post(editor_config(page)["urls"]["preview"],
                                 json={"start": "status:已转办", "within": {"working_days": 1},
                                       "sample": "2026-09-30T10:00"}, headers={"X-CSRFToken": page_token(page)})

    line = response.get_json()["lines"][0]
    assert line["text"] == "进入“已转办”于 09-30 10:00 → 截止 10-08 23:59（跳过 10-01…10-07 国庆节）"
    assert line["due_at"] == "2026-10-08T23:59:59+08:00"


@pytest.mark.parametrize("body, where, text", [
    ({"within": {"weeks": 2}, "sample": "2026-12-04T16:00"}, "within", "请填写时限的数量"),
    ({"within": {"working_days": 2}, "sample": "12月4日"}, "sample", "示例开始时间应为"),
    ({"within": {"working_days": 2}, "sample": "9999-01-01T00:00"}, "sample", "示例开始时间应为"),
    ({"within": {"working_days": 99999}, "sample": "2026-12-04T16:00"}, "within", "预览最多计算"),
    ({"within": {"days": 2}, "by_level": {"重大": "快"}, "sample": "2026-12-04T16:00"}, "by_level.重大", "请填写"),
    ("not an object", "within", "预览请求格式不正确"),
])
def test_a_preview_of_bad_input_answers_a_chinese_message(admin_client, db, calendar, body, where, text):
    page = admin_client.get(edit_path(db, "complaint")).get_data(as_text=True)

    response = admin_client.post(editor_config(page)["urls"]["preview"], json=body,
                                 headers={"X-CSRFToken": page_token(page)})

    assert response.status_code == 400
    assert text in response.get_json()["error"] and text in response.get_json()["fields"][where]


def test_the_preview_needs_the_pages_csrf_token(admin_client, db):
    page = admin_client.get(edit_path(db, "complaint")).get_data(as_text=True)

    response = admin_client.post(editor_config(page)["urls"]["preview"], json={"within": {"hours": 1}})

    assert response.status_code == 400 and response.get_json()["error"] == "页面已过期，请刷新后重试"


# -- the page and a save ---------------------------------------------------------------------------------

def test_the_edit_page_hands_the_editors_the_sections_in_the_users_language(admin_client, db):
    config = editor_config(admin_client.get(edit_path(db, "complaint")).get_data(as_text=True))

    assert [s["key"] for s in config["sections"]] == ["workflow", "computed", "levels", "approvals",
                                                      "callback", "sla", "reminders", "report", "routing", "spawn",
                                                      "loyalty", "parent", "knowledge"]
    clock = next(s for s in config["sections"] if s["key"] == "sla")["schema"]["$defs"]["Clock"]
    assert clock["properties"]["start"]["title"] == "开始于"
    assert clock["properties"]["until"]["x-kefu-picker"] == "field"
    assert config["rules"]["sla"] == stored_type(db, "complaint")["sla"]  # the editors start from the stored rules
    assert config["units"]["working_days"] == "工作日"
    assert config["rule_titles"]["at_least"] == "金额达到"


def test_a_form_saved_with_the_rules_as_json_stores_the_sections(admin_client, db):
    definition = definition_as_stored(db, "complaint")
    rules = {"workflow": {"statuses": ["待受理", "处理中", "等待客户", "已关闭"], "closed": ["已关闭"],
                          "pausing": ["等待客户"], "transitions": {"待受理": ["处理中"], "处理中": ["等待客户", "已关闭"],
                                                                 "等待客户": ["处理中"]}},
             "sla": [{"key": "clock_1", "name": "处理完成", "start": "created", "within": {"working_days": 2},
                      "done_when": {"status": "已关闭"}}],
             "levels": {**definition["levels"], "rules": [{"rule": "at_least", "field": "claim_amount",
                                                          "value": 30000, "level": "重大"}]}}
    path = edit_path(db, "complaint")
    form = type_form({**{k: v for k, v in definition.items() if k not in rules}, "approvals": None,
                      "callback": None}, re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                                                   admin_client.get(path).get_data(as_text=True)).group(1))
    form["rules"] = json.dumps(rules, ensure_ascii=False, indent=1)

    response = admin_client.post(path, data=form)

    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    stored = stored_type(db, "complaint")
    assert stored["sla"] == rules["sla"]
    assert stored["workflow"]["transitions"] == rules["workflow"]["transitions"]
    assert stored["levels"]["rules"] == [{"rule": "at_least", "field": "claim_amount", "value": 30000,
                                          "level": "重大"}]
    assert not stored.get("approvals") and not stored.get("callback")


def test_a_refused_save_hands_each_problem_to_the_editors_and_keeps_the_text(admin_client, db):
    definition = definition_as_stored(db, "complaint")
    path = edit_path(db, "complaint")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      admin_client.get(path).get_data(as_text=True)).group(1)
    form = type_form({k: v for k, v in definition.items() if k != "sla"}, token)
    rules = {key: definition[key] for key in ("workflow", "levels") if definition.get(key)}
    rules["sla"] = [{"name": "处理完成", "key": "clock_1", "start": "received_at", "within": {"weeks": 2}}]
    form["rules"] = json.dumps(rules, ensure_ascii=False)
    before = stored_type(db, "complaint")

    response = admin_client.post(path, data=form)

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    config = editor_config(page)
    assert "weeks" in config["problems"]["sla.0.within"]
    assert config["rules"]["sla"] == rules["sla"]  # rebuilt from what was posted: nothing typed is lost
    assert stored_type(db, "complaint")["version"] == before["version"]
