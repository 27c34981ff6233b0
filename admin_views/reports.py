"""月度投诉分析: the monthly complaint analysis of a type as a page with charts, and as XLSX.

The archived report (made on the 5th by ``kefu.schedule.routines.monthly_report``) is shown when there is one; any other
month — or ``?fresh=1`` — is computed on demand (``kefu.insight.reports.complaint_analysis``).
"""
from __future__ import annotations

import json
import re
from zoneinfo import ZoneInfo

from flask import Response, abort, current_app, flash, request
from flask_admin import BaseView, expose

from admin_views.base import AccessControlled
from kefu.calendar.workcalendar import today_in
from kefu.core.i18n import _
from kefu.insight import reports
from kefu.insight.exports import content_disposition
from kefu.org.roles import Capability
from web.actor import current_actor

MONTH = re.compile(r"^(19|20)\d\d-(0[1-9]|1[0-2])$")


class ReportView(AccessControlled, BaseView):
    """``/admin/reports/``: for a role that reads the reports (``view_reports``); the records the report names are
    shown as far as the user may read them."""

    required_capability = Capability.VIEW_REPORTS.value

    def _tz(self) -> ZoneInfo:
        return ZoneInfo(current_app.config["KEFU_TIMEZONE"])

    def _choice(self):
        """The month and type asked for; a bad value falls back to the default with a message."""
        default_month = reports.previous_month(today_in(self._tz()))
        month = request.args.get("month") or default_month
        if not MONTH.match(month):
            flash(_("月份格式应为 YYYY-MM，如 %(example)s；已显示上月", example=default_month), "error")
            month = default_month
        types = reports.report_types()
        type_key = request.args.get("type") or (types[0].key if types else None)
        record_type = next((t for t in types if t.key == type_key), None)
        if record_type is None and types:
            flash(_("没有可分析的记录类型“%(key)s”，已显示%(name)s", key=type_key, name=types[0].name), "error")
            record_type = types[0]
        return month, record_type, types

    def _analysis(self, month: str, record_type) -> tuple[dict, bool]:
        """The month's analysis of the type (archived, else computed) as the user may see it."""
        access = current_actor().access
        archived = None if request.args.get("fresh") else reports.archived_monthly(month)
        if archived and record_type.key in (archived.get("analyses") or {}):
            return reports.as_seen_by(archived["analyses"][record_type.key], access), True
        return reports.as_seen_by(reports.complaint_analysis(record_type, month), access), False

    @expose("/")
    def index(self):
        return self.monthly_view()

    @expose("/monthly/")
    def monthly_view(self):
        month, record_type, types = self._choice()
        if record_type is None:
            return self.render("admin/report_monthly.html", analysis=None, types=[], month=month)
        analysis, archived = self._analysis(month, record_type)
        year, number = map(int, month.split("-"))
        months = [f"{y:04d}-{m:02d}" for y, m in
                  ((year - (number - k <= 0), (number - k - 1) % 12 + 1) for k in range(0, 13))]
        charts = {d["key"]: {"label": d["label"], "names": [str(r["value"]) for r in d["rows"]],
                             "now": [r["count"] for r in d["rows"]], "before": [r["previous"] for r in d["rows"]]}
                  for d in analysis["by"]}
        charts["_clocks"] = {"names": [c["name"] for c in analysis["clocks"]],
                             "rates": [round(100 * c["rate"], 1) if c["rate"] is not None else None
                                       for c in analysis["clocks"]]}
        charts["_satisfaction"] = [{"name": k, "value": v} for k, v in analysis["satisfaction"]["answers"].items()]
        return self.render("admin/report_monthly.html", analysis=analysis, archived=archived, types=types,
                           record_type=record_type, month=month, months=months, tz=self._tz(),
                           charts_json=json.dumps(charts, ensure_ascii=False).replace("</", "<\\/"))

    @expose("/monthly.xlsx")
    def monthly_xlsx_view(self):
        month, record_type, _types = self._choice()
        if record_type is None:
            abort(404)  # no type to analyse: the page says so
        analysis, _archived = self._analysis(month, record_type)
        body = reports.analysis_xlsx(analysis, self._tz())
        filename = f"{record_type.name}_月度分析_{month.replace('-', '')}.xlsx"
        return Response(body, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": content_disposition(filename)})
