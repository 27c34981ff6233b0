"""Who is acting: the signed-in user (or the system, for jobs and imports), their time zone, the cipher and whether they
may read personal data."""
from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask import current_app

from kefu.records.fields import FieldContext


@dataclass
class Actor:
    """Who is acting and how values are shown to them."""

    user: object | None  # kefu.org.users.User, or None for the system (jobs, imports)
    tz: ZoneInfo
    cipher: object  # kefu.core.crypto.FieldCipher
    can_view_pii: bool = False
    attachments: object | None = None  # kefu.records.attachments.AttachmentStore for uploads

    @property
    def user_id(self):
        return self.user.pk if self.user is not None else None

    @property
    def name(self) -> str:
        return self.user.display_name if self.user is not None else "系统"

    def field_context(self, project_id=None) -> FieldContext:
        return FieldContext(tz=self.tz, user=self.user, project_id=project_id, attachments=self.attachments)


def system_actor() -> Actor:
    """The actor of jobs and start-up work: no user, the configured time zone, full read access."""
    return Actor(user=None, tz=ZoneInfo(current_app.config["KEFU_TIMEZONE"]),
                 cipher=current_app.extensions["kefu_cipher"], can_view_pii=True)
