"""Reference field types: a customer, project, unit, user or department, given by id or by what people call it."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

from bson import DBRef, ObjectId
from mongoengine import Document

from kefu.core.errors import DomainError
from kefu.core.i18n import _, _l
from kefu.core.validation import InvalidValue
from kefu.org.access import SYSTEM_POLICY
from kefu.org.customers import Customer, customer_label, find_by_phone, looks_like_phone, sees_personal_data
from kefu.org.structure import Department, Project, Unit
from kefu.org.users import User
from kefu.records.fields.base import FieldType
from kefu.records.fields.common import (
    DEFAULT_CURRENT_USER, MAX_CANDIDATES, OBJECT_ID, context_or_default, fold, list_text, scalar_text,
)


class AmbiguousReference(InvalidValue):
    """A name matched several records; ``candidates`` lists them as ``{"id", "label"}`` (at most 10)."""

    def __init__(self, message, candidates: list[dict]):
        super().__init__(message)
        self.candidates = candidates


def _unit_handle(unit: Unit) -> str:
    return f"{unit.project.name} {unit.label}" if unit.project else unit.label


@dataclass(frozen=True)
class ReferenceKind:
    """How one kind of target is found by what people call it.

    ``match``: ``(field, normaliser)`` pairs tried in order; the first field
    with any match decides (a normaliser raising ``InvalidValue`` skips its
    field). ``describe``: a candidate's label (personal data masked).
    ``handle``: the text a form shows for a target (checked to find that
    target again, else the id is shown); never personal data.
    ``visible``: the conditions a document meets to be found by name or
    suggested (disabled and archived ones are not; ids still resolve, so
    records keep pointing at them). ``in_project``: the documents belong to a
    project, so suggestions can be limited to one. ``personal_handle``:
    suggestions fill in the id (the customer's own handles are personal data).
    """

    document: type[Document]
    noun: Any
    match: tuple[tuple[str, Callable[[str], str] | None], ...]
    describe: Callable[[Any], str] = str
    handle: Callable[[Any], str | None] = str
    visible: Mapping[str, Any] = field(default_factory=dict)
    in_project: bool = False
    personal_handle: bool = False


REFERENCE_KINDS: dict[str, ReferenceKind] = {
    "customer": ReferenceKind(
        Customer, _l("客户"), (("name", None),), describe=customer_label, handle=lambda customer: customer.name,
        visible={"archived__ne": True}, in_project=True, personal_handle=True,
    ),
    "project": ReferenceKind(
        Project, _l("项目"), (("name", None), ("code", lambda text: fold(text).upper())),
        describe=lambda project: f"{project.name}（{project.code}）", handle=lambda project: project.name,
        visible={"active__ne": False},
    ),
    "unit": ReferenceKind(
        Unit, _l("户位"), (("label", lambda text: re.sub(r"\s+", "", fold(text))),),
        describe=str, handle=_unit_handle, in_project=True,
    ),
    "user": ReferenceKind(
        User, _l("用户"), (("username", None), ("display_name", None)),
        describe=str, handle=lambda user: user.username, visible={"active__ne": False},
    ),
    "department": ReferenceKind(
        Department, _l("部门"), (("name", None),), handle=lambda department: department.name,
        visible={"active__ne": False},
    ),
}
"""Reference kind → document class and how its records are named; the one lookup table for references."""


class ReferenceType(FieldType):
    """A reference to one record of :attr:`kind`: its id (ObjectId or 24 hex digits) or an unambiguous name.

    The value is the target's ``ObjectId`` (stored as is, JSON as a string).
    A name matching nothing raises ``InvalidValue`` ("找不到项目“X”"); one
    matching several raises :class:`AmbiguousReference` with the candidates.
    """

    kind_name = ""
    operators = ("eq", "in", "empty", "not_empty")

    @property
    def kind(self) -> ReferenceKind:
        return REFERENCE_KINDS[self.kind_name]

    def parse(self, raw, definition, context):
        kind = self.kind
        if isinstance(raw, kind.document):
            return self._in_scope(raw, str(raw), context).pk
        if isinstance(raw, DBRef):
            raw = raw.id
        if isinstance(raw, ObjectId):
            object_id, text = raw, str(raw)
        else:
            text = re.sub(r"\s+", " ", scalar_text(raw))
            object_id = ObjectId(text) if OBJECT_ID.fullmatch(text) else None
        if object_id is not None:
            target = kind.document.objects(pk=object_id).first()
            if target is None:
                raise self._not_found(text)
            return self._in_scope(target, text, context).pk
        found = self._find(text, context)
        if not found:
            raise self._not_found(text)
        if len(found) > 1:
            raise self._ambiguous(text, found, context)
        return found[0].pk

    def _not_found(self, text) -> InvalidValue:
        return InvalidValue(_("找不到%(noun)s“%(text)s”", noun=self.kind.noun, text=text))

    def _label(self, target, context) -> str:
        """A candidate's label as the acting user may read it."""
        return self.kind.describe(target)

    def _ambiguous(self, text, found, context) -> AmbiguousReference:
        candidates = [{"id": str(target.pk), "label": self._label(target, context)}
                      for target in found[:MAX_CANDIDATES]]
        listed = list_text(candidate["label"] for candidate in candidates)
        if len(found) > MAX_CANDIDATES:
            listed += _("等")
        return AmbiguousReference(
            _("“%(text)s”对应多个%(noun)s：%(candidates)s，请写得更具体些或直接选择",
              text=text, noun=self.kind.noun, candidates=listed),
            candidates,
        )

    def _in_scope(self, target, text, context):
        """``target`` when the context allows it; override to restrict."""
        return target

    def _scope(self, context) -> dict:
        """Extra conditions for name lookups."""
        return dict(self.kind.visible)

    def _find(self, text: str, context) -> list:
        """The targets called ``text`` (at most MAX_CANDIDATES + 1)."""
        return self._match(text, self._scope(context))

    def _match(self, text: str, scope: dict) -> list:
        for field_name, normalise in self.kind.match:
            try:
                needle = normalise(text) if normalise else text
            except InvalidValue:
                continue
            found = list(self.kind.document.objects(**{field_name: needle}, **scope).limit(MAX_CANDIDATES + 1))
            if found:
                return found
        return []

    def to_storage(self, value):
        return None if value is None else getattr(value, "pk", value)

    def from_storage(self, stored):
        if stored is None:
            return None
        if isinstance(stored, DBRef):
            return stored.id
        return stored if isinstance(stored, ObjectId) else ObjectId(str(stored))

    def to_json(self, value, tz=None):
        return None if value is None else str(getattr(value, "pk", value))

    def labels(self, values) -> dict[ObjectId, str]:
        """``{id: str(target)}`` for many ids in one query (for list pages)."""
        ids = list({getattr(value, "pk", value) for value in values if value is not None})
        if not ids:
            return {}
        # select_related: the targets' own references (a unit's project) in one query per kind, not one per target.
        return {target.pk: str(target) for target in self.kind.document.objects(pk__in=ids).select_related(max_depth=1)}

    def display(self, value, tz=None) -> str:
        if value is None:
            return ""
        if isinstance(value, self.kind.document):
            return str(value)
        target = self.kind.document.objects(pk=value).first()
        return str(target) if target is not None else _("（已删除）")

    def form_data(self, value, tz=None):
        """The target's handle (name, phone …) when it finds this target again, else its id."""
        if value is None:
            return None
        target = value if isinstance(value, self.kind.document) else self.kind.document.objects(pk=value).first()
        if target is None:
            return str(value)
        handle = self.kind.handle(target)
        if handle:
            found = self._find(handle, context_or_default(None))
            if len(found) == 1 and found[0].pk == target.pk:
                return handle
        return str(target.pk)

    def _value_schema(self, definition):
        return {"type": "string", "pattern": "^[0-9a-f]{24}$", "x-kefu-reference": self.kind_name}


class CustomerType(ReferenceType):
    """A customer: id, phone number (any typed form: an exact lookup through the blind index, for roles with
    ``lookup_customers`` and counted like every phone lookup) or name. Archived customers are found by id only."""

    name = kind_name = "customer"
    label = _l("客户")
    identifies_customer = True
    export_width = 16

    def _find(self, text: str, context) -> list:
        context = context_or_default(context)
        if not looks_like_phone(text):
            return super()._find(text, context)
        try:
            return find_by_phone(text, context.access or SYSTEM_POLICY, context.user_id, limit=MAX_CANDIDATES + 1)
        except DomainError as exc:  # no right to look customers up, or too many lookups: said next to the field
            raise InvalidValue(str(exc)) from None

    def _label(self, target, context) -> str:
        context = context_or_default(context)  # with nobody acting (an import's message): masked
        return customer_label(target, context.user is not None and sees_personal_data(context.access or SYSTEM_POLICY))


class ProjectType(ReferenceType):
    """A project: id, name or code (case-insensitive)."""

    name = kind_name = "project"
    label = _l("项目")
    narrows_units = True
    report_dimension = True
    export_width = 18


class UnitType(ReferenceType):
    """A unit: id, or its label as people say it ("3幢2单元1201"), optionally after the project's name or code.

    With ``context.project_id`` only units of that project are accepted.
    """

    name = kind_name = "unit"
    label = _l("户位")
    narrowed_by_project = True
    export_width = 16

    def _scope(self, context) -> dict:
        return {"project": ObjectId(str(context.project_id))} if context.project_id else {}

    def _in_scope(self, target, text, context):
        if context.project_id and target.project and target.project.pk != ObjectId(str(context.project_id)):
            raise InvalidValue(_("户位“%(text)s”不属于所选项目", text=text))
        return target

    def _find(self, text, context):
        scope = self._scope(context)
        found = self._match(text, scope)
        if found:
            return found
        # "云栖·江南府 3幢2单元1201" / "YQJNF 3幢2单元1201": a project's name or code, then the label.
        folded = fold(text)
        for project in Project.objects(active__ne=False).only("id", "name", "code"):
            if scope and project.pk != scope["project"]:
                continue
            for prefix in (fold(project.name or ""), fold(project.code or "")):
                if prefix and len(folded) > len(prefix) and folded.upper().startswith(prefix.upper()):
                    found.extend(self._match(folded[len(prefix):], {"project": project.pk}))
        return list({target.pk: target for target in found}.values())


class UserType(ReferenceType):
    """A user: id, login name or display name (active users only by name). Default "current_user"."""

    name = kind_name = "user"
    label = _l("用户")
    export_width = 16
    default_keywords = (DEFAULT_CURRENT_USER,)

    def _keyword_default(self, keyword, context):
        return context.user_id


class DepartmentType(ReferenceType):
    """A department: id or name (active departments only by name)."""

    name = kind_name = "department"
    label = _l("部门")
    report_dimension = True
