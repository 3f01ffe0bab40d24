"""Delivery at its edges: a worker whose lease ran out, answers Postgres cannot store as
they are, absurd Retry-After values, retries asked for mid-attempt, deliveries left on a
disabled endpoint, and targets that are not URLs or hide a private address."""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import timedelta

import pytest
from aiohttp import web

from stackbe_webhooks.delivery import DeliveryWorker
from stackbe_webhooks.ssrf import Guard


async def _exhausted(pool, message_id: str) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = 'stackbe.webhooks.message.exhausted.v1'"
            " AND convert_from(payload, 'UTF8')::jsonb ->> 'messageId' = $1",
            message_id,
        )


async def test_a_worker_whose_lease_ran_out_changes_nothing_when_it_finishes(
    app, receivers, clock, pool, settings
):
    first_arrived, release = asyncio.Event(), asyncio.Event()

    async def slow_then_fail(request: web.Request) -> web.StreamResponse:
        first_arrived.set()
        await release.wait()
        return web.Response(status=500)

    receiver = await receivers(slow_then_fail)  # then 200
    endpoint = await app.endpoint(receiver.url)
    event = await app.customer(clock=clock)
    async with (
        DeliveryWorker(pool, settings.keyring, settings, clock) as stale,
        DeliveryWorker(pool, settings.keyring, settings, clock) as fresh,
    ):
        assert await stale.dispatch() == 1
        await asyncio.wait_for(first_arrived.wait(), 10)
        clock.advance(timedelta(minutes=1))  # the stale worker's lease is over
        assert await fresh.deliver_due() == 1  # claimed again, delivered
        release.set()
        await stale.settle()  # its 500 arrives after the delivery succeeded
    [delivery] = (await app.message(event.id))["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 1)
    assert sorted(a["responseStatus"] for a in await app.attempts(event.id)) == [200, 500]
    got = await app.api.ok("GET", f"/v1/webhooks/endpoints/{endpoint['id']}", app.key())
    assert got["failingSince"] is None and got["status"] == "enabled"
    assert await _exhausted(pool, event.id) == 0


async def test_an_answer_with_nul_bytes_is_recorded(app, worker, receivers, clock):
    async def nul(request: web.Request) -> web.StreamResponse:
        return web.Response(status=200, body=b"ok\x00\x01done")

    receiver = await receivers(nul)
    await app.endpoint(receiver.url)
    event = await app.customer(clock=clock)
    assert await worker.deliver_due() == 1
    [attempt] = await app.attempts(event.id)
    assert attempt["responseStatus"] == 200 and attempt["responseBody"] == "ok\ufffd\x01done"
    assert receiver.received[0].headers["accept-encoding"] == "identity"
    [delivery] = (await app.message(event.id))["deliveries"]
    assert delivery["status"] == "delivered"


@pytest.mark.parametrize("retry_after", ["100000000000000", "Wed, 21 Oct 2015 07:28:00 GMT", "-5"])
async def test_an_absurd_retry_after_is_bounded(app, worker, receivers, clock, retry_after):
    async def busy(request: web.Request) -> web.StreamResponse:
        return web.Response(status=429, headers={"Retry-After": retry_after})

    receiver = await receivers(busy)
    await app.endpoint(receiver.url)
    event = await app.customer(clock=clock)
    assert await worker.deliver_due() == 1
    [delivery] = (await app.message(event.id))["deliveries"]
    assert delivery["status"] == "pending" and delivery["attempts"] == 1
    from datetime import datetime

    wait = datetime.fromisoformat(delivery["nextAttemptAt"]) - datetime.fromisoformat(
        delivery["lastAttemptAt"]
    )
    assert timedelta(seconds=3) < wait <= timedelta(hours=24, seconds=1), wait
    assert len(receiver.received) == 1


async def test_a_retry_asked_for_during_an_attempt_is_made_after_it(app, worker, receivers, clock):
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow_fail(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await release.wait()
        return web.Response(status=503)

    receiver = await receivers(slow_fail)  # then 200
    await app.endpoint(receiver.url)
    event = await app.customer(clock=clock)
    assert await worker.dispatch() == 1
    await asyncio.wait_for(arrived.wait(), 10)
    await app.api.ok("POST", f"/v1/webhooks/messages/{event.id}/retry", app.key(), 202, json={})
    release.set()
    await worker.settle()
    assert await worker.deliver_due() == 1  # now, not in 5 s
    assert receiver.ids == [event.id, event.id]
    [delivery] = (await app.message(event.id))["deliveries"]
    assert delivery["status"] == "delivered"


async def test_deliveries_left_on_a_disabled_endpoint_do_not_hold_up_others(
    app, worker, receivers, clock, pool
):
    dead, alive = await receivers(), await receivers()
    gone = await app.endpoint(dead.url)
    await app.endpoint(alive.url)
    async with pool.acquire() as conn:  # as a fan-out racing the disable could leave them
        await conn.execute(
            "UPDATE endpoints SET status = 'disabled', disabled_reason = 'gone' WHERE id = $1",
            gone["id"],
        )
    events = [await app.customer(n, clock=clock) for n in range(3)]
    async with pool.acquire() as conn:
        for e in events:
            await conn.execute(
                "INSERT INTO deliveries (message_id, endpoint_id, tenant_id, app_id,"
                " next_attempt_at, created_at) VALUES ($1, $2, $3, $4, now(), now())",
                e.id,
                gone["id"],
                app.tenant_id,
                app.id,
            )
    assert await worker.deliver_due() == 3
    assert sorted(alive.ids) == sorted(e.id for e in events) and dead.received == []


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/hook",
        "http://" + "a" * 64 + ".example.com/hook",
        "http://example..com/hook",
        "http://127.0.0.1:99999/hook",
    ],
)
async def test_a_target_that_is_not_a_usable_url_is_a_400(app, url):
    r = await app.api.call("POST", "/v1/webhooks/endpoints", app.key(), json={"url": url})
    assert r.status_code == 400 and r.json()["field"] == "url", r.text
    listed = await app.api.ok("GET", "/v1/webhooks/endpoints", app.key())
    assert listed["data"] == []


@pytest.mark.parametrize(
    "address",
    [
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::a9fe:a9fe",  # IPv4-compatible metadata address
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b:1::1",  # local-use NAT64
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a00:1::",  # 6to4 of 10.0.0.1
        "fec0::1",  # site-local
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo of 10.0.0.1
    ],
)
def test_ipv6_forms_of_private_addresses_are_refused(address):
    assert not Guard().permits(ipaddress.ip_address(address))


def test_ipv6_forms_of_public_addresses_pass():
    for address in ("64:ff9b::5db8:d822", "2002:5db8:d822::1", "2606:4700::1111"):
        assert Guard().permits(ipaddress.ip_address(address)), address
