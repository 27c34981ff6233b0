"""A record's details page: every field, the timeline (events and audit), approvals, callbacks and clocks, and the
actions posted from it (add an event, the customer rejects the result, act on an approval)."""
from __future__ import annotations

from flask import abort, flash, redirect, request
from flask_admin import expose
from flask_admin.form import SecureForm
from flask_admin.helpers import get_redirect_target
from wtforms import FileField, HiddenField, SelectField, TextAreaField
from wtforms.validators import InputRequired

from admin_views.customers import archive_link
from admin_views.records.rows import field_label
from kefu.core.errors import DomainError, NotFound, PermissionDenied
from kefu.core.i18n import _, _l
from kefu.org.roles import Action
from kefu.records.core_fields import core_field
from kefu.records.references import is_reference, reference_labels
from kefu.records.timeline import EVENT_KINDS, MANUAL_EVENT_KINDS, add_event, record_audit, record_events
from kefu.rules import approval_panel, approvals, callbacks, levels, parent, sla

DETAILS_CORE_FIELDS = ("number", "status", "assignee", "department", "customer", "created_by", "created_at",
                       "updated_at")


class RejectForm(SecureForm):
    note = TextAreaField(_l("客户不接受的原因"), validators=[InputRequired()])


class ApprovalForm(SecureForm):
    action = SelectField(_l("审批操作"), choices=lambda: [(k, str(v)) for k, v in approvals.ACTION_LABELS.items()],
                         validators=[InputRequired()])
    comment = TextAreaField(_l("意见"))
    request_id = HiddenField()


class EventForm(SecureForm):
    kind = SelectField(_l("类型"), choices=lambda: [(k, str(EVENT_KINDS[k])) for k in MANUAL_EVENT_KINDS],
                       validators=[InputRequired()])
    text = TextAreaField(_l("内容"))
    files = FileField(_l("附件"))


class RecordDetails:
    """The details page of ``RecordView`` (which provides ``record_type``, ``get_one``, ``display_value`` and
    ``_actor``): a record the user may not read is not found (404); the forms that change it are offered when
    they may edit it."""

    @expose("/details/")
    def details_view(self):
        return_url = get_redirect_target() or self.get_url(".index_view")
        row = self.get_one(request.args.get("id", ""))
        if row is None:
            abort(404)
        stored_only = [f for f in self.record_type.specs if not f.active and f.key in row.values]
        core_fields = [core_field(self.record_type, k) for k in DETAILS_CORE_FIELDS]
        fields = self.record_type.active_fields
        row.labels = self._reference_labels(row, [*core_fields, *fields, *stored_only])
        return self.render(
            self.details_template, model=row, record_type=self.record_type, return_url=return_url,
            core_fields=core_fields, fields=fields, stored_only=stored_only, label=field_label,
            events=record_events(row.id), audit=record_audit(row.id),
            event_form=EventForm(), event_kinds=EVENT_KINDS, display=self.display_value,
            approval=approval_panel.panel(self.record_type, row.document, self._actor()),
            approval_form=ApprovalForm(),
            links=callbacks.links_of(row.document, self._actor().tz, self._actor().access),
            children=parent.children_of(self.record_type, row.document, self._actor().tz, self._actor().access),
            clocks=sla.clocks_json(row.document, self._actor().tz), sla_states=sla.STATE_LABELS,
            rejection=levels.rejection_preview(self.record_type, row.document), reject_form=RejectForm(),
            may_edit=self._actor().access.permits(row.document, Action.EDIT.value), customer_link=archive_link,
        )

    def _reference_labels(self, row, definitions) -> dict:
        """The labels of the record's references the page shows, one query per kind of target (the user's and the
        assignee's names together); a sensitive reference the user may not read stays masked."""
        masked = not self._actor().sees_pii(self.record_type.key)
        shown = [d for d in definitions if is_reference(d) and not (d.sensitive and masked)]
        return reference_labels(shown, [row.values])

    def _record_action(self, form, act, done: str):
        """A POST from the details page: validate ``form``, run ``act(record_id)`` (the service checks the user's
        rights on the record), say how it went, go back. A record they may not read is the 404 page, a refusal for
        lack of rights the 403 page; any other refusal a message."""
        record_id = request.args.get("id", "")
        target = self.get_url(".details_view", id=record_id)
        if not form.validate():
            flash(_("提交失败：%(errors)s", errors="；".join(e for errs in form.errors.values() for e in errs)), "error")
            return redirect(target)
        try:
            act(record_id)
        except NotFound:
            abort(404)
        except PermissionDenied as exc:
            abort(403, str(exc.message))
        except DomainError as exc:
            flash(str(exc), "error")
        else:
            flash(done, "success")
        return redirect(target)

    @expose("/event/", methods=("POST",))
    def add_event_view(self):
        form = EventForm(request.form)
        return self._record_action(form, lambda record_id: add_event(
            self.record_type.key, record_id, form.kind.data, form.text.data, self._actor(),
            files=[f for f in request.files.getlist("files") if f and f.filename]), _("已记录"))

    @expose("/reject/", methods=("POST",))
    def reject_view(self):
        """The customer does not accept the result (``kefu.rules.levels.customer_rejected``): one level up, back to
        rework."""
        form = RejectForm(request.form)
        return self._record_action(form, lambda record_id: levels.customer_rejected(
            self.record_type.key, record_id, self._actor(), form.note.data), _("已退回重新处理"))

    @expose("/approval/", methods=("POST",))
    def approval_view(self):
        """Review, approve or reject the record's approval request (``kefu.rules.approvals.act``); refused → 403
        page."""
        form = ApprovalForm(request.form)
        return self._record_action(form, lambda record_id: approvals.act(
            self.record_type.key, record_id, form.action.data, self._actor(), comment=form.comment.data,
            request_id=form.request_id.data or None),
            _("已%(action)s", action=approvals.ACTION_LABELS.get(form.action.data, form.action.data or "")))
