"""The application's error hierarchy, mapped to one JSON shape by the DRF exception handler.

Every error a client can cause carries a stable ``code``, a human ``message`` and, where a
field is to blame, ``fields`` mapping field names to lists of messages.
"""

from __future__ import annotations


def error_summary(error: BaseException, limit: int) -> str:
    """``Type: message`` of an error kept on a row or an audit record, the message's first
    line only (the log has the traceback), cut to ``limit`` characters."""
    message = str(error).partition("\n")[0]
    return f"{type(error).__name__}: {message}"[:limit]


class ApplicationError(Exception):
    """Base class: a client-visible error with an HTTP status."""

    status_code = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, list[str]] | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.fields = fields or {}
        self.headers = headers or {}

    def as_dict(self) -> dict:
        body: dict = {"error": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return body


class ValidationError(ApplicationError):
    status_code = 400
    code = "invalid"


class AuthenticationError(ApplicationError):
    status_code = 401
    code = "unauthenticated"


class PermissionDenied(ApplicationError):
    status_code = 403
    code = "forbidden"


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(ApplicationError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApplicationError):
    status_code = 415
    code = "unsupported_media_type"


class RateLimited(ApplicationError):
    status_code = 429
    code = "rate_limited"


class ServiceUnavailable(ApplicationError):
    """Redis, the broker or the database did not answer: the client should try again."""

    status_code = 503
    code = "service_unavailable"
