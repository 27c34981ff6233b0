"""The record-type form's field grid in a real browser (headless Chromium driven by Playwright): an admin adds a
field to 投诉 without knowing any key — types its label, picks its type and choices, ticks 列表 and 筛选, drags it
into place — saves, and finds it as a column, a filter and an export column of the 投诉 list; removing a field a
deadline uses asks first, naming the deadline; the whole edit page stays a few screens tall.

Skipped, saying why, where Playwright or Debian's chromium is missing."""
from __future__ import annotations

import csv
import io

from tests.browser_support import signed_in_page, skip_without_browser, success_message

skip_without_browser()

VIEWPORT_HEIGHT = 900  # tests/conftest.py: new_context's viewport
MAX_SCREENS = 3  # the 投诉 edit page (21 fields, and the rule editors a section at a time) in at most this many screens


def count_grid_changes(page) -> None:
    """Count the grid's "kefu:fields-changed" events in ``window.kefuFieldChanges``."""
    page.evaluate("window.kefuFieldChanges = 0;"
                  "document.addEventListener('kefu:fields-changed', () => { window.kefuFieldChanges += 1; })")


def drag(page, handle, target) -> None:
    """Drag ``handle`` with the mouse onto ``target``, in small steps as a hand would (SortableJS follows them)."""
    start, end = handle.bounding_box(), target.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=20)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2 + 4, steps=5)
    page.mouse.up()


def grid_keys(page) -> list[str]:
    return page.locator("[data-kefu-field-rows] [data-kefu-field-row] input[name$='-key']").evaluate_all(
        "inputs => inputs.map(input => input.value)")


def test_admin_adds_a_field_through_the_grid_and_finds_it_in_list_filter_and_export(new_context, problems, db,
                                                                                    tmp_path):
    page = signed_in_page(new_context, "admin")
    page.locator(".navbar a.dropdown-toggle", has_text="系统设置").click()
    page.locator(".navbar .dropdown-menu a", has_text="记录类型").click()
    page.wait_for_url("**/admin/record_types/**")
    row = page.locator("table.model-list tbody tr", has=page.locator("td.col-key", has_text="complaint"))
    row.first.locator("a[href*='/edit/']").click()
    page.wait_for_url("**/admin/record_types/edit/**")
    page.locator("[data-kefu-field-row]").first.wait_for()

    height = page.evaluate("document.documentElement.scrollHeight")
    page.screenshot(path=tmp_path / "complaint_type.png", full_page=True)
    print(f"投诉 edit page: {height} px tall ({height / VIEWPORT_HEIGHT:.1f} screens of {VIEWPORT_HEIGHT} px)")
    assert height <= MAX_SCREENS * VIEWPORT_HEIGHT, f"the 投诉 edit page is {height} px tall"
    stored_keys = grid_keys(page)
    assert len(stored_keys) == len(db.record_types.find_one({"key": "complaint"})["fields"])
    count_grid_changes(page)

    # Removing a field a deadline uses asks first, naming it and saying the stored values stay; cancelled here.
    plan = page.locator("[data-kefu-field-row]", has=page.locator("input[name$='-key'][value='plan']"))
    plan.locator("[data-kefu-remove]").click()
    dialog = page.locator("dialog#kefu-remove-field")
    dialog.wait_for()
    assert "删除字段“处理方案”？已有记录中的值会保留" in dialog.inner_text()
    assert "时限“整改方案确认”" in dialog.locator("[data-kefu-remove-list]").inner_text()
    assert "删除这条记录" not in dialog.inner_text()
    page.screenshot(path=tmp_path / "remove_dialog.png")
    dialog.locator("button[value='cancel']").click()
    assert grid_keys(page) == stored_keys

    # A new row at the end: its key follows the label as it is typed.
    page.locator("[data-kefu-add-field]").click()
    added = page.locator("[data-kefu-field-row]").last
    added.locator("input[name$='-label']").press_sequentially("回访满意度")
    key = added.locator("input[name$='-key']")
    page.wait_for_function("input => input.value === 'hui_fang_man_yi_du'", arg=key.element_handle())
    added.locator("select[name$='-type']").select_option("choice")
    added.locator("[data-kefu-options-toggle]").click()
    added.locator("textarea[name$='-choices']").fill("满意\n基本满意\n不满意")
    added.locator("input[name$='-list']").check()
    added.locator("input[name$='-filter']").check()

    # Dragged by its handle to just below the third row (the whole grid in view: no scrolling while dragging).
    page.set_viewport_size({"width": 1280, "height": 2000})
    page.evaluate("window.scrollTo(0, 0)")
    drag(page, added.locator(".kefu-drag"), page.locator("[data-kefu-field-row]").nth(2).locator(".kefu-drag"))
    keys = grid_keys(page)
    assert keys.index("hui_fang_man_yi_du") in (2, 3), keys
    assert [k for k in keys if k != "hui_fang_man_yi_du"] == stored_keys
    positions = page.locator("[data-kefu-field-rows] [data-kefu-position]").evaluate_all(
        "inputs => inputs.map(input => Number(input.value))")
    assert positions == [10 * (n + 1) for n in range(len(keys))]
    assert page.evaluate("window.kefuFieldChanges") >= 3  # added, typed, reordered …
    page.screenshot(path=tmp_path / "grid_added.png", full_page=True)

    page.locator(".kefu-form-buttons button[type=submit]", has_text="保存").first.click()
    assert "成功" in success_message(page)
    stored = db.record_types.find_one({"key": "complaint"})
    stored_order = [field["key"] for field in stored["fields"]]
    assert stored_order == keys
    field = stored["fields"][keys.index("hui_fang_man_yi_du")]
    assert (field["label"], field["type"], field["choices"]) == ("回访满意度", "choice", ["满意", "基本满意", "不满意"])
    assert field["list"] is True and field["filter"] is True

    page.goto("/admin/records/complaint/")
    assert page.locator("table.model-list thead th", has_text="回访满意度").count() == 1
    page.locator("a.dropdown-toggle", has_text="添加筛选器").click()
    assert page.locator(".field-filters a.filter", has_text="回访满意度").count() >= 1
    page.screenshot(path=tmp_path / "complaints.png", full_page=True)
    exported = page.request.get("/admin/records/complaint/export/?fmt=csv")
    assert exported.status == 200, exported.text()[:300]
    header = next(csv.reader(io.StringIO(exported.text().lstrip("\ufeff"))))
    assert "回访满意度" in header, header
    problems.assert_none()
