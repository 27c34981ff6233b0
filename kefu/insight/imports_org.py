"""Import targets of the organisation (``kefu.insight.imports``): units with their buildings (户位), and users;
both need ``manage_system``.

A unit names an existing project (by name or code); its building is made when the project has none of that name;
a unit the project has already (same 户位 label) is skipped. A user is created through
``kefu.org.users.create_user`` with the file's initial password (at least 8 characters; the column is masked in
every report); a login name in use is skipped.
"""
from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from kefu.core.errors import DomainError
from kefu.core.i18n import _l
from kefu.core.validation import InvalidValue, check_typable, normalize_phone
from kefu.insight.imports_targets import Column, Prepared, invalid_row, project_named, remembered
from kefu.org.access import AccessPolicy
from kefu.org.roles import Capability, role_label, role_keys
from kefu.org.structure import Building, Unit, unit_label
from kefu.org.users import (
    MIN_PASSWORD_LENGTH, USERNAME_PATTERN, User, clean_approval_titles, create_user, find_department,
)
from kefu.records.actor import Actor

LIST_SEPARATORS = re.compile(r"[,，、;；\s]+")


def _text(raw, limit: int) -> str:
    text = check_typable(unicodedata.normalize("NFKC", str(raw)).strip(), multiline=False)
    if isinstance(raw, float) and raw.is_integer():
        text = str(int(raw))  # a room number typed as a number: 1201, not 1201.0
    if len(text) > limit:
        raise InvalidValue(_l("最多 %(n)s 个字", n=limit))
    return text


class _SystemTarget:
    def __init__(self):
        self._found: dict = {}  # (column, cell) → the project it names, or its problem

    def allowed(self, access: AccessPolicy) -> bool:
        return access.has(Capability.MANAGE_SYSTEM.value)

    def sees_pii(self, actor: Actor) -> bool:
        return False

    def columns(self) -> list[Column]:
        return [Column(key, str(label), (str(label), *names, key), key in self.sensitive, key in self.needed)
                for key, label, names in self.fields]

    def _cleaned(self, raw: dict) -> dict:
        values, errors = {}, {}
        for key, label, _names in self.fields:
            if raw.get(key) is None:
                if key in self.needed:
                    errors[key] = _l("请填写“%(label)s”", label=label)
                continue
            try:
                values[key] = self._clean(key, raw[key], values)
            except (InvalidValue, DomainError) as exc:
                errors[key] = str(exc)
        if errors:
            raise invalid_row(errors)
        return values


class UnitTarget(_SystemTarget):
    """The units of existing projects (项目 → 楼栋 → 户位)."""

    key = "units"
    name = _l("户位")
    fields = (("project", _l("项目"), ("项目名称", "项目编码", "project")), ("building", _l("楼栋"), ("building",)),
              ("entrance", _l("单元"), ("entrance",)), ("room", _l("房号"), ("room",)),
              ("area", _l("建筑面积(㎡)"), ("建筑面积", "面积", "area")), ("layout", _l("户型"), ("layout",)))
    needed = ("project", "building", "room")
    sensitive = ()

    def _clean(self, key: str, raw, values: dict):
        if key == "project":
            return remembered(self._found, ("project", str(raw)), lambda: project_named(raw))
        if key == "area":
            try:
                area = Decimal(str(raw).replace("㎡", "").strip())
            except InvalidOperation:
                raise InvalidValue(_l("应为数字，如 89.5")) from None
            if not area.is_finite() or area < 0:
                raise InvalidValue(_l("应为不小于 0 的数字"))
            return area.quantize(Decimal("0.01"))
        return _text(raw, 20 if key in ("building", "layout") else 10)

    def prepare(self, raw: dict, actor: Actor) -> Prepared:
        values = self._cleaned(raw)
        label = unit_label(values["building"], values.get("entrance"), values["room"])
        return Prepared(values, f"{values['project'].pk}:{label}", extra={"label": label})

    def exists(self, prepared: Prepared, key: str) -> str | None:
        found = Unit.objects(project=prepared.values["project"], label=prepared.extra["label"]).first()
        return str(_l("户位已存在，跳过")) if found is not None else None

    def write(self, prepared: Prepared, key: str, actor: Actor, note: dict) -> None:
        values = dict(prepared.values)
        project = values.pop("project")
        building = (Building.objects(project=project, name=values["building"]).first()
                    or Building(project=project, name=values["building"]).save())
        values["building"] = building
        Unit(project=project, **values).save()


class UserTarget(_SystemTarget):
    """User accounts."""

    key = "users"
    name = _l("用户")
    fields = (("username", _l("登录名"), ("账号", "username")), ("display_name", _l("姓名"), ("name",)),
              ("roles", _l("角色"), ("roles",)), ("department", _l("部门"), ("department",)),
              ("email", _l("邮箱"), ("email",)), ("phone", _l("电话"), ("手机", "phone")),
              ("approval_titles", _l("审批职务"), ("职务",)), ("password", _l("初始密码"), ("密码", "password")))
    needed = ("username", "roles", "password")
    sensitive = ("phone", "password")

    def _clean(self, key: str, raw, values: dict):
        text = str(raw).strip()
        if key == "username" and not USERNAME_PATTERN.match(text):
            raise InvalidValue(_l("登录名须以字母开头，3–32 位字母、数字、_ . -"))
        if key == "roles":
            return self._roles(text)
        if key == "department":
            return find_department(text).name
        if key == "phone":
            normalize_phone(str(int(raw)) if isinstance(raw, float) and raw.is_integer() else text)
        if key == "approval_titles":
            return clean_approval_titles(text)
        if key == "password" and len(text) < MIN_PASSWORD_LENGTH:
            raise InvalidValue(_l("密码至少 %(n)s 位", n=MIN_PASSWORD_LENGTH))
        return _text(raw, 120) if key != "password" else text

    def _roles(self, text: str) -> list[str]:
        by_name = {**{role_label(key): key for key in role_keys()}, **{key: key for key in role_keys()}}
        names = [name for name in LIST_SEPARATORS.split(text) if name]
        unknown = [name for name in names if name not in by_name]
        if unknown or not names:
            raise InvalidValue(_l("没有角色：%(names)s；可选：%(known)s", names="、".join(unknown) or "-",
                                  known="、".join(role_label(key) for key in role_keys())))
        return list(dict.fromkeys(by_name[name] for name in names))

    def prepare(self, raw: dict, actor: Actor) -> Prepared:
        values = self._cleaned(raw)
        return Prepared(values, values["username"].lower())

    def exists(self, prepared: Prepared, key: str) -> str | None:
        found = User.objects(username=prepared.values["username"]).first()
        return str(_l("登录名已存在，跳过")) if found is not None else None

    def write(self, prepared: Prepared, key: str, actor: Actor, note: dict) -> None:
        values = dict(prepared.values)
        create_user(values.pop("username"), values.pop("password"), values.pop("roles"), **values)


TARGETS = {"units": UnitTarget, "users": UserTarget}
