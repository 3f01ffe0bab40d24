"""The entitlements worker: consumers that build the projections from identity, catalog
and subscription events, the outbox relay, and the answer to "what may this customer
use?" for other services (identity's customer session)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import msgspec
from nats.aio.client import Client as NATS

from stackbe_common import bus, idempotency
from stackbe_common.bus import Responder
from stackbe_common.consumer import Consumer
from stackbe_common.db import create_pool
from stackbe_common.housekeeping import run_periodically
from stackbe_common.outbox import OutboxRelay
from stackbe_common.service import ServiceSettings
from stackbe_common.stopping import Stopping
from stackbe_events import rpc
from stackbe_events.entitlements import CustomerEntitlements

from .app import SCHEMA
from .config import EntitlementsSettings
from .projection import handlers, load
from .rules import has_access

HOUSEKEEPING_SECONDS = 600
QUEUE = "entitlements"

_get = msgspec.json.Decoder(rpc.GetEntitlements)


def responders(nc: NATS, pool: asyncpg.Pool) -> list[Responder]:
    async def get(data: bytes) -> CustomerEntitlements | None:
        q = _get.decode(data)
        async with pool.acquire() as conn:
            found = await load(conn, q.customer_id)
        if found is None or found.app_id != q.app_id:
            return None
        if not has_access(found, datetime.now(UTC)):  # as GET /v1/entitlements shows it
            return msgspec.structs.replace(found, entitlements={})
        return found

    return [Responder(nc, rpc.GET_ENTITLEMENTS, QUEUE, get)]


async def run_worker(settings: ServiceSettings, stopping: Stopping) -> None:
    assert isinstance(settings, EntitlementsSettings)
    pool = await create_pool(settings.database_url, SCHEMA, max_size=settings.database_pool_size)
    nc = await bus.connect(settings.nats_url, "stackbe-entitlements-worker")
    js = nc.jetstream()
    by_context = handlers(bus.plan_source(nc, settings.rpc_timeout_seconds))
    try:
        await bus.ensure_streams(js, settings.streams, SCHEMA, *by_context)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(bus.answer_until_stopped(stopping, *responders(nc, pool)))
            tasks.create_task(OutboxRelay(pool, js, SCHEMA).run(stopping))
            for context, table in by_context.items():
                consumer = Consumer(
                    name="entitlements", context=context, pool=pool, js=js, handlers=table
                )
                tasks.create_task(consumer.run(stopping))
            tasks.create_task(
                run_periodically(pool, HOUSEKEEPING_SECONDS, idempotency.prune, stopping=stopping)
            )
    finally:
        await asyncio.shield(nc.drain())
        await pool.close()
