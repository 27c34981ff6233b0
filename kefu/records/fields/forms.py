"""WTForms fields and validators behind ``FieldType.form_field``: the form keeps what was typed and the field
type's ``clean`` turns it into the value, with the same messages as the API."""
from __future__ import annotations

from typing import TYPE_CHECKING

from markupsafe import Markup
from wtforms import DateField, DateTimeLocalField, MultipleFileField, StringField, TextAreaField
from wtforms.validators import Optional, StopValidation, ValidationError
from wtforms.widgets import FileInput

from kefu.core.validation import InvalidValue
from kefu.records.fields.common import FieldContext

if TYPE_CHECKING:
    from kefu.records.fields.base import FieldType


class _KeepsTypedText:
    """Mixin for WTForms fields whose text our ``clean`` parses.

    ``process_formdata`` keeps what was typed as ``data`` (no parsing with
    English messages); the :class:`CleanValue` validator turns it into the
    value. A re-shown form shows what the person typed.
    """

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = valuelist[0]

    def _value(self):
        if self.raw_data:
            return str(self.raw_data[0])
        return super()._value()


class TypedStringField(_KeepsTypedText, StringField):
    """A text input cleaned by its field type."""

    def _value(self):
        if self.raw_data:
            return str(self.raw_data[0])
        return "" if self.data is None else str(self.data)


class TypedTextAreaField(_KeepsTypedText, TextAreaField):
    """A text area cleaned by its field type."""


class TypedDateField(_KeepsTypedText, DateField):
    """An ``<input type="date">`` cleaned by :class:`DateType`."""


class TypedDateTimeLocalField(_KeepsTypedText, DateTimeLocalField):
    """An ``<input type="datetime-local">`` cleaned by :class:`DateTimeType` (local time of the context's zone)."""


class _AttachmentsInput(FileInput):
    """A multiple file input, followed by hidden inputs keeping the attachments already there."""

    def __init__(self):
        super().__init__(multiple=True)

    def __call__(self, field, **kwargs):
        html = super().__call__(field, **kwargs)
        kept = [value for value in (field.data or []) if isinstance(value, str)]
        hidden = Markup("").join(
            Markup('<input type="hidden" name="{}" value="{}">').format(field.name, value) for value in kept
        )
        return html + hidden


class AttachmentsFormField(MultipleFileField):
    """Uploads plus the ids of attachments kept from before (hidden inputs of the same name)."""

    widget = _AttachmentsInput()

    def process_formdata(self, valuelist):
        self.data = list(valuelist)


class OptionalValue(Optional):
    """``Optional`` that also makes a blank field's ``data`` None (not "")."""

    def __call__(self, form, field):
        try:
            super().__call__(form, field)
        except StopValidation:
            field.data = None
            raise


class CleanValue:
    """WTForms validator: run the field type's ``clean`` and keep its result as ``field.data``.

    The form thus shows exactly the message the API gives for the same input,
    and ``form.data`` holds cleaned values; the edited record's value sent back
    unchanged is kept (``FieldContext.current``, ``FieldType.clean_keeping``).
    """

    def __init__(self, field_type: FieldType, definition, context: FieldContext):
        self.field_type, self.definition, self.context = field_type, definition, context

    def __call__(self, form, field):
        stored = (self.context.current or {}).get(getattr(self.definition, "key", None))
        try:
            field.data = self.field_type.clean_keeping(field.data, stored, self.definition, self.context)
        except InvalidValue as exc:
            raise ValidationError(str(exc)) from exc
        if field.data is None and getattr(self.definition, "required", False):
            raise StopValidation(self.field_type.missing_message(self.definition))
