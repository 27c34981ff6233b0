"""The attachments field type: files stored in GridFS, kept on the record as a list of ids."""
from __future__ import annotations

from bson import ObjectId
from werkzeug.datastructures import FileStorage

from kefu.core.i18n import _, _l
from kefu.core.validation import InvalidValue
from kefu.records.fields.base import FieldType
from kefu.records.fields.common import OBJECT_ID, option_value, split_values
from kefu.records.fields.forms import AttachmentsFormField

MAX_ATTACHMENTS = 50
DEFAULT_MAX_SIZE_MB = 20
MAX_SIZE_MB_LIMIT = 100


class AttachmentsType(FieldType):
    """Attachments: a list of GridFS file id strings.

    ``clean`` accepts ids of attachments already uploaded (24 hex digits) and
    werkzeug ``FileStorage`` uploads, which it stores through
    ``context.attachments.store(file, max_bytes)`` — ``max_size_mb`` per file
    (default 20). At most 50 attachments.
    """

    name = "attachments"
    label = _l("附件")
    options = ("max_size_mb",)
    operators = ("empty", "not_empty")
    sortable = False
    holds_files = True
    export_width = 20
    form_class = AttachmentsFormField
    required_text = _l("请上传%(label)s")

    def _max_bytes(self, definition) -> int:
        size = option_value(definition, "max_size_mb")
        valid = isinstance(size, (int, float)) and not isinstance(size, bool) and 0 < size <= MAX_SIZE_MB_LIMIT
        return int((size if valid else DEFAULT_MAX_SIZE_MB) * 1024 * 1024)

    def clean(self, raw, definition, context=None):
        if isinstance(raw, FileStorage):
            raw = [raw]
        return super().clean(raw, definition, context)

    def parse(self, raw, definition, context):
        ids, uploads = [], []
        for item in raw if isinstance(raw, (list, tuple)) else split_values(raw):
            if isinstance(item, FileStorage):
                if item.filename:
                    uploads.append(item)
            elif isinstance(item, ObjectId):
                ids.append(str(item))
            elif isinstance(item, str):
                text = item.strip()
                if not text:
                    continue
                if not OBJECT_ID.fullmatch(text):
                    raise InvalidValue(_("附件编号“%(text)s”无效", text=text[:40]))
                ids.append(text.lower())
            else:
                raise InvalidValue(_("附件应为已上传附件的编号或上传的文件"))
        if len(ids) + len(uploads) > MAX_ATTACHMENTS:
            raise InvalidValue(_("最多 %(n)s 个附件", n=MAX_ATTACHMENTS))
        if uploads:
            if context.attachments is None:
                raise InvalidValue(_("此处无法保存上传的文件，请先上传附件，再填写附件编号"))
            for upload in uploads:
                stored = context.attachments.store(upload, self._max_bytes(definition))
                ids.append(str(getattr(stored, "id", stored)))
        return list(dict.fromkeys(ids)) or None

    def _option_problems(self, definition):
        size = option_value(definition, "max_size_mb")
        if size is not None and (
            not isinstance(size, (int, float)) or isinstance(size, bool) or not 0 < size <= MAX_SIZE_MB_LIMIT
        ):
            return [_("单个文件大小上限 max_size_mb 应在 0–%(limit)s 之间，当前为 %(value)s",
                      limit=MAX_SIZE_MB_LIMIT, value=size)]
        return []

    def to_storage(self, value):
        return None if value is None else [ObjectId(item) for item in value]

    def from_storage(self, stored):
        return None if stored is None else [str(item) for item in stored]

    def to_json(self, value, tz=None):
        return None if value is None else list(value)

    def display(self, value, tz=None) -> str:
        return "" if not value else _("%(n)s 个附件", n=len(value))

    def form_data(self, value, tz=None):
        return None if value is None else list(value)

    def _value_schema(self, definition):
        return {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-f]{24}$"}, "maxItems": MAX_ATTACHMENTS}
