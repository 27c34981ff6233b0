"""The navigation bar's menus: Flask-Admin's screens the user may open, and the record types by industry pack.

Rendering them is most of the cost of the page layout (a macro per item), yet they depend only on the
user's roles, the language, the page shown (its item is marked active), the URL prefix and the active
record types; so ``main_menu`` renders them once per such combination and reuses the HTML.
"""
from __future__ import annotations

from collections import OrderedDict

from flask import request
from flask_babel import get_locale
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup

from kefu.core.i18n import _
from kefu.records.types import type_name, type_summaries
from kefu.records.definitions import pack_names

MENU_TEMPLATE = "admin/_main_menu.html"
MAX_RENDERED = 512  # role sets × languages × pages: a few hundred at most; past that, start again

_rendered: dict[tuple, Markup] = {}


def record_menu(summaries, locale: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(pack name, [(type key, type name)])]``: the active record types grouped by industry pack, named
    in ``locale``."""
    packs = pack_names(locale)
    groups: OrderedDict = OrderedDict()
    for summary in summaries:
        groups.setdefault(summary["pack"], []).append((summary["key"], type_name(summary, locale)))
    return [(packs.get(pack) or _("记录"), types) for pack, types in groups.items()]


@pass_context
def main_menu(context) -> Markup:
    """``admin/_main_menu.html`` rendered in the page's context, or the HTML rendered for the same roles,
    language, page, URL prefix and record types before."""
    admin_view, locale, summaries = context.get("admin_view"), str(get_locale()), type_summaries()
    key = (tuple(sorted(current_user.roles)) if current_user.is_authenticated else None, locale,
           getattr(admin_view, "endpoint", None), request.script_root,
           tuple((s["key"], s["name"], s["name_en"], s["pack"]) for s in summaries))
    html = _rendered.get(key)
    if html is None:
        html = Markup(context.environment.get_template(MENU_TEMPLATE).render(
            context.get_all(), record_menu=record_menu(summaries, locale)))
        if len(_rendered) >= MAX_RENDERED:
            _rendered.clear()
        _rendered[key] = html
    return html
