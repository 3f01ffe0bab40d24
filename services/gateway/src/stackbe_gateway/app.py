"""The gateway's Litestar app: its own endpoints, and every other path forwarded upstream."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import Message
from litestar.types import Scope as ASGIScope

from stackbe_common.config import load_or_exit
from stackbe_common.logging import configure_logging

from .config import GatewaySettings
from .context import REQUEST_ID_HEADER, request_id
from .errors import EXCEPTION_HANDLERS
from .front import Front
from .proxy import RouteTable
from .routes import GATEWAY_HANDLERS, ROUTES
from .runtime import Gateway

__all__ = ["asgi", "create_app"]


async def stamp_request_id(message: Message, scope: ASGIScope) -> None:
    """Every response, forwarded or the gateway's own, carries ``X-Request-Id``."""
    if message["type"] == "http.response.start":
        message["headers"] = [
            *message.get("headers", ()),
            (REQUEST_ID_HEADER, request_id(scope).encode()),
        ]


def create_app(
    settings: GatewaySettings,
    *,
    routes: Mapping[str, str] | None = None,
    upstreams: Mapping[str, str] | None = None,
) -> Front:
    """The gateway; ``routes`` and ``upstreams`` default to ``ROUTES`` and the settings.

    Forwarded paths go straight to the proxy once the gateway has started (``front.py``);
    the Litestar app (``.app``) serves the gateway's own endpoints and the lifespan.
    """
    table = RouteTable(
        ROUTES if routes is None else routes, settings.upstreams if upstreams is None else upstreams
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        gateway = await Gateway.start(settings, table)
        app.state.gateway = gateway
        front.proxy = gateway.proxy
        try:
            yield
        finally:
            front.proxy = None
            await gateway.stop()

    prometheus = PrometheusConfig(
        app_name="stackbe_gateway", group_path=True, exclude=["/health", "/ready", "/metrics"]
    )
    litestar = Litestar(
        route_handlers=[*GATEWAY_HANDLERS, PrometheusController],
        middleware=[prometheus.middleware],
        lifespan=[lifespan],
        before_send=[stamp_request_id],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=None,
    )
    front = Front(litestar, table)
    return front


def asgi() -> Front:
    """The granian factory: settings from the environment, then the app."""
    settings = load_or_exit(GatewaySettings)
    configure_logging("gateway", json=settings.log_json, level=settings.log_level)
    app = create_app(settings)
    # What exists by now (modules, the app) lives as long as the worker: keep it out of the
    # collector's full passes, which would otherwise walk all of it every few seconds under
    # load (tens of milliseconds each, more when the cores are busy).
    gc.freeze()
    return app
