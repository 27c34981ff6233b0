"""Who is acting: the signed-in user (or the system, for jobs and imports), their time zone, the cipher and what
they may see and change (``kefu.org.access.AccessPolicy``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from flask import current_app

from kefu.org.access import SYSTEM_POLICY, AccessPolicy, policy_for
from kefu.org.roles import Action
from kefu.records.fields import FieldContext


@dataclass
class Actor:
    """Who is acting and how values are shown to them."""

    user: object | None  # kefu.org.users.User, or None for the system (jobs, imports)
    tz: ZoneInfo
    cipher: object  # kefu.core.crypto.FieldCipher
    access: AccessPolicy = field(default_factory=AccessPolicy)
    attachments: object | None = None  # kefu.records.attachments.AttachmentStore for uploads

    @property
    def user_id(self):
        return self.user.pk if self.user is not None else None

    @property
    def name(self) -> str:
        return self.user.display_name if self.user is not None else "系统"

    @property
    def department_id(self):
        """The acting user's department (its id as stored), None for the system."""
        return self.user.to_mongo().get("department") if self.user is not None else None

    def sees_pii(self, type_key: str, document: dict | None = None) -> bool:
        """Whether sensitive fields are shown to this actor unmasked: in ``document`` when given (their
        ``view_pii`` scope covers it), else in every record of the type they may read."""
        if document is not None:
            return self.access.permits(document, Action.VIEW_PII.value)
        return self.access.sees_pii(type_key)

    def field_context(self, project_id=None) -> FieldContext:
        return FieldContext(tz=self.tz, user=self.user, project_id=project_id, attachments=self.attachments,
                            access=self.access)


def user_actor(user, *, attachments=None) -> Actor:
    """An actor for ``user`` acting within their roles' permissions (a request, an export they started)."""
    return Actor(user=user, tz=ZoneInfo(current_app.config["KEFU_TIMEZONE"]),
                 cipher=current_app.extensions["kefu_cipher"], access=policy_for(user), attachments=attachments)


def system_actor(user=None, *, access: AccessPolicy = SYSTEM_POLICY) -> Actor:
    """The actor of jobs and start-up work: every record, unmasked (``access``: e.g. the masked system policy
    for text that leaves the system). ``user``: on whose behalf the system acts (named in the timeline)."""
    return Actor(user=user, tz=ZoneInfo(current_app.config["KEFU_TIMEZONE"]),
                 cipher=current_app.extensions["kefu_cipher"], access=access)
