"""Translatable text for the domain layer.

Our message ids are written in Simplified Chinese (the product's default
language and the handbooks' vocabulary); ``translations/en`` carries the
English catalogue. Flask-Admin's own strings are English ids translated by its
``zh_Hans_CN`` catalogue. Outside a request the Chinese id is returned as is.
"""
from flask_babel import gettext, lazy_gettext

_ = gettext
_l = lazy_gettext
