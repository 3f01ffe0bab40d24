"""One error hierarchy for every service.

Services raise errors that name a condition (``AppNotFound``); each subclasses a kind
below, and the HTTP status comes from the kind in ``STATUS_BY_KIND``, applied at the edge.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec

__all__ = [
    "INTERNAL_MESSAGE",
    "AppNotFound",
    "Conflict",
    "DatabaseUnavailable",
    "ErrorBody",
    "Forbidden",
    "GatewayFailed",
    "IdempotencyKeyReused",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "StackBEError",
    "TokenExpired",
    "Unauthorized",
    "Unavailable",
    "error_body",
    "status_of",
]


class ErrorBody(msgspec.Struct, rename="camel", omit_defaults=True):
    status_code: int
    error: str
    message: str
    code: str
    request_id: str | None = None
    field: str | None = None


# What a client is told of a failure of StackBE's own (a 500): the request id finds the log.
INTERNAL_MESSAGE = "Internal error; quote the request id when reporting it"


class StackBEError(Exception):
    """Base of every error a client may see."""

    code = "INTERNAL_ERROR"
    default_message = "Internal error"

    def __init__(self, message: str | None = None, **context: Any) -> None:
        self.message = message or self.default_message
        self.context = context
        super().__init__(self.message)


class InvalidInput(StackBEError):
    code = "VALIDATION_ERROR"
    default_message = "Invalid request"

    def __init__(self, message: str | None = None, field: str | None = None, **context: Any):
        super().__init__(message, **context)
        self.field = field


class Unauthorized(StackBEError):
    code = "UNAUTHORIZED"
    default_message = "Missing or invalid credentials"


class Forbidden(StackBEError):
    code = "FORBIDDEN"
    default_message = "This credential may not do that"


class NotFound(StackBEError):
    code = "NOT_FOUND"
    default_message = "Not found"


class Conflict(StackBEError):
    code = "CONFLICT"
    default_message = "Conflict"


class IdempotencyKeyReused(Conflict):
    code = "IDEMPOTENCY_KEY_REUSED"
    default_message = "This Idempotency-Key was used with a different request"


class AppNotFound(NotFound):
    """An app that does not exist, or belongs to another tenant (answered alike)."""

    code = "APP_NOT_FOUND"
    default_message = "App not found"


class TokenExpired(Unauthorized):
    code = "TOKEN_EXPIRED"
    default_message = "The token has expired"


class PayloadTooLarge(StackBEError):
    code = "PAYLOAD_TOO_LARGE"
    default_message = "Request body is larger than 1 MiB"


class RateLimited(StackBEError):
    code = "RATE_LIMITED"
    default_message = "Too many requests"

    def __init__(self, message: str | None = None, retry_after: int = 1, **context: Any):
        super().__init__(message, **context)
        self.retry_after = retry_after


class Unavailable(StackBEError):
    code = "SERVICE_UNAVAILABLE"
    default_message = "A dependency is unavailable, try again"


class DatabaseUnavailable(Unavailable):
    default_message = "The database is unavailable; try again shortly"


class GatewayFailed(StackBEError):
    """A payment gateway (Stripe) refused or failed a call StackBE made for the request."""

    code = "GATEWAY_ERROR"
    default_message = "The payment gateway did not complete the request; try again"


STATUS_BY_KIND: dict[type[StackBEError], int] = {
    InvalidInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    RateLimited: 429,
    GatewayFailed: 502,
    Unavailable: 503,
    StackBEError: 500,
}


def status_of(exc: StackBEError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS_BY_KIND:
            return STATUS_BY_KIND[kind]
    return 500


def error_body(
    status: int, code: str, message: str, request_id: str | None = None, field: str | None = None
) -> bytes:
    return msgspec.json.encode(
        ErrorBody(
            status_code=status,
            error=HTTPStatus(status).phrase,
            message=message,
            code=code,
            request_id=request_id,
            field=field,
        )
    )
