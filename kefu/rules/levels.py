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
``kefu.records.store.system_update`` as a timeline event of kind ``level`` with its reason; the lifecycle then
recomputes the SLA clocks, so the new level's deadlines apply at once. The rules that read field values run only
when one of their fields changed, so a raise (which changes only the level) triggers no further rule.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l
from kefu.rules.workflow import workflow_of

SECTION_KEYS = ("field", "order", "rules", "on_rejected")
COMMON_RULE_KEYS = ("rule", "level", "reason")
NUMBER_TYPES = ("money", "decimal", "integer")
SAME_VALUE_TYPES = ("choice", "text")
CUSTOMER_TYPES = ("customer", "phone", "id_number", "email", "text")
START_TYPES = ("datetime", "date")
CORE_CUSTOMER = "customer"  # the record's own link to the customer archive

# rule → {key: (what the key holds, required)}; what: ("field", types) / ("number",) / ("int", minimum) /
# ("level",) / ("kinds",)
RULE_SPECS = {
    "at_least": {"field": (("field", NUMBER_TYPES), True), "value": (("number",), True)},
    "flag": {"field": (("field", ("boolean",)), True)},
    "same_issue_units": {"field": (("field", SAME_VALUE_TYPES), True), "project_field": (("field", ("project",)), True),
                         "unit_field": (("field", ("unit",)), True), "units": (("int", 2), True),
                         "within_days": (("int", 1), False)},
    "repeat_customer": {"field": (("field", SAME_VALUE_TYPES), True),
                        "customer_field": (("customer_field", CUSTOMER_TYPES), True), "count": (("int", 2), True),
                        "within_days": (("int", 1), False)},
    "communications": {"kinds": (("kinds",), True), "count": (("int", 1), True)},
    "open_longer": {"from": (("level",), True), "months": (("int", 1), True),
                    "start": (("field", START_TYPES), False)},
}
# The rules a save evaluates (the others run on a new timeline event or in the daily job).
SAVE_RULES = ("at_least", "flag", "same_issue_units", "repeat_customer")
RECORDS = "records"
EVENTS = "record_events"
APPLIED = "level_rules"  # on a record: ids of the rules that raised it (each raises a record once)


@dataclass(frozen=True)
class Rule:
    """One entry of ``levels.rules`` as written."""

    rule: str
    level: str
    spec: dict = dataclass_field(default_factory=dict)

    @property
    def id(self) -> str:
        """Stable while the rule means the same: its name, what it reads and the level it raises to."""
        reads = self.spec.get("field") or "+".join(self.spec.get("kinds") or ()) or self.spec.get("from") or ""
        return f"{self.rule}:{reads}:{self.level}"

    def keys(self) -> set[str]:
        """The record keys whose change makes a save evaluate this rule."""
        return {self.spec[key] for key in ("field", "project_field", "unit_field", "customer_field")
                if self.spec.get(key)}

    def reason(self, record_type) -> str:
        if self.spec.get("reason"):
            return str(self.spec["reason"])
        label = _field_label(record_type, self.spec.get("field"))
        if self.rule == "at_least":
            return str(_l("“%(label)s”达到 %(value)s", label=label, value=self.spec["value"]))
        if self.rule == "flag":
            return str(_l("“%(label)s”为是", label=label))
        if self.rule == "same_issue_units":
            return str(_l("同一项目同类投诉来自 %(n)s 户及以上", n=self.spec["units"]))
        if self.rule == "repeat_customer":
            return str(_l("同一客户 %(n)s 次及以上投诉同类问题", n=self.spec["count"]))
        if self.rule == "communications":
            return str(_l("沟通 %(n)s 次仍未协调一致", n=self.spec["count"]))
        return str(_l("“%(level)s”超过 %(n)s 个月未关闭", level=self.spec["from"], n=self.spec["months"]))


@dataclass(frozen=True)
class Levels:
    field: str
    order: tuple[str, ...]
    rules: tuple[Rule, ...]
    steps: int  # on_rejected

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
    section = getattr(record_type, "levels", None) or {}
    if not section:
        return None
    rules = tuple(Rule(rule=entry["rule"], level=entry["level"], spec=dict(entry)) for entry in section.get("rules") or ())
    return Levels(field=section["field"], order=tuple(section["order"]), rules=rules,
                  steps=int((section.get("on_rejected") or {}).get("steps", 1)))


def _field_label(record_type, key) -> str:
    definition = record_type.field(key) if key else None
    return definition.label if definition is not None else str(key or "")


# -- definition checks -------------------------------------------------------------------------------

def _positive_number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return False
    return number.is_finite() and number > 0


def section_problems(section, definition: dict) -> list:
    """What is wrong with a ``levels:`` section, as messages for a person (empty when it is fine)."""
    if not isinstance(section, dict):
        return [_l("levels 应为包含 field、order、rules 的对象")]
    problems = []
    unknown = sorted(set(section) - set(SECTION_KEYS))
    if unknown:
        problems.append(_l("levels 有不认识的项：%(keys)s", keys="、".join(map(str, unknown))))
    fields = {f.get("key"): f for f in definition.get("fields") or [] if isinstance(f, dict)}
    level_key = section.get("field")
    level_field = fields.get(level_key) if isinstance(level_key, str) else None
    choices: list = []
    if level_field is None:
        choice_fields = "、".join(k for k, f in fields.items() if f.get("type") == "choice") or "-"
        problems.append(_l("levels.field 应为本类型的选项字段；“%(field)s”不存在（可用：%(fields)s）",
                           field=level_key if level_key is not None else "", fields=choice_fields))
    elif level_field.get("type") != "choice" or level_field.get("sensitive"):
        problems.append(_l("levels.field“%(field)s”应为选项字段（choice），且不能是敏感字段", field=level_key))
    else:
        choices = list(level_field.get("choices") or [])
    order = section.get("order")
    if not isinstance(order, list) or not order or not all(isinstance(v, str) and v.strip() for v in order):
        return [*problems, _l("levels.order 应为由低到高的等级列表，如 [一般, 重要, 重大]")]
    if len(set(order)) != len(order):
        problems.append(_l("levels.order 有重复的等级"))
    if choices and [v for v in order if v not in choices]:
        problems.append(_l("levels.order 中的“%(levels)s”不是“%(field)s”的可选项（%(choices)s）",
                           levels="、".join(v for v in order if v not in choices), field=level_field.get("label"),
                           choices="、".join(choices)))
    on_rejected = section.get("on_rejected", {"steps": 1})
    steps = on_rejected.get("steps", 1) if isinstance(on_rejected, dict) else None
    if not isinstance(on_rejected, dict) or set(on_rejected) - {"steps"} or isinstance(steps, bool) \
            or not isinstance(steps, int) or steps < 1:
        problems.append(_l("levels.on_rejected 应为 {steps: 1} 这样的对象：客户不接受时升几级（不小于 1 的整数）"))
    rules = section.get("rules", [])
    if not isinstance(rules, list):
        return [*problems, _l("levels.rules 应为规则列表")]
    for position, entry in enumerate(rules, start=1):
        problems.extend(_rule_problems(position, entry, fields, order, level_key))
    return problems


def _rule_problems(n: int, entry, fields: dict, order: list, level_key) -> list:
    from kefu.records.timeline import EVENT_KINDS, MANUAL_EVENT_KINDS

    if not isinstance(entry, dict):
        return [_l("levels.rules 第 %(n)s 条格式不正确", n=n)]
    name = entry.get("rule")
    if name not in RULE_SPECS:
        return [_l("levels.rules 第 %(n)s 条的规则“%(rule)s”不存在；可用：%(rules)s", n=n,
                   rule=name if name is not None else "", rules="、".join(RULE_SPECS))]
    spec = RULE_SPECS[name]
    problems = []
    unknown = sorted(set(entry) - set(COMMON_RULE_KEYS) - set(spec))
    if unknown:
        problems.append(_l("levels.rules 第 %(n)s 条有不认识的项：%(keys)s", n=n, keys="、".join(map(str, unknown))))
    if entry.get("reason") is not None and not (isinstance(entry["reason"], str) and entry["reason"].strip()):
        problems.append(_l("levels.rules 第 %(n)s 条的 reason 应为文字", n=n))
    checks = [("level", ("level",), True), *((key, what, required) for key, (what, required) in spec.items())]
    for key, what, required in checks:
        value = entry.get(key)
        if value is None:
            if required:
                problems.append(_l("levels.rules 第 %(n)s 条缺少 %(key)s", n=n, key=key))
            continue
        kind = what[0]
        if kind == "level" and value not in order:
            problems.append(_l("levels.rules 第 %(n)s 条的 %(key)s“%(level)s”不在 levels.order 中（%(order)s）", n=n,
                               key=key, level=value, order="、".join(order)))
        elif kind == "number" and not _positive_number(value):
            problems.append(_l("levels.rules 第 %(n)s 条的 %(key)s 应为大于 0 的数", n=n, key=key))
        elif kind == "int" and (isinstance(value, bool) or not isinstance(value, int) or value < what[1]):
            problems.append(_l("levels.rules 第 %(n)s 条的 %(key)s 应为不小于 %(min)s 的整数", n=n, key=key,
                               min=what[1]))
        elif kind == "kinds" and (not isinstance(value, list) or not value
                                  or not all(k in MANUAL_EVENT_KINDS for k in value)):
            problems.append(_l("levels.rules 第 %(n)s 条的 kinds 应为过程记录类型列表；可用：%(kinds)s", n=n,
                               kinds="、".join(f"{k}（{EVENT_KINDS[k]}）" for k in MANUAL_EVENT_KINDS)))
        elif kind in ("field", "customer_field"):
            problems.extend(_field_problems(n, key, value, what[1], fields, level_key,
                                            allow_sensitive=kind == "customer_field"))
    if name == "open_longer" and entry.get("from") in order and entry.get("level") in order \
            and order.index(entry["from"]) >= order.index(entry["level"]):
        problems.append(_l("levels.rules 第 %(n)s 条的 level“%(level)s”应高于 from“%(from_level)s”", n=n,
                           level=entry["level"], from_level=entry["from"]))
    return problems


def _field_problems(n: int, key: str, value, types: tuple, fields: dict, level_key, *, allow_sensitive: bool) -> list:
    if allow_sensitive and value == CORE_CUSTOMER:
        return []
    field = fields.get(value) if isinstance(value, str) else None
    if field is None:
        return [_l("levels.rules 第 %(n)s 条的 %(key)s：本类型没有字段“%(field)s”", n=n, key=key, field=value)]
    if value == level_key:
        return [_l("levels.rules 第 %(n)s 条不能使用等级字段“%(field)s”本身", n=n, field=value)]
    if field.get("type") not in types or (field.get("sensitive") and not allow_sensitive):
        return [_l("levels.rules 第 %(n)s 条的 %(key)s“%(field)s”应为非敏感的 %(types)s 字段", n=n, key=key,
                   field=value, types="/".join(types))]
    return []


# -- evaluating ---------------------------------------------------------------------------------------

DEFAULT_LEVEL_FIELD = "level"  # also the SLA clocks' default ``level_field``


def level_field(record_type) -> str:
    """The key of the field holding a record's level: the type's ``levels.field``, else ``level``."""
    return section_level_field(getattr(record_type, "levels", None))


def section_level_field(section: dict | None) -> str:
    """``level_field`` from a stored ``levels`` section (None when the type has none)."""
    return (section or {}).get("field") or DEFAULT_LEVEL_FIELD


def level_of(record_type, document: dict):
    """The record's level as stored (None when it has none)."""
    return (document.get("data") or {}).get(level_field(record_type))


def _is_open(record_type, document: dict) -> bool:
    return not workflow_of(record_type).is_closed(document.get("status"))


def _stored(document: dict, key: str):
    return (document.get("data") or {}).get(key)


def _value(record_type, document: dict, key: str):
    from kefu.records.fields import get_field_type

    definition = record_type.field(key)
    stored = _stored(document, key)
    return None if definition is None or stored is None else get_field_type(definition.type).from_storage(stored)


def _counted(record_type, rules: Levels) -> dict:
    """The condition for records that count in a group: not at a level outside ``order`` (无效)."""
    excluded = rules.excluded(record_type)
    return {f"data.{rules.field}": {"$nin": excluded}} if excluded else {}


def _window(rule: Rule, document: dict) -> dict:
    """``created_at`` within the rule's ``within_days`` up to the saved record's registration."""
    days = rule.spec.get("within_days")
    if not days:
        return {}
    end = document["created_at"]
    return {"created_at": {"$gte": end - timedelta(days=int(days)), "$lte": end}}


def _group(record_type, rules: Levels, rule: Rule, document: dict) -> list[dict]:
    """The records of a ``same_issue_units`` rule: same value, same project, a unit filled in (this one included)."""
    spec = rule.spec
    same, project = _stored(document, spec["field"]), _stored(document, spec["project_field"])
    if same in (None, "") or project is None or _stored(document, spec["unit_field"]) is None:
        return []
    query = {"type": record_type.key, f"data.{spec['field']}": same, f"data.{spec['project_field']}": project,
             f"data.{spec['unit_field']}": {"$ne": None}, **_window(rule, document), **_counted(record_type, rules)}
    return list(get_database()[RECORDS].find(query, {f"data.{spec['unit_field']}": 1, "status": 1}))


def _repeats(record_type, rules: Levels, rule: Rule, document: dict) -> bool:
    """Whether the customer has ``count`` records with the same value (this one included)."""
    spec = rule.spec
    same = _stored(document, spec["field"])
    key = spec["customer_field"]
    definition = record_type.field(key)
    if key == CORE_CUSTOMER and definition is None:
        path, customer = "customer", document.get("customer")
    elif definition is not None and definition.sensitive:
        path, customer = f"bidx.{key}", (document.get("bidx") or {}).get(key)
    else:
        path, customer = f"data.{key}", _stored(document, key)
    if same in (None, "") or customer in (None, ""):
        return False
    query = {"type": record_type.key, path: customer, f"data.{spec['field']}": same, **_window(rule, document),
             **_counted(record_type, rules)}
    return get_database()[RECORDS].count_documents(query, limit=int(spec["count"])) >= int(spec["count"])


def _holds(record_type, rule: Rule, document: dict) -> bool:
    """Whether a rule that reads the record's own values holds for ``document``."""
    if rule.rule == "at_least":
        value = _value(record_type, document, rule.spec["field"])
        return value is not None and Decimal(str(value)) >= Decimal(str(rule.spec["value"]))
    if rule.rule == "flag":
        return _value(record_type, document, rule.spec["field"]) is True
    return False


def after_save(record_type, document: dict, before: dict | None, changed, actor) -> None:
    """Evaluate the rules whose fields ``changed``; raise this record (and, for ``same_issue_units``, the other
    records of the group). Idempotent: a rule raises a record once, and only upwards."""
    rules = rules_of(record_type)
    if rules is None:
        return
    triggered = [r for r in rules.rules if r.rule in SAVE_RULES and r.keys() & set(changed)]
    if not triggered:
        return
    holding = []
    for rule in triggered:
        if rule.rule == "same_issue_units":
            group = _group(record_type, rules, rule, document)
            units = {str(_stored(member, rule.spec["unit_field"])) for member in group}
            if len(units) >= int(rule.spec["units"]):
                holding.append(rule)
                for member in group:
                    if member["_id"] != document["_id"]:
                        raise_level(record_type, member["_id"], [rule])
        elif rule.rule == "repeat_customer":
            if _repeats(record_type, rules, rule, document):
                holding.append(rule)
        elif _holds(record_type, rule, document):
            holding.append(rule)
    if holding:
        raise_level(record_type, document["_id"], holding)


def after_event(type_key: str, record_id, kind: str, actor) -> None:
    """A timeline event was added: count the record's communications (``communications`` rules of ``kind``)."""
    from kefu.records.store import get_record
    from kefu.records.types import get_record_type

    record_type = get_record_type(type_key, active_only=False)
    rules = rules_of(record_type)
    if rules is None:
        return
    counting = [r for r in rules.rules if r.rule == "communications" and kind in r.spec["kinds"]]
    if not counting:
        return
    document = get_record(type_key, record_id)
    events = get_database()[EVENTS]
    holding = [r for r in counting
               if events.count_documents({"record_id": document["_id"], "kind": {"$in": list(r.spec["kinds"])}},
                                         limit=int(r.spec["count"])) >= int(r.spec["count"])]
    if holding:
        raise_level(record_type, document["_id"], holding)


def raise_level(record_type, record_id, holding: list[Rule]) -> bool:
    """Raise the record to the highest level the ``holding`` rules name, when that is a raise, the record is
    open, and those rules have not raised it before; True when it was raised now.

    The rules are noted on the record (``level_rules``) before the change, so concurrent runs raise once; the
    change itself is made only while the stored level is still below the target (never a fall).
    """
    from kefu.records.actor import system_actor
    from kefu.records.store import get_record
    from kefu.records.write import system_update

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
    collection = get_database()[RECORDS]
    claimed = collection.update_one({"_id": document["_id"], APPLIED: {"$nin": ids}},
                                    {"$addToSet": {APPLIED: {"$each": ids}}})
    if not claimed.modified_count:
        return False  # another run is raising it for these rules
    reasons = list(dict.fromkeys(r.reason(record_type) for r in pending if r.level == target))
    text = _l("等级 %(before)s → %(after)s：%(reason)s", before=level or "-", after=target, reason="；".join(reasons))
    try:
        updated = system_update(record_type.key, document["_id"], {rules.field: target}, system_actor(),
                                event_kind="level", event_text=str(text),
                                when=lambda current: rules.above(target, level_of(record_type, current)))
    except Exception:
        collection.update_one({"_id": document["_id"]}, {"$pullAll": {APPLIED: ids}})
        raise
    if updated is None:  # someone raised it at least as far in the meantime
        collection.update_one({"_id": document["_id"]}, {"$pullAll": {APPLIED: ids}})
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
    from kefu.records.actor import system_actor
    from kefu.records.types import RecordType

    now = now or utcnow()
    tz = system_actor().tz
    raised = 0
    for record_type in RecordType.objects(__raw__={"levels.rules.rule": "open_longer"}):
        rules = rules_of(record_type)
        workflow = workflow_of(record_type)
        open_statuses = list(workflow.open_statuses)
        for rule in (r for r in rules.rules if r.rule == "open_longer"):
            start = rule.spec.get("start")
            start_path = f"data.{start}" if start else "created_at"
            query = {"type": record_type.key, "status": {"$in": open_statuses},
                     f"data.{rules.field}": rule.spec["from"],
                     start_path: {"$lte": months_before(now, int(rule.spec["months"]), tz)}, APPLIED: {"$ne": rule.id}}
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


def customer_rejected(type_key: str, record_id, actor, note: str) -> dict:
    """The customer does not accept the result (004 投诉处理 2; a 回访 不满意): ``on_rejected.steps`` levels up
    (capped at the top of ``order``) and back to the workflow's ``rework`` status, with one timeline event
    (kind ``level``) giving ``note``. A person's act, so it applies to closed records too. Returns the record."""
    from kefu.records.store import get_record
    from kefu.records.timeline import record_event
    from kefu.records.write import system_update
    from kefu.records.types import get_record_type

    note = (note or "").strip()
    if not note:
        message = _l("请填写客户不接受处理结果的原因")
        raise ValidationFailed(message, {"note": message})
    record_type = get_record_type(type_key, active_only=False)
    document = get_record(type_key, record_id)
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
