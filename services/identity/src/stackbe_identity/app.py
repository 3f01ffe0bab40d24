"""The identity HTTP app: ``create_app(settings)``; ``asgi()`` is granian's factory."""

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

from .billing import Billing
from .billing_routes import BILLING_ROUTES
from .config import IdentitySettings
from .customer_routes import CUSTOMER_ROUTES
from .deps import Deps
from .mail import Mailer
from .routes import ROUTES
from .tokens import SigningKeys

SCHEMA = "identity"


def build_deps(settings: IdentitySettings, clock: Clock) -> Deps:
    return Deps(
        settings=settings,
        keys=SigningKeys.parse(settings.jwt_signing_keys),
        mailer=Mailer(settings.smtp_url, settings.mail_from, log_links=settings.dev),
        clock=clock,
        billing=Billing(settings.gateway_url or settings.public_url, settings.keyring),
    )


def create_app(settings: IdentitySettings, clock: Clock | None = None) -> Litestar:
    deps = build_deps(settings, clock or SystemClock())

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await create_pool(
            settings.database_url, SCHEMA, max_size=settings.database_pool_size
        )
        app.state.nc = await bus.connect(settings.nats_url, "stackbe-identity")
        deps.billing.nc = app.state.nc
        try:
            yield
        finally:
            await deps.billing.close()
            await app.state.nc.close()
            await app.state.pool.close()

    return create_service_app(
        name=SCHEMA,
        secret=settings.secret,
        keyring=settings.keyring,
        route_handlers=[*ROUTES, *CUSTOMER_ROUTES, *BILLING_ROUTES],
        lifespan=lifespan,
        dependencies={"deps": Provide(lambda: deps, sync_to_thread=False)},
    )


def asgi() -> Litestar:
    settings = load_or_exit(IdentitySettings)
    configure_logging("identity", json=settings.log_json, level=settings.log_level)
    return create_app(settings)
