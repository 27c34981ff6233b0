"""The survey duties of the timetable (``kefu.schedule.duties``): a reminder to start the yearly consumer survey in
May and the quarterly merchant survey (000 §五 每年组织一次客户满意度调查; 004 满意度调查: 消费者每年 5 月、商户每季度).

Each is a monthly duty whose ``months`` option (data, at the duty's defaults) says in which months the survey runs;
it reminds on the 1st of the month *before* (1 April for a May survey; 1 December, March, June and September for
the quarterly merchant surveys), so the plan can still be approved 20 days before the survey month starts (004
满意度调查 1). In another month it does nothing. The reminder goes to whoever may read the reports and run surveys
(``view_reports``), once per kind and survey month (the alert's key: a second run notifies nobody again).
"""
from __future__ import annotations

from datetime import date, datetime

from kefu.notify.notifications import Alert, Outbox
from kefu.notify.reminders import SweepContext
from kefu.org.roles import Capability
from kefu.surveys.plans import KINDS

CONSUMER_MONTHS = (5,)            # the survey months (reminded the month before) — 004 满意度调查：每年 5 月对消费者进行满意度调查
MERCHANT_MONTHS = (1, 4, 7, 10)   # the survey months — 004 满意度调查：每季度对商户进行满意度调查


def survey_reminder(now: datetime, *, kind: str, months=()) -> str:
    """Remind the ``view_reports`` roles to plan the ``kind`` survey when the month after ``now``'s local month is
    one of ``months`` (the survey months); return what was done."""
    context = SweepContext(now)
    local = now.astimezone(context.tz)
    survey_month = date(local.year + local.month // 12, local.month % 12 + 1, 1)
    if survey_month.month not in {int(m) for m in months}:
        return f"no survey next month ({survey_month:%Y-%m})"
    url = f"{context.base_url}/admin/surveys/new/?kind={kind}"
    subject, body = context.renderer.render("survey_reminder", {
        "title": str(KINDS[kind]), "lines": [], "period": f"{survey_month:%Y-%m}", "url": url})
    outbox = Outbox(now, context.people, context.settings, context.calendar, context.tz)
    outbox.add(Alert(key=f"survey:{kind}:{survey_month:%Y-%m}", kind="survey_reminder", subject=subject, body=body,
                     recipients=context.people.with_capability(Capability.VIEW_REPORTS.value), url=url))
    return f"{kind} survey reminder; notifications created: {outbox.flush()}"
