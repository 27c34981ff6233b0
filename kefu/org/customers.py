"""The customer archive (客户档案): who the customer is and which unit they own or rent, and the services that
change and find customers.

Phone, ID number and address are personal data: stored encrypted (``kefu.org.personal``; contexts
``customer.phone``, ``customer.id_number``, ``customer.address``) with a blind index of the canonical phone and ID
number for exact lookup, never in clear. The services below are the only write path; they take and give plain
text, and show it masked to whoever lacks ``view_customer_pii``. A customer is never deleted: archiving hides them
from pick lists and the default list, and every record keeps pointing at them.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import timedelta

from bson import ObjectId
from flask import current_app
from mongoengine import (
    NULLIFY, BinaryField, BooleanField, DateTimeField, Document, ObjectIdField, ReferenceField, StringField,
    ValidationError,
)

from kefu.core.clock import utcnow
from kefu.core.db import get_database
from kefu.core.encrypted_stores import EncryptedField, EncryptedFields
from kefu.core.errors import DomainError, PermissionDenied, ValidationFailed
from kefu.core.i18n import _l
from kefu.core.validation import (
    InvalidValue, check_typable, mask_id_number, mask_phone, normalize_id_number, normalize_phone,
)
from kefu.org.access import AccessPolicy
from kefu.org.personal import index_of, lookup_keys, mask_address, seal, unseal
from kefu.org.roles import Capability
from kefu.org.structure import Project, Unit

GENDERS = ("男", "女")
GRADES = ("A", "B", "C")
PHONE, ID_NUMBER, ADDRESS = "customer.phone", "customer.id_number", "customer.address"  # encryption contexts
MAX_ADDRESS_LENGTH = 200
LOOKUP_LIMIT = 30
LOOKUP_WINDOW = timedelta(minutes=10)
MAX_MATCHES = 20
# What a phone number is typed with (full-width forms folded first): a query of only these is a phone lookup.
_PHONE_LIKE = re.compile(r"[\d\s+\-()]*\d[\d\s+\-()]*", re.ASCII)


class Customer(Document):
    """One customer. ``phone``, ``id_number`` and ``address`` read the decrypted values (write through the
    services); ``*_enc`` hold the ciphertexts and ``*_bidx`` the blind indexes of the canonical forms."""

    name = StringField(required=True, max_length=40, verbose_name=_l("姓名"))
    gender = StringField(choices=GENDERS, verbose_name=_l("性别"))
    phone_enc = BinaryField()
    phone_bidx = StringField(max_length=64)
    id_number_enc = BinaryField()
    id_number_bidx = StringField(max_length=64)
    address_enc = BinaryField()
    project = ReferenceField(Project, reverse_delete_rule=NULLIFY, verbose_name=_l("项目"))
    unit = ReferenceField(Unit, reverse_delete_rule=NULLIFY, verbose_name=_l("户位"))
    grade = StringField(choices=GRADES, default="B", verbose_name=_l("客户等级"))
    notes = StringField(max_length=2000, verbose_name=_l("备注"))
    archived = BooleanField(default=False, verbose_name=_l("已归档"))
    archived_at = DateTimeField(verbose_name=_l("归档时间"))
    archived_by = ObjectIdField()  # the user who archived the customer
    merged_into = ObjectIdField(verbose_name=_l("合并到"))  # set when merged: the archive that was kept
    created_at = DateTimeField(default=utcnow, verbose_name=_l("建档时间"))
    updated_at = DateTimeField(default=utcnow, verbose_name=_l("更新时间"))

    meta = {
        "collection": "customers",
        "ordering": ["-created_at"],
        "indexes": ["phone_bidx", "id_number_bidx", "name", "project", "unit", "archived"],
    }

    @property
    def phone(self) -> str | None:
        return unseal(self.phone_enc, PHONE)

    @property
    def id_number(self) -> str | None:
        return unseal(self.id_number_enc, ID_NUMBER)

    @property
    def address(self) -> str | None:
        return unseal(self.address_enc, ADDRESS)

    def clean(self) -> None:
        """The unit must belong to the project (which it fills in when missing)."""
        if self.unit is not None:
            if self.project is None:
                self.project = self.unit.project
            elif self.unit.project.id != self.project.id:
                message = str(_l("户位不属于所选项目"))
                raise ValidationError(message, errors={"unit": message})
        self.updated_at = utcnow()

    def __str__(self) -> str:
        return self.name


ENCRYPTED_STORES = [EncryptedFields(Customer._get_collection_name(), (
    EncryptedField("phone_enc", PHONE, index="phone_bidx", normalise=normalize_phone),
    EncryptedField("id_number_enc", ID_NUMBER, index="id_number_bidx", normalise=normalize_id_number),
    EncryptedField("address_enc", ADDRESS),
))]
"""Where the customers' ciphertexts are, for ``flask kefu rotate-key`` (``kefu.core.encrypted_stores``)."""

PERSONAL_FIELDS = ("phone", "id_number", "address")
CONTEXTS = {"phone": PHONE, "id_number": ID_NUMBER, "address": ADDRESS}
PERSONAL_LABELS = {"phone": _l("联系电话"), "id_number": _l("身份证号"), "address": _l("联系地址")}
MASKS = {"phone": mask_phone, "id_number": mask_id_number, "address": mask_address}
PLAIN_FIELDS = ("name", "gender", "project", "unit", "grade", "notes")


class LookupLimited(DomainError):
    """Too many phone lookups by one user in a short time (the API answers 429)."""

    code = "too_many_lookups"


# -- personal data --------------------------------------------------------------------------------------------

def sees_personal_data(access: AccessPolicy) -> bool:
    """Whether customers' phone, ID number and address are shown to ``access`` unmasked."""
    return access.has(Capability.VIEW_CUSTOMER_PII.value)


def shown(customer: Customer, name: str, unmasked: bool) -> str:
    """Personal field ``name`` of ``customer`` as a user sees it: in clear when ``unmasked``, else masked."""
    value = getattr(customer, name) or ""
    return value if unmasked or not value else MASKS[name](value)


def stored_phone(stored: Mapping) -> str | None:
    """The phone of a customer document read with pymongo (``phone_enc`` in its projection), in clear: for the
    system's own messages to the customer."""
    return unseal(stored.get("phone_enc"), PHONE)


def customer_label(customer: Customer, unmasked: bool = False) -> str:
    """How a customer is named in pick lists and candidates: ``张伟（138****5678）`` (the phone in clear only when
    ``unmasked``), or their id's end when they have no phone."""
    detail = shown(customer, "phone", unmasked) or _l("编号 %(id)s", id=str(customer.pk)[-6:])
    return f"{customer.name}（{detail}）"


def _canonical(name: str, raw) -> str | None:
    """The stored form of personal field ``name`` typed as ``raw`` (None when blank); ``ValidationFailed`` names
    the field."""
    text = unicodedata.normalize("NFKC", str(raw)).strip() if raw is not None else ""
    if not text:
        return None
    try:
        if name == "phone":
            return normalize_phone(text)
        if name == "id_number":
            return normalize_id_number(text)
        check_typable(text, multiline=False)
    except InvalidValue as exc:
        raise _invalid(name, str(exc)) from None
    if len(text) > MAX_ADDRESS_LENGTH:
        raise _invalid(name, _l("最多 %(n)s 个字", n=MAX_ADDRESS_LENGTH))
    return text


def _invalid(name: str, problem) -> ValidationFailed:
    label = PERSONAL_LABELS.get(name) or Customer._fields[name].verbose_name
    message = _l("%(label)s：%(problem)s", label=label, problem=problem)
    return ValidationFailed(message, {name: message})


def _set_personal(customer: Customer, name: str, raw) -> None:
    value = _canonical(name, raw)
    setattr(customer, f"{name}_enc", seal(value, CONTEXTS[name]))
    if name != "address":  # only phone and ID number are looked up exactly
        setattr(customer, f"{name}_bidx", index_of(value, CONTEXTS[name]))


# -- writes ---------------------------------------------------------------------------------------------------

def _apply(customer: Customer, values: Mapping) -> Customer:
    unknown = [key for key in values if key not in (*PLAIN_FIELDS, *PERSONAL_FIELDS)]
    if unknown:
        raise ValidationFailed(_l("客户档案没有这些字段：%(keys)s", keys="、".join(map(str, unknown))))
    for name in PERSONAL_FIELDS:
        if name in values:
            _set_personal(customer, name, values[name])
    for name in PLAIN_FIELDS:
        if name in values:
            value = values[name]
            if isinstance(value, str):
                try:
                    value = check_typable(value.strip(), multiline=name == "notes")
                except InvalidValue as exc:
                    raise _invalid(name, str(exc)) from None
            setattr(customer, name, value)
    customer.save()
    return customer


def create_customer(values: Mapping) -> Customer:
    """Register a customer from plain ``values`` (``name``, ``gender``, ``phone``, ``id_number``, ``address``,
    ``project``, ``unit``, ``grade``, ``notes``); phone and ID number are normalised, the personal fields stored
    encrypted. Raises ``ValidationFailed`` (a personal field) or MongoEngine's ``ValidationError`` naming the field."""
    return _apply(Customer(), values)


def update_customer(customer: Customer, changes: Mapping) -> Customer:
    """Change the fields named in ``changes`` (a blank value clears a field); the others keep their values — a
    form that showed a personal field masked leaves it out. Raises like :func:`create_customer`."""
    return _apply(customer, changes)


def archive_customer(customer: Customer, access: AccessPolicy, user_id=None) -> Customer:
    """Archive a customer (only with ``archive_customers``): hidden from pick lists and the default list, every
    record keeps its link. Raises ``PermissionDenied``."""
    if not access.has(Capability.ARCHIVE_CUSTOMERS.value):
        raise PermissionDenied(_l("只有具备“归档客户档案”权限的角色可以归档客户"))
    Customer.objects(pk=customer.pk).update_one(set__archived=True, set__archived_at=utcnow(),
                                                set__archived_by=user_id, set__updated_at=utcnow())
    customer.reload()
    return customer


def restore_customer(customer: Customer, access: AccessPolicy) -> Customer:
    """Bring an archived customer back (only with ``archive_customers``). Raises ``PermissionDenied``."""
    if not access.has(Capability.ARCHIVE_CUSTOMERS.value):
        raise PermissionDenied(_l("只有具备“归档客户档案”权限的角色可以恢复客户"))
    Customer.objects(pk=customer.pk).update_one(set__archived=False, unset__archived_at=True,
                                                unset__archived_by=True, set__updated_at=utcnow())
    customer.reload()
    return customer


def mark_merged(removed: Customer, kept: Customer, user_id=None) -> None:
    """Archive ``removed`` as merged into ``kept`` (``merged_into`` points at it). Only for the merge use-case
    (``kefu.insight.customer_merge``), which checks the rights and relinks the records in the same transaction:
    written through ``get_database`` so it joins that transaction."""
    now = utcnow()
    get_database()[Customer._get_collection_name()].update_one({"_id": removed.pk}, {"$set": {
        "archived": True, "archived_at": now, "archived_by": user_id, "merged_into": kept.pk, "updated_at": now}})


# -- lookups --------------------------------------------------------------------------------------------------

def looks_like_phone(text: str | None) -> bool:
    """Whether a search text is (part of) a phone number: digits with the characters numbers are typed with."""
    return bool(_PHONE_LIKE.fullmatch(unicodedata.normalize("NFKC", text or "").strip()))


def count_lookup(user_id) -> None:
    """Count one lookup of customers (by phone or unit) of ``user_id`` in Redis; ``LookupLimited`` past ``LOOKUP_LIMIT`` in the window."""
    if user_id is None:  # the system's own work is not a person looking people up
        return
    key = f"kefu:customer-lookups:{user_id}"
    # One transaction: the window's counter is created with its expiry, so no crash leaves a counter that never ends.
    pipeline = current_app.extensions["kefu_redis"].pipeline(transaction=True)
    pipeline.set(key, 0, ex=int(LOOKUP_WINDOW.total_seconds()), nx=True)
    pipeline.incr(key)
    pipeline.ttl(key)
    _created, count, ttl = pipeline.execute()
    if count > LOOKUP_LIMIT:
        raise LookupLimited(_l("查找客户过于频繁（每 %(minutes)s 分钟最多 %(n)s 次），请 %(wait)s 分钟后再试",
                               minutes=int(LOOKUP_WINDOW.total_seconds() // 60), n=LOOKUP_LIMIT,
                               wait=max(1, -(-ttl // 60))))


def find_by_phone(text: str, access: AccessPolicy, user_id=None, *, project=None, archived: bool = False,
                  limit: int = MAX_MATCHES) -> list[Customer]:
    """The customers whose phone is exactly ``text`` (any typed form, compared canonical through the blind index;
    part of a number finds nobody). Only for roles with ``lookup_customers``, and counted: at most
    ``LOOKUP_LIMIT`` lookups of complete numbers per user per ``LOOKUP_WINDOW`` (a pick list asks as the person
    types: the partial numbers before find nothing and are not counted). Raises ``PermissionDenied`` /
    ``LookupLimited``."""
    if not access.has(Capability.LOOKUP_CUSTOMERS.value):
        raise PermissionDenied(_l("您的角色不能按电话查找客户"))
    try:
        canonical = normalize_phone(text)
    except InvalidValue:
        return []
    count_lookup(user_id)
    found = Customer.objects(phone_bidx__in=lookup_keys(canonical, PHONE))
    if not archived:
        found = found.filter(archived__ne=True)
    if project is not None:
        found = found.filter(project=project)
    return list(found.limit(limit))


def search_customers(text: str, access: AccessPolicy, user_id=None, *, project=None,
                     limit: int = MAX_MATCHES) -> list[Customer]:
    """Customers in the archive (not archived) for a pick list: by exact phone when ``text`` looks like a phone
    number (:func:`find_by_phone`, with its checks), else whose name contains ``text`` (every one when blank);
    ``project``: an id limiting them to one project."""
    text = (text or "").strip()
    project = ObjectId(project) if project and ObjectId.is_valid(str(project)) else None
    if looks_like_phone(text):
        return find_by_phone(text, access, user_id, project=project, limit=limit)
    found = Customer.objects(archived__ne=True)
    if text:
        found = found.filter(name=re.compile(re.escape(text), re.IGNORECASE))
    if project is not None:
        found = found.filter(project=project)
    return list(found.limit(limit))
