"""The subscriptions HTTP app: ``create_app(settings)``; ``asgi()`` is granian's factory."""

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

from .config import SubscriptionsSettings
from .deps import Deps
from .portal_routes import PORTAL_ROUTES
from .readmodels import Lookups
from .routes import ROUTES
from .stripe_api import StripeHttp

SCHEMA = "subscriptions"


def create_app(settings: SubscriptionsSettings, clock: Clock | None = None) -> Litestar:
    deps = Deps(settings=settings, clock=clock or SystemClock())

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await create_pool(
            settings.database_url, SCHEMA, max_size=settings.database_pool_size
        )
        app.state.nc = await bus.connect(settings.nats_url, "stackbe-subscriptions")
        deps.lookups = Lookups(app.state.nc, settings.rpc_timeout_seconds)
        deps.stripe = StripeHttp(settings.stripe_api_base, settings.stripe_timeout_seconds)
        try:
            yield
        finally:
            await deps.stripe.close()
            await app.state.nc.close()
            await app.state.pool.close()

    return create_service_app(
        name=SCHEMA,
        secret=settings.secret,
        keyring=settings.keyring,
        route_handlers=[*ROUTES, *PORTAL_ROUTES],
        lifespan=lifespan,
        dependencies={"deps": Provide(lambda: deps, sync_to_thread=False)},
    )


def asgi() -> Litestar:
    settings = load_or_exit(SubscriptionsSettings)
    configure_logging(SCHEMA, json=settings.log_json, level=settings.log_level)
    return create_app(settings)
