"""从模板新建 in a real browser: the admin makes 装修巡检 from the 在施工程节点回访 template, puts it into the 装修 menu
right after its template, and finds it there — without typing a key, a prefix or any YAML."""
from __future__ import annotations

from tests.browser_support import signed_in_page, skip_without_browser, success_message

skip_without_browser()


def test_admin_creates_reno_patrol_from_a_template_into_the_renovation_menu(new_context, problems, db, tmp_path):
    page = signed_in_page(new_context, "admin")
    page.goto("/admin/record_types/from-template/")
    page.select_option("#source", "shipped:construction_checkpoint")
    page.fill("#name", "装修巡检")
    page.select_option("#position", "renovation|construction_checkpoint")
    page.screenshot(path=tmp_path / "from_template.png", full_page=True)
    page.click("form.kefu-from-template button[type=submit]")
    page.wait_for_url("**/admin/record_types/edit/**")
    assert "已新建“装修巡检”" in success_message(page)
    page.screenshot(path=tmp_path / "created.png", full_page=True)

    stored = db.record_types.find_one({"name": "装修巡检"})
    assert stored["pack"] == "renovation" and stored["key"] == "zhuang_xiu_xun_jian"
    menu = page.locator("li.nav-item.dropdown", has=page.locator("a.dropdown-toggle", has_text="装修"))
    menu.locator("a.dropdown-toggle").click()
    items = menu.locator(".dropdown-menu a.dropdown-item").all_inner_texts()
    assert items[items.index("在施工程节点回访") + 1] == "装修巡检"
    page.screenshot(path=tmp_path / "menu.png")
    menu.locator("a.dropdown-item", has_text="装修巡检").click()
    page.wait_for_url("**/admin/records/zhuang_xiu_xun_jian/")
    problems.assert_none()
