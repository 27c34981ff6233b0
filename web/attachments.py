"""``GET /attachments/<id>``: files from GridFS, for signed-in staff who may read the file's record (or, before it is
attached to one, for whoever uploaded it); 404 for anyone else, as for a missing file."""
from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, abort
from flask_login import login_required

from kefu.core.errors import NotFound
from kefu.records.attachments import open_attachment
from kefu.records.timeline import attachment_for
from web.actor import current_actor

blueprint = Blueprint("attachments", __name__)


@blueprint.get("/attachments/<attachment_id>")
@login_required
def download(attachment_id):
    try:
        info = attachment_for(attachment_id, current_actor())
        stream = open_attachment(attachment_id)
    except NotFound:
        abort(404)

    def chunks():
        while chunk := stream.read(256 * 1024):
            yield chunk

    disposition = "inline" if info.kind.opens_in_browser else "attachment"
    return Response(chunks(), mimetype=info.content_type, headers={
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(info.filename)}",
        "Content-Length": str(info.size), "X-Content-Type-Options": "nosniff",
    })
