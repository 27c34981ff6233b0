"""Which record types feed the knowledge base, and from which fields: the ``knowledge:`` section of a definition.

```yaml
knowledge:
  question_field: question     # free text: the customer's question (suggestions are offered while it is typed)
  answer_field: answer         # free text: the answer given (choosing a suggestion fills it)
  offer_field: add_to_faq      # optional, yes/no: ticked on save → the answer is proposed to the knowledge base
  project_field: project       # optional, a project: the entry holds for that project
```

A record of such a type with an answer can be made an entry in one click (``entry_from_record``). Ticking the
offer field proposes it (state ``proposed``) rather than publishing it: 000 §三(一)4 has the common questions
collected and their answers put in order periodically — an answer written for one customer is published for every
agent only once someone who keeps the knowledge base (维护知识库) has read it. The same person's one click publishes
it at once.

Both text fields must be non-sensitive: an entry is read by everyone signed in.
"""
from __future__ import annotations

from pydantic import Field, StrictStr

from kefu.core.errors import PermissionDenied, ValidationFailed
from kefu.core.i18n import _, _l
from kefu.knowledge.entries import ACTIVE, PROPOSED, entry_of_record, save_from_record
from kefu.org.roles import Action, Capability
from kefu.records.fields.text import NormalizedTextType, TextType
from kefu.records.sections import Section, SectionModel, at, parsed, register
from kefu.records.store import get_record_for
from kefu.records.types import get_record_type
from kefu.records.values import read_plain_values
from kefu.rules.level_rules import PROJECTS, YES_NO
from kefu.rules.shapes import FieldKind, named_kind, picker

# Free text a person writes (not a phone number or an e-mail): what a question and an answer are.
FREE_TEXT = named_kind("free_text", FieldKind(
    lambda t: isinstance(t, TextType) and not isinstance(t, NormalizedTextType), ("text", "textarea")))


class Knowledge(SectionModel):
    question_field: StrictStr = Field(title=_l("问题字段"), description=_l("客户的问题；录入时提示知识库中相近的问题"),
                                      json_schema_extra=picker("field", "free_text"))
    answer_field: StrictStr = Field(title=_l("解答字段"), description=_l("给客户的答复；选用提示的条目时填入"),
                                    json_schema_extra=picker("field", "free_text"))
    offer_field: StrictStr | None = Field(None, title=_l("纳入知识库字段"),
                                          description=_l("勾选后保存：答复作为待审核条目提交知识库"),
                                          json_schema_extra=picker("field", "yes_no"))
    project_field: StrictStr | None = Field(None, title=_l("项目字段"), description=_l("条目适用的项目"),
                                            json_schema_extra=picker("field", "project"))


class KnowledgeSection(Section):
    key = "knowledge"
    title = _l("知识库")
    model = Knowledge

    def problems(self, draft, model: Knowledge) -> list:
        wanted = (("question_field", model.question_field, FREE_TEXT), ("answer_field", model.answer_field, FREE_TEXT),
                  ("offer_field", model.offer_field, YES_NO), ("project_field", model.project_field, PROJECTS))
        problems = []
        for name, key, kind in wanted:
            if key is None:
                continue
            field = draft.field(key)
            if field is None or field.get("type") not in kind:
                problems.append(at(f"knowledge.{name}", _l("knowledge.%(name)s 应为本类型的 %(types)s 字段；“%(field)s”不是",
                                                           name=name, types="/".join(kind), field=key)))
            elif field.get("sensitive") and kind is FREE_TEXT:
                problems.append(at(f"knowledge.{name}", _l(
                    "knowledge.%(name)s：“%(field)s”是敏感字段，不能进入人人可读的知识库", name=name, field=key)))
        if model.question_field == model.answer_field:
            problems.append(at("knowledge.answer_field", _l("knowledge.answer_field 不能与 question_field 相同")))
        return problems

    def after_save(self, record_type, model: Knowledge | None, document, before, changed, actor):
        """Ticked offer field with an answer → the answer proposed (a proposal already made is brought up to date;
        an entry someone published or deactivated is left as they left it)."""
        if model is None or model.offer_field is None:
            return None
        if not ({model.offer_field, model.question_field, model.answer_field} & set(changed)):
            return None
        values = read_plain_values(record_type, document)
        if values.get(model.offer_field) is True and values.get(model.answer_field):
            save_from_record(_source(record_type, document), _entry_values(model, values), actor.name,
                             state=PROPOSED, replace_published=False)
        return None


def register_section() -> None:
    """Add the ``knowledge`` section to the definitions' registry (called by the composition root)."""
    register(KnowledgeSection())


def knowledge_of(record_type) -> Knowledge | None:
    """The type's knowledge settings (None: its records do not feed the knowledge base)."""
    return parsed(record_type, KnowledgeSection.key)


def _source(record_type, document: dict) -> dict:
    return {"type": record_type.key, "number": document["number"], "id": document["_id"]}


def _entry_values(model: Knowledge, values: dict) -> dict:
    project = values.get(model.project_field) if model.project_field else None
    return {"question": values.get(model.question_field), "answer": values.get(model.answer_field),
            "project": project}


def offer(record_type, document: dict) -> str | None:
    """What the record's details page offers: ``"add"`` (no entry yet), ``"update"`` (the entry made from it
    exists) or None (its type does not feed the knowledge base, or it has no answer yet)."""
    model = knowledge_of(record_type)
    if model is None or not read_plain_values(record_type, document).get(model.answer_field):
        return None
    return "update" if entry_of_record(document["_id"]) is not None else "add"


def entry_from_record(type_key: str, record_id, actor) -> tuple[dict, bool]:
    """One click (加入知识库): the record's question and answer as an entry, ``(entry, created)``.

    Someone with 维护知识库 publishes it (or brings the entry made from the record up to date); anyone else who
    may read the record proposes it — an entry already published stays as it is for them (``PermissionDenied``).
    ``NotFound`` for a record they may not read; ``ValidationFailed`` (at the answer field) when it has no answer
    or its type does not feed the knowledge base."""
    record_type = get_record_type(type_key, active_only=False)
    document = get_record_for(type_key, record_id, actor.access, Action.READ.value)
    model = knowledge_of(record_type)
    if model is None:
        raise ValidationFailed(_("“%(type)s”的记录不能加入知识库（其定义没有 knowledge 设置）", type=record_type.name))
    values = read_plain_values(record_type, document)
    if not values.get(model.answer_field):
        label = record_type.field(model.answer_field).label
        message = _("请先填写%(label)s再加入知识库", label=label)
        raise ValidationFailed(message, {model.answer_field: message})
    keeper = actor.access.has(Capability.MANAGE_KNOWLEDGE.value)
    entry, created = save_from_record(_source(record_type, document), _entry_values(model, values), actor.name,
                                      state=ACTIVE if keeper else PROPOSED, replace_published=keeper)
    if not keeper and not created and entry["state"] != PROPOSED:
        raise PermissionDenied(_("此记录的答复已在知识库中；修改需要“维护知识库”权限"))
    return entry, created
