"""Admin screens for the customer archive (客户档案).

Phone, ID number and address are shown masked — in the list, the details and the edit form — to whoever lacks
``view_customer_pii``; their edit inputs start empty, and an empty input keeps the stored value. Every save goes
through ``kefu.org.customers`` (which encrypts). The search box finds names, and a phone number only exactly, through
the blind index (counted like every phone lookup). Customers are never deleted: ``归档`` (with
``archive_customers``) hides them from pick lists and from the list unless its 档案状态 filter asks for them.
"""
from __future__ import annotations

from bson import ObjectId
from flask import abort, flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.form import SecureForm
from flask_admin.contrib.mongoengine.filters import BaseMongoEngineFilter
from wtforms import StringField
from wtforms.validators import Length, Optional

from markupsafe import Markup, escape

from admin_views.base import SecureModelView
from kefu.core.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from kefu.core.i18n import _, _l
from kefu.insight import customer_archive
from kefu.insight.customer_merge import merge_customers
from kefu.org import customers, loyalty
from kefu.org.roles import Capability
from kefu.rules.sla import STATE_LABELS
from web.actor import current_actor


class ArchiveStateFilter(BaseMongoEngineFilter):
    """档案状态: in the archive (what the list shows without this filter) or archived."""

    IN_ARCHIVE, ARCHIVED = "in_archive", "archived"

    def __init__(self):
        super().__init__(customers.Customer.archived, _l("档案状态"),
                         options=((self.IN_ARCHIVE, _l("在档")), (self.ARCHIVED, _l("已归档"))))

    def apply(self, query, value):
        return query.filter(archived=True) if value == self.ARCHIVED else query.filter(archived__ne=True)

    def operation(self):
        return _l("为")


def _personal(view, context, model, name) -> str:
    """A personal field as the signed-in user may read it."""
    return customers.shown(model, name, customers.sees_personal_data(current_actor().access))


def archive_link(customer_id, label) -> Markup:
    """``label`` (a customer's name as the reader may see it) linking to the customer's 360° archive when the signed-in
    user may open it, else the label alone: how a record's customer is shown (list cell, details page)."""
    if customer_id is None or not customer_archive.may_read_archive(current_actor().access):
        return escape(label)
    url = url_for("customers.archive_view", customer_id=str(customer_id))
    return Markup(f'<a class="kefu-customer-link" href="{escape(url)}">{escape(label)}</a>')


def _archive_link(view, context, model, name) -> Markup:
    return archive_link(model.pk, model.name)


def _tier(view, context, model, name) -> str:
    """The customer's membership tier (``kefu.org.loyalty``): from the page's tiers, read once by ``get_list``."""
    tiers = getattr(g, "kefu_customer_tiers", None)
    if tiers is None or model.pk not in tiers:
        tiers = loyalty.tiers_of([model.pk])
    return tiers[model.pk] or ""


def _personal_input(label, max_length: int):
    return StringField(label, validators=[Optional(), Length(max=max_length)])


class CustomerView(SecureModelView):
    import_target = "customers"
    required_capability = Capability.MANAGE_CUSTOMERS.value
    can_delete = False  # archived, never deleted: records keep pointing at their customer
    column_list = ("name", "gender", "phone", "id_number", "project", "unit", "grade", "tier", "created_at")
    column_details_list = ("name", "gender", "phone", "id_number", "address", "project", "unit", "grade",
                           "notes", "archived", "archived_at", "created_at", "updated_at")
    column_labels = {**customers.PERSONAL_LABELS, "tier": _l("会员等级")}
    column_searchable_list = ("name",)  # and a whole phone number, exactly: see _search
    column_filters = ("grade", "gender", "project", "created_at", ArchiveStateFilter())
    form_columns = ("name", "gender", "phone", "id_number", "address", "project", "unit", "grade", "notes")
    form_extra_fields = {
        "phone": _personal_input(customers.PERSONAL_LABELS["phone"], 40),
        "id_number": _personal_input(customers.PERSONAL_LABELS["id_number"], 40),
        "address": _personal_input(customers.PERSONAL_LABELS["address"], customers.MAX_ADDRESS_LENGTH),
    }
    column_formatters_detail = {name: _personal for name in customers.PERSONAL_FIELDS}
    column_formatters = {**column_formatters_detail, "name": _archive_link, "tier": _tier}
    column_default_sort = ("created_at", True)
    form_ajax_refs = {"unit": {"fields": ("label",), "page_size": 20}}

    @staticmethod
    def _unmasked() -> bool:
        return customers.sees_personal_data(current_actor().access)

    # -- the list: archived customers only through the filter, phone numbers only exactly ------------------

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        filters = list(filters or ())
        if not any(isinstance(self._filters[index], ArchiveStateFilter) for index, _name, _value in filters):
            index = next(i for i, flt in enumerate(self._filters) if isinstance(flt, ArchiveStateFilter))
            filters.append((index, "", ArchiveStateFilter.IN_ARCHIVE))
        count, found = super().get_list(page, sort_column, sort_desc, search, filters, execute, page_size)
        if execute:
            # The tier column of the whole page in one query (and the settings read once), not one per row.
            found = list(found)
            g.kefu_customer_tiers = loyalty.tiers_of([model.pk for model in found])
        return count, found

    def _search(self, query, search_term):
        if not customers.looks_like_phone(search_term):
            return super()._search(query, search_term)
        actor = current_actor()
        try:
            found = customers.find_by_phone(search_term, actor.access, actor.user_id, archived=True, limit=100)
        except DomainError as exc:
            flash(str(exc), "error")
            found = []
        return query.filter(pk__in=[customer.pk for customer in found])

    # -- the 360° archive ----------------------------------------------------------------------------------------

    @expose("/<customer_id>")
    def archive_view(self, customer_id):
        """一户一档: the customer's card and every record of every type linked to them that the user may read,
        newest first (``kefu.insight.customer_archive``; ``?type=`` one type's only, linked from the counts); 404
        page naming the id when it names nobody; an unknown type: a message and the whole timeline."""
        type_key = request.args.get("type") or None
        try:
            archive = customer_archive.archive(customer_id, current_actor(), type_key=type_key)
        except NotFound as exc:
            abort(404, str(exc.message))
        except PermissionDenied as exc:
            abort(403, str(exc.message))
        except ValidationFailed as exc:
            flash(str(exc.message), "error")
            return redirect(url_for(".archive_view", customer_id=customer_id))
        may_redeem = current_actor().access.has(Capability.MANAGE_CUSTOMERS.value)
        return self.render("admin/customer_archive.html", archive=archive, names=customer_archive.type_names(),
                           sla_states=STATE_LABELS, type_key=type_key, shown_limit=customer_archive.TIMELINE_LIMIT, may_edit=self.can_edit,
                           redeem_form=SecureForm() if may_redeem else None)

    # -- forms: personal data masked, written through the services -----------------------------------------

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        if self._unmasked():
            return form
        for name in customers.PERSONAL_FIELDS:
            field = form[name]
            if request.method != "POST":
                field.data = ""  # the stored value never reaches this user's browser
            shown = customers.shown(obj, name, False) if obj is not None else ""
            field.render_kw = {**(field.render_kw or {}),
                               "placeholder": _("%(masked)s（留空则不修改）", masked=shown or "-")}
        return form

    def create_form(self, obj=None):
        """The create form; ``?phone=`` fills the phone in (the caller page's 新来电 button)."""
        form = super().create_form(obj)
        if request.method != "POST" and request.args.get("phone"):
            form["phone"].data = request.args["phone"][:40]
        return form

    def _values(self, form, creating: bool) -> dict:
        values = {name: form[name].data for name in customers.PLAIN_FIELDS}
        for name in customers.PERSONAL_FIELDS:
            if creating or form[name].data or self._unmasked():  # a masked input left empty keeps the value
                values[name] = form[name].data
        return values

    def create_model(self, form):
        try:
            return customers.create_customer(self._values(form, creating=True))
        except Exception as exc:
            if not self.handle_view_exception(exc):
                raise
            return False

    def update_model(self, form, model):
        try:
            customers.update_customer(model, self._values(form, creating=False))
        except Exception as exc:
            if not self.handle_view_exception(exc):
                raise
            return False
        return True

    # -- archiving ----------------------------------------------------------------------------------------------

    def is_action_allowed(self, name):
        if name == "merge":
            return current_actor().access.has(Capability.MANAGE_CUSTOMERS.value)
        if name in ("archive", "restore"):
            return current_actor().access.has(Capability.ARCHIVE_CUSTOMERS.value)
        return super().is_action_allowed(name)

    def _each_selected(self, ids, change) -> int:
        done = 0
        for customer in customers.Customer.objects(pk__in=[ObjectId(i) for i in ids if ObjectId.is_valid(i)]):
            try:
                change(customer, current_actor().access)
            except DomainError as exc:
                flash(str(exc), "error")
            else:
                done += 1
        return done

    @action("archive", _l("归档"), _l("归档所选客户？归档后不再出现在客户选择和默认列表中，已有记录仍关联该客户"))
    def action_archive(self, ids):
        user_id = current_actor().user_id
        done = self._each_selected(ids, lambda customer, access: customers.archive_customer(customer, access, user_id))
        flash(_("已归档 %(n)s 位客户", n=done), "success")

    @action("restore", _l("恢复"), _l("恢复所选的已归档客户？"))
    def action_restore(self, ids):
        done = self._each_selected(ids, customers.restore_customer)
        flash(_("已恢复 %(n)s 位客户", n=done), "success")

    @action("merge", _l("合并"), _l("合并所选的两位客户？保留先建档的一位，另一位的全部记录改为关联到保留的档案，并归档被合并的档案"))
    def action_merge(self, ids):
        """Two archives of the same person: the one registered first is kept (``kefu.insight.customer_merge``)."""
        chosen = list(customers.Customer.objects(pk__in=[ObjectId(i) for i in ids if ObjectId.is_valid(i)]))
        if len(chosen) != 2:
            flash(_("请恰好选择两位客户进行合并"), "error")
            return
        kept, removed = sorted(chosen, key=lambda customer: (customer.created_at, str(customer.pk)))
        try:
            result = merge_customers(kept.pk, removed.pk, current_actor())
        except DomainError as exc:
            flash(str(exc), "error")
            return
        flash(_("已将“%(removed)s”合并到“%(kept)s”，转移记录 %(n)s 条", removed=removed.name, kept=kept.name,
                n=len(result["moved"])), "success")
