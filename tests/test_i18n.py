"""The English catalogue covers every UI string in the source tree.

Our msgids are the Simplified Chinese source strings; translations/en/LC_MESSAGES/messages.po
translates them. The strings are re-extracted here in memory (same method map as babel.cfg),
so the test does not depend on translations/messages.pot being up to date.
"""
from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
BABEL_CFG = ROOT / "babel.cfg"
EN_PO = ROOT / "translations" / "en" / "LC_MESSAGES" / "messages.po"
IGNORED_DIRS = (".venv", "var", "bench", "tests")
KEYWORDS = {
    "_": DEFAULT_KEYWORDS["_"],
    "gettext": DEFAULT_KEYWORDS["gettext"],
    "ngettext": DEFAULT_KEYWORDS["ngettext"],
    "_l": None,
    "lazy_gettext": None,
}
HOW_TO_FIX = """\
To fix, from the repository root (see translations/README.md):
  .venv/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output --omit-header \\
      -o translations/messages.pot --ignore-dirs='.venv var bench tests' .
  .venv/bin/pybabel update -i translations/messages.pot -d translations -l en \\
      --no-fuzzy-matching --ignore-pot-creation-date --ignore-obsolete
then fill in the empty msgstr entries in translations/en/LC_MESSAGES/messages.po
and run: .venv/bin/pybabel compile -d translations"""

# A named printf-style placeholder such as %(name)s or %(count)d.
PLACEHOLDER = re.compile(r"%\([^)]*\)[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[diouxXeEfFgGcrsa]")


def _directory_filter(dirname: str) -> bool:
    # Same rule as `pybabel extract --ignore-dirs`: match each directory's basename.
    basename = os.path.basename(dirname)
    return not any(fnmatch.fnmatch(basename, pattern) for pattern in IGNORED_DIRS)


def _extract() -> dict[tuple[str | tuple[str, ...], str | None], list[str]]:
    """{(msgid, context): ["file:line", ...]} for every translatable string in the source tree."""
    with BABEL_CFG.open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f, str(BABEL_CFG))
    found: dict[tuple[str | tuple[str, ...], str | None], list[str]] = {}
    for filename, lineno, msgid, _comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS, directory_filter=_directory_filter):
        where = found.setdefault((msgid, context), [])
        if f"{filename}:{lineno}" not in where:
            where.append(f"{filename}:{lineno}")
    return found


def _en_catalog():
    with EN_PO.open("rb") as f:
        return read_po(f, locale="en")


def _forms(value) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text or ""))


def test_every_source_string_has_an_english_translation():
    extracted = _extract()
    assert any(msgid == "客服管理系统" for msgid, _ in extracted), \
        "extraction found nothing familiar - is babel.cfg's method map still right?"
    po = _en_catalog()
    missing = []
    for (msgid, context), where in sorted(extracted.items(), key=lambda item: str(item[0])):
        message = po.get(msgid, context=context)
        if message is None or not all(_forms(message.string)):
            missing.append(f"  {msgid!r}  ({', '.join(where)})")
    assert not missing, (
        f"{len(missing)} UI string(s) have no English translation in {EN_PO.relative_to(ROOT)}:\n"
        + "\n".join(missing) + "\n\n" + HOW_TO_FIX)


def test_translations_keep_the_placeholders():
    mismatched = []
    for message in _en_catalog():
        if not message.id or not any(_forms(message.string)):
            continue  # the header, or untranslated (reported by the test above)
        ids, strings = _forms(message.id), _forms(message.string)
        for index, string in enumerate(strings):
            source = ids[min(index, len(ids) - 1)]  # msgstr[0] ~ singular, msgstr[1:] ~ plural
            if _placeholders(source) != _placeholders(string):
                mismatched.append(f"  {source!r}: {sorted(_placeholders(source))}\n"
                                  f"    -> {string!r}: {sorted(_placeholders(string))}")
    assert not mismatched, ("English translations whose %(name)s placeholders differ from the msgid:\n"
                            + "\n".join(mismatched))


def test_no_fuzzy_entries():
    fuzzy = [repr(message.id) if message.id else "(the header)" for message in _en_catalog() if message.fuzzy]
    assert not fuzzy, (f"fuzzy entries in {EN_PO.relative_to(ROOT)} (check the translation, then remove the "
                       f"'#, fuzzy' flag): " + ", ".join(fuzzy))
