"""The identity worker: outbox relay, request-reply responders, key-use recorder."""

from __future__ import annotations

import asyncio

from stackbe_common import bus
from stackbe_common.db import create_pool
from stackbe_common.outbox import OutboxRelay
from stackbe_common.service import ServiceSettings

from .app import SCHEMA
from .config import IdentitySettings
from .consumers import responders, subscribe_key_use
from .tokens import SigningKeys


async def run_worker(settings: ServiceSettings) -> None:
    assert isinstance(settings, IdentitySettings)
    pool = await create_pool(settings.database_url, SCHEMA)
    nc = await bus.connect(settings.nats_url, "stackbe-identity-worker")
    js = nc.jetstream()
    try:
        await bus.ensure_stream(js, SCHEMA)
        for responder in responders(nc, pool, SigningKeys.parse(settings.jwt_signing_keys)):
            await responder.start()
        await subscribe_key_use(nc, pool)
        await OutboxRelay(pool, js, SCHEMA).run()
    finally:
        await asyncio.shield(nc.drain())
        await pool.close()
