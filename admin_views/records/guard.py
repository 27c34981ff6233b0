"""The record screens' answers to what the user may not do (``kefu.org.access``): a record they may not read is not
found (404, whether it exists or not), a refusal of something they may see is the 403 page with its reason."""
from __future__ import annotations

from flask import abort

from kefu.core.errors import NotFound, PermissionDenied
from kefu.records.store import get_record_for
from kefu.records.types import RecordType
from web.actor import current_actor


def require_type(record_type: RecordType, action: str) -> None:
    """The 403 page naming ``action`` and the type unless the user's roles allow it on some records of the type."""
    try:
        current_actor().access.require(record_type.key, action, record_type.name)
    except PermissionDenied as exc:
        abort(403, str(exc.message))


def record_or_abort(record_type: RecordType, record_id, action: str) -> dict:
    """The stored record when the user may ``action`` it: 404 when they may not read it (or there is none), the
    403 page with the reason when they may read it but not ``action`` it."""
    try:
        return get_record_for(record_type.key, record_id, current_actor().access, action)
    except NotFound:
        abort(404)
    except PermissionDenied as exc:
        abort(403, str(exc.message))
