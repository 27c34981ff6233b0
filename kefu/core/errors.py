"""Named exceptions of the domain layer; their messages are written for a person."""
from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises for a person to read."""

    code = "error"

    def __init__(self, message, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})

    def __str__(self) -> str:
        return str(self.message)


class ValidationFailed(DomainError):
    """Input did not pass validation; ``fields`` maps field keys to messages."""

    code = "validation_failed"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class PermissionDenied(DomainError):
    code = "forbidden"


class LoginFailed(DomainError):
    code = "login_failed"
