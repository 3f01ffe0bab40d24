"""SIGTERM to a busy ``serve`` process: requests in flight are finished, none is lost.

Twenty connections to Stripe are asked for at once while Stripe (the fake, at the network
edge) holds its answers, so each request is certainly inside the service when the signal
arrives. The service stops taking connections, and every request in flight still gets its
answer and its row."""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest

from stackbe_common.devstack.processes import Child
from stackbe_common.ids import new_id
from stackbe_common.infra import free_port
from stackbe_common.scope import sign_scope
from stackbe_common.testing.fake_stripe import FakeStripe
from stackbe_common.testing.plugin import settings_env
from stackbe_subscriptions.config import SubscriptionsSettings

from .conftest import App

IN_FLIGHT = 20


@pytest.fixture
def serving(
    stripe_settings: SubscriptionsSettings, subscriptions_db: str
) -> Iterator[tuple[Child, str]]:
    port = free_port()
    child = Child(
        "subscriptions",
        [sys.executable, "-m", "stackbe_subscriptions", "serve", "--port", str(port)],
        settings_env(stripe_settings),
        output=sys.stderr,
        lock=threading.Lock(),
        health_url=f"http://127.0.0.1:{port}/health",
    ).start()
    try:
        child.wait_healthy()
        yield child, f"http://127.0.0.1:{port}"
    finally:
        child.kill()


async def _refused(url: str) -> bool:
    try:
        async with httpx.AsyncClient() as fresh:
            await fresh.get(url + "/health", timeout=1)
    except httpx.TransportError:
        return True
    return False


async def test_sigterm_finishes_every_request_in_flight(
    serving: tuple[Child, str], fake: FakeStripe, db, internal_secret: bytes
) -> None:
    child, url = serving
    tenant = App(tenant_id=new_id("ten"), id=new_id("app"), db=db)
    headers = {"x-stackbe-scope": sign_scope(tenant.tenant(), internal_secret)}
    keys = [f"sk_test_{secrets.token_hex(16)}" for _ in range(IN_FLIGHT)]
    for key in keys:
        fake.account_for(key)
    asked = len(fake.calls_to("GET", "/v1/account"))
    fake.hold()
    try:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            requests = [
                asyncio.create_task(
                    client.post(
                        "/v1/gateways/stripe",
                        json={"secretKey": key, "webhookSecret": f"whsec_{secrets.token_hex(8)}"},
                    )
                )
                for key in keys
            ]
            for _ in range(600):  # every request has reached Stripe: it is in flight
                if len(fake.calls_to("GET", "/v1/account")) - asked == IN_FLIGHT:
                    break
                await asyncio.sleep(0.05)
            assert len(fake.calls_to("GET", "/v1/account")) - asked == IN_FLIGHT
            child.signal(signal.SIGTERM)
            for _ in range(200):  # the service stops taking connections ...
                if await _refused(url):
                    break
                await asyncio.sleep(0.05)
            assert await _refused(url)
            assert child.running()  # ... while it still holds the requests
            fake.release()
            answers = await asyncio.gather(*requests)
    finally:
        fake.release()
    assert [r.status_code for r in answers] == [201] * IN_FLIGHT, [r.text for r in answers]
    assert await asyncio.to_thread(child.wait, 30) == 0
    rows = await db.fetch("SELECT id FROM gateways WHERE tenant_id = $1", tenant.tenant_id)
    assert sorted(r["id"] for r in rows) == sorted(r.json()["id"] for r in answers)
