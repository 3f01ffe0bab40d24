"""The webhooks worker: consumers of every stream that turn events into messages, the
delivery worker, the outbox relay (``endpoint.disabled``, ``message.exhausted``) and
housekeeping (messages older than the retention are deleted with their attempts)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import msgspec
from nats.aio.client import Client as NATS

from stackbe_common import bus, idempotency
from stackbe_common.bus import Responder
from stackbe_common.clock import Clock, SystemClock
from stackbe_common.consumer import Consumer
from stackbe_common.db import create_pool
from stackbe_common.housekeeping import Job, run_periodically
from stackbe_common.outbox import OutboxRelay
from stackbe_common.service import ServiceSettings
from stackbe_common.stopping import Stopping
from stackbe_events import rpc

from .app import SCHEMA
from .config import WebhooksSettings
from .delivery import DeliveryWorker
from .fanout import handlers

HOUSEKEEPING_SECONDS = 600
FAN_OUT_CONCURRENCY = 8


def expire_messages(retention_days: int, clock: Clock) -> Job:
    async def expire(conn: asyncpg.Connection) -> None:
        cutoff = clock.now() - timedelta(days=retention_days)
        await conn.execute("DELETE FROM messages WHERE created_at < $1", cutoff)

    return expire


_count = msgspec.json.Decoder(rpc.CountEndpoints)


def count_responder(nc: NATS, pool: asyncpg.Pool) -> Responder:
    """How many webhook endpoints a tenant has (identity shows it against the plan)."""

    async def count(data: bytes) -> rpc.EndpointCount:
        q = _count.decode(data)
        async with pool.acquire() as conn:
            found: int = await conn.fetchval(
                "SELECT count(*) FROM endpoints WHERE tenant_id = $1", q.tenant_id
            )
        return rpc.EndpointCount(count=found)

    return Responder(nc, rpc.COUNT_ENDPOINTS, "webhooks", count)


async def run_worker(settings: ServiceSettings, stopping: Stopping) -> None:
    assert isinstance(settings, WebhooksSettings)
    clock = SystemClock()
    pool = await create_pool(settings.database_url, SCHEMA, max_size=settings.database_pool_size)
    nc = await bus.connect(settings.nats_url, "stackbe-webhooks-worker")
    js = nc.jetstream()
    by_context = handlers(clock, bus.plan_source(nc, settings.rpc_timeout_seconds))
    try:
        await bus.ensure_streams(js, settings.streams, SCHEMA, *by_context)
        async with (
            DeliveryWorker(pool, settings.keyring, settings, clock) as delivery,
            asyncio.TaskGroup() as tasks,
        ):
            tasks.create_task(bus.answer_until_stopped(stopping, count_responder(nc, pool)))
            tasks.create_task(OutboxRelay(pool, js, SCHEMA).run(stopping))
            for context, table in by_context.items():
                consumer = Consumer(  # fan-out does not depend on order: 8 at a time
                    name="webhooks",
                    context=context,
                    pool=pool,
                    js=js,
                    handlers=table,
                    concurrency=FAN_OUT_CONCURRENCY,
                )
                tasks.create_task(consumer.run(stopping))
            tasks.create_task(delivery.run(stopping))
            expire = expire_messages(settings.webhook_retention_days, clock)
            tasks.create_task(
                run_periodically(
                    pool, HOUSEKEEPING_SECONDS, idempotency.prune, expire, stopping=stopping
                )
            )
    finally:
        await asyncio.shield(nc.drain())
        await pool.close()
