"""The record list: its columns, sorting, search, filters, the 时限 badge, and the export of the list as shown."""
from __future__ import annotations

import json

from flask import Response, flash, g, redirect, request, stream_with_context, url_for
from flask_admin import expose
from flask_login import current_user
from markupsafe import Markup, escape

from admin_views.base import BoundedPaging
from admin_views.customers import archive_link
from admin_views.records.filters import FieldFilter, SlaFilter
from admin_views.records.guard import require_type
from admin_views.records.rows import SORT_FIELDS, RecordRow, field_label
from admin_views.records.saved_views import ViewForm
from kefu.core.clock import utcnow
from kefu.core.errors import NotFound, ValidationFailed
from kefu.core.i18n import _
from kefu.insight import export_jobs, exports, views
from kefu.org.access import ACCESS_PROJECTION
from kefu.org.roles import Action, Capability
from kefu.records.core_fields import CORE_FIELDS, core_field
from kefu.records.fields import get_field_type
from kefu.records.query import COUNT_LIMIT, SLA_SORT, RecordQuery, find_page
from kefu.records.references import CUSTOMER, is_reference, reference_labels
from kefu.records.store import get_record_for
from kefu.rules import sla
from kefu.rules.sla import SLA_COLUMN


class RecordListing(BoundedPaging):
    """The list screen of ``RecordView`` (which provides ``record_type``, ``_definition``, ``_actor`` and
    ``_allows``)."""

    def scaffold_list_columns(self):
        if self.record_type is None:
            return ["number"]
        configured = [f.key for f in self.record_type.active_fields if f.list]
        clocks = [SLA_COLUMN] if sla.clocks_of(self.record_type) else []
        return ["number", "status", *clocks, *configured, "assignee", "created_at"]

    def get_column_name(self, field):
        if field == SLA_COLUMN:
            return _("时限")
        definition = self._definition(field) if self.record_type else None
        return field_label(definition) if definition is not None else field

    def get_details_columns(self):
        return []  # the details template lays out every field itself

    def scaffold_sortable_columns(self):
        sortable = {}
        for key in self.scaffold_list_columns():
            definition = self._definition(key) if self.record_type else None
            if definition is not None and not definition.sensitive and get_field_type(definition.type).sortable:
                sortable[key] = key
        if SLA_COLUMN in self.scaffold_list_columns():
            sortable[SLA_COLUMN] = SLA_SORT  # the earliest running deadline: the most overdue first
        return sortable

    def init_search(self):
        return self.record_type is not None

    def search_placeholder(self):
        if self.record_type is None:
            return None
        names = [field_label(f) for f in self.record_type.active_fields if f.search]
        return _("搜索：编号、%(fields)s", fields="、".join(names)) if names else _("搜索编号")

    def get_filters(self):
        if self.record_type is None:
            return None
        filters = []
        core_filters = ("status", "assignee", "department", "created_at")
        for definition in [*(core_field(self.record_type, k) for k in core_filters),
                           *(f for f in self.record_type.active_fields if f.filter)]:
            field_type = get_field_type(definition.type)
            options = field_type.filter_options(definition)  # a removed choice too, marked 已停用
            for op in field_type.operators:
                if definition.sensitive and op not in ("eq", "empty"):
                    continue
                if op == "not_empty":
                    continue  # offered as 为空：是/否
                filters.append(FieldFilter(definition, op, field_label(definition),
                                           options if op in ("eq", "ne") else None))
        # Last, so the URL numbers of the field filters stay as they were.
        filters.extend(SlaFilter(flag) for flag in ("overdue", "due_soon"))
        return filters

    def _visible_columns(self) -> list[tuple[str, str]]:
        """``(key, label)`` of the list's columns: the active view's, else the type's list columns."""
        view = self._active_view()
        if view is not None and view.columns:
            return [(key, self.get_column_name(key)) for key in view.columns]
        return self._list_columns

    def _get_column_by_idx(self, idx):
        columns = self._visible_columns()
        if idx is None or idx < 0 or idx >= len(columns):
            return None
        return columns[idx]

    def _list_query(self, page, sort_field, sort_desc, search, filters, page_size=None) -> RecordQuery:
        sort_field = SORT_FIELDS.get(sort_field, sort_field)
        query = RecordQuery(
            q=search, sort=(f"-{sort_field}" if sort_desc else sort_field) if sort_field else None,
            page=(page or 0) + 1, per_page=page_size or self.page_size,
        )
        for index, _name, value in filters or []:
            query = self._filters[index].apply(query, value)
        view = self._active_view()
        return view.apply(query) if view is not None else query

    @expose("/")
    def index_view(self):
        if not request.args and self.record_type is not None:
            default = views.default_key(current_user.pk, self.record_type.key)
            if default:
                return redirect(self.get_url(".index_view", view=default))
        return super().index_view()

    def get_list(self, page, sort_field, sort_desc, search, filters, execute=True, page_size=None):
        """The page of rows and their total: exact up to ``COUNT_LIMIT`` matches, else None (the simple pager; the
        page says 超过 1,000 条 and counts them all when asked, ``?count=all``). The references the page shows are
        looked up once per kind for the whole page."""
        actor = self._actor()
        query = self._list_query(page, sort_field, sort_desc, search, filters, page_size)
        count_limit = None if request.args.get("count") == "all" else COUNT_LIMIT
        shown = {key for key, _label in self._visible_columns()}
        try:
            found = find_page(self.record_type.key, query, actor, record_type=self.record_type,
                              count_limit=count_limit, projection=self._list_projection(shown))
        except ValidationFailed as exc:
            flash(str(exc), "error")
            return 0, []
        g.kefu_list_page = found
        rows = [RecordRow(self.record_type, d, actor, keys=shown) for d in found.documents]
        labels = reference_labels(self._labelled_columns(), [row.values for row in rows])
        cells: dict = {}  # per column, how its values are shown (``_cell``), shared by the page's rows
        for row in rows:
            row.labels, row.cells = labels, cells
        return (found.total if found.exact else None), rows

    def _list_projection(self, shown) -> dict:
        """What a list row reads of a record: the core fields, the configured ones ``shown`` (in ``data``, or
        encrypted in ``pii``), the SLA clocks for 时限 and what the access rules check — not its history, its
        other fields or its search index."""
        paths = [*ACCESS_PROJECTION, *(f.path for f in CORE_FIELDS), "sla", "sla_open"]
        for key in shown:
            definition = self._definition(key) if key != SLA_COLUMN else None
            if definition is not None and not definition.core:
                paths += [f"data.{key}", f"pii.{key}"]
        return dict.fromkeys(paths, 1)

    def _labelled_columns(self) -> list:
        """The definitions of the shown columns whose reference labels this user may read (a sensitive one stays
        masked)."""
        masked = not self._actor().sees_pii(self.record_type.key)
        shown = [self._definition(key) for key, _label in self._visible_columns() if key != SLA_COLUMN]
        return [d for d in shown if d is not None and is_reference(d) and not (d.sensitive and masked)]

    def get_one(self, id):
        """The record when the user may read it, else None (whether it exists or not: no existence leak)."""
        actor = self._actor()
        try:
            document = get_record_for(self.record_type.key, id, actor.access)
        except NotFound:
            return None
        return RecordRow(self.record_type, document, actor)

    def _get_list_value(self, context, model, name, column_formatters, column_type_formatters):
        cells = model.cells
        if name == SLA_COLUMN:
            if name not in cells:
                names = {state: str(label) for state, label in sla.STATE_LABELS.items()}  # translated once a page
                cells[name] = lambda row, value: self.sla_badge(row, names)
            return cells[name](model, None)
        value = model.values.get(name)
        if value is None or value == "" or value == []:
            return ""
        if name not in cells:
            cells[name] = self._cell(name)
        return cells[name](model, value)

    def _cell(self, key: str):
        """How a row's value of the column ``key`` is shown — as ``display_value`` shows it, decided once per page
        instead of per cell: masked, the page's label of a reference, or the field type's display (remembered per
        value for a choice or yes/no)."""
        definition = self._definition(key)
        field_type = get_field_type(definition.type)
        if definition.sensitive and not self._actor().sees_pii(self.record_type.key):
            return lambda row, value: field_type.mask(value)
        if is_reference(definition):
            deleted = _("（已删除）")
            shown = (lambda row, value: row.labels[key].get(value, deleted) if key in row.labels
                     else self.display_value(row, key))
            if definition.type == CUSTOMER:  # links to the customer's archive (一户一档)
                return lambda row, value: archive_link(value, shown(row, value))
            return shown
        tz = self._actor().tz
        if not field_type.finite_values:
            return lambda row, value: field_type.display(value, tz)
        shown: dict = {}

        def remembered(row, value):
            token = tuple(value) if isinstance(value, list) else value
            if token not in shown:
                shown[token] = field_type.display(value, tz)
            return shown[token]

        return remembered

    def sla_badge(self, row: RecordRow, names=sla.STATE_LABELS) -> Markup:
        """The state of the record's nearest running clock (else how its clocks ended), as a badge; ``names``: each
        state's label."""
        now = utcnow()
        nearest = sla.nearest_clock(row.document, now)
        if nearest is None:
            return Markup("")
        state = sla.state_at(nearest, now)
        # Escaped piece by piece: Markup.format's escaping formatter cost more than the rest of the row.
        return Markup(f'<span class="badge kefu-sla-{escape(state)}" title="{escape(nearest.get("name", ""))}">'
                      f'{escape(names[state])}</span>')

    def display_value(self, row: RecordRow, key: str) -> str:
        """The value of ``key`` as this user may see it: masked when sensitive and not theirs to read."""
        definition = self._definition(key)
        value = row.values.get(key)
        if value in (None, "", []):
            return ""
        field_type = get_field_type(definition.type)
        if definition.sensitive and not self._actor().sees_pii(self.record_type.key):
            return field_type.mask(value)
        if key in row.labels:
            label = row.labels[key].get(value)
            return label if label is not None else _("（已删除）")
        return field_type.display(value, self._actor().tz)

    def render(self, template, **kwargs):
        if template == self.list_template and self.record_type is not None:
            kwargs["list_columns"] = self._visible_columns()
            kwargs["export_args"] = dict(request.args)
            kwargs["view_menu"] = views.views_for(self.record_type, current_user)
            kwargs["active_view"] = self._active_view()
            kwargs["view_state"] = json.dumps(self._view_state(), ensure_ascii=False)
            kwargs["view_columns"] = [(key, self.get_column_name(key)) for key in self._column_choices()]
            kwargs["can_share_views"] = self._actor().access.has(Capability.SHARE_VIEWS.value)
            kwargs["can_export_records"] = self._allows(Action.EXPORT.value)
            kwargs["view_form"] = ViewForm()
            kwargs["list_page"] = g.get("kefu_list_page")
            kwargs["count_all_url"] = self.get_url(".index_view", **{**request.args.to_dict(), "count": "all"})
        return super().render(template, **kwargs)

    @expose("/export/")
    def export_view(self):
        """The list as it is on screen — filters, view, search, sort, columns — as XLSX or CSV; a large one is
        built in the background and lands in the user's inbox. Only the records the user may export; a 403
        page for a user whose roles do not export the type."""
        require_type(self.record_type, Action.EXPORT.value)
        fmt = request.args.get("fmt", "xlsx")
        if fmt not in exports.FORMATS:
            flash(_("导出格式应为 csv 或 xlsx"), "error")
            return redirect(self.get_url(".index_view"))
        actor = self._actor()
        view_args = self._get_list_extra_args()
        column = self._get_column_by_idx(view_args.sort)
        query = self._list_query(0, column[0] if column else None, view_args.sort_desc, view_args.search,
                                 view_args.filters)
        columns = [key for key, _label in self._visible_columns()]
        try:
            total = exports.count_rows(self.record_type, query, actor)
        except ValidationFailed as exc:
            flash(str(exc), "error")
            return redirect(self.get_url(".index_view", **{k: v for k, v in request.args.items() if k != "fmt"}))
        if total > export_jobs.async_threshold():
            job = export_jobs.start(self.record_type, query, actor, fmt, total=total, columns=columns,
                                    view=self._active_view())
            if job.status == "failed":
                flash(job.error, "error")
            else:
                flash(_("共 %(n)s 行，导出已在后台进行；完成后会通知您，也可在“我的导出”查看进度", n=total), "info")
            return redirect(url_for("exports.index"))
        export = exports.export_records(self.record_type, query, actor, fmt, columns=columns,
                                        view=self._active_view())
        return Response(stream_with_context(export.chunks), mimetype=export.mimetype,
                        headers={"Content-Disposition": export.content_disposition})
