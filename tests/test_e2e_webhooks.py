"""Webhooks through the gateway, on real processes: an app's endpoint receives its
customers', subscriptions' and payments' events, signed, with whole objects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from standardwebhooks import Webhook

from .conftest import hook_receiver
from .test_e2e_entitlements import EXAMPLE, example_shop, settle


class Receiver:
    """A real HTTP receiver on loopback that verifies what it is sent, as an app would."""

    def __init__(self) -> None:
        self.secret = ""
        self.events: list[dict[str, Any]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.events.append(Webhook(self.secret).verify(body, dict(request.headers)))
        return web.Response(status=204)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    made = Receiver()
    async with hook_receiver(made.handle) as made.url:
        yield made


async def test_a_checkout_reaches_the_apps_endpoint_signed_with_whole_objects(http, receiver):
    s, plan_id = await example_shop(http)
    endpoint = await s.call("POST", "/v1/webhooks/endpoints", 201, json={"url": receiver.url})
    receiver.secret = endpoint["secret"]
    listed = await s.call("GET", "/v1/webhooks/endpoints")
    assert [e["id"] for e in listed["data"]] == [endpoint["id"]]
    assert "secret" not in listed["data"][0]

    sub = await s.subscribe("Pro")
    wanted = {
        "customer.created",
        "checkout.completed",
        "subscription.created",
        "payment.succeeded",
        "entitlements.updated",
    }

    async def kinds() -> bool:
        return wanted <= {e["type"] for e in receiver.events}

    assert await settle(kinds, True, seconds=20), [e["type"] for e in receiver.events]
    [created] = receiver.of("subscription.created")
    assert created["appId"] == s.app_id
    data = created["data"]
    assert data["subscription"]["id"] == sub["id"] and data["subscription"]["status"] == "active"
    assert data["customer"]["id"] == sub["customerId"] and "@" in data["customer"]["email"]
    assert data["plan"]["id"] == plan_id and data["plan"]["entitlements"] == EXAMPLE
    [paid] = receiver.of("payment.succeeded")
    assert paid["data"]["payment"]["amountCents"] == 2900
    assert paid["data"]["subscription"]["id"] == sub["id"]
    access = [e for e in receiver.of("entitlements.updated") if e["data"]["status"] == "active"]
    assert access and access[-1]["data"]["entitlements"] == EXAMPLE

    # The log shows each message delivered, with its attempt.
    path = f"/v1/webhooks/messages?endpointId={endpoint['id']}&limit=100"

    async def all_delivered() -> bool:  # the last outcomes may still be being recorded
        found = (await s.call("GET", path))["data"]
        return all(m["deliveries"][0]["status"] == "delivered" for m in found)

    assert await settle(all_delivered, True, seconds=20)
    messages = await s.call("GET", path)
    assert {m["eventType"] for m in messages["data"]} >= wanted
    first = messages["data"][0]
    attempts = await s.call("GET", f"/v1/webhooks/messages/{first['id']}/attempts")
    assert attempts["data"][0]["responseStatus"] == 204
    assert json.loads(json.dumps(first["payload"]))["id"] == first["id"]


async def test_an_endpoint_on_a_private_address_is_refused_unless_allowed(http):
    """The platform under test allows loopback (as ``make dev`` does); other private
    ranges stay refused."""
    s, _ = await example_shop(http)
    r = await s.http.post(
        "/v1/webhooks/endpoints", headers=s.headers, json={"url": "http://10.1.2.3/hooks"}
    )
    assert r.status_code == 400 and r.json()["field"] == "url", r.text
    assert (await s.call("GET", "/v1/webhooks/endpoints"))["data"] == []
