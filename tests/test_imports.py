"""Import from Excel (``kefu.insight.imports``): a 1,000-row XLSX of complaints with 20 bad rows — the dry run names
each bad cell and writes nothing, the import writes the 980 good rows once however often the file is imported, with
their historical times; all or nothing; customers; CSV as Chinese Excel saves it; the admin screens."""
from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from seed.demo import DEMO_PASSWORD

SHANGHAI = ZoneInfo("Asia/Shanghai")
PROJECT, UNIT = "云栖·江南府", "1幢1单元101"
HEADERS = ["编号", "受理时间", "投诉渠道", "项目", "户位", "业主姓名", "联系电话", "投诉内容", "类别", "备注说明"]
# row index (from 0) → (column, bad value, what the message says)
BAD = {**{n: ("联系电话", "12345", "电话") for n in range(3, 100, 20)},
       **{n: ("业主姓名", None, "请填写“业主姓名”") for n in range(150, 400, 50)},
       **{n: ("类别", "天气", "类别") for n in range(501, 506)},
       **{n: ("受理时间", "2026-13-45", "不是有效时间") for n in range(990, 1000, 2)}}


def complaint_rows(count: int = 1000, bad=BAD, start: datetime | None = None) -> list[list]:
    start = start or datetime.now(SHANGHAI).replace(tzinfo=None, second=0, microsecond=0) - timedelta(days=40)
    rows = []
    for n in range(count):
        received = start + timedelta(minutes=7 * n)
        row = dict(zip(HEADERS, [None, received, "来电、网络", PROJECT, UNIT, f"业主{n}", f"139{n:08d}",
                                 f"历史投诉 第{n}条：卫生间漏水", "工程质量", "不导入的列"]))
        if n in bad:
            column, value, _message = bad[n]
            row[column] = value
        rows.append([row[h] for h in HEADERS])
    return rows


def xlsx_bytes(headers: list[str], rows: list[list]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def as_admin(app):
    from kefu.org.users import User
    from kefu.records.actor import user_actor

    return user_actor(User.objects(username="admin").first())


def imported(app, data: bytes, target: str = "records:complaint", filename: str = "投诉.xlsx", mode: str = "valid",
             mapping: dict | None = None):
    """Upload, map as matched, dry run; return the checked import."""
    from kefu.insight import imports

    with app.test_request_context():
        actor = as_admin(app)
        job = imports.upload(actor, target, filename, data)
        job = imports.check(job, actor, mapping if mapping is not None else dict(job.mapping), mode)
        return imports.run(str(job.pk))


def write(app, job):
    from kefu.insight import imports

    with app.test_request_context():
        imports.start_import(job, as_admin(app))
        return imports.run(str(job.pk))


def test_a_thousand_row_xlsx_with_twenty_bad_rows_imports_the_good_ones_once(app, seeded, calendar, db):
    from kefu.insight import imports

    rows = complaint_rows()
    data = xlsx_bytes(HEADERS, rows)
    job = imported(app, data)
    assert job.status == "checked", job.error
    assert set(job.mapping.values()) == {"number", "received_at", "channel", "project", "unit", "owner_name",
                                         "phone", "content", "category"}  # 备注说明 names no field
    assert (job.total, job.valid, job.invalid, job.existing) == (1000, 980, 20, 0)
    assert db.records.count_documents({"type": "complaint", "imported": {"$exists": True}}) == 0  # nothing written

    with app.test_request_context():
        problems = imports.problems_of(job)
    assert len(problems) == 20
    for problem in problems:
        index = problem["row"] - 2  # row 1 is the header
        column, _value, said = BAD[index]
        assert problem["label"] == column and problem["column"] == "ABCDEFGHIJ"[HEADERS.index(column)]
        assert problem["text"].startswith(f"第 {problem['row']} 行，{column}：") and said in problem["text"]
        assert re.search(r"[\u4e00-\u9fff]", problem["message"])
    phone_problem = next(p for p in problems if p["label"] == "联系电话")
    assert phone_problem["value"] == "1***"  # a sensitive cell is kept masked, whoever reads the report

    job = write(app, job)
    assert job.status == "done" and job.written == 980 and job.invalid == 20
    stored = list(db.records.find({"type": "complaint", "imported": {"$exists": True}}))
    assert len(stored) == 980
    first = next(r for r in stored if r["imported"]["row"] == 2)
    received = rows[0][1].replace(tzinfo=SHANGHAI)
    assert abs(first["created_at"].replace(tzinfo=ZoneInfo("UTC")) - received) < timedelta(seconds=1)
    assert first["number"].startswith(f"TS-{received:%Y%m}-")  # numbered in the month it was registered
    assert first["data"]["received_at"].replace(tzinfo=ZoneInfo("UTC")) == received
    assert "phone" not in first["data"] and "13900000000" not in str(first) and first["pii"]["phone"]  # encrypted
    clocks = [c for c in (first.get("sla") or {}).values() if c.get("due_at")]
    assert clocks and all(c["due_at"].replace(tzinfo=ZoneInfo("UTC")) < datetime.now(SHANGHAI) for c in clocks)
    assert all(c["started_at"].replace(tzinfo=ZoneInfo("UTC")) == received for c in clocks  # counted from the past
               if c.get("started_at") and c["name"] != "方案审批")

    again = imported(app, data)  # the same file once more
    assert (again.valid, again.existing, again.invalid) == (0, 980, 20)
    again = write(app, again)
    assert again.written == 0
    assert db.records.count_documents({"type": "complaint", "imported": {"$exists": True}}) == 980

    with app.test_request_context():
        report = imports.error_report(job).decode("utf-8-sig").splitlines()
    assert report[0] == "行,列,表头,值,问题" and len(report) == 21


def test_all_or_nothing_writes_nothing_when_a_row_is_bad(app, seeded, calendar, db):
    from kefu.core.errors import ValidationFailed
    from kefu.insight import imports

    rows = complaint_rows(30, bad={7: ("类别", "天气", "")})
    job = imported(app, xlsx_bytes(HEADERS, rows), mode="all")
    assert (job.valid, job.invalid) == (29, 1)
    with app.test_request_context(), pytest.raises(ValidationFailed, match="全部或全不"):
        imports.start_import(job, as_admin(app))
    job.update(set__status="importing")  # as if started anyway (the job checks again before writing)
    with app.test_request_context():
        job = imports.run(str(job.pk))
    assert job.status == "failed" and "未导入任何数据" in job.error
    assert db.records.count_documents({"type": "complaint", "imported": {"$exists": True}}) == 0

    rows[7][HEADERS.index("类别")] = "工程质量"
    job = write(app, imported(app, xlsx_bytes(HEADERS, rows), mode="all"))
    assert job.status == "done" and job.written == 30
    numbers = {r["number"] for r in db.records.find({"type": "complaint", "imported": {"$exists": True}})}
    assert len(numbers) == 30 and not any(n.startswith(("编号",)) for n in numbers)


def test_rows_with_a_number_are_recognised_by_it(app, seeded, calendar, db):
    rows = complaint_rows(3, bad={})
    for n, row in enumerate(rows):
        row[0] = f"OLD-{n}"
    rows.append(list(rows[0]))  # the same number twice in the file
    rows[-1][HEADERS.index("投诉内容")] = "改过的内容"
    job = write(app, imported(app, xlsx_bytes(HEADERS, rows)))
    assert (job.written, job.existing) == (3, 1)
    keys = sorted(r["imported"]["key"] for r in db.records.find({"imported": {"$exists": True}}))
    assert keys == [f"records:complaint:complaint:no:OLD-{n}" for n in range(3)]
    job = write(app, imported(app, xlsx_bytes(HEADERS, rows[:2])))
    assert job.written == 0 and db.records.count_documents({"imported": {"$exists": True}}) == 3


def test_customers_import_from_a_gbk_csv(app, seeded, db):
    from kefu.insight import imports

    lines = ["姓名,性别,联系电话,身份证号,项目,户位,客户等级",
             f"导入甲,男,13912340001,,{PROJECT},{UNIT},A",
             f"导入乙,女,13912340002,,{PROJECT},,B",
             f"导入丙,男,12345,,{PROJECT},,B",  # a bad phone
             f"导入丁,未知,13912340004,,不存在的项目,,B",  # a bad gender and project
             f"导入甲,男,13912340001,,{PROJECT},{UNIT},A"]  # the same customer again
    data = "\r\n".join(lines).encode("gbk")
    job = imported(app, data, target="customers", filename="客户.csv")
    assert job.status == "checked", job.error
    assert (job.total, job.valid, job.invalid, job.existing) == (5, 2, 2, 1)
    with app.test_request_context():
        texts = [p["text"] for p in imports.problems_of(job)]
    assert texts[0].startswith("第 4 行，联系电话：")
    assert any(t.startswith("第 5 行，性别：") for t in texts) and any(t.startswith("第 5 行，项目：") for t in texts)
    before = db.customers.count_documents({})
    job = write(app, job)
    assert job.written == 2 and db.customers.count_documents({}) == before + 2
    stored = db.customers.find_one({"name": "导入甲"})
    assert stored["grade"] == "A" and stored["unit"] and "phone" not in stored and stored["phone_enc"]
    assert write(app, imported(app, data, target="customers", filename="客户.csv")).written == 0
    assert db.customers.count_documents({}) == before + 2

    from kefu.schedule.routines import remove_old_exports

    with app.app_context():  # the uploads hold personal data: gone with their problem lists after seven days
        assert remove_old_exports(datetime.now(SHANGHAI) + timedelta(days=6)) == "exports removed: 0; imports removed: 0"
        assert remove_old_exports(datetime.now(SHANGHAI) + timedelta(days=8)) == "exports removed: 0; imports removed: 2"
    assert db.import_jobs.count_documents({}) == 0 and db.import_problems.count_documents({}) == 0
    assert db["imports.files"].count_documents({}) == 0 and db["imports.chunks"].count_documents({}) == 0
    assert db.customers.count_documents({}) == before + 2


def test_the_admin_screens_upload_map_check_and_import(app, client, seeded, calendar, sign_in, db):
    from tests.test_export_files import run_queued_jobs

    sign_in("admin", DEMO_PASSWORD)
    for listing, target in (("/admin/records/complaint/", "records:complaint"), ("/admin/customers/", "customers"),
                            ("/admin/units/", "units"), ("/admin/users/", "users")):
        assert f'href="/admin/imports/?target={target}"' in client.get(listing).get_data(as_text=True), listing
    page = client.get("/admin/imports/?target=records:complaint")
    assert page.status_code == 200 and "导入" in page.get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    data = xlsx_bytes(HEADERS, complaint_rows(12, bad={4: ("联系电话", "12345", "")}))
    response = client.post("/admin/imports/upload/", data={
        "csrf_token": token, "target": "records:complaint", "file": (io.BytesIO(data), "投诉.xlsx")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    job = db.import_jobs.find_one({})
    assert job["status"] == "mapping" and job["total"] == 12 and job["mapping"]["6"] == "phone"
    assert db.fs.files.count_documents({}) == 0 and db.imports.files.count_documents({}) == 1
    url = f"/admin/imports/{job['_id']}/"
    page = client.get(url).get_data(as_text=True)
    assert "联系电话" in page and 'value="phone" selected' in page
    form = {"csrf_token": token, "mode": "valid", **{f"col-{i}": key for i, key in job["mapping"].items()}}
    form["col-1"] = "phone"  # 受理时间 into 联系电话 as well: refused at the column
    page = client.post(f"{url}check/", data=form).get_data(as_text=True)
    assert "已由另一列导入" in page and db.import_jobs.find_one({})["status"] == "mapping"
    form["col-1"] = "received_at"
    assert client.post(f"{url}check/", data=form).status_code == 302
    run_queued_jobs(app)
    assert client.get(f"{url}status.json").get_json()["status"] == "checked"
    page = client.get(url).get_data(as_text=True)
    assert "第 6 行，联系电话：" in page and "11" in page
    report = client.get(f"{url}problems.csv")
    assert report.status_code == 200 and "第" not in report.get_data(as_text=True)
    assert report.get_data().decode("utf-8-sig").splitlines()[1].startswith("6,G,联系电话,1***,")
    assert client.post(f"{url}run/", data={"csrf_token": token}).status_code == 302
    run_queued_jobs(app)
    stored = db.import_jobs.find_one({})
    assert stored["status"] == "done" and stored["written"] == 11
    assert db.records.count_documents({"imported.import": str(stored["_id"])}) == 11


def test_an_english_uploader_reads_the_problems_in_english(app, seeded, calendar, db):
    from kefu.core.i18n import in_language
    from kefu.insight import imports

    db.users.update_one({"username": "admin"}, {"$set": {"locale": "en"}})
    job = imported(app, xlsx_bytes(HEADERS, complaint_rows(3, bad={1: ("联系电话", "12345", "")})))
    assert (job.status, job.valid, job.invalid) == ("checked", 2, 1)
    with app.test_request_context(), in_language("en"):  # as the English uploader's page shows them
        texts = [p["text"] for p in imports.problems_of(job)]
    assert texts == ["Row 3, 联系电话: Invalid mobile number: 11 digits starting with 1"]


def test_an_import_is_its_uploader_s_own(app, client, seeded, sign_in, db):
    sign_in("agent", DEMO_PASSWORD)
    job = imported(app, xlsx_bytes(HEADERS, complaint_rows(2, bad={})))
    assert client.get(f"/admin/imports/{job.pk}/").status_code == 404
    assert client.get(f"/admin/imports/{ObjectId()}/problems.csv").status_code == 404
    page = client.get("/admin/imports/")
    assert page.status_code == 200 and "投诉.xlsx" not in page.get_data(as_text=True)  # the admin's import


def test_units_and_users_import_with_the_system_capability(app, seeded, db):
    lines = ["项目,楼栋,单元,房号,建筑面积,户型", f"{PROJECT},9幢,1单元,101,89.5,两室", f"{PROJECT},1幢,1单元,101,,",
             "不存在的项目,1幢,,101,,"]
    job = write(app, imported(app, "\n".join(lines).encode("utf-8-sig"), target="units", filename="户位.csv"))
    assert (job.written, job.existing, job.invalid) == (1, 1, 1)
    assert db.units.find_one({"label": "9幢1单元101"})["layout"] == "两室" and db.buildings.find_one({"name": "9幢"})
    lines = ["登录名,姓名,角色,部门,电话,初始密码", "zhang3,张三,agent,客服中心,13912340009,long-enough-1",
             "admin,重名,agent,,,long-enough-2", "li4,李四,没有的角色,客服中心,,short"]
    job = write(app, imported(app, "\n".join(lines).encode("utf-8"), target="users", filename="用户.csv"))
    assert (job.written, job.existing, job.invalid) == (1, 1, 1)
    stored = db.users.find_one({"username": "zhang3"})
    assert stored["roles"] == ["agent"] and stored["phone_enc"] and "long-enough" not in str(stored)
    with app.test_request_context():
        from kefu.insight import imports

        problems = imports.problems_of(job)
    assert {p["label"] for p in problems} == {"角色", "初始密码"} and all(p["value"] != "short" for p in problems)
