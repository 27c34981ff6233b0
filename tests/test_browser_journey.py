"""Issue 17's journey in a real browser, as a new admin would walk it without typing YAML or a key: make 装修巡检 from
the 在施工程节点回访 template into the 装修 menu, give it three statuses, a 巡检时间 field and a 2-working-day clock
from it (reading the clock's preview), register an inspection done ten days ago, and find it on 逾期督办.

The journey counts its steps — the pages loaded and the clicks (a pick in a drop-down counts as one) — and prints
them with the screenshots it leaves in its tmp_path (the closing note quotes them)."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.browser_support import signed_in_page, skip_without_browser, success_message

skip_without_browser()

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Steps:
    """Counts a page's main-frame loads and the clicks made through ``click`` / ``pick``."""

    def __init__(self, page):
        self.page, self.loads, self.clicks = page, 0, 0
        page.on("framenavigated", self._navigated)

    def _navigated(self, frame) -> None:
        if frame == self.page.main_frame:
            self.loads += 1

    def click(self, locator) -> None:
        locator.click()
        self.clicks += 1

    def pick(self, locator, value) -> None:
        locator.select_option(value)
        self.clicks += 1


def test_reno_patrol_from_template_to_the_overdue_list(new_context, problems, db, calendar, tmp_path):
    page = signed_in_page(new_context, "admin")
    steps = Steps(page)
    shots = []

    def shot(name: str, what: str) -> None:
        page.screenshot(path=tmp_path / f"{name}.png", full_page=True)
        shots.append(f"{name}.png: {what}")

    # 系统设置 → 记录类型 → 从模板新建
    steps.click(page.locator(".navbar a.dropdown-toggle", has_text="系统设置"))
    steps.click(page.locator(".navbar .dropdown-menu a", has_text="记录类型"))
    page.wait_for_url("**/admin/record_types/**")
    steps.click(page.locator("a", has_text="从模板新建").first)
    page.wait_for_url("**/admin/record_types/from-template/**")
    steps.pick(page.locator("#source"), "shipped:construction_checkpoint")
    page.fill("#name", "装修巡检")
    steps.pick(page.locator("#position"), "renovation|construction_checkpoint")
    shot("1_from_template", "从模板新建: template 在施工程节点回访, name 装修巡检, placed after it in 装修")
    steps.click(page.locator("form.kefu-from-template button[type=submit]"))
    page.wait_for_url("**/admin/record_types/edit/**")
    assert "已新建“装修巡检”" in success_message(page)
    stored = db.record_types.find_one({"name": "装修巡检"})
    assert stored["pack"] == "renovation" and not stored.get("sla") and not stored.get("workflow")
    key = stored["key"]

    # A 巡检时间 field through the grid: its key comes from the label.
    steps.click(page.locator("[data-kefu-add-field]"))
    added = page.locator("[data-kefu-field-row]").last
    added.locator("input[name$='-label']").press_sequentially("巡检时间")
    page.wait_for_function("input => input.value === 'xun_jian_shi_jian'",
                           arg=added.locator("input[name$='-key']").element_handle())
    steps.pick(added.locator("select[name$='-type']"), "datetime")
    steps.click(added.locator("input[name$='-required']"))
    steps.click(added.locator("input[name$='-list']"))

    # 流程: three statuses, the last one closing.
    editor = page.locator("#kefu-rule-editor")
    workflow = editor.locator("[data-kefu-section='workflow']")
    steps.click(workflow.get_by_role("button", name="自定义"))
    names = workflow.locator("input[data-path^='workflow.statuses.']")
    while names.count() > 3:
        steps.click(workflow.locator(".kefu-rule-row").nth(2).get_by_role("button", name="删除"))
    for index, name in enumerate(("待巡检", "整改中", "已完成")):
        names.nth(index).fill(name)
        names.nth(index).dispatch_event("change")
    steps.pick(workflow.locator(".kefu-rule-row").nth(2).locator("select"), "closed")

    # 时限: 2 working days from 巡检时间, with its preview on the real calendar.
    sla = editor.locator("[data-kefu-section='sla']")
    steps.click(editor.locator("[data-kefu-tab='sla']"))
    steps.click(sla.get_by_role("button", name="添加时限"))
    clock = sla.locator("[data-kefu-clock='0']")
    clock.locator("[data-path='sla.0.name']").fill("整改完成")
    steps.pick(clock.locator("[data-path='sla.0.start']"), "xun_jian_shi_jian")
    within = clock.locator("[data-path='sla.0.within']")
    within.fill("2")
    steps.pick(within.locator("xpath=following-sibling::select"), "working_days")
    clock.locator("[data-kefu-sample]").fill("2026-12-04T16:00")
    preview = clock.locator("[data-kefu-preview-text]")
    preview.get_by_text("截止 12-08 23:59（跳过 12-05、12-06 周末）").wait_for()
    assert preview.inner_text().startswith("“巡检时间”为 12-04 16:00 → 截止 12-08 23:59"), preview.inner_text()
    shot("2_type_form", "装修巡检's form: the grid with 巡检时间, three statuses, the clock and its preview")
    steps.click(page.locator(".kefu-form-buttons button[type=submit]").first)
    assert "成功" in success_message(page)

    stored = db.record_types.find_one({"key": key})
    assert stored["workflow"]["statuses"] == ["待巡检", "整改中", "已完成"]
    assert stored["workflow"]["closed"] == ["已完成"]
    assert stored["sla"][0]["key"] == "zheng_gai_wan_cheng" and stored["sla"][0]["start"] == "xun_jian_shi_jian"
    assert stored["sla"][0]["within"] == {"working_days": 2}
    assert stored["fields"][-1]["key"] == "xun_jian_shi_jian" and stored["fields"][-1]["required"] is True

    # 装修 → 装修巡检 → 新建: an inspection done ten days ago.
    menu = page.locator("li.nav-item.dropdown", has=page.locator("a.dropdown-toggle", has_text="装修"))
    steps.click(menu.locator("a.dropdown-toggle"))
    steps.click(menu.locator("a.dropdown-item", has_text="装修巡检"))
    page.wait_for_url(f"**/admin/records/{key}/")
    steps.click(page.locator("a", has_text="创建").first)
    page.wait_for_url(f"**/admin/records/{key}/new/**")
    inspected = datetime.now(SHANGHAI).replace(second=0, microsecond=0) - timedelta(days=10)
    page.fill("#customer_name", "巡检客户")
    page.fill("#phone", "13912345678")
    steps.pick(page.locator("#checkpoint"), "中期")
    page.fill("#xun_jian_shi_jian", inspected.strftime("%Y-%m-%dT%H:%M"))
    shot("3_record_form", "a 装修巡检 record being registered, 巡检时间 ten days ago")
    steps.click(page.locator("form.admin-form input[type=submit], form.admin-form button[type=submit]").first)
    record = db.records.find_one({"type": key})
    assert record is not None and record["status"] == "待巡检"
    assert record["sla"]["zheng_gai_wan_cheng"]["state"] == "overdue"  # the clock's key: its name's pinyin

    # 逾期督办 lists it.
    steps.click(page.locator(".navbar a", has_text="逾期督办").first)
    page.wait_for_url("**/admin/overdue/**")
    row = page.locator("table.kefu-overdue-list tbody tr", has_text=record["number"])
    row.wait_for()
    assert "装修巡检" in row.inner_text() or "整改完成" in row.inner_text()
    shot("4_overdue", "逾期督办 with the 装修巡检 record, its clock 整改完成 and how late it is")
    print(f"装修巡检 journey: {steps.loads} page loads and {steps.clicks} clicks after signing in")
    print("\n".join(shots))
    problems.assert_none()
