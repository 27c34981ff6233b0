"""The rule editors of the record-type page in a real browser: without typing YAML, an admin builds a
2-working-day clock with the form, reads its preview on the real calendar, adds a level rule and saves."""
from __future__ import annotations

from tests.browser_support import signed_in_page, skip_without_browser, success_message

skip_without_browser()


def test_admin_builds_a_clock_and_a_level_rule_without_yaml(new_context, problems, db, calendar, tmp_path):
    before = db.record_types.find_one({"key": "complaint"})
    clocks_before = len(before["sla"])
    page = signed_in_page(new_context, "admin")
    page.goto(f"/admin/record_types/edit/?id={before['_id']}")
    editor = page.locator("#kefu-rule-editor")
    sla = editor.locator("[data-kefu-section='sla']")
    editor.locator("[data-kefu-tab='workflow'].active").wait_for()  # one section at a time, 流程 first
    assert sla.is_hidden()
    editor.locator("[data-kefu-tab='sla']").click()
    sla.locator("[data-kefu-clock]").first.wait_for()
    assert page.locator("#rules").is_hidden()  # the YAML box waits behind 高级（YAML）

    sla.get_by_role("button", name="添加时限").click()
    clock = sla.locator(f"[data-kefu-clock='{clocks_before}']")
    clock.locator(f"[data-path='sla.{clocks_before}.name']").fill("两日办结")
    clock.locator(f"[data-path='sla.{clocks_before}.start']").select_option("created")
    within = clock.locator(f"[data-path='sla.{clocks_before}.within']")
    within.fill("2")
    within.locator("xpath=following-sibling::select").select_option("working_days")
    clock.locator("[data-kefu-sample]").fill("2026-12-04T16:00")
    preview = clock.locator("[data-kefu-preview-text]")
    expected = "受理于 12-04 16:00 → 截止 12-08 23:59（跳过 12-05、12-06 周末）"
    preview.get_by_text(expected).wait_for()
    clock.screenshot(path=tmp_path / "clock.png")
    editor.locator("[data-kefu-tab='workflow']").click()
    editor.locator("[data-kefu-section='workflow']").screenshot(path=tmp_path / "workflow.png")
    editor.locator("[data-kefu-tab='levels']").click()

    levels = editor.locator("[data-kefu-section='levels']")
    rules_before = len(before["levels"]["rules"])
    levels.get_by_role("button", name="添加升级规则").click()
    rule = levels.locator(f"[data-kefu-level-rule='{rules_before}']")
    rule.locator(f"[data-path='levels.rules.{rules_before}.rule']").select_option("at_least")
    rule = levels.locator(f"[data-kefu-level-rule='{rules_before}']")
    rule.locator(f"[data-path='levels.rules.{rules_before}.field']").select_option("claim_amount")
    amount = rule.locator(f"[data-path='levels.rules.{rules_before}.value']")
    amount.fill("50000")
    amount.blur()  # Chromium scrolls a number box back into view when it commits on blur, moving the page under a click
    rule.locator(f"[data-path='levels.rules.{rules_before}.level']").select_option("重大")
    levels.screenshot(path=tmp_path / "levels.png")

    # A list section without an editor of its own (计算字段): entries from its schema, a kind picker first.
    editor.locator("[data-kefu-tab='computed']").click()
    computed = editor.locator("[data-kefu-section='computed']")
    computed.get_by_role("button", name="添加一条").click()
    computed.locator("[data-path='computed.0.kind']").select_option("below_threshold")
    computed.locator("select[data-path='computed.0.field']").wait_for()
    computed.screenshot(path=tmp_path / "computed.png")
    computed.locator("[data-path='computed.0']").get_by_role("button", name="删除").click()
    assert computed.locator("[data-path='computed.0']").count() == 0

    page.locator(".kefu-form-buttons button[type=submit]").first.click()
    assert "保存" in success_message(page) or "成功" in success_message(page)

    stored = db.record_types.find_one({"key": "complaint"})
    assert stored["version"] == before["version"] + 1
    added = stored["sla"][-1]
    assert added["name"] == "两日办结" and added["within"] == {"working_days": 2} and added["start"] == "created"
    assert added["key"] not in {c["key"] for c in before["sla"]} and added["key"].isascii()
    assert stored["sla"][:-1] == before["sla"]  # the other clocks as they were
    assert stored["levels"]["rules"][-1] == {"rule": "at_least", "field": "claim_amount", "value": 50000,
                                             "level": "重大"}
    assert stored["levels"]["rules"][:-1] == before["levels"]["rules"]
    assert stored["workflow"] == before["workflow"]
    problems.assert_none()
