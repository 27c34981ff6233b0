"""The changed screens in a real browser (headless Chromium driven by Playwright): what the test client cannot
see — the Content-Security-Policy blocking a script, a page script calling the API without its CSRF header, a
"select all" box that no longer selects, charts that are not drawn.

Each journey runs against the real app served over HTTP (its own database with the demo data), fails on any
console error, uncaught script error or CSP violation, and leaves a screenshot of each main page in its tmp_path.
Skipped, saying why, where Playwright or Debian's chromium is missing (.ci/run installs chromium when it can).
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from bson import ObjectId

from kefu.org.customers import Customer
from tests.browser_support import signed_in_page, skip_without_browser, success_message

skip_without_browser()


def test_agent_sees_the_dashboard_drawn_and_personal_data_masked(new_context, problems, demo_records, tmp_path):
    page = signed_in_page(new_context, "agent")
    chart = page.locator("[data-chart='trend'][data-rendered='1']")
    chart.wait_for()
    assert chart.locator("canvas, svg").count() >= 1  # ECharts (served locally, allowed by the CSP) drew it
    page.screenshot(path=tmp_path / "home.png", full_page=True)

    page.goto("/admin/records/complaint/")
    rows = page.locator("table.model-list tbody tr")
    assert rows.count() >= 1 and "TS-" in rows.first.inner_text()
    page.locator("a.dropdown-toggle", has_text="添加筛选器").click()  # Flask-Admin's filters, run by our scripts
    page.locator(".field-filters a.filter").first.click()
    page.locator("table.filters tr").first.wait_for()
    page.screenshot(path=tmp_path / "complaints.png", full_page=True)
    rows.first.locator("a[href*='/details/']").click()
    phone = page.locator("table.kefu-record tr", has=page.locator("th", has_text="联系电话")).locator("td")
    assert re.fullmatch(r"1\d\d\*{4}\d{4}", phone.inner_text().strip())
    page.screenshot(path=tmp_path / "complaint.png", full_page=True)

    page.goto("/admin/customers/")
    phones = page.locator("table.model-list tbody td.col-phone")
    assert phones.count() >= 1
    assert all("****" in text for text in phones.all_inner_texts())
    page.screenshot(path=tmp_path / "customers.png", full_page=True)
    problems.assert_none()


def test_agent_registers_a_complaint_choosing_the_customer_by_phone(app, new_context, problems, db, tmp_path):
    with app.app_context():  # phones are stored encrypted: read one through the model
        customer = Customer.objects(project__ne=None).order_by("name").first()
        phone, name, project = customer.phone, customer.name, customer.project.name
    page = signed_in_page(new_context, "agent")
    page.goto("/admin/records/complaint/new/")
    page.select_option("#channel", ["来电"])
    page.fill("#project", project)
    page.fill("#owner_name", name)
    page.fill("#phone", phone)
    page.fill("#content", "浏览器测试：卫生间地面渗水，楼下住户天花板受潮")
    page.select_option("#category", "工程质量")
    # The picker asks POST /api/v1/refs/customer (X-CSRFToken from the page's meta tag) as the number is typed and
    # offers what it found in the field's <datalist>; choosing an offer puts its value (the customer's id) into the
    # field, which is what a click on the headless browser's invisible pop-up would do.
    with page.expect_response(lambda r: r.url.endswith("/api/v1/refs/customer") and r.request.method == "POST"
                              and phone in (r.request.post_data or "")) as lookup:
        page.locator("#customer").press_sequentially(phone)
    assert lookup.value.status == 200, lookup.value.text()
    offer = page.locator("datalist#ref-customer option")
    offer.first.wait_for(state="attached")
    assert offer.count() == 1 and offer.first.get_attribute("value") == str(customer.pk)
    assert phone not in offer.first.get_attribute("label")  # the agent sees the number masked
    page.fill("#customer", offer.first.get_attribute("value"))
    page.screenshot(path=tmp_path / "complaint_form.png", full_page=True)
    page.locator("form.admin-form input[type=submit][value='保存']").click()

    assert "成功" in success_message(page)
    page.screenshot(path=tmp_path / "complaint_saved.png", full_page=True)
    stored = list(db.records.find({"type": "complaint"}))  # the demo data has no records: this is the one
    assert len(stored) == 1 and stored[0]["customer"] == customer.pk
    problems.assert_none()


def test_supervisor_reassigns_every_overdue_record_of_the_page(new_context, problems, demo_records, db, tmp_path):
    page = signed_in_page(new_context, "supervisor")
    page.locator(".navbar a", has_text="逾期督办").click()
    page.wait_for_url("**/admin/overdue/")
    page.locator(".kefu-overdue-counts .kefu-count-list").first.wait_for()  # loaded by kefu_load.js
    boxes = page.locator("input.kefu-row-check")
    assert boxes.count() >= 2 and not any(boxes.evaluate_all("boxes => boxes.map(box => box.checked)"))
    page.locator("input[data-kefu-check-all]").check()
    assert all(boxes.evaluate_all("boxes => boxes.map(box => box.checked)"))
    chosen = [ObjectId(value.partition(":")[0]) for value in boxes.evaluate_all("boxes => boxes.map(b => b.value)")]
    manager = db.users.find_one({"username": "manager"})
    page.select_option("form.kefu-reassign select[name=assignee]", str(manager["_id"]))
    page.screenshot(path=tmp_path / "overdue.png", full_page=True)
    page.locator("form.kefu-reassign button[type=submit]").click()

    assert "转派" in success_message(page)
    page.screenshot(path=tmp_path / "overdue_reassigned.png", full_page=True)
    assignees = {record["assignee"] for record in db.records.find({"_id": {"$in": chosen}}, {"assignee": 1})}
    assert assignees == {manager["_id"]}
    problems.assert_none()


def test_admin_grants_the_handler_role_export_on_every_type(new_context, problems, db, tmp_path):
    page = signed_in_page(new_context, "admin")
    page.locator(".navbar a.dropdown-toggle", has_text="系统设置").click()
    page.locator(".navbar .dropdown-menu a", has_text="角色权限").click()
    page.wait_for_url("**/admin/roles/")
    page.screenshot(path=tmp_path / "roles.png", full_page=True)
    page.locator("tr[data-role='handler'] a", has_text="编辑").click()
    page.wait_for_url("**/admin/roles/edit/?key=handler")
    export = page.locator("tr[data-type='*'] input[name='actions-*'][value='export']")
    assert not export.is_checked()
    export.check()
    page.screenshot(path=tmp_path / "role_edit.png", full_page=True)
    page.locator("form.kefu-role-editor button[type=submit]").click()

    assert "已保存" in success_message(page)
    page.screenshot(path=tmp_path / "role_saved.png", full_page=True)
    grants = {grant["record_type"]: grant for grant in db.roles.find_one({"key": "handler"})["grants"]}
    assert "export" in grants["*"]["actions"]
    problems.assert_none()


def test_sign_out_ends_the_session_on_the_server(new_context, problems, tmp_path):
    page = signed_in_page(new_context, "agent")
    copied = new_context().new_page()  # another browser holding a copy of the session cookie
    copied.context.add_cookies(page.context.cookies())
    copied.goto("/admin/")
    assert urlsplit(copied.url).path == "/admin/"  # the copy works while the session is open
    page.locator("#kefu-user-menu").click()
    page.locator("form[action='/logout'] button[type=submit]").click()
    page.wait_for_url("**/login")
    assert "您已安全退出" in page.content()
    page.screenshot(path=tmp_path / "signed_out.png", full_page=True)
    page.goto("/admin/")
    assert urlsplit(page.url).path == "/login"

    copied.goto("/admin/")
    assert urlsplit(copied.url).path == "/login"
    problems.assert_none()
