"""The check's fast path: ``GET /v1/entitlements/check/{feature}`` answered straight from
the replica's cache, in front of Litestar's routing, dependency injection and middleware.

It does what the service edge does for a read (verifies the gateway's signed scope, keeps
the request id) and nothing else. Anything unusual (a missing or bad scope, a bad query,
a cold start, any error) goes to the full app, which answers it the ordinary way; so the
fast path never produces an error body of its own.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar.types import ASGIApp, Receive, Send
from prometheus_client import Counter

from stackbe_common.edge import REQUEST_ID_HEADER
from stackbe_common.errors import StackBEError
from stackbe_common.ids import new_id
from stackbe_common.scope import HEADER, ScopeRejected, verify_scope

from . import access
from .deps import Deps

__all__ = ["CheckFastPath"]

PREFIX = "/v1/entitlements/check/"
_SCOPE = HEADER.encode()
_QUERY = {"customerId", "externalId", "quantity", "value"}
_encoder = msgspec.json.Encoder()
_JSON = (b"content-type", b"application/json")

CHECKS = Counter("stackbe_entitlements_checks_total", "Checks answered on the fast path")


class CheckFastPath:
    def __init__(self, app: ASGIApp, deps: Deps, secret: bytes) -> None:
        self.app, self.deps, self.secret = app, deps, secret

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not scope["path"].startswith(PREFIX)
            or self.deps.cache is None
        ):
            await self.app(scope, receive, send)
            return
        answer = await self._answer(scope)
        if answer is None:
            await self.app(scope, receive, send)  # the full app explains what is wrong
            return
        body, request_id = answer
        CHECKS.inc()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    _JSON,
                    (b"content-length", str(len(body)).encode()),
                    (REQUEST_ID_HEADER, request_id),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _answer(self, scope: Any) -> tuple[bytes, bytes] | None:
        feature = scope["path"][len(PREFIX) :]  # ASGI paths arrive percent-decoded
        if not feature or "/" in feature:
            return None
        signed = request_id = None
        for name, value in scope["headers"]:
            if name == _SCOPE:
                signed = value
            elif name == REQUEST_ID_HEADER:
                request_id = value
        if signed is None:
            return None
        pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        query: dict[str, Any] = dict(pairs)
        if len(query) != len(pairs) or not query.keys() <= _QUERY or "" in query.values():
            return None  # repeated, unknown or blank parameters: the full app explains
        amount = query.get("quantity")
        if amount is not None and not (amount.isascii() and amount.isdigit()):
            return None
        try:
            caller = verify_scope(signed.decode("latin-1"), self.secret)
            quantity = None if amount is None else int(amount)
            assert self.deps.cache is not None
            result = await access.check_feature(
                self.deps.cache,
                caller,
                feature,
                query.get("customerId"),
                query.get("externalId"),
                quantity,
                query.get("value"),
            )
        except (ScopeRejected, StackBEError, ValueError, UnicodeError):
            return None
        return _encoder.encode(result), request_id or new_id("req").encode()
