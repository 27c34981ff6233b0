"""The knowledge base (知识库, 000 §三(一)4 定期整理常见问题及解答方法，形成知识库; issue 19): a consultation's answer
becomes an entry in one click on its details page; ticking 纳入知识库 proposes it for review; while a question is
typed, entries for the same question in other words are suggested and choosing one counts a use; the 知识库 screen
lists, searches and edits entries, which only a role with 维护知识库 may change. Real app, real mongod: every test
checks the response and what is stored.
"""
from __future__ import annotations

import re

import pytest
from bson import ObjectId

from seed.demo import DEMO_PASSWORD
from tests.conftest import csrf_token, token_headers
from tests.test_records import AdminForm, signed_in_client
from tests.test_records_api import assert_error

QUESTION = "交房时间是什么时候？"
SIMILAR = "什么时候交房"
ANSWER = "云栖·江南府一期于2027年6月30日前交房，交房前30天寄送入伙通知书。"


def consultation(client, headers, **values) -> dict:
    body = {"customer_name": "王先生", "question": QUESTION, "complexity": "一般性问题", **values}
    response = client.post("/api/v1/records/consultation", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def details_url(record_id: str) -> str:
    return f"/admin/records/consultation/details/?id={record_id}"


def add_to_knowledge(client, record_id: str):
    token = csrf_token(client, details_url(record_id))
    return client.post("/admin/knowledge/from-record/", data={
        "csrf_token": token, "type_key": "consultation", "record_id": record_id})


def make_entry(app, question=QUESTION, answer=ANSWER, state="active", project=None) -> str:
    from kefu.knowledge import entries

    with app.app_context():
        values = {"question": question, "answer": answer, "project": project}
        return str(entries.create_entry(values, "测试", state=state)["_id"])


def test_a_consultation_answer_becomes_an_entry_in_one_click(client, db, sign_in, supervisor):
    record = consultation(client, supervisor, answer=ANSWER)
    sign_in("supervisor", DEMO_PASSWORD)
    page = client.get(details_url(record["id"])).get_data(as_text=True)
    assert "加入知识库" in page and "/admin/knowledge/from-record/" in page

    response = add_to_knowledge(client, record["id"])
    assert response.status_code == 302 and details_url(record["id"]) in response.headers["Location"]
    stored = db.knowledge_entries.find_one({"source_id": ObjectId(record["id"])})
    assert stored["question"] == QUESTION and stored["answer"] == ANSWER and stored["state"] == "active"
    assert stored["source_type"] == "consultation" and stored["source_number"] == record["number"]
    assert stored["use_count"] == 0 and stored["created_by"]
    assert "已加入知识库" in client.get(details_url(record["id"])).get_data(as_text=True)

    # A second click after the answer changed brings the same entry up to date: one entry per record.
    current = client.get(f"/api/v1/records/consultation/{record['id']}", headers=supervisor).get_json()
    client.patch(f"/api/v1/records/consultation/{record['id']}", headers=supervisor,
                 json={"version": current["version"], "answer": ANSWER + "如有变化另行通知。"})
    assert "更新知识库条目" in client.get(details_url(record["id"])).get_data(as_text=True)
    assert add_to_knowledge(client, record["id"]).status_code == 302
    assert db.knowledge_entries.count_documents({"source_id": ObjectId(record["id"])}) == 1
    assert db.knowledge_entries.find_one({"source_id": ObjectId(record["id"])})["answer"].endswith("另行通知。")


def test_no_answer_no_button_and_a_click_anyway_says_why(client, db, sign_in, supervisor):
    record = consultation(client, supervisor)
    sign_in("supervisor", DEMO_PASSWORD)
    assert "加入知识库" not in client.get(details_url(record["id"])).get_data(as_text=True)
    response = add_to_knowledge(client, record["id"])
    assert response.status_code == 302
    assert "请先填写答复内容再加入知识库" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert db.knowledge_entries.count_documents({}) == 0


def test_a_similar_question_gets_the_entry_suggested_and_its_use_counted(app, client, db, agent):
    wanted = make_entry(app)
    make_entry(app, "物业费怎么缴纳", "可在物业服务中心或App缴纳。")
    hidden = make_entry(app, "交房需要带什么材料", "身份证、购房合同。", state="inactive")

    response = client.get("/api/v1/knowledge", query_string={"q": SIMILAR}, headers=agent)
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert items[0]["id"] == wanted and items[0]["answer"] == ANSWER and items[0]["score"] >= 3
    assert hidden not in {item["id"] for item in items}
    assert "物业费怎么缴纳" not in {item["question"] for item in items}

    used = client.post(f"/api/v1/knowledge/{wanted}/use", headers=agent)
    assert used.status_code == 200 and used.get_json()["use_count"] == 1
    assert db.knowledge_entries.find_one({"_id": ObjectId(wanted)})["use_count"] == 1
    assert_error(client.post(f"/api/v1/knowledge/{hidden}/use", headers=agent), 404)
    assert_error(client.post("/api/v1/knowledge/not-an-id/use", headers=agent), 404)
    assert db.knowledge_entries.find_one({"_id": ObjectId(hidden)})["use_count"] == 0


def test_the_question_input_carries_the_suggestion_hints_from_the_section(client, sign_in, seeded):
    sign_in("agent", DEMO_PASSWORD)
    page = client.get("/admin/records/consultation/new/").get_data(as_text=True)
    question = re.search(r'<textarea[^>]*id="question"[^>]*>', page).group(0)
    assert 'data-knowledge-answer="answer"' in question and 'data-knowledge-project="project"' in question
    assert "kefu_knowledge_suggest.js" in page and "<script>" not in page


def test_ticking_add_to_faq_proposes_the_answer_for_review(client, db, agent, supervisor):
    record = consultation(client, agent, answer=ANSWER, add_to_faq=True)
    stored = db.knowledge_entries.find_one({"source_id": ObjectId(record["id"])})
    assert stored["state"] == "proposed" and stored["answer"] == ANSWER
    # Proposed entries are not suggested until someone who keeps the knowledge base publishes them.
    assert client.get("/api/v1/knowledge", query_string={"q": SIMILAR}, headers=agent).get_json()["items"] == []


def test_suggestions_hold_for_the_project_typed_in_the_form(app, client, db, agent):
    """An answer given for one project (its handover date) is never suggested while a question of another project
    is typed; the form's project arrives by id, name or code, as the project input takes it."""
    here, there = (db.projects.find_one({"code": code})["_id"] for code in ("YQJNF", "QTXLY"))
    general = make_entry(app, "交房需要带什么", "身份证和购房合同。")
    mine = make_entry(app, project=here)
    theirs = make_entry(app, answer="钱塘·星澜苑于2026年12月28日前交房。", project=there)

    def suggested(**params) -> set[str]:
        response = client.get("/api/v1/knowledge", query_string={"q": SIMILAR, **params}, headers=agent)
        assert response.status_code == 200, response.get_data(as_text=True)
        return {item["id"] for item in response.get_json()["items"]}

    assert suggested(project=str(here)) == suggested(project="云栖·江南府") == suggested(project="yqjnf") == {
        general, mine}
    assert suggested(project="钱塘·星澜苑") == {general, theirs}
    assert suggested() == {general, mine, theirs}  # no project typed yet: every project's (all are readable)
    error = assert_error(client.get("/api/v1/knowledge", query_string={"q": SIMILAR, "project": "不存在的项目"},
                                    headers=agent), 422)
    assert "找不到项目“不存在的项目”" in error["fields"]["project"]
    assert db.knowledge_entries.find_one({"_id": ObjectId(theirs)})["project"] == there


def test_entries_not_published_are_listed_only_to_keepers(app, client, db, sign_in, agent, supervisor):
    published = make_entry(app, "物业费怎么缴纳", "可在物业服务中心缴纳。")
    proposed = make_entry(app, "交房需要带什么", "身份证和购房合同。", state="proposed")
    inactive = make_entry(app, "车位怎么租", "联系物业。", state="inactive")
    sign_in("agent", DEMO_PASSWORD)
    page = client.get("/admin/knowledge/").get_data(as_text=True)
    assert "物业费怎么缴纳" in page and "交房需要带什么" not in page and "车位怎么租" not in page
    for hidden in (proposed, inactive):
        details = client.get(f"/admin/knowledge/details/?id={hidden}")
        assert details.status_code == 302 and "交房需要带什么" not in client.get(
            details.headers["Location"]).get_data(as_text=True)
    assert "物业费怎么缴纳" in client.get(f"/admin/knowledge/details/?id={published}").get_data(as_text=True)
    # The API answers published entries only, to everyone (a keeper reviews proposals on the screen).
    for headers in (agent, supervisor):
        listed = client.get("/api/v1/knowledge", headers=headers)
        assert listed.status_code == 200 and {i["id"] for i in listed.get_json()["items"]} == {published}

    keeper = signed_in_client(app, "supervisor")
    page = keeper.get("/admin/knowledge/").get_data(as_text=True)
    assert "物业费怎么缴纳" in page and "交房需要带什么" in page and "车位怎么租" in page
    assert "交房需要带什么" in keeper.get(f"/admin/knowledge/details/?id={proposed}").get_data(as_text=True)
    assert {e["state"] for e in db.knowledge_entries.find()} == {"active", "proposed", "inactive"}


def test_the_record_an_entry_came_from_only_for_who_may_read_it(app, client, db, sign_in, supervisor):
    """The handler (工程部) reads the knowledge base, not the 客服中心's consultation it came from: no number, no
    id."""
    record = consultation(client, supervisor, answer=ANSWER)
    sign_in("supervisor", DEMO_PASSWORD)
    assert add_to_knowledge(client, record["id"]).status_code == 302
    stored = db.knowledge_entries.find_one({"source_id": ObjectId(record["id"])})
    assert stored["source_number"] == record["number"] and stored["state"] == "active"
    assert record["number"] in client.get("/admin/knowledge/").get_data(as_text=True)

    api = app.test_client()  # no session: the bearer token alone says who asks
    handler = token_headers(api, "handler")
    assert api.get(f"/api/v1/records/consultation/{record['id']}", headers=handler).status_code == 404
    for headers, source in ((handler, None),
                            (supervisor, {"type": "consultation", "number": record["number"], "id": record["id"]})):
        listed = api.get("/api/v1/knowledge", query_string={"q": SIMILAR}, headers=headers)
        assert listed.status_code == 200 and listed.get_json()["items"][0]["source"] == source
        used = api.post(f"/api/v1/knowledge/{stored['_id']}/use", headers=headers)
        assert used.status_code == 200 and used.get_json()["source"] == source
    assert db.knowledge_entries.find_one({"_id": stored["_id"]})["use_count"] == 2

    reader = signed_in_client(app, "handler")
    listed = reader.get("/admin/knowledge/").get_data(as_text=True)
    assert QUESTION in listed and record["number"] not in listed
    details = reader.get(f"/admin/knowledge/details/?id={stored['_id']}").get_data(as_text=True)
    assert ANSWER in details and record["number"] not in details


def test_saving_a_ticked_record_again_and_again_keeps_one_entry(app, client, db, sign_in, agent, monkeypatch):
    """纳入知识库 ticked: the first save proposes the answer, later saves (the API, the edit form, a save whose
    transaction MongoDB ran twice) bring the same entry up to date — one entry, every save answered."""
    from pymongo.errors import OperationFailure

    from kefu.knowledge import section

    record = consultation(client, agent, answer=ANSWER, add_to_faq=True)
    patched = client.patch(f"/api/v1/records/consultation/{record['id']}", headers=agent,
                           json={"version": record["version"], "answer": ANSWER + "一"})
    assert patched.status_code == 200, patched.get_data(as_text=True)

    # The save's transaction fails once after the entry's write (a write conflict): MongoDB aborts it, it runs
    # again whole.
    real, attempts = section.save_from_record, []

    def conflicting(*args, **kwargs):
        saved = real(*args, **kwargs)
        attempts.append(saved)
        if len(attempts) == 1:
            raise OperationFailure("write conflict", 112, {"errorLabels": ["TransientTransactionError"]})
        return saved

    monkeypatch.setattr(section, "save_from_record", conflicting)
    sign_in("agent", DEMO_PASSWORD)
    form = AdminForm(client.get(f"/admin/records/consultation/edit/?id={record['id']}").get_data(as_text=True)).fields
    assert form["add_to_faq"] and form["answer"].startswith(ANSWER)
    form["answer"] = ANSWER + "二"
    saved = client.post(f"/admin/records/consultation/edit/?id={record['id']}", data=form)
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert len(attempts) == 2
    stored = list(db.knowledge_entries.find({"source_id": ObjectId(record["id"])}))
    assert len(stored) == 1 and stored[0]["answer"] == ANSWER + "二" and stored[0]["state"] == "proposed"
    assert stored[0]["source_number"] == record["number"] and stored[0]["created_by"]
    assert db.records.find_one({"_id": ObjectId(record["id"])})["version"] == 3


def test_search_and_permissions_on_the_screen(app, client, db, sign_in, seeded):
    entry_id = make_entry(app)
    make_entry(app, "物业费怎么缴纳", "可在物业服务中心缴纳。")
    sign_in("agent", DEMO_PASSWORD)
    listed = client.get("/admin/knowledge/", query_string={"search": "交房"})
    assert listed.status_code == 200
    page = listed.get_data(as_text=True)
    assert QUESTION in page and "物业费怎么缴纳" not in page
    # An agent reads the knowledge base but does not edit it.
    assert client.get("/admin/knowledge/new/").status_code == 403
    assert client.get(f"/admin/knowledge/edit/?id={entry_id}").status_code == 403
    assert client.post(f"/admin/knowledge/edit/?id={entry_id}", data={"question": "改"}).status_code == 403
    assert db.knowledge_entries.find_one({"_id": ObjectId(entry_id)})["question"] == QUESTION


def test_an_agent_click_proposes_and_leaves_a_published_entry_alone(app, client, db, sign_in, agent):
    record = consultation(client, agent, answer=ANSWER)
    sign_in("agent", DEMO_PASSWORD)
    add_to_knowledge(client, record["id"])
    stored = db.knowledge_entries.find_one({"source_id": ObjectId(record["id"])})
    assert stored["state"] == "proposed"
    db.knowledge_entries.update_one({"_id": stored["_id"]}, {"$set": {"state": "active"}})
    response = add_to_knowledge(client, record["id"])
    assert "修改需要“维护知识库”权限" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_keeper_edits_and_bad_input_is_told_at_the_field(app, client, db, sign_in, seeded):
    entry_id = make_entry(app)
    sign_in("supervisor", DEMO_PASSWORD)
    token = csrf_token(client, "/admin/knowledge/new/")
    empty = client.post("/admin/knowledge/new/", data={"csrf_token": token, "question": " ", "answer": ANSWER,
                                                       "state": "active", "project": ""})
    assert empty.status_code == 200
    assert re.search(r'id="question".*?请填写问题', empty.get_data(as_text=True), re.S)
    long = client.post("/admin/knowledge/new/", data={"csrf_token": token, "question": "问" * 501, "answer": ANSWER,
                                                      "state": "active", "project": ""})
    assert "问题不能超过 500 个字（现有 501 个）" in long.get_data(as_text=True)
    assert db.knowledge_entries.count_documents({}) == 1

    saved = client.post(f"/admin/knowledge/edit/?id={entry_id}", data={
        "csrf_token": token, "question": SIMILAR, "answer": ANSWER, "category": "交付", "tags": "交房、时间",
        "state": "inactive", "project": ""})
    assert saved.status_code == 302
    stored = db.knowledge_entries.find_one({"_id": ObjectId(entry_id)})
    assert (stored["question"], stored["category"], stored["tags"], stored["state"]) == (
        SIMILAR, "交付", ["交房", "时间"], "inactive")
    assert stored["updated_by"] and "交付" in stored["grams"]


@pytest.mark.parametrize("query, status", [("问" * 201, 422), ("交房\x00", 400)])
def test_a_bad_search_is_told_at_q(client, agent, query, status):
    error = assert_error(client.get("/api/v1/knowledge", query_string={"q": query}, headers=agent), status)
    assert "q" in error["fields"]


def test_the_section_is_validated_with_clear_messages(app):
    import yaml

    from kefu.records.sections import definition_problems

    with open("schemas/developer/consultation.yaml", encoding="utf-8") as handle:
        definition = yaml.safe_load(handle)
    with app.app_context():
        assert "knowledge" not in definition_problems(definition)
        wrong = {**definition, "knowledge": {"question_field": "phone", "answer_field": "nope",
                                             "offer_field": "question"}}
        message = definition_problems(wrong)["knowledge"]
        assert "knowledge.question_field 应为本类型的 text/textarea 字段；“phone”不是" in message
        assert "“nope”不是" in message and "knowledge.offer_field 应为本类型的 boolean 字段" in message
        missing = {**definition, "knowledge": {"answer_field": "answer"}}
        assert "缺少 question_field" in definition_problems(missing)["knowledge"]


def test_the_screen_speaks_english(client, sign_in, seeded):
    sign_in("supervisor", DEMO_PASSWORD)
    client.get("/locale/en?next=/admin/")
    page = client.get("/admin/knowledge/").get_data(as_text=True)
    assert "Knowledge base" in page and "Uses" in page and "知识库" not in page


def test_browser_typing_a_question_suggests_the_entry_and_choosing_fills_the_answer(app, db, new_context, problems,
                                                                                     tmp_path):
    # Called here, not at the module's top: without a browser only this journey is skipped, not the whole module.
    from tests.browser_support import signed_in_page, skip_without_browser

    skip_without_browser()
    entry_id = make_entry(app)
    page = signed_in_page(new_context, "agent")
    page.goto("/admin/records/consultation/new/")
    page.fill("#question", SIMILAR)
    suggestion = page.locator(".kefu-knowledge-item", has_text=QUESTION)
    suggestion.wait_for()
    page.screenshot(path=tmp_path / "suggested.png", full_page=True)
    with page.expect_response(lambda r: r.url.endswith(f"/api/v1/knowledge/{entry_id}/use")) as used:
        suggestion.click()
    assert used.value.status == 200
    assert page.input_value("#answer") == ANSWER
    assert db.knowledge_entries.find_one({"_id": ObjectId(entry_id)})["use_count"] == 1
    problems.assert_none()
