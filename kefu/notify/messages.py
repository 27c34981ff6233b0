"""Message templates (消息模板): the text of every reminder, task and care message, editable in the admin.

Each kind of message has one template: a subject (title) and a body, written in
Jinja and rendered in a sandbox (``jinja2.sandbox.SandboxedEnvironment``): a
template can read the values it is given, never call into the application.
Shipped defaults are created on first start (``ensure_templates``) and never
overwrite an admin's edits. A template that does not compile, or that fails on
the sample values of its kind, is refused on save with the line and the reason.

What each kind is given (``KINDS[kind].variables``):

- record reminders (``due_soon``, ``overdue``, ``ladder``, ``callback_due``, ``follow_up``, ``clock_started`` —
  a clock with ``notify_at_start`` has started, ``due_at`` its deadline): ``number``,
  ``type_name``, ``status``, ``level``, ``clock`` (the deadline's name), ``due_at`` (local time), ``late``
  (how late, e.g. ``3 天 4 小时``), ``step`` (the follow-up's working day), ``assignee``, ``department``, ``url``
  and ``record`` — the record's fields by key, as text (sensitive fields masked: messages leave the system);
- care messages: ``customer``, ``project``, ``handover_date``, ``days``, ``holiday``;
- summaries (``weekly_summary``, ``monthly_report``, and the record lists of the packs' list duties,
  ``kefu.schedule.routines.record_list``: ``callback_analysis`` 周回访情况分析, ``pre_acceptance_list`` 预验收工程名录):
  ``title``, ``lines`` (a list of text lines), ``period``, ``url``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from flask import current_app
from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from mongoengine import DateTimeField, Document, NotUniqueError, StringField, ValidationError

from kefu.core.clock import utcnow
from kefu.core.errors import ValidationFailed
from kefu.core.i18n import _l
from kefu.org.access import MASKED_SYSTEM_POLICY
from kefu.records.actor import Actor
from kefu.records.fields import get_field_type
from kefu.records.values import read_values

MAX_SUBJECT = 200
MAX_BODY = 4000

RECORD_VARIABLES = ("number", "type_name", "status", "level", "clock", "due_at", "late", "step", "assignee",
                    "department", "url", "record")
SUMMARY_VARIABLES = ("title", "lines", "period", "url")


@dataclass(frozen=True)
class Kind:
    label: object
    subject: str
    body: str
    variables: tuple[str, ...]


KINDS: dict[str, Kind] = {
    "due_soon": Kind(_l("即将到期提醒"), "【即将到期】{{ type_name }} {{ number }}：{{ clock }}",
                     "{{ type_name }} {{ number }} 的“{{ clock }}”将于 {{ due_at }} 到期，请及时处理。\n"
                     "状态：{{ status }}{% if level %}；等级：{{ level }}{% endif %}；负责人：{{ assignee or '未分配' }}\n"
                     "{{ url }}", RECORD_VARIABLES),
    "overdue": Kind(_l("逾期提醒"), "【已逾期】{{ type_name }} {{ number }}：{{ clock }}",
                    "{{ type_name }} {{ number }} 的“{{ clock }}”已于 {{ due_at }} 到期，现已逾期 {{ late }}。\n"
                    "状态：{{ status }}{% if level %}；等级：{{ level }}{% endif %}；负责人：{{ assignee or '未分配' }}；"
                    "部门：{{ department or '-' }}\n{{ url }}", RECORD_VARIABLES),
    "ladder": Kind(_l("逾期跟进提醒"), "【逾期跟进·第 {{ step }} 个工作日】{{ type_name }} {{ number }}：{{ clock }}",
                   "{{ type_name }} {{ number }} 的“{{ clock }}”已逾期 {{ late }}（{{ due_at }} 到期），仍未完成。\n"
                   "负责人：{{ assignee or '未分配' }}；部门：{{ department or '-' }}\n{{ url }}", RECORD_VARIABLES),
    "follow_up": Kind(_l("今日跟进任务"), "【今日跟进】{{ type_name }} {{ number }}",
                      "{{ type_name }} {{ number }} 已受理超过 {{ step }} 个工作日仍未关闭，请今天向客户通报处理进展，"
                      "并在时间线记录沟通情况。\n{{ url }}", RECORD_VARIABLES),
    "callback_due": Kind(_l("今日回访提醒"), "【今日回访】{{ type_name }} {{ number }}",
                         "回访 {{ number }} 今天到期（{{ due_at }}），请致电客户并记录回访结果。\n{{ url }}",
                         RECORD_VARIABLES),
    "clock_started": Kind(_l("开始计时提醒"), "【开始计时】{{ type_name }} {{ number }}：{{ clock }}",
                          "{{ type_name }} {{ number }} 的“{{ clock }}”已开始计时，{{ due_at }} 截止，请立即跟进。\n"
                          "状态：{{ status or '-' }}{% if level %}；等级：{{ level }}{% endif %}；"
                          "负责人：{{ assignee or '未分配' }}\n{{ url }}", RECORD_VARIABLES),
    "care_handover": Kind(_l("交付关怀"), "{{ project }} 交付提醒",
                          "尊敬的{{ customer }}：您好！您购买的{{ project }}将于 {{ handover_date }} 交付，距今还有 {{ days }} "
                          "天。届时请携带相关证件办理收房手续，如有疑问欢迎致电客服中心。",
                          ("customer", "project", "handover_date", "days")),
    "care_holiday": Kind(_l("节日问候"), "{{ holiday }}问候",
                         "尊敬的{{ customer }}：{{ holiday }}将至，客服中心全体员工祝您和家人节日快乐、万事如意！",
                         ("customer", "project", "holiday")),
    "weekly_summary": Kind(_l("每周汇总"), "{{ title }}", "{{ period }}\n{% for line in lines %}{{ line }}\n{% endfor %}"
                           "{{ url }}", SUMMARY_VARIABLES),
    "monthly_report": Kind(_l("月度报告"), "{{ title }}", "{{ period }}\n{% for line in lines %}{{ line }}\n{% endfor %}"
                           "{{ url }}", SUMMARY_VARIABLES),
    # 002 在施工程电话回访制度 五: the week's callbacks, analysed and handed to the department manager on Tuesdays.
    "callback_analysis": Kind(_l("周回访情况分析"), "{{ title }}",
                              "{{ period }} 的回访共 {{ lines | length }} 条，请分析后填写《周回访情况分析表》交部门经理：\n"
                              "{% for line in lines %}{{ line }}\n{% endfor %}{{ url }}", SUMMARY_VARIABLES),
    # 002 工程预验收流程: 工程部 lists next week's jobs on Wednesdays, 客服监察部 inspects them on Thursdays.
    "pre_acceptance_list": Kind(_l("预验收工程名录"), "{{ title }}",
                                "{{ period }} 预验收工程共 {{ lines | length }} 项，请按名录安排预验收：\n"
                                "{% for line in lines %}{{ line }}\n{% endfor %}{{ url }}", SUMMARY_VARIABLES),
    # 001 §二3: customers' needs are reviewed periodically; the open needs not reviewed for a month, on Mondays.
    "need_review": Kind(_l("需求定期回访"), "{{ title }}",
                        "{{ period }} 需定期回访的客户需求共 {{ lines | length }} 条，请逐一回访并更新回访时间：\n"
                        "{% for line in lines %}{{ line }}\n{% endfor %}{{ url }}", SUMMARY_VARIABLES),
    # 000 §五, 004 满意度调查: consumers every May, merchants every quarter; the plan is approved 20 days ahead.
    "survey_reminder": Kind(_l("满意度调查提醒"), "请开展{{ title }}满意度调查（{{ period }}）",
                            "按制度本月应开展{{ title }}满意度调查：调查计划须在调查开始前 20 天报批，问卷回收率不低于 70%。\n"
                            "{{ url }}", SUMMARY_VARIABLES),
}

SAMPLE_VALUES = {
    "number": "TS-202612-0001", "type_name": "投诉", "status": "处理中", "level": "重要", "clock": "处理完成",
    "due_at": "2026-12-03 18:00", "late": "1 天 2 小时", "step": 2, "assignee": "林晓雯", "department": "客服中心",
    "url": "http://127.0.0.1:5000/admin/records/complaint/details/?id=0", "record": {"content": "卫生间漏水"},
    "customer": "张先生", "project": "云栖·江南府", "handover_date": "2026-12-31", "days": 30, "holiday": "元旦",
    "title": "客服周报", "lines": ["新增 12 条", "关闭 9 条"], "period": "2026-11-25 至 2026-12-01",
}


class MessageTemplate(Document):
    """One kind's subject and body (Jinja, sandboxed)."""

    kind = StringField(required=True, unique=True, choices=list(KINDS), verbose_name=_l("消息类型"))
    subject = StringField(required=True, max_length=MAX_SUBJECT, verbose_name=_l("标题模板"))
    body = StringField(required=True, max_length=MAX_BODY, verbose_name=_l("正文模板"))
    updated_at = DateTimeField(default=utcnow, verbose_name=_l("更新时间"))
    updated_by = StringField(verbose_name=_l("更新人"))

    meta = {"collection": "message_templates", "ordering": ["kind"]}

    def clean(self) -> None:
        problems = template_problems(self.kind, self.subject, self.body)
        if problems:
            raise ValidationError("；".join(problems.values()), errors=problems)
        self.updated_at = utcnow()

    def __str__(self) -> str:
        return str(KINDS[self.kind].label) if self.kind in KINDS else self.kind


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    # autoescape off: the messages are plain text (email text/plain, robot text), never HTML.
    return SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=256)
def _compiled(source: str):
    return _environment().from_string(source)


def template_problems(kind: str, subject, body) -> dict[str, str]:
    """``{part: message}`` for a template that does not compile or fails on its kind's sample values."""
    if kind not in KINDS:
        return {"kind": str(_l("消息类型须为：%(kinds)s", kinds="、".join(KINDS)))}
    problems = {}
    for part, source, limit in (("subject", subject, MAX_SUBJECT), ("body", body, MAX_BODY)):
        if not isinstance(source, str) or not source.strip():
            problems[part] = str(_l("请填写模板内容"))
            continue
        if len(source) > limit:
            problems[part] = str(_l("模板最多 %(n)s 个字", n=limit))
            continue
        try:
            _compiled(source).render(SAMPLE_VALUES)
        except TemplateSyntaxError as exc:
            problems[part] = str(_l("模板第 %(line)s 行有语法错误：%(message)s", line=exc.lineno, message=exc.message))
        except (SecurityError, UndefinedError, TypeError, ValueError, ArithmeticError) as exc:
            problems[part] = str(_l("模板不能用示例数据生成：%(message)s", message=str(exc)))
    return problems


def ensure_templates() -> int:
    """Create the shipped template of every kind that has none yet; return how many were created."""
    existing = set(MessageTemplate.objects.distinct("kind"))
    created = 0
    for kind, shipped in KINDS.items():
        if kind in existing:
            continue
        try:
            MessageTemplate(kind=kind, subject=shipped.subject, body=shipped.body, updated_by="system").save()
            created += 1
        except Exception as exc:  # another process created it at the same moment
            if not isinstance(exc, NotUniqueError):
                raise
    return created


class Renderer:
    """Renders messages with the stored templates, read once per instance (one sweep, one job)."""

    def __init__(self):
        stored = {t["kind"]: t for t in MessageTemplate.objects.as_pymongo()}
        self.sources = {kind: (stored.get(kind) or {"subject": k.subject, "body": k.body}) for kind, k in KINDS.items()}

    def render(self, kind: str, values: dict) -> tuple[str, str]:
        """``(subject, body)``; a template that fails on real values falls back to the shipped one."""
        source = self.sources[kind]
        try:
            return (_compiled(source["subject"]).render(values).strip(),
                    _compiled(source["body"]).render(values).strip())
        except Exception:  # an admin's template met values its sample did not have: never lose the message
            shipped = KINDS[kind]
            return _compiled(shipped.subject).render(values).strip(), _compiled(shipped.body).render(values).strip()


def save_template(kind: str, subject: str, body: str, *, by: str | None = None) -> MessageTemplate:
    """Change the template of ``kind``; ``ValidationFailed`` naming the part at fault."""
    problems = template_problems(kind, subject, body)
    if problems:
        raise ValidationFailed("；".join(problems.values()), problems)
    template = MessageTemplate.objects(kind=kind).first() or MessageTemplate(kind=kind)
    template.subject, template.body, template.updated_by = subject, body, by
    template.save()
    return template


def record_values(record_type, documents: list[dict], tz) -> dict:
    """``{record id: {field key: text}}`` for message templates: every configured field shown as text,
    references named (one query per reference kind for all ``documents``), sensitive values masked."""
    actor = Actor(user=None, tz=tz, cipher=current_app.extensions["kefu_cipher"], access=MASKED_SYSTEM_POLICY)
    values = {document["_id"]: read_values(record_type, document, actor) for document in documents}
    labels = {}
    for definition in record_type.specs:
        field_type = get_field_type(definition.type)
        if hasattr(field_type, "labels") and not definition.sensitive:
            labels[definition.key] = field_type.labels(v.get(definition.key) for v in values.values())
    shown = {}
    for record_id, record in values.items():
        texts = {}
        for definition in record_type.specs:
            value = record.get(definition.key)
            if value in (None, "", []):
                continue
            field_type = get_field_type(definition.type)
            if definition.sensitive:
                texts[definition.key] = field_type.mask(value)
            elif definition.key in labels:
                texts[definition.key] = labels[definition.key].get(value, "")
            else:
                texts[definition.key] = field_type.display(value, tz)
        shown[record_id] = texts
    return shown
