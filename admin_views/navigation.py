"""The navigation bar's menus: Flask-Admin's screens the user may open, and the record types they may read, by
menu group (``kefu.records.menu_groups``: the industry packs, then the groups admins created).

Rendering them is most of the cost of the page layout (a macro per item), yet they depend only on what the
user's roles allow (their capabilities, which record types they read — roles are data, so an edited role shows
at once), the language, the page shown (its item is marked active), the URL prefix, the menu groups and the active
record types;
so ``main_menu`` renders them once per such combination and reuses the HTML.
"""
from __future__ import annotations

from flask import request
from flask_babel import get_locale
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup

from kefu.core.i18n import _
from kefu.insight.scope import allowed_somewhere
from kefu.org.access import AccessPolicy
from kefu.org.roles import ALL_CAPABILITIES, Action
from kefu.records.menu_groups import group_name, menu_groups
from kefu.records.types import type_name, type_summaries
from web.actor import current_actor

MENU_TEMPLATE = "admin/_main_menu.html"
MAX_RENDERED = 512  # permission sets × languages × pages: a few hundred at most; past that, start again

_rendered: dict[tuple, Markup] = {}


def record_menu(summaries, groups, locale: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(group name, [(type key, type name)])]``: the active record types under their menu group (``pack``),
    named in ``locale``; groups in the order of ``groups`` (``menu_groups()``), types in the order of ``summaries``
    (their ``sort_order``), a type without a known group under 记录 last. A group without types is left out."""
    listed = {group["key"]: (group_name(group, locale), []) for group in groups}
    others: list[tuple[str, str]] = []
    for summary in summaries:
        listed.get(summary["pack"], (None, others))[1].append((summary["key"], type_name(summary, locale)))
    menu = [(name, types) for name, types in listed.values() if types]
    return menu + [(_("记录"), others)] if others else menu


def permissions_key(access: AccessPolicy) -> tuple:
    """What of ``access`` decides which screens open (``required_capability``, 逾期督办 for whoever reads
    records); the record types it may read are the menu's own key."""
    return tuple(c for c in ALL_CAPABILITIES if access.has(c)), allowed_somewhere(access, Action.READ.value)


@pass_context
def main_menu(context) -> Markup:
    """``admin/_main_menu.html`` rendered in the page's context, or the HTML rendered for the same permissions,
    language, page, URL prefix and record types before."""
    admin_view, locale, summaries = context.get("admin_view"), str(get_locale()), type_summaries()
    access = current_actor().access if current_user.is_authenticated else None
    if access is not None:
        summaries = tuple(s for s in summaries if access.may_read_type(s["key"]))
    groups = menu_groups()
    key = (permissions_key(access) if access is not None else None, locale,
           getattr(admin_view, "endpoint", None), request.script_root,
           tuple((s["key"], s["name"], s["name_en"], s["pack"]) for s in summaries),
           tuple((g["key"], g["name"], g["name_en"]) for g in groups))
    html = _rendered.get(key)
    if html is None:
        html = Markup(context.environment.get_template(MENU_TEMPLATE).render(
            context.get_all(), record_menu=record_menu(summaries, groups, locale)))
        if len(_rendered) >= MAX_RENDERED:
            _rendered.clear()
        _rendered[key] = html
    return html
