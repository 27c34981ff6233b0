"""API routes of the knowledge base (知识库): search it (the record form's suggestions read this) and count a use
of an entry; and their OpenAPI paths (``knowledge_paths``, added to the document by ``web.api.spec``)."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import current_app, jsonify, request

from kefu.knowledge import entries
from web.actor import current_actor
from web.api.base import blueprint, page_args
from web.api.spec_parts import ID, MAYBE_MOMENT, MAYBE_TEXT, TEXT, json_answer, listing, obj, operation, path_id

SUGGESTIONS_PER_PAGE = 50  # the most entries one search answers


def _tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["KEFU_TIMEZONE"])


@blueprint.get("/v1/knowledge")
def list_knowledge():
    """Published entries matching ``q`` best first (``score``: character pairs shared with ``q``), or the most used
    ones without ``q``; ``per_page`` (≤ 50, default 10); ``project`` (id, name or code): only the entries for every
    project and for that one. Anyone signed in reads them; an entry's ``source`` only by who may read its record."""
    _page, per_page = page_args(request.args, max_per_page=SUGGESTIONS_PER_PAGE, default_per_page=10)
    found = entries.search(request.args.get("q", ""), limit=per_page, project=request.args.get("project"))
    readable = entries.readable_sources((entry.get("source_id") for entry, _score in found), current_actor().access)
    tz = _tz()
    return jsonify({"items": [{**entries.entry_json(entry, tz, readable), "score": score} for entry, score in found]})


@blueprint.post("/v1/knowledge/<entry_id>/use")
def use_knowledge(entry_id):
    """An agent chose the entry as an answer: its use count goes up by one; 404 for an unknown or inactive one."""
    entry = entries.record_use(entry_id)
    readable = entries.readable_sources([entry.get("source_id")], current_actor().access)
    return jsonify(entries.entry_json(entry, _tz(), readable))


ENTRY = obj({"id": ID, "question": TEXT, "answer": TEXT, "category": TEXT, "tags": {"type": "array", "items": TEXT},
             "project": MAYBE_TEXT, "state": {"type": "string", "enum": list(entries.STATE_LABELS)},
             "use_count": {"type": "integer"},
             "source": {"type": ["object", "null"], "description": "来源记录；无权查看该记录时为 null",
                        "properties": {"type": TEXT, "number": MAYBE_TEXT, "id": ID}},
             "updated_at": MAYBE_MOMENT})


def knowledge_paths() -> dict:
    """The knowledge base's paths in the OpenAPI document."""
    found = obj({**ENTRY["properties"], "score": {"type": "integer"}})
    return {
        "/api/v1/knowledge": {"get": operation(
            "知识库：搜索（相近的问题在前）", "知识库", {"200": json_answer(listing(found))}, ("422",), parameters=[
                {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": entries.MAX_QUERY},
                 "description": "问题或关键词；按共有的相邻字对排序，措辞不同也能找到"},
                {"name": "per_page", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": SUGGESTIONS_PER_PAGE}},
                {"name": "project", "in": "query", "schema": {"type": "string"},
                 "description": "项目（id、名称或编码）：只列出适用于全部项目和该项目的条目"}])},
        "/api/v1/knowledge/{entry_id}/use": {
            "parameters": [path_id("entry_id", "知识库条目 id")],
            "post": operation("知识库：记一次使用（选用了该条目作答）", "知识库", {"200": json_answer(ENTRY)}, ("404",),
                              write=True)},
    }
