"""The handbook audit (docs/handbook-audit.md) names only things that exist, and its summary adds up.

The audit has one table per handbook (000 … 004) with the columns ``# · rule · source clause · where it lives ·
test · status``. This module reads the tables as text — it imports no test module and no application code — and
checks, for every row:

- the source clause cites the table's handbook (a row of the 002 table starts ``002 …``);
- the status is ``running``, ``partial: <why>``, ``not built: <why>`` or ``in progress …``;
- every test it names exists: ``tests/<file>.py::<function>`` (or ``::<Class>::<method>``), found by parsing the
  file with ``ast``; a ``running`` row names at least one such test; an ``in progress`` row names at least the
  test file the work will land in, which may not exist yet (its functions are filled in when it lands);
- every place it names exists (rows in progress excepted: they name where the work will land):
  a backticked repository path (``schemas/…yaml``, ``kefu/…py`` …); after a schema file, a section word
  (``sla``, ``levels``, ``fields`` …) followed by backticked names, each of which must occur in that section of the
  YAML (a field key for ``fields``; otherwise any key or text value inside the section, e.g. an sla entry's key, a
  level rule's field, an approver title, a status); after ``定时任务``, backticked duty names declared as
  ``Duty("<name>", …)`` under ``kefu/``;
- the summary table at the top counts the rows of each handbook per status.

The last tests feed the checker a small audit with wrong names, to show it fails on each kind.
"""
from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "handbook-audit.md"
HANDBOOKS = ("000", "001", "002", "003", "004")
STATUSES = ("running", "partial", "not built", "in progress")
COLUMNS = 6  # # · rule · source clause · where it lives · test · status
SECTION_WORDS = {"sla", "spawn", "computed", "levels", "approvals", "callback", "reminders", "report", "workflow",
                 "fields", "routing"}
DUTY_WORD = "定时任务"
PATH_PATTERN = re.compile(r"^(schemas|kefu|templates|static|web|admin_views|jobs|seed|docs|bench)/\S*$")
TEST_PATTERN = re.compile(r"^(tests/[\w/]+\.py)(?:::([\w:]+))?$")
TOKEN_PATTERN = re.compile(r"`([^`]+)`|([^\s`,;，；、()（）]+)")
DUTY_PATTERN = re.compile(r"""Duty\(\s*["']([a-z_][a-z0-9_]*)["']""")


# --- reading the document ----------------------------------------------------------------------------------------

def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def is_separator(line: str) -> bool:
    return bool(re.fullmatch(r"\|?[\s:|-]+\|?", line.strip()))


def audit_rows(text: str) -> list[tuple[str, int, list[str]]]:
    """(handbook, line number, cells) of every data row of the handbook tables: the tables under a heading whose
    title starts with a handbook number (``## 003 杭州龙湖…``)."""
    rows, handbook = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        heading = re.match(r"^#{2,3}\s+(\d{3})\b", line)
        if line.startswith("#"):
            handbook = heading.group(1) if heading and heading.group(1) in HANDBOOKS else None
            continue
        if handbook is None or not line.lstrip().startswith("|") or is_separator(line):
            continue
        row = cells(line)
        if row[0] == "#":  # the header row
            continue
        rows.append((handbook, number, row))
    return rows


def status_of(cell: str) -> str | None:
    lowered = cell.strip().lower()
    for status in STATUSES:
        if lowered.startswith(status):
            return status
    return None


def summary_counts(text: str) -> dict[str, dict[str, int]]:
    """The summary table (under ``## Summary``): handbook → status → count, with ``total``."""
    counts, inside, header = {}, False, None
    for line in text.splitlines():
        if line.startswith("#"):
            inside = line.lstrip("#").strip().lower().startswith("summary")
            continue
        if not inside or not line.lstrip().startswith("|") or is_separator(line):
            continue
        row = cells(line)
        if header is None:
            header = [cell.lower() for cell in row]
            continue
        counts[row[0].strip("* ")] = {name: int(value.strip("* ")) for name, value in zip(header[1:], row[1:])}
    return counts


def counted(rows) -> dict[str, dict[str, int]]:
    """What the summary should say: per handbook and ``all``, per status and ``total``."""
    result = {key: {**{status: 0 for status in STATUSES}, "total": 0} for key in (*HANDBOOKS, "all")}
    for handbook, _line, row in rows:
        status = status_of(row[5]) if len(row) == COLUMNS else None
        for key in (handbook, "all"):
            result[key]["total"] += 1
            if status:
                result[key][status] += 1
    return result


# --- what exists -------------------------------------------------------------------------------------------------

@cache
def defined_tests(path: str) -> frozenset[str] | None:
    """The test functions of ``path`` (``name`` and ``Class::method``), parsed, not imported; None: no file."""
    file = ROOT / path
    if not file.is_file():
        return None
    names = set()
    for node in ast.parse(file.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(f"{node.name}::{item.name}" for item in node.body
                         if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return frozenset(names)


@cache
def schema(path: str) -> dict | None:
    file = ROOT / path
    return yaml.safe_load(file.read_text(encoding="utf-8")) if file.is_file() else None


@cache
def duty_names() -> frozenset[str]:
    return frozenset(name for file in (ROOT / "kefu").rglob("*.py")
                     for name in DUTY_PATTERN.findall(file.read_text(encoding="utf-8")))


def words_in(value) -> set[str]:
    """Every key and text value inside ``value`` (a YAML section), at any depth."""
    if isinstance(value, dict):
        return {str(key) for key in value} | set().union(*(words_in(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(words_in(item) for item in value)) if value else set()
    return {str(value)} if value is not None else set()


def section_names(definition: dict, section: str) -> set[str]:
    if section == "fields":
        return {field["key"] for field in definition.get("fields") or []}
    return words_in(definition[section]) if section in definition else set()


# --- checking ----------------------------------------------------------------------------------------------------

def check_tests(cell: str, status: str | None, where: str) -> list[str]:
    problems, runnable, files = [], 0, 0
    for match in re.finditer(r"`([^`]+)`", cell):
        found = TEST_PATTERN.match(match.group(1))
        if not found:
            continue
        path, name = found.groups()
        files += 1
        names = defined_tests(path)
        if names is None:
            if status != "in progress":
                problems.append(f"{where}: no test file {path}")
            continue
        if name is None:
            continue
        if name not in names:
            problems.append(f"{where}: {path} has no test {name}")
        else:
            runnable += 1
    if status == "running" and not runnable:
        problems.append(f"{where}: a running rule names no existing test (tests/…py::test_…)")
    if status == "in progress" and not files:
        problems.append(f"{where}: a rule in progress names the test file it will be in")
    return problems


def check_place(cell: str, where: str) -> list[str]:
    """The paths, schema sections and duties ``cell`` names (see the module docstring)."""
    problems, definition, file, section = [], None, None, None
    for match in TOKEN_PATTERN.finditer(cell):
        quoted, word = match.groups()
        if word is not None:
            if word in SECTION_WORDS or word == DUTY_WORD:
                section = word
            continue
        if PATH_PATTERN.match(quoted):
            if not (ROOT / quoted).exists():
                problems.append(f"{where}: no such path {quoted}")
            file, definition, section = quoted, None, None
            if quoted.endswith(".yaml"):
                definition = schema(quoted)
            continue
        if section == DUTY_WORD:
            if quoted not in duty_names():
                problems.append(f"{where}: no duty {quoted} (Duty(\"…\") under kefu/)")
        elif definition is not None and section is not None:
            if quoted not in section_names(definition, section):
                problems.append(f"{where}: {file} has no {quoted!r} in its {section} section")
        elif quoted.endswith(".yaml") or "/" in quoted:
            problems.append(f"{where}: {quoted} is not a known place (a repository path?)")
    return problems


def problems_of(text: str) -> list[str]:
    """Everything wrong with the audit ``text`` (empty: all good)."""
    rows = audit_rows(text)
    problems = [] if rows else ["no handbook table rows found"]
    for handbook, line, row in rows:
        where = f"line {line} ({handbook} #{row[0]})"
        if len(row) != COLUMNS:
            problems.append(f"{where}: {len(row)} columns, expected {COLUMNS}")
            continue
        _number, rule, source, place, tests, status_cell = row
        status = status_of(status_cell)
        if not rule:
            problems.append(f"{where}: no rule")
        if not source.startswith(handbook):
            problems.append(f"{where}: the source clause {source!r} does not cite {handbook}")
        if status is None:
            problems.append(f"{where}: status {status_cell!r} is none of {', '.join(STATUSES)}")
        elif status in ("partial", "not built") and not re.match(rf"{status}\s*[:：]\s*\S", status_cell, re.I):
            problems.append(f"{where}: “{status}” needs its reason (“{status}: why”)")
        problems += check_tests(tests, status, where)
        if status != "in progress":
            problems += check_place(place, where)
    expected = counted(rows)
    stated = summary_counts(text)
    for key, numbers in expected.items():
        if stated.get(key) != numbers:
            problems.append(f"summary row {key}: says {stated.get(key)}, the tables give {numbers}")
    return problems


# --- the audit -----------------------------------------------------------------------------------------------------

def test_every_name_in_the_audit_exists_and_the_summary_adds_up():
    problems = problems_of(DOC.read_text(encoding="utf-8"))
    assert problems == [], "\n".join(problems)


def test_every_handbook_has_a_table():
    handbooks = {handbook for handbook, _line, _row in audit_rows(DOC.read_text(encoding="utf-8"))}
    assert handbooks == set(HANDBOOKS)


# --- the checker fails on wrong names --------------------------------------------------------------------------------

SUMMARY_ONE_RUNNING = """## Summary

| handbook | running | partial | not built | in progress | total |
|---|---|---|---|---|---|
| 000 | 1 | 0 | 0 | 0 | 1 |
| 001 | 0 | 0 | 0 | 0 | 0 |
| 002 | 0 | 0 | 0 | 0 | 0 |
| 003 | 0 | 0 | 0 | 0 | 0 |
| 004 | 0 | 0 | 0 | 0 | 0 |
| all | 1 | 0 | 0 | 0 | 1 |

## 000 房开客服管理办法

| # | rule | source clause | where it lives | test | status |
|---|---|---|---|---|---|
"""
GOOD_ROW = ("| 1 | 建议限期反馈 | 000 §三(三)3 | `schemas/developer/suggestion.yaml` sla `department_result` | "
            "`tests/test_pack_developer.py::test_000_3_3_3_suggestion_answered_by_the_deadline_set_when_forwarding` "
            "| running |\n")


def test_a_sound_row_passes():
    assert problems_of(SUMMARY_ONE_RUNNING + GOOD_ROW) == []


def test_a_wrong_test_function_fails():
    text = SUMMARY_ONE_RUNNING + GOOD_ROW.replace("test_000_3_3_3_suggestion", "test_000_3_3_3_suggestions")
    problems = problems_of(text)
    assert any("has no test test_000_3_3_3_suggestions" in p for p in problems), problems


def test_a_wrong_test_file_fails():
    problems = problems_of(SUMMARY_ONE_RUNNING + GOOD_ROW.replace("test_pack_developer", "test_pack_develop"))
    assert any("no test file tests/test_pack_develop.py" in p for p in problems), problems


def test_a_wrong_schema_file_section_key_or_field_fails():
    for wrong, expected in [
        ("`schemas/developer/suggestions.yaml` sla `department_result`", "no such path schemas/developer/suggestions"),
        ("`schemas/developer/suggestion.yaml` sla `department_results`", "no 'department_results' in its sla"),
        ("`schemas/developer/suggestion.yaml` fields `deadlines`", "no 'deadlines' in its fields"),
        ("`schemas/developer/suggestion.yaml` levels `deadline`", "no 'deadline' in its levels"),
    ]:
        text = SUMMARY_ONE_RUNNING + GOOD_ROW.replace(
            "`schemas/developer/suggestion.yaml` sla `department_result`", wrong)
        problems = problems_of(text)
        assert any(expected in p for p in problems), (wrong, problems)


def test_a_wrong_duty_or_code_path_fails():
    for wrong, expected in [("定时任务 `monthly_reports`", "no duty monthly_reports"),
                            ("`kefu/rules/slas.py`", "no such path kefu/rules/slas.py")]:
        text = SUMMARY_ONE_RUNNING + GOOD_ROW.replace(
            "`schemas/developer/suggestion.yaml` sla `department_result`", wrong)
        assert any(expected in p for p in problems_of(text)), wrong


def test_a_wrong_status_a_missing_reason_or_a_wrong_summary_fails():
    assert any("is none of" in p for p in problems_of(SUMMARY_ONE_RUNNING + GOOD_ROW.replace("running", "done")))
    no_reason = SUMMARY_ONE_RUNNING.replace("| 000 | 1 | 0 |", "| 000 | 0 | 1 |").replace(
        "| all | 1 | 0 |", "| all | 0 | 1 |") + GOOD_ROW.replace("| running |", "| partial |")
    assert any("needs its reason" in p for p in problems_of(no_reason))
    wrong_sum = SUMMARY_ONE_RUNNING.replace("| all | 1 | 0 | 0 | 0 | 1 |", "| all | 2 | 0 | 0 | 0 | 2 |")
    assert any("summary row all" in p for p in problems_of(wrong_sum + GOOD_ROW))


def test_a_row_in_progress_may_name_a_test_file_still_to_come_but_a_running_one_may_not():
    planned = GOOD_ROW.replace(
        "`tests/test_pack_developer.py::test_000_3_3_3_suggestion_answered_by_the_deadline_set_when_forwarding`",
        "`tests/test_pack_not_yet.py`")
    in_progress = SUMMARY_ONE_RUNNING.replace("| 000 | 1 | 0 | 0 | 0 |", "| 000 | 0 | 0 | 0 | 1 |").replace(
        "| all | 1 | 0 | 0 | 0 |", "| all | 0 | 0 | 0 | 1 |")
    assert problems_of(in_progress + planned.replace("| running |", "| in progress (issue 18) |")) == []
    problems = problems_of(SUMMARY_ONE_RUNNING + planned)
    assert any("no test file tests/test_pack_not_yet.py" in p for p in problems), problems
