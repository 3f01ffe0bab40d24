"""The route table (path prefix -> service) and the gateway's own endpoints.

Add a line to ``ROUTES`` when a service starts serving a prefix, and its base URL to
``GatewaySettings.upstreams``. Prefixes match whole path segments, longest first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, asgi, get
from litestar.datastructures import State
from litestar.types import Receive, Send
from litestar.types import Scope as ASGIScope

from .docs import render_docs
from .errors import RateLimited, UpstreamUnavailable, error_response
from .runtime import Gateway

__all__ = ["GATEWAY_HANDLERS", "ROUTES"]

ROUTES: dict[str, str] = {
    "/v1/tenants": "identity",
    "/v1/api-keys": "identity",
    "/v1/members": "identity",
    "/v1/auth": "identity",
    "/v1/apps": "identity",
    "/v1/customers": "identity",
    "/v1/billing": "identity",
    "/v1/products": "catalog",
    "/v1/plans": "catalog",
    "/v1/checkout": "subscriptions",
    "/v1/subscriptions": "subscriptions",
    "/v1/payments": "subscriptions",
    "/v1/metrics": "subscriptions",
    "/v1/sandbox": "subscriptions",
    "/v1/gateways": "subscriptions",
    "/checkout": "subscriptions",
    "/v1/portal": "subscriptions",
    "/portal": "subscriptions",
    "/v1/entitlements": "entitlements",
    "/v1/usage": "entitlements",
    "/v1/webhooks": "webhooks",
    "/.well-known": "identity",
}


def _gateway(state: State) -> Gateway:
    gateway: Gateway = state.gateway
    return gateway


@get("/health", include_in_schema=False, sync_to_thread=False)
def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@get("/ready", include_in_schema=False)
async def ready(state: State) -> Response[dict[str, Any]]:
    """NATS is connected and every upstream's /health answers."""
    gateway = _gateway(state)
    services = gateway.table.services
    answers = await asyncio.gather(*(gateway.upstream_healthy(base) for base in services.values()))
    checks = {"nats": gateway.nc.is_connected, **dict(zip(services, answers, strict=True))}
    ok = all(checks.values())
    return Response({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


@get("/openapi.json", include_in_schema=False)
async def openapi_document(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    """The whole public API as one OpenAPI document."""
    gateway = _gateway(state)
    verdict = gateway.limit_by_address(request.scope)
    headers = {k.decode(): v.decode() for k, v in verdict.headers}
    if not verdict.allowed:
        return error_response(request, RateLimited(retry_after=verdict.reset), headers)
    document = await gateway.openapi.document_bytes()
    if document is None:
        return error_response(request, UpstreamUnavailable(), headers)
    return Response(document, media_type="application/json", headers=headers)


@get("/docs", include_in_schema=False)
async def docs_page(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """The API reference as one server-rendered HTML page."""
    gateway = _gateway(state)
    verdict = gateway.limit_by_address(request.scope)
    headers = {k.decode(): v.decode() for k, v in verdict.headers}
    if not verdict.allowed:
        return error_response(request, RateLimited(retry_after=verdict.reset), headers)
    document = await gateway.openapi.document()
    if document is None:
        return error_response(request, UpstreamUnavailable(), headers)
    return Response(render_docs(document), media_type="text/html; charset=utf-8", headers=headers)


@asgi("/", is_mount=True, copy_scope=True)
async def forward(scope: ASGIScope, receive: Receive, send: Send) -> None:
    """Every other path: authenticate, rate-limit and forward to the owning service."""
    await scope["app"].state.gateway.proxy(scope, receive, send)


GATEWAY_HANDLERS = [health, ready, openapi_document, docs_page, forward]
