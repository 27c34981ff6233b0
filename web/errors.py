"""Error pages in the user's language: never a stack trace in a user's face."""
from __future__ import annotations

import logging

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from kefu.core.errors import DomainError
from kefu.core.i18n import _
from web.api.base import error_response, status_of

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {
            400: _("请求有误"), 401: _("请先登录"), 403: _("您没有权限访问此页面"),
            404: _("页面不存在"), 405: _("不支持此操作"), 413: _("上传的文件太大"),
        }
        message = messages.get(exc.code, exc.name)
        # Only a description our code gave (abort(403, "…")) is shown, not Werkzeug's English default.
        detail = exc.description if exc.description != type(exc).description else None
        if _wants_json():
            return error_response(exc.code, exc.name.lower().replace(" ", "_"), detail or message)
        return render_template("error.html", code=exc.code, message=message, detail=detail), exc.code

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        """A domain error no view turned into a message of its own (e.g. a stored definition that cannot be
        used): its message, for a person, on the error page or in the API's error shape."""
        status = status_of(exc)
        if status >= 500:
            log.error("%s on %s %s: %s", type(exc).__name__, request.method, request.path, exc)
        if _wants_json():
            return error_response(status, exc.code, exc.message, exc.fields)
        return render_template("error.html", code=status, message=_("无法完成此操作"), detail=str(exc)), status

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        message = _("系统出现错误，已记录，请稍后再试")
        if _wants_json():
            return error_response(500, "internal_error", message)
        return render_template("error.html", code=500, message=message, detail=None), 500
