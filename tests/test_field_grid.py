"""The record-type form's field grid: a new field's key made from its label (pinyin, collisions, reserved keys,
labels that spell nothing), the order the rows were dropped in, problems shown at the row they concern with
nothing typed lost, removing a row keeps the stored values, the rules naming a field, and the type's menu group.

Real MongoDB; each test checks the response and the stored document."""
from __future__ import annotations

import html
import json
import re

import pytest
from bson import ObjectId

from kefu.records.definitions import RESERVED_FIELD_KEYS
from kefu.records.field_keys import field_key_for, rules_naming
from kefu.records.fields import FIELD_KEY_PATTERN
from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token, token_headers
from tests.test_record_types import definition_as_stored, field_of, flashed_errors, stored_type, type_form


@pytest.fixture
def admin_client(client, seeded, sign_in):
    assert sign_in("admin", DEMO_PASSWORD).status_code == 302
    return client


@pytest.fixture
def api(app, seeded):
    """``api(method, path, json=None)`` as the demo admin, with a Bearer token (no session)."""
    caller = app.test_client()
    headers = token_headers(caller, "admin")
    return lambda method, path, json=None: caller.open(path, method=method, json=json, headers=headers)


def edit_path(db, key: str) -> str:
    return f"/admin/record_types/edit/?id={stored_type(db, key)['_id']}"


def post_grid(client, db, definition: dict, **extra):
    """Post the edit form of ``definition`` (rows in its order, positions 10, 20, …) with ``extra`` form data."""
    path = edit_path(db, definition["key"])
    data = type_form(definition, csrf_token(client, path))
    data.update(extra)
    return client.post(path, data=data)


def row_html(page: str, key: str) -> str:
    """The grid row (main row and options) whose key input holds ``key``."""
    rows = page.split("data-kefu-field-row ")[1:]
    found = [row for row in rows if re.search(rf'name="fields-\d+-key"[^>]*value="{re.escape(key)}"', row)]
    assert found, f"no grid row for {key!r}"
    return found[0].split("<template")[0]


# -- keys made from labels ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("label", "taken", "key"), [
    ("回访满意度", (), "hui_fang_man_yi_du"),
    ("阶段", ("jie_duan",), "jie_duan_2"),
    ("阶段", ("jie_duan", "jie_duan_2"), "jie_duan_3"),
    ("客户诉求（备注）", (), "ke_hu_su_qiu_bei_zhu"),
    ("A栋 2号", (), "a_dong_2_hao"),
    ("Phone No.", (), "phone_no"),
    ("状态", (), "zhuang_tai"),
    ("Status", (), "status_2"),        # "status" is every record's own: reserved
    ("number", ("number_2",), "number_3"),
    ("123", (), "field_1"),            # a key starts with a letter
    ("（）", ("field_1",), "field_2"),  # nothing to spell
    ("", (), "field_1"),
])
def test_a_key_is_made_from_the_label(label, taken, key):
    assert field_key_for(label, taken) == key


def test_a_long_label_makes_a_key_of_at_most_40_characters_also_with_a_suffix():
    label = "客户对本次维修服务的总体满意程度以及对维修人员的评价"
    first = field_key_for(label)
    second = field_key_for(label, {first})
    for key in (first, second):
        assert FIELD_KEY_PATTERN.match(key) and len(key) <= 40 and key not in RESERVED_FIELD_KEYS
    assert first.startswith("ke_hu_dui") and second.endswith("_2") and second != first


def test_the_grid_asks_for_a_new_rows_key(admin_client, client):
    answer = admin_client.get("/admin/record_types/field_key", query_string={"label": "阶段", "taken": "jie_duan,x"})
    assert answer.status_code == 200 and answer.get_json() == {"key": "jie_duan_2"}
    assert admin_client.get("/admin/record_types/field_key?label=").get_json() == {"key": "field_1"}


def test_only_admins_may_ask_for_a_key(client, seeded, sign_in):
    sign_in("agent", DEMO_PASSWORD)
    assert client.get("/admin/record_types/field_key?label=阶段").status_code == 403


# -- the form -------------------------------------------------------------------------------------------------

def test_a_row_saved_without_a_key_gets_its_labels_pinyin(admin_client, db):
    definition = definition_as_stored(db, "complaint")
    definition["fields"].append({"key": "", "label": "回访满意度", "type": "choice", "choices": ["满意", "不满意"],
                                 "list": True, "filter": True})
    definition["fields"].append({"key": "", "label": "回访满意度", "type": "text"})  # the same label again

    response = post_grid(admin_client, db, definition)

    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    stored = stored_type(db, "complaint")
    added = field_of(stored, "hui_fang_man_yi_du")
    assert added["label"] == "回访满意度" and added["type"] == "choice" and added["choices"] == ["满意", "不满意"]
    assert added["list"] is True and added["filter"] is True
    assert field_of(stored, "hui_fang_man_yi_du_2")["type"] == "text"
    assert stored["version"] == 2
    # Saved, the key is the field's for good: the grid shows it read-only.
    page = admin_client.get(edit_path(db, "complaint")).get_data(as_text=True)
    assert re.search(r'<input[^>]*name="fields-\d+-key"[^>]*readonly[^>]*value="hui_fang_man_yi_du"', page)


def test_a_new_key_never_takes_a_removed_fields_key(admin_client, db):
    """A field removed from the grid is kept, disabled, under its key: a new row labelled like it gets another."""
    definition = definition_as_stored(db, "suggestion")
    definition["fields"].append({"key": "", "label": "阶段", "type": "text"})
    assert post_grid(admin_client, db, definition).status_code == 302
    definition = definition_as_stored(db, "suggestion")
    definition["fields"] = [field for field in definition["fields"] if field["key"] != "jie_duan"]
    definition["fields"].append({"key": "", "label": "阶段", "type": "choice", "choices": ["交付前", "交付后"]})

    response = post_grid(admin_client, db, definition)

    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    stored = stored_type(db, "suggestion")
    assert field_of(stored, "jie_duan")["active"] is False and field_of(stored, "jie_duan")["type"] == "text"
    assert field_of(stored, "jie_duan_2")["type"] == "choice"


def test_rows_are_saved_in_the_order_they_were_dropped(admin_client, db):
    definition = definition_as_stored(db, "suggestion")
    keys = [field["key"] for field in definition["fields"]]
    path = edit_path(db, "suggestion")
    data = type_form(definition, csrf_token(admin_client, path))
    # The last row was dragged to the top and a new one inserted after the first: positions say so, the
    # indexes (the order the rows were created in) do not.
    count = len(keys)
    for index in range(count):
        data[f"fields-{index}-position"] = str((index + 2) * 10)
    data[f"fields-{count - 1}-position"] = "10"
    data.update({f"fields-{count}-position": "25", f"fields-{count}-label": "回访人", f"fields-{count}-type": "text",
                 f"fields-{count}-key": "", f"fields-{count}-active": "y"})

    response = admin_client.post(path, data=data)

    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    stored = [field["key"] for field in stored_type(db, "suggestion")["fields"]]
    assert stored == [keys[-1], keys[0], "hui_fang_ren", *keys[1:-1]]


def test_a_refused_row_is_marked_and_opened_with_its_message_and_nothing_typed_is_lost(admin_client, db):
    before = stored_type(db, "complaint")
    definition = definition_as_stored(db, "complaint")
    definition["fields"].append({"key": "", "label": "回访方式", "type": "choice", "help": "电话或上门"})  # no choices

    response = post_grid(admin_client, db, definition, name="投诉（改）")

    assert response.status_code == 200
    assert stored_type(db, "complaint") == before
    page = response.get_data(as_text=True)
    row = row_html(page, "hui_fang_fang_shi")
    assert row.startswith('data-kefu-stored="0"') or 'data-kefu-stored="0"' in row[:80]
    assert "kefu-field-invalid" in page.split(row[:60])[0][-300:]  # the row element itself is marked
    assert '<div class="kefu-field-options">' in row  # opened, not hidden
    message = re.search(r'class="invalid-feedback">(.*?)</div>', row, flags=re.S)
    assert message and "可选项" in html.unescape(message.group(1))
    assert 'value="回访方式"' in row and 'value="电话或上门"' in row
    assert 'value="投诉（改）"' in page
    # The other rows are neither marked nor opened.
    assert "kefu-field-invalid" not in page.split(row_html(page, "content")[:60])[0][-300:]


def test_a_type_problem_is_shown_at_its_control(admin_client, db):
    definition = definition_as_stored(db, "complaint")
    response = post_grid(admin_client, db, definition, number_prefix="ts1")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert re.search(r'id="number_prefix"[^>]*>\s*<div class="invalid-feedback">[^<]*大写字母', page)
    assert stored_type(db, "complaint")["number_prefix"] == "TS"


def test_removing_a_row_keeps_the_field_disabled_with_its_stored_values(admin_client, api, db):
    created = api("POST", "/api/v1/records/suggestion", json={
        "customer_name": "陈美华", "content": "希望增加夜间照明", "assessment": "可在下季度实施"})
    assert created.status_code == 201, created.get_data(as_text=True)
    record_id = ObjectId(created.get_json()["id"])
    definition = definition_as_stored(db, "suggestion")
    definition["fields"] = [field for field in definition["fields"] if field["key"] != "assessment"]

    response = post_grid(admin_client, db, definition)

    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    kept = field_of(stored_type(db, "suggestion"), "assessment")
    assert kept is not None and kept["active"] is False
    assert db.records.find_one({"_id": record_id})["data"]["assessment"] == "可在下季度实施"
    assert api("GET", f"/api/v1/records/suggestion/{record_id}").get_json()["assessment"] == "可在下季度实施"
    row = row_html(admin_client.get(edit_path(db, "suggestion")).get_data(as_text=True), "assessment")
    assert "已停用" in row


def test_the_grid_knows_which_rules_name_each_field(admin_client, db):
    page = admin_client.get(edit_path(db, "complaint")).get_data(as_text=True)
    data = json.loads(re.search(r'<script type="application/json" id="kefu-field-grid-data">(.*?)</script>', page,
                                flags=re.S).group(1))
    clocks = {clock["key"]: clock["name"] for clock in stored_type(db, "complaint")["sla"]}
    assert any(f"“{clocks['plan']}”" in use for use in data["uses"]["plan"])
    assert any(use.startswith("时限") for use in data["uses"]["received_at"])
    assert data["uses"]["content"] == []
    assert "plan" in data["stored_keys"] and "kefu-remove-field" in page
    assert "删除字段“__LABEL__”？已有记录中的值会保留" in html.unescape(page)


def test_rules_naming_names_the_entry_and_the_setting(app):
    rules = {"sla": [{"key": "plan", "name": "整改方案确认", "start": "received_at", "within": {"hours": 48},
                      "done_when": {"plan": "*"}}]}
    with app.test_request_context():
        assert rules_naming(rules, "received_at") and "“整改方案确认”" in rules_naming(rules, "received_at")[0]
        assert len(rules_naming(rules, "plan")) == 1  # the clock's own key "plan" is not the field
        assert rules_naming(rules, "content") == [] and rules_naming({}, "plan") == []


def test_removing_a_field_a_rule_uses_is_refused_and_changes_nothing(admin_client, db):
    before = stored_type(db, "complaint")
    definition = definition_as_stored(db, "complaint")
    definition["fields"] = [field for field in definition["fields"] if field["key"] != "plan"]

    response = post_grid(admin_client, db, definition)

    assert response.status_code == 200
    assert "plan" in flashed_errors(response.get_data(as_text=True))
    assert stored_type(db, "complaint") == before


# -- menu group and order -------------------------------------------------------------------------------------

def test_the_type_goes_into_the_chosen_or_a_new_menu_group_at_its_order(admin_client, db):
    definition = definition_as_stored(db, "suggestion")
    response = post_grid(admin_client, db, definition, pack="renovation", sort_order="5")
    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    stored = stored_type(db, "suggestion")
    assert stored["pack"] == "renovation" and stored["sort_order"] == 5

    response = post_grid(admin_client, db, definition, pack="renovation", new_group="物业巡检", sort_order="7")
    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    group = db.menu_groups.find_one({"name": "物业巡检"})
    stored = stored_type(db, "suggestion")
    assert group and stored["pack"] == group["key"] and stored["sort_order"] == 7 and group["created_by"] == "admin"
    page = admin_client.get(edit_path(db, "suggestion")).get_data(as_text=True)
    assert re.search(rf'<option selected value="{group["key"]}">物业巡检</option>', page)

    refused = post_grid(admin_client, db, definition, pack="no_such_group")
    assert refused.status_code == 200 and stored_type(db, "suggestion")["pack"] == group["key"]
    assert re.search(r'id="pack"[^>]*>.*?</select>\s*<div class="invalid-feedback">', refused.get_data(as_text=True),
                     flags=re.S)


def test_a_form_without_menu_settings_keeps_the_stored_ones(admin_client, db):
    before = stored_type(db, "complaint")
    response = post_grid(admin_client, db, definition_as_stored(db, "complaint"))
    assert response.status_code == 302, flashed_errors(response.get_data(as_text=True))
    after = stored_type(db, "complaint")
    assert (after["pack"], after["sort_order"]) == (before["pack"], before["sort_order"])


def test_the_record_type_list_speaks_chinese(admin_client, db):
    page = admin_client.get("/admin/record_types/").get_data(as_text=True)
    for header in ("名称", "类型键", "编号前缀", "菜单分组", "启用", "版本", "修改时间", "修改人", "可选项改名"):
        assert re.search(rf'class="column-header col-[a-z_]+">\s*(<a[^>]*>)?{header}\s*<', page), header
    for english in ("Number Prefix", "Updated At", "Updated By", ">Pack<", ">Key<"):
        assert english not in page
    details = admin_client.get(f"/admin/record_types/details/?id={stored_type(db, 'complaint')['_id']}")
    assert "英文名称" in details.get_data(as_text=True) and "Name En" not in details.get_data(as_text=True)
