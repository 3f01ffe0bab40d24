"""The identity worker: outbox relay, request-reply responders, key-use recorder and
housekeeping of expired rows."""

from __future__ import annotations

import asyncio

from stackbe_common import bus, idempotency
from stackbe_common.clock import SystemClock
from stackbe_common.consumer import Consumer
from stackbe_common.db import create_pool
from stackbe_common.housekeeping import run_periodically
from stackbe_common.outbox import OutboxRelay
from stackbe_common.service import ServiceSettings
from stackbe_common.stopping import Stopping

from . import signin_repository as signins
from .app import SCHEMA, build_deps
from .config import IdentitySettings
from .consumers import billing_handlers, responders, subscribe_key_use

HOUSEKEEPING_SECONDS = 600  # expired sign-in rows and idempotency records


async def run_worker(settings: ServiceSettings, stopping: Stopping) -> None:
    assert isinstance(settings, IdentitySettings)
    pool = await create_pool(settings.database_url, SCHEMA, max_size=settings.database_pool_size)
    nc = await bus.connect(settings.nats_url, "stackbe-identity-worker")
    js = nc.jetstream()
    deps = build_deps(settings, SystemClock())
    deps.billing.nc = nc
    try:
        await bus.ensure_streams(js, settings.streams, SCHEMA)
        await subscribe_key_use(nc, pool)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(bus.answer_until_stopped(stopping, *responders(nc, pool, deps)))
            tasks.create_task(OutboxRelay(pool, js, SCHEMA).run(stopping))
            tasks.create_task(
                Consumer(
                    name="identity-billing",
                    context=SCHEMA,
                    pool=pool,
                    js=js,
                    handlers=billing_handlers(deps),
                ).run(stopping)
            )
            tasks.create_task(
                run_periodically(
                    pool,
                    HOUSEKEEPING_SECONDS,
                    signins.prune_expired,
                    idempotency.prune,
                    stopping=stopping,
                )
            )
    finally:
        await deps.billing.close()
        await asyncio.shield(nc.drain())
        await pool.close()
