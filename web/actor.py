"""The acting user of the current request, as the record services need them."""
from __future__ import annotations

from flask import g
from flask_login import current_user

from kefu.records.actor import Actor, user_actor
from kefu.records.attachments import AttachmentStore


def current_actor() -> Actor:
    """An ``Actor`` for the signed-in user within their roles' permissions (built once per request)."""
    actor = g.get("kefu_actor")
    if actor is None:
        user = current_user._get_current_object() if current_user.is_authenticated else None
        actor = user_actor(user, attachments=AttachmentStore(uploaded_by=user.pk if user else None))
        g.kefu_actor = actor
    return actor
