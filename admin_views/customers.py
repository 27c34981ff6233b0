"""Admin screens for the customer archive (客户档案)."""
from __future__ import annotations

from flask_login import current_user

from admin_views.base import SecureModelView
from kefu.core.validation import mask_id_number, mask_phone
from kefu.org.roles import VIEW_PII, Role


def _masked(mask):
    """A column formatter that masks personal data for users without ``view_pii``."""
    def format_value(view, context, model, name):
        value = getattr(model, name)
        if not value or current_user.can(VIEW_PII):
            return value
        return mask(value)
    return format_value


class CustomerView(SecureModelView):
    allowed_roles = (Role.ADMIN.value, Role.MANAGER.value, Role.SUPERVISOR.value, Role.AGENT.value)
    column_list = ("name", "gender", "phone", "id_number", "project", "unit", "grade", "created_at")
    column_details_list = ("name", "gender", "phone", "id_number", "address", "project", "unit", "grade",
                           "notes", "created_at", "updated_at")
    column_searchable_list = ("name", "phone")
    column_filters = ("grade", "gender", "project", "created_at")
    form_columns = ("name", "gender", "phone", "id_number", "address", "project", "unit", "grade", "notes")
    column_formatters = {"phone": _masked(mask_phone), "id_number": _masked(mask_id_number)}
    column_formatters_detail = column_formatters
    column_default_sort = ("created_at", True)
    form_ajax_refs = {"unit": {"fields": ("label",), "page_size": 20}}
