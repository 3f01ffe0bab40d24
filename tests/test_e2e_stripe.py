"""Stripe through the gateway on real processes, with Stripe's API faked on loopback:
a tenant connects its account, moves an app onto it, and a customer's checkout on
Stripe's page, Stripe's signed events and the entitlement check follow each other. The
last test scans every process's output and every response for the secrets."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackbe_common.testing.fake_stripe import FakeStripe

from .conftest import Tee, assert_error, bearer, new_app, new_tenant

SAID: list[str] = []  # every response body and header the tests got
SECRETS: list[str] = []


async def call(
    http: httpx.AsyncClient, method: str, path: str, key: str, status: int = 200, **kw: Any
) -> Any:
    r = await http.request(method, path, headers=bearer(key), **kw)
    SAID.append(f"{r.status_code} {dict(r.headers)} {r.text}")
    assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
    return r.json()


async def eventually(probe: Any, seconds: float = 10.0) -> Any:
    """The first truthy answer of ``probe()`` within ``seconds``."""
    for _ in range(int(seconds / 0.05)):
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("nothing came in time")


async def access(http: httpx.AsyncClient, key: str, customer: str) -> bool:
    answer = await call(http, "GET", f"/v1/entitlements/check/projects?customerId={customer}", key)
    return bool(answer["hasAccess"])


@pytest.fixture
async def connected(http: httpx.AsyncClient, fake_stripe: FakeStripe) -> dict[str, Any]:
    """A new tenant with a Stripe account connected and an app on it."""
    tenant_key = (await new_tenant(http))["apiKey"]
    secret_key, webhook_secret = (
        f"sk_test_{secrets.token_hex(12)}",
        f"whsec_{secrets.token_hex(12)}",
    )
    SECRETS.extend([secret_key, webhook_secret, tenant_key])
    fake_stripe.account_for(secret_key)
    body = {"secretKey": secret_key, "webhookSecret": webhook_secret}
    gateway = await call(http, "POST", "/v1/gateways/stripe", tenant_key, 201, json=body)
    app_id, key = await new_app(http, tenant_key)
    SECRETS.append(key)
    moved = await call(
        http, "PATCH", f"/v1/apps/{app_id}", tenant_key, json={"gatewayId": gateway["id"]}
    )
    assert (moved["gateway"], moved["gatewayId"]) == ("stripe", gateway["id"])
    return {
        "tenant_key": tenant_key,
        "gateway": gateway,
        "app_id": app_id,
        "key": key,
        "webhook_secret": webhook_secret,
    }


async def test_checkout_on_stripe_then_its_events_give_and_take_away_access(
    http: httpx.AsyncClient, gateway_url: str, fake_stripe: FakeStripe, connected: dict[str, Any]
) -> None:
    key, gateway = connected["key"], connected["gateway"]
    product = await call(http, "POST", "/v1/products", key, 201, json={"name": "Cloud"})
    plan = await call(
        http,
        "POST",
        "/v1/plans",
        key,
        201,
        json={
            "productId": product["id"],
            "name": "Pro",
            "priceCents": 2900,
            "currency": "USD",
            "interval": "month",
            "entitlements": {"projects": 10},
        },
    )

    async def mapped() -> str | None:
        found = await call(http, "GET", f"/v1/plans/{plan['id']}", key)
        return (found["gatewayMappings"].get("stripe") or {}).get("priceId")

    price = await eventually(mapped)  # made in Stripe by the worker, stored by the catalog
    assert fake_stripe.get(price)["metadata"]["stackbe_plan_id"] == plan["id"]
    customer = await call(http, "POST", "/v1/customers", key, 201, json={"email": "a@example.com"})
    session = await call(
        http,
        "POST",
        "/v1/checkout/session",
        key,
        201,
        json={
            "customerId": customer["id"],
            "planId": plan["id"],
            "successUrl": "https://shop.example/done",
            "cancelUrl": "https://shop.example/cancel",
        },
    )
    assert session["url"].startswith(fake_stripe.url)
    assert not await access(http, key, customer["id"])
    hook = gateway_url + gateway["webhookPath"]
    secret = connected["webhook_secret"]
    stripe_session = session["url"].rsplit("/", 1)[1]

    for event in fake_stripe.pay(stripe_session):
        assert await fake_stripe.send_event(hook, event, secret) == 200
    assert await eventually(lambda: access(http, key, customer["id"]))
    current = await call(http, "GET", f"/v1/subscriptions/current?customerId={customer['id']}", key)
    assert current["status"] == "active"
    stripe_sub = fake_stripe.get(stripe_session)["subscription"]

    for event in fake_stripe.fail_renewal(stripe_sub):
        assert await fake_stripe.send_event(hook, event, secret) == 200
    sub = await call(http, "GET", f"/v1/subscriptions/{current['id']}", key)
    assert sub["status"] == "past_due" and await access(http, key, customer["id"])  # grace

    tampered = fake_stripe.end(stripe_sub)[0]
    assert await fake_stripe.send_event(hook, tampered, "whsec_not_the_secret") == 400
    assert (await call(http, "GET", f"/v1/subscriptions/{current['id']}", key))["status"] == (
        "past_due"
    )
    assert await fake_stripe.send_event(hook, tampered, secret) == 200

    async def lost() -> bool:
        return not await access(http, key, customer["id"])

    assert await eventually(lost)
    ended = await call(http, "GET", f"/v1/subscriptions/{current['id']}", key)
    assert ended["status"] == "canceled"


async def test_a_connection_an_app_uses_is_not_deleted_and_an_unknown_one_is_refused(
    http: httpx.AsyncClient, connected: dict[str, Any]
) -> None:
    tenant_key, gateway = connected["tenant_key"], connected["gateway"]

    r = await http.delete(f"/v1/gateways/{gateway['id']}", headers=bearer(tenant_key))
    SAID.append(r.text)
    assert_error(r, 409, "GATEWAY_IN_USE")
    unknown = await http.patch(
        f"/v1/apps/{connected['app_id']}",
        headers=bearer(tenant_key),
        json={"gatewayId": "gw_" + "0" * 26},
    )
    assert_error(unknown, 400, "VALIDATION_ERROR")
    listed = await call(http, "GET", "/v1/gateways", tenant_key)
    assert [g["id"] for g in listed["data"]] == [gateway["id"]]
    other = (await new_tenant(http))["apiKey"]
    assert (await call(http, "GET", "/v1/gateways", other))["data"] == []
    r = await http.delete(f"/v1/gateways/{gateway['id']}", headers=bearer(other))
    assert_error(r, 404, "NOT_FOUND")


def test_no_secret_in_any_response_or_in_the_output_of_any_process(platform_log: Tee) -> None:
    """Runs last in this file: every process's output so far (all the end-to-end tests
    this worker ran) and every response above."""
    platform_log.flush()
    output = Path(platform_log.path).read_text(encoding="utf-8")
    assert "stripe.event_taken" in output and len(SECRETS) >= 8
    said = "\n".join(SAID)
    assert [s for s in SECRETS if s in output] == []
    assert [s for s in SECRETS if s.startswith(("sk_", "whsec_")) and s in said] == []
