from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from stackbe_common.bus import ensure_stream
from stackbe_common.ids import new_id
from stackbe_common.outbox import OutboxRelay, claim, record
from stackbe_common.stopping import Stopping

from .events import CONTEXT, ThingHappened


@pytest.fixture
async def stream(js: JetStreamContext) -> str:
    try:
        await js.delete_stream("STACKBE_COMMONTEST")
    except NotFoundError:
        pass
    return await ensure_stream(js, CONTEXT)


def thing(n: int) -> ThingHappened:
    return ThingHappened(id=new_id("evt"), occurred_at=datetime.now(UTC), tenant_id="ten_t", n=n)


async def stream_ids(js: JetStreamContext, stream: str) -> list[str]:
    info = await js.stream_info(stream)
    ids = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        ids.append(msg.headers["Nats-Msg-Id"])
    return ids


async def test_relay_publishes_committed_events_with_their_id(pool, js, stream):
    events = [thing(i) for i in range(5)]
    async with pool.acquire() as conn, conn.transaction():
        await record(conn, *events)
    relay = OutboxRelay(pool, js, "unused")
    assert await relay.publish_pending() == 5
    assert await relay.publish_pending() == 0
    assert await stream_ids(js, stream) == [e.id for e in events]


async def test_rolled_back_events_are_never_published(pool, js, stream):
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await record(conn, thing(1))
            raise RuntimeError("the change failed")
    assert await OutboxRelay(pool, js, "unused").publish_pending() == 0
    assert (await js.stream_info(stream)).state.messages == 0


async def test_relay_interrupted_between_publish_and_mark_publishes_each_event_once(
    pool, js, stream
):
    events = [thing(i) for i in range(10)]
    async with pool.acquire() as conn, conn.transaction():
        await record(conn, *events)
    # A relay publishes the batch, then dies before marking: its transaction rolls back.
    conn = await pool.acquire()
    tx = conn.transaction()
    await tx.start()
    batch = await claim(conn, 100)
    await batch.publish(js)
    await tx.rollback()
    await pool.release(conn)
    # The next relay publishes the same rows again; JetStream drops the duplicates.
    assert await OutboxRelay(pool, js, "unused").publish_pending() == 10
    assert await stream_ids(js, stream) == [e.id for e in events]


KILLED_RELAY = textwrap.dedent("""
    import asyncio, sys
    import nats
    from stackbe_common.db import create_pool
    from stackbe_common.outbox import claim

    async def main(dsn, schema, nats_url):
        pool = await create_pool(dsn, schema)
        nc = await nats.connect(nats_url)
        async with pool.acquire() as conn, conn.transaction():
            batch = await claim(conn, 1000)
            await batch.publish(nc.jetstream())
            print("published", len(batch.rows), flush=True)
            await asyncio.sleep(3600)  # killed here, before mark
    asyncio.run(main(*sys.argv[1:]))
""")


async def test_relay_killed_with_sigkill_between_publish_and_mark_publishes_each_event_once(
    pool, js, stream, database_url, schema, nats_url
):
    events = [thing(i) for i in range(50)]
    async with pool.acquire() as conn, conn.transaction():
        await record(conn, *events)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        KILLED_RELAY,
        database_url,
        schema,
        nats_url,
        stdout=subprocess.PIPE,
    )
    line = b""
    while not line.startswith(b"published"):  # past the child's own log lines
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, "the relay exited without publishing"
    assert line.decode().strip() == "published 50"
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()
    assert (await js.stream_info(stream)).state.messages == 50
    async with pool.acquire() as conn:
        # Postgres notices the dead backend and releases its row locks.
        for _ in range(100):
            if await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 50:
                break
            await asyncio.sleep(0.05)
    assert await OutboxRelay(pool, js, "unused").publish_pending() == 50
    assert await stream_ids(js, stream) == [e.id for e in events]


async def test_running_relay_is_woken_by_commit(pool, js, stream, schema):
    relay = OutboxRelay(pool, js, schema, poll_interval=30.0)
    task = asyncio.create_task(relay.run(Stopping()))
    try:
        await asyncio.sleep(0.2)  # relay is listening and idle
        event = thing(7)
        async with pool.acquire() as conn, conn.transaction():
            await record(conn, event)
        for _ in range(100):
            if (await js.stream_info(stream)).state.messages:
                break
            await asyncio.sleep(0.02)
        assert await stream_ids(js, stream) == [event.id]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_two_relays_share_the_work_without_duplicates(pool, js, stream):
    events = [thing(i) for i in range(300)]
    async with pool.acquire() as conn, conn.transaction():
        await record(conn, *events)
    a = OutboxRelay(pool, js, "unused", batch_size=20)
    b = OutboxRelay(pool, js, "unused", batch_size=20)
    counts = await asyncio.gather(a.publish_pending(), b.publish_pending())
    assert sum(counts) == 300
    assert sorted(await stream_ids(js, stream)) == sorted(e.id for e in events)
