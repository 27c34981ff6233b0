"""Flask-Admin at ``/admin/``: one ``Admin`` per app, views registered in ``init_admin``."""
from __future__ import annotations

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user

from admin_views.base import HomeView
from admin_views.calendar import CalendarDayView
from admin_views.caller import CallerView
from admin_views.customers import CustomerView
from admin_views.exports import ExportsView
from admin_views.imports import ImportsView
from admin_views.inbox import InboxView, TasksView
from admin_views.knowledge import KnowledgeView, init_knowledge
from admin_views.loyalty import LoyaltyView
from admin_views.navigation import main_menu
from admin_views.notify import DeliveryView, MessageTemplateView, NotificationSettingsView
from admin_views.org import BuildingView, DepartmentView, ProjectView, UnitView
from admin_views.overdue import OverdueView
from admin_views.queue import QueueView
from admin_views.record_types import RecordTypeView
from admin_views.records import RecordView
from admin_views.reports import ReportView
from admin_views.roles import RoleView
from admin_views.schedules import SchedulesView
from admin_views.search import SearchView
from admin_views.surveys import SurveyView
from admin_views.tokens import ApiTokenView
from admin_views.users import UserView
from kefu.calendar.days import CalendarDay
from kefu.core.i18n import _l
from kefu.knowledge.entries import KnowledgeEntry
from kefu.notify.messages import MessageTemplate
from kefu.notify.notifications import Delivery, unread_count
from kefu.org.customers import Customer
from kefu.org.structure import Building, Department, Project, Unit
from kefu.org.tokens import ApiToken
from kefu.org.users import User
from kefu.records.types import RecordType
from web.i18n import TRANSLATIONS_DIR
from web.security import csp_nonce


def init_admin(app: Flask) -> Admin:
    """Create the admin for ``app`` with every screen the signed-in roles may open."""
    admin = Admin(
        app, name=_l("客服管理系统"),
        index_view=HomeView(name=_l("首页"), url="/admin"),
        theme=Bootstrap4Theme(base_template="admin/kefu_base.html", fluid=True),
        translations_path=str(TRANSLATIONS_DIR), csp_nonce_generator=csp_nonce,
    )
    organisation = _l("组织与项目")
    settings = _l("系统设置")
    admin.add_view(RecordView(name=_l("记录"), endpoint="records", url="/admin/records/<type_key>"))
    admin.add_view(OverdueView(name=_l("逾期督办"), endpoint="overdue", url="/admin/overdue"))
    admin.add_view(TasksView(name=_l("我的任务"), endpoint="tasks", url="/admin/tasks"))
    admin.add_view(ReportView(name=_l("月度分析"), endpoint="reports", url="/admin/reports"))
    admin.add_view(InboxView(name=_l("消息"), endpoint="inbox", url="/admin/inbox"))
    admin.add_view(ExportsView(name=_l("我的导出"), endpoint="exports", url="/admin/exports"))
    admin.add_view(CustomerView(Customer, name=_l("客户档案"), endpoint="customers"))
    admin.add_view(SurveyView(name=_l("调查列表"), category=_l("满意度调查"), endpoint="surveys",
                              url="/admin/surveys"))
    admin.add_view(KnowledgeView(KnowledgeEntry, name=_l("知识库"), endpoint="knowledge", url="/admin/knowledge"))
    init_knowledge(app)
    admin.add_view(CallerView(name=_l("来电弹屏"), endpoint="caller", url="/admin/caller"))
    admin.add_view(ProjectView(Project, name=_l("项目"), category=organisation, endpoint="projects"))
    admin.add_view(BuildingView(Building, name=_l("楼栋"), category=organisation, endpoint="buildings"))
    admin.add_view(UnitView(Unit, name=_l("户位"), category=organisation, endpoint="units"))
    admin.add_view(DepartmentView(Department, name=_l("部门"), category=organisation, endpoint="departments"))
    admin.add_view(UserView(User, name=_l("用户"), category=organisation, endpoint="users"))
    admin.add_view(RecordTypeView(RecordType, name=_l("记录类型"), category=settings, endpoint="record_types"))
    admin.add_view(RoleView(name=_l("角色权限"), category=settings, endpoint="roles", url="/admin/roles"))
    admin.add_view(CalendarDayView(CalendarDay, name=_l("工作日历"), category=settings, endpoint="calendar"))
    admin.add_view(ApiTokenView(ApiToken, name=_l("API 令牌"), category=settings, endpoint="api_tokens"))
    admin.add_view(NotificationSettingsView(name=_l("通知设置"), category=settings, endpoint="notify_settings",
                                            url="/admin/notify-settings"))
    admin.add_view(MessageTemplateView(MessageTemplate, name=_l("消息模板"), category=settings,
                                       endpoint="message_templates"))
    admin.add_view(DeliveryView(Delivery, name=_l("发送记录"), category=settings, endpoint="deliveries"))
    admin.add_view(ImportsView(name=_l("导入"), category=settings, endpoint="imports", url="/admin/imports"))
    admin.add_view(QueueView(name=_l("任务队列"), category=settings, endpoint="queue", url="/admin/queue"))
    admin.add_view(SchedulesView(name=_l("定时任务"), category=settings, endpoint="schedules", url="/admin/schedules"))
    admin.add_view(LoyaltyView(name=_l("会员等级"), category=settings, endpoint="loyalty", url="/admin/loyalty"))
    admin.add_view(SearchView(name=_l("搜索"), endpoint="search", url="/admin/search"))

    @app.context_processor
    def record_navigation():
        return {"main_menu": main_menu,
                "unread_notifications": lambda: unread_count(current_user.pk) if current_user.is_authenticated else 0}

    return admin
