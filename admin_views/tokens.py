"""Admin screen for API tokens: see who has one, revoke it."""
from __future__ import annotations

from admin_views.base import SecureModelView
from kefu.org.roles import Role


class ApiTokenView(SecureModelView):
    allowed_roles = (Role.ADMIN.value,)
    can_create = False  # tokens are issued through POST /api/v1/auth/token with a password
    can_delete = False
    column_list = ("user", "name", "created_at", "expires_at", "last_used_at", "revoked")
    column_filters = ("revoked", "expires_at")
    column_editable_list = ("revoked",)
    form_columns = ("revoked",)
