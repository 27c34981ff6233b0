"""知识库: the entries' screen (list with search, create, edit, publish, deactivate; use counts), the one-click
加入知识库 posted from a record's details page, and the hints a record form's question input carries for the
suggestions script (``static/kefu_knowledge_suggest.js``).

Thin: every write goes through ``kefu.knowledge``. Everyone signed in reads the entries; only a role with 维护知识库
(``Capability.MANAGE_KNOWLEDGE``) creates, edits, publishes or deactivates them.
"""
from __future__ import annotations

from flask import Flask, abort, flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_login import current_user
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired

from admin_views.base import AdminForm, SecureModelView
from kefu.core.errors import DomainError, NotFound, PermissionDenied
from kefu.core.i18n import _, _l
from kefu.knowledge import entries
from kefu.knowledge.section import entry_from_record, knowledge_of, offer
from kefu.org.roles import Capability
from kefu.org.structure import Project
from web.actor import current_actor


def _project_choices():
    return [("", _l("全部项目")), *((str(p.pk), p.name) for p in Project.objects.only("name"))]


class EntryForm(AdminForm):
    question = TextAreaField(_l("问题"), render_kw={"rows": 2, "maxlength": entries.MAX_QUESTION})
    answer = TextAreaField(_l("解答"), render_kw={"rows": 6, "maxlength": entries.MAX_ANSWER})
    category = StringField(_l("分类"), render_kw={"maxlength": entries.MAX_CATEGORY})
    tags = StringField(_l("标签"), description=_l("多个用逗号分隔"))
    project = SelectField(_l("适用项目"), choices=_project_choices, validate_choice=False)
    state = SelectField(_l("状态"), choices=lambda: [(k, str(v)) for k, v in entries.STATE_LABELS.items()])


class FromRecordForm(AdminForm):
    type_key = HiddenField(validators=[InputRequired()])
    record_id = HiddenField(validators=[InputRequired()])


def _keeps_knowledge() -> bool:
    return current_user.is_authenticated and current_actor().access.has(Capability.MANAGE_KNOWLEDGE.value)


def _source(view, context, model, name) -> str:
    """The record an entry came from (its type or number), only for a reader who may read that record: the entry
    is everyone's, its record is not. The list page finds the readable ones in one query (``get_list``)."""
    if model.source_id is None:
        return ""
    readable = g.get("knowledge_readable_sources")
    if readable is None:
        readable = entries.readable_sources([model.source_id], current_actor().access)
    return (getattr(model, name) or "") if str(model.source_id) in readable else ""


class KnowledgeView(SecureModelView):
    """``/admin/knowledgeentry/``: the entries, most used first; searched in their question, answer and
    category."""

    required_capability = None  # everyone signed in reads the knowledge base
    can_delete = False  # deactivated, never deleted: the use counts stay
    column_list = ("question", "category", "state", "use_count", "source_number", "updated_at", "updated_by")
    column_details_list = ("question", "answer", "category", "tags", "project", "state", "use_count",
                           "last_used_at", "source_type", "source_number", "created_by", "created_at",
                           "updated_by", "updated_at")
    column_searchable_list = ("question", "answer", "category")
    column_filters = ("state", "category")
    column_sortable_list = ("use_count", "updated_at", "category")
    column_formatters = {
        "state": lambda v, c, m, n: str(entries.STATE_LABELS.get(m.state, m.state)),
        "question": lambda v, c, m, n: m.question if len(m.question) <= 80 else m.question[:80] + "…",
        "source_number": _source,
    }
    column_formatters_detail = {"state": column_formatters["state"], "source_type": _source,
                                "source_number": _source, "tags": lambda v, c, m, n: "、".join(m.tags or ())}
    form = EntryForm

    @property
    def can_create(self) -> bool:
        return _keeps_knowledge()

    @property
    def can_edit(self) -> bool:
        return _keeps_knowledge()

    def is_action_allowed(self, name) -> bool:
        return _keeps_knowledge() and super().is_action_allowed(name)

    def get_query(self):
        """Everyone reads the published entries; proposed and deactivated ones only who keeps the knowledge base
        (a proposal is an answer nobody has checked yet). The details page reads through it too (``get_one``):
        an entry not published is, for anyone else, as if it did not exist."""
        query = super().get_query()
        return query if _keeps_knowledge() else query.filter(state=entries.ACTIVE)

    def get_list(self, *args, **kwargs):
        """The page's entries, with the records they came from that this reader may read (for ``_source``)."""
        count, data = super().get_list(*args, **kwargs)
        if kwargs.get("execute", True):
            data = list(data)
            g.knowledge_readable_sources = entries.readable_sources((m.source_id for m in data),
                                                                    current_actor().access)
        return count, data

    def _guard_write(self):
        if not _keeps_knowledge():
            abort(403, _("修改知识库需要“%(capability)s”权限", capability=_("维护知识库")))

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        self._guard_write()
        return super().create_view()

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        self._guard_write()
        return super().edit_view()

    def on_form_prefill(self, form, id):
        model = self.get_one(id)
        form.tags.data = "、".join(model.tags or ())
        form.project.data = str(model.project.pk) if model.project else ""

    @staticmethod
    def _values(form) -> dict:
        return {name: form[name].data for name in ("question", "answer", "category", "tags", "project")}

    def _refused(self, form, exc: DomainError) -> bool:
        """Show the service's messages at their fields (a message about no field of the form as a flash)."""
        shown = False
        for key, message in exc.fields.items():
            if key in form:
                form[key].errors = [str(message)]
                shown = True
        flash(_("请修改标红的项目") if shown else str(exc), "error")
        return False

    def create_model(self, form):
        try:
            created = entries.create_entry(self._values(form), current_user.display_name, state=form.state.data)
        except DomainError as exc:
            return self._refused(form, exc)
        return self.get_one(str(created["_id"]))

    def update_model(self, form, model):
        try:
            entries.update_entry(model.pk, self._values(form), current_user.display_name, state=form.state.data)
        except DomainError as exc:
            return self._refused(form, exc)
        return True

    def _set_states(self, ids, state: str) -> None:
        for entry_id in ids:
            entries.set_state(entry_id, state, current_user.display_name)
        flash(_("已将 %(n)s 条设为“%(state)s”", n=len(ids), state=entries.STATE_LABELS[state]), "success")

    @action("publish", _l("发布"), _l("发布所选条目？发布后录入问题时会提示它们。"))
    def action_publish(self, ids):
        self._set_states(ids, entries.ACTIVE)

    @action("deactivate", _l("停用"), _l("停用所选条目？停用后不再提示，使用次数保留。"))
    def action_deactivate(self, ids):
        self._set_states(ids, entries.INACTIVE)

    @expose("/from-record/", methods=("POST",))
    def from_record_view(self):
        """加入知识库 on a record's details page (``kefu.knowledge.section.entry_from_record``): back to the record
        with what happened."""
        form = FromRecordForm(request.form)
        if not form.validate():
            abort(400)
        target = url_for("records.details_view", type_key=form.type_key.data, id=form.record_id.data)
        try:
            entry, created = entry_from_record(form.type_key.data, form.record_id.data, current_actor())
        except NotFound:
            abort(404)
        except PermissionDenied as exc:
            flash(str(exc), "error")
            return redirect(target)
        except DomainError as exc:
            flash(str(exc), "error")
            return redirect(target)
        if entry["state"] == entries.PROPOSED:
            flash(_("已提交知识库，待审核后发布"), "success")
        else:
            flash(_("已加入知识库") if created else _("知识库条目已更新"), "success")
        return redirect(target)


def suggest_attributes(record_type, key: str) -> dict:
    """The attributes of the input ``key`` of a record form of ``record_type``: on the type's question field, the
    answer field's key for the suggestions script (``data-knowledge-answer``), its project field's key when it has
    one (``data-knowledge-project``: the project typed there narrows the suggestions) and the words it shows; none
    on any other."""
    model = knowledge_of(record_type)
    if model is None or key != model.question_field:
        return {}
    hints = {"data-knowledge-answer": model.answer_field, "data-knowledge-title": _("知识库中相近的问题（点击选用其解答）"),
             "data-knowledge-count": _("已用 {n} 次")}
    if model.project_field:
        hints["data-knowledge-project"] = model.project_field
    return hints


def knowledge_button(record_type, document) -> dict | None:
    """What the details page's 加入知识库 form needs (None when it offers none): its form and whether the record's
    entry exists already."""
    offered = offer(record_type, document)
    if offered is None:
        return None
    form = FromRecordForm(data={"type_key": record_type.key, "record_id": str(document["_id"])})
    return {"form": form, "exists": offered == "update", "url": url_for("knowledge.from_record_view")}


def init_knowledge(app: Flask) -> None:
    """Give the record pages what they show of the knowledge base: the details page's button."""
    app.jinja_env.globals["knowledge_button"] = knowledge_button
