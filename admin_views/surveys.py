"""满意度调查: plan a survey, approve it, distribute it, enter phone answers, see its rates and scores live, open
corrective actions, download the report (``kefu.surveys`` does all of it; this is the screen).

Who: planning, approving, distributing, corrective actions and the report need ``view_reports`` (supervisors,
managers, admins); an agent (``manage_customers``) sees the surveys, marks a respondent's link sent and enters
answers taken on the phone. Only the runners see the respondents' answer links. Every survey screen is limited to
the surveys in the user's scope (their ``survey_plan`` record's: ``kefu.surveys.plans.get_survey``); another
survey answers 404.
"""
from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_admin import BaseView, expose

from admin_views.base import AccessControlled
from admin_views.inbox import ActionForm
from kefu.calendar.workcalendar import today_in
from kefu.core.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from kefu.core.i18n import _, _l
from kefu.insight.exports import content_disposition
from kefu.org.roles import Action, Capability
from kefu.org.structure import Project
from kefu.surveys import answers, plans, results
from web.actor import current_actor

RUNNER = Capability.VIEW_REPORTS.value      # plans, approves, distributes, opens corrective actions
PHONE_ENTRY = Capability.MANAGE_CUSTOMERS.value  # enters answers taken on the phone
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FIELD_LABELS = {"owner": _l("整改负责人"), "deadline": _l("整改期限"), "assignee": _l("整改负责人")}


class SurveyView(AccessControlled, BaseView):
    """``/admin/surveys/``: the surveys, one survey's page, and its actions."""

    def is_accessible(self) -> bool:
        if not super().is_accessible():
            return False
        access = current_actor().access
        return access.has(RUNNER) or access.has(PHONE_ENTRY)

    def _tz(self) -> ZoneInfo:
        return ZoneInfo(current_app.config["KEFU_TIMEZONE"])

    def _require(self, capability: str) -> None:
        if not current_actor().access.has(capability):
            abort(403)

    def _survey(self, survey_id, action: str = Action.READ.value) -> dict:
        """The survey when it is in the user's scope for ``action``: 404 otherwise, 403 when readable only."""
        try:
            return plans.get_survey(survey_id, current_actor().access, action)
        except NotFound:
            abort(404)
        except PermissionDenied:
            abort(403)

    @expose("/")
    def index(self):
        tz = self._tz()
        today = today_in(tz)
        surveys = plans.list_surveys(current_actor().access, limit=plans.LIST_LIMIT + 1)
        shown = surveys[:plans.LIST_LIMIT]
        progress = answers.rates_of(shown)
        rows = [{"survey": s, "rates": progress[s["_id"]], "approval_late": plans.approval_late(s, today, tz)}
                for s in shown]
        return self.render("admin/surveys.html", rows=rows, stages=plans.STAGE_LABELS, kinds=plans.KINDS,
                           runner=current_actor().access.has(RUNNER), more=len(surveys) > plans.LIST_LIMIT,
                           limit=plans.LIST_LIMIT)

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        self._require(RUNNER)
        values, errors = self._new_values(), {}
        if request.method == "POST":
            if not ActionForm(request.form).validate():
                flash(_("页面已过期，请刷新后重试"), "error")
            else:
                try:
                    survey = plans.create_survey(values, current_actor())
                except ValidationFailed as exc:
                    errors = {k: str(v) for k, v in exc.fields.items()}
                    flash(str(exc), "error")
                else:
                    flash(_("调查计划已保存，请在 %(day)s 前完成报批", day=survey["approve_by"]), "success")
                    return redirect(self.get_url(".details_view", survey_id=str(survey["_id"])))
        projects = Project.objects(active=True).order_by("name").only("name")
        return self.render("admin/survey_new.html", values=values, errors=errors, kinds=plans.KINDS,
                           methods=plans.METHODS, projects=projects, form=ActionForm())

    def _new_values(self) -> dict:
        if request.method == "POST":
            form = request.form
            return {**{k: form.get(k, "") for k in ("title", "kind", "purpose", "target_group", "method", "staff",
                                                   "starts_on", "ends_on", "planned", "return_target", "threshold",
                                                   "dimensions", "questions")},
                    "projects": form.getlist("projects")}
        start = today_in(self._tz()) + timedelta(days=30)
        return {"kind": request.args.get("kind") if request.args.get("kind") in plans.KINDS else "consumer",
                "starts_on": start.isoformat(), "ends_on": (start + timedelta(days=14)).isoformat(),
                "return_target": "70", "threshold": "3.5", "dimensions": "\n".join(plans.DEFAULT_DIMENSIONS),
                "questions": "", "projects": []}

    @expose("/<survey_id>/")
    def details_view(self, survey_id):
        survey = self._survey(survey_id)
        tz = self._tz()
        today = today_in(tz)
        found = results.scores(survey)
        charts = {"dimensions": {"names": [d["name"] for d in found["dimensions"]],
                                 "values": [d["average"] for d in found["dimensions"]]},
                  "questions": {"names": [q["text"][:16] for q in found["questions"] if q["kind"] == "score"],
                                "values": [q["average"] for q in found["questions"] if q["kind"] == "score"]}}
        return self.render(
            "admin/survey_details.html", survey=survey, rates=answers.rates(survey), scores=found,
            low=results.low_items(survey, found), stages=plans.STAGE_LABELS, kinds=plans.KINDS,
            kind_labels=plans.QUESTION_KINDS, approval_late=plans.approval_late(survey, today, tz),
            archive_late=plans.archive_late(survey, today, tz), form=ActionForm(),
            pending=answers.respondents(survey["_id"], answered=False, limit=50),
            access=current_actor().access, runner=RUNNER, phone_entry=PHONE_ENTRY,
            default_deadline=(today + timedelta(days=30)).isoformat(),
            charts=charts)

    def _act(self, survey_id, action, done_message, capability: str = RUNNER):
        """Run ``action(survey_id, actor)`` for a POST with a valid CSRF token; flash the outcome. The service
        checks the survey is in the actor's scope for the change; one outside it answers 404 here first."""
        self._require(capability)
        self._survey(survey_id)
        if not ActionForm(request.form).validate():
            flash(_("页面已过期，请刷新后重试"), "error")
        else:
            try:
                outcome = action(survey_id, current_actor())
            except DomainError as exc:
                details = [f"{FIELD_LABELS.get(key, key)}：{text}" for key, text in exc.fields.items() if str(text)]
                flash("；".join([str(exc), *details]), "error")
            else:
                flash(done_message(outcome), "success")
        return redirect(self.get_url(".details_view", survey_id=survey_id))

    @expose("/<survey_id>/approve/", methods=("POST",))
    def approve_view(self, survey_id):
        return self._act(survey_id, plans.approve, lambda _s: _("调查计划已批准，可以发放问卷"))

    @expose("/<survey_id>/distribute/", methods=("POST",))
    def distribute_view(self, survey_id):
        return self._act(survey_id, answers.prepare_links,
                         lambda added: _("已生成 %(n)s 个答卷链接；下载发放名单或标记已发送后计入发放率", n=added))

    @expose("/<survey_id>/sent/<answer_id>/", methods=("POST",))
    def sent_view(self, survey_id, answer_id):
        return self._act(survey_id, lambda value, actor: answers.mark_sent(value, answer_id, actor),
                         lambda changed: _("已标记为已发送") if changed else _("此问卷此前已发送"), PHONE_ENTRY)

    @expose("/<survey_id>/distribution.xlsx")
    def distribution_xlsx_view(self, survey_id):
        self._require(RUNNER)
        survey = self._survey(survey_id)
        try:
            body = answers.distribution_list(survey["_id"], current_actor(), self._link)
        except DomainError as exc:
            flash(str(exc), "error")
            return redirect(self.get_url(".details_view", survey_id=survey_id))
        return Response(body, mimetype=XLSX, headers={
            "Content-Disposition": content_disposition(f"{survey['title']}_发放名单.xlsx")})

    @staticmethod
    def _link(token: str) -> str:
        return url_for("surveys_public.answer", token=token, _external=True)

    @expose("/<survey_id>/close/", methods=("POST",))
    def close_view(self, survey_id):
        return self._act(survey_id, plans.close, lambda _s: _("调查已结束，请在 5 天内归档"))

    @expose("/<survey_id>/archive/", methods=("POST",))
    def archive_view(self, survey_id):
        return self._act(survey_id, plans.archive, lambda _s: _("调查资料已归档"))

    @expose("/<survey_id>/actions/", methods=("POST",))
    def actions_view(self, survey_id):
        form = request.form

        def open_actions(value, actor):
            deadline = form.get("deadline", "").strip()
            try:
                date.fromisoformat(deadline)
            except ValueError as exc:
                raise ValidationFailed(_("整改期限格式应为 YYYY-MM-DD，如 2027-06-30"), {"deadline": ""}) from exc
            return results.open_actions(value, form.get("owner", "").strip(), deadline, actor,
                                        measures=form.get("measures", "").strip())

        return self._act(survey_id, open_actions, lambda made: _("已生成 %(n)s 条整改措施", n=len(made)))

    @expose("/<survey_id>/phone/<answer_id>/", methods=("GET", "POST"))
    def phone_view(self, survey_id, answer_id):
        self._require(PHONE_ENTRY)
        survey = self._survey(survey_id)
        try:
            token = answers.token_of(survey_id, answer_id, current_actor().access)
            respondent, _survey = answers.by_token(token)
        except NotFound:
            abort(404)
        errors = {}
        if request.method == "POST":
            if not ActionForm(request.form).validate():
                flash(_("页面已过期，请刷新后重试"), "error")
            else:
                try:
                    answers.submit(token, request.form, channel="phone", entered_by=current_actor().user_id)
                except ValidationFailed as exc:
                    errors = {k: str(v) for k, v in exc.fields.items()}
                    flash(str(exc), "error")
                except DomainError as exc:
                    flash(str(exc), "error")
                    return redirect(self.get_url(".details_view", survey_id=survey_id))
                else:
                    flash(_("已录入 %(name)s 的电话答卷", name=respondent["customer_name"]), "success")
                    return redirect(self.get_url(".details_view", survey_id=survey_id))
        return self.render("admin/survey_phone.html", survey=survey, respondent=respondent, errors=errors,
                           given=request.form, form=ActionForm())

    @expose("/<survey_id>/report.xlsx")
    def report_xlsx_view(self, survey_id):
        self._require(RUNNER)
        survey = self._survey(survey_id, Action.EXPORT.value)
        body = results.report_xlsx(survey, answers.rates(survey), results.scores(survey))
        filename = f"{survey['title']}_满意度调查报告.xlsx"
        return Response(body, mimetype=XLSX, headers={"Content-Disposition": content_disposition(filename)})
