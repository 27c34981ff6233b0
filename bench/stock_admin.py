"""The anchor of the list benchmarks: a stock Flask-Admin ModelView over the same ``records`` collection.

What a team would build instead of kefu's record screens: a MongoEngine ``DynamicDocument`` mapped to ``records``,
a ``flask_admin.contrib.mongoengine.ModelView`` with declarative columns, filters, sort and search, and nothing
else — no sign-in, no scopes, no masking, no labels for references (an assignee or department shows as its stored
id: resolving them would need code beyond a stock view). The anchor therefore does less per page than kefu's list;
matching it is a conservative claim.

    from bench.stock_admin import create_stock_app, stock_list_args
    app = create_stock_app("mongodb://127.0.0.1:27017", "kefu_bench")
    app.test_client().get(STOCK_LIST_URL, query_string=stock_list_args(status="已关闭", sort="created_at"))

The view lists one record type (``complaint`` unless told otherwise, as kefu's list does per type). Used by
``bench/list_bench.py`` and ``bench/load_bench.py``; not part of the product or the test suite.
"""
from __future__ import annotations

import mongoengine
from flask import Flask
from flask_admin import Admin
from flask_admin.contrib.mongoengine import ModelView
from flask_admin.contrib.mongoengine.filters import FilterEqual
from flask_babel import Babel

ALIAS = "stock_admin"
STOCK_LIST_URL = "/admin/stockrecord/"
LIST_COLUMNS = ["number", "status", "received_at", "owner_name", "category", "level", "assignee", "department",
                "created_at"]
SORTABLE = ["number", "status", "created_at"]
FILTERS = {"status": 0, "level": 1}  # position of each filter in the view's column_filters


class StockRecord(mongoengine.DynamicDocument):
    """A record as a stock MongoEngine model sees it: the top-level keys declared, the configured fields in ``data``."""

    type = mongoengine.StringField()
    number = mongoengine.StringField()
    status = mongoengine.StringField()
    assignee = mongoengine.ObjectIdField()
    department = mongoengine.ObjectIdField()
    created_at = mongoengine.DateTimeField()
    search_text = mongoengine.StringField()
    data = mongoengine.DictField()

    meta = {"collection": "records", "db_alias": ALIAS, "auto_create_index": False, "strict": False}


def _data(key):
    """A column formatter showing ``data.<key>`` (a stock view cannot list a key inside a dict otherwise)."""
    return lambda view, context, model, name: (model.data or {}).get(key, "")


class StockRecordView(ModelView):
    """Declarative columns, filters, sort and search — Flask-Admin's defaults for everything else (page of 20
    changed to kefu's 50, a count on every page)."""

    can_create = can_edit = can_delete = False
    page_size = 50
    column_list = LIST_COLUMNS
    column_sortable_list = SORTABLE
    column_default_sort = ("created_at", True)
    column_searchable_list = ["number", "search_text"]
    column_filters = [FilterEqual("status", "状态"), FilterEqual("data__level", "级别")]
    column_formatters = {key: _data(key) for key in ("received_at", "owner_name", "category", "level")}

    def __init__(self, type_key: str, **kwargs):
        self.type_key = type_key
        super().__init__(StockRecord, **kwargs)

    def get_query(self):
        return super().get_query().filter(type=self.type_key)


def create_stock_app(mongo_uri: str, database: str, type_key: str = "complaint") -> Flask:
    """A Flask app serving the stock list of ``type_key`` records at :data:`STOCK_LIST_URL` from ``database`` on
    ``mongo_uri`` (its own MongoEngine connection, alias :data:`ALIAS`; calling again reconnects it)."""
    mongoengine.disconnect(alias=ALIAS)
    mongoengine.connect(db=database, host=mongo_uri, alias=ALIAS, tz_aware=True)
    app = Flask("stock_admin")
    app.config["SECRET_KEY"] = "stock-admin-bench-only"
    Babel(app, locale_selector=lambda: "zh_Hans_CN")
    admin = Admin(app, name="stock")
    admin.add_view(StockRecordView(type_key, name="记录", endpoint="stockrecord"))
    return app


def stock_list_args(*, status: str | None = None, level: str | None = None, search: str | None = None,
                    sort: str | None = None, desc: bool = False, page: int = 0) -> dict:
    """The query string of the stock list for a filter (``status``, ``level``), a search, a sort column (one of
    :data:`SORTABLE`; None: the default, newest registration first) and a page (from 0)."""
    args: dict = {}
    position = 0
    for key, value in (("status", status), ("level", level)):
        if value is not None:
            args[f"flt{position}_{FILTERS[key]}"] = value
            position += 1
    if search:
        args["search"] = search
    if sort:
        args["sort"] = LIST_COLUMNS.index(sort)  # Flask-Admin numbers sorts by list column
        if desc:
            args["desc"] = 1
    if page:
        args["page"] = page
    return args
