"""What an import writes into (``kefu.insight.imports``): the records of a type, and the customer archive; the
organisation's units and users are in ``kefu.insight.imports_org``.

A target names the fields a column can go into (``columns``), checks one row without writing anything
(``prepare``: ``ValidationFailed`` whose ``fields`` map a field key to its message), tells whether a row was
imported before (``exists``) and writes a row through the area's own service (``write``): records through
``kefu.records.write.create_record``, customers through ``kefu.org.customers.create_customer`` — validation,
encryption of personal data, audit and the rules are theirs.

A row's identity makes a re-run write nothing twice: a record's number (编号) when the file has one, else a digest of
the row computed by the caller; a customer's phone, else ID number, else name with project and unit. A record
keeps the identity it was imported under (``imported.key``, unique), so a row is recognised whoever runs the file
again and however much later — the API's ``Idempotency-Key`` is kept only a day and is each caller's own.
"""
from __future__ import annotations

import unicodedata
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from pymongo import ASCENDING, IndexModel

from kefu.core import clock
from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l, in_user_language
from kefu.core.validation import InvalidValue, check_typable, normalize_id_number, normalize_phone
from kefu.org.access import AccessPolicy
from kefu.org.customers import (
    GENDERS, GRADES, ID_NUMBER, MAX_ADDRESS_LENGTH, PERSONAL_LABELS, PHONE, Customer, create_customer,
    sees_personal_data,
)
from kefu.org.personal import lookup_keys
from kefu.org.roles import Action, Capability
from kefu.org.structure import Project, Unit
from kefu.records import lifecycle
from kefu.records.actor import Actor
from kefu.records.core_fields import core_field, core_fields
from kefu.records.fields import get_field_type
from kefu.records.fields.references import ReferenceType
from kefu.records.store import RECORDS
from kefu.records.types import RecordType, get_record_type
from kefu.records.values import clean_values
from kefu.records.write import create_record

IMPORTED = "imported"  # a record's note of the import that wrote it: {key, import, row}
RECORD_INDEXES = [IndexModel([(f"{IMPORTED}.key", ASCENDING)], name="imported_key", unique=True,
                             partialFilterExpression={f"{IMPORTED}.key": {"$exists": True}})]
CORE_IMPORTED = ("number", "status", "assignee", "department", "customer", "created_at")


@dataclass(frozen=True)
class Column:
    """A field a column of the file can go into."""

    key: str
    label: str
    names: tuple = ()  # what a header may say to be matched to it (label, English label, key)
    sensitive: bool = False
    needed: bool = False  # required with no default: the file must have a column for it


@dataclass
class Prepared:
    """A row checked by ``prepare``: the values the service takes, the row's identity (None: the caller's digest
    of the row), and for a record of the past the moment it was registered."""

    values: dict
    identity: str | None = None
    when: datetime | None = None
    extra: dict = field(default_factory=dict)


def invalid_row(errors: dict) -> ValidationFailed:
    """The refusal of a row: each field key with its message."""
    return ValidationFailed("；".join(str(m) for m in errors.values()), errors)


class RecordTarget:
    """The records of one type. ``number`` (编号) is the row's identity, ``created_at`` (登记时间) — else the type's
    intake time, its first date-time field defaulting to now — the moment it is registered at: the record, its
    number's month, its audit entry and every deadline are those of that moment (``kefu.core.clock.at``)."""

    def __init__(self, record_type: RecordType):
        self.record_type = record_type
        self.key = f"records:{record_type.key}"
        self.name = record_type.name
        self._references: dict = {}  # (field key, cell, project) → the document the cell names, or its problem

    def allowed(self, access: AccessPolicy) -> bool:
        return access.allows(self.record_type.key, Action.CREATE.value)

    def sees_pii(self, actor: Actor) -> bool:
        return actor.sees_pii(self.record_type.key)

    def columns(self) -> list[Column]:
        found = [Column(f.key, str(f.label), (str(f.label), f.key)) for f in core_fields(self.record_type)
                 if f.key in CORE_IMPORTED]
        for definition in self.record_type.active_fields:
            if get_field_type(definition.type).holds_files:
                continue  # files cannot come from a spreadsheet
            names = (definition.label, definition.label_en or "", definition.key)
            found.append(Column(definition.key, in_user_language(definition.label, definition.label_en),
                                tuple(n for n in names if n),
                                bool(definition.sensitive),
                                bool(definition.required) and definition.default in (None, "")))
        return found

    def _intake_key(self) -> str | None:
        return next((f.key for f in self.record_type.active_fields
                     if f.type == "datetime" and f.default == "now"), None)

    def _resolve(self, values: dict, actor: Actor, errors: dict) -> dict:
        """``values`` with each reference cell (a project, unit, user … named as text) replaced by the document it
        names, looked up once per distinct cell (and project, for a unit) in the import — the field types take a
        document as is; a cell that names nothing is noted in ``errors``. A file names the same few projects and
        people on every row, and a lookup by name costs a query."""
        resolved = dict(values)
        ordered = sorted(values, key=lambda k: k != "project" and not self._narrows(k))
        project = None
        for key in ordered:
            definition = self.record_type.field(key) or core_field(self.record_type, key)
            field_type = get_field_type(definition.type)
            if not isinstance(field_type, ReferenceType):
                continue
            memo = (key, str(values[key]), getattr(project, "pk", None))
            try:
                found = remembered(self._references, memo, lambda: field_type.kind.document.objects(
                    pk=field_type.clean(values[key], definition, actor.field_context(memo[2]))).first())
            except InvalidValue as exc:
                errors[key] = str(exc)
                resolved.pop(key)
            else:
                resolved[key] = found
                project = found if field_type.narrows_units else project
        return resolved

    def _narrows(self, key: str) -> bool:
        definition = self.record_type.field(key)
        return definition is not None and get_field_type(definition.type).narrows_units

    def prepare(self, raw: dict, actor: Actor) -> Prepared:
        errors, number, when = {}, None, None
        values = self._resolve({k: v for k, v in raw.items() if k not in ("number", "created_at")}, actor, errors)
        if raw.get("number") is not None:
            number = unicodedata.normalize("NFKC", str(raw["number"])).strip()
        if raw.get("created_at") is not None:
            definition = core_field(self.record_type, "created_at")
            try:
                when = get_field_type("datetime").clean(raw["created_at"], definition, actor.field_context())
            except InvalidValue as exc:
                errors["created_at"] = str(exc)
        try:
            core, data = clean_values(self.record_type, values, actor, creating=True)
            lifecycle.before_save(self.record_type, None, {**core, **data}, {*core, *data})
        except ValidationFailed as exc:
            errors.update({k: v for k, v in (exc.fields or {"": exc.message}).items() if k not in errors})
            core, data = {}, {}
        intake = self._intake_key()
        if when is None and intake in values and data.get(intake) is not None:
            when = data[intake]
        if when is not None and when > utcnow():
            errors.setdefault("created_at" if "created_at" in raw else intake, _l("登记时间不能晚于现在"))
        if errors:
            raise invalid_row(errors)
        identity = f"{self.record_type.key}:no:{number}" if number else None
        return Prepared(values, identity, when, {"number": number})

    def exists(self, prepared: Prepared, key: str) -> str | None:
        """Why the row is skipped when it was imported (or numbered) before, else None."""
        records = get_database()[RECORDS]
        number = prepared.extra.get("number")
        if number and records.find_one({"type": self.record_type.key, "number": number}, {"_id": 1}):
            return str(_l("编号 %(number)s 已存在，跳过", number=number))
        if records.find_one({f"{IMPORTED}.key": key}, {"_id": 1}):
            return str(_l("此前已导入，跳过"))
        return None

    def write(self, prepared: Prepared, key: str, actor: Actor, note: dict) -> None:
        """Create the record (at its moment when it is of the past); a concurrent import of the same row makes
        the unique ``imported.key`` refuse the second (``DuplicateKeyError``)."""
        with clock.at(prepared.when) if prepared.when is not None else nullcontext():
            create_record(self.record_type.key, prepared.values, actor, extra={IMPORTED: {"key": key, **note}})


CUSTOMER_COLUMNS = (
    ("name", _l("姓名"), ("客户姓名", "name")), ("gender", _l("性别"), ("gender",)),
    ("phone", PERSONAL_LABELS["phone"], ("电话", "手机", "手机号", "phone")),
    ("id_number", PERSONAL_LABELS["id_number"], ("身份证", "身份证号码", "id number")),
    ("address", PERSONAL_LABELS["address"], ("地址", "address")),
    ("project", _l("项目"), ("项目名称", "project")), ("unit", _l("户位"), ("房号", "unit")),
    ("grade", _l("客户等级"), ("等级", "grade")), ("notes", _l("备注"), ("notes",)),
)


def remembered(cache: dict, key, look_up):
    """``look_up()`` once per ``key`` of ``cache`` — its ``InvalidValue`` too, raised again on every hit: a file names
    the same few projects, units and people on every row."""
    if key not in cache:
        try:
            cache[key] = look_up()
        except InvalidValue as exc:
            cache[key] = exc
    if isinstance(cache[key], InvalidValue):
        raise cache[key]
    return cache[key]


def project_named(text) -> Project:
    """The project named (or coded) ``text``; ``InvalidValue`` saying so when there is none."""
    name = unicodedata.normalize("NFKC", str(text)).strip()
    project = Project.objects(name=name).first() or Project.objects(code=name.upper()).first()
    if project is None:
        raise InvalidValue(_l("没有名称或编码为“%(name)s”的项目", name=text))
    return project


def _text(raw, limit: int, multiline: bool = False) -> str:
    text = check_typable(unicodedata.normalize("NFKC", str(raw)).strip(), multiline=multiline)
    if len(text) > limit:
        raise InvalidValue(_l("最多 %(n)s 个字", n=limit))
    return text


class CustomerTarget:
    """The customer archive (客户档案); needs ``manage_customers``. A customer already in the archive (same phone,
    else ID number, else name, project and unit) is skipped."""

    key = "customers"
    name = _l("客户档案")

    def __init__(self):
        self._found: dict = {}  # (column, cell[, project]) → the project or unit it names, or its problem

    def allowed(self, access: AccessPolicy) -> bool:
        return access.has(Capability.MANAGE_CUSTOMERS.value)

    def sees_pii(self, actor: Actor) -> bool:
        return sees_personal_data(actor.access)

    def columns(self) -> list[Column]:
        return [Column(key, str(label), (str(label), *names, key), key in ("phone", "id_number", "address"),
                       key == "name") for key, label, names in CUSTOMER_COLUMNS]

    def _clean(self, key: str, raw, values: dict):
        if key == "name":
            return _text(raw, 40)
        if key in ("gender", "grade"):
            allowed = GENDERS if key == "gender" else GRADES
            text = str(raw).strip().upper() if key == "grade" else str(raw).strip()
            if text not in allowed:
                raise InvalidValue(_l("应为：%(choices)s", choices="、".join(allowed)))
            return text
        if key == "phone":
            return normalize_phone(str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw))
        if key == "id_number":
            return normalize_id_number(str(raw))
        if key == "project":
            return remembered(self._found, ("project", str(raw)), lambda: project_named(raw))
        if key == "unit":
            return remembered(self._found, ("unit", str(raw), getattr(values.get("project"), "pk", None)),
                              lambda: self._unit(raw, values))
        return _text(raw, MAX_ADDRESS_LENGTH if key == "address" else 2000, multiline=key == "notes")

    def _unit(self, raw, values: dict) -> Unit:
        project = values.get("project")
        if project is None:
            raise InvalidValue(_l("请同时填写户位所在的项目"))
        unit = Unit.objects(project=project, label=unicodedata.normalize("NFKC", str(raw)).strip()).first()
        if unit is None:
            raise InvalidValue(_l("项目“%(project)s”没有户位“%(unit)s”", project=project.name, unit=raw))
        return unit

    def prepare(self, raw: dict, actor: Actor) -> Prepared:
        values, errors = {}, {}
        for key, _label, _names in CUSTOMER_COLUMNS:  # in this order: the project before its unit
            if raw.get(key) is None:
                continue
            try:
                values[key] = self._clean(key, raw[key], values)
            except InvalidValue as exc:
                errors[key] = str(exc)
        if "name" not in values and "name" not in errors:
            errors["name"] = _l("请填写“%(label)s”", label=_l("姓名"))
        if errors:
            raise invalid_row(errors)
        unit = values.get("unit")
        identity = (f"phone:{values['phone']}" if values.get("phone") else
                    f"id:{values['id_number']}" if values.get("id_number") else
                    f"name:{values['name']}:{getattr(values.get('project'), 'pk', '')}:{getattr(unit, 'pk', '')}")
        return Prepared(values, identity)

    def exists(self, prepared: Prepared, key: str) -> str | None:
        values = prepared.values
        if values.get("phone"):
            found = Customer.objects(phone_bidx__in=lookup_keys(values["phone"], PHONE)).first()
        elif values.get("id_number"):
            found = Customer.objects(id_number_bidx__in=lookup_keys(values["id_number"], ID_NUMBER)).first()
        else:
            found = Customer.objects(name=values["name"], project=values.get("project"),
                                     unit=values.get("unit")).first()
        return str(_l("客户档案中已有此客户，跳过")) if found is not None else None

    def write(self, prepared: Prepared, key: str, actor: Actor, note: dict) -> None:
        create_customer(prepared.values)


def record_target(type_key: str) -> RecordTarget:
    """The target of the records of an active type (``NotFound`` otherwise)."""
    return RecordTarget(get_record_type(type_key))
