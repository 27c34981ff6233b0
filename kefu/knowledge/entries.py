"""Knowledge entries (知识库条目, 000 §三(一)4 定期整理常见问题及解答方法，形成知识库): a question, its answer, a
category and tags, optionally the project it holds for, and the record it came from.

An entry is in one of three states: ``active`` (suggested to agents and listed for everyone), ``proposed``
(taken from a record by someone who may not publish it, or ticked 纳入知识库 on a record: it waits for a person
with 维护知识库 to check the answer and publish it) and ``inactive`` (kept, never suggested). Every write goes
through the functions below (pymongo, so a write made from a record's save joins that save's transaction);
``KnowledgeEntry`` is the same collection as the admin screen reads it.

Search is by character pairs (``kefu.records.search.text_grams``/``query_grams``): an entry keeps the grams of its
question, category, tags and answer; a query finds the entries sharing at least one of its pairs, best first by
how many they share — so a question asked in other words ("什么时候交房" for "交房时间是什么时候") still finds
its entry, which an exact-substring search would not.
"""
from __future__ import annotations

from bson import ObjectId
from bson.errors import InvalidId
from mongoengine import DateTimeField, Document, IntField, ListField, ObjectIdField, ReferenceField, StringField
from pymongo import ReturnDocument

from kefu.core.clock import aware, utcnow
from kefu.core.db import get_database
from kefu.core.errors import NotFound, ValidationFailed
from kefu.core.i18n import _, _l
from kefu.core.validation import InvalidValue, check_typable
from kefu.org.access import AccessPolicy
from kefu.org.structure import Project
from kefu.records.fields import get_field_type
from kefu.records.search import query_grams, text_grams
from kefu.records.store import readable_ids

COLLECTION = "knowledge_entries"
MAX_QUESTION = 500
MAX_ANSWER = 4000
MAX_CATEGORY = 40
MAX_TAGS = 10
MAX_TAG = 20
MAX_QUERY = 200  # a search text longer than this is no question an agent types
MAX_GRAMS = 4000
# An entry matches when it shares at least a quarter of the query's character pairs (and at least one): enough for
# the same question in other words, not for every entry that happens to contain "什么时候".
MIN_SHARE = 4

ACTIVE, PROPOSED, INACTIVE = "active", "proposed", "inactive"
STATE_LABELS = {ACTIVE: _l("已发布"), PROPOSED: _l("待审核"), INACTIVE: _l("已停用")}


class KnowledgeEntry(Document):
    """One entry, as the admin screen lists it (written only through this module's functions)."""

    question = StringField(required=True, max_length=MAX_QUESTION, verbose_name=_l("问题"))
    answer = StringField(required=True, max_length=MAX_ANSWER, verbose_name=_l("解答"))
    category = StringField(max_length=MAX_CATEGORY, verbose_name=_l("分类"))
    tags = ListField(StringField(max_length=MAX_TAG), verbose_name=_l("标签"))
    project = ReferenceField(Project, verbose_name=_l("适用项目"))
    state = StringField(required=True, choices=list(STATE_LABELS), default=ACTIVE, verbose_name=_l("状态"))
    source_type = StringField(verbose_name=_l("来源记录类型"))
    source_number = StringField(verbose_name=_l("来源记录"))
    source_id = ObjectIdField(verbose_name=_l("来源记录 id"))
    use_count = IntField(default=0, verbose_name=_l("使用次数"))
    last_used_at = DateTimeField(verbose_name=_l("最近使用"))
    created_by = StringField(verbose_name=_l("创建人"))
    created_at = DateTimeField(default=utcnow, verbose_name=_l("创建时间"))
    updated_by = StringField(verbose_name=_l("修改人"))
    updated_at = DateTimeField(default=utcnow, verbose_name=_l("修改时间"))
    grams = ListField(StringField())

    meta = {"collection": COLLECTION, "ordering": ["-use_count", "-updated_at"], "indexes": [
        ("state", "grams"),
        ("state", "-use_count"),
        # One entry per record it came from: two clicks at once make one entry.
        {"fields": ["source_id"], "unique": True, "partialFilterExpression": {"source_id": {"$exists": True}}},
    ]}

    def __str__(self) -> str:
        return self.question


def ensure_indexes() -> None:
    """Create the collection's indexes (at start-up, before a record's save may write an entry in a transaction)."""
    KnowledgeEntry.ensure_indexes()


def _collection():
    return get_database()[COLLECTION]


def _text(values: dict, key: str, limit: int, label, *, required: bool, problems: dict) -> str:
    """``values[key]`` stripped; a message in ``problems[key]`` when it is missing (``required``), too long or not
    typable."""
    raw = values.get(key)
    text = "" if raw is None else str(raw).strip()
    if not text:
        if required:
            problems[key] = _("请填写%(label)s", label=label)
        return ""
    if len(text) > limit:
        problems[key] = _("%(label)s不能超过 %(max)s 个字（现有 %(n)s 个）", label=label, max=limit, n=len(text))
        return text
    try:
        check_typable(text)
    except InvalidValue as exc:
        problems[key] = str(exc)
    return text


def _tags(raw, problems: dict) -> list[str]:
    """Tags from a list or a text separated by commas or 、; at most ``MAX_TAGS`` of at most ``MAX_TAG`` chars."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        raw = raw.replace("，", ",").replace("、", ",").split(",")
    if not isinstance(raw, list | tuple) or not all(isinstance(t, str) for t in raw):
        problems["tags"] = _("标签应为文字，多个用逗号分隔")
        return []
    tags = list(dict.fromkeys(t.strip() for t in raw if t.strip()))
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG for t in tags):
        problems["tags"] = _("标签最多 %(n)s 个，每个不超过 %(max)s 个字", n=MAX_TAGS, max=MAX_TAG)
    return tags


def project_id(raw) -> ObjectId | None:
    """The project ``raw`` names (its id, name or code, as a record's project field takes it); None when blank;
    ``InvalidValue`` with the reason when it names none (or several)."""
    if isinstance(raw, ObjectId):
        raw = str(raw)
    return get_field_type("project").clean(raw, None)


def _project(raw, problems: dict):
    try:
        return project_id(raw)
    except InvalidValue as exc:
        problems["project"] = str(exc)
        return None


def cleaned(values: dict) -> dict:
    """The entry's values from ``values`` (question, answer, category, tags, project), checked; ``ValidationFailed``
    with a message for each field that is wrong."""
    problems: dict = {}
    clean = {"question": _text(values, "question", MAX_QUESTION, _("问题"), required=True, problems=problems),
             "answer": _text(values, "answer", MAX_ANSWER, _("解答"), required=True, problems=problems),
             "category": _text(values, "category", MAX_CATEGORY, _("分类"), required=False, problems=problems),
             "tags": _tags(values.get("tags"), problems),
             "project": _project(values.get("project"), problems)}
    if problems:
        raise ValidationFailed(_("知识库条目未保存：%(problems)s", problems="；".join(problems.values())), problems)
    return clean


def _indexed(clean: dict) -> dict:
    """``clean`` with the grams search reads: of the question, category, tags and answer."""
    grams: set[str] = set()
    for part in (clean["question"], clean["category"], *clean["tags"], clean["answer"]):
        grams |= text_grams(part)
    return {**clean, "grams": sorted(grams)[:MAX_GRAMS]}


def _object_id(entry_id) -> ObjectId:
    try:
        return entry_id if isinstance(entry_id, ObjectId) else ObjectId(str(entry_id))
    except (InvalidId, TypeError):
        raise NotFound(_l("知识库条目不存在")) from None


def get_entry(entry_id) -> dict:
    found = _collection().find_one({"_id": _object_id(entry_id)})
    if found is None:
        raise NotFound(_l("知识库条目不存在"))
    return found


def create_entry(values: dict, by: str, *, state: str = ACTIVE, source: dict | None = None) -> dict:
    """A new entry from ``values`` (see ``cleaned``) in ``state``; ``source``: ``{type, number, id}`` of the record
    it came from. Returns it as stored."""
    now = utcnow()
    document = {**_indexed(cleaned(values)), "state": state, "use_count": 0, "created_by": by, "created_at": now,
                "updated_by": by, "updated_at": now}
    if source:
        document.update(source_type=source["type"], source_number=source["number"], source_id=source["id"])
    document["_id"] = _collection().insert_one(document).inserted_id
    return document


def update_entry(entry_id, values: dict, by: str, *, state: str | None = None) -> dict:
    """Change the entry's question, answer, category, tags and project (and its ``state`` when given)."""
    changes = {**_indexed(cleaned(values)), "updated_by": by, "updated_at": utcnow()}
    if state is not None:
        changes["state"] = _state(state)
    updated = _collection().find_one_and_update({"_id": _object_id(entry_id)}, {"$set": changes},
                                                return_document=ReturnDocument.AFTER)
    if updated is None:
        raise NotFound(_l("知识库条目不存在"))
    return updated


def _state(state: str) -> str:
    if state not in STATE_LABELS:
        message = _("状态应为以下之一：%(states)s", states="、".join(str(v) for v in STATE_LABELS.values()))
        raise ValidationFailed(message, {"state": message})
    return state


def set_state(entry_id, state: str, by: str) -> dict:
    """Publish, propose or deactivate an entry (deactivated entries are kept: their use counts stay)."""
    updated = _collection().find_one_and_update(
        {"_id": _object_id(entry_id)}, {"$set": {"state": _state(state), "updated_by": by, "updated_at": utcnow()}},
        return_document=ReturnDocument.AFTER)
    if updated is None:
        raise NotFound(_l("知识库条目不存在"))
    return updated


def entry_of_record(record_id) -> dict | None:
    """The entry made from record ``record_id``, if any."""
    return _collection().find_one({"source_id": _object_id(record_id)})


def save_from_record(source: dict, values: dict, by: str, *, state: str, replace_published: bool) -> tuple[dict, bool]:
    """The entry of the record ``source`` (``{type, number, id}``) made or brought up to date with ``values``;
    ``(entry, created)``. An entry already published or deactivated is changed only when ``replace_published``
    (a person who may keep the knowledge base); otherwise it stays as its reviewer left it and is returned as is.

    Made by one upsert keyed on the record (never insert-then-catch a duplicate: inside a record's save, a write
    error aborts the save's transaction), so two saves or clicks at once make one entry."""
    now = utcnow()
    document = {**_indexed(cleaned(values)), "state": state, "use_count": 0, "created_by": by, "created_at": now,
                "updated_by": by, "updated_at": now, "source_type": source["type"], "source_number": source["number"]}
    upserted = _collection().update_one({"source_id": source["id"]}, {"$setOnInsert": document},
                                        upsert=True).upserted_id
    if upserted is not None:
        return {**document, "_id": upserted, "source_id": source["id"]}, True
    existing = entry_of_record(source["id"])
    if existing["state"] != PROPOSED and not replace_published:
        return existing, False
    return update_entry(existing["_id"], values, by, state=state), False


def search(text: str, *, limit: int = 10, project=None) -> list[tuple[dict, int]]:
    """Published entries matching ``text``, best first, as ``(entry, score)``: the score is how many of the query's
    character pairs the entry shares (at least a quarter of them, and one). An empty ``text`` lists the most used
    entries (score 0). ``project`` (id, name or code: the project of the record being typed): only the entries for
    every project and those for it — an answer given for one project is no answer for another. Without it, every
    published entry (a user's roles scope records, not projects: every project is readable to everyone).
    ``ValidationFailed`` at ``q`` for a text too long or not typable, at ``project`` for a project not found."""
    text = (text or "").strip()
    if len(text) > MAX_QUERY:
        message = _("搜索内容不能超过 %(max)s 个字", max=MAX_QUERY)
        raise ValidationFailed(message, {"q": message})
    try:
        check_typable(text)
    except InvalidValue as exc:
        raise ValidationFailed(str(exc), {"q": str(exc)}) from None
    match: dict = {"state": ACTIVE}
    problems: dict = {}
    chosen = _project(project, problems)
    if problems:
        raise ValidationFailed(problems["project"], problems)
    if chosen is not None:
        match["project"] = {"$in": [None, chosen]}  # None: no project stored, or none at all
    wanted = query_grams(text)
    if not wanted:
        found = _collection().find(match, {"grams": 0}, sort=[("use_count", -1), ("updated_at", -1)], limit=limit)
        return [(entry, 0) for entry in found]
    match["grams"] = {"$in": wanted}
    pipeline = [{"$match": match},
                {"$addFields": {"score": {"$size": {"$setIntersection": ["$grams", wanted]}}}},
                {"$match": {"score": {"$gte": max(1, len(wanted) // MIN_SHARE)}}},
                {"$sort": {"score": -1, "use_count": -1, "_id": -1}}, {"$limit": limit},
                {"$project": {"grams": 0}}]
    return [(entry, entry.pop("score")) for entry in _collection().aggregate(pipeline)]


def record_use(entry_id) -> dict:
    """Count one use of a published entry (an agent chose it as an answer); ``NotFound`` for any other."""
    updated = _collection().find_one_and_update(
        {"_id": _object_id(entry_id), "state": ACTIVE},
        {"$inc": {"use_count": 1}, "$set": {"last_used_at": utcnow()}}, return_document=ReturnDocument.AFTER)
    if updated is None:
        raise NotFound(_l("知识库条目不存在或已停用"))
    return updated


def readable_sources(source_ids, access: AccessPolicy) -> set[str]:
    """Which of the entries' ``source_id`` values (None for an entry made by hand) name records ``access`` may
    read, as strings (one query)."""
    return readable_ids([source for source in source_ids if source is not None], access)


def entry_json(entry: dict, tz, readable: set[str]) -> dict:
    """An entry as the API answers it; its ``source`` (the record it came from) only when that record's id is in
    ``readable`` (``readable_sources``), else None: an entry is read by everyone, its record is not."""
    def moment(value):
        return aware(value).astimezone(tz).isoformat() if value is not None else None

    project = entry.get("project")
    source = entry.get("source_id")
    return {"id": str(entry["_id"]), "question": entry["question"], "answer": entry["answer"],
            "category": entry.get("category") or "", "tags": list(entry.get("tags") or ()),
            "project": str(project) if project is not None else None, "state": entry["state"],
            "use_count": entry.get("use_count", 0),
            "source": ({"type": entry["source_type"], "number": entry.get("source_number"), "id": str(source)}
                       if source is not None and str(source) in readable else None),
            "updated_at": moment(entry.get("updated_at"))}
