"""The create and edit forms of a record, built from the type's definition for each request, and saving them
through the records write path. What the user may not see never reaches their browser (sensitive values, a
customer's phone), and what they may not change is not offered (the form itself, the assignee)."""
from __future__ import annotations

from dataclasses import replace

from bson import ObjectId
from flask import flash, request
from flask_admin import expose
from wtforms import HiddenField
from wtforms.validators import InputRequired, Optional

from admin_views.knowledge import suggest_attributes
from admin_views.records.guard import record_or_abort, require_type
from admin_views.records.rows import RecordRow, field_label
from kefu.core.errors import Conflict, DomainError
from kefu.core.i18n import _
from kefu.org.roles import Action
from kefu.records.fields import get_field_type
from kefu.records.references import is_reference
from kefu.records.sections import workflow_of
from kefu.records.values import project_id_for
from kefu.records.write import create_record, update_record
from kefu.rules import parent
from kefu.rules.computed import computed_targets


class RecordForms:
    """Forms for ``RecordView`` (which provides ``record_type``, ``_definition``, ``_editable_core``, ``_actor``
    and ``display_value``)."""

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        """The create form; the 403 page for a user whose roles do not create records of the type."""
        require_type(self.record_type, Action.CREATE.value)
        return super().create_view()

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        """The edit form: 404 for a record the user may not read, the 403 page with the reason for one they may
        read but not edit."""
        record_or_abort(self.record_type, request.args.get("id", ""), Action.EDIT.value)
        return super().edit_view()

    def scaffold_form(self, context=None):
        """The form class for the type; per request (``_form_class``) it is built with that request's context."""
        class RecordForm(self.form_base_class):
            version = HiddenField()

        if self.record_type is None:
            return RecordForm
        # The type's own fields first, as the handbook's form reads; who handles it last.
        for definition in [*self.record_type.active_fields, *self._editable_core()]:
            field_type = get_field_type(definition.type)
            field = field_type.form_field(definition, context)
            field.kwargs["label"] = field_label(definition)
            kind = getattr(field_type, "kind_name", None)
            if kind:  # reference fields get autocomplete from /api/v1/refs/<kind>
                field.kwargs["render_kw"] = {**(field.kwargs.get("render_kw") or {}), "data-ref-kind": kind,
                                             "autocomplete": "off", "list": f"ref-{definition.key}"}
            hints = suggest_attributes(self.record_type, definition.key)
            if hints:  # the knowledge base's suggestions under the question input
                field.kwargs["render_kw"] = {**(field.kwargs.get("render_kw") or {}), **hints}
            setattr(RecordForm, definition.key, field)
        return RecordForm

    def _form_class(self, row: RecordRow | None = None):
        # Built per request: the field validators need this user (defaults,
        # uploads), the project chosen in this very form (unit names) and, on
        # edit, the record's values (one no longer among the choices is offered
        # and kept while untouched) — never those this user may not read.
        actor = self._actor()
        typed = request.form if request.method == "POST" else {}
        context = actor.field_context(project_id=project_id_for(self.record_type, typed, actor))
        if row is not None:
            masked = self._masked_keys()
            context = replace(context, current={k: v for k, v in row.values.items() if k not in masked})
        return self.scaffold_form(context)

    def scaffold_list_form(self, widget=None, validators=None):
        return self.scaffold_form()

    def create_form(self, obj=None):
        form = self._form_class()(request.form if request.method == "POST" else None)
        if request.method != "POST":
            form.status.data = workflow_of(self.record_type).initial
            # A prefill of references from the link that opened the form (the caller page: ?customer=<id>&unit=<id>).
            for key, value in request.args.items():
                definition = self._definition(key) if key in form and value else None
                if definition is not None and is_reference(definition) and ObjectId.is_valid(value):
                    form[key].data = self._form_data(definition, value)  # shown as a person knows it: the name
            # The parent's number from its details page's add button (?meeting=ZTH-…: kefu.rules.parent).
            for key, number in parent.prefilled(self.record_type, request.args).items():
                form[key].data = number
        _disable(form, computed_targets(self.record_type))
        return form

    def _masked_keys(self) -> set[str]:
        """Sensitive fields this user may not read: their edit inputs start empty and empty means "unchanged"."""
        if self._actor().sees_pii(self.record_type.key):
            return set()
        return {d.key for d in self.record_type.active_fields if d.sensitive}

    def _fixed_keys(self, row: RecordRow) -> set[str]:
        """Fields of ``row`` this user may not change: the assignee unless they may reassign the record (the input
        is disabled and whatever arrives is ignored; the write path checks again)."""
        if self._actor().access.permits(row.document, Action.REASSIGN.value):
            return set()
        return {"assignee"}

    def _form_data(self, definition, value):
        """The stored ``value`` as the edit form shows it (a reference by its handle: a customer by name, never by
        personal data)."""
        return get_field_type(definition.type).form_data(value, self._actor().tz)

    def edit_form(self, obj=None):
        form = self._form_class(obj)(request.form if request.method == "POST" else None)
        masked = self._masked_keys()
        if obj is not None and request.method != "POST":
            form.version.data = obj.version
            for definition in [*self._editable_core(), *self.record_type.active_fields]:
                if definition.key in form:
                    value = None if definition.key in masked else obj.values.get(definition.key)
                    # A masked input starts empty, not with the field's default: a default shown and sent back
                    # would overwrite the value the user cannot see.
                    form[definition.key].data = None if value is None else self._form_data(definition, value)
        _disable(form, {*(self._fixed_keys(obj) if obj is not None else ()), *computed_targets(self.record_type)})
        for definition in self.record_type.active_fields:
            field = form[definition.key] if definition.key in form else None
            if field is None:
                continue
            if definition.readonly:
                field.render_kw = {**(field.render_kw or {}), "readonly": True}
            if definition.key in masked:
                # The stored value never reaches this user's browser; leaving the input empty keeps it.
                shown = self.display_value(obj, definition.key) if obj is not None else ""
                field.render_kw = {**(field.render_kw or {}),
                                   "placeholder": _("%(masked)s（留空则不修改）", masked=shown or "-")}
                field.validators = [Optional(), *(v for v in field.validators if not isinstance(v, InputRequired))]
                field.flags.required = False
        return form

    def _values_from(self, form, row: RecordRow | None = None) -> dict:
        """The validated form's values; on edit only those that differ from the stored record."""
        values = {}
        fixed = {*(self._fixed_keys(row) if row is not None else ()), *computed_targets(self.record_type)}
        for definition in [*self._editable_core(), *self.record_type.active_fields]:
            if definition.key not in form or definition.key in fixed:
                continue
            data = form[definition.key].data
            if row is not None and definition.key in self._masked_keys() and not self._typed(definition.key):
                continue
            if row is None:
                if data not in (None, "", []):
                    values[definition.key] = data
            elif not definition.readonly and not self._shown_alike(definition, data, row.values.get(definition.key)):
                values[definition.key] = data
        return values

    @staticmethod
    def _typed(key: str) -> bool:
        """Whether the user put something into the input ``key`` (an unticked checkbox, an empty input or an empty
        selection sends nothing: for a masked field that means "unchanged", never "false" or "empty")."""
        return any(str(value).strip() for value in request.form.getlist(key)) or any(
            upload.filename for upload in request.files.getlist(key))

    def _shown_alike(self, definition, submitted, stored) -> bool:
        """True when the submitted value is the stored one as the form showed it (a time to the minute)."""
        if submitted == stored:
            return True
        field_type, tz = get_field_type(definition.type), self._actor().tz
        return None not in (submitted, stored) and field_type.form_data(submitted, tz) == field_type.form_data(
            stored, tz)

    def _show_errors(self, form, exc: DomainError) -> None:
        shown = False
        for key, message in exc.fields.items():
            if key in form:
                form[key].errors = [*form[key].errors, str(message)] if isinstance(form[key].errors, list) else [
                    str(message)]
                shown = True
        flash(str(exc) if not shown else _("请修改标红的字段"), "error")

    def create_model(self, form):
        try:
            document = create_record(self.record_type.key, self._values_from(form), self._actor())
        except DomainError as exc:
            self._show_errors(form, exc)
            return False
        return RecordRow(self.record_type, document, self._actor())

    def update_model(self, form, model):
        try:
            document = update_record(self.record_type.key, model.id, self._values_from(form, model),
                                     self._actor(), version=form.version.data)
        except Conflict as exc:
            current = RecordRow(self.record_type, exc.current, self._actor())
            shown = "；".join(f"{field_label(self._definition(k))}：{self.display_value(current, k) or '-'}"
                             for k in self._values_from(form, model) if self._definition(k) is not None)
            flash(_("已被他人修改，未保存。当前内容：%(values)s。请刷新后重新编辑。", values=shown or "-"), "error")
            return False
        except DomainError as exc:
            self._show_errors(form, exc)
            return False
        model.document = document
        return True

    def delete_model(self, model):  # pragma: no cover - can_delete is False
        return False


def _disable(form, keys) -> None:
    """Show the inputs ``keys`` disabled (what arrives for them is ignored): fields this user may not change, and
    the fields the type's ``computed:`` rules set."""
    for key in keys:
        if key in form:
            form[key].render_kw = {**(form[key].render_kw or {}), "disabled": True}
            form[key].validators = [Optional()]
            form[key].flags.required = False
