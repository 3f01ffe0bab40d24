"""The catalog worker: the outbox relay, the plan responder, the consumer of
subscription events (which plans are in use) and housekeeping of idempotency records."""

from __future__ import annotations

import asyncio

from stackbe_common import bus, idempotency
from stackbe_common.consumer import Consumer
from stackbe_common.db import create_pool
from stackbe_common.housekeeping import run_periodically
from stackbe_common.outbox import OutboxRelay
from stackbe_common.service import ServiceSettings
from stackbe_common.stopping import Stopping
from stackbe_events.subscriptions import GatewayPriceCreated

from .app import SCHEMA
from .mappings import on_price_created
from .responders import responders
from .usage import SUBSCRIPTION_HANDLERS

HOUSEKEEPING_SECONDS = 600


async def run_worker(settings: ServiceSettings, stopping: Stopping) -> None:
    pool = await create_pool(settings.database_url, SCHEMA, max_size=settings.database_pool_size)
    nc = await bus.connect(settings.nats_url, "stackbe-catalog-worker")
    js = nc.jetstream()
    try:
        await bus.ensure_streams(js, settings.streams, SCHEMA, "subscriptions")
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(bus.answer_until_stopped(stopping, *responders(nc, pool)))
            tasks.create_task(OutboxRelay(pool, js, SCHEMA).run(stopping))
            tasks.create_task(
                Consumer(
                    name="catalog",
                    context="subscriptions",
                    pool=pool,
                    js=js,
                    handlers={**SUBSCRIPTION_HANDLERS, GatewayPriceCreated: on_price_created},
                ).run(stopping)
            )
            tasks.create_task(
                run_periodically(pool, HOUSEKEEPING_SECONDS, idempotency.prune, stopping=stopping)
            )
    finally:
        await asyncio.shield(nc.drain())
        await pool.close()
