"""The service edge: ASGI middleware in front of every service's routes.

It assigns the request id, verifies the gateway's signed scope header (401 without
it), opens the request's unit of work, applies ``Idempotency-Key`` to POSTs, and sends
the response only after the transaction has committed (or rolled back, for errors).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import structlog
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPRequestEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Message,
    Receive,
    ReceiveMessage,
    Send,
)
from litestar.types import Scope as ASGIScope

from . import idempotency
from .crypto import Keyring
from .db import database_unavailable
from .errors import (
    INTERNAL_MESSAGE,
    DatabaseUnavailable,
    PayloadTooLarge,
    StackBEError,
    error_body,
    status_of,
)
from .ids import new_id
from .logging import get_logger
from .scope import HEADER as SCOPE_HEADER
from .scope import Scope, verify_scope
from .uow import UnitOfWork

__all__ = ["OPEN_PATHS", "REQUEST_ID_HEADER", "EdgeContext", "ServiceEdge"]

log = get_logger(__name__)

REQUEST_ID_HEADER = b"x-request-id"
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})
_SCOPE_HEADER = SCOPE_HEADER.encode()
_IDEMPOTENCY_HEADER = b"idempotency-key"


class EdgeContext:
    """What the edge hands to the routes through the ASGI scope (``scope["stackbe"]``)."""

    __slots__ = ("caller", "request_id", "uow")

    def __init__(self, caller: Scope, request_id: str, uow: UnitOfWork) -> None:
        self.caller, self.request_id, self.uow = caller, request_id, uow


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


async def _send_error(send: Send, exc: StackBEError, request_id: str) -> None:
    status = status_of(exc)
    body = error_body(status, exc.code, exc.message, request_id, getattr(exc, "field", None))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (REQUEST_ID_HEADER, request_id.encode()),
    ]
    if hasattr(exc, "retry_after"):
        headers.append((b"retry-after", str(exc.retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _scope_key(caller: Scope) -> str:
    return f"{caller.tenant_id}:{caller.app_id}:{caller.principal.kind}:{caller.principal.id}"


class ServiceEdge:
    def __init__(
        self, app: ASGIApp, *, pool_getter: Any, secret: bytes, keyring: Keyring, max_body: int
    ) -> None:
        self.app, self._pool_getter, self._secret = app, pool_getter, secret
        self._keyring, self._max_body = keyring, max_body

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        raw_id = _header(headers, REQUEST_ID_HEADER)
        request_id = raw_id.decode("latin-1") if raw_id else new_id("req")
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            raw_scope = _header(headers, _SCOPE_HEADER)
            caller = verify_scope(raw_scope.decode("latin-1") if raw_scope else None, self._secret)
        except StackBEError as exc:
            await _send_error(send, exc, request_id)
            return
        structlog.contextvars.bind_contextvars(tenant_id=caller.tenant_id, app_id=caller.app_id)
        uow = UnitOfWork(self._pool_getter(), caller.tenant_id)
        # ASGI lets middleware add scope keys; litestar's Scope TypedDict does not declare them.
        scope["stackbe"] = EdgeContext(caller, request_id, uow)  # type: ignore[typeddict-unknown-key]
        try:
            await self._run(scope, receive, send, caller, uow, request_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "tenant_id", "app_id")

    async def _run(
        self,
        scope: HTTPScope,
        receive: Receive,
        send: Send,
        caller: Scope,
        uow: UnitOfWork,
        request_id: str,
    ) -> None:
        # Requests without a credential (sign-up, sign-in) have no scope to keep a stored
        # response private to, and they issue credentials: their key is not applied.
        key_raw = (
            _header(scope["headers"], _IDEMPOTENCY_HEADER)
            if scope["method"] == "POST" and not caller.is_anonymous
            else None
        )
        idem: tuple[str, str] | None = None
        if key_raw is not None:
            # The body is read here to fingerprint the request, then replayed to the app.
            chunks, more, size = [], True, 0
            while more:
                # http.disconnect has neither key, so it ends the loop like a last chunk.
                message = cast("HTTPRequestEvent", await receive())
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self._max_body:
                    await _send_error(send, PayloadTooLarge(), request_id)
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
            body = b"".join(chunks)
            replayed = False

            async def receive_again() -> ReceiveMessage:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            receive = receive_again
            try:
                key = idempotency.check_key(key_raw)
                print_ = idempotency.fingerprint(
                    scope["method"], scope["path"], scope["query_string"], body
                )
                stored = await idempotency.lookup(
                    await uow.connection(), self._keyring, _scope_key(caller), key, print_
                )
            except StackBEError as exc:
                await uow.finish(commit=False)
                await _send_error(send, exc, request_id)
                return
            except Exception as exc:
                await self._failed(send, uow, exc, request_id, scope["path"])
                return
            except BaseException:
                await uow.finish(commit=False)
                raise
            if stored is not None:
                await uow.finish(commit=False)
                await send(
                    {
                        "type": "http.response.start",
                        "status": stored.status,
                        "headers": [
                            *((k.encode(), v.encode()) for k, v in stored.headers),
                            (b"idempotent-replayed", b"true"),
                            (REQUEST_ID_HEADER, request_id.encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": stored.body, "more_body": False})
                return
            idem = (key, print_)

        start: dict[str, Any] = {}
        parts: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        try:
            await self.app(scope, receive, capture)
            status = start.get("status", 500)
            ok = status < 400
            if ok and idem is not None:
                stored_headers = [
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in start.get("headers", [])
                    if k.lower() not in (b"content-length", b"date")
                ]
                await idempotency.store(
                    await uow.connection(),
                    self._keyring,
                    _scope_key(caller),
                    idem[0],
                    idem[1],
                    idempotency.StoredResponse(status, stored_headers, b"".join(parts)),
                )
            await uow.finish(commit=ok or uow.keep_on_error)
        except Exception as exc:
            await self._failed(send, uow, exc, request_id, scope["path"])
            return
        except BaseException:
            await uow.finish(commit=False)
            raise
        start.setdefault("headers", [])
        start["headers"] = [*start["headers"], (REQUEST_ID_HEADER, request_id.encode())]
        await send(cast("HTTPResponseStartEvent", start))
        await send({"type": "http.response.body", "body": b"".join(parts), "more_body": False})

    @staticmethod
    async def _failed(
        send: Send, uow: UnitOfWork, exc: Exception, request_id: str, path: str
    ) -> None:
        """The edge's own work failed: opening or finishing the transaction, or the
        idempotency record. The edge answers itself, in the documented body, and never lets
        the exception go on up: the route's answer has begun by then, so the HTTP server
        would send a bare 500. With the database away, a 503 (a commit cut off may have
        landed: a client retrying with its Idempotency-Key gets the stored answer then,
        never a second change); anything else, a 500, logged."""
        lost = uow.lost
        await uow.finish(commit=False)  # a rollback that fails only drops the connection
        if lost or database_unavailable(exc, connecting=True):
            log.warning("request.unavailable", error=repr(exc))
            await _send_error(send, DatabaseUnavailable(), request_id)
            return
        log.error("request.failed", path=path, request_id=request_id, exc_info=exc)
        await _send_error(send, StackBEError(INTERNAL_MESSAGE), request_id)
