"""Who may see and change which records: the access policy of one user, read from their roles (``kefu.org.roles``).

Every read path asks the policy for a filter (``record_filter``) and adds it to its query; every write path
checks the stored record (``check``) before writing. Out of scope reads answer "not found" (no existence leak);
a write to a record the user may read but not change is refused with a reason (``PermissionDenied``).

Records whose approval waits on one of the user's approval titles (审批职务) are readable by a user whose roles
allow ``approve`` on the type, whatever the scope: the approver sees what they are asked to decide.
"""
from __future__ import annotations

from dataclasses import dataclass

from kefu.core.errors import NotFound, PermissionDenied
from kefu.core.i18n import _l
from kefu.org.roles import ACTION_LABELS, SCOPE_ORDER, Action, Capability, Grant, Scope, roles

PENDING = "pending"  # kefu.rules.approvals.State.PENDING: the state of an approval waiting for a decision
NOTHING = {"_id": {"$exists": False}}  # a filter no document matches
ACCESS_PROJECTION = dict.fromkeys(("type", "number", "version", "assignee", "created_by", "departments",
                                   "created_department", "approval"), 1)
"""The keys of a record ``AccessPolicy.permits`` reads (with its number and version, for messages)."""


@dataclass(frozen=True)
class AccessPolicy:
    """What one user may do. ``everything``: the system (jobs, imports, start-up work)."""

    user_id: object = None
    department_id: object = None
    titles: tuple[str, ...] = ()
    role_keys: tuple[str, ...] = ()
    everything: bool = False
    masked: bool = False  # the system writing text that leaves it (messages): personal data masked

    # -- what the roles grant ----------------------------------------------------------------------------

    def _grants(self, type_key: str) -> list[Grant]:
        found = []
        for key in self.role_keys:
            rules = roles().get(key)
            grant = rules.grant_for(type_key) if rules is not None else None
            if grant is not None:
                found.append(grant)
        return found

    def allows(self, type_key: str, action: str) -> bool:
        """Whether any role allows ``action`` on records of ``type_key`` (within some scope)."""
        if self.everything:
            return not (self.masked and action == Action.VIEW_PII.value)
        return any(action in grant.actions for grant in self._grants(type_key))

    def may_read_type(self, type_key: str) -> bool:
        """Whether the user may see some records of the type (read, or approve what waits on them)."""
        return self.allows(type_key, Action.READ.value) or self.allows(type_key, Action.APPROVE.value)

    def scope(self, type_key: str, action: str) -> str | None:
        """The widest scope in which the roles allow ``action`` on the type (None: not at all)."""
        if self.everything:
            return Scope.ALL.value
        scopes = [grant.scope for grant in self._grants(type_key) if action in grant.actions]
        return max(scopes, key=SCOPE_ORDER.index) if scopes else None

    def sees_pii(self, type_key: str, shown_by: str = Action.READ.value) -> bool:
        """Whether the type's sensitive fields are shown unmasked in every record of it the user may ``shown_by``
        (``read`` for lists, ``export`` for exports): the roles allow ``view_pii`` in a scope at least as wide as
        that action's (lists and exports decide per type; one record's page asks ``permits(document,
        "view_pii")``)."""
        if self.everything:
            return self.allows(type_key, Action.VIEW_PII.value)
        unmasked = self.scope(type_key, Action.VIEW_PII.value)
        if unmasked is None:
            return False
        shown = self.scope(type_key, shown_by)
        if shown_by == Action.READ.value and self.titles and self.allows(type_key, Action.APPROVE.value):
            shown = Scope.ALL.value  # records awaiting their title can lie outside any scope
        return shown is None or SCOPE_ORDER.index(unmasked) >= SCOPE_ORDER.index(shown)

    def has(self, capability: str) -> bool:
        """Whether a role grants ``capability`` (``kefu.org.roles.Capability``)."""
        if self.everything:
            return not (self.masked and capability == Capability.VIEW_CUSTOMER_PII.value)
        return any(capability in rules.capabilities for key in self.role_keys
                   if (rules := roles().get(key)) is not None)

    # -- which records -----------------------------------------------------------------------------------

    def _scope_clause(self, scope: str) -> dict | None:
        if scope == Scope.ALL.value:
            return None
        mine = [{"assignee": self.user_id}, {"created_by": self.user_id}]
        if scope == Scope.DEPARTMENT.value and self.department_id is not None:
            mine += [{"departments": self.department_id}, {"created_department": self.department_id}]
        return {"$or": mine}

    def _awaiting_clause(self) -> dict | None:
        if not self.titles:
            return None
        return {"approval.state": PENDING, "$or": [{"approval.approver": {"$in": list(self.titles)}},
                                                    {"approval.reviewers": {"$in": list(self.titles)}}]}

    def record_filter(self, type_key: str, action: str = Action.READ.value) -> dict | None:
        """The MongoDB clause selecting the records of the type the user may ``action`` (None: every record;
        ``NOTHING`` when none). For ``read``, records awaiting the user's approval are included."""
        if self.everything:
            return None
        options: list[dict] = []
        scope = self.scope(type_key, action)
        if scope is not None:
            clause = self._scope_clause(scope)
            if clause is None:
                return None
            options.append(clause)
        if action in (Action.READ.value, Action.APPROVE.value) and self.allows(type_key, Action.APPROVE.value):
            awaiting = self._awaiting_clause()
            if awaiting is not None:
                options.append(awaiting)
        if not options:
            return NOTHING
        return options[0] if len(options) == 1 else {"$or": options}

    def permits(self, document: dict, action: str = Action.READ.value) -> bool:
        """Whether the user may ``action`` the stored ``document`` (the same rule as ``record_filter``)."""
        if self.everything:
            return self.allows(document.get("type"), action)
        type_key = document.get("type")
        scope = self.scope(type_key, action)
        if scope == Scope.ALL.value or (scope is not None and self._in_scope(document, scope)):
            return True
        if action in (Action.READ.value, Action.APPROVE.value) and self.allows(type_key, Action.APPROVE.value):
            return self._awaits_me(document)
        return False

    def _in_scope(self, document: dict, scope: str) -> bool:
        if self.user_id is not None and self.user_id in (document.get("assignee"), document.get("created_by")):
            return True
        return (scope == Scope.DEPARTMENT.value and self.department_id is not None
                and (self.department_id in (document.get("departments") or ())
                     or self.department_id == document.get("created_department")))

    def _awaits_me(self, document: dict) -> bool:
        approval = document.get("approval") or {}
        if approval.get("state") != PENDING:
            return False
        asked = {approval.get("approver"), *(approval.get("reviewers") or ())}
        return bool(asked & set(self.titles))

    def check(self, document: dict, action: str) -> None:
        """Raise unless the user may ``action`` the stored record: ``NotFound`` when they may not even read it
        (no existence leak), ``PermissionDenied`` naming the action otherwise."""
        if self.permits(document, action):
            return
        if action != Action.READ.value and self.permits(document, Action.READ.value):
            raise PermissionDenied(_l("您没有“%(action)s”此记录的权限", action=ACTION_LABELS[Action(action)]))
        raise NotFound(_l("记录不存在"))

    def require(self, type_key: str, action: str, type_name: str | None = None) -> None:
        """Raise ``PermissionDenied`` unless some scope of the roles allows ``action`` on the type."""
        allowed = self.may_read_type(type_key) if action == Action.READ.value else self.allows(type_key, action)
        if not allowed:
            raise PermissionDenied(_l("您没有“%(action)s”%(type)s的权限", action=ACTION_LABELS[Action(action)],
                                      type=f"“{type_name or type_key}”"))


SYSTEM_POLICY = AccessPolicy(everything=True)
"""The system's own work (jobs, imports, start-up): every record, unmasked."""
MASKED_SYSTEM_POLICY = AccessPolicy(everything=True, masked=True)
"""The system writing text that leaves it (messages, notifications): every record, personal data masked."""


def policy_for(user) -> AccessPolicy:
    """The policy of ``user`` (a ``kefu.org.users.User``); nobody signed in may do nothing."""
    if user is None:
        return AccessPolicy()
    # The stored id: no query for the department document.
    return AccessPolicy(user_id=user.pk, department_id=user.to_mongo().get("department"),
                        titles=tuple(getattr(user, "approval_titles", None) or ()), role_keys=tuple(user.roles or ()))
