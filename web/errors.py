"""Error pages in the user's language: never a stack trace in a user's face."""
from __future__ import annotations

import logging
from contextlib import ExitStack

import pymongo
from flask import Flask, current_app, g, render_template, request, session
from flask_babel import force_locale
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError, WTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from werkzeug.exceptions import HTTPException

from kefu.core.errors import DomainError
from kefu.core.i18n import _
from kefu.core.validation import InvalidValue, check_typable
from web.api.base import error_response, status_of

log = logging.getLogger(__name__)

KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
RETRY_AFTER_SECONDS = 10  # about one replica-set election: by then a new primary answers
# Labels MongoDB puts on an error that a retry after an election or a network blip succeeds on.
TRANSIENT_LABELS = ("TransientTransactionError", "RetryableWriteError", "UnknownTransactionCommitResult")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says a database is out of reach for now (no primary, an election, a network failure, a
    write not yet replicated) rather than that the request or the code is wrong."""
    if isinstance(exc, (ConnectionFailure, WTimeoutError, RedisConnectionError, RedisTimeoutError)):
        return True
    if isinstance(exc, PyMongoError) and any(exc.has_error_label(label) for label in TRANSIENT_LABELS):
        return True
    # NotWritablePrimary, InterruptedDueToReplStateChange, PrimarySteppedDown … : the codes of an election; 50: a
    # save still retrying when its time (MONGODB_TIMEOUT_MS) ran out.
    return isinstance(exc, OperationFailure) and exc.code in (10107, 11600, 11602, 13435, 13436, 189, 91, 50)


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _unreadable_args() -> tuple[str, dict] | None:
    """``(message, {parameter: message})`` for the first query parameter holding a control character other than tab
    and line breaks (NUL ends up in search patterns, which MongoDB refuses), else None."""
    for name, value in request.args.items(multi=True):
        try:
            check_typable(name)
            check_typable(value)
        except InvalidValue as exc:
            field = _printable(name)
            return _("查询参数“%(name)s”：%(problem)s", name=field, problem=str(exc)), {field: str(exc)}
    return None


def _unreadable_json() -> tuple[str, dict] | None:
    """``(message, {field: message})`` when the request's JSON body cannot be taken in at all, else None.

    Two kinds: nesting so deep that the parser gives up (``[`` × 20 000 raises ``RecursionError``, which Werkzeug
    does not treat as a parse error), and text that is not Unicode — a lone surrogate (``"\\ud800"``) that
    neither MongoDB nor a UTF-8 answer can hold; the field named is the top-level key it is under. (Query strings
    and forms never hold one: Werkzeug leaves a percent-escape that is not UTF-8 as it was typed.) Control
    characters in JSON text are the fields' business: each type says what it accepts.
    """
    if not request.is_json:
        return None
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        return _("请求体的 JSON 嵌套层数过多"), {}
    if not isinstance(body, (dict, list)):
        return None
    for top_key, value in (body.items() if isinstance(body, dict) else enumerate(body)):
        pending = [top_key, value]
        while pending:  # a stack, not recursion: the parser allows nesting close to the interpreter's limit
            item = pending.pop()
            if isinstance(item, dict):
                pending.extend(item.keys())
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)
            elif isinstance(item, str) and _printable(item) != item:
                field = _printable(str(top_key))
                return (_("“%(field)s”含有无效字符（不成对的代理项），请检查文本编码", field=field),
                        {field: _("含有无效字符（不成对的代理项）")})
    return None


def _printable(text: str) -> str:
    """``text`` with lone surrogates written as ``\\udxxx`` escapes, so that it can be shown and answered."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def bound_database_waits(app: Flask) -> None:
    """Every request's MongoDB operations share one deadline, ``MONGODB_TIMEOUT_MS`` from its start, until its
    response is made (a streamed export's rows are read after that, without it).

    A server that stops answering (frozen, cut off) otherwise costs each operation its own timeout, and their retries:
    the first request after it took minutes and was killed by gunicorn's worker timeout with a bare 500. With the
    deadline it answers 503 once the time is up."""
    seconds = app.config["MONGODB_TIMEOUT_MS"] / 1000

    @app.before_request
    def start_deadline():
        stack = ExitStack()
        stack.enter_context(pymongo.timeout(seconds))
        g.kefu_database_deadline = stack

    def end_deadline(*_args):
        stack = g.pop("kefu_database_deadline", None)
        if stack is not None:
            stack.close()

    @app.after_request
    def end_deadline_with_the_response(response):
        end_deadline()
        return response

    app.teardown_request(end_deadline)


def init_app(app: Flask) -> None:
    @app.before_request
    def refuse_unreadable_input():
        """Answer 400 to a query parameter or JSON body that cannot be taken in, before any view, sign-in limit or
        service reads it."""
        problem = _unreadable_args() or _unreadable_json()
        if problem is None:
            return None
        message, fields = problem
        if _wants_json():
            return error_response(400, "bad_request", message, fields)
        return render_template("error.html", code=400, message=_("请求有误"), detail=message), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # An error escaping another handler or an after-request hook (rendering an error page reads the signed-in
        # user; the sign-in limiter writes to Redis) comes here as a 500 wrapping it: an outage is still a 503.
        cause = getattr(exc, "original_exception", None)
        if cause is not None and is_outage(cause):
            return unavailable(cause)
        messages = {
            400: _("请求有误"), 401: _("请先登录"), 403: _("您没有权限访问此页面"),
            404: _("页面不存在"), 405: _("不支持此操作"), 413: _("上传的文件太大"),
        }
        message = messages.get(exc.code, exc.name)
        # Only a description our code gave (abort(403, "…")) is shown, not Werkzeug's English default.
        detail = exc.description if exc.description != type(exc).description else None
        # What the exception's own answer says about retrying (405's ``Allow``, 429's ``Retry-After``) is kept.
        headers = {name: value for name, value in exc.get_headers() if name in KEPT_HEADERS}
        if _wants_json():
            body, status = error_response(exc.code, exc.name.lower().replace(" ", "_"), detail or message)
            return body, status, headers
        return render_template("error.html", code=exc.code, message=message, detail=detail), exc.code, headers

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
        if is_outage(exc):
            return unavailable(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        message = _("系统出现错误，已记录，请稍后再试")
        if _wants_json():
            return error_response(500, "internal_error", message)
        return render_template("error.html", code=500, message=message, detail=None), 500


def unavailable(exc: BaseException):
    """503 with ``Retry-After``: the database is out of reach (an election, an outage). The request was not
    acknowledged — a save either did not happen or (its commit's answer lost) happened whole — so retrying is safe:
    a create with the same ``Idempotency-Key`` returns the first record, an update names its version."""
    log.warning("database unavailable on %s %s: %s", request.method, request.path, type(exc).__name__)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    # The language chosen this session, else the default: the signed-in user's own is in the database.
    with force_locale(session.get("locale") or current_app.config["KEFU_LOCALE"]):
        message = _("系统暂时无法连接数据库（可能正在切换主节点），您的操作可能未保存，请 %(seconds)s 秒后刷新查看或重试",
                    seconds=RETRY_AFTER_SECONDS)
        if _wants_json():
            body, status = error_response(503, "unavailable", message)
            return body, status, headers
        # Not render_template: its context processors read the signed-in user (Flask-Login's) from the database.
        return current_app.jinja_env.get_template("unavailable.html").render(message=message), 503, headers
