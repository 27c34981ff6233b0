"""The sections of a record-type definition that drive the engine — workflow, SLA clocks, levels, approvals,
callbacks, reminders, routing — and the report settings: one module per section, each a ``kefu.records.sections.Section``.

``register_sections`` (called once by the composition root, ``create_app``) adds them to the records area's
registry in the order the save lifecycle runs them: SLA clocks after the sections that change the level or status.
"""
from __future__ import annotations

from kefu.calendar.workcalendar import on_change
from kefu.records.sections import register
from kefu.rules.approvals import ApprovalsSection
from kefu.rules.callbacks import CallbackSection
from kefu.rules.computed import ComputedSection
from kefu.rules.levels import LevelsSection
from kefu.rules.loyalty import LoyaltySection
from kefu.rules.parent import ParentSection
from kefu.rules.reminders import RemindersSection
from kefu.rules.routing import RoutingSection
from kefu.rules.report import ReportSection
from kefu.rules.sla import SlaSection
from kefu.rules.spawn import SpawnSection, follow_calendar
from kefu.rules.workflow import WorkflowSection


def register_sections() -> None:
    """Register every section (idempotent: registering again replaces each in place)."""
    for section in (WorkflowSection(),
                    ComputedSection(),  # computed fields first: the level rules and clocks read them
                    LevelsSection(), ApprovalsSection(), CallbackSection(), SlaSection(),
                    RemindersSection(), ReportSection(),
                    # Routing's change is a save of its own that runs every section again (the clocks and reminders
                    # then read the routed department and assignee); after them, the clocks' events stay dated by
                    # the save that caused them (a registration, not the routing a moment later).
                    RoutingSection()):
        register(section)
    register(SpawnSection())
    register(LoyaltySection())  # points and tier for a completed deal (001 §六2)
    register(ParentSection())  # child records of another record: a meeting's agreed items (004 顾客沟通)
    on_change(follow_calendar)  # due dates counted in working days (callbacks, spawned records) follow edits
