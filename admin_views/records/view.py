"""``RecordView``: the one registered record view, and the per-type screens it hands each request to."""
from __future__ import annotations

import threading
from collections import OrderedDict
from urllib.parse import quote

from flask import abort, g, url_for
from flask_admin.helpers import set_current_view
from flask_admin.model import BaseModelView
from flask_admin.model.template import EditRowAction, ViewRowAction
from flask_babel import get_locale
from markupsafe import Markup, escape

from admin_views.base import AccessControlled, AdminForm
from admin_views.records.details import RecordDetails
from admin_views.records.forms import RecordForms
from admin_views.records.guard import require_type
from admin_views.records.listing import RecordListing
from admin_views.records.saved_views import SavedViews
from kefu.core.errors import NotFound
from kefu.org.roles import Action
from kefu.records.actor import Actor
from kefu.records.core_fields import core_field, core_fields
from kefu.records.types import RecordType, get_record_type
from web.actor import current_actor

SCREEN_CACHE_SIZE = 64


ROW_ID = "__row_id__"  # where a row's id goes into the page's URL of its icon


class FastRowLink:
    """Mixin for a Flask-Admin row icon (details, edit): the link is the page's one URL of the action with the row's
    id put in, rendered in Python — not a ``url_for`` and a template macro per row, which took a quarter of a list
    page of 50 rows. The same markup and URL as Flask-Admin's macro. An action is made per request
    (``get_list_row_actions``), so it keeps that request's URL."""

    endpoint = ""
    icon_class = ""
    _pattern: str | None = None

    def render(self, context, row_id, row):
        if self._pattern is None:
            url = context.resolve("get_url")(self.endpoint, id=ROW_ID, url=context.resolve("return_url"))
            link = f'<a class="icon" href="{escape(url)}" title="{escape(self.title or "")}">'
            self._pattern = f'{link}<span class="{escape(self.icon_class)}"></span></a>'
        return Markup(self._pattern.replace(ROW_ID, escape(quote(str(row_id), safe="")), 1))


class ViewRecordAction(FastRowLink, ViewRowAction):
    """A row's details icon."""

    endpoint = ".details_view"
    icon_class = "fa fa-eye glyphicon glyphicon-eye-open"


class EditRecordAction(FastRowLink, EditRowAction):
    """A row's edit icon, only on the records the user may edit (their roles' edit scope)."""

    endpoint = ".edit_view"
    icon_class = "fa fa-pencil glyphicon glyphicon-pencil"

    _access = None

    def render(self, context, row_id, row):
        if self._access is None:
            self._access = current_actor().access
        if not self._access.permits(row.document, Action.EDIT.value):
            return ""
        return super().render(context, row_id, row)


class RecordView(RecordListing, SavedViews, RecordForms, RecordDetails, AccessControlled, BaseModelView):
    """CRUD for the records of one record type; see the package docstring for the routing.

    What a user may do is their roles' (``kefu.org.access``): a type they may not read at all is a 403 page naming
    it; its list shows the records in their scope; a record out of it is not found (404) on every screen; the
    create and edit buttons and forms need ``create`` and ``edit`` (within the scope) — a record the user may read
    but not edit is a 403 page with the reason."""

    form_base_class = AdminForm
    can_view_details = True
    can_delete = False  # records are closed, never deleted: the handbooks keep every case
    can_export = False  # exports go through /records/<type>/export (streamed, audited)
    page_size = 50
    details_template = "admin/record_details.html"
    list_template = "admin/record_list.html"

    def __init__(self, record_type: RecordType | None = None, **kwargs):
        self.record_type = record_type
        self._screens: OrderedDict = OrderedDict()
        self._screens_lock = threading.Lock()
        super().__init__(dict, **kwargs)

    # -- routing -----------------------------------------------------------
    def is_visible(self) -> bool:
        return False  # the menu lists record types itself (templates/admin/kefu_base.html)

    def create_blueprint(self, admin):
        blueprint = super().create_blueprint(admin)

        @blueprint.url_defaults
        def current_type(endpoint, values):
            if "type_key" not in values and g.get("kefu_record_type"):
                values["type_key"] = g.kefu_record_type

        return blueprint

    def _run_view(self, fn, *args, **kwargs):
        type_key = kwargs.pop("type_key", None)
        if self.record_type is not None or type_key is None:
            return fn(self, *args, **kwargs)
        try:
            record_type = get_record_type(type_key)
        except NotFound:
            abort(404)
        g.kefu_record_type = record_type.key
        require_type(record_type, Action.READ.value)
        screen = self._screen_for(record_type)
        set_current_view(screen)
        return fn(screen, *args, **kwargs)

    def _screen_for(self, record_type: RecordType) -> "RecordView":
        cache_key = (record_type.key, record_type.version, str(get_locale()))
        with self._screens_lock:
            screen = self._screens.get(cache_key)
            if screen is not None:
                self._screens.move_to_end(cache_key)
                return screen
        screen = type(self)(record_type, name=record_type.name, endpoint=self.endpoint,
                            category=self.category, menu_class_name=self.menu_class_name)
        screen.admin, screen.url, screen.blueprint = self.admin, self.url, self.blueprint
        screen.static_url_path = self.static_url_path
        with self._screens_lock:
            self._screens[cache_key] = screen
            while len(self._screens) > SCREEN_CACHE_SIZE:
                self._screens.popitem(last=False)
        return screen

    # -- what this user may do, per request (a screen is shared by every user) ----
    @property
    def can_create(self) -> bool:
        return self._allows(Action.CREATE.value)

    @property
    def can_edit(self) -> bool:
        return self._allows(Action.EDIT.value)

    def _allows(self, action: str) -> bool:
        """Whether the user's roles allow ``action`` on some records of the type."""
        return self.record_type is not None and self._actor().access.allows(self.record_type.key, action)

    def get_list_row_actions(self):
        fast = {ViewRowAction: ViewRecordAction, EditRowAction: EditRecordAction}
        return [fast[type(action)]() if type(action) in fast else action for action in super().get_list_row_actions()]

    # -- the type's definition, shared by every part -------------------------
    def _editable_core(self):
        return [f for f in core_fields(self.record_type) if f.editable]

    def _definition(self, key):
        return core_field(self.record_type, key) or self.record_type.field(key)

    def _actor(self) -> Actor:
        return current_actor()

    def get_pk_value(self, model):
        return model.id

    @property
    def extra_js(self):
        return [url_for("static", filename="kefu.js"), url_for("static", filename="kefu_knowledge_suggest.js")]
