"""Translatable text for the domain layer.

Our message ids are written in Simplified Chinese (the product's default
language and the handbooks' vocabulary); ``translations/en`` carries the
English catalogue. Flask-Admin's own strings are English ids translated by its
``zh_Hans_CN`` catalogue. Outside a request the Chinese id is returned as is.
"""
from contextlib import nullcontext

from flask_babel import force_locale, get_locale, gettext, lazy_gettext

_ = gettext
_l = lazy_gettext


def in_user_language(chinese: str, english: str | None) -> str:
    """A name the data gives in both languages (a field's ``label`` and ``label_en``) in the request's language:
    ``english`` for an English request when it is set, else ``chinese`` (also outside a request)."""
    return english if english and str(get_locale() or "") == "en" else chinese


def enumeration(items) -> str:
    """``items`` as a list in a sentence of the user's language: "12-05、12-06" or "12-05, 12-06"."""
    return _("、").join(str(item) for item in items)


def clauses(items) -> str:
    """``items`` as the clauses of one sentence in the user's language: "…，…" or "…, …"."""
    return _("，").join(str(item) for item in items)


def in_language(locale: str | None):
    """A context in which messages are written in ``locale`` (a user's language; None: the request's or the
    default): for work done for a user outside their request, such as a background job."""
    return force_locale(locale) if locale else nullcontext()
