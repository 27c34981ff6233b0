"""What one request costs the database, counted by MongoDB's own profiler: an API list page sends the same few
commands whatever its size (labels and values are made in Python, never looked up per row), and its items are the
records exactly as their own answers show them."""
from __future__ import annotations

import runpy
from pathlib import Path

from tests.conftest import token_headers
from tests.test_records_api import PHONE, complaint

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The caller's token and user, the record type, the page, its total.
API_LIST_COMMANDS = 5


def commands_of(db, send):
    """``send()``'s response and the commands the database received meanwhile (its profiler, level 2)."""
    db.command("profile", 0)
    db.system.profile.drop()
    db.command("profile", 2)
    try:
        response = send()
    finally:
        db.command("profile", 0)
    commands = [entry for entry in db.system.profile.find()
                if "profile" not in entry.get("command", {}) and not entry.get("ns", "").endswith(".system.profile")]
    return response, commands


def test_an_api_list_sends_the_same_few_commands_whatever_the_page_size(client, seeded, db):
    agent = token_headers(client, "agent")
    created = [client.post("/api/v1/records/complaint", headers=agent, json=complaint(owner_name=f"业主{n}"))
               for n in range(7)]
    assert all(response.status_code == 201 for response in created)
    client.get("/api/v1/records/complaint?per_page=2", headers=agent)  # warm: the first request reads more

    counted = {}
    for per_page in (2, 6):
        # The fewest of three tries: the versioned caches check their version (and may reload a pick list) at most
        # every 2 s, whenever that falls — on a busy machine, inside one request or the other.
        tries = []
        for _attempt in range(3):
            response, commands = commands_of(db, lambda: client.get(
                f"/api/v1/records/complaint?per_page={per_page}", headers=agent))
            assert response.status_code == 200, response.get_data(as_text=True)
            body = response.get_json()
            newest = db.records.find({"type": "complaint"}, {"_id": 1}, sort=[("created_at", -1), ("_id", -1)],
                                     limit=per_page)
            assert [item["id"] for item in body["items"]] == [str(stored["_id"]) for stored in newest]
            assert body["total"] == db.records.count_documents({"type": "complaint"}) == 7
            tries.append(sorted((entry["op"], entry["ns"].split(".", 1)[1]) for entry in commands))
        counted[per_page] = min(tries, key=len)
    assert counted[2] == counted[6], counted
    assert len(counted[6]) <= API_LIST_COMMANDS, counted[6]
    assert ("query", "records") in counted[6] and ("command", "records") in counted[6]  # the page and its total


def test_a_list_item_is_the_record_as_its_own_answer_shows_it(client, seeded, db):
    """Each reader's list shows every record as ``GET /api/v1/records/<type>/<id>`` does (without the deadlines'
    explanations, which lists leave out): masked for the agent, in clear for the supervisor."""
    agent, supervisor = token_headers(client, "agent"), token_headers(client, "supervisor")
    for n in range(3):
        assert client.post("/api/v1/records/complaint", headers=agent,
                           json=complaint(owner_name=f"业主{n}")).status_code == 201
    for headers, phone_shown in ((agent, False), (supervisor, True)):
        listed = client.get("/api/v1/records/complaint", headers=headers).get_json()["items"]
        assert len(listed) == db.records.count_documents({"type": "complaint"}) == 3
        for item in listed:
            single = client.get(f"/api/v1/records/complaint/{item['id']}", headers=headers).get_json()
            single.pop("events")
            for clock in single["sla"].values():
                clock.pop("explanation")
            assert item == single
            assert (item["phone"] == PHONE) is phone_shown and PHONE not in str(db.records.find_one(
                {"number": item["number"]}))


def test_gunicorn_runs_three_workers_unless_told_otherwise(monkeypatch):
    """The production settings (README: "Production web server"): three synchronous workers, WEB_CONCURRENCY of
    them when it is set; each worker freezes what it loaded before its first request (the collector then skips it)."""
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    settings = runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    assert settings["worker_class"] == "sync" and settings["workers"] == 3
    assert callable(settings["post_worker_init"])
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    assert runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))["workers"] == 5
