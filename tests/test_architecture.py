"""The architecture is checked, not hoped for: import contracts, module and function sizes, no hidden imports."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUR_PACKAGES = ("kefu", "web", "admin_views", "jobs", "seed")
FIRST_PARTY = (*OUR_PACKAGES, "app")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
# The web framework's request-bound objects and page rendering belong to the adapters (web/, admin_views/).
WEB_ONLY_NAMES = {"request", "flash", "render_template", "render_template_string", "session", "redirect", "url_for"}


def our_modules():
    for package in OUR_PACKAGES:
        yield from sorted((PROJECT_ROOT / package).rglob("*.py"))
    yield PROJECT_ROOT / "app.py"


def relative(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


def test_import_contracts_are_kept():
    """``lint-imports`` checks .importlinter: the layers top to bottom, areas never importing upwards."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is in requirements.txt: its lint-imports command must be installed"
    result = subprocess.run([lint_imports, "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_area_is_named_by_the_layers_contract():
    contracts = (PROJECT_ROOT / ".importlinter").read_text(encoding="utf-8")
    areas = [p.name for p in (PROJECT_ROOT / "kefu").iterdir() if (p / "__init__.py").exists()]
    assert len(areas) >= 8
    for area in areas:
        assert f"kefu.{area}" in contracts, f"kefu.{area} is in no import contract"
        docstring = ast.get_docstring(ast.parse((PROJECT_ROOT / "kefu" / area / "__init__.py").read_text()))
        assert docstring, f"kefu/{area}/__init__.py says nothing of what the area owns"


@pytest.mark.parametrize("path", list(our_modules()), ids=relative)
def test_modules_and_functions_stay_small(path):
    source = path.read_text(encoding="utf-8")
    assert source.count("\n") <= MAX_MODULE_LINES, f"{relative(path)} has {source.count(chr(10))} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{relative(path)}:{node.lineno} {node.name} has {length} lines"


def _function_level_imports(tree):
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    yield node.lineno, node.module
                elif isinstance(node, ast.Import):
                    yield from ((node.lineno, alias.name) for alias in node.names)


@pytest.mark.parametrize("path", list(our_modules()), ids=relative)
def test_our_code_is_imported_at_the_top_of_modules(path):
    """An import of our own code inside a function hides a dependency from the contracts (and often a cycle)."""
    hidden = [f"{relative(path)}:{line} imports {module}"
              for line, module in _function_level_imports(ast.parse(path.read_text(encoding="utf-8")))
              if module.split(".")[0] in FIRST_PARTY]
    assert not hidden, "\n".join(hidden)


@pytest.mark.parametrize("path", [p for p in our_modules() if relative(p).startswith("kefu/")], ids=relative)
def test_a_lazy_import_in_the_domain_says_why(path):
    """Any other import inside a function is deliberately lazy, and a ``# optional`` comment on it (or just above)
    says why — a slow library few processes need, a package only one mode installs."""
    lines = path.read_text(encoding="utf-8").split("\n")

    def explained(line: int) -> bool:  # on the import, or above the run of imports it belongs to
        index = line - 1
        while index > 0 and lines[index - 1].strip().startswith(("import ", "from ")):
            index -= 1
        return "# optional" in lines[line - 1] or "# optional" in lines[index] or "# optional" in lines[index - 1]

    unexplained = [f"{relative(path)}:{line} imports {module}"
                   for line, module in _function_level_imports(ast.parse("\n".join(lines))) if not explained(line)]
    assert not unexplained, "\n".join(unexplained)


@pytest.mark.parametrize("path", [p for p in our_modules() if relative(p).startswith("kefu/")], ids=relative)
def test_the_domain_never_touches_requests_flashes_or_templates(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    used = [f"{relative(path)}:{node.lineno} imports {alias.name} from {node.module}"
            for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flask")
            for alias in node.names if alias.name in WEB_ONLY_NAMES]
    used += [f"{relative(path)}:{node.lineno} uses flask.{node.attr}" for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr in WEB_ONLY_NAMES
             and isinstance(node.value, ast.Name) and node.value.id == "flask"]
    assert not used, "\n".join(used)
