"""Admin screen for API tokens: everyone sees and revokes their own; whoever keeps the system (``manage_system``)
sees and revokes everyone's."""
from __future__ import annotations

from flask import flash
from flask_admin.actions import action
from flask_login import current_user

from admin_views.base import SecureModelView
from kefu.core.errors import NotFound
from kefu.core.i18n import _, _l
from kefu.org import tokens
from kefu.org.roles import Capability
from web.actor import current_actor


class ApiTokenView(SecureModelView):
    can_create = False  # tokens are issued through POST /api/v1/auth/token with a password
    can_edit = False  # a revoked token stays revoked
    can_delete = False  # kept: when it was issued and last used is what an audit asks
    column_list = ("user", "name", "created_at", "expires_at", "last_used_at", "revoked")
    column_details_list = column_list
    column_filters = ("revoked", "expires_at")

    def _sees_everyone(self) -> bool:
        return current_actor().access.has(Capability.MANAGE_SYSTEM.value)

    def get_query(self):
        query = super().get_query()
        return query if self._sees_everyone() else query.filter(user=current_user.pk)

    def get_one(self, id):
        token = super().get_one(id)
        if token is None or self._sees_everyone() or token.user.pk == current_user.pk:
            return token
        return None  # someone else's: as if it did not exist

    @action("revoke", _l("吊销"), _l("吊销所选令牌？使用它们的系统将无法再调用 API"))
    def action_revoke(self, ids):
        revoked = 0
        for token_id in ids:
            try:
                tokens.revoke_token(token_id, owner_id=None if self._sees_everyone() else current_user.pk)
            except NotFound as exc:
                flash(str(exc), "error")
            else:
                revoked += 1
        flash(_("已吊销 %(n)s 个令牌", n=revoked), "success")
