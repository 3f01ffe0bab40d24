from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from stackbe_common.db import create_pool
from stackbe_common.migrations import migrate


@pytest.fixture
def schema() -> str:
    return f"t_{secrets.token_hex(4)}"


@pytest.fixture
async def pool(database_url: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, schema, None)
    finally:
        await conn.close()
    pool = await create_pool(database_url, schema, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
def js(nc: NATS) -> JetStreamContext:
    return nc.jetstream()
