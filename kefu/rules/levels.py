"""Complaint levels as rules (the ``levels:`` section): levels rise automatically, never fall without a person.

```yaml
levels:
  field: level                   # the choice field holding the level
  order: [一般, 重要, 重大]       # ascending; a value not listed (无效) is never raised automatically
  rules:                         # each one, when it holds, raises the record to its ``level``
    - {rule: at_least, field: claim_amount, value: 20000, level: 重大, reason: 客户索赔 2 万元及以上}
    - {rule: flag, field: safety_risk, level: 重大, reason: 涉及客户安全}
    - {rule: same_issue_units, field: category, project_field: project, unit_field: unit, units: 5,
       within_days: 30, level: 重大, reason: 同一项目同类投诉来自 5 户及以上}
    - {rule: repeat_customer, field: category, customer_field: phone, count: 2, level: 重要}
    - {rule: communications, kinds: [call, visit], count: 3, level: 重要}
    - {rule: open_longer, from: 重要, months: 3, start: received_at, level: 重大}
  on_rejected: {steps: 1}        # the customer rejects the result: this many levels up, back to ``rework``
```

The rules (``reason`` is optional everywhere; it is the timeline's text, a default names the rule):

- ``at_least``: the number field ``field`` (money, decimal, integer) is at least ``value``.
- ``flag``: the yes/no field ``field`` is 是.
- ``same_issue_units``: records of this type with the same ``field`` in the same ``project_field`` come from
  at least ``units`` different ``unit_field`` values, registered within the ``within_days`` days up to the
  saved record's registration (optional: no window). Every open record of that group is raised.
- ``repeat_customer``: the same customer (``customer_field``: a configured field, compared through its blind
  index when sensitive, or the core ``customer``) has at least ``count`` records with the same ``field``
  (within ``within_days``, optional); the record that makes the count is raised.
- ``communications``: the record has at least ``count`` timeline events of ``kinds`` (``call``, ``visit`` …) and
  is still open (no agreement yet). Counted when such an event is added (``after_event``).
- ``open_longer``: a record at level ``from`` still open ``months`` after ``start`` (a date or date-time field;
  default: its registration). Run daily by ``escalate_by_age``.

Records at a value outside ``order`` (无效) and closed records are never raised automatically, and a rule never
lowers a level. Each rule raises a record once: the rules that raised it are kept in ``level_rules``, so a
level a person set afterwards (lower, through the normal edit) stands. A raise is written through
``kefu.records.write.system_update`` as a timeline event of kind ``level`` with its reason; the lifecycle then
recomputes the SLA clocks, so the new level's deadlines apply at once. The rules that read field values run only
when one of their fields changed, so a raise (which changes only the level) triggers no further rule.
"""
from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from pydantic import Field, StrictInt, StrictStr, model_validator

from kefu.core.clock import utcnow
from kefu.core.db import get_database, transactional
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l
from kefu.org.roles import Action
from kefu.records.actor import system_actor
from kefu.records.engine_state import claim_level_rules, release_level_rules
from kefu.records.fields import get_field_type
from kefu.records.sections import Section, SectionModel, at, parsed, refuse, usable, workflow_of
from kefu.records.store import RECORDS, get_record, get_record_for
from kefu.records.timeline import EVENT_KINDS, MANUAL_EVENT_KINDS, record_event
from kefu.records.types import RecordType, get_record_type
from kefu.records.write import system_update
from kefu.rules.level_rules import (
    AnyRule, AtLeast, Communications, Flag, OpenLonger, RepeatCustomer, Rule, SameIssueUnits,
)
from kefu.rules.shapes import SINGLE_CHOICE, FieldKind, Name, picker

CORE_CUSTOMER = "customer"  # the record's own link to the customer archive
DEFAULT_LEVEL_FIELD = "level"  # also the SLA clocks' default ``level_field``
# The rules a save evaluates (the others run on a new timeline event or in the daily job).
SAVE_RULES = ("at_least", "flag", "same_issue_units", "repeat_customer")
EVENTS = "record_events"
APPLIED = "level_rules"  # on a record: ids of the rules that raised it (each raises a record once)


class OnRejected(SectionModel):
    steps: StrictInt = Field(1, ge=1, title=_l("客户不接受处理结果时升几级"))


class Levels(SectionModel):
    """The ``levels:`` section."""

    field: StrictStr = Field(title=_l("等级字段"), description=_l("保存等级的选项字段"),
                             json_schema_extra=picker("field", "choice"))
    order: tuple[Name, ...] = Field(min_length=1, title=_l("等级顺序"), description=_l("由低到高的等级"),
                                    json_schema_extra=picker("level_order"))
    rules: tuple[AnyRule, ...] = Field((), title=_l("升级规则"))
    on_rejected: OnRejected = Field(OnRejected(), title=_l("客户不接受时"))

    @model_validator(mode="after")
    def _distinct_levels(self):
        if len(set(self.order)) != len(self.order):
            raise refuse(_l(".order 有重复的等级"))
        return self

    @property
    def steps(self) -> int:
        return self.on_rejected.steps

    @property
    def top(self) -> str:
        """The highest level."""
        return self.order[-1]

    def rank(self, level) -> int | None:
        """Position in ``order`` (-1 for no level yet); None for a value outside it, which is never raised."""
        if level in (None, ""):
            return -1
        return self.order.index(level) if level in self.order else None

    def above(self, target: str, level) -> bool:
        """Whether ``target`` is a raise from ``level``."""
        rank = self.rank(level)
        return rank is not None and self.order.index(target) > rank

    def stepped(self, level, steps: int):
        """``steps`` levels up from ``level``, capped at the top; a value outside ``order`` stays."""
        rank = self.rank(level)
        if rank is None:
            return level
        return self.order[min(rank + steps, len(self.order) - 1)]

    def excluded(self, record_type) -> list[str]:
        """The level field's values outside ``order`` (records at them do not count)."""
        definition = record_type.field(self.field)
        return [c for c in (definition.choices if definition else []) if c not in self.order]


def rules_of(record_type) -> Levels | None:
    """The type's level rules, or None when it has no ``levels:`` section."""
    return parsed(record_type, LevelsSection.key)


class LevelsSection(Section):
    """``levels:``: raise levels after a save and after a timeline event; name the level field in summaries."""

    key = "levels"
    title = _l("等级规则")
    model = Levels
    item_words = {"rules": "条"}
    summary_paths = ("levels.field", "levels.order")

    def summary(self, raw, fields):
        field = (raw or {}).get("field") or DEFAULT_LEVEL_FIELD
        level = next((f for f in fields if f.get("key") == field), {})
        return {"level_field": field, "levels": tuple(level.get("choices") or ()),
                "level_order": tuple((raw or {}).get("order") or ())}

    def problems(self, draft, model: Levels) -> list:
        problems, level_field = [], draft.field(model.field)
        choices: list = []
        if level_field is None:
            choice_fields = "、".join(k for k, f in draft.fields.items() if f.get("type") in SINGLE_CHOICE) or "-"
            problems.append(at("levels.field", _l("levels.field 应为本类型的选项字段；“%(field)s”不存在（可用：%(fields)s）",
                                                  field=model.field, fields=choice_fields)))
        elif level_field.get("type") not in SINGLE_CHOICE or level_field.get("sensitive"):
            problems.append(at("levels.field", _l("levels.field“%(field)s”应为选项字段（choice），且不能是敏感字段",
                                                  field=model.field)))
        else:
            choices = list(level_field.get("choices") or [])
        if choices and [v for v in model.order if v not in choices]:
            problems.append(at("levels.order", _l("levels.order 中的“%(levels)s”不是“%(field)s”的可选项（%(choices)s）",
                                                  levels="、".join(v for v in model.order if v not in choices),
                                                  field=level_field.get("label"), choices="、".join(choices))))
        for n, rule in enumerate(model.rules, start=1):
            problems.extend(_rule_problems(n, rule, draft, model))
        return problems

    def after_save(self, record_type, model, document, before, changed, actor):
        if model is not None:
            _after_save(record_type, model, document, changed)

    def after_event(self, record_type, model, record_id, kind, actor):
        if model is not None:
            _count_communications(record_type, model, record_id, kind)


def _rule_problems(n: int, rule: Rule, draft, levels: Levels) -> list:
    """The problems of the ``n``-th rule (from 1), each at the path of the value it is about."""
    where, problems = f"levels.rules.{n - 1}", []
    for problem, key in _rule_messages(n, rule, draft, levels):
        problems.append(at(f"{where}.{key}" if key else where, problem))
    return problems


def _rule_messages(n: int, rule: Rule, draft, levels: Levels) -> list[tuple]:
    """``(message, key)`` pairs: ``key`` the rule's setting the message is about (None: the rule as a whole)."""
    order, problems = levels.order, []
    for key, level in (("level", rule.level), ("from", getattr(rule, "from_", None))):
        if level is not None and level not in order:
            problems.append((_l("levels.rules 第 %(n)s 条的 %(key)s“%(level)s”不在 levels.order 中（%(order)s）",
                                n=n, key=key, level=level, order="、".join(order)), key))
    if isinstance(rule, Communications) and not all(k in MANUAL_EVENT_KINDS for k in rule.kinds):
        problems.append((_l("levels.rules 第 %(n)s 条的 kinds 应为过程记录类型列表；可用：%(kinds)s", n=n,
                            kinds="、".join(f"{k}（{EVENT_KINDS[k]}）" for k in MANUAL_EVENT_KINDS)), "kinds"))
    for key, kind in rule.field_kinds.items():
        value = getattr(rule, key)
        if value is not None:
            problems.extend((message, key) for message in _field_problems(
                n, key, value, kind, draft, levels.field, allow_sensitive=key == "customer_field"))
    if isinstance(rule, OpenLonger) and rule.from_ in order and rule.level in order \
            and order.index(rule.from_) >= order.index(rule.level):
        problems.append((_l("levels.rules 第 %(n)s 条的 level“%(level)s”应高于 from“%(from_level)s”", n=n,
                            level=rule.level, from_level=rule.from_), "level"))
    return problems


def _field_problems(n: int, key: str, value, kind: FieldKind, draft, level_key, *, allow_sensitive: bool) -> list:
    if allow_sensitive and value == CORE_CUSTOMER:
        return []
    field = draft.field(value)
    if field is None:
        return [_l("levels.rules 第 %(n)s 条的 %(key)s：本类型没有字段“%(field)s”", n=n, key=key, field=value)]
    if value == level_key:
        return [_l("levels.rules 第 %(n)s 条不能使用等级字段“%(field)s”本身", n=n, field=value)]
    if field.get("type") not in kind or (field.get("sensitive") and not allow_sensitive):
        return [_l("levels.rules 第 %(n)s 条的 %(key)s“%(field)s”应为非敏感的 %(types)s 字段", n=n, key=key,
                   field=value, types="/".join(kind))]
    return []


# -- evaluating ---------------------------------------------------------------------------------------

def level_field(record_type) -> str:
    """The key of the field holding a record's level: the type's ``levels.field``, else ``level``."""
    rules = rules_of(record_type)
    return rules.field if rules is not None else DEFAULT_LEVEL_FIELD


def level_of(record_type, document: dict):
    """The record's level as stored (None when it has none)."""
    return (document.get("data") or {}).get(level_field(record_type))


def top_level(record_type) -> str | None:
    """The type's highest level (the 重大 of the shipped packs): the last of ``levels.order`` when the type has a
    ``levels:`` section, else the last choice of its ``level`` field, else None (the type has no levels)."""
    rules = rules_of(record_type)
    if rules is not None:
        return rules.top
    field = record_type.field(DEFAULT_LEVEL_FIELD)
    return field.choices[-1] if field is not None and field.choices else None


def _is_open(record_type, document: dict) -> bool:
    return not workflow_of(record_type).is_closed(document.get("status"))


def _stored(document: dict, key: str):
    return (document.get("data") or {}).get(key)


def _value(record_type, document: dict, key: str):
    definition = record_type.field(key)
    stored = _stored(document, key)
    return None if definition is None or stored is None else get_field_type(definition.type).from_storage(stored)


def _counted(record_type, rules: Levels) -> dict:
    """The condition for records that count in a group: not at a level outside ``order`` (无效)."""
    excluded = rules.excluded(record_type)
    return {f"data.{rules.field}": {"$nin": excluded}} if excluded else {}


def _window(rule: Rule, document: dict) -> dict:
    """``created_at`` within the rule's ``within_days`` up to the saved record's registration."""
    days = getattr(rule, "within_days", None)
    if not days:
        return {}
    end = document["created_at"]
    return {"created_at": {"$gte": end - timedelta(days=days), "$lte": end}}


def _group(record_type, rules: Levels, rule: SameIssueUnits, document: dict) -> dict | None:
    """The query for the records of a ``same_issue_units`` rule: same value, same project, a unit filled in (this one
    included); None when the saved record has no such group."""
    same, project = _stored(document, rule.field), _stored(document, rule.project_field)
    if same in (None, "") or project is None or _stored(document, rule.unit_field) is None:
        return None
    return {"type": record_type.key, f"data.{rule.field}": same, f"data.{rule.project_field}": project,
            f"data.{rule.unit_field}": {"$ne": None}, **_window(rule, document), **_counted(record_type, rules)}


def _group_units(query: dict, rule: SameIssueUnits) -> int:
    """How many different units the group holds, counted by MongoDB up to ``rule.units`` (no record is sent here:
    an import of thousands of records of one issue made each save read the whole group)."""
    pipeline = [{"$match": query}, {"$group": {"_id": f"$data.{rule.unit_field}"}}, {"$limit": rule.units},
                {"$count": "units"}]
    counted = list(get_database()[RECORDS].aggregate(pipeline))
    return counted[0]["units"] if counted else 0


def _to_raise(record_type, rules: Levels, rule: SameIssueUnits, query: dict) -> dict:
    """Of a group's records, those the rule may still raise: open, below its level, not raised by it before."""
    at_or_above = list(rules.order[rules.order.index(rule.level):])
    return {**query, APPLIED: {"$ne": rule.id}, "status": {"$nin": list(workflow_of(record_type).closed)},
            f"data.{rules.field}": {"$nin": [*rules.excluded(record_type), *at_or_above]}}


def _repeats(record_type, rules: Levels, rule: RepeatCustomer, document: dict) -> bool:
    """Whether the customer has ``count`` records with the same value (this one included)."""
    same, key = _stored(document, rule.field), rule.customer_field
    definition = record_type.field(key)
    if key == CORE_CUSTOMER and definition is None:
        path, customer = "customer", document.get("customer")
    elif definition is not None and definition.sensitive:
        path, customer = f"bidx.{key}", (document.get("bidx") or {}).get(key)
    else:
        path, customer = f"data.{key}", _stored(document, key)
    if same in (None, "") or customer in (None, ""):
        return False
    query = {"type": record_type.key, path: customer, f"data.{rule.field}": same, **_window(rule, document),
             **_counted(record_type, rules)}
    return get_database()[RECORDS].count_documents(query, limit=rule.count) >= rule.count


def _holds(record_type, rules: Levels, rule: Rule, document: dict) -> bool:
    """Whether a rule a save evaluates holds for ``document`` (a ``same_issue_units`` one raises the other
    records of its group on the way)."""
    if isinstance(rule, AtLeast):
        value = _value(record_type, document, rule.field)
        return value is not None and Decimal(str(value)) >= rule.value
    if isinstance(rule, Flag):
        return _value(record_type, document, rule.field) is True
    if isinstance(rule, RepeatCustomer):
        return _repeats(record_type, rules, rule, document)
    group = _group(record_type, rules, rule, document)
    if group is None or _group_units(group, rule) < rule.units:
        return False
    for member in get_database()[RECORDS].find(_to_raise(record_type, rules, rule, group), {"_id": 1}):
        if member["_id"] != document["_id"]:
            raise_level(record_type, member["_id"], [rule])
    return True


def _after_save(record_type, rules: Levels, document: dict, changed) -> None:
    """Evaluate the rules whose fields ``changed``; raise this record (and, for ``same_issue_units``, the other
    records of the group). Idempotent: a rule raises a record once, and only upwards."""
    triggered = [r for r in rules.rules if r.rule in SAVE_RULES and r.keys() & set(changed)]
    holding = [rule for rule in triggered if _holds(record_type, rules, rule, document)]
    if holding:
        raise_level(record_type, document["_id"], holding)


def _count_communications(record_type, rules: Levels, record_id, kind: str) -> None:
    """A timeline event was added: count the record's communications (``communications`` rules of ``kind``)."""
    counting = [r for r in rules.rules if isinstance(r, Communications) and kind in r.kinds]
    if not counting:
        return
    document = get_record(record_type.key, record_id)
    events = get_database()[EVENTS]
    holding = [r for r in counting
               if events.count_documents({"record_id": document["_id"], "kind": {"$in": list(r.kinds)}},
                                         limit=r.count) >= r.count]
    if holding:
        raise_level(record_type, document["_id"], holding)


@transactional
def raise_level(record_type, record_id, holding: list[Rule]) -> bool:
    """Raise the record to the highest level the ``holding`` rules name, when that is a raise, the record is
    open, and those rules have not raised it before; True when it was raised now.

    The rules are noted on the record (``level_rules``) with the change, in one transaction (a daily escalation
    that fails leaves no note that would skip the record tomorrow), so concurrent runs raise once; the change itself
    is made only while the stored level is still below the target (never a fall).
    """
    rules = rules_of(record_type)
    document = get_record(record_type.key, record_id)
    if not _is_open(record_type, document):
        return False
    level = level_of(record_type, document)
    applied = set(document.get(APPLIED) or ())
    pending = [r for r in holding if r.id not in applied and rules.above(r.level, level)]
    if not pending:
        return False
    target = max((r.level for r in pending), key=rules.order.index)
    ids = sorted({r.id for r in pending})
    if not claim_level_rules(document["_id"], ids):
        return False  # another run is raising it for these rules
    reasons = list(dict.fromkeys(r.reason_text(record_type) for r in pending if r.level == target))
    text = _l("等级 %(before)s → %(after)s：%(reason)s", before=level or "-", after=target, reason="；".join(reasons))
    updated = system_update(record_type.key, document["_id"], {rules.field: target}, system_actor(),
                            event_kind="level", event_text=str(text),
                            when=lambda current: rules.above(target, level_of(record_type, current)))
    if updated is None:  # someone raised it at least as far in the meantime
        release_level_rules(document["_id"], ids)
        return False
    return True


def months_before(moment: datetime, months: int, tz) -> datetime:
    """The same local day and time ``months`` calendar months earlier (the month's last day when shorter), UTC."""
    local = moment.astimezone(tz)
    year, month = divmod(local.year * 12 + local.month - 1 - months, 12)
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day).astimezone(timezone.utc)


def escalate_by_age(now: datetime | None = None) -> int:
    """Raise the open records at an ``open_longer`` rule's ``from`` level older than its ``months`` (the daily
    job); return how many were raised. One indexed query per rule: type, open statuses, level, start."""
    now = now or utcnow()
    tz = system_actor().tz
    raised = 0
    for record_type in filter(usable, RecordType.objects(__raw__={"levels.rules.rule": "open_longer"})):
        rules = rules_of(record_type)
        open_statuses = list(workflow_of(record_type).open_statuses)
        for rule in (r for r in rules.rules if isinstance(r, OpenLonger)):
            start_path = f"data.{rule.start}" if rule.start else "created_at"
            query = {"type": record_type.key, "status": {"$in": open_statuses}, f"data.{rules.field}": rule.from_,
                     start_path: {"$lte": months_before(now, rule.months, tz)}, APPLIED: {"$ne": rule.id}}
            for document in get_database()[RECORDS].find(query, {"_id": 1}):
                raised += raise_level(record_type, document["_id"], [rule])
    return raised


# -- the customer rejects the result ------------------------------------------------------------------

def rejection_preview(record_type, document: dict) -> dict:
    """What ``customer_rejected`` would do now: ``{level, new_level, status}`` (levels None without a section)."""
    rules = rules_of(record_type)
    level = level_of(record_type, document) if rules else None
    return {"level": level, "new_level": rules.stepped(level, rules.steps) if rules else None,
            "status": workflow_of(record_type).rework}


@transactional
def customer_rejected(type_key: str, record_id, actor, note: str) -> dict:
    """The customer does not accept the result (004 投诉处理 2; a 回访 不满意): ``on_rejected.steps`` levels up
    (capped at the top of ``order``) and back to the workflow's ``rework`` status, with one timeline event
    (kind ``level``) giving ``note``. A person's act, so it applies to closed records too, and only to records
    ``actor`` may edit (``NotFound`` out of their scope, ``PermissionDenied`` when they may only read it). Returns
    the record."""
    record_type = get_record_type(type_key, active_only=False)
    document = get_record_for(type_key, record_id, actor.access, Action.EDIT.value)
    note = (note or "").strip()
    if not note:
        message = _l("请填写客户不接受处理结果的原因")
        raise ValidationFailed(message, {"note": message})
    preview = rejection_preview(record_type, document)
    values = {}
    if preview["new_level"] != preview["level"]:
        values[rules_of(record_type).field] = preview["new_level"]
        change = _l("等级 %(before)s → %(after)s", before=preview["level"] or "-", after=preview["new_level"])
    elif preview["level"]:
        change = _l("等级仍为 %(level)s", level=preview["level"])
    else:
        change = None
    if document.get("status") != preview["status"]:
        values["status"] = preview["status"]
    parts = [str(_l("客户不接受处理结果：%(note)s", note=note))]
    if change is not None:
        parts.append(str(change))
    parts.append(str(_l("退回“%(status)s”重新处理", status=preview["status"])))
    text = "；".join(parts)
    if not values:
        record_event(type_key, document["_id"], "level", actor, text=text)
        return get_record(type_key, document["_id"])
    return system_update(type_key, document["_id"], values, actor, event_kind="level", event_text=text)
