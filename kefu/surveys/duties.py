"""The survey duties of the timetable (``kefu.schedule.duties``): a reminder to start the yearly consumer survey in
May and the quarterly merchant survey (000 §五 每年组织一次客户满意度调查; 004 满意度调查: 消费者每年 5 月、商户每季度).

Each is a monthly duty whose ``months`` option (data, at the duty's defaults) says in which months it reminds; in
another month it does nothing. The reminder goes to whoever may read the reports and run surveys
(``view_reports``), once per kind and month (the alert's key).
"""
from __future__ import annotations

from datetime import datetime

from kefu.notify.notifications import Alert, Outbox
from kefu.notify.reminders import SweepContext
from kefu.org.roles import Capability
from kefu.surveys.plans import KINDS

CONSUMER_MONTHS = (5,)            # 004 满意度调查：每年 5 月对消费者进行满意度调查
MERCHANT_MONTHS = (1, 4, 7, 10)   # 004 满意度调查：每季度对商户进行满意度调查


def survey_reminder(now: datetime, *, kind: str, months=()) -> str:
    """Remind the ``view_reports`` roles to plan and start the ``kind`` survey when ``now``'s local month is one of
    ``months``; return what was done."""
    context = SweepContext(now)
    local = now.astimezone(context.tz)
    if local.month not in {int(m) for m in months}:
        return f"not a survey month ({local.month})"
    url = f"{context.base_url}/admin/surveys/new/?kind={kind}"
    subject, body = context.renderer.render("survey_reminder", {
        "title": str(KINDS[kind]), "lines": [], "period": f"{local:%Y-%m}", "url": url})
    outbox = Outbox(now, context.people, context.settings, context.calendar, context.tz)
    outbox.add(Alert(key=f"survey:{kind}:{local:%Y-%m}", kind="survey_reminder", subject=subject, body=body,
                     recipients=context.people.with_capability(Capability.VIEW_REPORTS.value), url=url))
    return f"{kind} survey reminder; notifications created: {outbox.flush()}"
