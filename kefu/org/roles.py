"""Roles, their labels and the permissions they grant."""
from __future__ import annotations

from enum import Enum

from kefu.core.i18n import _l


class Role(str, Enum):
    ADMIN = "admin"
    MANAGER = "manager"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    HANDLER = "handler"
    APPROVER = "approver"


ROLE_LABELS = {
    Role.ADMIN: _l("系统管理员"),
    Role.MANAGER: _l("客服经理"),
    Role.SUPERVISOR: _l("客服主管"),
    Role.AGENT: _l("客服专员"),
    Role.HANDLER: _l("部门处理人"),
    Role.APPROVER: _l("审批人"),
}

ALL_ROLES = tuple(role.value for role in Role)

# Who may see personal data (phone, ID number) unmasked.
VIEW_PII = "view_pii"
# Who may edit users, departments, projects.
MANAGE_ORGANISATION = "manage_organisation"
# Who may see and edit customer archives.
MANAGE_CUSTOMERS = "manage_customers"
# Who may reassign records in bulk (the overdue page, kefu.records.write.reassign).
REASSIGN_RECORDS = "reassign_records"

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.ADMIN.value: frozenset({VIEW_PII, MANAGE_ORGANISATION, MANAGE_CUSTOMERS, REASSIGN_RECORDS}),
    Role.MANAGER.value: frozenset({VIEW_PII, MANAGE_CUSTOMERS, REASSIGN_RECORDS}),
    Role.SUPERVISOR.value: frozenset({VIEW_PII, MANAGE_CUSTOMERS, REASSIGN_RECORDS}),
    Role.AGENT.value: frozenset({MANAGE_CUSTOMERS}),
    Role.HANDLER.value: frozenset(),
    Role.APPROVER.value: frozenset(),
}


def role_label(role: str) -> str:
    """The person-readable name of ``role`` in the current language."""
    try:
        return str(ROLE_LABELS[Role(role)])
    except ValueError:
        return role


def permissions_of(roles) -> frozenset[str]:
    """Union of the permissions granted by ``roles``."""
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)
