"""The public answer page of a satisfaction survey: ``/s/<token>`` — no sign-in; the random token is the
respondent's own link (``kefu.surveys.answers``). Mobile friendly, no scripts (CSP), in the visitor's chosen language.

GET shows the questionnaire; POST stores the answers once (a second submission is refused, a bad token answers
404 with a message, a wrong answer shows the form again with the message at the question, a missing or expired
CSRF token answers 400 asking to reload). A signed-in staff member cannot answer through a customer's link (403):
staff enter answers through 电话录入, which records who entered them.
"""
from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from kefu.core.errors import Conflict, NotFound, ValidationFailed
from kefu.core.i18n import _
from kefu.surveys import answers

blueprint = Blueprint("surveys_public", __name__)


def _message(heading: str, message: str, status: int):
    return render_template("survey_message.html", heading=heading, message=message), status


@blueprint.route("/s/<token>", methods=("GET", "POST"))
def answer(token: str):
    try:
        respondent, survey = answers.by_token(token)
    except NotFound as exc:
        return _message(_("链接无效"), str(exc), 404)
    if current_user.is_authenticated:
        return _message(_("请使用电话录入"), _("您已以工作人员身份登录，不能通过客户的答卷链接提交；请使用“电话录入”"), 403)
    if respondent.get("answered_at") is not None:
        return _message(_("问卷已提交"), _("此问卷已提交，感谢您的参与；每份问卷只能提交一次"), 409)
    errors, given = {}, {}
    if request.method == "POST":
        given = request.form
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError:  # missing, expired or from another session
            return _message(_("页面已过期"), _("页面已过期，请刷新后重新填写"), 400)
        try:
            answers.submit(token, request.form, channel="link")
        except ValidationFailed as exc:
            errors = {key: str(text) for key, text in exc.fields.items()}
            return render_template("survey_answer.html", survey=survey, respondent=respondent, errors=errors,
                                   given=given, message=str(exc)), 400
        except Conflict as exc:
            return _message(_("无法提交"), str(exc), 409)
        return _message(_("提交成功"), _("感谢您的宝贵意见！"), 200)
    return render_template("survey_answer.html", survey=survey, respondent=respondent, errors=errors, given=given)
