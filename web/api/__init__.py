"""The JSON API under ``/api/``: token or session auth, one error shape (``web.api.base``), never a 500 for input.

Errors are always ``{"error": {"code", "message", "fields": {key: message}}}``. Each module below adds its routes to
the one blueprint.
"""
from __future__ import annotations

from web.api import (
    approvals, customers, docs, knowledge, levels, loyalty, notifications, records, search, tokens, types, views,
)
from web.api.base import blueprint

__all__ = ["blueprint", "approvals", "customers", "docs", "knowledge", "levels", "loyalty", "notifications",
           "records", "search", "tokens", "types", "views"]
