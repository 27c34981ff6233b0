"""Admin screens for departments, projects, buildings and units."""
from __future__ import annotations

from admin_views.base import SecureModelView
from kefu.core.i18n import _l
from kefu.org.roles import Capability


class DepartmentView(SecureModelView):
    required_capability = Capability.MANAGE_SYSTEM.value
    column_list = ("name", "description", "sort_order", "active")
    column_searchable_list = ("name",)
    form_columns = ("name", "description", "sort_order", "active")
    column_editable_list = ("sort_order", "active")


class ProjectView(SecureModelView):
    required_capability = Capability.MANAGE_SYSTEM.value
    column_list = ("name", "code", "city", "district", "address", "handover_date", "active")
    column_searchable_list = ("name", "code", "address")
    column_filters = ("city", "district", "active", "handover_date")
    form_columns = ("name", "code", "city", "district", "address", "handover_date", "active")
    column_labels = {"handover_date": _l("交付日期")}


class BuildingView(SecureModelView):
    required_capability = Capability.MANAGE_SYSTEM.value
    column_list = ("project", "name", "floors", "sort_order")
    column_filters = ("project", "name")
    form_columns = ("project", "name", "floors", "sort_order")


class UnitView(SecureModelView):
    import_target = "units"
    required_capability = Capability.MANAGE_SYSTEM.value
    column_list = ("project", "label", "building", "entrance", "room", "area", "layout")
    column_searchable_list = ("label",)
    column_filters = ("project", "building", "layout")
    form_columns = ("project", "building", "entrance", "room", "area", "layout")
    column_default_sort = "label"
