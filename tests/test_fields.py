"""The field-type registry: every type cleans, stores, shows, exports, filters and forms its values.

Pure tests need no database; storage, reference and filter tests run against
the real MongoDB of the ``db`` fixture.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
from bson import Decimal128, ObjectId
from werkzeug.datastructures import FileStorage, MultiDict
from wtforms import Form

from kefu.core.errors import ValidationFailed
from kefu.core.validation import InvalidValue
from kefu.records import fields
from kefu.records.core_fields import CORE_BY_KEY
from kefu.records.fields import (
    FIELD_TYPES, OPERATORS, OPTION_NAMES, AmbiguousReference, FieldContext, FieldSpec, check_definition, dates,
    default_value, get_field_type,
)
from kefu.records.fields.spec import STORED_ATTRIBUTES
from kefu.records.types import FieldDefinition

SHANGHAI = ZoneInfo("Asia/Shanghai")
CTX = FieldContext(SHANGHAI)
SAFE_ID_NUMBER = "330106198503071238"


def define(type_name: str, key: str = "f", label: str = "字段", **options) -> FieldSpec:
    """A field definition the way the engine hands it to a field type (options as given, unchecked)."""
    return FieldSpec(key=key, label=label, type=type_name, **options)


def clean(type_name: str, raw, context: FieldContext = CTX, **options):
    return get_field_type(type_name).clean(raw, define(type_name, **options), context)


def rejection(type_name: str, raw, context: FieldContext = CTX, **options) -> str:
    with pytest.raises(InvalidValue) as caught:
        clean(type_name, raw, context, **options)
    return str(caught.value)


def form_for(field_type_name: str, context: FieldContext = CTX, **options):
    """A WTForms form class with one field ``f`` built from a definition."""
    definition = define(field_type_name, **options)

    class OneFieldForm(Form):
        pass

    OneFieldForm.f = get_field_type(field_type_name).form_field(definition, context)
    return OneFieldForm


def round_trip(db, type_name: str, value, **options):
    """Store ``value`` in a real collection and read it back: ``(raw stored, value again)``."""
    field_type = get_field_type(type_name)
    inserted = db.test_fields_values.insert_one({"data": {"f": field_type.to_storage(value)}})
    stored = db.test_fields_values.find_one({"_id": inserted.inserted_id})["data"]["f"]
    return stored, field_type.from_storage(stored)


# --- the registry -------------------------------------------------------------

def test_registry_holds_every_type_with_consistent_metadata():
    assert set(FIELD_TYPES) == {
        "text", "textarea", "integer", "decimal", "money", "date", "datetime", "choice", "multi_choice",
        "boolean", "phone", "id_number", "email", "customer", "project", "unit", "user", "department",
        "attachments",
    }
    for name, field_type in FIELD_TYPES.items():
        assert field_type.name == name
        assert str(field_type.label)
        assert set(field_type.options) <= set(OPTION_NAMES)
        assert set(field_type.operators) <= set(OPERATORS)
        assert {"empty", "not_empty"} <= set(field_type.operators)
    assert fields.field_type_choices()[4] == ("money", "金额")


def test_operator_table_per_type():
    ops = {name: set(field_type.operators) for name, field_type in FIELD_TYPES.items()}
    assert ops["text"] == {"eq", "ne", "in", "contains", "empty", "not_empty"}
    assert ops["choice"] == {"eq", "ne", "in", "empty", "not_empty"}
    assert ops["multi_choice"] == {"eq", "in", "empty", "not_empty"}
    for name in ("integer", "decimal", "money", "date", "datetime"):
        assert ops[name] == {"eq", "gte", "lte", "empty", "not_empty"}
    for name in ("customer", "project", "unit", "user", "department"):
        assert ops[name] == {"eq", "in", "empty", "not_empty"}
    assert ops["boolean"] == {"eq", "empty", "not_empty"}


def test_behaviour_that_depends_on_the_type_is_asked_of_the_type():
    def having(attribute):
        return {name for name, field_type in FIELD_TYPES.items() if getattr(field_type, attribute)}

    assert having("holds_files") == {"attachments"}
    assert set(FIELD_TYPES) - having("sortable") == {"attachments", "multi_choice"}
    assert having("narrows_units") == {"project"}
    assert having("report_dimension") == {"choice", "multi_choice", "project", "department"}
    assert having("export_dates") == {"date", "datetime"}
    widths = {name: field_type.export_width for name, field_type in FIELD_TYPES.items()}
    assert widths == {
        "text": 14, "textarea": 40, "integer": 10, "decimal": 12, "money": 14, "date": 12, "datetime": 17,
        "choice": 12, "multi_choice": 18, "boolean": 8, "phone": 15, "id_number": 21, "email": 24, "customer": 16,
        "project": 18, "unit": 16, "user": 16, "department": 14, "attachments": 20,
    }


def test_what_a_value_holds_is_asked_of_the_type():
    def having(attribute):
        return {name for name, field_type in FIELD_TYPES.items() if getattr(field_type, attribute)}

    assert having("holds_numbers") == {"integer", "decimal", "money"}
    assert having("holds_dates") == {"date", "datetime"}
    assert having("has_time_of_day") == {"datetime"}
    assert having("holds_yes_no") == {"boolean"}
    assert having("single_choice") == {"choice"}
    assert having("multiple") == {"multi_choice"}
    assert having("one_line_text") == {"text"}
    assert having("identifies_customer") == {"text", "phone", "id_number", "email", "customer"}
    assert having("identifies_caller") == {"phone"}
    assert having("narrowed_by_project") == {"unit"}


def test_one_operator_table_names_each_operator_and_how_a_filter_reads():
    assert str(OPERATORS["gte"].label) == "不小于" and str(OPERATORS["gte"].reads) == "不早于/不小于"


def test_one_field_shape_for_stored_and_core_fields():
    """Every reader gets a FieldSpec: from a stored definition (same attributes) and for the core fields."""
    stored = FieldDefinition(key="claim_amount", label="索赔金额", type="money", filter=True, choices=[])
    assert set(FieldDefinition._fields) == set(STORED_ATTRIBUTES)
    spec = FieldSpec.of(stored)
    assert spec == FieldSpec("claim_amount", "索赔金额", "money", filter=True)
    assert spec.path == "data.claim_amount" and not spec.core and spec.editable
    status = CORE_BY_KEY["status"]
    assert type(status) is FieldSpec and status.core and status.path == "status"
    assert status.list and status.filter and status.editable
    assert not CORE_BY_KEY["number"].editable and not CORE_BY_KEY["customer"].list


def test_unknown_type_is_refused_listing_the_known_ones():
    with pytest.raises(ValidationFailed) as caught:
        get_field_type("currency")
    assert "未知的字段类型“currency”" in str(caught.value)
    assert "money（金额）" in str(caught.value) and "attachments（附件）" in str(caught.value)


# --- blanks and objects ---------------------------------------------------------

@pytest.mark.parametrize("type_name", sorted(FIELD_TYPES))
@pytest.mark.parametrize("blank", [None, "", "   ", []])
def test_blank_is_none_for_every_type(type_name, blank):
    assert get_field_type(type_name).clean(blank, define(type_name, choices=["A"]), CTX) is None


@pytest.mark.parametrize("type_name", sorted(set(FIELD_TYPES) - {"boolean", "attachments", "multi_choice"}))
def test_query_operators_are_never_accepted_as_values(type_name):
    # No database is needed: the value is refused before any lookup.
    assert rejection(type_name, {"$gt": ""}, choices=["A"]) == "请填写单个值，不能是列表或对象"


def test_lists_where_one_value_is_expected_are_refused():
    assert rejection("text", ["a", "b"]) == "请填写单个值，不能是列表或对象"
    assert rejection("money", ["1"]) == "请填写单个值，不能是列表或对象"
    assert rejection("boolean", {"$ne": True}) == "请填写单个值，不能是列表或对象"
    assert rejection("multi_choice", {"$in": ["A"]}, choices=["A"]) == "请选择一个或多个可选项"
    assert rejection("attachments", {"$gt": ""}) == "请填写单个值，不能是列表或对象"


# --- text ------------------------------------------------------------------------

def test_text_is_stripped_and_numbers_from_spreadsheets_are_written_out():
    assert clean("text", "  报修漏水 ") == "报修漏水"
    assert clean("text", 1201) == "1201"
    assert clean("text", 13812345678.0) == "13812345678"


def test_text_length_and_pattern():
    assert rejection("text", "一二三四五六", max_length=5) == "最多 5 个字符，当前 6 个"
    assert rejection("text", "x" * 201) == "最多 200 个字符，当前 201 个"
    assert clean("text", "HT-2026-001", pattern=r"HT-\d{4}-\d{3}") == "HT-2026-001"
    assert rejection("text", "HT-26-1", pattern=r"HT-\d{4}-\d{3}") == r"格式不正确，应符合 HT-\d{4}-\d{3}"
    # The pattern must match the whole value, not a part of it.
    assert rejection("text", "xHT-2026-001", pattern=r"HT-\d{4}-\d{3}").startswith("格式不正确")


def test_textarea_keeps_lines_and_allows_longer_text():
    assert clean("textarea", " 第一行\r\n第二行 ") == "第一行\n第二行"
    assert clean("textarea", "字" * 3000) == "字" * 3000
    assert rejection("textarea", "字" * 11, max_length=10) == "最多 10 个字符，当前 11 个"


# --- numbers ----------------------------------------------------------------------

def test_integer_accepts_typed_and_json_numbers():
    assert clean("integer", "1,200") == 1200
    assert clean("integer", "１２") == 12
    assert clean("integer", 5.0) == 5
    assert clean("integer", " -3 ") == -3


@pytest.mark.parametrize(("raw", "message"), [
    ("1.5", "请输入整数"), ("十二", "请输入整数"), (True, "请输入整数"), ("NaN", "请输入整数"),
    (2 ** 64, "数值超出范围"),
])
def test_integer_rejects(raw, message):
    assert rejection("integer", raw) == message


def test_integer_range_messages():
    assert rejection("integer", "-1", min=0) == "不能小于 0"
    assert rejection("integer", 11, min=0, max=10) == "不能大于 10"
    assert clean("integer", 10, min=0, max=10) == 10


def test_decimal_is_exact():
    assert clean("decimal", "3.14") == Decimal("3.14")
    assert clean("decimal", 0.1) == Decimal("0.1")  # from the float's shortest repr, not its binary value
    assert clean("decimal", "0.5", min="0.5") == Decimal("0.5")
    assert rejection("decimal", "0.49", min="0.5") == "不能小于 0.5"
    assert rejection("decimal", "abc") == "请输入数字"
    assert rejection("decimal", "Infinity") == "请输入数字"
    assert rejection("decimal", "1" * 35) == "数字位数过多，最多 34 位"
    decimal_type = get_field_type("decimal")
    assert decimal_type.to_json(Decimal("1.50")) == "1.50"
    assert decimal_type.display(Decimal("1.50")) == "1.50"
    assert decimal_type.export_cell(Decimal("1.50")) == Decimal("1.50")


@pytest.mark.parametrize(("raw", "value"), [
    ("20000", Decimal("20000.00")), ("¥20,000", Decimal("20000.00")), ("￥20000.5", Decimal("20000.50")),
    ("20000元", Decimal("20000.00")), (20000, Decimal("20000.00")), (1.1, Decimal("1.10")),
    (Decimal("3.140"), Decimal("3.14")), ("２０００", Decimal("2000.00")),
])
def test_money_accepts_what_people_type(raw, value):
    cleaned = clean("money", raw)
    assert cleaned == value and isinstance(cleaned, Decimal)
    assert cleaned.as_tuple().exponent == -2


def test_money_rejects():
    assert rejection("money", "1.234") == "金额最多保留两位小数"
    assert rejection("money", "二万") == "请输入数字"
    assert rejection("money", "-1", min=0) == "不能小于 0"
    assert rejection("money", "50001", max=50000) == "不能大于 50000"


def test_money_json_display_and_export():
    money = get_field_type("money")
    assert money.to_json(Decimal("20000.00")) == "20000.00"
    assert money.from_json("20000.00", define("money"), CTX) == Decimal("20000.00")
    assert money.display(Decimal("20000.00")) == "¥20,000.00"
    assert money.display(Decimal("-12.50")) == "-¥12.50"
    assert money.export_cell(Decimal("20000.00")) == Decimal("20000.00")
    assert money.export_number_format == '"¥"#,##0.00'
    assert money.form_data(Decimal("20000.00")) == "20000.00"
    assert money.to_json(None) is None and money.display(None) == ""


def test_numbers_round_trip_through_mongodb_exactly(db):
    stored, value = round_trip(db, "money", Decimal("20000.10"))
    assert isinstance(stored, Decimal128) and value == Decimal("20000.10")
    assert str(value) == "20000.10"
    stored, value = round_trip(db, "decimal", Decimal("0.1"))
    assert isinstance(stored, Decimal128) and value == Decimal("0.1")
    stored, value = round_trip(db, "integer", 2 ** 40)
    assert stored == 2 ** 40 and value == 2 ** 40


# --- dates and times ----------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "2026-11-22", "2026/11/22", "2026.11.22", "2026年11月22日", "20261122", "２０２６-１１-２２", "2026-11-22 ",
    date(2026, 11, 22), datetime(2026, 11, 21, 16, 30, tzinfo=timezone.utc),
])
def test_date_accepts(raw):
    assert clean("date", raw) == date(2026, 11, 22)


def test_date_rejects():
    assert rejection("date", "22/11/2026") == "日期格式应为 2026-11-22"
    assert rejection("date", "明天") == "日期格式应为 2026-11-22"
    assert rejection("date", "2026-02-30") == "“2026-02-30”不是有效日期"
    assert rejection("date", "2026-11-21", min="2026-11-22") == "不能早于 2026-11-22"
    assert rejection("date", date(2027, 1, 1), max="2026-12-31") == "不能晚于 2026-12-31"


def test_date_storage_json_display_export(db):
    date_type = get_field_type("date")
    stored, value = round_trip(db, "date", date(2026, 11, 22))
    assert stored == datetime(2026, 11, 22, tzinfo=timezone.utc)
    assert value == date(2026, 11, 22) and type(value) is date
    assert date_type.to_json(value) == "2026-11-22"
    assert date_type.display(value) == "2026-11-22"
    assert date_type.export_cell(value) == date(2026, 11, 22)
    assert date_type.export_number_format == "yyyy-mm-dd"


@pytest.mark.parametrize(("raw", "utc"), [
    ("2025-10-16T23:59:59+08:00", datetime(2025, 10, 16, 15, 59, 59, tzinfo=timezone.utc)),
    ("2025-10-16T15:59:59Z", datetime(2025, 10, 16, 15, 59, 59, tzinfo=timezone.utc)),
    ("2025-10-16 23:59", datetime(2025, 10, 16, 15, 59, tzinfo=timezone.utc)),  # local time of the context
    ("2025/10/16 23:59:59", datetime(2025, 10, 16, 15, 59, 59, tzinfo=timezone.utc)),
    ("2025-10-16T10:00:00.123456-0500", datetime(2025, 10, 16, 15, 0, 0, 123000, tzinfo=timezone.utc)),
    (datetime(2025, 10, 16, 23, 59), datetime(2025, 10, 16, 15, 59, tzinfo=timezone.utc)),
    ("2025-10-16", datetime(2025, 10, 15, 16, 0, tzinfo=timezone.utc)),  # local midnight
])
def test_datetime_accepts(raw, utc):
    value = clean("datetime", raw)
    assert value == utc and value.tzinfo == timezone.utc


def test_datetime_rejects():
    message = "时间格式应为 2026-11-22 14:05 或 2026-11-22T14:05:00+08:00"
    assert rejection("datetime", "下午三点") == message
    assert rejection("datetime", 1700000000) == message
    assert rejection("datetime", "2026-13-01 10:00") == "“2026-13-01 10:00”不是有效时间"
    assert rejection("datetime", "2026-11-22 08:00", min="2026-11-22 09:00") == "不能早于 2026-11-22 09:00"


def test_datetime_storage_json_display_export(db):
    datetime_type = get_field_type("datetime")
    value = clean("datetime", "2025-10-16T23:59:59.5+08:00")
    stored, back = round_trip(db, "datetime", value)
    assert stored == back == datetime(2025, 10, 16, 15, 59, 59, 500000, tzinfo=timezone.utc)
    value = clean("datetime", "2025-10-16T23:59:59+08:00")
    assert datetime_type.to_json(value, SHANGHAI) == "2025-10-16T23:59:59+08:00"
    assert datetime_type.to_json(value, ZoneInfo("UTC")) == "2025-10-16T15:59:59+00:00"
    assert datetime_type.from_json("2025-10-16T23:59:59+08:00", define("datetime"), CTX) == value
    assert datetime_type.display(value, SHANGHAI) == "2025-10-16 23:59"
    assert datetime_type.export_cell(value, SHANGHAI) == datetime(2025, 10, 16, 23, 59, 59)
    assert datetime_type.export_number_format == "yyyy-mm-dd hh:mm"
    # To the minute, as the datetime input shows it (an untouched form then saves nothing).
    assert datetime_type.form_data(value, SHANGHAI) == datetime(2025, 10, 16, 23, 59)


def test_defaults_now_and_literal(monkeypatch):
    monkeypatch.setattr(dates, "utcnow", lambda: datetime(2026, 11, 21, 16, 30, 0, 123456, tzinfo=timezone.utc))
    assert default_value(define("date", default="now"), CTX) == date(2026, 11, 22)  # already the 22nd in Shanghai
    assert default_value(define("datetime", default="now"), CTX) == datetime(
        2026, 11, 21, 16, 30, 0, 123000, tzinfo=timezone.utc)
    assert default_value(define("money", default="100"), CTX) == Decimal("100.00")
    assert default_value(define("choice", default="B", choices=["A", "B"]), CTX) == "B"
    assert default_value(define("text"), CTX) is None


# --- choices and yes/no ---------------------------------------------------------------

def test_choice():
    assert clean("choice", " 维修 ", choices=["咨询", "投诉", "维修"]) == "维修"
    assert rejection("choice", "表扬", choices=["咨询", "投诉", "维修"]) == "“表扬”不是可选项，可选：咨询、投诉、维修"
    assert get_field_type("choice").display("维修") == "维修"


def test_multi_choice_keeps_the_order_of_choices_without_repeats(db):
    choices = ["漏水", "开裂", "噪音"]
    assert clean("multi_choice", ["噪音", "漏水", "噪音"], choices=choices) == ["漏水", "噪音"]
    assert clean("multi_choice", "噪音、漏水", choices=choices) == ["漏水", "噪音"]
    assert clean("multi_choice", "开裂", choices=choices) == ["开裂"]
    assert rejection("multi_choice", ["漏水", "虫害"], choices=choices) == "“虫害”不是可选项，可选：漏水、开裂、噪音"
    multi = get_field_type("multi_choice")
    assert multi.display(["漏水", "噪音"]) == "漏水、噪音"
    assert multi.to_json(["漏水"]) == ["漏水"]
    stored, value = round_trip(db, "multi_choice", ["漏水", "噪音"])
    assert stored == value == ["漏水", "噪音"]


def test_choice_definitions_with_a_comma_inside_an_option():
    assert clean("multi_choice", "甲,乙", choices=["甲,乙", "丙"]) == ["甲,乙"]


@pytest.mark.parametrize(("raw", "value"), [
    (True, True), (False, False), ("true", True), ("0", False), ("是", True), ("否", False), ("on", True),
    (1, True), ("ＹＥＳ", True),
])
def test_boolean_accepts(raw, value):
    assert clean("boolean", raw) is value


def test_boolean_rejects_and_displays():
    assert rejection("boolean", "maybe") == "请选择“是”或“否”"
    assert rejection("boolean", 2) == "请选择“是”或“否”"
    boolean = get_field_type("boolean")
    assert (boolean.display(True), boolean.display(False), boolean.display(None)) == ("是", "否", "")
    assert boolean.export_cell(False) == "否"
    assert boolean.to_json(True) is True


# --- contact and identity -----------------------------------------------------------------

def test_phone_id_number_email_use_the_shared_validators():
    assert clean("phone", "+86 138 1234 5678") == "13812345678"
    assert clean("phone", 13812345678) == "13812345678"
    assert rejection("phone", "12812345678") == "手机号码格式不正确，前两位应为 13–19"
    assert clean("id_number", "33010619850307123 8") == SAFE_ID_NUMBER
    assert rejection("id_number", "330106198503071239") == "身份证号码校验位不正确，请核对是否输错"
    assert clean("email", "Zhang.Wei@Example.COM") == "Zhang.Wei@example.com"
    assert rejection("email", "zhang.wei") == "邮箱地址缺少“@”，应类似 name@example.com"


def test_sensitive_values_mask():
    assert get_field_type("phone").mask("13812345678") == "138****5678"
    assert get_field_type("id_number").mask(SAFE_ID_NUMBER) == "330106********1238"
    assert get_field_type("email").mask("zhang.wei@example.com") == "z***@example.com"
    assert get_field_type("money").mask(Decimal("1.00")) == "******"


# --- references ---------------------------------------------------------------------------------

@pytest.fixture
def org(app, db):
    """Two projects with the same unit label, two customers called 张伟, two users, the departments (inside an app
    context: customers' phones are encrypted with the app's key)."""
    with app.app_context():
        yield _org()


def _org() -> dict:
    from kefu.org.customers import create_customer
    from kefu.org.structure import Building, Project, Unit
    from kefu.org.users import create_user, set_active
    from seed.demo import seed_departments

    seed_departments()
    places = {}
    for name, code in (("云栖·江南府", "YQJNF"), ("钱塘·星澜苑", "QTXLY")):
        project = Project(name=name, code=code).save()
        building = Building(project=project, name="3幢").save()
        places[code] = project
        for room in ("1201", "1202"):
            places[f"{code} {room}"] = Unit(project=project, building=building, entrance="2单元", room=room).save()
    places["zhang_a"] = create_customer({"name": "张伟", "phone": "13812345678", "project": places["YQJNF"]})
    places["zhang_b"] = create_customer({"name": "张伟", "phone": "13987654321"})
    places["li"] = create_customer({"name": "李娜", "phone": "0571-87654321"})
    places["lin"] = create_user("lin", "correct-horse", ["agent"], department="客服中心", display_name="林晓雯")
    places["wang"] = create_user("wang", "correct-horse", ["handler"], department="工程部", display_name="王志刚")
    places["old"] = create_user("old", "correct-horse", ["agent"], department="客服中心", display_name="离职员工")
    set_active(places["old"], False)
    return places


def test_project_by_name_code_or_id(org):
    project = org["YQJNF"]
    assert clean("project", "云栖·江南府") == project.pk
    assert clean("project", "yqjnf") == project.pk
    assert clean("project", str(project.pk)) == project.pk
    assert clean("project", project.pk) == project.pk
    assert rejection("project", "西溪·云庐") == "找不到项目“西溪·云庐”"
    assert rejection("project", str(ObjectId())).startswith("找不到项目“")


def test_unit_by_label_needs_a_project_when_two_share_it(org):
    with pytest.raises(AmbiguousReference) as caught:
        clean("unit", "3幢2单元1201")
    candidates = caught.value.candidates
    assert {c["id"] for c in candidates} == {str(org["YQJNF 1201"].pk), str(org["QTXLY 1201"].pk)}
    assert {c["label"] for c in candidates} == {"云栖·江南府 3幢2单元1201", "钱塘·星澜苑 3幢2单元1201"}
    assert str(caught.value) == ("“3幢2单元1201”对应多个户位：云栖·江南府 3幢2单元1201、钱塘·星澜苑 3幢2单元1201，"
                                 "请写得更具体些或直接选择")
    assert isinstance(caught.value, InvalidValue)


def test_unit_with_project_prefix_or_project_context(org):
    unit = org["YQJNF 1201"]
    assert clean("unit", "云栖·江南府 3幢2单元1201") == unit.pk
    assert clean("unit", "云栖·江南府3幢 2单元 1201") == unit.pk
    assert clean("unit", "YQJNF 3幢2单元1201") == unit.pk
    assert clean("unit", "３幢２单元１２０１", FieldContext(SHANGHAI, project_id=org["YQJNF"].pk)) == unit.pk
    in_other_project = FieldContext(SHANGHAI, project_id=org["QTXLY"].pk)
    assert rejection("unit", "云栖·江南府 3幢2单元1201", in_other_project) == "找不到户位“云栖·江南府 3幢2单元1201”"
    assert rejection("unit", str(unit.pk), in_other_project) == f"户位“{unit.pk}”不属于所选项目"
    assert rejection("unit", "3幢2单元9901") == "找不到户位“3幢2单元9901”"


def test_customer_by_phone_or_name(org):
    assert clean("customer", "138 1234 5678") == org["zhang_a"].pk
    assert clean("customer", "0571 8765 4321") == org["li"].pk
    assert clean("customer", "李娜") == org["li"].pk
    with pytest.raises(AmbiguousReference) as caught:
        clean("customer", "张伟")
    assert sorted(c["label"] for c in caught.value.candidates) == ["张伟（138****5678）", "张伟（139****4321）"]
    assert "对应多个客户" in str(caught.value) and "138****5678" in str(caught.value)
    assert rejection("customer", "13800000000") == "找不到客户“13800000000”"


def test_user_and_department(org):
    assert clean("user", "lin") == org["lin"].pk
    assert clean("user", "王志刚") == org["wang"].pk
    assert rejection("user", "离职员工") == "找不到用户“离职员工”"  # disabled users are not found by name …
    assert clean("user", str(org["old"].pk)) == org["old"].pk  # … but stored ids still resolve
    from kefu.org.structure import Department

    assert clean("department", "工程部") == Department.objects.get(name="工程部").pk
    assert rejection("department", "采购部") == "找不到部门“采购部”"


def test_ambiguous_names_list_at_most_ten_candidates(app, db):
    from kefu.org.customers import create_customer

    with app.app_context():
        for number in range(12):
            create_customer({"name": "王芳", "phone": f"1380000{number:04d}"})
        with pytest.raises(AmbiguousReference) as caught:
            clean("customer", "王芳")
    assert len(caught.value.candidates) == 10
    assert str(caught.value).endswith("等，请写得更具体些或直接选择")


def test_references_store_json_display_and_edit(org, db):
    unit_type = get_field_type("unit")
    unit = org["YQJNF 1201"]
    stored, value = round_trip(db, "unit", unit.pk)
    assert isinstance(stored, ObjectId) and value == unit.pk
    assert unit_type.to_json(value) == str(unit.pk)
    assert unit_type.display(value) == "云栖·江南府 3幢2单元1201"
    assert unit_type.display(ObjectId()) == "（已删除）"
    assert unit_type.labels([unit.pk, org["QTXLY 1202"].pk]) == {
        unit.pk: "云栖·江南府 3幢2单元1201", org["QTXLY 1202"].pk: "钱塘·星澜苑 3幢2单元1202"}
    # The form shows a name that finds the same target again, else the id.
    assert unit_type.form_data(unit.pk) == "云栖·江南府 3幢2单元1201"
    assert get_field_type("user").form_data(org["lin"].pk) == "lin"
    assert get_field_type("customer").form_data(org["li"].pk) == "李娜"  # a name, never the phone
    assert get_field_type("customer").form_data(org["zhang_a"].pk) == str(org["zhang_a"].pk)  # a shared name
    assert get_field_type("user").display(org["lin"].pk) == "林晓雯（lin）"


def test_current_user_default(org):
    context = FieldContext(SHANGHAI, user=org["lin"])
    assert default_value(define("user", default="current_user"), context) == org["lin"].pk
    assert default_value(define("user", default="current_user"), CTX) is None
    assert default_value(define("department", default="工程部"), CTX) is not None


# --- attachments ----------------------------------------------------------------------------------

def test_attachment_ids_are_validated():
    first, second = str(ObjectId()), str(ObjectId())
    assert clean("attachments", [first, second, first]) == [first, second]
    assert clean("attachments", f"{first},{second.upper()}") == [first, second]
    assert rejection("attachments", ["../../etc/passwd"]) == "附件编号“../../etc/passwd”无效"
    assert rejection("attachments", [123]) == "附件应为已上传附件的编号或上传的文件"
    assert get_field_type("attachments").display([first, second]) == "2 个附件"


def test_uploaded_files_need_an_attachment_store():
    upload = FileStorage(BytesIO(b"%PDF-1.4"), filename="合同.pdf", content_type="application/pdf")
    assert rejection("attachments", [upload]) == "此处无法保存上传的文件，请先上传附件，再填写附件编号"
    # An empty file input (no file chosen) is nothing, not an error.
    assert clean("attachments", [FileStorage(BytesIO(b""), filename="")]) is None


def test_uploads_go_to_the_context_store_with_the_size_limit():
    class RecordingStore:
        def __init__(self):
            self.calls = []

        def store(self, file_storage, max_bytes):
            self.calls.append((file_storage.filename, max_bytes))
            return type("AttachmentInfo", (), {"id": "65f000000000000000000001"})()

    store = RecordingStore()
    upload = FileStorage(BytesIO(b"x"), filename="照片.jpg")
    kept = str(ObjectId())
    value = clean("attachments", [kept, upload], FieldContext(SHANGHAI, attachments=store), max_size_mb=5)
    assert value == [kept, "65f000000000000000000001"]
    assert store.calls == [("照片.jpg", 5 * 1024 * 1024)]


def test_attachments_round_trip(db):
    ids = [str(ObjectId()), str(ObjectId())]
    stored, value = round_trip(db, "attachments", ids)
    assert all(isinstance(item, ObjectId) for item in stored) and value == ids


# --- definitions --------------------------------------------------------------------------------------

@pytest.mark.parametrize("definition", [
    define("text", key="contract_no", label="合同编号", max_length=20, pattern=r"HT-\d+", default="HT-1"),
    define("money", key="claim_amount", label="索赔金额", min=0, max="1000000", default="0"),
    define("date", key="visit_on", label="回访日期", default="now", min="2020-01-01"),
    define("datetime", key="occurred_at", label="发生时间", default="now"),
    define("choice", key="grade", label="等级", choices=["A", "B"], default="B"),
    define("multi_choice", key="issues", label="问题", choices=["漏水", "开裂"], default=["漏水"]),
    define("boolean", key="urgent", label="紧急", default=False),
    define("attachments", key="files", label="附件", max_size_mb=50),
    define("phone", key="contact_phone", label="联系电话", required=True, sensitive=True),
])
def test_sound_definitions_have_no_problems(definition):
    assert check_definition(definition) == []


@pytest.mark.parametrize(("definition", "problem"), [
    (define("choice", label="类型"), "字段“类型”：单选类型必须填写可选项 choices"),
    (define("multi_choice", label="问题", choices="漏水,开裂"), "字段“问题”：可选项 choices 应为列表"),
    (define("choice", label="类型", choices=["A", "A", ""]), "字段“类型”：可选项 choices 中每一项都应为非空文字"),
    (define("money", label="索赔金额", min=10, max=5), "字段“索赔金额”：最小值 10 大于最大值 5"),
    (define("date", label="日期", min="2026-12-01", max="2026-01-01"),
     "字段“日期”：最小值 2026-12-01 大于最大值 2026-01-01"),
    (define("integer", label="数量", min="很多"), "字段“数量”：最小值 min“很多”无效：请输入整数"),
    (define("text", label="编号", pattern="HT-(\\d+"),
     "字段“编号”：格式规则 pattern “HT-(\\d+”不是有效的正则表达式：missing ), unterminated subpattern at position 3"),
    (define("text", label="编号", max_length=0), "字段“编号”：最大长度 max_length 应为正整数，当前为 0"),
    (define("money", label="索赔金额", pattern=r"\d+"), "字段“索赔金额”：金额类型不支持选项 pattern"),
    (define("attachments", label="附件", default="x"), "字段“附件”：附件类型不支持选项 default"),
    (define("attachments", label="附件", max_size_mb=500), "字段“附件”：单个文件大小上限 max_size_mb 应在 0–100 之间，当前为 500"),
    (define("money", label="索赔金额", default="now"), "字段“索赔金额”：默认值“now”不适用于金额类型"),
    (define("money", label="索赔金额", default="-5", min=0), "字段“索赔金额”的默认值无效：不能小于 0"),
    (define("choice", label="类型", choices=["A"], default="B"), "字段“类型”的默认值无效：“B”不是可选项，可选：A"),
    (define("text", key="Claim-Amount", label="金额"),
     "字段“金额”的标识“Claim-Amount”无效：须以小写字母开头，只含小写字母、数字和下划线，最多 40 位"),
    (define("text", label=""), "字段“f”缺少显示名称"),
])
def test_definition_problems_name_the_field(definition, problem):
    assert problem in check_definition(definition)


def test_definition_with_unknown_type():
    [problem] = check_definition(define("currency", label="币种"))
    assert problem.startswith("字段“币种”：未知的字段类型“currency”")


def test_reference_default_is_looked_up(org):
    assert check_definition(define("department", label="责任部门", default="工程部")) == []
    assert check_definition(define("department", label="责任部门", default="采购部")) == [
        "字段“责任部门”的默认值无效：找不到部门“采购部”"]


# --- JSON schema ------------------------------------------------------------------------------------------

def test_json_schemas():
    money = get_field_type("money").json_schema(define("money", label="索赔金额", help="客户提出的赔偿金额（元）"))
    assert money == {"type": ["string", "null"], "pattern": r"^-?\d+\.\d{2}$", "examples": ["20000.00"],
                     "title": "索赔金额", "description": "客户提出的赔偿金额（元）"}
    choice = get_field_type("choice").json_schema(define("choice", label="等级", choices=["A", "B"], required=True))
    assert choice == {"type": "string", "enum": ["A", "B"], "title": "等级"}
    optional_choice = get_field_type("choice").json_schema(define("choice", label="等级", choices=["A"]))
    assert optional_choice["enum"] == ["A", None]
    assert get_field_type("date").json_schema(define("date", required=True))["format"] == "date"
    assert get_field_type("datetime").json_schema(define("datetime", required=True))["format"] == "date-time"
    integer = get_field_type("integer").json_schema(define("integer", min=0, max=10, readonly=True))
    assert (integer["type"], integer["minimum"], integer["maximum"], integer["readOnly"]) == (
        ["integer", "null"], 0, 10, True)
    multi = get_field_type("multi_choice").json_schema(define("multi_choice", choices=["A"], required=True))
    assert multi["type"] == "array" and multi["items"] == {"type": "string", "enum": ["A"]}
    unit = get_field_type("unit").json_schema(define("unit", required=True))
    assert unit["pattern"] == "^[0-9a-f]{24}$" and unit["x-kefu-reference"] == "unit"
    assert get_field_type("boolean").json_schema(define("boolean"))["type"] == ["boolean", "null"]
    assert get_field_type("text").json_schema(define("text", pattern="HT-\\d+", required=True))["pattern"] == \
        "^(?:HT-\\d+)$"


# --- filters against a real collection --------------------------------------------------------------

@pytest.fixture
def records(db):
    """Five records with data of every scalar type, and a helper returning the names a fragment matches."""
    rows = [
        {"name": "r1", "data": {"claim_amount": Decimal128("20000.00"), "title": "地下室 漏水(严重)",
                                "category": "投诉", "issues": ["漏水", "开裂"], "urgent": True,
                                "visit_on": datetime(2026, 11, 22, tzinfo=timezone.utc),
                                "occurred_at": datetime(2026, 11, 22, 15, 30, tzinfo=timezone.utc),  # 23:30 local
                                "phone": "13812345678", "count": 3}},
        {"name": "r2", "data": {"claim_amount": Decimal128("4999.99"), "title": "地下室漏水x严重",
                                "category": "咨询", "issues": ["噪音"], "urgent": False,
                                "visit_on": datetime(2026, 11, 23, tzinfo=timezone.utc),
                                "occurred_at": datetime(2026, 11, 22, 16, 30, tzinfo=timezone.utc),  # 00:30 next day
                                "phone": "0571-87654321", "count": 10}},
        {"name": "r3", "data": {"claim_amount": Decimal128("5000.00"), "title": "", "category": "维修",
                                "issues": [], "visit_on": datetime(2026, 11, 21, tzinfo=timezone.utc),
                                "count": 5}},
        {"name": "r4", "data": {"title": None, "category": None}},
        {"name": "r5", "data": {}},
    ]
    db.test_fields_records.insert_many(rows)

    def matching(type_name, key, op, raw=None, context=CTX, **options):
        definition = define(type_name, key=key, label="字段", **options)
        fragment = get_field_type(type_name).query(f"data.{key}", op, raw, definition, context)
        return sorted(row["name"] for row in db.test_fields_records.find(fragment))

    return matching


def test_money_filters_compare_as_numbers(records):
    assert records("money", "claim_amount", "gte", "5000") == ["r1", "r3"]
    assert records("money", "claim_amount", "lte", "¥5,000") == ["r2", "r3"]
    assert records("money", "claim_amount", "eq", 20000) == ["r1"]
    # Filters may look outside the definition's range.
    assert records("money", "claim_amount", "gte", "-1", min=0) == ["r1", "r2", "r3"]
    fragment = get_field_type("money").query("data.claim_amount", "gte", "5000", define("money"), CTX)
    assert fragment == {"data.claim_amount": {"$gte": Decimal128("5000.00")}}


def test_integer_filters(records):
    assert records("integer", "count", "gte", "5") == ["r2", "r3"]
    assert records("integer", "count", "lte", 4) == ["r1"]


def test_text_contains_is_literal_and_case_insensitive(records, db):
    assert records("text", "title", "contains", "漏水(严重)") == ["r1"]  # parentheses are not regex groups
    assert records("text", "title", "contains", "漏水.严重") == []  # "." is not a wildcard
    db.test_fields_records.insert_one({"name": "r6", "data": {"title": "Water LEAK"}})
    assert records("text", "title", "contains", "leak") == ["r6"]
    fragment = get_field_type("text").query("data.title", "contains", "a.b", define("text"), CTX)
    assert fragment == {"data.title": {"$regex": r"a\.b", "$options": "i"}}


def test_text_eq_ne_in_and_emptiness(records):
    assert records("text", "title", "eq", " 地下室漏水x严重 ") == ["r2"]
    assert records("text", "title", "in", ["地下室漏水x严重", "无"]) == ["r2"]
    assert records("text", "title", "empty") == ["r3", "r4", "r5"]
    assert records("text", "title", "not_empty") == ["r1", "r2"]


def test_choice_filters(records):
    choices = ["咨询", "投诉", "维修"]
    assert records("choice", "category", "eq", "投诉", choices=choices) == ["r1"]
    assert records("choice", "category", "in", "投诉,咨询", choices=choices) == ["r1", "r2"]
    assert records("choice", "category", "ne", "投诉", choices=choices) == ["r2", "r3", "r4", "r5"]
    assert records("choice", "category", "empty", choices=choices) == ["r4", "r5"]
    with pytest.raises(ValidationFailed) as caught:
        records("choice", "category", "eq", "表扬", choices=choices)
    assert caught.value.fields == {"category": "“表扬”不是可选项，可选：咨询、投诉、维修"}


def test_multi_choice_filters(records):
    choices = ["漏水", "开裂", "噪音"]
    assert records("multi_choice", "issues", "eq", "开裂", choices=choices) == ["r1"]
    assert records("multi_choice", "issues", "in", "开裂、噪音", choices=choices) == ["r1", "r2"]
    assert records("multi_choice", "issues", "empty", choices=choices) == ["r3", "r4", "r5"]
    assert records("multi_choice", "issues", "not_empty", choices=choices) == ["r1", "r2"]


def test_date_filters_include_the_whole_day(records):
    assert records("date", "visit_on", "lte", "2026-11-22") == ["r1", "r3"]
    assert records("date", "visit_on", "gte", "2026-11-22") == ["r1", "r2"]
    assert records("date", "visit_on", "eq", "2026年11月22日") == ["r1"]


def test_datetime_filters_read_days_in_local_time(records):
    # r1 happened at 23:30 on the 22nd Shanghai time, r2 at 00:30 on the 23rd.
    assert records("datetime", "occurred_at", "lte", "2026-11-22") == ["r1"]
    assert records("datetime", "occurred_at", "eq", "2026-11-23") == ["r2"]
    assert records("datetime", "occurred_at", "gte", "2026-11-23 00:00") == ["r2"]
    assert records("datetime", "occurred_at", "lte", "2026-11-22T15:30:00Z") == ["r1"]
    assert records("datetime", "occurred_at", "lte", "2026-11-22", context=FieldContext(ZoneInfo("UTC"))) == [
        "r1", "r2"]


def test_boolean_filters(records):
    assert records("boolean", "urgent", "eq", "是") == ["r1"]
    assert records("boolean", "urgent", "eq", "false") == ["r2", "r3", "r4", "r5"]  # never set counts as 否
    assert records("boolean", "urgent", "not_empty") == ["r1", "r2"]
    assert records("boolean", "urgent", "empty") == ["r3", "r4", "r5"]


def test_phone_filters(records):
    assert records("phone", "phone", "eq", "+86 138-1234-5678") == ["r1"]
    assert records("phone", "phone", "contains", "8765 4321") == ["r2"]


def test_reference_filters(org, db):
    unit_a, unit_b = org["YQJNF 1201"], org["QTXLY 1202"]
    db.test_fields_records.insert_many([
        {"name": "a", "data": {"unit": unit_a.pk}}, {"name": "b", "data": {"unit": unit_b.pk}}, {"name": "c", "data": {}},
    ])
    definition = define("unit", key="unit", label="户位")
    unit_type = get_field_type("unit")

    def names(op, raw=None):
        fragment = unit_type.query("data.unit", op, raw, definition, CTX)
        return sorted(row["name"] for row in db.test_fields_records.find(fragment))

    assert names("eq", "云栖·江南府 3幢2单元1201") == ["a"]
    assert names("eq", str(unit_b.pk)) == ["b"]
    assert names("in", [str(unit_a.pk), "钱塘·星澜苑 3幢2单元1202"]) == ["a", "b"]
    assert names("empty") == ["c"]
    with pytest.raises(ValidationFailed) as caught:
        names("eq", "3幢2单元1201")
    assert isinstance(caught.value.__cause__, AmbiguousReference)
    assert "对应多个户位" in caught.value.fields["unit"]


def test_filter_refusals():
    money = get_field_type("money")
    definition = define("money", key="claim_amount", label="索赔金额")
    with pytest.raises(ValidationFailed) as caught:
        money.query("data.claim_amount", "contains", "5", definition, CTX)
    assert str(caught.value) == ("“索赔金额”不支持筛选条件“contains”，可用：等于（eq）、不小于（gte）、不大于（lte）、"
                                 "为空（empty）、不为空（not_empty）")
    for raw in ({"$gt": ""}, ["1", "2"]):
        with pytest.raises(ValidationFailed) as caught:
            money.query("data.claim_amount", "eq", raw, definition, CTX)
        assert caught.value.fields == {"claim_amount": "请填写单个值，不能是列表或对象"}
    with pytest.raises(ValidationFailed) as caught:
        money.query("data.claim_amount", "gte", "", definition, CTX)
    assert str(caught.value) == "“索赔金额”的筛选值无效：请填写筛选值"
    with pytest.raises(ValidationFailed):
        get_field_type("text").query("data.title", "contains", {"$where": "1"}, define("text"), CTX)


# --- forms ----------------------------------------------------------------------------------------

def test_form_shows_the_same_messages_as_the_api():
    form_class = form_for("money", key="f", label="索赔金额", min=0, help="客户提出的赔偿金额（元）")
    form = form_class(MultiDict({"f": "二万"}))
    assert not form.validate()
    assert form.errors == {"f": ["请输入数字"]}
    assert 'value="二万"' in form.f()  # what was typed is shown again
    form = form_class(MultiDict({"f": "-1"}))
    assert not form.validate() and form.errors == {"f": ["不能小于 0"]}
    form = form_class(MultiDict({"f": "¥20,000"}))
    assert form.validate() and form.f.data == Decimal("20000.00")
    assert form.f.label.text == "索赔金额" and form.f.description == "客户提出的赔偿金额（元）"


def test_form_required_and_optional():
    required = form_for("money", label="索赔金额", required=True)
    form = required(MultiDict({"f": "  "}))
    assert not form.validate() and form.errors == {"f": ["请填写索赔金额"]}
    assert "required" in form.f()
    optional = form_for("money", label="索赔金额")
    form = optional(MultiDict({"f": ""}))
    assert form.validate() and form.f.data is None


def test_form_edit_shows_stored_values():
    form = form_for("money")(data={"f": get_field_type("money").form_data(Decimal("20000.00"))})
    assert 'value="20000.00"' in form.f()
    readonly = form_for("text", readonly=True)()
    assert "readonly" in readonly.f()


def test_choice_forms():
    form_class = form_for("choice", label="类型", choices=["咨询", "投诉"])
    form = form_class()
    assert [value for value, _label in form.f.choices] == ["", "咨询", "投诉"]
    form = form_class(MultiDict({"f": "表扬"}))
    assert not form.validate() and form.errors == {"f": ["“表扬”不是可选项，可选：咨询、投诉"]}
    form = form_class(MultiDict({"f": "投诉"}))
    assert form.validate() and form.f.data == "投诉"
    required = form_for("choice", label="类型", choices=["咨询"], required=True)(MultiDict({"f": ""}))
    assert not required.validate() and required.errors == {"f": ["请选择类型"]}

    multi = form_for("multi_choice", choices=["漏水", "开裂", "噪音"])
    form = multi(MultiDict([("f", "噪音"), ("f", "漏水")]))
    assert form.validate() and form.f.data == ["漏水", "噪音"]
    form = multi(MultiDict([("f", "虫害")]))
    assert not form.validate() and form.errors == {"f": ["“虫害”不是可选项，可选：漏水、开裂、噪音"]}
    form = multi(MultiDict({"other": "x"}))  # nothing ticked
    assert form.validate() and form.f.data is None


def test_date_and_datetime_forms():
    form_class = form_for("date")
    assert 'type="date"' in form_class().f()
    form = form_class(MultiDict({"f": "2026-02-30"}))
    assert not form.validate() and form.errors == {"f": ["“2026-02-30”不是有效日期"]}
    form = form_class(MultiDict({"f": "2026-11-22"}))
    assert form.validate() and form.f.data == date(2026, 11, 22)

    form_class = form_for("datetime")
    form = form_class(MultiDict({"f": "2026-11-22T14:05"}))
    assert form.validate() and form.f.data == datetime(2026, 11, 22, 6, 5, tzinfo=timezone.utc)
    stored = datetime(2026, 11, 22, 6, 5, tzinfo=timezone.utc)
    edit = form_class(data={"f": get_field_type("datetime").form_data(stored, SHANGHAI)})
    assert 'type="datetime-local"' in edit.f() and 'value="2026-11-22T14:05"' in edit.f()


def test_form_default_is_resolved_when_the_form_is_made(monkeypatch):
    monkeypatch.setattr(dates, "utcnow", lambda: datetime(2026, 11, 22, 1, 0, tzinfo=timezone.utc))
    form = form_for("date", default="now")()
    assert form.f.data == date(2026, 11, 22)


def test_boolean_form():
    form_class = form_for("boolean", required=True)
    form = form_class(MultiDict({"f": "y"}))
    assert form.validate() and form.f.data is True
    form = form_class(MultiDict({"other": "x"}))  # unticked box: 否, not missing
    assert form.validate() and form.f.data is False


def test_textarea_and_reference_forms(org):
    form = form_for("textarea", max_length=5)(MultiDict({"f": "一二三四五六"}))
    assert "<textarea" in form.f() and form.errors == {} and not form.validate()
    assert form.errors == {"f": ["最多 5 个字符，当前 6 个"]}
    unit_form = form_for("unit", label="户位", context=FieldContext(SHANGHAI, project_id=org["QTXLY"].pk))
    form = unit_form(MultiDict({"f": "3幢2单元1201"}))
    assert form.validate() and form.f.data == org["QTXLY 1201"].pk
    form = form_for("unit", label="户位")(MultiDict({"f": "3幢2单元1201"}))
    assert not form.validate() and form.errors["f"][0].startswith("“3幢2单元1201”对应多个户位")


def test_attachments_form_without_a_store():
    form_class = form_for("attachments", label="附件", required=True)
    assert 'type="file"' in form_class().f() and "multiple" in form_class().f()
    upload = FileStorage(BytesIO(b"data"), filename="照片.jpg")
    form = form_class(MultiDict({"f": upload}))
    assert not form.validate()
    assert form.errors == {"f": ["此处无法保存上传的文件，请先上传附件，再填写附件编号"]}
    form = form_class(MultiDict({"other": "x"}))
    assert not form.validate() and form.errors == {"f": ["请上传附件"]}
    kept = str(ObjectId())
    edit = form_class(data={"f": [kept]})
    assert f'type="hidden" name="f" value="{kept}"' in edit.f()
