"""Bad input gets a clear answer, never a 500: each request here once crashed the server.

Every case asserts the status, a Chinese message naming the field, and for writes that nothing was stored. The
app runs with ``PROPAGATE_EXCEPTIONS`` off, as in production, so an unexpected exception shows up as the 500 page
it would be rather than as a test error.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone

import pytest

from kefu.core.validation import InvalidValue, check_typable
from kefu.records.fields import FieldSpec, get_field_type
from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token
from tests.test_records_api import assert_error, complaint, create
from web.api.base import MAX_PAGE

LONG_NUMBER = "9" * 30
ADMIN_FORM = {"status": "待受理", "received_at": "2026-11-20T09:30", "channel": ["来电"], "project": "云栖·江南府",
              "unit": "1幢1单元101", "owner_name": "钱七", "phone": "13900001111", "content": "阳台推拉门关不严",
              "category": "工程质量", "level": "一般"}


@pytest.fixture(autouse=True)
def production_errors(app):
    """Unhandled exceptions become the 500 page, as in production (the test client would re-raise them)."""
    app.config["PROPAGATE_EXCEPTIONS"] = False


def post_raw(client, path: str, body: str, headers=None):
    """POST ``body`` as is (``json=`` could not send a lone surrogate escape or 20 000 brackets)."""
    return client.post(path, data=body.encode("utf-8"), content_type="application/json", headers=headers)


def records_in(db) -> int:
    return db.records.count_documents({})


# --- status -----------------------------------------------------------------------------------


def test_null_status_on_create_is_refused_naming_status(client, agent, db):
    response = client.post("/api/v1/records/complaint", json={**complaint(), "status": None}, headers=agent)
    error = assert_error(response, 422, "validation_failed")
    assert error["fields"] == {"status": "请选择“状态”"}
    assert "状态" in error["message"]
    assert records_in(db) == 0


def test_null_status_on_update_is_refused_and_nothing_changes(client, agent, db):
    record = create(client, agent)
    response = client.patch(f"/api/v1/records/complaint/{record['id']}", json={"status": None, "version": 1},
                            headers=agent)
    error = assert_error(response, 422, "validation_failed")
    assert error["fields"] == {"status": "请选择“状态”"}
    stored = db.records.find_one({})
    assert stored["status"] == "待受理" and stored["version"] == 1


# --- dates ------------------------------------------------------------------------------------


def callback(**values) -> dict:
    """A valid callback (its ``planned_date`` is a date field) with ``values``."""
    return {"callback_type": "投诉回访", "customer_name": "张三", **values}


@pytest.mark.parametrize("type_key, field, value", [
    ("complaint", "received_at", "0001-01-01T00:00:00"),
    ("complaint", "received_at", "1899-12-31T23:59:00"),
    ("complaint", "received_at", "9999-12-31T23:59:00-05:00"),
    ("complaint", "agreed_deadline", "0001-01-01"),
    ("callback", "planned_date", "0001-01-01"),
    ("callback", "planned_date", "1899-12-31"),
    ("callback", "planned_date", "9999-12-31"),
])
def test_dates_outside_1900_to_2999_are_refused_naming_the_field(client, agent, db, type_key, field, value):
    body = complaint(**{field: value}) if type_key == "complaint" else callback(**{field: value})
    response = client.post(f"/api/v1/records/{type_key}", json=body, headers=agent)
    error = assert_error(response, 422, "validation_failed")
    assert set(error["fields"]) == {field}
    assert re.search(r"日期应在 (1900 年之后|3000 年之前)", error["fields"][field]), error
    assert records_in(db) == 0


def test_an_early_date_in_an_update_is_refused_and_nothing_changes(client, agent, db):
    record = create(client, agent)
    response = client.patch(f"/api/v1/records/complaint/{record['id']}",
                            json={"received_at": "0001-01-01T00:00:00", "version": 1}, headers=agent)
    error = assert_error(response, 422)
    assert error["fields"]["received_at"].startswith("日期应在 1900 年之后")
    assert db.records.find_one({})["version"] == 1


def test_1900_itself_is_accepted(client, agent, db):
    create(client, agent, received_at="1900-01-01T00:00:00")
    assert db.records.find_one({"type": "complaint"})["data"]["received_at"].year in (1899, 1900)  # stored in UTC
    assert create(client, agent, "callback", **callback(planned_date="1900-01-01"))["planned_date"] == "1900-01-01"
    assert db.records.find_one({"type": "callback"})["data"]["planned_date"].year == 1900


@pytest.mark.parametrize("path", ["complaint?received_at__gte=0001-01-01", "complaint?agreed_deadline=9999-12-31",
                                  "complaint?received_at__lte=9999-12-31", "callback?planned_date=9999-12-31",
                                  "callback?planned_date__lte=9999-12-31"])
def test_date_filters_outside_the_years_are_400_naming_the_field(client, agent, path):
    error = assert_error(client.get(f"/api/v1/records/{path}", headers=agent), 400)
    query = path.partition("?")[2]
    field = query.split("__")[0].split("=")[0]
    assert "日期应在" in error["fields"][field]


@pytest.mark.parametrize("field, value, message", [
    ("received_at", "0001-01-01T00:00", "日期应在 1900 年之后"),
    ("content", "漏水\x00严重", "不能含有控制字符（第 3 个字符为 U+0000）"),
])
def test_admin_form_refuses_bad_input_with_a_form_error(client, seeded, db, sign_in, field, value, message):
    sign_in("agent", DEMO_PASSWORD)
    token = csrf_token(client, "/admin/records/complaint/new/")
    response = client.post("/admin/records/complaint/new/", data={**ADMIN_FORM, "csrf_token": token, field: value})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert records_in(db) == 0


# --- lone surrogates --------------------------------------------------------------------------


@pytest.mark.parametrize("body, field", [
    ('{"content": "\\ud800"}', "content"),
    ('{"owner_name": "张\\udfff三"}', "owner_name"),
    ('{"channel": ["来电", "\\ud800"]}', "channel"),
    ('{"\\ud800": "x"}', "\\ud800"),
])
def test_a_lone_surrogate_in_a_json_body_is_400_naming_the_field(client, agent, db, body, field):
    values = {**complaint(), **json.loads(body)}
    response = post_raw(client, "/api/v1/records/complaint", json.dumps(values), headers=agent)
    error = assert_error(response, 400, "bad_request")
    assert list(error["fields"]) == [field]
    assert "无效字符" in error["message"] and field in error["message"]
    assert records_in(db) == 0


def test_a_lone_surrogate_as_raw_bytes_is_400_too(client, agent, db):
    body = json.dumps(complaint(), ensure_ascii=False).replace("张三", "张\ud800三").encode("utf-8", "surrogatepass")
    response = client.post("/api/v1/records/complaint", data=body, content_type="application/json", headers=agent)
    assert assert_error(response, 400)["fields"] == {"owner_name": "含有无效字符（不成对的代理项）"}
    assert records_in(db) == 0


def test_a_lone_surrogate_in_an_update_is_400_and_nothing_changes(client, agent, db):
    record = create(client, agent)
    response = client.patch(f"/api/v1/records/complaint/{record['id']}",
                            data='{"content": "\\ud800", "version": 1}', content_type="application/json",
                            headers=agent)
    assert list(assert_error(response, 400)["fields"]) == ["content"]
    assert db.records.find_one({})["data"]["content"] == "卫生间漏水严重"


def test_a_lone_surrogate_on_the_unauthenticated_token_endpoint_is_400(client, seeded, db):
    response = post_raw(client, "/api/v1/auth/token", '{"username": "\\ud800", "password": "x"}')
    error = assert_error(response, 400, "bad_request")
    assert list(error["fields"]) == ["username"]
    assert db.api_tokens.count_documents({}) == 0


def test_undecodable_bytes_in_query_and_form_are_kept_as_typed_not_500(client, agent, seeded, db, sign_in):
    """Werkzeug leaves a percent-escape that is not UTF-8 (a surrogate's) as it was typed: plain text, searched
    for and shown like any other, never a lone surrogate in Python."""
    assert client.get("/api/v1/records/complaint?q=%ED%A0%80", headers=agent).get_json()["total"] == 0
    assert client.get("/api/v1/records/complaint?owner_name=%ED%A0%80", headers=agent).status_code == 200
    sign_in("agent", DEMO_PASSWORD)
    assert client.get("/admin/records/complaint/?search=%ED%A0%80").status_code == 200
    token = csrf_token(client, "/admin/records/complaint/new/")
    response = client.post("/admin/records/complaint/new/", content_type="application/x-www-form-urlencoded",
                           data=f"csrf_token={token}&owner_name=%ED%A0%80&status=%E5%BE%85%E5%8F%97%E7%90%86")
    assert response.status_code == 200  # the form is shown again with its messages (channel etc. missing)
    assert records_in(db) == 0


# --- deep nesting and bodies that are not objects ------------------------------------------------


@pytest.mark.parametrize("body", ["[" * 20_000, '{"content": ' + "[" * 20_000 + "]" * 20_000 + "}"])
def test_deeply_nested_json_is_400(client, agent, db, body):
    error = assert_error(post_raw(client, "/api/v1/records/complaint", body, headers=agent), 400, "bad_request")
    assert "嵌套" in error["message"]
    assert records_in(db) == 0


def test_deeply_nested_json_on_the_token_endpoint_is_400(client, seeded, db):
    assert "嵌套" in assert_error(post_raw(client, "/api/v1/auth/token", "[" * 20_000), 400)["message"]
    assert db.api_tokens.count_documents({}) == 0


def test_nesting_the_parser_accepts_is_walked_without_recursion(client, agent, db):
    body = json.dumps({**complaint(), "content": "x"})[:-1] + ', "extra": ' + "[" * 900 + '"\\ud800"' + "]" * 900 + "}"
    error = assert_error(post_raw(client, "/api/v1/records/complaint", body, headers=agent), 400, "bad_request")
    assert list(error["fields"]) == ["extra"]
    assert records_in(db) == 0


# --- paging -----------------------------------------------------------------------------------


@pytest.mark.parametrize("query, field", [(f"page={LONG_NUMBER}", "page"), (f"per_page={LONG_NUMBER}", "per_page"),
                                          ("page=0", "page"), ("per_page=-1", "per_page"), ("page=abc", "page"),
                                          ("page=" + "9" * 5000, "page")])
def test_api_list_paging_out_of_range_is_400_naming_the_parameter(client, agent, query, field):
    error = assert_error(client.get(f"/api/v1/records/complaint?{query}", headers=agent), 400, "bad_request")
    assert field in error["fields"] and "page" in error["message"]


def test_api_export_with_a_huge_page_is_400_too(client, agent):
    assert_error(client.get(f"/api/v1/records/complaint/export.csv?page={LONG_NUMBER}", headers=agent), 400)


def test_the_last_allowed_page_answers_an_empty_list(client, agent):
    create(client, agent)
    body = client.get(f"/api/v1/records/complaint?page={MAX_PAGE}&per_page=200", headers=agent).get_json()
    assert body["items"] == [] and body["total"] == 1


@pytest.mark.parametrize("path", ["/admin/records/complaint/", "/admin/customers/", "/admin/users/", "/admin/units/"])
@pytest.mark.parametrize("page", [LONG_NUMBER, "-5"])
def test_admin_list_with_a_page_out_of_range_shows_a_page_not_a_500(client, seeded, sign_in, path, page):
    sign_in("admin", DEMO_PASSWORD)
    response = client.get(f"{path}?page={page}&page_size={LONG_NUMBER}")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]


@pytest.mark.parametrize("path", ["/admin/inbox/", "/admin/overdue/"])
def test_other_admin_lists_with_a_huge_page_show_a_page_not_a_500(client, seeded, sign_in, path):
    sign_in("admin", DEMO_PASSWORD)
    response = client.get(f"{path}?page={LONG_NUMBER}", follow_redirects=True)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]


# --- the customers' unit lookup ------------------------------------------------------------------


@pytest.mark.parametrize("query", [".*", "(", "[", "\\", "$where", ""])
def test_customer_unit_lookup_takes_regex_characters_as_text(client, seeded, sign_in, query):
    sign_in("admin", DEMO_PASSWORD)
    response = client.get("/admin/customers/ajax/lookup/", query_string={"name": "unit", "query": query})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    found = response.get_json()
    assert found == [] if query else len(found) > 0


def test_customer_unit_lookup_finds_by_label_and_clamps_its_paging(client, seeded, sign_in, db):
    sign_in("admin", DEMO_PASSWORD)
    label = db.units.find_one({})["label"]
    response = client.get("/admin/customers/ajax/lookup/",
                          query_string={"name": "unit", "query": label[:3], "limit": LONG_NUMBER, "offset": "-1"})
    assert response.status_code == 200
    found = response.get_json()
    assert 0 < len(found) <= 20 and any(text.endswith(label) or label in text for _id, text in found)
    assert client.get("/admin/customers/ajax/lookup/",
                      query_string={"name": "unit", "query": "1", "offset": LONG_NUMBER}).get_json() == []


# --- control characters ----------------------------------------------------------------------------


@pytest.mark.parametrize("field, value", [("content", "漏水\x00严重"), ("content", "\x1b[31m漏水"),
                                          ("owner_name", "张\x07三"), ("owner_name", "张\n三"),
                                          ("owner_name", "张\t三"), ("phone", "1381234\x005678"),
                                          ("content", "漏\x85水")])
def test_control_characters_in_text_are_refused_naming_the_field(client, agent, db, field, value):
    error = assert_error(client.post("/api/v1/records/complaint", json=complaint(**{field: value}), headers=agent),
                         422, "validation_failed")
    assert set(error["fields"]) == {field}
    assert "控制字符" in error["fields"][field] and "U+" in error["fields"][field]
    assert records_in(db) == 0


def test_tabs_and_line_breaks_are_kept_in_multi_line_text(client, agent, db):
    record = create(client, agent, content="一、卫生间漏水\r\n二、\t墙面发霉")
    assert record["content"] == "一、卫生间漏水\n二、\t墙面发霉"
    assert db.records.find_one({})["data"]["content"] == "一、卫生间漏水\n二、\t墙面发霉"


@pytest.mark.parametrize("path, parameter", [
    ("/api/v1/records/complaint?owner_name=%00", "owner_name"),
    ("/api/v1/records/complaint?q=%00", "q"),  # the search's pattern: MongoDB refuses a NUL in it
    ("/api/v1/records/complaint?q=%E6%BC%8F%1B", "q"),
    ("/api/v1/refs/customer?q=%00", "q"),
    ("/api/v1/notifications?%00=1", "\x00"),
])
def test_a_control_character_in_a_query_parameter_is_400_naming_it(client, agent, path, parameter):
    error = assert_error(client.get(path, headers=agent), 400, "bad_request")
    assert list(error["fields"]) == [parameter] and "控制字符" in error["fields"][parameter]
    assert f"查询参数“{parameter}”" in error["message"]


@pytest.mark.parametrize("path", ["/admin/customers/?search=%00", "/admin/users/?search=%00",
                                  "/admin/records/complaint/?search=%00", "/admin/records/complaint/?flt0_0=%00"])
def test_a_control_character_in_an_admin_search_is_a_400_page_in_chinese(client, seeded, sign_in, path):
    sign_in("admin", DEMO_PASSWORD)
    response = client.get(path)
    assert response.status_code == 400
    assert "不能含有控制字符" in response.get_data(as_text=True)


def test_tabs_and_line_breaks_in_a_query_parameter_are_searched_as_typed(client, agent):
    assert client.get("/api/v1/records/complaint?q=%E6%BC%8F%09%0A", headers=agent).status_code == 200


# --- the 500 page itself -------------------------------------------------------------------------------


def test_an_unexpected_error_answers_chinese_without_a_stack_trace(app, client, agent):
    def boom(*args, **kwargs):
        raise RuntimeError("secret detail in /srv/kefu/app.py line 42")

    # A view that fails unexpectedly, in the API and on a page.
    app.view_functions["api.me"] = boom
    app.view_functions["auth.login"] = boom
    api = assert_error(client.get("/api/v1/me", headers=agent), 500, "internal_error")
    assert api["message"] == "系统出现错误，已记录，请稍后再试"
    page = client.get("/login")
    assert page.status_code == 500
    text = page.get_data(as_text=True)
    assert "系统出现错误" in text
    assert "secret detail" not in text and "Traceback" not in text and "secret detail" not in str(api)


# --- the checks themselves, without HTTP -----------------------------------------------------------


@pytest.mark.parametrize("text, multiline, refused", [
    ("张三", False, False), ("一行\n二行\t缩进\r\n", True, False), ("一行\n二行", False, True),
    ("a\x00b", True, True), ("\x7f", True, True), ("\x9f", True, True), ("\ud800", True, True),
    ("😀 emoji", False, False),
])
def test_check_typable(text, multiline, refused):
    if refused:
        with pytest.raises(InvalidValue, match="控制字符|代理项"):
            check_typable(text, multiline=multiline)
    else:
        assert check_typable(text, multiline=multiline) == text


def test_date_types_check_the_year_of_python_values_too():
    day, moment = FieldSpec("d", "日", "date"), FieldSpec("m", "时", "datetime")
    with pytest.raises(InvalidValue, match="1900 年之后"):
        get_field_type("date").clean(date(1, 1, 1), day)
    with pytest.raises(InvalidValue, match="1900 年之后"):
        get_field_type("datetime").clean(datetime(1, 1, 1), moment)
    with pytest.raises(InvalidValue, match="3000 年之前"):
        get_field_type("datetime").clean(datetime(9999, 12, 31, 23, 59, tzinfo=timezone.utc), moment)
    assert get_field_type("date").clean("2999-12-31", day) == date(2999, 12, 31)
