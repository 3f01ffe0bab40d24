"""The hot path: credential -> scope -> rate limit -> route -> one pooled aiohttp forward.

A warm request touches only memory (credential and rate-limit dicts), signs its scope
once (one HMAC) and makes one upstream request; no database, no NATS round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import cast

import aiohttp
import msgspec
from litestar.types import (
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Receive,
    Send,
)
from litestar.types import Scope as ASGIScope
from prometheus_client import Counter
from yarl import URL

from stackbe_common.errors import InvalidInput, StackBEError, Unauthorized
from stackbe_common.logging import get_logger
from stackbe_common.scope import HEADER as SCOPE_HEADER
from stackbe_common.scope import sign_scope

from .context import client_ip, header, request_id
from .credentials import Caller, Credentials
from .errors import (
    BadGateway,
    PayloadTooLarge,
    RateLimited,
    RouteNotFound,
    UpstreamUnavailable,
    send_error,
)
from .ratelimit import RateLimiter, Verdict

__all__ = ["MAX_BODY_BYTES", "Limits", "Proxy", "RouteTable"]

log = get_logger(__name__)

MAX_BODY_BYTES = 1024 * 1024
_BUFFERED_RESPONSE_BYTES = 64 * 1024
# A refused body is read and dropped up to this much, for this long; past that the
# connection is simply closed.
_DISCARD_BYTES = 16 * MAX_BODY_BYTES
_DISCARD_SECONDS = 10.0

# Never forwarded upstream: hop-by-hop headers, headers the gateway sets itself, and the
# raw credential (services trust only the signed scope, so the key or token stays here).
_REQUEST_DROP = frozenset(
    {
        b"authorization",
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-connection",
        b"host",
        b"content-length",
        b"expect",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
    }
)
_FORWARDED_PASSTHROUGH = frozenset({b"x-forwarded-host", b"x-forwarded-proto"})
_RESPONSE_DROP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-connection",
        b"x-request-id",
    }
)
_INTERNAL_PREFIX = b"x-stackbe-"

UPSTREAM_ERRORS = Counter(
    "stackbe_gateway_upstream_errors_total",
    "Upstream requests that failed before a response",
    ["service"],
)
FORWARDED = Counter(
    "stackbe_gateway_forwarded_total",
    "Requests forwarded upstream, by service and response status",
    ["service", "status"],
)


class RouteTable:
    """Path prefix (whole segments) -> (service name, base URL)."""

    def __init__(self, routes: Mapping[str, str], upstreams: Mapping[str, str]) -> None:
        missing = sorted({service for service in routes.values() if service not in upstreams})
        if missing:
            raise ValueError(f"no upstream URL for: {', '.join(missing)}")
        self.targets = {
            prefix.rstrip("/"): (service, upstreams[service].rstrip("/"))
            for prefix, service in routes.items()
        }
        self.services = {
            service: upstreams[service].rstrip("/") for service in sorted(set(routes.values()))
        }
        self._depth = max(prefix.count("/") for prefix in self.targets)

    def match(self, path: str) -> tuple[str, str] | None:
        """The longest configured prefix of ``path``, on segment boundaries."""
        parts = path.split("/", self._depth + 1)
        for end in range(min(len(parts), self._depth + 1), 1, -1):
            target = self.targets.get("/".join(parts[:end]))
            if target is not None:
                return target
        return None


def _safe_path(raw: bytes) -> bool:
    """No dot segments and no encoded separators: the upstream must see the routed path."""
    lowered = raw.lower()
    if b"%2e" in lowered or b"%2f" in lowered or b"%5c" in lowered or b"\\" in raw:
        return False
    padded = raw + b"/"
    return b"/./" not in padded and b"/../" not in padded


class Limits(msgspec.Struct, frozen=True):
    credential: int
    customer: int
    anonymous: int

    def of(self, caller: Caller) -> int:
        kind = caller.scope.principal.kind
        if kind == "anonymous":
            return self.anonymous
        return self.customer if kind == "customer" else self.credential


class _ClientGone(Exception):
    pass


class Proxy:
    def __init__(
        self,
        *,
        credentials: Credentials,
        limiter: RateLimiter,
        limits: Limits,
        table: RouteTable,
        session: aiohttp.ClientSession,
        secret: bytes,
        trusted_proxy_hops: int = 0,
    ) -> None:
        self._credentials, self._limiter, self._limits = credentials, limiter, limits
        self._table, self._session, self._secret = table, session, secret
        self._hops = trusted_proxy_hops

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        rid = request_id(scope)
        authorization = app = length = None
        body_follows = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"x-stackbe-app":
                app = value
            elif name == b"content-length":
                length = value
                body_follows = body_follows or value.strip() not in (b"", b"0")
            elif name == b"transfer-encoding":
                body_follows = True
        ip = client_ip(scope, self._hops)

        try:
            caller = await self._credentials.authenticate(authorization)
        except StackBEError as exc:
            # Failed credentials count against the address, so guessing costs a budget.
            verdict = self._limiter.hit(f"ip:{ip}", self._limits.anonymous)
            if not verdict.allowed and isinstance(exc, Unauthorized):
                exc = RateLimited(retry_after=verdict.reset)
            await self._refuse(scope, receive, send, exc, rid, verdict, body_follows)
            return
        verdict = self._limiter.hit(caller.rate_key or f"ip:{ip}", self._limits.of(caller))
        try:
            if not verdict.allowed:
                raise RateLimited(retry_after=verdict.reset)
            if app is not None:
                caller = await self._credentials.with_app(caller, app)
            raw_path = _raw_path(scope)
            target = self._table.match(raw_path.decode("latin-1")) if _safe_path(raw_path) else None
            if target is None:
                raise RouteNotFound
            if length is not None and _content_length(length) > MAX_BODY_BYTES:
                raise PayloadTooLarge
            body = await _read_body(receive)
        except StackBEError as exc:
            await self._refuse(scope, receive, send, exc, rid, verdict, body_follows)
            return
        except _ClientGone:
            return
        forwarded_scope = msgspec.structs.replace(caller.scope, request_id=rid, client_ip=ip)
        headers = self._upstream_headers(scope, sign_scope(forwarded_scope, self._secret), rid, ip)
        query = scope.get("query_string", b"")
        url = (
            target[1]
            + raw_path.decode("latin-1")
            + ("?" + query.decode("latin-1") if query else "")
        )
        method = cast(HTTPScope, scope)["method"]
        await self._forward(method, url, headers, body, send, rid, verdict, target[0])

    async def _refuse(
        self,
        scope: ASGIScope,
        receive: Receive,
        send: Send,
        exc: StackBEError,
        rid: str,
        verdict: Verdict,
        body_follows: bool,
    ) -> None:
        """Answer with the error; first drop what is left of the body, if any, so the client
        can read the answer (closing a socket with unread data resets the connection)."""
        if body_follows and header(scope["headers"], b"expect") != b"100-continue":
            await _discard_body(receive)
        await send_error(send, exc, rid, verdict.headers)

    def _upstream_headers(
        self, scope: ASGIScope, signed: str, rid: str, ip: str
    ) -> list[tuple[str, str]]:
        headers = scope["headers"]
        drop = _REQUEST_DROP
        for name, value in headers:
            if name == b"connection":  # headers named in Connection are hop-by-hop too
                drop = drop | {
                    t.strip().lower().encode() for t in value.decode("latin-1").split(",")
                }
        out: list[tuple[str, str]] = []
        host = scheme = None
        for name, value in headers:
            name = name.lower()  # ASGI servers lower-case names; be sure before filtering
            if name in _FORWARDED_PASSTHROUGH and self._hops > 0:
                if name == b"x-forwarded-host":
                    host = value
                else:
                    scheme = value
            elif name == b"host" and host is None:
                host = value
            if name in drop or name.startswith(_INTERNAL_PREFIX):
                continue
            out.append((name.decode("latin-1"), value.decode("latin-1")))
        out.append((SCOPE_HEADER, signed))
        out.append(("x-request-id", rid))
        out.append(("x-forwarded-for", ip))
        out.append(
            (
                "x-forwarded-proto",
                scheme.decode("latin-1") if scheme else scope.get("scheme", "http"),
            )
        )
        if host is not None:
            out.append(("x-forwarded-host", host.decode("latin-1")))
        return out

    async def _forward(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        send: Send,
        rid: str,
        verdict: Verdict,
        service: str,
    ) -> None:
        try:
            response = await self._session.request(
                method,
                URL(url, encoded=True),
                headers=headers,
                data=body if body or method not in ("GET", "HEAD", "DELETE", "OPTIONS") else None,
                allow_redirects=False,
            )
        except aiohttp.ClientConnectorError as exc:
            UPSTREAM_ERRORS.labels(service).inc()
            log.warning("upstream.unreachable", service=service, request_id=rid, error=str(exc))
            await send_error(send, UpstreamUnavailable(), rid, verdict.headers)
            return
        except (TimeoutError, aiohttp.ClientError) as exc:
            UPSTREAM_ERRORS.labels(service).inc()
            log.warning("upstream.failed", service=service, request_id=rid, error=repr(exc))
            await send_error(send, BadGateway(), rid, verdict.headers)
            return
        FORWARDED.labels(service, str(response.status)).inc()
        started = False
        try:
            out = [
                (name, value)
                for name, value in response.raw_headers
                if name.lower() not in _RESPONSE_DROP
            ]
            out.extend(verdict.headers)
            start: HTTPResponseStartEvent = {
                "type": "http.response.start",
                "status": response.status,
                "headers": out,
            }
            length = response.content_length
            if length is not None and length <= _BUFFERED_RESPONSE_BYTES:
                content = await response.read()
                started = True
                await send(start)
                await send(_body(content, more=False))
                return
            started = True
            await send(start)
            async for chunk in response.content.iter_any():
                await send(_body(chunk, more=True))
            await send(_body(b"", more=False))
        except (TimeoutError, aiohttp.ClientError) as exc:
            UPSTREAM_ERRORS.labels(service).inc()
            log.warning("upstream.broke", service=service, request_id=rid, error=repr(exc))
            if not started:
                await send_error(send, BadGateway(), rid, verdict.headers)
            # once the response has started, leaving it unfinished aborts the connection
        finally:
            response.release()


def _raw_path(scope: ASGIScope) -> bytes:
    raw: bytes | None = scope.get("raw_path")
    if raw is None:  # every server we run sets raw_path; this keeps others working
        return ("/" + scope["path"].strip("/")).encode()
    return raw.split(b"?", 1)[0]  # some test transports leave the query on raw_path


def _content_length(value: bytes) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise InvalidInput("Content-Length is not a number") from exc


async def _discard_body(receive: Receive) -> None:
    """Read and drop the rest of a refused request's body, bounded in bytes and time."""
    size = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_DISCARD_SECONDS):
            while size <= _DISCARD_BYTES:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                size += len(message.get("body", b""))


def _body(chunk: bytes, *, more: bool) -> HTTPResponseBodyEvent:
    return {"type": "http.response.body", "body": chunk, "more_body": more}


async def _read_body(receive: Receive) -> bytes:
    """The whole request body, refusing it as soon as it passes ``MAX_BODY_BYTES``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]
