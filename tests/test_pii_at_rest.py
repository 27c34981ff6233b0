"""No phone or ID number is stored in clear anywhere: the demo data plus API writes (records with phone and ID
numbers, a customer, a saved view and exports filtering by phone — streamed and in the background —, an
attachment), then every document of every collection and every GridFS file (xlsx unzipped) is searched for the
plaintext numbers.
"""
from __future__ import annotations

import io
import re
import zipfile
from collections import defaultdict

from bson import ObjectId

from seed.demo import CUSTOMER_COUNT, DEMO_PHONES
from seed.people import make_people
from tests.test_attachments import png_bytes
from tests.test_records_api import complaint, valid_id_number

PHONES = {"supervisor": "13912340001", "agent": "13912340002", "customer": "13912340003"}
ID_NUMBERS = {"record": valid_id_number("11010519491231002"), "customer": valid_id_number("33010619800101123")}
PII_TYPE = {
    "key": "owner_file", "name": "业主档案登记", "number_prefix": "YZD",
    "fields": [
        {"key": "owner", "label": "业主", "type": "text", "required": True},
        {"key": "mobile", "label": "手机", "type": "phone", "sensitive": True, "search": True},
        {"key": "id_card", "label": "身份证", "type": "id_number", "sensitive": True},
        {"key": "files", "label": "附件", "type": "attachments"},
    ],
}


def _run_background_jobs(app) -> None:
    from rq import SimpleWorker

    with app.app_context():
        SimpleWorker(["default"], connection=app.extensions["kefu_redis"]).work(burst=True, with_scheduler=False)


def _write_through_the_api(app, client, agent, supervisor) -> dict:
    """Every kind of write that may carry a phone or ID number; returns what the checks below need."""
    from werkzeug.datastructures import FileStorage

    from kefu.org.customers import create_customer
    from kefu.records.attachments import store_upload
    from kefu.records.definitions import save_definition

    with app.app_context():
        save_definition(PII_TYPE, by="test")
        upload = store_upload(FileStorage(io.BytesIO(png_bytes()), filename="现场.png"), max_bytes=1024 * 1024)
        create_customer({"name": "钱七", "phone": PHONES["customer"], "id_number": ID_NUMBERS["customer"],
                         "address": "杭州市西湖区文三路 1 号"})
    for who, headers in (("supervisor", supervisor), ("agent", agent)):
        response = client.post("/api/v1/records/complaint", headers=headers, json=complaint(phone=PHONES[who]))
        assert response.status_code == 201, response.get_data(as_text=True)
    record = client.post("/api/v1/records/owner_file", headers=supervisor, content_type="multipart/form-data", data={
        "owner": "钱七", "mobile": PHONES["supervisor"], "id_card": ID_NUMBERS["record"],
        "files": (io.BytesIO(png_bytes()), "现场照片.png")})
    assert record.status_code == 201, record.get_data(as_text=True)
    patched = client.patch(f"/api/v1/records/owner_file/{record.get_json()['id']}", headers=supervisor,
                           json={"version": 1, "files": [upload.id]})
    assert patched.status_code == 200, patched.get_data(as_text=True)

    view = client.post("/api/v1/views/complaint", headers=supervisor,
                       json={"name": "按电话", "filters": [["phone", "eq", PHONES["supervisor"]]], "shared": True})
    assert view.status_code == 201, view.get_data(as_text=True)
    view_id = view.get_json()["id"]
    listed = client.get(f"/api/v1/records/complaint?view={view_id}", headers=supervisor).get_json()
    assert listed["total"] == 1, listed["view"]
    assert listed["items"][0]["phone"] == PHONES["supervisor"]  # the sealed filter works
    searched = client.get(f"/api/v1/records/complaint?q={PHONES['agent']}", headers=agent).get_json()
    assert searched["total"] == 1

    for fmt in ("csv", "xlsx"):
        exported = client.get(f"/api/v1/records/complaint/export.{fmt}?phone={PHONES['supervisor']}",
                              headers=supervisor)
        assert exported.status_code == 200 and exported.get_data()  # streamed to the end: audited
    streamed = client.get(f"/api/v1/records/complaint/export.csv?phone={PHONES['supervisor']}", headers=supervisor)
    assert PHONES["supervisor"] in streamed.get_data(as_text=True)  # the supervisor sees it in the file

    app.config["KEFU_EXPORT_ASYNC_ROWS"] = 0
    jobs = []
    for query in (f"phone={PHONES['supervisor']}", f"view={view_id}", f"q={PHONES['agent']}"):
        response = client.get(f"/api/v1/records/complaint/export.xlsx?{query}", headers=supervisor)
        assert response.status_code == 202, response.get_data(as_text=True)
        jobs.append(response.get_json()["export"]["id"])
    _run_background_jobs(app)
    downloads = []
    for job_id in jobs:
        status = client.get(f"/api/v1/exports/{job_id}", headers=supervisor).get_json()
        assert status["status"] == "done", status
        downloads.append(client.get(status["download_url"], headers=supervisor).get_data())
    return {"view": view_id, "downloads": downloads}


def _searched_values() -> tuple[list[str], list[str]]:
    """The phone and ID numbers to look for: the API's, the demo users' and the demo customers' (the demo records
    carry the customers' phones)."""
    people = make_people(CUSTOMER_COUNT, seed=2026)
    phones = {*PHONES.values(), *DEMO_PHONES.values(), *(person["phone"] for person in people)}
    id_numbers = {*ID_NUMBERS.values(), *(person["id_number"] for person in people if person.get("id_number"))}
    return sorted(phones), sorted(id_numbers)


def _walk(value, path: str):
    """``(path, str or bytes)`` of every string and binary inside a document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(key, f"{path}.<key>")
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value
    elif isinstance(value, (bytes, bytearray)):
        yield path, bytes(value)


def _gridfs_files(db, bucket: str):
    """``(file id, bytes)`` of every file of a GridFS bucket, chunks joined in order; zip members (xlsx) too."""
    chunks = defaultdict(list)
    for chunk in db[f"{bucket}.chunks"].find({}, ["files_id", "n", "data"]):
        chunks[chunk["files_id"]].append((chunk["n"], bytes(chunk["data"])))
    for file_id, parts in chunks.items():
        data = b"".join(part for _n, part in sorted(parts))
        yield str(file_id), data
        if data.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for name in archive.namelist():
                    yield f"{file_id}/{name}", archive.read(name)


def scan(db, values: list[str]) -> tuple[list[str], dict]:
    """Where any of ``values`` is stored in clear, and the figures of the scan."""
    text_pattern = re.compile("|".join(map(re.escape, values)))
    bytes_pattern = re.compile(b"|".join(re.escape(v.encode()) for v in values))
    found, figures = [], {"collections": 0, "documents": 0, "strings and binaries": 0, "bytes": 0, "gridfs files": 0}
    names = sorted(n for n in db.list_collection_names() if not n.startswith("system."))
    for name in names:
        figures["collections"] += 1
        for document in db[name].find():
            figures["documents"] += 1
            for path, value in _walk(document, f"{name}:{document.get('_id')}"):
                figures["strings and binaries"] += 1
                figures["bytes"] += len(value.encode() if isinstance(value, str) else value)
                hit = (text_pattern if isinstance(value, str) else bytes_pattern).search(value)
                if hit:
                    found.append(f"{path}: {hit.group()!r}")
    for bucket in {n.rsplit(".", 1)[0] for n in names if n.endswith(".chunks")}:
        for file_name, data in _gridfs_files(db, bucket):
            figures["gridfs files"] += 1
            hit = bytes_pattern.search(data)
            if hit:
                found.append(f"GridFS {bucket}/{file_name}: {hit.group()!r}")
    return found, figures


def test_no_phone_or_id_number_is_stored_in_clear(app, client, demo_records, agent, supervisor, db):
    assert db.records.count_documents({}) > 0  # the demo records (kefu seed-records) carry the customers' phones
    written = _write_through_the_api(app, client, agent, supervisor)
    phones, id_numbers = _searched_values()
    found, figures = scan(db, phones + id_numbers)
    figures.update({"phone numbers searched": len(phones), "ID numbers searched": len(id_numbers)})
    print("\nplaintext scan:", ", ".join(f"{key} {value}" for key, value in figures.items()))

    assert figures["gridfs files"] >= 5 and db["exports.files"].count_documents({}) == 3
    assert db.saved_views.count_documents({}) == 1 and db.export_jobs.count_documents({}) == 3
    assert db.audit_log.count_documents({"action": "export"}) >= 6
    assert db.records.count_documents({"type": "owner_file"}) == 1
    assert not found, "personal data stored in clear:\n" + "\n".join(found[:40])
    # The exports are stored sealed and still downloaded whole: the supervisor's file has the phone.
    assert all(data.startswith(b"PK") for data in written["downloads"])
    with zipfile.ZipFile(io.BytesIO(written["downloads"][0])) as archive:
        assert PHONES["supervisor"].encode() in b"".join(archive.read(n) for n in archive.namelist())

    # The scan finds what it looks for: a number nested in a binary, and one inside a zipped GridFS file.
    from gridfs import GridFSBucket

    db.scan_control.insert_one({"nested": [{"blob": f"x{ID_NUMBERS['record']}x".encode()}]})
    GridFSBucket(db, bucket_name="control").upload_from_stream("a.xlsx", io.BytesIO(written["downloads"][0]))
    planted, _figures = scan(db, [ID_NUMBERS["record"], PHONES["supervisor"]])
    assert len(planted) == 2 and "scan_control" in planted[0] and planted[1].startswith("GridFS control/"), planted


def test_export_audit_entries_and_views_keep_filters_masked(app, client, agent, supervisor, db):
    client.post("/api/v1/records/complaint", headers=supervisor, json=complaint(phone=PHONES["supervisor"]))
    exported = client.get(f"/api/v1/records/complaint/export.xlsx?phone={PHONES['supervisor']}&q=找{PHONES['agent']}",
                          headers=supervisor)
    assert exported.status_code == 200
    entry = db.audit_log.find_one({"action": "export"})
    assert entry["filters"] == "phone=139****0001&q=找139****0002", entry["filters"]
    assert "联系电话 等于 139****0001" in entry["description"] and "搜索：找139****0002" in entry["description"]
    from openpyxl import load_workbook

    notes = {row[0]: row[1] for row in load_workbook(io.BytesIO(exported.get_data()))["导出说明"].iter_rows(
        values_only=True)}
    assert PHONES["supervisor"] not in notes["筛选条件"] and "139****0001" in notes["筛选条件"]

    view = client.post("/api/v1/views/complaint", headers=supervisor, json={
        "name": "按电话", "filters": [["phone", "eq", PHONES["supervisor"]]], "shared": True}).get_json()
    stored = db.saved_views.find_one({"_id": ObjectId(view["id"])})
    assert set(stored["filters"][0][2]) == {"sealed"} and stored["filters"][0][:2] == ["phone", "eq"]
    assert view["filters"] == [["phone", "eq", PHONES["supervisor"]]]  # its owner may see personal data
    shown = next(v for v in client.get("/api/v1/views/complaint", headers=agent).get_json()["items"]
                 if v["id"] == view["id"])
    assert shown["filters"] == [["phone", "eq", "139****0001"]]  # masked for an agent
    listed = client.get(f"/api/v1/records/complaint?view={view['id']}", headers=supervisor).get_json()
    assert listed["total"] == 1


def test_earlier_plaintext_is_sealed_on_start(app, client, supervisor, db):
    """What was stored before: a view's phone filter, a background export's query, its file and the raw query
    string of an export's audit entry — sealed or masked by the start-up steps, and still working."""
    from gridfs import GridFSBucket

    from kefu.insight import export_jobs, exports, views

    client.post("/api/v1/records/complaint", headers=supervisor, json=complaint(phone=PHONES["supervisor"]))
    owner = db.users.find_one({"username": "supervisor"})["_id"]
    view_id = db.saved_views.insert_one({"record_type": "complaint", "name": "旧视图", "owner": owner, "shared": False,
                                         "filters": [["phone", "eq", PHONES["supervisor"]]], "columns": []}).inserted_id
    file_id = GridFSBucket(db, bucket_name="exports").upload_from_stream(
        "旧导出.csv", io.BytesIO(f"电话\r\n{PHONES['supervisor']}\r\n".encode()))
    job_id = db.export_jobs.insert_one({
        "user": owner, "record_type": "complaint", "fmt": "csv", "status": "done", "file_id": file_id,
        "filename": "旧导出.csv", "query": {"conditions": [["phone", "eq", PHONES["supervisor"]]]},
        "filters_text": f"phone={PHONES['supervisor']}", "total": 1, "rows_done": 1}).inserted_id
    db.audit_log.insert_one({"action": "export", "filters": f"phone={PHONES['supervisor']}",
                             "description": [f"联系电话 等于 {PHONES['supervisor']}"]})
    with app.app_context():
        assert views.seal_earlier_views() == 1 and views.seal_earlier_views() == 0
        assert export_jobs.seal_earlier_jobs() == 1 and export_jobs.seal_earlier_jobs() == 0
        assert exports.mask_earlier_export_audits() == 1 and exports.mask_earlier_export_audits() == 0
    found, _figures = scan(db, [PHONES["supervisor"]])
    assert not found, found
    job = db.export_jobs.find_one({"_id": job_id})
    assert "query" not in job and "filters_text" not in job and job["file_id"] != file_id
    downloaded = client.get(f"/api/v1/exports/{job_id}/download", headers=supervisor)
    assert downloaded.get_data().decode() == f"电话\r\n{PHONES['supervisor']}\r\n"
    listed = client.get(f"/api/v1/records/complaint?view={view_id}", headers=supervisor).get_json()
    assert listed["total"] == 1


def test_a_webhook_delivery_keeps_the_phones_it_mentions_encrypted(app, seeded, db):
    from datetime import datetime, timezone

    from kefu.notify.channels import save_settings
    from kefu.notify.notifications import Alert, Outbox, outgoing_payload

    with app.app_context():
        save_settings({"staff_webhook_url": "https://robot.example/send?key=k", "care_webhook_url":
                       "https://robot.example/care?key=k", "quiet_enabled": False}, app.extensions["kefu_cipher"])
        outbox = Outbox(datetime.now(timezone.utc))
        outbox.add(Alert(key="care:1", kind="care", subject="节日问候", body="中秋快乐", webhook="care_webhook_url",
                         mobiles=[PHONES["customer"]]))
        outbox.flush()
        delivery = db.deliveries.find_one({"key": "care:1:webhook"})
        assert outgoing_payload(delivery)["text"]["mentioned_mobile_list"] == [PHONES["customer"]]
    assert "payload" not in delivery and isinstance(delivery["sealed_payload"], bytes)
    found, _figures = scan(db, [PHONES["customer"]])
    assert not found, found
