"""Demo data: Hangzhou projects with buildings and units, the handbooks' departments,
one user per role and 200 customers. Every function is get-or-create: running the
seed again adds nothing and changes nothing an admin edited."""
from __future__ import annotations

import random
from datetime import datetime, timezone

from kefu.notify.messages import ensure_templates
from kefu.org import loyalty as loyalty_settings
from kefu.org.customers import PHONE, Customer, create_customer
from kefu.org.personal import lookup_keys
from kefu.org.roles import Role
from kefu.org.structure import Building, Department, Project, Unit, unit_label
from kefu.org.users import User, create_user
from kefu.records.definitions import load_shipped_types
from kefu.records.types import RecordType
from kefu.rules.loyalty import save_settings as save_loyalty_settings
from seed.people import make_people

DEMO_PASSWORD = "kefu-demo"

# domain.md §1: the departments the handbooks name.
DEPARTMENTS = (
    ("客服中心", "受理、登记、转办、跟进与回访"),
    ("营销部", "销售承诺、签约、按揭与客户信息"),
    ("工程部", "工程质量核实与整改"),
    ("研发设计部", "规划设计类问题"),
    ("物业服务中心", "物业管理、报修与有偿服务"),
    ("法务部", "诉讼与法律风险"),
    ("财务部", "赔付审核与付款"),
    ("人力资源部", "考核与奖惩"),
    ("营运部", "商户沟通与营运管理"),
    ("物业管理部", "商业物业的物业管理（004 投诉处理：物业管理类投诉）"),
)

PROJECTS = (
    # name, code, district, address, handover date, buildings, floors
    ("云栖·江南府", "YQJNF", "西湖区", "杭州市西湖区转塘街道云栖路 88 号", datetime(2025, 6, 30), 4, 11),
    ("钱塘·星澜苑", "QTXLY", "钱塘区", "杭州市钱塘区下沙街道文渊北路 516 号", datetime(2026, 12, 28), 3, 18),
    ("拱宸·桥西里", "GCQXL", "拱墅区", "杭州市拱墅区小河街道丽水路 120 号", datetime(2024, 9, 26), 3, 9),
)
ROOMS_PER_FLOOR = ("01", "02")
ENTRANCES = ("1单元", "2单元")
LAYOUTS = (("三室两厅两卫", "128.60"), ("四室两厅两卫", "143.20"))

DEMO_USERS = (
    # username, display name, role, department
    ("admin", "系统管理员", Role.ADMIN, "客服中心"),
    ("manager", "周海燕", Role.MANAGER, "客服中心"),
    ("supervisor", "陈立峰", Role.SUPERVISOR, "客服中心"),
    ("agent", "林晓雯", Role.AGENT, "客服中心"),
    ("handler", "王志刚", Role.HANDLER, "工程部"),
    ("approver", "沈国栋", Role.APPROVER, "营销部"),
)
# Approval titles of the demo users (用户 → 审批职务): the demo approver approves compensation below 5,000; the
# manager is the 客服经理 the renovation pack's 重大客诉 are routed to (002 重大客诉处理程序).
DEMO_APPROVAL_TITLES = {"approver": ["项目总监"], "manager": ["客服经理"]}
# Where reminders reach the demo users once SMTP or a group robot is set up (通知设置).
DEMO_EMAIL_DOMAIN = "kefu.example.com"
DEMO_PHONES = {"admin": "13800138000", "manager": "13800138001", "supervisor": "13800138002",
               "agent": "13800138003", "handler": "13800138004", "approver": "13800138005"}
CUSTOMER_COUNT = 200


def seed_departments() -> list[Department]:
    departments = []
    for order, (name, description) in enumerate(DEPARTMENTS):
        department = Department.objects(name=name).first()
        if department is None:
            department = Department(name=name, description=description, sort_order=order * 10)
            department.save()
        departments.append(department)
    return departments


def seed_projects() -> list[Project]:
    projects = []
    for name, code, district, address, handover, building_count, floors in PROJECTS:
        project = Project.objects(code=code).first()
        if project is None:
            project = Project(name=name, code=code, district=district, address=address,
                              handover_date=handover.replace(tzinfo=timezone.utc))
            project.save()
        projects.append(project)
        _seed_buildings_and_units(project, building_count, floors)
    return projects


def _seed_buildings_and_units(project: Project, building_count: int, floors: int) -> None:
    existing_labels = set(Unit.objects(project=project).scalar("label"))
    for number in range(1, building_count + 1):
        building = Building.objects(project=project, name=f"{number}幢").first()
        if building is None:
            building = Building(project=project, name=f"{number}幢", floors=floors, sort_order=number)
            building.save()
        for entrance in ENTRANCES:
            for floor in range(1, floors + 1):
                for index, room_suffix in enumerate(ROOMS_PER_FLOOR):
                    room = f"{floor}{room_suffix}"
                    if unit_label(building.name, entrance, room) in existing_labels:
                        continue
                    layout, area = LAYOUTS[index]
                    Unit(project=project, building=building, entrance=entrance, room=room,
                         layout=layout, area=area).save()


def seed_users() -> list[User]:
    seeded = []
    for username, display_name, role, department in DEMO_USERS:
        user = User.objects(username=username).first()
        if user is None:
            user = create_user(username, DEMO_PASSWORD, [role.value], department=department,
                               display_name=display_name, approval_titles=DEMO_APPROVAL_TITLES.get(username),
                               email=f"{username}@{DEMO_EMAIL_DOMAIN}", phone=DEMO_PHONES[username])
        seeded.append(user)
    return seeded


def seed_customers(projects: list[Project]) -> None:
    rng = random.Random(2026)
    units_by_project = {project.id: list(Unit.objects(project=project).only("id", "project")) for project in projects}
    known_phones = set(Customer.objects.scalar("phone_bidx"))  # blind indexes: phones are stored encrypted
    for person in make_people(CUSTOMER_COUNT, seed=2026):
        project = rng.choice(projects)
        unit = rng.choice(units_by_project[project.id])
        if known_phones.intersection(lookup_keys(person["phone"], PHONE)):
            continue
        create_customer({**person, "project": project, "unit": unit})


def seed_loyalty_settings() -> None:
    """Grade callbacks (002 第五章) go to 客服中心, whose supervisors then see them (once: an admin's edit stays)."""
    current = loyalty_settings.settings()
    if "department" not in current["callback"]["values"]:
        current["callback"]["values"] = {**current["callback"]["values"], "department": "客服中心"}
        save_loyalty_settings(current)


def seed_demo() -> dict[str, int]:
    """Create whatever demo data is missing; return the counts afterwards."""
    load_shipped_types()
    ensure_templates()
    seed_departments()
    projects = seed_projects()
    seed_users()
    seed_customers(projects)
    seed_loyalty_settings()
    return {
        "departments": Department.objects.count(), "projects": Project.objects.count(),
        "buildings": Building.objects.count(), "units": Unit.objects.count(),
        "users": User.objects.count(), "customers": Customer.objects.count(),
        "record types": RecordType.objects.count(),
    }
