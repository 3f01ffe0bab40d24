"""The subscriptions worker: the outbox relay, the read-model consumers, the scheduler
that runs due transitions by each app's clock, and housekeeping."""

from __future__ import annotations

import asyncio

import asyncpg

from stackbe_common import bus, idempotency
from stackbe_common.clock import SystemClock
from stackbe_common.consumer import Consumer
from stackbe_common.db import create_pool
from stackbe_common.housekeeping import run_periodically
from stackbe_common.logging import get_logger
from stackbe_common.outbox import OutboxRelay
from stackbe_common.service import ServiceSettings

from . import repository as repo
from .app import SCHEMA
from .config import SubscriptionsSettings
from .deps import Deps
from .lifecycle import app_now, run_due_until
from .readmodels import CATALOG_HANDLERS, IDENTITY_HANDLERS, Lookups
from .subscriptions import billing_for

log = get_logger(__name__)

HOUSEKEEPING_SECONDS = 600
IDLE_SECONDS = 1.0


async def run_due_once(pool: asyncpg.Pool, deps: Deps) -> bool:
    """Claim one due subscription (skipping those another replica holds) and bring it up
    to its app's now; False when nothing is due."""
    async with pool.acquire() as conn, conn.transaction():
        claimed = await repo.claim_due(conn, 1)
        if not claimed:
            return False
        row = await repo.get_subscription(
            conn, claimed[0]["tenant_id"], claimed[0]["app_id"], claimed[0]["id"]
        )
        assert row is not None
        now = await app_now(conn, deps, row["app_id"])
        await run_due_until(conn, row, now, billing_for(conn, deps))
        return True


async def scheduler(pool: asyncpg.Pool, deps: Deps) -> None:
    """Run due transitions as they fall due; replicas share the work through SKIP LOCKED."""
    while True:
        try:
            while await run_due_once(pool, deps):
                pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Postgres or NATS away: log, wait, go on
            log.warning("scheduler.failed", error=repr(exc))
        await asyncio.sleep(IDLE_SECONDS)


async def run_worker(settings: ServiceSettings) -> None:
    assert isinstance(settings, SubscriptionsSettings)
    pool = await create_pool(settings.database_url, SCHEMA)
    nc = await bus.connect(settings.nats_url, "stackbe-subscriptions-worker")
    js = nc.jetstream()
    deps = Deps(
        settings=settings, clock=SystemClock(), lookups=Lookups(nc, settings.rpc_timeout_seconds)
    )
    consumers = [
        Consumer(
            name="subscriptions", context="identity", pool=pool, js=js, handlers=IDENTITY_HANDLERS
        ),
        Consumer(
            name="subscriptions", context="catalog", pool=pool, js=js, handlers=CATALOG_HANDLERS
        ),
    ]
    try:
        await bus.ensure_stream(js, SCHEMA)
        for context in ("identity", "catalog"):
            await bus.ensure_stream(js, context)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(OutboxRelay(pool, js, SCHEMA).run())
            for consumer in consumers:
                tasks.create_task(consumer.run())
            tasks.create_task(scheduler(pool, deps))
            tasks.create_task(run_periodically(pool, HOUSEKEEPING_SECONDS, idempotency.prune))
    finally:
        await asyncio.shield(nc.drain())
        await pool.close()
