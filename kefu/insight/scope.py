"""Which records of any type a user may read, as one MongoDB clause: for the pages that read across record types
(逾期督办, the dashboard), as ``kefu.records.query.build_filter`` scopes the list of one type.

The roles grant per type, with ``*`` for every type without a grant of its own (``kefu.org.roles``); so the clause
is one branch per type some role names, and one for every other type — a handful of branches, not one per type.
"""
from __future__ import annotations

from kefu.org.access import NOTHING, AccessPolicy
from kefu.org.roles import ANY_TYPE, Action, roles
from kefu.records.types import type_summaries


def _named_types(access: AccessPolicy) -> list[str]:
    """The record types one of the user's roles has a grant of its own for (the others follow ``*``)."""
    named = {type_key for key in access.role_keys if (rules := roles().get(key)) is not None
             for type_key in rules.grants if type_key != ANY_TYPE}
    return sorted(named)


def readable_filter(access: AccessPolicy, action: str = Action.READ.value) -> dict | None:
    """The clause selecting the records of every type that ``access`` may ``action`` (None: every record;
    ``kefu.org.access.NOTHING`` when none)."""
    if access.everything:
        return None
    named = _named_types(access)
    branches = []
    for type_key in named:
        clause = access.record_filter(type_key, action)
        if clause != NOTHING:
            branches.append({"type": type_key, **(clause or {})})
    others = access.record_filter(ANY_TYPE, action)
    if others != NOTHING:
        if not named and others is None:
            return None
        branches.append({**({"type": {"$nin": named}} if named else {}), **(others or {})})
    if not branches:
        return NOTHING
    return branches[0] if len(branches) == 1 else {"$or": branches}


def allowed_somewhere(access: AccessPolicy, action: str) -> bool:
    """Whether the roles allow ``action`` on the records of some active type (for ``read``, approving alone does
    not count: an approver sees only what waits on them, on the record screens)."""
    return access.allows(ANY_TYPE, action) or any(access.allows(summary["key"], action)
                                                  for summary in type_summaries())
