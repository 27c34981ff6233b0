"""来电弹屏: ``/admin/caller/?phone=<number>``, the page a softphone or call-centre system opens on an incoming call
(or ``?unit=3幢2单元1201``: an agent asking "which unit?").

A known number (unit) shows each customer's card, their open records with deadlines (overdue in red), their last
contacts (回访 with a recorded result: ``kefu.insight.customer_archive.last_contacts``) and buttons that start a record
prefilled with the customer, with a link to the 360° archive for roles that may open it; an unknown one a 新来电
card with a button to register the customer with the number filled in. The record types offered are data: those the user may create that take a
caller's phone number (a sensitive ``phone`` field), in menu order — the first ``MAIN_BUTTONS`` as buttons, the
rest in a menu. The number is in the URL because call-centre systems open it so; no log keeps the query string
(``kefu.runtime.launcher.ACCESS_LOG_FORMAT``)."""
from __future__ import annotations

from flask import abort, request, url_for
from flask_admin import BaseView, expose

from admin_views.base import AccessControlled
from kefu.core.errors import DomainError, PermissionDenied
from kefu.core.i18n import _l, in_user_language
from kefu.insight import customer_archive
from kefu.org.roles import Action, Capability
from kefu.records.types import get_record_type, type_summaries
from kefu.rules.sla import STATE_LABELS
from web.actor import current_actor

MAIN_BUTTONS = 3
PREFILLED_FROM_CUSTOMER = {"project": "project", "unit": "unit"}  # field type → the customer's key it takes


def intake_types(access) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """``(key, name, [(project/unit field key, the customer's key it takes)])`` of the types ``access`` may create that take a caller's phone
    number, in menu order."""
    found = []
    for summary in type_summaries():
        if not access.allows(summary["key"], Action.CREATE.value):
            continue
        record_type = get_record_type(summary["key"], active_only=False)
        fields = record_type.active_fields
        if not any(f.type == customer_archive.PHONE_FIELD_TYPE and f.sensitive for f in fields):
            continue
        prefill = [(f.key, PREFILLED_FROM_CUSTOMER[f.type]) for f in fields if f.type in PREFILLED_FROM_CUSTOMER]
        found.append((summary["key"], in_user_language(summary["name"], summary["name_en"]), prefill))
    return found


def start_links(customer: dict, types) -> list[dict]:
    """A link per type to its create form, prefilled with ``customer`` (its id, project and unit)."""
    links = []
    for key, name, prefill in types:
        values = {"customer": customer["id"]}
        for field_key, source in prefill:
            target = customer.get(source)
            if target:
                values[field_key] = target["id"]
        links.append({"key": key, "name": name, "url": url_for("records.create_view", type_key=key, **values)})
    return links


class CallerView(AccessControlled, BaseView):
    """The caller page; for roles that look customers up by phone (``lookup_customers``)."""

    required_capability = Capability.LOOKUP_CUSTOMERS.value

    def is_visible(self) -> bool:
        return False  # opened by the call-centre system, not from the menu

    @expose("/")
    def index(self):
        phone, unit = ((request.args.get(name) or "").strip() for name in ("phone", "unit"))
        actor = current_actor()
        problem, found = None, {"customers": [], "records": [], "contacts": []}
        if not phone and not unit:
            problem = _l("请在网址中提供来电号码或户位：?phone=… 或 ?unit=3幢2单元1201")
        else:
            try:
                found = customer_archive.lookup(actor, phone=phone, unit=unit)
            except PermissionDenied as exc:
                abort(403, str(exc.message))
            except DomainError as exc:
                problem = exc.message
        types = intake_types(actor.access)
        cards = [{"customer": customer, "links": start_links(customer, types),
                  "open": [r for r in found["records"] if r["customer"] == customer["id"] and r["open"]],
                  "contacts": [r for r in found["contacts"] if r["customer"] == customer["id"]]}
                 for customer in found["customers"]]
        unlinked = [r for r in found["records"] if r["customer"] not in {c["id"] for c in found["customers"]}]
        may_create = actor.access.has(Capability.MANAGE_CUSTOMERS.value) and not problem
        return self.render("admin/caller.html", phone_given=bool(phone or unit), problem=problem, cards=cards,
                           unlinked=unlinked, main_buttons=MAIN_BUTTONS, sla_states=STATE_LABELS,
                           archive_links=customer_archive.may_read_archive(actor.access),
                           new_customer_url=url_for("customers.create_view", **({"phone": phone} if phone else {}))
                           if may_create else None)
