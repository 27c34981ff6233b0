"""The in-app inbox (bell, 消息 page, API) and the admin screens of the notification system."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from tests.conftest import csrf_token, token_headers
from tests.test_records_api import assert_error
from tests.test_reminders import new_record, probe, users  # noqa: F401  (fixtures)


@pytest.fixture
def overdue_record(app, client, admin, probe, users):
    """A record overdue now, swept: the agent and the supervisor have a notification each."""
    from kefu.notify.reminders import sweep

    record = new_record(client, admin, datetime.now(timezone.utc) - timedelta(hours=30), users)
    with app.app_context():
        sweep()
    return record


def web_sign_in(client, username):
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"username": username, "password": "kefu-demo", "csrf_token": token})
    assert response.status_code == 302


def test_api_lists_the_callers_notifications_newest_first(app, client, overdue_record, users, db):
    agent = token_headers(client, "agent")
    body = client.get("/api/v1/notifications", headers=agent).get_json()
    assert body["total"] == 1 and body["unread"] == 1
    item = body["items"][0]
    assert set(item) >= {"id", "record_id", "clock", "kind", "created_at", "read", "title", "body"}
    assert item["record_id"] == overdue_record["id"] and item["clock"] == "resolve" and item["kind"] == "overdue"
    assert item["read"] is False and item["created_at"].endswith("+08:00")
    # A second, newer one comes first.
    db.notifications.insert_one({**db.notifications.find_one({"_id": ObjectId(item["id"])}, {"_id": 0}),
                                 "key": "later", "created_at": datetime.now(timezone.utc) + timedelta(minutes=1),
                                 "title": "较新的通知"})
    items = client.get("/api/v1/notifications", headers=agent).get_json()["items"]
    assert [i["title"] for i in items][0] == "较新的通知"


def test_marking_read_is_the_callers_own_only(app, client, overdue_record, users, db):
    agent, manager = token_headers(client, "agent"), token_headers(client, "manager")
    note_id = client.get("/api/v1/notifications", headers=agent).get_json()["items"][0]["id"]
    assert_error(client.post(f"/api/v1/notifications/{note_id}/read", headers=manager), 404)
    assert db.notifications.find_one({"_id": ObjectId(note_id)})["read_at"] is None
    response = client.post(f"/api/v1/notifications/{note_id}/read", headers=agent)
    assert response.status_code == 200 and response.get_json()["read"] is True
    assert db.notifications.find_one({"_id": ObjectId(note_id)})["read_at"] is not None
    body = client.get("/api/v1/notifications", headers=agent).get_json()
    assert body["unread"] == 0 and client.get("/api/v1/notifications?unread=true", headers=agent).get_json()[
        "total"] == 0
    assert_error(client.post("/api/v1/notifications/not-an-id/read", headers=agent), 404)
    assert_error(client.get("/api/v1/notifications?unread=maybe", headers=agent), 400)
    assert_error(client.get("/api/v1/notifications"), 401)


def test_bell_shows_the_unread_count_on_every_admin_page(app, client, overdue_record, db):
    web_sign_in(client, "agent")
    for path in ("/admin/", "/admin/records/remind_probe/", "/admin/customers/"):
        page = client.get(path).get_data(as_text=True)
        assert re.search(r'id="kefu-bell".*?kefu-unread-count">1<', page, re.S), path


def test_inbox_page_opens_the_record_and_marks_it_read(app, client, overdue_record, db):
    web_sign_in(client, "agent")
    page = client.get("/admin/inbox/").get_data(as_text=True)
    note = db.notifications.find_one({"user": db.users.find_one({"username": "agent"})["_id"]})
    assert note["title"] in page and "kefu-unread" in page
    token = csrf_token(client, "/admin/inbox/")
    response = client.post(f"/admin/inbox/open/{note['_id']}/", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/admin/records/remind_probe/details/?id={overdue_record['id']}")
    assert db.notifications.find_one({"_id": note["_id"]})["read_at"] is not None
    assert "kefu-unread-count" not in client.get("/admin/").get_data(as_text=True)
    # Without the CSRF token nothing changes.
    db.notifications.update_one({"_id": note["_id"]}, {"$set": {"read_at": None}})
    client.post(f"/admin/inbox/open/{note['_id']}/", data={})
    assert db.notifications.find_one({"_id": note["_id"]})["read_at"] is None


def test_notification_settings_are_admin_only_and_validated(app, client, seeded, db):
    web_sign_in(client, "agent")
    assert client.get("/admin/notify-settings/").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/admin/")})
    web_sign_in(client, "admin")
    page = client.get("/admin/notify-settings/").get_data(as_text=True)
    assert "员工提醒群机器人地址" in page and "发送时段开始" in page
    token = csrf_token(client, "/admin/notify-settings/")
    response = client.post("/admin/notify-settings/", data={
        "csrf_token": token, "staff_webhook_url": "qyapi.weixin.qq.com/cgi-bin/webhook", "window_start": "09:00",
        "window_end": "18:00", "webhook_format": "wecom", "smtp_security": ""})
    assert "地址应以 http:// 或 https:// 开头" in response.get_data(as_text=True)
    assert (db.notification_settings.find_one() or {}).get("staff_webhook_url") is None
    response = client.post("/admin/notify-settings/", data={
        "csrf_token": token, "staff_webhook_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
        "smtp_host": "smtp.example.com", "smtp_port": "465", "smtp_security": "ssl", "smtp_from": "kefu@example.com",
        "smtp_password": "mail-pass-123", "window_start": "08:30", "window_end": "20:00", "webhook_format": "wecom",
        "urgent_levels": "重大、重要", "quiet_enabled": "y", "working_days_only": "y", "email_enabled": "y"})
    assert response.status_code == 302
    stored = db.notification_settings.find_one()
    assert stored["window_start"] == "08:30" and stored["urgent_levels"] == ["重大", "重要"]
    assert stored["smtp_port"] == 465 and "mail-pass-123" not in str(stored)


def test_message_templates_are_edited_with_their_variables_checked(app, client, seeded, db):
    web_sign_in(client, "admin")
    page = client.get("/admin/message_templates/").get_data(as_text=True)
    assert "逾期提醒" in page and "交付关怀" in page
    template = db.message_templates.find_one({"kind": "overdue"})
    edit = f"/admin/message_templates/edit/?id={template['_id']}"
    assert "可用变量" in client.get(edit).get_data(as_text=True)
    token = csrf_token(client, edit)
    response = client.post(edit, data={"csrf_token": token, "subject": "逾期：{{ number ", "body": "x"},
                           follow_redirects=True)
    assert "语法错误" in response.get_data(as_text=True)
    assert db.message_templates.find_one({"kind": "overdue"})["subject"] == template["subject"]
    response = client.post(edit, data={"csrf_token": token, "subject": "逾期啦 {{ number }}",
                                       "body": "{{ clock }} 超时 {{ late }}"})
    assert response.status_code == 302
    assert db.message_templates.find_one({"kind": "overdue"})["subject"] == "逾期啦 {{ number }}"


def test_sandboxed_templates_cannot_reach_into_python(app, seeded):
    from kefu.notify.messages import template_problems

    problems = template_problems("overdue", "{{ ''.__class__.__mro__[1].__subclasses__() }}", "正文")
    assert "subject" in problems


def test_edited_template_is_used_by_the_next_sweep(app, client, admin, probe, users, db):
    from kefu.notify.messages import save_template
    from kefu.notify.reminders import sweep

    with app.app_context():
        save_template("overdue", "逾期啦 {{ number }}（{{ record.content }}）", "{{ clock }} 超时 {{ late }}")
    record = new_record(client, admin, datetime.now(timezone.utc) - timedelta(hours=30), users)
    with app.app_context():
        sweep()
    note = db.notifications.find_one({"kind": "overdue"})
    assert note["title"] == f"逾期啦 {record['number']}（卫生间漏水）" and note["body"].startswith("处理完成 超时")


def test_deliveries_log_lists_and_retries_failed_ones(app, client, seeded, db):
    web_sign_in(client, "admin")
    db.deliveries.insert_one({"key": "k1", "channel": "webhook", "target": "https://robot/send?key=secret",
                              "kind": "overdue", "subject": "【已逾期】投诉 TS-1", "body": "b",
                              "status": "failed", "attempts": 4, "error": "webhook answered HTTP 503",
                              "not_before": datetime.now(timezone.utc), "created_at": datetime.now(timezone.utc)})
    page = client.get("/admin/deliveries/").get_data(as_text=True)
    assert "发送失败" in page and "HTTP 503" in page and "secret" not in page
    delivery = db.deliveries.find_one({"key": "k1"})
    token = csrf_token(client, "/admin/deliveries/")
    response = client.post("/admin/deliveries/action/", data={"csrf_token": token, "action": "retry",
                                                              "rowid": str(delivery["_id"])})
    assert response.status_code == 302
    assert db.deliveries.find_one({"key": "k1"})["status"] == "pending"


def test_clock_started_and_list_duty_kinds_have_their_own_editable_templates(app, client, seeded, db):
    """The "clock started" notice (a clock with notify_at_start) and the packs' list duties — 002 在施工程电话回访制度
    五 周回访情况分析, 002 工程预验收流程 预验收工程名录 — each have a kind of their own on 消息模板, with a shipped template
    that renders on the sample values, so an admin edits one without changing the weekly summary."""
    from kefu.notify.messages import KINDS, SAMPLE_VALUES, Renderer

    web_sign_in(client, "admin")
    page = client.get("/admin/message_templates/").get_data(as_text=True)
    assert "开始计时提醒" in page and "周回访情况分析" in page and "预验收工程名录" in page
    stored = {t["kind"]: t for t in db.message_templates.find()}
    for kind in ("clock_started", "callback_analysis", "pre_acceptance_list"):
        assert stored[kind]["subject"] == KINDS[kind].subject and stored[kind]["body"] == KINDS[kind].body
    edit = f"/admin/message_templates/edit/?id={stored['clock_started']['_id']}"
    assert "due_at" in client.get(edit).get_data(as_text=True)  # its variables: a record reminder's
    with app.app_context():
        subject, body = Renderer().render("clock_started", SAMPLE_VALUES)
    assert subject == "【开始计时】投诉 TS-202612-0001：处理完成" and "2026-12-03 18:00 截止" in body


def test_a_list_duty_sends_with_its_own_edited_template(app, client, admin, seeded, db):
    """002 工程预验收流程: the Wednesday 预验收工程名录 goes out as kind ``pre_acceptance_list``, written with that
    kind's template as the admin edited it; the weekly summary's template is untouched."""
    from kefu.notify.messages import KINDS, save_template
    from kefu.schedule.duties import claim, current_duty, run
    from tests.test_schedules import local

    response = client.post("/api/v1/records/pre_acceptance", headers=admin, json={
        "customer_name": "王女士", "inspection_date": "2026-11-26", "foreman": "李工", "attempt": "第一次验收"})
    assert response.status_code == 201, response.get_data(as_text=True)
    wednesday = local("2026-11-25T09:00")
    with app.app_context():
        save_template("pre_acceptance_list", "{{ title }}·共 {{ lines | length }} 项", "请周四预验收：{{ lines | join('；') }}")
        assert claim(current_duty("pre_acceptance_list"), wednesday, wednesday)
        assert run("pre_acceptance_list", wednesday, wednesday).startswith("records: 1;")
    notes = list(db.notifications.find({"key": {"$regex": "^list:pre_acceptance_list:"}}))
    assert notes and {n["kind"] for n in notes} == {"pre_acceptance_list"}
    assert notes[0]["title"] == "预验收工程名录（2026-11-26 至 2026-12-02）·共 1 项"
    assert notes[0]["body"].startswith("请周四预验收：") and response.get_json()["number"] in notes[0]["body"]
    summary = db.message_templates.find_one({"kind": "weekly_summary"})
    assert summary is None or summary["body"] == KINDS["weekly_summary"].body


def test_the_clock_started_notice_is_written_with_its_template(app, client, agent, seeded, calendar, db):
    """004 投诉处理 1 (重大 即时报告): the sweep's "clock started" notice to the 客服经理 is kind ``clock_started``,
    written with that kind's template as the admin edited it (no fixed text)."""
    from kefu.notify.messages import save_template
    from kefu.notify.reminders import sweep
    from tests.test_pack_commercial import complaint

    with app.app_context():
        save_template("clock_started", "立即处理 {{ number }}：{{ clock }}", "{{ type_name }}，{{ due_at }} 前开始处理")
    created = client.post("/api/v1/records/mall_complaint", headers=agent, json=complaint(level="重大"))
    assert created.status_code == 201, created.get_data(as_text=True)
    record = created.get_json()
    with app.app_context():
        sweep(datetime.now(timezone.utc) + timedelta(seconds=1))
    note = db.notifications.find_one({"record_id": ObjectId(record["id"]), "kind": "clock_started",
                                      "user": db.users.find_one({"username": "manager"})["_id"]})
    assert note is not None and note["title"].startswith(f"立即处理 {record['number']}：")
    assert note["body"].startswith("商业投诉，") and note["body"].endswith("前开始处理")
