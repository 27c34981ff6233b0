"""Email and webhook deliveries against real peers: a local SMTP server (aiosmtpd) and a local HTTP receiver
standing in for a WeCom group robot; rq workers in burst mode; retries with backoff; one channel failing never
holds up another."""
from __future__ import annotations

import email
import json
import threading
from datetime import datetime, timedelta, timezone
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from kefu.runtime.embedded import free_port
from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token
from tests.test_reminders import new_record, probe, users  # noqa: F401  (fixtures)


class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


class Robot:
    """A group-robot webhook: answers each POST with the next planned (status, body); records what came."""

    def __init__(self, plan):
        self.plan = list(plan)
        self.received = []
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                robot.received.append((self.path, self.headers["Content-Type"], json.loads(body)))
                status, answer = robot.plan.pop(0) if len(robot.plan) > 1 else robot.plan[0]
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/webhook/send?key=secret-robot-key"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def robot_factory():
    robots = []

    def make(*plan):
        robots.append(Robot(plan or [(200, {"errcode": 0, "errmsg": "ok"})]))
        return robots[-1]

    yield make
    for robot in robots:
        robot.stop()


def configure(app, **values):
    from kefu.notify.channels import save_settings

    with app.app_context():
        save_settings(values, app.extensions["kefu_cipher"])


def overdue_now(app, client, admin, users, **values):
    """A record overdue now, swept: its overdue alert is in the outbox."""
    from kefu.notify.reminders import sweep

    record = new_record(client, admin, datetime.now(timezone.utc) - timedelta(hours=30), users, **values)
    with app.app_context():
        sweep()
    return record


def drain(app):
    """Hand due deliveries to the workers and run a burst worker until the queues are empty."""
    from rq import SimpleWorker

    from jobs.deliver import dispatch

    with app.app_context():
        dispatch()
        SimpleWorker(["notify"], connection=app.extensions["kefu_redis"]).work(burst=True, with_scheduler=False)


@pytest.fixture
def fast_retries(app):
    app.config["KEFU_RETRY_INTERVALS"] = [0, 0, 0]


def subject_of(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def test_email_reaches_the_smtp_server_in_chinese_once(app, client, admin, probe, users, db, smtp_server):
    controller, inbox = smtp_server
    configure(app, smtp_host="127.0.0.1", smtp_port=controller.port, smtp_from="kefu@example.com",
              quiet_enabled=False)
    record = overdue_now(app, client, admin, users)
    drain(app)
    assert sorted(to for tos, _m in inbox.messages for to in tos) == ["agent@kefu.example.com",
                                                                     "supervisor@kefu.example.com"]
    message = inbox.messages[0][1]
    assert subject_of(message) == f"【已逾期】提醒测试 {record['number']}：处理完成"
    body = message.get_payload(decode=True).decode(message.get_content_charset())
    assert "现已逾期" in body and "负责人：林晓雯（agent）" not in body and "负责人：林晓雯" in body
    assert message.get_content_charset() == "utf-8" and "客服管理系统" in str(make_header(decode_header(message["From"])))
    stored = list(db.deliveries.find({"channel": "email"}))
    assert {d["status"] for d in stored} == {"sent"} and {d["attempts"] for d in stored} == {1}
    drain(app)  # again: nothing more is sent
    assert len(inbox.messages) == 2


def test_webhook_is_retried_with_backoff_until_it_succeeds(app, client, admin, probe, users, db, robot_factory,
                                                           fast_retries):
    robot = robot_factory((500, {"error": "busy"}), (200, {"errcode": 45009, "errmsg": "api freq out of limit"}),
                          (200, {"errcode": 0, "errmsg": "ok"}))
    configure(app, staff_webhook_url=robot.url, quiet_enabled=False)
    record = overdue_now(app, client, admin, users)
    drain(app)
    assert len(robot.received) == 3
    path, content_type, payload = robot.received[-1]
    assert path.endswith("key=secret-robot-key") and content_type == "application/json; charset=utf-8"
    assert payload["msgtype"] == "text" and f"【已逾期】提醒测试 {record['number']}" in payload["text"]["content"]
    assert sorted(payload["text"]["mentioned_mobile_list"]) == ["13800138002", "13800138003"]
    delivery = db.deliveries.find_one({"channel": "webhook"})
    assert delivery["status"] == "sent" and delivery["attempts"] == 3 and delivery["error"] is None


def test_a_channel_that_keeps_failing_gives_up_and_shows_in_the_log(app, client, admin, probe, users, db,
                                                                    robot_factory, fast_retries):
    from rq import Queue
    from rq.registry import FailedJobRegistry

    robot = robot_factory((503, {}))
    configure(app, staff_webhook_url=robot.url, quiet_enabled=False)
    overdue_now(app, client, admin, users)
    drain(app)
    delivery = db.deliveries.find_one({"channel": "webhook"})
    from kefu.notify.notifications import MAX_ATTEMPTS

    assert delivery["status"] == "failed" and delivery["attempts"] == MAX_ATTEMPTS == len(robot.received)
    assert "HTTP 503" in delivery["error"]
    failed = FailedJobRegistry(queue=Queue("notify", connection=app.extensions["kefu_redis"]))
    assert failed.count == 1

    # Fixed on the robot's side; the administrator sends it again.
    robot.plan = [(200, {"errcode": 0})]
    with app.app_context():
        from kefu.notify.notifications import retry_delivery

        retry_delivery(delivery["_id"])
    drain(app)
    assert db.deliveries.find_one({"_id": delivery["_id"]})["status"] == "sent"


def test_a_failing_email_server_does_not_hold_up_the_webhook(app, client, admin, probe, users, db, robot_factory,
                                                             fast_retries):
    robot = robot_factory()
    configure(app, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_from="kefu@example.com",
              staff_webhook_url=robot.url, quiet_enabled=False)
    overdue_now(app, client, admin, users)
    drain(app)
    assert len(robot.received) == 1
    emails = list(db.deliveries.find({"channel": "email"}))
    assert len(emails) == 2 and {d["status"] for d in emails} == {"failed"}
    assert all("ConnectionRefusedError" in d["error"] for d in emails)
    assert db.deliveries.find_one({"channel": "webhook"})["status"] == "sent"


def test_dingtalk_shape_and_a_redacted_robot_address():
    from kefu.notify.channels import redact_url, webhook_payload

    assert webhook_payload("dingtalk", "内容", ["13800138003"]) == {
        "msgtype": "text", "text": {"content": "内容"}, "at": {"atMobiles": ["13800138003"], "isAtAll": False}}
    assert redact_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc") == \
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?…"


def test_a_second_worker_finds_a_claimed_delivery_taken(app, client, admin, probe, users, db, robot_factory):
    from jobs.deliver import deliver
    from kefu.notify.notifications import claim

    robot = robot_factory()
    configure(app, staff_webhook_url=robot.url, quiet_enabled=False)
    overdue_now(app, client, admin, users)
    delivery = db.deliveries.find_one({"channel": "webhook"})
    with app.app_context():
        assert claim(delivery["_id"], datetime.now(timezone.utc)) is not None  # a worker holds it now
        assert deliver(str(delivery["_id"])).startswith("nothing to do")
        # The holder died: after the lease the delivery is taken again and sent once.
        db.deliveries.update_one({"_id": delivery["_id"]},
                                 {"$set": {"claimed_at": datetime.now(timezone.utc) - timedelta(minutes=6)}})
        assert deliver(str(delivery["_id"])).startswith("sent")
        assert deliver(str(delivery["_id"])).startswith("nothing to do")
    assert len(robot.received) == 1


def test_smtp_password_is_stored_encrypted(app, db):
    from kefu.notify.channels import get_settings, save_settings, smtp_settings

    with app.app_context():
        save_settings({"smtp_host": "smtp.example.com", "smtp_from": "kefu@example.com"},
                      app.extensions["kefu_cipher"], smtp_password="邮箱密码-s3cret")
        raw = json.dumps(db.notification_settings.find_one(), default=str, ensure_ascii=False)
        assert "s3cret" not in raw and "邮箱密码" not in raw
        assert smtp_settings(get_settings(), app.extensions["kefu_cipher"]).password == "邮箱密码-s3cret"


def test_unset_urgent_levels_mean_each_types_top_level_and_a_listed_one_wins(app, client, admin, probe, db):
    from kefu.notify.channels import get_settings
    from kefu.records.types import get_record_type

    graded = {"key": "graded_probe", "name": "分级测试", "number_prefix": "GP",
              "fields": [{"key": "grade", "label": "分级", "type": "choice", "choices": ["一般", "重大", "特大"]}],
              "levels": {"field": "grade", "order": ["一般", "重大", "特大"], "rules": []}}
    assert client.post("/api/v1/types", json=graded, headers=admin).status_code == 201

    with app.app_context():
        settings = get_settings()
        assert settings.urgent_levels == []
        assert settings.urgent_for(get_record_type("graded_probe")) == ("特大",)  # levels.order[-1]
        assert settings.urgent_for(get_record_type("remind_probe")) == ("重大",)  # the level field's last choice
        assert settings.urgent_for(get_record_type("consultation")) == ()  # no levels at all
    web = app.test_client()
    token = csrf_token(web, "/login")
    web.post("/login", data={"username": "admin", "password": DEMO_PASSWORD, "csrf_token": token})
    form = web.get("/admin/notify-settings/").get_data(as_text=True)
    assert 'placeholder="各类型的最高等级"' in form and "留空即各类型的最高等级" in form
    assert "重大" not in form

    configure(app, urgent_levels=["重要"])

    with app.app_context():
        settings = get_settings()
        assert settings.urgent_for(get_record_type("graded_probe")) == ("重要",)
        assert settings.urgent_for(get_record_type("remind_probe")) == ("重要",)
    assert db.notification_settings.find_one()["urgent_levels"] == ["重要"]
    assert 'value="重要"' in web.get("/admin/notify-settings/").get_data(as_text=True)
