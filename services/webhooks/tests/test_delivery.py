"""Delivery to real HTTP receivers on loopback, with retries driven by a clock the tests
move; signatures checked by the independent ``standardwebhooks`` package."""

from __future__ import annotations

import json
from datetime import timedelta

import nats
from standardwebhooks import Webhook

from stackbe_common import bus
from stackbe_common.outbox import OutboxRelay
from stackbe_common.stopping import Stopping
from stackbe_events import decode
from stackbe_webhooks.delivery import SCHEDULE


def verify(secret: str, received) -> dict:
    """What a receiver does: check the Standard Webhooks signature, read the event."""
    return Webhook(secret).verify(received.body, received.headers)


async def test_a_message_is_signed_and_delivered_once(app, worker, receivers, clock):
    receiver = await receivers()
    endpoint = await app.endpoint(receiver.url)
    assert endpoint["secret"].startswith("whsec_") and endpoint["status"] == "enabled"
    event = await app.customer(clock=clock)
    assert await worker.deliver_due() == 1
    [got] = receiver.received
    payload = verify(endpoint["secret"], got)
    assert payload["id"] == event.id == got.headers["webhook-id"]
    assert payload["type"] == "customer.created" and payload["appId"] == app.id
    assert payload["data"]["customer"]["id"] == event.customer_id
    assert got.headers["content-type"] == "application/json"
    message = await app.message(event.id)
    [delivery] = message["deliveries"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    [attempt] = await app.attempts(event.id)
    assert attempt["responseStatus"] == 200 and attempt["responseBody"] == "answered 200"
    assert attempt["error"] is None and attempt["durationMs"] >= 0
    assert await worker.deliver_due() == 0  # nothing more is due


async def test_500_then_200_is_delivered_on_the_second_attempt_with_the_same_id(
    app, worker, receivers, clock
):
    receiver = await receivers(500)
    await app.endpoint(receiver.url)
    event = await app.customer(clock=clock)
    await worker.deliver_due()
    message = await app.message(event.id)
    [delivery] = message["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    assert delivery["lastResponseStatus"] == 500
    clock.advance(timedelta(seconds=3))  # 5 s -20% at the earliest: not yet
    assert await worker.deliver_due() == 0
    clock.advance(timedelta(seconds=4))  # 5 s +20% at the latest
    assert await worker.deliver_due() == 1
    assert receiver.ids == [event.id, event.id]
    [delivery] = (await app.message(event.id))["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
    statuses = [a["responseStatus"] for a in await app.attempts(event.id)]
    assert statuses == [500, 200]


async def test_410_disables_the_endpoint_and_says_so_on_nats(
    app, worker, receivers, clock, settings, pool
):
    receiver = await receivers(410)
    endpoint = await app.endpoint(receiver.url)
    event = await app.customer(clock=clock)
    await worker.deliver_due()
    got = await app.api.ok("GET", f"/v1/webhooks/endpoints/{endpoint['id']}", app.key())
    assert (got["status"], got["disabledReason"]) == ("disabled", "gone")
    [delivery] = (await app.message(event.id))["deliveries"]
    assert delivery["status"] == "failed"
    # Nothing more goes to a disabled endpoint.
    await app.customer(1, clock=clock)
    clock.advance(timedelta(hours=1))
    assert await worker.deliver_due() == 0
    assert len(receiver.received) == 1
    # The relay publishes it to JetStream, where any consumer reads it.
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        await bus.ensure_stream(js, "webhooks")
        await OutboxRelay(pool, js, "webhooks").publish_pending()
        sub = await js.pull_subscribe(
            "stackbe.webhooks.endpoint.disabled.v1", stream="STACKBE_WEBHOOKS"
        )
        found = [decode(m.subject, m.data) for m in await sub.fetch(100, timeout=2)]
    finally:
        await nc.close()
    [disabled] = [e for e in found if e.endpoint_id == endpoint["id"]]
    assert disabled.reason == "gone" and disabled.url == receiver.url
    assert (disabled.tenant_id, disabled.app_id) == (app.tenant_id, app.id)


async def _outbox(pool, subject: str, endpoint_id: str):
    """The event the service recorded for NATS (the relay publishes the outbox)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT payload FROM outbox WHERE subject = $1", subject)
    found = [decode(subject, bytes(r["payload"])) for r in rows]
    return next(e for e in found if e.endpoint_id == endpoint_id)


async def test_continuous_failure_for_five_days_disables_the_endpoint(
    app, worker, receivers, clock, pool
):
    receiver = await receivers(default=503)
    endpoint = await app.endpoint(receiver.url)
    await app.customer(0, clock=clock)
    await worker.deliver_due()
    for day in range(1, 5):  # an event a day, each failing: still enabled
        clock.advance(timedelta(days=1))
        await app.customer(day, clock=clock)
        await worker.deliver_due()
        got = await app.api.ok("GET", f"/v1/webhooks/endpoints/{endpoint['id']}", app.key())
        assert got["status"] == "enabled" and got["failingSince"] is not None, day
    clock.advance(timedelta(days=1, minutes=1))
    await app.customer(5, clock=clock)
    await worker.deliver_due()
    got = await app.api.ok("GET", f"/v1/webhooks/endpoints/{endpoint['id']}", app.key())
    assert (got["status"], got["disabledReason"]) == ("disabled", "failing")
    disabled = await _outbox(pool, "stackbe.webhooks.endpoint.disabled.v1", endpoint["id"])
    assert disabled.reason == "failing" and disabled.failing_since is not None


async def test_a_success_ends_the_failing_streak(app, worker, receivers, clock):
    receiver = await receivers(500)
    endpoint = await app.endpoint(receiver.url)
    await app.customer(clock=clock)
    await worker.deliver_due()
    got = await app.api.ok("GET", f"/v1/webhooks/endpoints/{endpoint['id']}", app.key())
    assert got["failingSince"] is not None
    clock.advance(timedelta(seconds=7))
    await worker.deliver_due()
    got = await app.api.ok("GET", f"/v1/webhooks/endpoints/{endpoint['id']}", app.key())
    assert got["failingSince"] is None and got["status"] == "enabled"


async def test_every_scheduled_attempt_then_the_message_is_exhausted(
    app, worker, receivers, clock, pool
):
    receiver = await receivers(default=500)
    endpoint = await app.endpoint(receiver.url)
    event = await app.customer(clock=clock)
    await worker.deliver_due()
    for wait in SCHEDULE:
        clock.advance(wait * 1.2 + timedelta(seconds=1))
        assert await worker.deliver_due() == 1
    assert len(receiver.received) == len(SCHEDULE) + 1 == 10
    [delivery] = (await app.message(event.id))["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("failed", 10)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT payload FROM outbox WHERE subject = 'stackbe.webhooks.message.exhausted.v1'"
        )
    exhausted = [decode("stackbe.webhooks.message.exhausted.v1", bytes(r["payload"])) for r in rows]
    mine = [e for e in exhausted if e.message_id == event.id]
    assert len(mine) == 1 and mine[0].endpoint_id == endpoint["id"] and mine[0].attempts == 10
    # The schedule spans more than three days; five days of failure were not reached.
    got = await app.api.ok("GET", f"/v1/webhooks/endpoints/{endpoint['id']}", app.key())
    assert got["status"] == "enabled"


async def test_retry_after_is_honoured_with_at_least_a_minute(app, worker, receivers, clock):
    async def busy(request):
        from aiohttp import web

        return web.Response(status=429, headers={"Retry-After": "2"})

    receiver = await receivers(busy)
    await app.endpoint(receiver.url)
    event = await app.customer(clock=clock)
    await worker.deliver_due()
    [delivery] = (await app.message(event.id))["deliveries"]
    from datetime import datetime

    due = datetime.fromisoformat(delivery["nextAttemptAt"])
    last = datetime.fromisoformat(delivery["lastAttemptAt"])
    assert timedelta(seconds=59) < due - last <= timedelta(seconds=61)
    clock.advance(timedelta(seconds=30))
    assert await worker.deliver_due() == 0
    clock.advance(timedelta(seconds=31))
    assert await worker.deliver_due() == 1 and receiver.ids == [event.id, event.id]


async def test_redirects_are_failures_and_not_followed(app, worker, receivers, clock):
    target = await receivers()

    async def moved(request):
        from aiohttp import web

        raise web.HTTPFound(target.url)

    receiver = await receivers(moved)
    await app.endpoint(receiver.url)
    event = await app.customer(clock=clock)
    await worker.deliver_due()
    assert target.received == []
    [attempt] = await app.attempts(event.id)
    assert attempt["responseStatus"] == 302 and attempt["error"] == "HTTP 302"


async def test_a_long_answer_keeps_its_first_4_kb(app, worker, receivers, clock):
    async def chatty(request):
        from aiohttp import web

        return web.Response(status=500, text="x" * 10_000)

    receiver = await receivers(chatty)
    await app.endpoint(receiver.url)
    event = await app.customer(clock=clock)
    await worker.deliver_due()
    [attempt] = await app.attempts(event.id)
    assert attempt["responseBody"] == "x" * 4096


async def test_recover_resends_what_failed_since_then(app, worker, receivers, clock):
    receiver = await receivers(default=500)
    endpoint = await app.endpoint(receiver.url)
    events = [await app.customer(n, clock=clock) for n in range(3)]
    await worker.deliver_due()
    for wait in SCHEDULE:  # every message exhausted
        clock.advance(wait * 1.2 + timedelta(seconds=1))
        await worker.deliver_due()
    failed = await app.api.ok(
        "GET", f"/v1/webhooks/messages?endpointId={endpoint['id']}&status=failed", app.key()
    )
    assert {m["id"] for m in failed["data"]} == {e.id for e in events}
    receiver.default = 200
    before = len(receiver.received)
    since = events[1].occurred_at.isoformat()
    recovered = await app.api.ok(
        "POST", f"/v1/webhooks/endpoints/{endpoint['id']}/recover", app.key(), json={"since": since}
    )
    assert recovered == {"endpointId": endpoint["id"], "recovered": 2}
    assert await worker.deliver_due() == 2
    assert sorted(receiver.ids[before:]) == sorted(e.id for e in events[1:])
    delivered = await app.api.ok(
        "GET", f"/v1/webhooks/messages?endpointId={endpoint['id']}&status=delivered", app.key()
    )
    assert {m["id"] for m in delivered["data"]} == {e.id for e in events[1:]}


async def test_a_manual_retry_sends_one_message_again(app, worker, receivers, clock):
    receiver = await receivers()
    endpoint = await app.endpoint(receiver.url)
    event = await app.customer(clock=clock)
    await worker.deliver_due()
    retried = await app.api.ok(
        "POST", f"/v1/webhooks/messages/{event.id}/retry", app.key(), 202, json={}
    )
    assert retried["deliveries"][0]["status"] == "pending"
    assert await worker.deliver_due() == 1
    assert receiver.ids == [event.id, event.id]
    # To an endpoint the message never went to.
    other = await receivers()
    second = await app.endpoint(other.url)
    await app.api.ok(
        "POST",
        f"/v1/webhooks/messages/{event.id}/retry",
        app.key(),
        202,
        json={"endpointId": second["id"]},
    )
    await worker.deliver_due()
    assert other.ids == [event.id]
    assert len(receiver.received) == 2 and endpoint["id"] != second["id"]


async def test_during_a_rotation_both_secrets_sign(app, worker, receivers, clock):
    receiver = await receivers()
    endpoint = await app.endpoint(receiver.url)
    rotated = await app.api.ok(
        "POST", f"/v1/webhooks/endpoints/{endpoint['id']}/rotate-secret", app.key()
    )
    assert rotated["secret"] != endpoint["secret"] and rotated["secret"].startswith("whsec_")
    await app.customer(0, clock=clock)
    await worker.deliver_due()
    got = receiver.received[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert verify(endpoint["secret"], got)["type"] == "customer.created"  # the old one
    assert verify(rotated["secret"], got)["type"] == "customer.created"  # and the new one
    clock.advance(timedelta(hours=24, seconds=1))  # the old secret's day is over
    await app.customer(1, clock=clock)
    await worker.deliver_due()
    got = receiver.received[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    assert verify(rotated["secret"], got)["data"]["customer"]["email"] == "customer-1@example.com"
    try:
        verify(endpoint["secret"], got)
    except Exception as exc:  # standardwebhooks refuses the retired secret
        assert "signature" in str(exc).lower()
    else:
        raise AssertionError("the retired secret still verified")


async def test_event_type_filters_choose_the_endpoints(app, worker, receivers, clock):
    everything, customers, payments = await receivers(), await receivers(), await receivers()
    await app.endpoint(everything.url)
    await app.endpoint(customers.url, events=["customer.created"])
    await app.endpoint(payments.url, events=["payment.succeeded"])
    event = await app.customer(clock=clock)
    await worker.deliver_due()
    assert everything.ids == [event.id] and customers.ids == [event.id] and payments.ids == []


async def test_a_test_event_goes_to_its_endpoint_alone(app, worker, receivers, clock):
    first, second = await receivers(), await receivers()
    endpoint = await app.endpoint(first.url, events=["payment.failed"])
    await app.endpoint(second.url)
    sent = await app.api.ok("POST", f"/v1/webhooks/endpoints/{endpoint['id']}/test", app.key(), 202)
    assert sent["eventType"] == "webhook.test"
    await worker.deliver_due()
    assert first.ids == [sent["id"]] and second.ids == []
    body = json.loads(first.received[0].body)
    assert body["type"] == "webhook.test" and body["data"] == {"endpointId": endpoint["id"]}


async def test_events_published_to_jetstream_reach_the_endpoint(
    app, worker, receivers, clock, pool, settings
):
    """The consumers the worker runs, on the stream: an event redelivered is one message."""
    import asyncio

    from stackbe_common import bus
    from stackbe_common.consumer import Consumer
    from stackbe_common.ids import new_id
    from stackbe_events import encode
    from stackbe_webhooks.fanout import handlers

    receiver = await receivers()
    await app.endpoint(receiver.url)
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    await bus.ensure_stream(js, "identity")
    event = app.customer_created()
    for _ in range(2):  # published twice under different message ids: one message
        await js.publish(event.subject, encode(event), headers={"Nats-Msg-Id": new_id("dup")})
    consumer = Consumer(
        name=new_id("whtest"),
        context="identity",
        pool=pool,
        js=js,
        handlers=handlers(clock)["identity"],
    )
    task = asyncio.create_task(consumer.run(Stopping()))
    try:
        for _ in range(200):
            await worker.deliver_due()
            if receiver.received:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        await worker.deliver_due()
    finally:
        task.cancel()
        await nc.close()
    assert receiver.ids == [event.id]


async def test_retrying_a_message_waiting_for_its_next_attempt_sends_it_now(
    app, worker, receivers, clock
):
    receiver = await receivers(500)
    await app.endpoint(receiver.url)
    event = await app.customer(clock=clock)
    await worker.deliver_due()
    assert await worker.deliver_due() == 0  # the next attempt is seconds away
    await app.api.ok("POST", f"/v1/webhooks/messages/{event.id}/retry", app.key(), 202, json={})
    assert await worker.deliver_due() == 1
    assert receiver.ids == [event.id, event.id]
    [delivery] = (await app.message(event.id))["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
