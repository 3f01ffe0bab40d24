"""The entitlements HTTP app: ``create_app(settings)``; ``asgi()`` is granian's factory.

Each process keeps its own cache, kept fresh from NATS by a subscription of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.types import ASGIApp

from stackbe_common import bus
from stackbe_common.config import load_or_exit
from stackbe_common.db import create_pool
from stackbe_common.logging import configure_logging
from stackbe_common.web import create_service_app

from .cache import Cache
from .config import EntitlementsSettings
from .deps import Deps
from .fastpath import CheckFastPath
from .routes import ROUTES

SCHEMA = "entitlements"


def create_app(settings: EntitlementsSettings, deps: Deps | None = None) -> Litestar:
    """The full app (every route, the edge, metrics). ``serve`` puts the check's fast path
    in front of it: see ``create_asgi``."""
    deps = deps or Deps(settings=settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await create_pool(
            settings.database_url, SCHEMA, max_size=settings.database_pool_size
        )
        app.state.nc = await bus.connect(settings.nats_url, "stackbe-entitlements")
        await bus.ensure_streams(app.state.nc.jetstream(), settings.streams, SCHEMA)
        cache = Cache(app.state.pool)
        await cache.follow(app.state.nc)
        deps.cache, deps.nc = cache, app.state.nc
        try:
            yield
        finally:
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


def create_asgi(settings: EntitlementsSettings) -> ASGIApp:
    """The app as served: checks on the fast path, everything else through the full app."""
    deps = Deps(settings=settings)
    return CheckFastPath(create_app(settings, deps), deps, settings.secret)


def asgi() -> ASGIApp:
    settings = load_or_exit(EntitlementsSettings)
    configure_logging(SCHEMA, json=settings.log_json, level=settings.log_level)
    return create_asgi(settings)
