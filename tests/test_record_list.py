"""The record list at the size of a real centre: a page costs a few MongoDB commands whatever its length (the labels
of its references looked up once per kind), every sortable column is served by an index, and a broad result is
counted only up to 1,000 (超过 1,000 条, the exact total when asked)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from bson import ObjectId
from pymongo import monitoring

from seed.demo import DEMO_PASSWORD
from tests.test_records import _stages, phone_listed  # noqa: F401 - phone_listed is a fixture
from tests.test_records_api import MASKED_PHONE, PHONE, create

LIST = "/admin/records/complaint/"


class CommandLog(monitoring.CommandListener):
    """The commands sent to one database (the test's): ``(command, collection)``. Registered when this module is
    imported, so every app a test builds afterwards reports to it."""

    def __init__(self):
        self.database = None
        self.seen: list[tuple[str, str]] = []

    def started(self, event):
        if event.database_name == self.database:
            self.seen.append((event.command_name, str(event.command.get(event.command_name))))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass

    def during(self, database: str, request) -> list[tuple[str, str]]:
        """The commands ``request()`` sends, without the versioned caches' periodic version checks."""
        self.database, self.seen = database, []
        try:
            request()
        finally:
            self.database = None
        return [command for command in self.seen if command[1] != "cache_versions"]


COMMANDS = CommandLog()
monitoring.register(COMMANDS)


def copies(db, original: dict, count: int, vary) -> list[dict]:
    """``count`` stored copies of ``original`` with their own id and number, each changed by ``vary(n, copy)``."""
    documents = []
    for n in range(count):
        copy = {**original, "_id": ObjectId(), "number": f"TS-L-{n:05d}", "data": dict(original["data"]),
                "created_at": original["created_at"] - timedelta(minutes=n + 1)}
        vary(n, copy)
        documents.append(copy)
    db.records.insert_many(documents)
    return documents


def row_texts(page: str) -> dict[str, str]:
    """Each row of a list page, by the record number in it: the row's text without tags."""
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", page, flags=re.S):
        number = re.search(r'<td class="col-number">\s*(\S+?)\s*</td>', row)
        if number:
            rows[number.group(1)] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))
    return rows


def numbers_in(page: str) -> list[str]:
    return re.findall(r'<td class="col-number">\s*(\S+?)\s*</td>', page)


@pytest.fixture
def listed(app, client, db, agent):
    """50 complaints assigned round the demo users and departments, in the projects, stored as the service stores
    them (copies of one created through the API); one names a project that was deleted and one a disabled user."""
    record = create(client, agent)
    original = db.records.find_one({"_id": ObjectId(record["id"])})
    db.records.delete_one({"_id": original["_id"]})
    users = list(db.users.find({}, {"username": 1, "display_name": 1}).sort("username"))
    departments = list(db.departments.find({}, {"name": 1}))
    projects = list(db.projects.find({}, {"name": 1}))
    gone = ObjectId()

    def vary(n, copy):
        copy["assignee"] = users[n % len(users)]["_id"]
        copy["department"] = departments[n % len(departments)]["_id"]
        copy["data"]["project"] = gone if n == 7 else projects[n % len(projects)]["_id"]
        copy["data"]["responsible_department"] = departments[(n + 1) % len(departments)]["_id"]
        copy["status"] = "处理中" if n < 3 else "待受理"

    documents = copies(db, original, 50, vary)
    disabled = users[3 % len(users)]
    db.users.update_one({"_id": disabled["_id"]}, {"$set": {"active": False}})
    return documents, disabled


def test_a_page_sends_the_same_few_commands_for_3_rows_as_for_50(app, client, db, listed, sign_in):
    assert sign_in("manager", DEMO_PASSWORD).status_code == 302
    pages = {}

    def get(url):
        def request():
            response = client.get(url)
            assert response.status_code == 200
            pages[url] = response.get_data(as_text=True)
        return request

    status_filter = status_filter_arg(app)
    get(LIST)()  # a warm process: MongoEngine has created its indexes, the pick lists are held
    few = COMMANDS.during(db.name, get(f"{LIST}?sort=0&{status_filter}=处理中"))
    full = COMMANDS.during(db.name, get(f"{LIST}?sort=0"))
    assert len(numbers_in(pages[f"{LIST}?sort=0&{status_filter}=处理中"])) == 3
    assert len(numbers_in(pages[f"{LIST}?sort=0"])) == 50
    # The session, the user, the type, one find of the page, the saved views, the inbox badge — and the count of a
    # full page (3 rows on the first page are all there is) …
    kinds = ("projects", "users", "departments")
    assert sorted(c for c in full if c[1] not in kinds) == sorted(
        [*(c for c in few if c[1] not in kinds), ("aggregate", "records")]), (few, full)
    # … and the labels: at most one find per kind (active users and departments come from the process's copy of
    # the pick lists, the disabled user of the page is looked up; the signed-in user is read once too).
    assert full.count(("find", "projects")) == 1 and full.count(("find", "departments")) <= 1
    assert full.count(("find", "users")) <= 2
    assert len(full) <= 12, full


def test_the_page_names_every_reference_as_stored(app, client, db, listed, sign_in):
    documents, disabled = listed
    users = {u["_id"]: f"{u['display_name']}（{u['username']}）" for u in db.users.find()}
    departments = {d["_id"]: d["name"] for d in db.departments.find()}
    projects = {p["_id"]: p["name"] for p in db.projects.find()}
    sign_in("manager", DEMO_PASSWORD)
    rows = row_texts(client.get(LIST).get_data(as_text=True))
    assert len(rows) == 50
    for document in documents:
        stored = db.records.find_one({"_id": document["_id"]})  # the list changed nothing
        row = rows[stored["number"]]
        assert users[stored["assignee"]] in row  # a disabled user too, looked up by id
        assert departments[stored["data"]["responsible_department"]] in row
        project = projects.get(stored["data"]["project"], "（已删除）")
        assert project in row, (project, row)
    assert "（已删除）" in rows["TS-L-00007"]
    assert any(users[disabled["_id"]] in row for row in rows.values())


def test_personal_data_stays_masked_in_the_list_and_costs_no_more_commands(app, client, db, agent, phone_listed,
                                                                           sign_in):
    for _ in range(3):
        create(client, agent)
    sign_in("agent", DEMO_PASSWORD)
    client.get(LIST)  # a warm process
    masked = {}

    def get():
        masked["page"] = client.get(LIST).get_data(as_text=True)

    commands = COMMANDS.during(db.name, get)
    assert masked["page"].count(MASKED_PHONE) == 3 and PHONE not in masked["page"]
    assert len(commands) <= 12, commands
    stored = db.records.find_one({"type": "complaint"})
    assert "phone" not in stored["data"] and isinstance(stored["pii"]["phone"], bytes)

    supervisor = app.test_client()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', supervisor.get("/login").get_data(
        as_text=True)).group(1)
    supervisor.post("/login", data={"username": "supervisor", "password": DEMO_PASSWORD, "csrf_token": token})
    plain = supervisor.get(LIST).get_data(as_text=True)
    assert plain.count(PHONE) == 3 and MASKED_PHONE not in plain


def status_filter_arg(app) -> str:
    """The URL parameter of the list's 状态 = filter."""
    from kefu.records.types import get_record_type

    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "records")
    with app.test_request_context(LIST):
        filters = view._screen_for(get_record_type("complaint")).get_filters()
    return "flt0_%d" % next(i for i, f in enumerate(filters) if getattr(f, "field_key", None) == "status"
                            and f.op == "eq")


def test_every_sortable_column_sorts_in_both_directions_from_an_index(app, client, db, listed, sign_in):
    from kefu.records.indexes import ensure_indexes, list_sort_indexes
    from kefu.records.query import RecordQuery, build_filter, sort_spec
    from kefu.records.types import get_record_type
    from tests.test_records import actor_for

    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "records")
    with app.test_request_context(LIST):
        record_type = get_record_type("complaint")
        screen = view._screen_for(record_type)
        columns = [key for key, _label in screen._list_columns]
        sortable = dict(screen._sortable_columns)
        ensure_indexes(db.records, list_sort_indexes(min_records=1))
        actor = actor_for(app, "manager")
    assert set(sortable) >= {"number", "status", "sla", "project", "category", "level", "assignee", "created_at"}
    sign_in("manager", DEMO_PASSWORD)
    in_memory, unindexed = {}, {}
    for key, sort_key in sortable.items():
        for descending in (False, True):
            args = {"sort": columns.index(key), **({"desc": 1} if descending else {})}
            response = client.get(LIST, query_string=args)
            assert response.status_code == 200, key
            with app.test_request_context():
                query = RecordQuery(sort=("-" if descending else "") + sort_key)
                mongo_filter = build_filter(record_type, query, actor)
            sort = sort_spec(record_type, query.sort)
            expected = [d["number"] for d in db.records.find(mongo_filter, sort=sort, limit=50)]
            assert numbers_in(response.get_data(as_text=True)) == expected, (key, descending)
            plan = db.records.find(mongo_filter).sort(sort).limit(50).explain()["queryPlanner"]["winningPlan"]
            stages = _stages(plan)
            if "SORT" in stages:
                in_memory[(key, descending)] = stages
            if "IXSCAN" not in stages:
                unindexed[(key, descending)] = stages
    assert in_memory == {} and unindexed == {}


def test_list_sort_indexes_follow_the_list_columns_of_large_types(app, db, seeded):
    from kefu.records.indexes import LIST_INDEX_PREFIX, list_sort_indexes, sync_list_indexes
    from kefu.records.query import sortable
    from kefu.records.types import get_record_type

    with app.app_context():
        assert list_sort_indexes() == []  # no type holds 10,000 records here: small types sort in memory
        record_type = get_record_type("complaint")
        db.records.insert_many([{"type": "complaint", "number": f"TS-I-{n}"} for n in range(3)])
        models = {m.document["name"]: m.document for m in list_sort_indexes(min_records=3)}
        listed = [f.key for f in record_type.active_fields if f.list and sortable(f)]
        expected = {f"{LIST_INDEX_PREFIX}complaint_{key}" for key in listed}
        assert set(models) == expected and "list_complaint_level" in models
        level = models["list_complaint_level"]
        assert list(level["key"].items()) == [("data.level", 1), ("created_at", -1), ("_id", -1)]
        assert level["partialFilterExpression"] == {"type": "complaint"}
        db.records.create_index([("data.level", 1)], name="list_complaint_level")
        assert sync_list_indexes() == (0, 1)  # the type is small again: its list index goes
        assert "list_complaint_level" not in db.records.index_information()


def test_list_indexes_are_built_in_the_background_after_a_type_is_saved_never_at_start(app, client, db, admin):
    # A build on a large collection at start would hold every web and worker process starting at that moment.
    from rq import SimpleWorker

    from kefu.records.indexes import LIST_INDEX_MIN_RECORDS
    from kefu.runtime.storage import ensure_collections

    db.records.insert_many([{"type": "complaint", "number": f"TS-I-{n:05d}"} for n in range(LIST_INDEX_MIN_RECORDS)])
    with app.app_context():
        ensure_collections()  # what every process does at start
    assert not [name for name in db.records.index_information() if name.startswith("list_")]

    definition = client.get("/api/v1/types/complaint", headers=admin).get_json()
    assert client.put("/api/v1/types/complaint", headers=admin, json=definition).status_code == 200
    redis = app.extensions["kefu_redis"]
    with app.app_context():
        assert SimpleWorker(["default"], connection=redis).work(burst=True, with_scheduler=False)
    built = db.records.index_information()
    assert built["list_complaint_level"]["partialFilterExpression"] == {"type": "complaint"}
    assert [name for name in built if name.startswith("list_complaint_")]


def test_the_nightly_duty_builds_the_list_indexes_of_a_type_grown_large(app, db, seeded):
    from kefu.core.clock import utcnow
    from kefu.records.indexes import LIST_INDEX_MIN_RECORDS
    from kefu.schedule.duties import DUTY_BY_NAME

    db.records.insert_many([{"type": "complaint", "number": f"TS-I-{n:05d}"} for n in range(LIST_INDEX_MIN_RECORDS)])
    with app.app_context():
        summary = DUTY_BY_NAME["list_indexes"].function(utcnow())
    assert "list_complaint_level" in db.records.index_information()
    assert summary.startswith("list indexes: ") and " 0 built" not in summary


def test_a_broad_list_says_more_than_1000_and_counts_all_when_asked(app, client, db, agent, sign_in):
    record = create(client, agent)
    original = db.records.find_one({"_id": ObjectId(record["id"])})
    copies(db, original, 1024, lambda n, copy: copy.update(status="处理中" if n < 60 else "待受理"))
    sign_in("manager", DEMO_PASSWORD)

    page = client.get(LIST).get_data(as_text=True)
    assert "超过 1,000 条" in page and "共 1,025 条" not in page
    more = re.search(r'<a href="([^"]*count=all[^"]*)">统计总数</a>', page)
    assert more, "no link to count them all"
    assert re.search(r'href="/admin/records/complaint/\?page=1[&"]', page)  # next (a pager without page numbers)
    counted = client.get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "共 1,025 条" in counted and "超过" not in counted

    last = client.get(LIST, query_string={"page": 20}).get_data(as_text=True)  # rows 1,001–1,025
    assert len(numbers_in(last)) == 25 and "共 1,025 条" in last
    assert db.records.count_documents({"type": "complaint"}) == 1025

    status = status_filter_arg(app)
    sixty = client.get(LIST, query_string={status: "处理中"}).get_data(as_text=True)
    assert "共 60 条" in sixty and len(numbers_in(sixty)) == 50 and "统计总数" not in sixty
    few = client.get(LIST, query_string={status: "已关闭"}).get_data(as_text=True)
    assert "共 0 条" in few
