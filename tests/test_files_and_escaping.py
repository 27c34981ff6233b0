"""Attachments are named and served by what they are, uploads of a failed save are removed, admin-written text is
escaped on every screen and neutralised in spreadsheet headers, and the access log keeps no query string."""
from __future__ import annotations

import csv
import io

from bson import ObjectId

from tests.test_attachments import png_bytes
from tests.test_records_api import complaint
from tests.test_views_exports import web_sign_in

TAG = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
HOSTILE_TYPE = {
    "key": "hostile", "name": f"类型{TAG}", "number_prefix": "HST",
    "fields": [
        {"key": "title", "label": f"标题{TAG}", "type": "text", "required": True, "help": f"说明{TAG}",
         "filter": True},
        {"key": "kind", "label": "=HYPERLINK(\"http://evil\")", "type": "choice", "choices": [f"甲{TAG}", "乙"]},
        {"key": "note", "label": "@备注", "type": "text"},
    ],
}


def _files(db) -> int:
    return db["attachments.files"].count_documents({})


def _create_with_file(client, headers, data: bytes, filename: str, **values):
    return client.post("/api/v1/records/complaint", headers=headers, content_type="multipart/form-data",
                       data={**complaint(**values), "attachments": (io.BytesIO(data), filename)})


# -- attachments ------------------------------------------------------------------------------------------------

def test_a_file_is_stored_and_served_under_the_extension_of_what_it_is(client, agent, db):
    created = _create_with_file(client, agent, png_bytes(), "evil.html")
    assert created.status_code == 201, created.get_data(as_text=True)
    file_id = created.get_json()["attachments"][0]
    stored = db["attachments.files"].find_one({"_id": ObjectId(file_id)})
    assert stored["filename"] == "evil.png" and stored["metadata"]["content_type"] == "image/png"

    web_sign_in(client, "agent")
    served = client.get(f"/attachments/{file_id}")
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.headers["Content-Disposition"].startswith("inline;") and "evil.png" in served.headers[
        "Content-Disposition"] and "html" not in served.headers["Content-Disposition"]
    assert served.headers["X-Content-Type-Options"] == "nosniff"


def test_pdfs_are_served_as_downloads_and_a_file_keeps_a_right_extension(client, agent, db):
    created = _create_with_file(client, agent, PDF, "合同.PDF")
    assert created.status_code == 201, created.get_data(as_text=True)
    file_id = created.get_json()["attachments"][0]
    assert db["attachments.files"].find_one({"_id": ObjectId(file_id)})["filename"] == "合同.PDF"
    named = _create_with_file(client, agent, PDF, "扫描件")
    assert db["attachments.files"].find_one({"_id": ObjectId(named.get_json()["attachments"][0])})[
        "filename"] == "扫描件.pdf"

    web_sign_in(client, "agent")
    served = client.get(f"/attachments/{file_id}")
    assert served.status_code == 200 and served.mimetype == "application/pdf"
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert served.headers["X-Content-Type-Options"] == "nosniff" and served.get_data() == PDF


def test_a_file_whose_bytes_are_not_an_allowed_type_is_refused(client, agent, db):
    refused = _create_with_file(client, agent, b"<html><script>alert(1)</script></html>", "photo.png")
    assert refused.status_code == 422 and "类型不允许上传" in refused.get_data(as_text=True)
    assert _files(db) == 0 and db.records.count_documents({"type": "complaint"}) == 0


def test_uploads_of_a_save_that_failed_are_removed(client, agent, db):
    refused = _create_with_file(client, agent, png_bytes(), "现场.png", category="没有这个类别")
    assert refused.status_code == 422, refused.get_data(as_text=True)
    assert "category" in refused.get_json()["error"]["fields"]
    assert _files(db) == 0 and db["attachments.chunks"].count_documents({}) == 0

    record = client.post("/api/v1/records/complaint", headers=agent, json=complaint()).get_json()
    patched = client.patch(f"/api/v1/records/complaint/{record['id']}", headers=agent,
                           content_type="multipart/form-data",
                           data={"version": "1", "category": "没有这个类别", "attachments": (io.BytesIO(png_bytes()),
                                                                                        "现场.png")})
    assert patched.status_code == 422, patched.get_data(as_text=True)
    assert _files(db) == 0 and db.records.find_one({"_id": ObjectId(record["id"])})["version"] == 1

    event = client.post(f"/api/v1/records/complaint/{record['id']}/events", headers=agent,
                        content_type="multipart/form-data",
                        data={"kind": "comment", "text": "照片", "files": [(io.BytesIO(png_bytes()), "一.png"),
                                                                          (io.BytesIO(b"MZ\x90\x00"), "二.png")]})
    assert event.status_code == 422, event.get_data(as_text=True)
    assert _files(db) == 0 and db.events.count_documents({"record_id": ObjectId(record["id"]), "kind": "comment"}) == 0

    kept = _create_with_file(client, agent, png_bytes(), "现场.png")
    assert kept.status_code == 201 and _files(db) == 1


# -- admin-written text ---------------------------------------------------------------------------------------

def _hostile_record(app, client, admin, db) -> str:
    from kefu.records.definitions import save_definition

    with app.app_context():
        save_definition(HOSTILE_TYPE, by="test")
    response = client.post("/api/v1/records/hostile", headers=admin,
                           json={"title": f"正文{TAG}", "kind": f"甲{TAG}", "note": "=1+1"})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["id"]


def test_admin_written_text_is_escaped_on_every_screen(app, client, admin, db):
    record_id = _hostile_record(app, client, admin, db)
    web_sign_in(client, "admin")
    type_id = db.record_types.find_one({"key": "hostile"})["_id"]
    for path in ("/admin/records/hostile/", f"/admin/records/hostile/details/?id={record_id}",
                 "/admin/records/hostile/new/", f"/admin/records/hostile/edit/?id={record_id}",
                 "/admin/record_types/", f"/admin/record_types/edit/?id={type_id}",
                 f"/admin/records/hostile/?flt0_0={record_id}"):
        page = client.get(path)
        assert page.status_code == 200, path
        html = page.get_data(as_text=True)
        assert TAG not in html, path
        assert "onerror=alert(1)" not in html.replace(ESCAPED, "").replace("＜img src=x onerror=alert(1)＞", "").replace(
            "&lt;img src=x onerror=alert(1)&gt;", ""), path
    form = client.get("/admin/records/hostile/new/").get_data(as_text=True)
    assert f"说明{ESCAPED}" in form and f"标题{ESCAPED}" in form and f"甲{ESCAPED}" in form
    listing = client.get("/admin/records/hostile/").get_data(as_text=True)
    assert f"标题＜img src=x onerror=alert(1)＞" in listing  # the filter names Flask-Admin's script inserts as HTML


def test_spreadsheet_headers_that_look_like_formulas_are_neutralised(app, client, admin, db):
    from openpyxl import load_workbook

    _hostile_record(app, client, admin, db)
    exported = client.get("/api/v1/records/hostile/export.csv", headers=admin)
    rows = list(csv.reader(io.StringIO(exported.get_data().decode("utf-8-sig"), newline="")))
    assert "'=HYPERLINK(\"http://evil\")" in rows[0] and "'@备注" in rows[0] and "'=1+1" in rows[1]
    sheet = load_workbook(io.BytesIO(client.get("/api/v1/records/hostile/export.xlsx", headers=admin).get_data()))
    headers = [cell.value for cell in next(sheet.worksheets[0].iter_rows(max_row=1))]
    assert "'=HYPERLINK(\"http://evil\")" in headers and "'@备注" in headers
    assert not any(cell.data_type == "f" for row in sheet.worksheets[0].iter_rows() for cell in row)


# -- the access log ---------------------------------------------------------------------------------------------

def test_the_access_log_keeps_the_path_without_its_query_string():
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from kefu.runtime.launcher import ACCESS_LOG_FORMAT

    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", ACCESS_LOG_FORMAT)
    lines = []
    logger = Logger(config)
    logger.access_log.info = lambda line, *args, **kwargs: lines.append(line % args[0] if args else line)
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/admin/customers/?search=13812345678",
               "PATH_INFO": "/admin/customers/", "QUERY_STRING": "search=13812345678", "SERVER_PROTOCOL": "HTTP/1.1",
               "REMOTE_ADDR": "10.0.0.8", "HTTP_REFERER": "https://kefu/admin/records/complaint/?flt0_3=13812345678",
               "HTTP_USER_AGENT": "test"}
    request = SimpleNamespace(method="GET", uri="/admin/customers/?search=13812345678", path="/admin/customers/",
                              query="search=13812345678", version=(1, 1), headers=[])
    response = SimpleNamespace(status="200 OK", status_code=200, response_length=10, sent=10, headers=[])
    logger.access(response, request, environ, timedelta(milliseconds=5))
    assert lines and "/admin/customers/" in lines[0] and "13812345678" not in lines[0], lines
