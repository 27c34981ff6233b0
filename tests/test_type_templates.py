"""从模板新建, menu groups and the YAML of record types (kefu.records.type_templates, kefu.records.menu_groups,
admin_views.type_templates): each test asserts the answer and what is stored."""
from __future__ import annotations

import io
import re

import pytest
import yaml

from admin_views.record_types import RecordTypeView
from app import create_app
from kefu.core.db import get_database
from kefu.core.errors import ValidationFailed
from kefu.records.definitions import save_definition
from kefu.records.menu_groups import ensure_menu_group, menu_group_choices
from kefu.records.type_templates import (
    copy_type, import_yaml, new_number_prefix, new_type_key, pack_document, sort_order_after, template_definition,
    to_yaml,
)
from seed.demo import DEMO_PASSWORD

MENU = re.compile(r'<ul class="nav navbar-nav mr-auto">(.*?)</ul>\s*<ul class="nav navbar-nav navbar-right', re.S)
DROPDOWN = re.compile(
    r'data-toggle="dropdown" href="javascript:void\(0\)">([^<]+)</a>\s*<div class="dropdown-menu">(.*?)</div>', re.S)
# A refusal shown at its control: right after the control and its hint.
ERROR_AFTER = r'id="{control}"[^>]*>\s*<small[^>]*>[^<]*</small>\s*<div class="invalid-feedback d-block">{message}'
FORM = "/admin/record_types/from-template/"
IMPORT = "/admin/record_types/import/"


@pytest.fixture
def admin_client(client, seeded, sign_in):
    assert sign_in("admin", DEMO_PASSWORD).status_code == 302
    return client


def record_menus(client) -> dict[str, list[str]]:
    """The navigation bar's record menus: group name → the type keys it lists, in order."""
    page = client.get("/admin/").get_data(as_text=True)
    menus = {}
    for name, items in DROPDOWN.findall(MENU.search(page).group(1)):
        keys = re.findall(r'href="/admin/records/([a-z0-9_]+)/"', items)
        if keys:
            menus[name.strip()] = keys
    return menus


def form_token(client, path: str = FORM) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def post_template(client, **values):
    data = {"source": "shipped:construction_checkpoint", "name": "装修巡检", "name_en": "", "key": "",
            "number_prefix": "", "position": "renovation|construction_checkpoint", "new_group": "",
            "csrf_token": form_token(client), **values}
    return client.post(FORM, data=data)


def upload(client, content: bytes, filename: str = "types.yaml", pack: str = ""):
    return client.post(IMPORT, data={"csrf_token": form_token(client, IMPORT), "pack": pack,
                                     "file": (io.BytesIO(content), filename)}, content_type="multipart/form-data")


def test_copy_type_puts_the_copy_in_its_group_after_the_type_chosen(app, seeded, db):
    with app.app_context():
        order = sort_order_after("renovation", "construction_checkpoint")
        saved = copy_type(template_definition("shipped:construction_checkpoint"), name="装修巡检", key="reno_patrol",
                          pack="renovation", sort_order=order, by="admin")
    stored = db.record_types.find_one({"key": "reno_patrol"})
    source = db.record_types.find_one({"key": "construction_checkpoint"})
    following = db.record_types.find_one({"key": "pre_acceptance"})
    assert saved.key == "reno_patrol" and stored["name"] == "装修巡检" and stored["pack"] == "renovation"
    assert source["sort_order"] < stored["sort_order"] < following["sort_order"]
    assert [f["key"] for f in stored["fields"]] == [f["key"] for f in source["fields"]]
    assert stored["report"] == source["report"] and stored["version"] == 1 and stored["updated_by"] == "admin"
    assert stored["number_prefix"] == "ZXXJ" and stored.get("name_en") is None  # the source's English name is not its


def test_generated_keys_and_prefixes_are_pinyin_and_unique(app, seeded, db):
    with app.app_context():
        assert new_type_key("装修巡检") == "zhuang_xiu_xun_jian"
        assert new_type_key("！！") == "type_1"
        assert new_type_key(base="complaint") == "complaint_2"
        assert new_number_prefix("投诉") == "TSA"  # TS is the complaint's
        assert new_number_prefix("123", base="JD") == "JDA"


def test_admin_creates_reno_patrol_from_a_template_into_the_renovation_menu(admin_client, db):
    before = record_menus(admin_client)["装修"]
    response = post_template(admin_client, key="reno_patrol", name_en="Renovation patrol")
    assert response.status_code == 302, response.get_data(as_text=True)
    stored = db.record_types.find_one({"key": "reno_patrol"})
    assert response.headers["Location"].endswith(f"/admin/record_types/edit/?id={stored['_id']}")
    source = db.record_types.find_one({"key": "construction_checkpoint"})
    assert stored["pack"] == "renovation" and stored["name_en"] == "Renovation patrol"
    assert stored["fields"] == source["fields"] and stored["report"] == source["report"]
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "已新建“装修巡检”（类型键 reno_patrol，编号前缀 ZXXJ），在菜单“装修”中" in page
    place = before.index("construction_checkpoint") + 1
    assert record_menus(admin_client)["装修"] == [*before[:place], "reno_patrol", *before[place:]]


def test_an_empty_key_and_prefix_are_generated_and_first_puts_it_first(admin_client, db):
    assert post_template(admin_client, position="renovation|").status_code == 302
    assert post_template(admin_client, position="renovation|").status_code == 302
    first = db.record_types.find_one({"key": "zhuang_xiu_xun_jian"})
    second = db.record_types.find_one({"key": "zhuang_xiu_xun_jian_2"})
    assert (first["number_prefix"], second["number_prefix"]) == ("ZXXJ", "ZXXJA")
    assert record_menus(admin_client)["装修"][:2] == ["zhuang_xiu_xun_jian_2", "zhuang_xiu_xun_jian"]


def test_a_refused_copy_says_why_at_the_control_and_keeps_what_was_typed(admin_client, db):
    count = db.record_types.count_documents({})
    response = post_template(admin_client, key="complaint", name_en="Patrol")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'value="Patrol"' in page
    assert re.search(ERROR_AFTER.format(control="key", message="类型键“complaint”已存在"), page)
    page = post_template(admin_client, key="reno_patrol", number_prefix="TS").get_data(as_text=True)
    assert re.search(ERROR_AFTER.format(control="number_prefix", message="编号前缀“TS”已被“投诉”使用"), page)
    assert db.record_types.count_documents({}) == count
    page = post_template(admin_client, name=" ", new_group="二期物业").get_data(as_text=True)
    assert re.search(ERROR_AFTER.format(control="name", message="请填写名称"), page)
    assert not db.menu_groups.count_documents({})  # no group is made for a copy refused
    refused = post_template(admin_client, position="nowhere|")
    assert refused.status_code == 200 and "请选择菜单分组与位置" in refused.get_data(as_text=True)
    assert db.record_types.count_documents({}) == count


def test_a_new_group_is_created_and_shown_in_the_menu(admin_client, db):
    response = post_template(admin_client, key="reno_patrol", new_group="二期物业")
    assert response.status_code == 302, response.get_data(as_text=True)
    group = db.menu_groups.find_one({"name": "二期物业"})
    assert re.fullmatch(r"[a-z][a-z0-9_]+", group["key"]) and group["created_by"] == "admin"
    assert db.record_types.find_one({"key": "reno_patrol"})["pack"] == group["key"]
    menus = record_menus(admin_client)
    assert menus["二期物业"] == ["reno_patrol"] and list(menus)[-1] == "二期物业"  # after the shipped packs
    assert post_template(admin_client, key="reno_patrol_b", new_group="二期物业").status_code == 302
    assert db.menu_groups.count_documents({}) == 1  # the same name: the same group
    assert record_menus(admin_client)["二期物业"] == ["reno_patrol", "reno_patrol_b"]


def test_menu_groups_named_in_each_language(app, seeded, db):
    with app.app_context():
        key = ensure_menu_group("二期物业", name_en="Phase two", by="admin")
        assert ensure_menu_group("phase two") == key and ensure_menu_group("装修") == "renovation"
        assert menu_group_choices("en")[-1] == (key, "Phase two")
        assert menu_group_choices("zh_Hans_CN")[2] == ("renovation", "装修")
    assert db.menu_groups.find_one({"key": key})["name_en"] == "Phase two" and key == "phase_two"


def test_copying_a_whole_pack_makes_a_copy_of_each_type_in_the_new_group(admin_client, db):
    response = post_template(admin_client, source="pack:renovation", name="", new_group="装修二部")
    assert response.status_code == 302, response.get_data(as_text=True)
    group = db.menu_groups.find_one({"name": "装修二部"})["key"]
    copies = list(db.record_types.find({"pack": group}).sort("sort_order"))
    sources = list(db.record_types.find({"pack": "renovation"}).sort("sort_order"))
    assert [c["key"] for c in copies] == [f"{s['key']}_2" for s in sources]
    assert [c["name"] for c in copies] == [s["name"] for s in sources]
    assert len({c["number_prefix"] for c in copies + sources}) == 2 * len(sources)
    assert record_menus(admin_client)["装修二部"] == [c["key"] for c in copies]


def test_the_yaml_of_a_type_is_shown_and_downloaded_in_the_schemas_shape(admin_client, db):
    shown = admin_client.get("/admin/record_types/yaml/?key=construction_checkpoint")
    assert shown.status_code == 200 and "number_prefix: JD" in shown.get_data(as_text=True)
    response = admin_client.get("/admin/record_types/export/?key=construction_checkpoint")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="construction_checkpoint.yaml"'
    exported = yaml.safe_load(response.get_data(as_text=True))
    stored = db.record_types.find_one({"key": "construction_checkpoint"})
    assert list(exported)[:4] == ["key", "name", "name_en", "number_prefix"] and "version" not in exported
    assert exported["fields"][0] == {k: v for k, v in stored["fields"][0].items()
                                     if k != "active" and v not in (False, None, [])}
    missing = admin_client.get("/admin/record_types/export/?key=nothing")
    assert missing.status_code == 302
    assert "没有记录类型“nothing”" in admin_client.get(missing.headers["Location"]).get_data(as_text=True)


def test_a_group_exported_and_imported_on_a_fresh_database_round_trips(app, app_config, admin_client, db,
                                                                       drop_later):
    assert post_template(admin_client, key="reno_patrol", new_group="二期物业").status_code == 302
    group = db.menu_groups.find_one({"name": "二期物业"})["key"]
    response = admin_client.get(f"/admin/record_types/export-pack/?pack={group}")
    assert response.status_code == 200 and response.headers["Content-Disposition"].endswith(f'"{group}.yaml"')
    text = response.get_data(as_text=True)
    with app.app_context():
        assert yaml.safe_load(text) == yaml.safe_load(to_yaml(pack_document(group)))
    original = db.record_types.find_one({"key": "reno_patrol"}, {"_id": 0, "created_at": 0, "updated_at": 0})

    fresh = create_app({**app_config, "MONGODB_DB": app_config["MONGODB_DB"] + "_fresh"})
    try:
        with fresh.app_context():
            fresh_db = get_database()
            outcome = import_yaml(text, by="admin")
            assert outcome.created == [("reno_patrol", "装修巡检")] and not outcome.failed
            copied = fresh_db.record_types.find_one({"key": "reno_patrol"}, {"_id": 0, "created_at": 0,
                                                                                 "updated_at": 0})
            assert fresh_db.menu_groups.find_one({"key": group})["name"] == "二期物业"
    finally:
        drop_later(fresh_db.name)
        create_app(app_config)  # the test's own database again, for the fixtures' clean-up
    assert copied == original


def test_importing_a_pack_file_creates_and_replaces_types_through_the_form(admin_client, db):
    exported = admin_client.get("/admin/record_types/export-pack/?pack=renovation")
    document = yaml.safe_load(exported.get_data(as_text=True))
    patrol = {**document["types"][1], "key": "reno_patrol", "name": "装修巡检", "number_prefix": "XJ"}
    changed = {**document["types"][0], "name": "图纸审核（新）"}
    file = {"pack": {"key": "reno_two", "name": "装修二部"}, "types": [changed, patrol]}
    response = upload(admin_client, yaml.safe_dump(file, allow_unicode=True).encode())
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "已导入：新建 1 个，替换 1 个" in page
    assert db.menu_groups.find_one({"key": "reno_two"})["name"] == "装修二部"
    assert db.record_types.find_one({"key": "reno_patrol"})["pack"] == "reno_two"
    replaced = db.record_types.find_one({"key": changed["key"]})
    assert replaced["name"] == "图纸审核（新）" and replaced["version"] == 2 and replaced["pack"] == "reno_two"


def test_a_bad_file_is_refused_in_chinese_and_nothing_is_written(admin_client, db):
    count, versions = db.record_types.count_documents({}), {t["key"]: t["version"] for t in db.record_types.find()}
    cases = [
        (b"name: x\nkey: [unclosed", "文件不是有效的 YAML（第 2 行）"),
        (b"- just\n- a list\n", "文件应为一个记录类型定义"),
        ("名称: 装修巡检".encode("gbk"), "文件不是 UTF-8 编码的文本"),
        (b"", "请选择要导入的 YAML 文件"),
        (b"pack: {name: x}\ntypes:\n  - {name: no key}\n  - {key: complaint}\n  - {key: complaint}\n",
         "文件未导入：第 1 个类型缺少有效的类型键（key）；类型键“complaint”在文件中出现了两次"),
    ]
    for content, message in cases:
        response = upload(admin_client, content)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and message in page, (content, page[-3000:])
    assert db.record_types.count_documents({}) == count and not db.menu_groups.count_documents({})
    assert {t["key"]: t["version"] for t in db.record_types.find()} == versions


def test_a_type_refused_is_named_and_the_others_are_imported(admin_client, db):
    good = {"key": "reno_patrol", "name": "装修巡检", "number_prefix": "XJ",
            "fields": [{"key": "note", "label": "说明", "type": "text"}]}
    bad = {"key": "reno_bad", "name": "坏的", "number_prefix": "TS",
           "fields": [{"key": "note", "label": "说明", "type": "colour"}]}
    response = upload(admin_client, yaml.safe_dump({"pack": {"name": "装修"}, "types": [good, bad]},
                                                   allow_unicode=True).encode())
    page = response.get_data(as_text=True)
    assert "1 个类型未导入，见下方原因；其余已导入" in page
    assert "编号前缀“TS”已被“投诉”使用" in page and "字段“说明”的类型“colour”不存在" in page
    assert db.record_types.find_one({"key": "reno_patrol"})["pack"] == "renovation"
    assert db.record_types.find_one({"key": "reno_bad"}) is None


def test_one_type_imported_goes_into_the_group_picked(admin_client, db):
    text = admin_client.get("/admin/record_types/export/?key=construction_checkpoint").get_data(as_text=True)
    text = text.replace("key: construction_checkpoint", "key: reno_patrol").replace("number_prefix: JD",
                                                                                    "number_prefix: XJ")
    response = upload(admin_client, text.encode(), pack="commercial")
    assert "已导入：新建 1 个，替换 0 个" in response.get_data(as_text=True)
    assert db.record_types.find_one({"key": "reno_patrol"})["pack"] == "commercial"
    assert record_menus(admin_client)["商业物业"][-1] == "reno_patrol"


def test_the_list_offers_templates_import_and_export(admin_client, monkeypatch):
    monkeypatch.setattr(RecordTypeView, "list_template", "admin/record_type_list.html")
    page = admin_client.get("/admin/record_types/").get_data(as_text=True)
    for link in ("/admin/record_types/from-template/", "/admin/record_types/import/",
                 "/admin/record_types/export-pack/?pack=renovation", "/admin/record_types/export/?key=complaint",
                 "/admin/record_types/from-template/?source=type:complaint"):
        assert f'href="{link}"' in page, link


def test_only_whoever_manages_the_system_may_copy_or_import(client, seeded, sign_in, db):
    assert sign_in("supervisor", DEMO_PASSWORD).status_code == 302
    for path in (FORM, IMPORT, "/admin/record_types/export/?key=complaint",
                 "/admin/record_types/export-pack/?pack=developer", "/admin/record_types/yaml/?key=complaint"):
        assert client.get(path).status_code == 403, path


def test_a_definition_names_an_existing_group_or_none(app, seeded, db):
    definition = {"key": "reno_patrol", "name": "装修巡检", "number_prefix": "XJ", "pack": "nowhere",
                  "fields": [{"key": "note", "label": "说明", "type": "text"}]}
    with app.app_context(), pytest.raises(ValidationFailed) as refused:
        save_definition(definition)
    assert refused.value.fields["pack"] == "菜单分组“nowhere”不存在"
    with app.app_context(), pytest.raises(ValidationFailed) as refused:
        save_definition({**definition, "pack": "renovation", "sort_order": "3"})
    assert refused.value.fields["sort_order"] == "菜单中的顺序应为整数"
    assert db.record_types.find_one({"key": "reno_patrol"}) is None
