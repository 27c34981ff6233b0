"""The acting user of the current request, as the record services need them."""
from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import current_app, g
from flask_login import current_user

from kefu.org.roles import VIEW_PII
from kefu.records.actor import Actor
from kefu.records.attachments import AttachmentStore


def current_actor() -> Actor:
    """An ``Actor`` for the signed-in user (built once per request)."""
    actor = g.get("kefu_actor")
    if actor is None:
        user = current_user._get_current_object() if current_user.is_authenticated else None
        actor = Actor(
            user=user, tz=ZoneInfo(current_app.config["KEFU_TIMEZONE"]),
            cipher=current_app.extensions["kefu_cipher"],
            can_view_pii=bool(user and user.can(VIEW_PII)),
            attachments=AttachmentStore(uploaded_by=user.pk if user else None),
        )
        g.kefu_actor = actor
    return actor
