"""Nothing lost: a burst of events through JetStream, a hanging endpoint beside a healthy
one, a delivery worker killed with SIGKILL in the middle of a delivery, and one stopped
with SIGTERM in the middle of a burst."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import msgspec
import nats
import pytest
from aiohttp import web
from nats.js import JetStreamContext

from stackbe_common import bus
from stackbe_common.consumer import Consumer
from stackbe_common.ids import new_id
from stackbe_common.infra import free_port
from stackbe_common.stopping import Stopping
from stackbe_common.testing.plugin import fresh_nats_server
from stackbe_events import encode, stream_for
from stackbe_webhooks.delivery import DeliveryWorker
from stackbe_webhooks.fanout import handlers

from .conftest import Receiver

BURST = 1000
SIGTERM_BURST = 300


async def _until(probe, seconds: float, what: str) -> None:
    """Wait for ``probe()`` to hold; a bound against hanging, not a speed assertion."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(*tasks):
    started = [asyncio.create_task(t) for t in tasks]
    try:
        yield
    finally:
        for task in started:
            task.cancel()
        await asyncio.gather(*started, return_exceptions=True)


async def test_a_burst_of_1000_events_reaches_every_matching_endpoint(
    app, worker, receivers, clock, pool, settings
):
    first, second, elsewhere = await receivers(), await receivers(), await receivers()
    await app.endpoint(first.url)
    await app.endpoint(second.url, events=["customer.created", "customer.updated"])
    await app.endpoint(elsewhere.url, events=["payment.failed"])
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    await bus.ensure_stream(js, "identity")
    events = [app.customer_created(n) for n in range(BURST)]
    await asyncio.gather(*(js.publish(e.subject, encode(e)) for e in events))
    consumer = Consumer(
        name=new_id("burst"),
        context="identity",
        pool=pool,
        js=js,
        handlers=handlers(clock)["identity"],
    )
    wanted = {e.id for e in events}

    async def unsettled() -> int:
        async with pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT count(*) FROM deliveries WHERE app_id = $1 AND status <> 'delivered'",
                app.id,
            )

    try:
        async with running(consumer.run(Stopping()), worker.run(Stopping())):
            await _until(
                lambda: wanted <= set(first.ids) and wanted <= set(second.ids), 180, "the burst"
            )
            for _ in range(600):  # the last outcomes are being recorded
                if await unsettled() == 0:
                    break
                await asyncio.sleep(0.05)
    finally:
        await nc.close()
    for receiver in (first, second):
        counts = Counter(receiver.ids)
        assert set(counts) == wanted  # every one, nothing foreign
        # A duplicate, if any, is the same message: same webhook-id, same body.
        bodies = {}
        for got in receiver.received:
            assert bodies.setdefault(got.headers["webhook-id"], got.body) == got.body
    assert elsewhere.received == []
    assert await unsettled() == 0


async def test_a_hanging_endpoint_does_not_hold_up_a_healthy_one(
    app, receivers, clock, pool, settings
):
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(status=200)

    stuck, healthy = await receivers(default=hang), await receivers()
    await app.endpoint(stuck.url)
    await app.endpoint(healthy.url)
    events = [await app.customer(n, clock=clock) for n in range(20)]
    patient = msgspec.structs.replace(settings, webhook_timeout_seconds=60.0)
    cap = patient.webhook_endpoint_concurrency
    async with DeliveryWorker(pool, patient.keyring, patient, clock) as worker:
        try:
            async with running(worker.run(Stopping())):
                await _until(lambda: len(healthy.received) == 20, 60, "the healthy endpoint")
                # Every healthy delivery is done while the stuck endpoint still holds its
                # first requests, and no more of them than its concurrency cap.
                assert set(healthy.ids) == {e.id for e in events}
                assert len(stuck.received) == cap < 20
                release.set()
                await _until(lambda: len(set(stuck.ids)) == 20, 60, "the stuck endpoint")
        finally:
            release.set()
    assert set(stuck.ids) == {e.id for e in events}


@pytest.fixture
def worker_process(wh_database_url, wh_nats_url, internal_secret, settings):
    """``python -m stackbe_webhooks worker`` as a child process (started on demand)."""
    env = {
        **os.environ,
        "STACKBE_DATABASE_URL": wh_database_url,
        "STACKBE_NATS_URL": wh_nats_url,
        "STACKBE_INTERNAL_SECRET": internal_secret.decode("latin-1"),
        "STACKBE_ENCRYPTION_KEY": settings.encryption_key,
        "STACKBE_WEBHOOK_ALLOWED_NETWORKS": settings.webhook_allowed_networks,
        "STACKBE_WEBHOOK_TIMEOUT_SECONDS": "2",
        "STACKBE_LOG_JSON": "false",
    }
    children: list[subprocess.Popen[bytes]] = []

    def start(**more: str) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            [sys.executable, "-m", "stackbe_webhooks", "worker"], env={**env, **more}
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()


async def test_a_worker_killed_mid_delivery_delivers_after_restart_with_the_same_id(
    app, receivers, worker_process, settings
):
    arrived = asyncio.Event()

    async def hold(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await asyncio.sleep(30)  # the worker dies while this request is open
        return web.Response(status=200)

    receiver = await receivers(hold)
    await app.endpoint(receiver.url)
    event = await app.customer(0)
    first = worker_process()
    await asyncio.wait_for(arrived.wait(), 60)
    first.send_signal(signal.SIGKILL)
    first.wait()
    [delivery] = (await app.message(event.id))["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("pending", 0)  # no outcome recorded
    worker_process()
    await _until(lambda: len(receiver.received) == 2, 60, "the delivery after the restart")
    assert receiver.ids == [event.id, event.id]

    async def delivered() -> bool:
        [d] = (await app.message(event.id))["deliveries"]
        return d["status"] == "delivered"

    for _ in range(100):
        if await delivered():
            break
        await asyncio.sleep(0.05)
    assert await delivered()


async def _given_back(js: JetStreamContext, stream: str) -> None:
    """Each message the stopped worker still held was given back (naked), so it is
    delivered again at once; one merely dropped would wait out the 30 s ack wait."""
    held = (await js.consumer_info(stream, "webhooks")).num_ack_pending
    if held == 0:
        return
    _, subjects = stream_for("identity")
    sub = await js.pull_subscribe(subjects, durable="webhooks", stream=stream)
    try:
        again = await sub.fetch(held, timeout=5)
        assert len(again) == held
        assert {m.metadata.num_delivered for m in again} == {2}
        for msg in again:
            await msg.nak()  # for the restarted worker
    finally:
        await sub.unsubscribe()


async def test_sigterm_mid_burst_loses_no_event_and_drops_no_delivery_in_flight(
    app, receivers, worker_process
):
    """The worker is fanning out and delivering a burst when SIGTERM comes. It exits 0
    (not cut short by its grace period), holding no message: any it fetched and had not
    started are given back (test_consumer.py shows that step on its own). Each delivery it
    had in flight is finished and recorded; restarted, it delivers the rest, and each
    webhook arrives once."""

    async def slowly(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.05)
        return web.Response(status=200)

    receiver = await receivers(slowly)
    await app.endpoint(receiver.url)
    events = [app.customer_created(n) for n in range(SIGTERM_BURST)]
    wanted = {e.id for e in events}
    with fresh_nats_server() as nats_url:  # a stream that holds this burst only
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            stream = await bus.ensure_stream(js, "identity")
            await asyncio.gather(*(js.publish(e.subject, encode(e)) for e in events))
            first = worker_process(STACKBE_NATS_URL=nats_url)
            await _until(lambda: len(receiver.received) >= 20, 120, "deliveries under way")
            first.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(first.wait, 60) == 0
            await _given_back(js, stream)
            seen = set(receiver.ids)
            assert len(seen) < SIGTERM_BURST  # the signal did come mid-burst
            for message_id in seen:  # what was in flight was finished and recorded
                [delivery] = (await app.message(message_id))["deliveries"]
                assert (delivery["status"], delivery["attempts"]) == ("delivered", 1)
            worker_process(STACKBE_NATS_URL=nats_url)
            await _until(lambda: set(receiver.ids) == wanted, 180, "the rest of the burst")
        finally:
            await nc.close()
    counts = Counter(receiver.ids)
    assert set(counts) == wanted and set(counts.values()) == {1}, counts.most_common(3)


async def test_a_receiver_down_for_a_day_gets_every_message_once_when_it_is_back(
    app, worker, clock
):
    """The receiver's server is gone for a day (connections refused) on the test clock,
    then comes back on the same address: each message arrives exactly once, and the
    endpoint, which failed for less than five days, stays enabled."""
    port = free_port()
    endpoint = await app.endpoint(f"http://127.0.0.1:{port}/hook")
    events = [await app.customer(n, clock=clock) for n in range(20)]
    await worker.deliver_due()
    for _ in range(48):  # a day, in half hours: every retry that falls due fails
        clock.advance(timedelta(minutes=30))
        await worker.deliver_due()
    got = await app.api.ok("GET", f"/v1/webhooks/endpoints/{endpoint['id']}", app.key())
    assert got["status"] == "enabled" and got["failingSince"] is not None
    [first] = (await app.message(events[0].id))["deliveries"]
    assert first["status"] == "pending" and first["attempts"] >= 5
    back = Receiver("")
    server = web.Application()
    server.router.add_route("*", "/{tail:.*}", back.handle)
    runner = web.AppRunner(server, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        for _ in range(96):  # up to two more days, until every message is through
            clock.advance(timedelta(minutes=30))
            await worker.deliver_due()
            if len(set(back.ids)) == len(events):
                break
    finally:
        await runner.cleanup()
    assert Counter(back.ids) == Counter(e.id for e in events)  # each once
    for event in events:
        [delivery] = (await app.message(event.id))["deliveries"]
        assert delivery["status"] == "delivered"
    got = await app.api.ok("GET", f"/v1/webhooks/endpoints/{endpoint['id']}", app.key())
    assert got["status"] == "enabled" and got["failingSince"] is None
