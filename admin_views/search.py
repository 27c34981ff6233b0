"""Search everywhere: the results page of the navigation bar's search box (``/admin/search/``).

A thin view over ``kefu.insight.search_all``. The box POSTs (with the page's CSRF token), so a phone number never
enters a URL — not the address bar, the history, an access log or a link this page makes; ``GET ?q=`` serves
links and bookmarks of other searches and refuses a phone number with a message. Record hits link to the
record, customer hits to the customer's archive (``/admin/customers/<id>``), each group to its full list when
the text can go into a URL.
"""
from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import current_app, request, url_for
from flask_admin import BaseView, expose
from flask_wtf.csrf import CSRFError

from admin_views.base import AccessControlled
from kefu.core.errors import DomainError
from kefu.core.i18n import _
from kefu.insight import customer_archive, search_all
from web.actor import current_actor


class SearchView(AccessControlled, BaseView):
    """``GET /admin/search/?q=`` and ``POST /admin/search/`` (form field ``q``): the grouped results."""

    def is_visible(self) -> bool:
        return False  # reached from the box in the navigation bar, not the main menu

    @expose("/", methods=("GET", "POST"))
    def index(self):
        text, problem, result = "", None, None
        if request.method == "POST":
            try:
                current_app.extensions["kefu_csrf"].protect()
            except CSRFError:
                problem = _("页面已过期，请刷新后重新搜索")
            else:
                text = request.form.get("q", "")
        else:
            text = request.args.get("q", "")
            if search_all.phone_of(text.strip()):
                problem, text = _("按电话搜索请使用导航栏的搜索框，电话号码不能放在网址里"), ""
        if problem is None and (text.strip() or request.method == "POST" or "q" in request.args):
            try:
                result = search_all.search_everywhere(text, current_actor())
            except DomainError as exc:  # a blank or untypable text, too many phone lookups
                problem = exc.message
        linkable = bool(result) and not search_all.phone_of(text.strip())
        return self.render("admin/search.html", text=text if linkable else "", problem=problem, result=result,
                           groups=self._groups(result, text.strip() if linkable else None),
                           read_as=[search_all.READ_AS_LABELS[kind] for kind in (result.read_as if result else ())],
                           tz=ZoneInfo(current_app.config["KEFU_TIMEZONE"]),
                           customer_links=customer_archive.may_read_archive(current_actor().access))

    @staticmethod
    def _groups(result, list_search: str | None) -> list[dict]:
        """The groups as the page shows them: each hit with its link, each group with the link to its list (the
        record list searched for the text; none for a phone number)."""
        if result is None:
            return []
        customers_url = url_for("customers.index_view")
        shown = []
        for group in result.groups:
            if group.is_customers:
                links = [f"{customers_url}{hit['id']}" for hit in group.hits]
                more = url_for("customers.index_view", search=list_search) if list_search else None
            else:
                details = url_for("records.details_view", type_key=group.key)
                links = [f"{details}?id={hit['id']}" for hit in group.hits]
                more = url_for("records.index_view", type_key=group.key, search=list_search) if list_search else None
            shown.append({"group": group, "hits": list(zip(group.hits, links)), "more": more,
                          "count": f"{group.total:,}" + ("" if group.exact else "+")})
        return shown
