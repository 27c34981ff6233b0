"""Computed fields (the ``computed:`` section): values the handbooks derive from a record's other values, set by
the engine in every save — never typed by hand, never an expression (no ``eval``): each entry is one of a few
declared kinds of calculation.

```yaml
computed:
  # 004 有偿服务：如物品借用时间超过一小时的则需收费（按对外公布的收费标准）
  - kind: duration_fee
    target: fee                     # money or decimal field
    start: lent_at                  # datetime field
    end: returned_at                # datetime field; while start or end is empty the target is empty
    over: {hours: 1}                # free time: a loan up to this long costs 0 (default 0)
    unit: {hours: 1}                # the rate is per unit (default 1 hour)
    rounding: up                    # up: every started unit is charged (default) / down / exact
    charge: whole                   # whole: the whole duration once over the free time (default) / excess
    rate: 10                        # per unit — or rate_field: a number field holding the published rate
    per: quantity                   # optional number field multiplying the fee (items lent)
  # 002 工程预验收流程：第三次验收不合格 → 更换工长、罚款 500 元、停单 3 个月、项目经理严重过失处罚
  - kind: by_attempt
    field: attempt                  # integer field (an attempt counter) or choice field (第一次验收 …)
    when: {result: 不合格}           # optional: only while these fields hold these values ("*": filled in)
    table:
      - attempt: 第三次验收          # a choice text; for an integer field a number, and the row with the
        set:                        #   highest attempt not above the value applies (3 covers 4, 5 …)
          penalty: 更换工长；罚款 500 元；停单 3 个月；项目经理严重过失处罚
          fine: 500
    otherwise: {fine: 0}            # optional: the values when no row applies
  # 002 图纸审核奖惩办法（一）：审核分数低于 80 分，对设计师给予“一次警告”
  - kind: below_threshold
    field: score                    # number field; while it is empty, otherwise applies
    below: 80
    set: {designer_warning: 一次警告}
    otherwise: {designer_warning: 无}
  # 002 图纸审核奖惩办法（二）：未全部修改扣除 0.5% 提成；未修改即签约扣除 1% 提成并通报批评、分部经理“一般过失单”
  - kind: by_value
    field: rectification            # choice, text, yes/no or integer field
    when: {review_round: 复审}       # optional, as above
    table:
      - {value: 未全部修改, set: {deduction_percent: 0.5}}
      - {value: 未修改即签约, set: {deduction_percent: 1, branch_fault: true}}
    otherwise: {deduction_percent: 0, branch_fault: false}
  - kind: percent_of
    target: deduction               # money or decimal field: base × percent / 100
    base: commission                # number field; while it (or the percent) is empty the target is empty
    percent_field: deduction_percent  # a number field (an earlier entry may set it) — or percent: 0.5
```

Semantics:

- Entries run in order after every save, each from the record's values as stored, a later one seeing the targets
  the earlier ones set; a target is set by one entry only, and an entry reads no target of itself or a later one.
- The targets of ``by_attempt`` / ``by_value`` / ``below_threshold`` are the fields named under ``set`` (every row)
  and ``otherwise``. When a row applies its ``set`` gives them; when none does (or ``when`` does not hold, or the
  field read is empty) ``otherwise`` gives them, and a target it does not name is emptied. ``set`` values are
  literals of the target's type: a number (money / decimal / integer), true/false, one of a choice's ``choices``,
  or text (text / textarea).
- Amounts (``duration_fee``, ``percent_of``) are rounded half up to the fen (0.01).
- Targets are the engine's: a person's create or edit that fills or changes one is refused at that field (the
  forms show them read-only). A target may not be ``required``, ``readonly`` (set at creation only), sensitive, or
  have a ``default``.
- Recomputing is idempotent: when every target already holds its value nothing is written; otherwise the values
  are written through ``kefu.records.write.system_update`` inside the same save (one transaction), with a timeline
  entry (修改, "规则计算：…") and an audit entry, so the rules after this section (levels, SLA clocks) see them.
"""
from __future__ import annotations

from decimal import Decimal

from pydantic import RootModel, model_validator

from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l
from kefu.records.actor import system_actor
from kefu.records.fields import FIELD_TYPES
from kefu.records.sections import Section, at, parsed, refuse
from kefu.records.values import core_values, display_values, label_of, read_plain_values
from kefu.records.write import system_update
from kefu.rules.computed_kinds import AMOUNTS, KIND_NAMES, SETTABLE, AnyEntry, BelowThreshold, Entry, Table, \
    literal_fits
from kefu.rules.clock_start import ANY_VALUE, CORE_CONDITION_KEYS, matches


class Computed(RootModel[tuple[AnyEntry, ...]]):
    """The ``computed:`` section: a list of entries, each target set by one entry only."""

    @model_validator(mode="after")
    def _one_entry_per_target(self):
        targets = [target for entry in self.root for target in entry.targets()]
        repeated = sorted({target for target in targets if targets.count(target) > 1})
        if repeated:
            raise refuse(_l(" 中字段“%(fields)s”由多条计算设置；每个字段只能由一条计算设置", fields="、".join(repeated)))
        return self


def entries_of(record_type) -> tuple[Entry, ...]:
    """The type's ``computed:`` entries (none without the section)."""
    return parsed(record_type, ComputedSection.key)


def computed_targets(record_type) -> set[str]:
    """The keys of the fields the type's entries set: the engine's, read-only for people."""
    return {target for entry in entries_of(record_type) for target in entry.targets()}


def computed_values(record_type, entries, values: dict) -> dict:
    """Each target's value for a record holding ``values``: the entries in order, each seeing the targets the
    earlier ones set."""
    values, found = dict(values), {}
    for entry in entries:
        result = entry.applied(values) if matches(entry.when, values, record_type) else entry.fallback()
        values.update(result)
        found.update(result)
    return found


class ComputedSection(Section):
    """``computed:``: set the target fields from the record's values in every save; refuse people's values."""

    key = "computed"
    title = _l("计算字段")
    model = Computed
    item_words = {"computed": "条"}
    empty = []

    def default(self) -> tuple:
        return ()

    def parse(self, raw) -> tuple[Entry, ...]:
        return super().parse(raw).root

    def problems(self, draft, model: tuple[Entry, ...]) -> list:
        problems = []
        for n, entry in enumerate(model, start=1):
            later = {target for other in model[n - 1:] for target in other.targets()}
            problems.extend(_entry_problems(n, entry, draft, later))
        return problems

    def before_save(self, record_type, model, current, after, changed, *, system):
        if system:
            return
        refused = {}
        for n, entry in enumerate(model, start=1):
            for target in entry.targets():
                typed = target in changed and (current is not None or after.get(target) not in (None, "", [], False))
                if typed:
                    refused[target] = _l("“%(label)s”由计算规则（computed 第 %(n)s 条）得出，不能手工填写",
                                         label=label_of(record_type, target), n=n)
        if refused:
            raise ValidationFailed("；".join(str(message) for message in refused.values()), refused)

    def after_save(self, record_type, model, document, before, changed, actor):
        if not model:
            return None
        values = {**core_values(document), **read_plain_values(record_type, document)}
        stale = {key: value for key, value in computed_values(record_type, model, values).items()
                 if _active(record_type, key) and not _same(values.get(key), value)}
        if not stale:
            return None
        engine = system_actor()
        shown = display_values(record_type, stale, engine, list(stale))
        text = _l("规则计算：%(changes)s", changes="；".join(
            f"{label_of(record_type, key)} → {shown[key] if shown[key] not in (None, '') else '-'}" for key in stale))
        return system_update(record_type.key, document["_id"], stale, engine, event_kind="updated",
                             event_text=str(text))

    def choice_references(self, owner, model, type_key, field_key):
        """The choice texts the type's own entries name: in ``when``, as a table row's value and as a literal."""
        if owner.key != type_key:
            return []
        found = []
        for n, entry in enumerate(model, start=1):
            rule = _l("计算规则 computed 第 %(n)s 条", n=n)
            expected = entry.when.get(field_key)
            found.extend((rule, value) for value in (expected if isinstance(expected, list) else [expected])
                         if value not in (None, ANY_VALUE))
            if isinstance(entry, Table) and entry.field == field_key:
                found.extend((rule, value) for value in entry.row_keys() if isinstance(value, str))
            for literals in _literals(entry):
                if isinstance(literals.get(field_key), str):
                    found.append((rule, literals[field_key]))
        return found


def _active(record_type, key: str) -> bool:
    """A target an admin disabled is left alone (a write to a disabled field is refused)."""
    definition = record_type.field(key)
    return definition is not None and definition.active


def _same(stored, value) -> bool:
    """Whether the stored value already is the computed one (a literal 0.1 is the stored Decimal 0.1)."""
    numbers = all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in (stored, value))
    return Decimal(str(stored)) == Decimal(str(value)) if numbers else stored == value


def _literals(entry: Entry) -> list[dict]:
    """The ``set`` / ``otherwise`` literal maps of ``entry``."""
    if isinstance(entry, Table):
        return [*(row.values for row in entry.table), entry.otherwise]
    if isinstance(entry, BelowThreshold):
        return [entry.values, entry.otherwise]
    return []


# -- definition problems -----------------------------------------------------------------------------------

def _entry_problems(n: int, entry: Entry, draft, later: set) -> list:
    """The ``n``-th entry's references to the definition's fields, each at the path of the setting concerned.
    ``later``: the targets of this entry and the ones after it (which it may not read)."""
    where, problems = _l("computed 第 %(n)s 条（%(kind)s）", n=n, kind=KIND_NAMES[entry.kind]), []
    path = f"computed.{n - 1}"
    for name, key in entry.sources().items():
        problems.extend(at(f"{path}.{name}", message) for message in _source_problems(
            where, name, key, entry.reads[name], draft, later))
    for key in entry.when:
        if key in CORE_CONDITION_KEYS:
            continue
        field = draft.field(key)
        if field is None or field.get("sensitive"):
            problems.append(at(f"{path}.when", _l("%(where)s的 when：字段“%(field)s”不存在或为敏感字段",
                                                  where=where, field=key)))
        elif key in later:
            problems.append(at(f"{path}.when", _l("%(where)s的 when 不能读取本条或后面各条计算的字段“%(field)s”",
                                                  where=where, field=key)))
    kind = SETTABLE if isinstance(entry, Table | BelowThreshold) else AMOUNTS
    for target in entry.targets():
        problems.extend(at(f"{path}.target", message) for message in _target_problems(where, target, kind, draft))
    problems.extend(at(path, message) for message in _literal_problems(where, entry, draft))
    return problems


def _source_problems(where, name: str, key: str, kind, draft, later: set) -> list:
    field = draft.field(key)
    if field is None:
        return [_l("%(where)s的 %(name)s：本类型没有字段“%(field)s”", where=where, name=name, field=key)]
    if field.get("type") not in kind or field.get("sensitive"):
        return [_l("%(where)s的 %(name)s“%(field)s”应为非敏感的 %(types)s 字段", where=where, name=name, field=key,
                   types="/".join(kind))]
    if key in later:
        return [_l("%(where)s的 %(name)s 不能读取本条或后面各条计算的字段“%(field)s”", where=where, name=name,
                   field=key)]
    return []


def _target_problems(where, key: str, kind, draft) -> list:
    field = draft.field(key)
    if field is None:
        return [_l("%(where)s要设置的字段“%(field)s”不存在", where=where, field=key)]
    if field.get("type") not in kind:
        return [_l("%(where)s要设置的字段“%(field)s”应为 %(types)s 字段", where=where, field=key,
                   types="/".join(kind))]
    flags = [flag for flag in ("required", "readonly", "sensitive") if field.get(flag)]
    if field.get("default") not in (None, ""):
        flags.append("default")
    if flags:
        return [_l("%(where)s要设置的字段“%(field)s”由计算得出，不能设 %(flags)s", where=where, field=key,
                   flags="、".join(flags))]
    return []


def _literal_problems(where, entry: Entry, draft) -> list:
    """Literals that are no value of their target, and table rows that name no value of the field read."""
    problems = []
    for literals in _literals(entry):
        for key, value in literals.items():
            field = draft.field(key)
            field_type = FIELD_TYPES.get((field or {}).get("type"))
            if field_type is not None and not literal_fits(field_type, field, value):
                problems.append(_l("%(where)s给字段“%(field)s”的值“%(value)s”不是它可取的值", where=where,
                                   field=key, value=value))
    if isinstance(entry, Table):
        field = draft.field(entry.field)
        field_type = FIELD_TYPES.get((field or {}).get("type"))
        for value in entry.row_keys():
            if field_type is not None and not literal_fits(field_type, field, value):
                problems.append(_l("%(where)s的对照表中“%(value)s”不是字段“%(field)s”可取的值", where=where,
                                   value=value, field=entry.field))
    return problems
