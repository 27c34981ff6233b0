"""Export files as a spreadsheet user gets them: the stored XLSX of a background export read back with openpyxl
(date and time cells in the reader's zone, money as numbers in ¥, the header frozen and filtered, the 导出说明
sheet), an export of nothing, labels a type repeats, text longer than a cell holds, rows and names across batches,
the thread that reads ahead, and what LibreOffice makes of the file."""
from __future__ import annotations

import csv
import io
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from tests.test_records_api import MASKED_PHONE, PHONE, create
from tests.test_views_exports import cases  # noqa: F401  (fixture)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def run_queued_jobs(app):
    from rq import SimpleWorker

    with app.app_context():
        SimpleWorker(["default"], connection=app.extensions["kefu_redis"]).work(burst=True, with_scheduler=False)


def stored_workbook(app, db, job_id: str):
    """The workbook a background export stored (sealed in GridFS), decrypted and opened with openpyxl."""
    from openpyxl import load_workbook

    from kefu.insight import export_jobs

    job = db.export_jobs.find_one({"_id": ObjectId(job_id)})
    with app.app_context():
        _job, reader = export_jobs.open_file(job["user"], job_id)
        data = b"".join(iter(lambda: reader.read(64 * 1024), b""))
    assert data[:2] == b"PK"
    return load_workbook(io.BytesIO(data))


def header_index(sheet) -> dict[str, int]:
    return {cell.value: cell.column for cell in sheet[1]}


def test_a_background_xlsx_export_is_stored_as_excel_users_expect_it(app, client, supervisor, cases, db):  # noqa: F811
    app.config["KEFU_EXPORT_ASYNC_ROWS"] = 2
    response = client.get("/api/v1/records/complaint/export.xlsx", headers=supervisor)
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["export"]["id"]
    run_queued_jobs(app)
    stored = db.export_jobs.find_one({"_id": ObjectId(job_id)})
    assert stored["status"] == "done" and stored["rows_done"] == stored["total"] == 4

    book = stored_workbook(app, db, job_id)
    assert book.sheetnames == ["投诉", "导出说明"]
    sheet = book["投诉"]
    columns = header_index(sheet)
    last = sheet.cell(row=1, column=len(columns)).column_letter
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:{last}5"
    assert all(cell.font.b for cell in sheet[1])
    rows = {row[columns["编号"] - 1].value: row for row in sheet.iter_rows(min_row=2)}
    assert set(rows) == {case["number"] for case in cases.values()}

    late = rows[cases["mine_late"]["number"]]
    document = db.records.find_one({"_id": ObjectId(cases["mine_late"]["id"])})
    registered = late[columns["登记时间"] - 1]
    assert registered.is_date and registered.number_format == "yyyy-mm-dd hh:mm"
    local = document["created_at"].replace(tzinfo=timezone.utc).astimezone(SHANGHAI).replace(tzinfo=None)
    assert abs(registered.value - local) < timedelta(seconds=1)  # the wall time in the reader's zone, not UTC
    received = late[columns["受理时间"] - 1]
    typed = datetime.fromisoformat(cases["mine_late"]["received_at"])  # in the reader's zone, as it was typed
    assert received.is_date and received.value == typed.replace(tzinfo=None)
    money = late[columns["索赔金额"] - 1]
    assert money.data_type == "n" and money.value == 1234.5 and "¥" in money.number_format
    assert late[columns["联系电话"] - 1].value == PHONE  # the supervisor sees personal data
    assert late[columns["投诉内容"] - 1].value == "第一行\n第二行，含逗号, 和\"引号\""
    assert rows[cases["mine_new"]["number"]][columns["业主姓名"] - 1].value == "'=1+1"

    about = {row[0]: row[1] for row in book["导出说明"].iter_rows(values_only=True)}
    assert about["行数"] == 4 and about["导出人"] == "陈立峰" and about["记录类型"] == "投诉"
    assert "全部记录" in about["筛选条件"]
    entry = db.audit_log.find_one({"action": "export"})
    assert entry["rows"] == 4 and entry["format"] == "xlsx"


def test_an_export_of_nothing_keeps_its_header_frozen_and_filtered(client, agent, cases, db):  # noqa: F811
    from openpyxl import load_workbook

    response = client.get("/api/v1/records/complaint/export.xlsx?q=没有这样的投诉", headers=agent)
    assert response.status_code == 200, response.get_data(as_text=True)
    book = load_workbook(io.BytesIO(response.get_data()))
    sheet = book["投诉"]
    assert [cell.value for cell in sheet[1]][:2] == ["编号", "状态"]
    assert [row for row in sheet.iter_rows(min_row=2, values_only=True) if any(row)] == []
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:")
    about = {row[0]: row[1] for row in book["导出说明"].iter_rows(values_only=True)}
    assert about["行数"] == 0 and "搜索：没有这样的投诉" in about["筛选条件"]
    assert db.audit_log.find_one({"action": "export"})["rows"] == 0


@pytest.fixture
def notes_type(client, admin):
    """A type whose field repeats a core field's label (状态), with a day, a whole number, money and a long text."""
    definition = {"key": "note_probe", "name": "记录测试", "number_prefix": "NP", "fields": [
        {"key": "state_text", "label": "状态", "type": "text"},
        {"key": "visit_day", "label": "上门日期", "type": "date"},
        {"key": "visits", "label": "上门次数", "type": "integer"},
        {"key": "fee", "label": "费用", "type": "money"},
        {"key": "body", "label": "记录", "type": "textarea", "max_length": 40000}]}
    response = client.post("/api/v1/types", json=definition, headers=admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    return definition


def test_a_repeated_label_a_day_a_number_and_text_longer_than_a_cell(client, admin, notes_type, db):
    from openpyxl import load_workbook

    long_text = "长" * 33000
    made = create(client, admin, "note_probe", state_text="待上门", visit_day="2026-11-20", visits=3, fee="88.50",
                  body=long_text)
    assert len(db.records.find_one({"_id": ObjectId(made["id"])})["data"]["body"]) == 33000
    response = client.get("/api/v1/records/note_probe/export.xlsx", headers=admin)
    assert response.status_code == 200, response.get_data(as_text=True)
    sheet = load_workbook(io.BytesIO(response.get_data()))["记录测试"]
    headers = [cell.value for cell in sheet[1]]
    assert headers.count("状态") == 1  # the core field's; the type's own 状态 is told apart by its position
    repeated = next(header for header in headers if header.startswith("状态（"))
    assert repeated == f"状态（{headers.index(repeated) + 1}）"
    row = {header: cell for header, cell in zip(headers, sheet[2])}
    assert row[repeated].value == "待上门"
    assert row["上门日期"].is_date and row["上门日期"].value == datetime(2026, 11, 20)
    assert row["上门日期"].number_format == "yyyy-mm-dd"
    assert row["上门次数"].data_type == "n" and row["上门次数"].value == 3
    assert row["费用"].value == 88.5 and "¥" in row["费用"].number_format
    assert row["记录"].value == long_text[:32767]  # what a cell holds, not a failed export

    as_csv = client.get("/api/v1/records/note_probe/export.csv", headers=admin)
    rows = list(csv.reader(io.StringIO(as_csv.get_data().decode("utf-8-sig"), newline="")))
    assert rows[0].count("状态") == 2  # CSV keeps the labels as they are
    assert rows[1][rows[0].index("记录")] == long_text and rows[1][rows[0].index("上门日期")] == "2026-11-20"


def test_rows_and_names_across_batches(app, client, agent, cases, db, monkeypatch):  # noqa: F811
    """Rows are made a batch at a time and references named once per export: with batches of one record and room
    for one name, every row still has its own names, and a removed target reads （已删除）."""
    from kefu.insight import export_cells

    monkeypatch.setattr(export_cells, "BATCH", 1)
    monkeypatch.setattr(export_cells, "NAMES_KEPT", 1)
    users = {str(u["_id"]): u["display_name"] for u in db.users.find({}, {"display_name": 1})}
    removed = ObjectId()
    db.records.update_one({"_id": ObjectId(cases["major"]["id"])}, {"$set": {"assignee": removed}})
    response = client.get("/api/v1/records/complaint/export.csv?sort=number", headers=agent)
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"), newline="")))
    header = rows[0]
    by_number = {row[header.index("编号")]: row for row in rows[1:]}
    assert sorted(by_number) == sorted(case["number"] for case in cases.values())
    for name, case in cases.items():
        row = by_number[case["number"]]
        assert row[header.index("联系电话")] == MASKED_PHONE  # the agent may not see personal data
        if name == "major":
            assert row[header.index("负责人")] == "（已删除）"
        else:
            assert row[header.index("负责人")].startswith(users[case["assignee"]])
    assert db.records.find_one({"_id": ObjectId(cases["major"]["id"])})["assignee"] == removed


def test_the_read_ahead_thread_hands_on_its_error_and_stops_with_the_caller():
    """The batches an export reads are fetched by a thread while the last is converted: an error of the thread
    reaches the export, and an export stopped early (a download cancelled) stops it and closes the cursor."""
    from bson import encode
    from bson.codec_options import CodecOptions

    from kefu.insight.export_cells import read_ahead

    closed = []

    def batches(count: int, fail_at: int | None = None):
        try:
            for number in range(count):
                if number == fail_at:
                    raise ConnectionError("cursor lost")
                yield encode({"n": number}) + encode({"n": -number})
        finally:
            closed.append(count)

    options = CodecOptions()
    assert [[d["n"] for d in documents] for documents in read_ahead(batches(3), options)] == [[0, 0], [1, -1], [2, -2]]
    assert list(read_ahead(batches(0), options)) == []
    with pytest.raises(ConnectionError, match="cursor lost"):
        list(read_ahead(batches(10, fail_at=7), options))
    many = read_ahead(batches(10_000), options)
    assert next(many) == [{"n": 0}, {"n": 0}]
    many.close()
    assert closed == [3, 0, 10, 10_000]


def libreoffice_convert(source, target_filter: str, folder) -> None:
    converted = subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{folder}/profile",
                                "--convert-to", target_filter, "--outdir", str(folder), str(source)],
                               capture_output=True, text=True, timeout=120)
    assert converted.returncode == 0, converted.stderr


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_opens_the_xlsx_as_a_spreadsheet(client, agent, cases, tmp_path):  # noqa: F811
    """LibreOffice reads the cells as Excel users see them (dates and money by their formats) and keeps the
    filter, the formats and the 导出说明 sheet when it saves the workbook again. (Headless, it has no window whose
    frozen rows it could save: that the header is frozen is checked on the file itself, above.)"""
    from openpyxl import load_workbook

    source = tmp_path / "source" / "export.xlsx"
    source.parent.mkdir()
    source.write_bytes(client.get("/api/v1/records/complaint/export.xlsx", headers=agent).get_data())
    libreoffice_convert(source, "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true", tmp_path)
    rows = list(csv.reader(io.StringIO((tmp_path / "export.csv").read_text(encoding="utf-8"), newline="")))
    header = rows[0]
    late = next(row for row in rows[1:] if row[0] == cases["mine_late"]["number"])
    assert late[header.index("索赔金额")] == "¥1,234.50"
    typed = datetime.fromisoformat(cases["mine_late"]["received_at"])
    assert late[header.index("受理时间")] == f"{typed:%Y-%m-%d %H:%M}"
    assert late[header.index("联系电话")] == MASKED_PHONE

    libreoffice_convert(source, "xlsx:Calc MS Excel 2007 XML", tmp_path)
    book = load_workbook(tmp_path / "export.xlsx")
    assert book.sheetnames == ["投诉", "导出说明"]
    sheet = book["投诉"]
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(row=1, column=sheet.max_column).column_letter}5"
    saved = {cell.value: cell.column for cell in sheet[1]}
    row = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == cases["mine_late"]["number"])
    assert row[saved["受理时间"] - 1].is_date and row[saved["索赔金额"] - 1].value == 1234.5
    assert "¥" in row[saved["索赔金额"] - 1].number_format


def test_csv_keeps_negative_amounts_numbers_and_neutralises_masked_and_typed_formulas(client, admin, agent, db):
    definition = {"key": "refund_probe", "name": "退款测试", "number_prefix": "RF", "fields": [
        {"key": "fee", "label": "退款", "type": "money"},
        {"key": "note", "label": "备注", "type": "text"},
        {"key": "contact", "label": "联系邮箱", "type": "email", "sensitive": True}]}
    assert client.post("/api/v1/types", json=definition, headers=admin).status_code == 201
    made = create(client, admin, "refund_probe", fee="-12.50", note="=1+1", contact="=cmd@example.com")
    stored = db.records.find_one({"_id": ObjectId(made["id"])})
    assert stored["data"]["fee"] is not None and "=cmd@example.com" not in str(stored)  # the e-mail kept encrypted

    as_csv = client.get("/api/v1/records/refund_probe/export.csv", headers=agent)
    assert as_csv.status_code == 200, as_csv.get_data(as_text=True)
    header, row = list(csv.reader(io.StringIO(as_csv.get_data().decode("utf-8-sig"), newline="")))
    cells = dict(zip(header, row))
    assert cells["退款"] == "-12.50"  # a number Excel reads, not the text '-12.50
    assert cells["备注"] == "'=1+1"
    assert cells["联系邮箱"].startswith("'=") and "cmd@example.com" not in cells["联系邮箱"]
