"""Errors the gateway answers itself, and sending them in the StackBE error body.

Every error the gateway answers itself, whether on the proxy path or from one of its
Litestar routes, carries ``{"statusCode", "error", "message", "code", "requestId"}``.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import HTTPResponseStartEvent, Send

from stackbe_common.errors import (
    AppNotFound,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    StackBEError,
    TokenExpired,
    Unauthorized,
    Unavailable,
    error_body,
    status_of,
)
from stackbe_common.logging import get_logger

from .context import request_id

__all__ = [
    "EXCEPTION_HANDLERS",
    "AppNotFound",
    "BadGateway",
    "IdentityUnavailable",
    "InvalidCredential",
    "PayloadTooLarge",
    "RateLimited",
    "RouteNotFound",
    "TokenExpired",
    "UpstreamUnavailable",
    "error_response",
    "send_error",
    "status_for",
]

log = get_logger(__name__)


class InvalidCredential(Unauthorized):
    default_message = "Missing or invalid credentials"


class RouteNotFound(NotFound):
    default_message = "No such endpoint"


class IdentityUnavailable(Unavailable):
    default_message = "Credentials cannot be checked right now, try again"


class UpstreamUnavailable(Unavailable):
    default_message = "The service behind this endpoint is unavailable, try again"


class BadGateway(Unavailable):
    """The upstream answered with something that is not HTTP, or timed out."""

    status = 502
    default_message = "The service behind this endpoint failed to answer, try again"


def status_for(exc: StackBEError) -> int:
    status: int = getattr(exc, "status", None) or status_of(exc)
    return status


async def send_error(
    send: Send, exc: StackBEError, rid: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer a raw ASGI request with the StackBE error body (``X-Request-Id`` is added by
    the app's ``before_send`` hook, like on every response)."""
    status = status_for(exc)
    body = error_body(status, exc.code, exc.message, rid)
    extra = list(headers or ())
    if isinstance(exc, RateLimited):
        extra.append((b"retry-after", str(exc.retry_after).encode()))
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _json(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    body = error_body(status, code, message, request_id(request.scope))
    return Response(
        content=body, status_code=status, media_type="application/json", headers=headers
    )


def error_response(
    request: Request[Any, Any, Any], exc: StackBEError, headers: dict[str, str] | None = None
) -> Response[bytes]:
    """A Litestar response carrying the StackBE error body for ``exc``."""
    headers = dict(headers or {})
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return _json(request, status_for(exc), exc.code, exc.message, headers)


def _on_stackbe_error(request: Request[Any, Any, Any], exc: StackBEError) -> Response[bytes]:
    return error_response(request, exc)


_CODE_BY_STATUS = {
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED",
}


def _on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    code = _CODE_BY_STATUS.get(status) or (
        "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR"
    )
    return _json(request, status, code, exc.detail or "Error", dict(exc.headers or {}))


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("request.failed", path=request.url.path, request_id=request_id(request.scope))
    return _json(
        request, 500, "INTERNAL_ERROR", "Internal error; quote the request id when reporting it"
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    StackBEError: _on_stackbe_error,
    HTTPException: _on_http,
    Exception: _on_unexpected,
}
