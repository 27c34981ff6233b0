"""The admin speaks one language: every screen the demo admin opens, in Chinese and after switching to English
(through the user menu's real switch, ``auth.switch_locale``), shows no UI text of the other language, and no
literal ``None`` anywhere.

What a page shows is read from its HTML: the text of every element (outside scripts and styles) and the
attributes a person reads (title, placeholder, alt, aria-label, a confirmation's data-kefu-confirm, the caption of
a button input), plus what Flask-Admin's scripts render from JSON (the filters' names, operations and options, the
actions' confirmations). Form values (inputs, text areas) are what the user typed, so only the ``None`` rule reads
them.

User data is text the database holds: every string stored in any collection is data, in whichever language it
was written (a customer's name, a department, a holiday, a role named by the company, a status or choice of a
record type definition), except a text stored next to its English name (``name`` beside ``name_en``, ``label``
beside ``label_en``): in English that one must show the English name. A stored text matches a piece of the page
whole or split at separators (spaces, 、·：() …), never as an arbitrary substring.

The pages walked: every screen of the navigation bar and, for Flask-Admin's model screens, the create form, the
first row's details and edit form they link to; the custom pages (home, 逾期督办, tasks, reports, inbox, exports,
roles, notification settings, queue, working calendar) and the list, form and details of two record types.
Every page's failures are collected and reported together.
"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from seed.demo import DEMO_PASSWORD
from tests.browser_support import signed_in_page, skip_without_browser

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\u3000-\u303f\uff01-\uff5e]")
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z']+")
NONE = re.compile(r"\bNone\b")
# Where a page's text is cut into pieces that are matched against stored data.
SEPARATORS = re.compile(r"[\s·、，,：:;；/|()（）\[\]【】《》<>\"“”‘’'`→=+*#~!?！？。…—-]+")
# Latin words a Chinese screen may show: names of standards, formats and products, and units, not English UI text.
TECHNICAL_WORDS = frozenset("""
API SMTP SSL TLS STARTTLS SMS HTTP HTTPS URL URI JSON YAML CSV XLSX Excel PDF ID IP Jinja Webhook webhook Redis
MongoDB rq RQ KEFU kefu example com CNY MB KB GB ms UTC TS OK SLA CSRF XSS WeCom DingTalk Bearer Token token
""".split())
# Flask-Admin's and our English UI words; any of them on a Chinese screen means a string missed its translation.
ENGLISH_UI_WORDS = ("List", "Create", "Edit", "Details", "Save", "Cancel", "Delete", "Add Filter", "Apply", "Search",
                    "equals", "contains", "Actions", "Page", "Records", "Name", "Phone", "Created At", "items",
                    "with selected", "Save and Add Another", "Save and Continue Editing", "Reset Filters", "Export")
TEXT_ATTRIBUTES = ("title", "placeholder", "alt", "aria-label", "data-kefu-confirm", "data-placeholder")
BUTTON_INPUTS = ("submit", "button", "reset")
VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
SKIPPED = frozenset(("script", "style", "textarea"))
# The JSON Flask-Admin's scripts render into the page (filters, actions' confirmations, the "select one" message).
RENDERED_JSON = ("filter-groups-data", "actions-confirmation-data", "message-data")
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
IDENTIFIER = re.compile(r"[_.@{]")

# The custom pages; Flask-Admin's model screens are found from the navigation bar.
PAGES = ("/admin/", "/admin/overdue/", "/admin/overdue/due-soon/", "/admin/overdue/due-today/", "/admin/tasks/",
         "/admin/reports/monthly/", "/admin/inbox/", "/admin/exports/", "/admin/roles/", "/admin/roles/new/",
         "/admin/notify-settings/", "/admin/queue/", "/admin/calendar/range/")
RECORD_TYPES = ("complaint", "repair")
# A model screen's links worth following from its list: the create form, the first row's details and edit form,
# a role's editor.
FOLLOWED = re.compile(r"^(new/|details/\?id=|edit/\?id=|edit/\?key=)")


class PageText(HTMLParser):
    """What a person reads on a page in ``language`` ("zh" or "en"): ``texts`` (element text and readable
    attributes) and ``values`` (form values and text marked as user data, for the ``None`` rule only); ``links``
    every href.

    Not UI text: an element marked ``data-user-data`` (and what it holds), and one whose ``lang`` attribute names
    another language (the language menu's 中文 / English)."""

    def __init__(self, language: str = "zh"):
        super().__init__(convert_charrefs=True)
        self.language = language
        self.texts: list[str] = []
        self.values: list[str] = []
        self.links: list[str] = []
        self._open: list[tuple[str, bool]] = []  # (tag, whether its text is UI text of the page's language)
        self._json_id: str | None = None
        self._json: list[str] = []

    def _ui_text(self) -> bool:
        return not self._open or self._open[-1][1]

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        lang = (attributes.get("lang") or self.language)[:2].lower()
        ui = self._ui_text() and "data-user-data" not in attributes and lang == self.language
        if attributes.get("href"):
            self.links.append(attributes["href"])
        for name in TEXT_ATTRIBUTES:
            if attributes.get(name):
                (self.texts if ui else self.values).append(attributes[name])
        if tag == "input" and attributes.get("value"):
            kind = (attributes.get("type") or "text").lower()
            (self.texts if kind in BUTTON_INPUTS and ui else self.values).append(attributes["value"])
        if attributes.get("id") in RENDERED_JSON:
            self._json_id = attributes["id"]
        if tag not in VOID:
            self._open.append((tag, ui and tag not in SKIPPED))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self._open.pop()

    def handle_endtag(self, tag):
        if any(open_tag == tag for open_tag, _ui in self._open):
            while self._open.pop()[0] != tag:
                pass
        if self._json_id and tag == "div":
            self._rendered_json(json.loads("".join(self._json)))
            self._json_id, self._json = None, []

    def handle_data(self, data):
        if self._json_id:
            self._json.append(data)
        elif not data.strip() or (self._open and self._open[-1][0] in ("script", "style")):
            return
        elif self._ui_text():
            self.texts.append(data)
        else:
            self.values.append(data)

    def _rendered_json(self, data) -> None:
        if self._json_id == "filter-groups-data":
            for name, operations in data.items():
                self.texts.append(name)
                for operation in operations:
                    self.texts.append(operation["operation"])
                    for value, label in operation.get("options") or ():
                        if not OBJECT_ID.match(str(value)):  # a document's name (user data) when its id is the value
                            self.texts.append(label)
        elif isinstance(data, dict):
            self.texts.extend(str(message) for message in data.values())
        elif data:
            self.texts.append(str(data))


def read_page(html: str, language: str = "zh") -> PageText:
    page = PageText(language)
    page.feed(html)
    page.close()
    return page


# --- user data: what the database holds -----------------------------------------------------------------------

def stored_texts(app, db) -> frozenset[str]:
    """Every string the database holds that is user data (see the module docstring), whole and cut at separators;
    customers' personal data as the model decrypts it."""
    from kefu.org.customers import PERSONAL_FIELDS, Customer

    found: set[str] = set()

    def walk(value, english_beside: bool = False):
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str):
                    found.add(key)
                walk(item, isinstance(key, str) and f"{key}_en" in value)
        elif isinstance(value, list):
            for item in value:
                walk(item, english_beside)
        elif isinstance(value, str) and not english_beside:
            found.add(value.strip())
            found.update(piece for piece in SEPARATORS.split(value) if piece)

    for name in db.list_collection_names():
        if not name.startswith("system."):
            for document in db[name].find():
                walk(document)
    with app.app_context():
        for customer in Customer.objects:
            walk({name: getattr(customer, name) for name in PERSONAL_FIELDS})
    return frozenset(found)


def foreign_pieces(text: str, stored: frozenset[str], foreign) -> list[str]:
    """The pieces of ``text`` that ``foreign`` (a compiled pattern) finds and that are not stored data."""
    if not foreign.search(text) or text.strip() in stored:
        return []
    return [piece for piece in SEPARATORS.split(text) if piece and foreign.search(piece) and piece not in stored]


def english_pieces(text: str, stored: frozenset[str]) -> list[str]:
    """English UI words of ``text`` on a Chinese screen: one of ``ENGLISH_UI_WORDS``, or a capitalised Latin word
    (Flask-Admin's labels, attribute names it prettifies: "Created At") that is neither stored data nor a technical
    name (``TECHNICAL_WORDS``). Lower-case words, and pieces with ``_ . @ {`` (KEFU_SMTP_HOST, README.md, an
    address, a template placeholder), are identifiers a Chinese text may cite."""
    if text.strip() in stored:
        return []
    found = [phrase for phrase in ENGLISH_UI_WORDS if re.search(rf"(?<![\w.]){re.escape(phrase)}(?![\w.])", text)]
    for piece in SEPARATORS.split(text):
        if piece and piece not in stored and not IDENTIFIER.search(piece):
            found.extend(word for word in LATIN_WORD.findall(piece)
                         if word[0].isupper() and word not in TECHNICAL_WORDS and word not in stored)
    return sorted(set(found))


def page_failures(html: str, stored: frozenset[str], language: str) -> list[str]:
    page = read_page(html, language)
    failures = [f"literal None: {text.strip()[:120]!r}" for text in page.texts + page.values if NONE.search(text)]
    for text in page.texts:
        if language == "en":
            pieces = foreign_pieces(text, stored, CJK)
        else:
            pieces = english_pieces(text, stored)
        if pieces:
            failures.append(f"{', '.join(pieces)}  in {' '.join(text.split())[:120]!r}")
    return sorted(set(failures))


# --- the walk ------------------------------------------------------------------------------------------------------

def model_screens(app) -> list[str]:
    """The list URL of every Flask-Admin model screen (records are walked per type)."""
    from flask_admin.model import BaseModelView

    from admin_views.records import RecordView

    admin = app.extensions["admin"][0]
    return [view.url.rstrip("/") + "/" for view in admin._views
            if isinstance(view, BaseModelView) and not isinstance(view, RecordView)]


def followed_links(path: str, page: PageText) -> list[str]:
    """The first link of each kind ``FOLLOWED`` names, below ``path``."""
    kinds, found = set(), []
    for href in page.links:
        url = urlsplit(urljoin(path, href))
        rest = url.path[len(path):] + (f"?{url.query}" if url.query else "") if url.path.startswith(path) else ""
        match = FOLLOWED.match(rest)
        if match and match.group(1) not in kinds:
            kinds.add(match.group(1))
            found.append(f"{url.path}?{url.query}" if url.query else url.path)
    return found


def walk(client, app, stored, language: str) -> tuple[dict[str, list[str]], list[str]]:
    """``({page: failures}, pages walked)`` for the signed-in client's language."""
    failures: dict[str, list[str]] = {}
    walked: list[str] = []

    def visit(path: str) -> PageText | None:
        response = client.get(path)
        walked.append(path)
        if response.status_code != 200:
            failures[path] = [f"HTTP {response.status_code}"]
            return None
        html = response.get_data(as_text=True)
        found = page_failures(html, stored, language)
        if found:
            failures[path] = found
        return read_page(html, language)

    for path in (*PAGES, *model_screens(app), *(f"/admin/records/{key}/" for key in RECORD_TYPES)):
        page = visit(path)
        for link in followed_links(path, page) if page else ():
            visit(link)
    return failures, walked


def report(failures: dict[str, list[str]], language: str) -> str:
    lines = [f"{sum(map(len, failures.values()))} problem(s) on {len(failures)} page(s) in {language}:"]
    for path, found in failures.items():
        lines.append(f"  {path}")
        lines.extend(f"    {failure}" for failure in found)
    return "\n".join(lines)


@pytest.fixture
def admin_client(app, client, seeded, calendar, sign_in, db, monkeypatch):
    """The demo admin signed in, with the data the screens list: some of the demo records (open, overdue, closed,
    with callbacks), an API token, a failed delivery."""
    from kefu.notify.notifications import Delivery
    from kefu.org import tokens
    from kefu.org.users import User
    from seed import records

    for count in ("COMPLAINTS", "CONSULTATIONS", "REPAIRS"):
        monkeypatch.setattr(records, count, 6)
    sign_in("admin", DEMO_PASSWORD)
    with app.app_context():
        assert records.seed_demo_records() > 18
        admin = User.objects(username="admin").first()
        tokens.issue_token(admin.pk, name="integration")
        Delivery(key="test-delivery", channel="email", target="ops@example.com", kind="overdue", record_number="TS-202612-0001",
                 subject="TS-202612-0001", status="failed", attempts=3, error="timed out").save()
    return client


@pytest.mark.parametrize("language", ["zh_Hans_CN", "en"])
def test_every_admin_screen_speaks_one_language(app, admin_client, db, language):
    client = admin_client
    if language != "zh_Hans_CN":
        response = client.get(f"/locale/{language}?next=/admin/")
        assert response.status_code == 302
        assert db.users.find_one({"username": "admin"})["locale"] == language
        assert "Customer Service Management" in client.get("/admin/").get_data(as_text=True)
    stored = stored_texts(app, db)
    failures, walked = walk(client, app, stored, "en" if language == "en" else "zh")
    assert len(walked) > 40, walked
    assert not failures, report(failures, language)


# --- Flask-Admin's date picker, in a browser ------------------------------------------------------------------------

@pytest.fixture
def browser_context(app, seeded, request):
    """``new_context`` of the browser journeys; this test alone is skipped where the browser is missing (the page
    walk above needs none)."""
    skip_without_browser()
    return request.getfixturevalue("new_context")


def test_date_picker_speaks_the_users_language(browser_context, problems, tmp_path):
    """Flask-Admin's datetime fields open bootstrap-daterangepicker, whose words (buttons, weekdays, months) are
    English in the script: in Chinese by default, in English after the user menu's switch."""
    page = signed_in_page(browser_context, "admin")
    for language, apply, cancel, weekday, month in (("zh", "确定", "取消", "一", "1月"),
                                                    ("en", "Apply", "Cancel", "Mo", "Jan")):
        if language == "en":
            page.click("#kefu-user-menu")
            page.click("#kefu-user-menu ~ .dropdown-menu a[lang=en]")
            page.wait_for_url("**/admin/projects/new/**")
        else:
            page.goto("/admin/projects/new/")
        assert page.evaluate("document.documentElement.lang") == ("en" if language == "en" else "zh-CN")
        page.click("#handover_date")
        picker = page.locator(".daterangepicker:visible")
        picker.wait_for()
        assert picker.locator(".applyBtn").inner_text().strip() == apply
        assert picker.locator(".cancelBtn").inner_text().strip() == cancel
        assert weekday in picker.locator(".calendar th").all_inner_texts()
        assert month in picker.locator(".monthselect option").all_inner_texts()
        page.screenshot(path=tmp_path / f"date-picker-{language}.png")
        page.keyboard.press("Escape")
    problems.assert_none()
