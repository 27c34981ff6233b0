"""Sections of a record-type definition (workflow, sla, levels, …): one protocol and one ordered registry.

A section is one top-level key of a definition — in ``schemas/*.yaml``, the types API and the ``record_types``
collection alike — handled by one ``Section`` object:

- ``model``: a pydantic model of the section's shape. ``parsed`` parses a loaded definition's section once (the
  result is kept on the ``RecordType`` while its stored value is the same object); shape errors become Chinese
  messages naming the path, list items by their ordinal (``levels.rules 第 5 条的 units 应为不小于 2 的整数``);
- ``problems(draft, model)``: only the checks that refer to the definition's fields or to other sections;
- ``before_save`` / ``after_save`` / ``after_event``: the save lifecycle's hooks (``kefu.records.lifecycle``),
  no-ops by default;
- ``choice_references``: the choice values the section's rules name by their text (a rename of one is refused),
  none by default;
- ``json_schema()``: the model's JSON Schema (``GET /api/v1/types/schema``; the record-type screen's rule editors
  are rendered from it), its titles in the reader's language.

``problem_paths`` says where each problem of a definition is: the path of the value it is about
("sla.0.within", "levels.rules.2.units") → its message, for the editors to show it at that value's control.

Validation (``kefu.records.types``) and the lifecycle iterate the same registry in registration order, so adding a
section is one module that calls ``register``. The sections live above the records area (``kefu.rules``) and are
registered by the composition root (``kefu.rules.register_sections`` from ``create_app``): records never imports
them, and finds the workflow — the one section the record itself needs (its statuses) — through ``workflow_of``.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from kefu.core.errors import DomainError
from kefu.core.i18n import _l

log = logging.getLogger(__name__)

# The workflow's section key: the one section the records area reads itself (``workflow_of``), so its key lives
# here and ``kefu.rules.workflow.WorkflowSection`` takes it from here.
WORKFLOW = "workflow"
# Pydantic's error type for our own messages: ``PydanticCustomError(SECTION_ERROR, text)`` from a validator,
# where ``text`` (Chinese, written for a person) follows the path: "的单位“weeks”不存在" (or ".initial …").
SECTION_ERROR = "kefu_section"


class SectionModel(BaseModel):
    """Base of the section models: unknown keys refused, frozen. Scalars are declared strict (``StrictInt``,
    ``StrictStr``) where a coercion would hide a mistake; lists may be written as YAML/JSON lists."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data):
        """An optional key written empty (``when:`` with nothing after it is null in YAML) means its default, as
        definitions have always been read; only a required key must have a value."""
        if not isinstance(data, dict):
            return data
        optional = {name for field_name, info in cls.model_fields.items() if not info.is_required()
                    for name in (field_name, info.alias) if name}
        return {key: value for key, value in data.items() if value is not None or key not in optional}


def refuse(text, **values) -> PydanticCustomError:
    """A validator's error: ``text`` (a ``_l`` message) is shown after the path of the value it is about."""
    return PydanticCustomError(SECTION_ERROR, "{text}", {"text": str(_l(text, **values)) if values else str(text)})


class SectionInvalid(DomainError):
    """A section's value does not have its shape; ``messages`` say where and why, for a person.

    Raised while checking a definition being saved (``definition_problems`` turns it into the definition's
    problems) and by ``parsed`` for a stored definition the models refuse (one an earlier, looser check let
    through): then the message names the type, and the web and API error handlers answer with it."""

    code = "definition_invalid"

    def __init__(self, messages: list[str], message=None, paths: list[str] | None = None):
        super().__init__(message or "；".join(messages))
        self.messages = messages
        self.paths = paths or []  # the path of each message's value ("sla.0.within"), in the same order


class Located:
    """A ``problems`` message with the path of the value it is about (``at("sla.resolve.start", message)``):
    ``str()`` is the message, ``path`` the dotted path — a list item by its position or, in a list of items
    with keys (the clocks), by its ``key``."""

    __slots__ = ("path", "message")

    def __init__(self, path: str, message):
        self.path, self.message = path, message

    def __str__(self) -> str:
        return str(self.message)


def at(path: str, message) -> Located:
    return Located(path, message)


@dataclass(frozen=True)
class Draft:
    """A definition being checked before it is saved: its ``key``, its fields as written (key → dict, only the
    well-formed ones) and its sections as parsed (a section that did not parse is missing from ``models``)."""

    key: str | None
    fields: Mapping[str, dict]
    models: Mapping[str, Any]
    broken: frozenset[str]

    def field(self, key) -> dict | None:
        return self.fields.get(key) if isinstance(key, str) else None

    def section(self, key: str):
        """The parsed section ``key``: its default when the definition has none, None when it is broken."""
        if key in self.broken:
            return None
        if key in self.models:
            return self.models[key]
        return registered(key).default()


class Section:
    """One section of a definition. Subclasses set ``key``, ``title`` and ``model`` and override what they use."""

    key: ClassVar[str]
    title: ClassVar[str]  # what the section is, for a person (shown next to the JSON Schema)
    model: ClassVar[type[BaseModel]]
    # Words for the items of the model's lists, by the list's name ("rules": "条" → "levels.rules 第 5 条").
    item_words: ClassVar[Mapping[str, str]] = {}
    empty: ClassVar[Any] = {}  # the stored value of a definition without the section

    # Stored paths ``summary`` reads (projected by the one light query of ``kefu.records.types.type_summaries``).
    summary_paths: ClassVar[tuple[str, ...]] = ()

    def summary(self, raw, fields: list[dict]) -> dict:
        """What this section adds to the type's summary (menus, pick lists), from its stored value ``raw`` and
        the stored ``fields`` (key, choices) — not parsed: summaries come from one light query."""
        return {}

    def default(self):
        """The model a definition without the section has (None: the section's rules do not apply)."""
        return None

    def parse(self, raw):
        """``raw`` (as stored or written) as the model; ``SectionInvalid`` naming each problem."""
        try:
            return self.model.model_validate(raw)
        except ValidationError as exc:
            located = _messages(self, raw, exc.errors())
            raise SectionInvalid([m for _p, m in located], paths=[p for p, _m in located]) from None

    def partial(self, raw):
        """The parts of a ``raw`` that does not parse as a whole which do (their ``problems`` are reported too),
        or None: by default nothing of a broken section is checked further."""
        return None

    def problems(self, draft: Draft, model) -> list:
        """What is wrong with ``model`` given the rest of the definition (messages for a person)."""
        return []

    def before_save(self, record_type, model, current: dict | None, after: dict, changed: set, *,
                    system: bool) -> None:
        """Refuse a change (``ValidationFailed``) before anything is written. ``current`` is the stored record
        (None for a new one), ``after`` its values after the change; ``system`` is true for a system move
        (``records.write.system_update``: a decision, a raise), which the workflow's allowed moves do not bind."""

    def after_save(self, record_type, model, document: dict, before: dict | None, changed: set, actor) -> dict | None:
        """Act on a saved change; return the record as stored afterwards when this hook read it fresh (the
        lifecycle returns the last one returned), else None. ``before``: the values before (None: new record)."""
        return None

    def after_event(self, record_type, model, record_id, kind: str, actor) -> None:
        """Act on a timeline event a person added to the record (a call, a visit …)."""

    def choice_references(self, owner, model, type_key: str, field_key: str) -> list[tuple[str, Any]]:
        """The values of the choice field ``field_key`` of type ``type_key`` that this section of type ``owner``
        (``model``: the section as parsed) names by their text, as ``(rule, value)`` pairs — ``rule`` says which
        rule, for a person ("时限“处理完成”的完成条件"). A choice such a rule names cannot be renamed
        (``kefu.records.choice_changes``): the rule would stop matching. None by default."""
        return []

    def json_schema(self) -> dict:
        """The model's JSON Schema; its titles and descriptions (lazy ``_l`` strings) in the current language."""
        return _plain({**self.model.model_json_schema(), "title": self.title})


def _plain(value):
    """``value`` with every lazy string made text (JSON Schemas carry the models' ``_l`` titles)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


_REGISTRY: dict[str, Section] = {}


def register(section: Section) -> None:
    """Add ``section`` at the end of the registry (registering a key again replaces it in place)."""
    _REGISTRY[section.key] = section


def sections() -> tuple[Section, ...]:
    """Every registered section, in registration order (the order the lifecycle runs their hooks). ``LookupError``
    when none is registered: a process that did not build its app with ``create_app`` would otherwise read every
    definition as if it had no rules."""
    if not _REGISTRY:
        raise LookupError("no definition section is registered: build the app with create_app "
                          "(it calls kefu.rules.register_sections())")
    return tuple(_REGISTRY.values())


def section_keys() -> tuple[str, ...]:
    return tuple(section.key for section in sections())


def registered(key: str) -> Section:
    try:
        return _REGISTRY[key]
    except KeyError:
        raise LookupError(f"no definition section {key!r} is registered (kefu.rules.register_sections() "
                          f"registers them; known: {', '.join(_REGISTRY) or 'none'})") from None


def parsed(record_type, key: str):
    """The section ``key`` of a loaded definition as its model (the section's default when the definition has
    none), parsed once while the stored value is the same object."""
    section = registered(key)
    raw = record_type.section_data(key)

    def build(value):
        if value in (None, {}, []):
            return section.default()
        try:
            return section.parse(value)
        except SectionInvalid as exc:
            raise SectionInvalid(exc.messages, _l(
                "记录类型“%(type)s”的 %(section)s 设置无法使用：%(problems)s。请管理员在“记录类型”中修改后再试",
                type=record_type.name, section=key, problems="；".join(exc.messages))) from None

    return record_type.derived(f"section:{key}", raw, build)


def workflow_of(record_type):
    """The type's workflow (``statuses``, ``initial``, ``closed``, ``is_closed`` …): what a record's status
    may be, as the registered ``workflow`` section has it. The one way every area reads a type's workflow."""
    return parsed(record_type, WORKFLOW)


def usable(record_type) -> bool:
    """Whether every stored section of ``record_type`` parses. Work across types (the sweep, reports, recomputes,
    duties) leaves a type that does not out, logged, instead of failing for all: its records wait until an admin
    fixes the definition (every start names it, ``stored_problems``)."""
    try:
        for section in sections():
            parsed(record_type, section.key)
    except SectionInvalid as exc:
        log.warning("record type %s left out until its definition is fixed: %s", record_type.key, exc)
        return False
    return True


def stored_problems(record_type) -> dict[str, str]:
    """What keeps the stored sections of ``record_type`` from parsing: section key → its messages joined ({}
    when every one parses). Parsed afresh, not through the ``parsed`` cache, so nothing broken is kept."""
    found = {}
    for section in sections():
        raw = record_type.section_data(section.key)
        if raw in (None, {}, []):
            continue
        try:
            section.parse(raw)
        except SectionInvalid as exc:
            found[section.key] = "；".join(exc.messages)
    return found


def _checked(data: Mapping) -> dict[str, list]:
    """Every problem of the sections of ``data``: section key → its problems (``Located`` or messages).

    Every section present is parsed first; then each one that parsed runs its ``problems`` against the draft
    (the fields, and the other sections as parsed — a broken one is not consulted)."""
    written = data.get("fields")
    fields = {f["key"]: f for f in written if isinstance(f, dict) and isinstance(f.get("key"), str)} \
        if isinstance(written, list) else {}
    present = [section for section in sections() if data.get(section.key) not in (None, {}, [])]
    models, partial, found = {}, {}, {}
    for section in present:
        try:
            models[section.key] = section.parse(data[section.key])
        except SectionInvalid as exc:
            found[section.key] = [at(path, message) for path, message in zip(exc.paths, exc.messages)]
            partial[section.key] = section.partial(data[section.key])
    draft = Draft(key=data.get("key"), fields=fields, models=models, broken=frozenset(found))
    checked = {**{k: m for k, m in partial.items() if m is not None}, **models}
    for key, model in checked.items():
        problems = list(registered(key).problems(draft, model))
        if problems:
            found[key] = [*found.get(key, []), *problems]
    return found


def definition_problems(data: Mapping) -> dict[str, str]:
    """What is wrong with the sections of definition ``data`` (as written): section key → its messages joined."""
    return {key: "；".join(str(p) for p in problems) for key, problems in _checked(data).items()}


def problem_paths(definition: Mapping) -> dict[str, str]:
    """Where each problem of the sections of ``definition`` is: the path of the value it is about → its messages
    joined. Paths are dotted, list items by position ("sla.0.within", "levels.rules.2.units", "workflow.initial");
    a problem about a section as a whole is at the section's key."""
    found: dict[str, list[str]] = {}
    for key, problems in _checked(definition).items():
        for problem in problems:
            path = _positional(getattr(problem, "path", key) or key, definition)
            found.setdefault(path, []).append(str(problem))
    return {path: "；".join(messages) for path, messages in found.items()}


def _positional(path: str, definition: Mapping) -> str:
    """``path`` with a list item named by its ``key`` ("sla.resolve.start") named by its position ("sla.0.start");
    a segment no item has is kept as written."""
    node, segments = definition, []
    for segment in path.split("."):
        if isinstance(node, list):
            if not (segment.isascii() and segment.isdecimal()):
                segment = next((str(n) for n, item in enumerate(node)
                                if isinstance(item, dict) and item.get("key") == segment), segment)
            node = node[int(segment)] if segment.isascii() and segment.isdecimal() and int(segment) < len(node) else None
        else:
            node = node.get(segment) if isinstance(node, Mapping) else None
        segments.append(segment)
    return ".".join(segments)


# -- shape errors as Chinese messages -------------------------------------------------------------------------

# A list item's ordinal after its list's name, by the section's word for the items ("levels.rules 第 5 条");
# "{n}" is the number (English: "levels.rules #5").
ORDINALS = {"个": _l(" 第 {n} 个"), "条": _l(" 第 {n} 条"), "档": _l(" 第 {n} 档"), "项": _l(" 第 {n} 项")}


def _where(section: Section, raw, loc: tuple) -> str:
    """The path of ``loc`` for a person: names joined by dots, list items as ordinals (``第 2 档``).

    Segments pydantic inserts that are not in the data (the tag of a tagged union) are left out."""
    text, node, parent_name, after_item = section.key, raw, section.key, False
    for position, segment in enumerate(loc):
        if segment == "[key]":  # the error is about the key just named, not a value under it
            continue
        if isinstance(segment, int) and not isinstance(node, dict):
            ordinal = ORDINALS.get(section.item_words.get(parent_name), ORDINALS["项"])
            text += str(ordinal).replace("{n}", str(segment + 1))
            node = node[segment] if isinstance(node, list) and segment < len(node) else None
            after_item = True
            continue
        if isinstance(node, dict) and segment not in node and position < len(loc) - 1:
            continue  # a tag pydantic added (the tagged union's member), not a key of the data
        text += str(_l("的 %(key)s", key=segment)) if after_item else f".{segment}"
        node = node.get(segment) if isinstance(node, dict) else None
        parent_name, after_item = segment, False
    return text


def _path(section: Section, raw, loc: tuple) -> str:
    """The dotted path of ``loc`` in ``raw`` ("sla.0.within"): what ``_where`` says for a person, for a program
    (the tags of tagged unions and ``[key]`` left out the same way)."""
    parts, node = [section.key], raw
    for position, segment in enumerate(loc):
        if segment == "[key]":
            continue
        if isinstance(segment, int) and not isinstance(node, dict):
            node = node[segment] if isinstance(node, list) and segment < len(node) else None
        elif isinstance(node, dict) and segment not in node and position < len(loc) - 1:
            continue
        else:
            node = node.get(segment) if isinstance(node, dict) else None
        parts.append(str(segment))
    return ".".join(parts)


def _messages(section: Section, raw, errors: list[dict]) -> list[tuple[str, str]]:
    """Each error as ``(path, message)``: the path of the value it is about, and the message naming it."""
    messages, extra = [], {}
    for error in errors:
        loc = tuple(error["loc"])
        kind, context = error["type"], error.get("ctx") or {}
        if kind == "extra_forbidden":
            extra.setdefault((_path(section, raw, loc[:-1]), _where(section, raw, loc[:-1])), []).append(str(loc[-1]))
            continue
        if kind == "missing":
            messages.append((_path(section, raw, loc), str(_l("%(where)s 缺少 %(key)s",
                                                              where=_where(section, raw, loc[:-1]), key=loc[-1]))))
            continue
        problem = context["text"] if kind == SECTION_ERROR else _problem(kind, context)
        where = _where(section, raw, loc)
        messages.append((_path(section, raw, loc),
                         f"{where}{problem}" if problem.startswith(".") else f"{where} {problem}"))
    for (path, where), keys in extra.items():
        messages.append((path, str(_l("%(where)s 有不认识的项：%(keys)s", where=where, keys="、".join(keys)))))
    return messages


def _problem(kind: str, context: dict) -> str:
    """What a pydantic error ``kind`` means, in Chinese (the value's shape, never pydantic's own words)."""
    if kind in ("greater_than_equal", "greater_than"):
        bound = context.get("ge", context.get("gt"))
        if kind == "greater_than":
            return str(_l("应为大于 %(bound)s 的数", bound=bound))
        return str(_l("应为不小于 %(bound)s 的整数", bound=bound))
    if kind == "literal_error":
        return str(_l("应为以下之一：%(expected)s", expected=context.get("expected", "").replace("'", "")))
    if kind == "union_tag_invalid":
        return str(_l("的 %(tag)s“%(value)s”不存在；可用：%(expected)s", tag=context.get("discriminator", "").strip("'"),
                      value=context.get("tag", ""), expected=context.get("expected_tags", "").replace("'", "")))
    if kind == "union_tag_not_found":
        return str(_l("缺少 %(tag)s", tag=context.get("discriminator", "").strip("'")))
    if kind == "too_short":
        return str(_l("不能为空"))
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return str(_l("应为整数"))
    if kind in ("string_type", "string_too_short"):
        return str(_l("应为文字（不能为空）"))
    if kind in ("list_type", "tuple_type"):
        return str(_l("应为列表"))
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return str(_l("应为“名称: 内容”的对象"))
    if kind == "bool_type":
        return str(_l("应为 true 或 false"))
    return str(_l("格式不正确"))
