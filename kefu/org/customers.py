"""The customer archive (客户档案): who the customer is and which unit they own or rent."""
from __future__ import annotations

from mongoengine import NULLIFY, DateTimeField, Document, ReferenceField, StringField, ValidationError

from kefu.core.clock import utcnow
from kefu.core.i18n import _l
from kefu.core.validation import InvalidValue, normalize_id_number, normalize_phone
from kefu.org.structure import Project, Unit

GENDERS = ("男", "女")
GRADES = ("A", "B", "C")


class Customer(Document):
    """One customer; phone and ID number are stored in their canonical forms."""

    name = StringField(required=True, max_length=40, verbose_name=_l("姓名"))
    gender = StringField(choices=GENDERS, verbose_name=_l("性别"))
    phone = StringField(max_length=20, verbose_name=_l("联系电话"))
    id_number = StringField(max_length=18, verbose_name=_l("身份证号"))
    address = StringField(max_length=200, verbose_name=_l("联系地址"))
    project = ReferenceField(Project, reverse_delete_rule=NULLIFY, verbose_name=_l("项目"))
    unit = ReferenceField(Unit, reverse_delete_rule=NULLIFY, verbose_name=_l("户位"))
    grade = StringField(choices=GRADES, default="B", verbose_name=_l("客户等级"))
    notes = StringField(max_length=2000, verbose_name=_l("备注"))
    created_at = DateTimeField(default=utcnow, verbose_name=_l("建档时间"))
    updated_at = DateTimeField(default=utcnow, verbose_name=_l("更新时间"))

    meta = {
        "collection": "customers",
        "ordering": ["-created_at"],
        "indexes": ["phone", "name", "id_number", "project", "unit"],
    }

    def clean(self) -> None:
        """Normalise phone and ID number; the unit must belong to the project."""
        for field_name, normalize in (("phone", normalize_phone), ("id_number", normalize_id_number)):
            value = getattr(self, field_name)
            if value:
                try:
                    setattr(self, field_name, normalize(value))
                except InvalidValue as exc:
                    raise ValidationError(str(exc), errors={field_name: str(exc)}, field_name=field_name)
        if self.unit is not None:
            if self.project is None:
                self.project = self.unit.project
            elif self.unit.project.id != self.project.id:
                raise ValidationError(str(_l("户位不属于所选项目")), errors={"unit": str(_l("户位不属于所选项目"))})
        self.updated_at = utcnow()

    def __str__(self) -> str:
        return self.name
