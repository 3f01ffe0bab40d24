"""The webhooks HTTP app: ``create_app(settings)``; ``asgi()`` is granian's factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide

from stackbe_common import bus
from stackbe_common.clock import Clock, SystemClock
from stackbe_common.config import load_or_exit
from stackbe_common.db import create_pool
from stackbe_common.logging import configure_logging
from stackbe_common.web import create_service_app

from .config import WebhooksSettings
from .deps import Deps
from .routes import ROUTES
from .ssrf import Guard, parse_networks

SCHEMA = "webhooks"


def create_app(settings: WebhooksSettings, clock: Clock | None = None) -> Litestar:
    deps = Deps(
        settings=settings,
        clock=clock or SystemClock(),
        keyring=settings.keyring,
        guard=Guard(parse_networks(settings.webhook_allowed_networks)),
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await create_pool(
            settings.database_url, SCHEMA, max_size=settings.database_pool_size
        )
        if settings.tenant_limits:
            app.state.nc = await bus.connect(settings.nats_url, "stackbe-webhooks")
        try:
            yield
        finally:
            if settings.tenant_limits:
                await app.state.nc.close()
            await app.state.pool.close()

    return create_service_app(
        name=SCHEMA,
        secret=settings.secret,
        keyring=settings.keyring,
        route_handlers=ROUTES,
        lifespan=lifespan,
        dependencies={"deps": Provide(lambda: deps, sync_to_thread=False)},
    )


def asgi() -> Litestar:
    settings = load_or_exit(WebhooksSettings)
    configure_logging(SCHEMA, json=settings.log_json, level=settings.log_level)
    return create_app(settings)
