from __future__ import annotations

import asyncio
import secrets

import asyncpg
import pytest
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from stackbe_common.bus import ensure_stream
from stackbe_common.consumer import Consumer, PermanentError
from stackbe_common.stopping import Stopping
from stackbe_events import encode

from .events import CONTEXT, ThingHappened
from .test_outbox import thing

SUBJECT = ThingHappened.subject


@pytest.fixture
async def stream(js: JetStreamContext) -> str:
    try:
        await js.delete_stream("STACKBE_COMMONTEST")
    except NotFoundError:
        pass
    return await ensure_stream(js, CONTEXT)


@pytest.fixture
async def things(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE things (event_id text, n int)")
    return pool


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def run(consumer: Consumer) -> asyncio.Task[None]:
    return asyncio.create_task(consumer.run(Stopping()))


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def insert_thing(conn: asyncpg.Connection, event: ThingHappened) -> None:
    await conn.execute("INSERT INTO things VALUES ($1, $2)", event.id, event.n)


async def count(pool: asyncpg.Pool, sql: str) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval(sql))


async def test_inbox_drops_a_duplicate_delivery(things, js, stream):
    event = thing(1)
    # Published twice without a message id, so JetStream itself keeps both copies.
    await js.publish(SUBJECT, encode(event))
    await js.publish(SUBJECT, encode(event))
    consumer = Consumer(
        name=f"c_{secrets.token_hex(3)}",
        context=CONTEXT,
        pool=things,
        js=js,
        handlers={ThingHappened: insert_thing},
    )
    task = run(consumer)
    try:
        await wait_for(lambda: _all_acked(js, stream, consumer.name))
    finally:
        await stop(task)
    assert await count(things, "SELECT count(*) FROM things") == 1
    assert await count(things, "SELECT count(*) FROM inbox") == 1


async def _all_acked(js: JetStreamContext, stream: str, durable: str) -> bool:
    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        return False
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_undecodable_payload_is_dead_lettered_and_terminated(things, js, stream):
    await js.publish(SUBJECT, b"{not json")
    good = thing(2)
    await js.publish(SUBJECT, encode(good))
    consumer = Consumer(
        name=f"c_{secrets.token_hex(3)}",
        context=CONTEXT,
        pool=things,
        js=js,
        handlers={ThingHappened: insert_thing},
    )
    task = run(consumer)
    try:
        await wait_for(lambda: _all_acked(js, stream, consumer.name))
    finally:
        await stop(task)
    assert await count(things, "SELECT count(*) FROM dead_letters") == 1
    async with things.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM dead_letters")
    assert row["payload"] == b"{not json" and row["error"].startswith("undecodable")
    assert await count(things, "SELECT count(*) FROM things") == 1


async def test_a_permanent_error_is_dead_lettered_and_its_effect_rolled_back(things, js, stream):
    async def refuse(conn: asyncpg.Connection, event: ThingHappened) -> None:
        await insert_thing(conn, event)
        raise PermanentError("cannot apply")

    await js.publish(SUBJECT, encode(thing(3)))
    consumer = Consumer(
        name=f"c_{secrets.token_hex(3)}",
        context=CONTEXT,
        pool=things,
        js=js,
        handlers={ThingHappened: refuse},
    )
    task = run(consumer)
    try:
        await wait_for(lambda: _all_acked(js, stream, consumer.name))
    finally:
        await stop(task)
    assert await count(things, "SELECT count(*) FROM things") == 0
    assert await count(things, "SELECT count(*) FROM inbox") == 0
    assert await count(things, "SELECT count(*) FROM dead_letters") == 1


async def test_a_transient_error_is_retried_until_it_succeeds(things, js, stream):
    attempts = []

    async def flaky(conn: asyncpg.Connection, event: ThingHappened) -> None:
        attempts.append(event.id)
        if len(attempts) < 2:
            raise ConnectionError("database hiccup")
        await insert_thing(conn, event)

    await js.publish(SUBJECT, encode(thing(4)))
    consumer = Consumer(
        name=f"c_{secrets.token_hex(3)}",
        context=CONTEXT,
        pool=things,
        js=js,
        handlers={ThingHappened: flaky},
    )
    task = run(consumer)
    try:
        await wait_for(lambda: _count_is(things, "SELECT count(*) FROM things", 1), timeout=10)
    finally:
        await stop(task)
    assert len(attempts) == 2
    assert await count(things, "SELECT count(*) FROM dead_letters") == 0


async def _count_is(pool: asyncpg.Pool, sql: str, expected: int) -> bool:
    return await count(pool, sql) == expected


async def test_side_by_side_handling_handles_each_message_once(things, js, stream):
    """With concurrency, a batch is handled several messages at a time; duplicates still
    meet the inbox, and at most ``concurrency`` handlers run at once."""
    events = [thing(n) for n in range(40)]
    for event in events:
        await js.publish(SUBJECT, encode(event))
    await js.publish(SUBJECT, encode(events[0]))  # a duplicate
    running, most = 0, 0

    async def slow_insert(conn: asyncpg.Connection, event: ThingHappened) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        await insert_thing(conn, event)
        running -= 1

    consumer = Consumer(
        name=f"c_{secrets.token_hex(3)}",
        context=CONTEXT,
        pool=things,
        js=js,
        handlers={ThingHappened: slow_insert},
        concurrency=4,
    )
    task = run(consumer)
    try:
        await wait_for(lambda: _all_acked(js, stream, consumer.name))
    finally:
        await stop(task)
    assert await count(things, "SELECT count(*) FROM things") == 40
    assert await count(things, "SELECT count(DISTINCT event_id) FROM things") == 40
    assert 1 < most <= 4


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_asked_to_stop_it_finishes_the_message_in_hand_and_gives_back_the_rest(
    things, js, stream, concurrency
):
    for n in range(6):
        await js.publish(SUBJECT, encode(thing(n)))
    started, go_on = asyncio.Event(), asyncio.Event()

    async def held_insert(conn: asyncpg.Connection, event: ThingHappened) -> None:
        started.set()
        await go_on.wait()
        await insert_thing(conn, event)

    name = f"c_{secrets.token_hex(3)}"
    first = Consumer(
        name=name,
        context=CONTEXT,
        pool=things,
        js=js,
        handlers={ThingHappened: held_insert},
        batch=6,
        concurrency=concurrency,
    )
    stopping = Stopping()
    task = asyncio.create_task(first.run(stopping))
    await asyncio.wait_for(started.wait(), 10)
    stopping.request()
    go_on.set()
    await asyncio.wait_for(task, 10)  # it returns by itself
    finished = await count(things, "SELECT count(*) FROM things")
    assert finished == concurrency  # the messages in hand, and no more

    async def given_back() -> bool:  # acks reach the server a moment after they are sent
        info = await js.consumer_info(stream, name)
        return (info.num_pending, info.num_ack_pending) == (0, 6 - finished)

    await wait_for(given_back)
    second = Consumer(
        name=name, context=CONTEXT, pool=things, js=js, handlers={ThingHappened: insert_thing}
    )
    task = run(second)
    try:  # what was given back comes again at once, well within the 30 s ack wait
        await wait_for(lambda: _all_acked(js, stream, name), timeout=10)
    finally:
        await stop(task)
    rows = await count(things, "SELECT count(DISTINCT n) FROM things")
    assert (rows, await count(things, "SELECT count(*) FROM things")) == (6, 6)
