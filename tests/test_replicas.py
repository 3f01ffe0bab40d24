"""Two replicas of every process side by side on one Postgres and one NATS: two platforms
(serve, worker and gateway each), with the same secrets, as two pods of each Deployment
would run. Requests go through both gateways; the workers share the durable consumers,
the outboxes, the scheduler's due subscriptions and the webhook deliveries. In the middle
of the renewals, replica A's subscriptions and webhooks workers get SIGTERM, as a rolling
update would send, and replica B carries on.

Each event is handled once (one webhook message per event, each delivered once), each
scheduled renewal runs once (one renewal payment, one renewal event), and nothing is
lost."""

from __future__ import annotations

import asyncio
import io
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web

from stackbe_common.devstack import Platform
from stackbe_common.devstack.secretfile import generate_secrets
from stackbe_common.infra import free_ports
from stackbe_common.testing.plugin import fresh_database, fresh_nats_server
from stackbe_events.subscriptions import PaymentSucceeded

from .conftest import SERVICES, hook_receiver, new_app, new_tenant, read_events
from .test_e2e_subscriptions import Shop, moment

PER_REPLICA = 8  # subscriptions bought through each replica's gateway
SUBSCRIPTIONS = 2 * PER_REPLICA
WAVE_GAP_SECONDS = 6  # the second wave still due after replica A has stopped, under load too


class Labelled(io.TextIOBase):
    """A replica's output on stderr, each line marked with the replica's letter."""

    def __init__(self, letter: str) -> None:
        self.letter = letter

    def write(self, text: str) -> int:
        return sys.stderr.write("".join(f"{self.letter}:{line}" for line in text.splitlines(True)))

    def flush(self) -> None:
        sys.stderr.flush()


@pytest.fixture(scope="module")
def nats_for_replicas() -> Iterator[str]:
    with fresh_nats_server() as url:
        yield url


@pytest.fixture(scope="module")
async def replicas(
    pg_server_url: str, nats_for_replicas: str
) -> AsyncIterator[tuple[list[Platform], list[str]]]:
    async with fresh_database(pg_server_url, "stackbe_replicas", as_service=True) as database_url:
        env = {
            **generate_secrets(),  # one set for both, as one Secret serves every pod
            "STACKBE_DEV": "false",
            "STACKBE_DATABASE_POOL_SIZE": "3",
        }
        sides = [Platform(services=list(SERVICES), output=Labelled(x)) for x in "AB"]
        try:
            urls = []
            for side in sides:
                ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
                urls.append(
                    await asyncio.to_thread(
                        side.start, database_url, nats_for_replicas, ports=ports, env=env
                    )
                )
            yield sides, urls
        finally:
            for side in sides:
                await asyncio.to_thread(side.stop)


class Receiver:
    """The app's webhook endpoint: every delivery, by webhook-id and type."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.got.append((request.headers["webhook-id"], body["type"]))
        return web.Response(status=204)

    def of(self, kind: str) -> int:
        return sum(1 for _, k in self.got if k == kind)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    made = Receiver()
    async with hook_receiver(made.handle) as url:
        yield made, url


async def _until(probe: Any, seconds: float, what: str) -> None:
    """Wait for ``await probe()``; a bound against hanging, not a speed assertion."""
    for _ in range(int(seconds * 4)):
        if await probe():
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"gave up waiting: {what}")


async def _at_least(count: Any, n: int) -> bool:
    return bool(await count() >= n)


def _stop_gently(platform: Platform, name: str) -> int:
    child = platform.process(name)
    child.expected_exit = True
    child.signal(signal.SIGTERM)
    return child.wait(60)


async def test_two_replicas_handle_each_event_deliver_each_webhook_and_renew_once(
    replicas: tuple[list[Platform], list[str]],
    receiver: tuple[Receiver, str],
    nats_for_replicas: str,
) -> None:
    (side_a, _), urls = replicas
    hooks, hooks_url = receiver
    async with (
        httpx.AsyncClient(base_url=urls[0], timeout=30) as a,
        httpx.AsyncClient(base_url=urls[1], timeout=30) as b,
    ):
        tenant_key = (await new_tenant(a))["apiKey"]
        app_id, key = await new_app(b, tenant_key)
        shops = [Shop(a, app_id, key), Shop(b, app_id, key)]
        await shops[0].catalog(Pro=(1000, "month", 0))
        shops[1].plans = shops[0].plans
        await shops[1].call("POST", "/v1/webhooks/endpoints", 201, json={"url": hooks_url})
        # Two waves a few seconds apart: the second wave's renewals are still to come
        # when replica A's workers are stopped during the first wave's.
        subs = []
        for wave in range(2):
            if wave:
                await asyncio.sleep(WAVE_GAP_SECONDS)
            made = await asyncio.gather(*(s.subscribe("Pro") for s in shops * (PER_REPLICA // 2)))
            subs += made
        ids = {s["id"] for s in subs}
        assert len(ids) == SUBSCRIPTIONS

        # The app's clock to just before the first period ends: the renewals fall due in
        # the next few seconds, for the two schedulers to run. Once they have begun,
        # replica A's subscriptions and webhooks workers are stopped.
        first_end = min(moment(s["currentPeriodEnd"]) for s in subs)
        await shops[1].advance(to=(first_end - timedelta(seconds=1)).isoformat())

        async def renewals() -> int:
            found = await asyncio.gather(*(shops[0].payments(i) for i in ids))
            return sum(len(p) - 1 for p in found)

        await _until(lambda: _at_least(renewals, 1), 60, "the first renewal")
        stopped = await asyncio.gather(
            *(
                asyncio.to_thread(_stop_gently, side_a, name)
                for name in ("subscriptions-worker", "webhooks-worker")
            )
        )
        assert stopped == [0, 0]  # replica A's workers finished their work in hand and left
        assert await renewals() < SUBSCRIPTIONS  # ... in the middle of the renewals
        await _until(lambda: _at_least(renewals, SUBSCRIPTIONS), 90, "every renewal")
        for sub_id in ids:
            kinds = sorted(kind for _, kind, _ in await shops[1].payments(sub_id))
            assert kinds == ["initial", "renewal"], sub_id  # renewed once

        payments = await read_events(
            nats_for_replicas,
            "subscriptions",
            lambda e: isinstance(e, PaymentSucceeded) and e.payment.subscription_id in ids,
            2 * SUBSCRIPTIONS,
        )
        renewal_events = Counter(
            p.payment.subscription_id
            for p in payments
            if isinstance(p, PaymentSucceeded) and p.payment.kind == "renewal"
        )
        assert renewal_events == dict.fromkeys(ids, 1)

        wanted = {
            "customer.created": SUBSCRIPTIONS,
            "checkout.completed": SUBSCRIPTIONS,
            "subscription.created": SUBSCRIPTIONS,
            "payment.succeeded": 2 * SUBSCRIPTIONS,
        }

        async def delivered() -> bool:
            return all(hooks.of(kind) >= n for kind, n in wanted.items())

        await _until(delivered, 90, "the webhooks")
        counts = Counter(webhook_id for webhook_id, _ in hooks.got)
        assert set(counts.values()) == {1}, counts.most_common(3)  # each delivered once
        for kind, n in wanted.items():
            assert hooks.of(kind) == n, kind  # one message per event

        for shop in shops:  # either replica answers for every customer
            for sub in subs:
                path = f"/v1/entitlements/check/projects?customerId={sub['customerId']}"
                access = await shop.call("GET", path)
                assert access["hasAccess"] is True
