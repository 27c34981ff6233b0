"""Error pages in the user's language: never a stack trace in a user's face."""
from __future__ import annotations

import logging

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from kefu.core.i18n import _

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def init_app(app: Flask) -> None:
    from web.api import error_response

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

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        message = _("系统出现错误，已记录，请稍后再试")
        if _wants_json():
            return error_response(500, "internal_error", message)
        return render_template("error.html", code=500, message=message, detail=None), 500
