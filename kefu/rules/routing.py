"""Routing (分派): the ``routing:`` section sets a record's core department and/or assignee from its values.

```yaml
routing:
  # 004 投诉处理：营运部负责商品及营业员投诉，物业管理部负责物业管理投诉
  - when: {category: [商品, 人员]}       # every field: value (or [values]) holds; "*": filled in
    department: 营运部                  # a department's name (部门)
  - when: {category: 物业管理}
    department: 物业管理部
  # 002 重大客诉：升级提交客服经理
  - when: {level: 重大}
    assignee_title: 客服经理             # the one active user holding this approval title (审批职务) in scope
```

Semantics:

- Two targets: ``department`` (the record's core 部门) and the assignee (负责人, by ``assignee_title``). For each
  target the first entry setting it whose ``when`` holds wins; an entry may set both.
- A target is routed when the record is created, and when a field one of the target's entries names in ``when``
  changes (to a value some entry matches). Nothing else re-routes: a person's reassignment after routing is kept until
  those fields change again. When no entry matches, the target is left as it is.
- The assignee is the one active user holding ``assignee_title`` who may edit the record (``kefu.org.access``: their
  roles' scope). With none, or more than one, or a department name no department has, the target is left as it is and
  the timeline says why.
- The change is written through ``kefu.records.write.system_update`` inside the save (one transaction) with a
  timeline entry of kind 转派 ("按规则转派：…"): a save of its own, so the sections that read the department or
  assignee (clocks, reminders) run again with them; routing again to the value a record already has writes nothing (a retried transaction changes nothing).
- ``when`` names the definition's fields or ``status`` — never ``department`` or ``assignee``, which routing writes
  itself. Choice values must be choices of their field. A department name must be one of the company's departments
  once any is entered (a fresh installation loads the packs before its departments exist; until the department is
  created, the timeline says it is missing).
"""
from __future__ import annotations

from typing import Any

from pydantic import Field, RootModel, StrictStr, model_validator

from kefu.core.i18n import _l
from kefu.org.access import policy_for
from kefu.org.roles import Action
from kefu.org.structure import Department
from kefu.org.users import User
from kefu.records.actor import system_actor
from kefu.records.sections import Section, SectionModel, at, refuse
from kefu.records.store import get_record
from kefu.records.timeline import record_event
from kefu.records.values import core_values, label_of, read_plain_values
from kefu.records.write import system_update
from kefu.rules.clock_start import ANY_VALUE, matches
from kefu.rules.shapes import Name, picker

# The keys ``when`` may name besides the definition's fields (routing writes department and assignee itself).
CONDITION_CORE_KEYS = ("status",)
# Target → the entry's setting naming it.
TARGETS = {"department": "department", "assignee": "assignee_title"}


class Route(SectionModel):
    """One entry: where a record whose values ``when`` describes goes."""

    when: dict[StrictStr, Any] = Field(min_length=1, title=_l("适用条件"),
                                       description=_l("字段取这些值时分派；“*”表示已填写"),
                                       json_schema_extra=picker("conditions"))
    department: Name | None = Field(None, title=_l("分派到部门"), description=_l("部门名称"))
    assignee_title: Name | None = Field(None, title=_l("负责人（审批职务）"),
                                        description=_l("由唯一持有该审批职务的启用用户负责"))

    @model_validator(mode="after")
    def _sets_something(self):
        if self.department is None and self.assignee_title is None:
            raise refuse(_l(" 应至少写 department（部门）或 assignee_title（负责人的审批职务）之一"))
        return self


class Routing(RootModel[tuple[Route, ...]]):
    """The ``routing:`` section: entries in order, the first matching one per target wins."""


class RoutingSection(Section):
    """``routing:``: set the department and assignee on creation and when the fields the entries read change."""

    key = "routing"
    title = _l("分派")
    model = Routing
    item_words = {"routing": "条"}
    empty = []

    def default(self) -> tuple:
        return ()

    def parse(self, raw) -> tuple[Route, ...]:
        return super().parse(raw).root

    def problems(self, draft, model: tuple[Route, ...]) -> list:
        departments = None
        problems = []
        for n, route in enumerate(model, start=1):
            problems.extend(_condition_problems(n, route, draft))
            if route.department is not None:
                departments = _department_names() if departments is None else departments
                if departments and route.department not in departments:
                    problems.append(at(f"routing.{n - 1}.department", _l(
                        "routing 第 %(n)s 条：没有名为“%(name)s”的部门；现有部门：%(names)s",
                        n=n, name=route.department, names="、".join(sorted(departments)))))
        return problems

    def after_save(self, record_type, model, document, before, changed, actor):
        if not model:
            return None
        document = get_record(record_type.key, document["_id"])  # as stored now: a raise may have routed it already
        values = {**core_values(document), **read_plain_values(record_type, document)}
        found, notes = {}, []
        for target, setting in TARGETS.items():
            entries = [(n, route) for n, route in enumerate(model, start=1) if getattr(route, setting)]
            if before is not None and not any(key in changed for _n, route in entries for key in route.when):
                continue  # only creation and a change of what the entries read route again
            chosen = next(((n, route) for n, route in entries if matches(route.when, values, record_type)), None)
            if chosen is None:
                continue
            value, shown, problem = _resolve(target, getattr(chosen[1], setting), document)
            if problem is not None:
                notes.append(str(_l("routing 第 %(n)s 条：%(problem)s", n=chosen[0], problem=problem)))
            elif value != values.get(target):
                found[target] = (chosen[0], value, shown)
        engine = system_actor()
        if notes:
            record_event(record_type.key, document["_id"], "assign", engine,
                         text=str(_l("按规则转派未执行：%(why)s", why="；".join(notes))))
        if not found:
            return None
        changes = [str(_l("%(label)s → %(value)s（routing 第 %(n)s 条）", label=label_of(record_type, target),
                          value=shown, n=n)) for target, (n, _value, shown) in found.items()]
        text = _l("按规则转派：%(changes)s", changes="；".join(changes))
        return system_update(record_type.key, document["_id"], {t: v for t, (_n, v, _s) in found.items()}, engine,
                             event_kind="assign", event_text=str(text))

    def choice_references(self, owner, model, type_key, field_key):
        """The choice texts the type's own entries name in ``when``."""
        if owner.key != type_key:
            return []
        found = []
        for n, route in enumerate(model, start=1):
            expected = route.when.get(field_key)
            found.extend((_l("分派规则 routing 第 %(n)s 条", n=n), value)
                         for value in (expected if isinstance(expected, list) else [expected])
                         if value not in (None, ANY_VALUE))
        return found


def _department_names() -> set[str]:
    return set(Department.objects.scalar("name"))


def _resolve(target: str, wanted: str, document: dict):
    """``(value, shown, None)``: the department id or user id ``wanted`` names, and how the timeline names it;
    ``(None, None, why)`` when it names none or, for a title, not exactly one user who may edit the record."""
    if target == "department":
        department = Department.objects(name=wanted, active=True).only("id").first()
        if department is None:
            return None, None, _l("没有启用的部门“%(name)s”", name=wanted)
        return department.pk, wanted, None
    holders = [user for user in User.objects(active=True, approval_titles=wanted)
               if policy_for(user).permits(document, Action.EDIT.value)]
    if len(holders) != 1:
        if not holders:
            return None, None, _l("没有可处理此记录、持有审批职务“%(title)s”的启用用户", title=wanted)
        return None, None, _l("有 %(count)s 位用户持有审批职务“%(title)s”（%(names)s），请手工指定负责人",
                              count=len(holders), title=wanted, names="、".join(str(u) for u in holders))
    return holders[0].pk, f"{holders[0]}（{wanted}）", None


def _condition_problems(n: int, route: Route, draft) -> list:
    """The fields ``when`` names must be the definition's (not sensitive) or ``status``; a choice field's values its
    choices; a status one of the workflow's."""
    problems, path = [], f"routing.{n - 1}.when"
    for key, expected in route.when.items():
        wanted = [value for value in (expected if isinstance(expected, list) else [expected]) if value != ANY_VALUE]
        if key in CONDITION_CORE_KEYS:
            workflow = draft.section("workflow")
            known = list(workflow.statuses) if workflow is not None else None
        else:
            field = draft.field(key)
            if field is None or field.get("sensitive"):
                problems.append(at(path, _l("routing 第 %(n)s 条的 when：字段“%(field)s”不存在或为敏感字段（可用：%(fields)s）",
                                            n=n, field=key, fields="、".join(
                                                [*CONDITION_CORE_KEYS, *(k for k, f in draft.fields.items()
                                                                         if not f.get("sensitive"))]))))
                continue
            known = field.get("choices") or None  # a field with choices: the values must be among them
        for value in wanted:
            if known is not None and value not in known:
                problems.append(at(path, _l("routing 第 %(n)s 条的 when：“%(value)s”不是“%(field)s”的可选项；可选：%(choices)s",
                                            n=n, value=value, field=key, choices="、".join(known))))
    return problems

