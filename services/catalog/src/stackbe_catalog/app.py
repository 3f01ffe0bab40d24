"""The catalog HTTP app: ``create_app(settings)``; ``asgi()`` is granian's factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide

from stackbe_common.clock import Clock, SystemClock
from stackbe_common.config import load_or_exit
from stackbe_common.db import create_pool
from stackbe_common.logging import configure_logging
from stackbe_common.service import ServiceSettings
from stackbe_common.web import create_service_app

from .deps import Deps
from .routes import ROUTES

SCHEMA = "catalog"


def create_app(settings: ServiceSettings, clock: Clock | None = None) -> Litestar:
    deps = Deps(clock=clock or SystemClock())

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await create_pool(
            settings.database_url, SCHEMA, max_size=settings.database_pool_size
        )
        try:
            yield
        finally:
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
    settings = load_or_exit(ServiceSettings)
    configure_logging(SCHEMA, json=settings.log_json, level=settings.log_level)
    return create_app(settings)
