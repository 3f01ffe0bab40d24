"""The one-call answer through the gateway, on real processes: checks follow the
subscription's life by the sandbox test clock, usage resets with each period, and a
plan's new entitlements reach existing subscribers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx

from .conftest import bearer, new_app, new_tenant
from .test_e2e_subscriptions import Shop, moment

EXAMPLE = {"projects": 10, "apiCallsPerMonth": 100000, "features": ["analytics", "exports"]}
DAY = 86_400


async def example_shop(http: httpx.AsyncClient) -> tuple[Shop, str]:
    tenant_key = (await new_tenant(http))["apiKey"]
    app_id, key = await new_app(http, tenant_key, gracePeriodDays=7)
    s = Shop(http, app_id, key)
    product = await s.call("POST", "/v1/products", 201, json={"name": "Cloud"})
    plan = await s.call(
        "POST",
        "/v1/plans",
        201,
        json={
            "productId": product["id"],
            "name": "Pro",
            "priceCents": 2900,
            "currency": "USD",
            "interval": "month",
            "entitlements": EXAMPLE,
        },
    )
    s.plans["Pro"] = plan["id"]
    return s, plan["id"]


async def settle(probe: Any, expect: Any, seconds: float = 10.0) -> Any:
    """Poll until the answer is ``expect`` (events travel between services)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        got = await probe()
        if got == expect or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.02)


def checker(s: Shop, customer: str, feature: str, query: str = "") -> Any:
    async def probe() -> tuple[bool, Any]:
        body = await s.call("GET", f"/v1/entitlements/check/{feature}?customerId={customer}{query}")
        return body["hasAccess"], body.get("reason")

    return probe


async def test_the_example_plan_answers_every_rule_through_the_gateway(http):
    s, _ = await example_shop(http)
    sub = await s.subscribe("Pro")
    customer = sub["customerId"]
    assert await settle(checker(s, customer, "analytics"), (True, None)) == (True, None)
    projects = await s.call("GET", f"/v1/entitlements/check/projects?customerId={customer}")
    assert (projects["hasAccess"], projects["value"], projects["remaining"]) == (True, 10, 10)
    assert await checker(s, customer, "projects", "&quantity=11")() == (False, "LIMIT_EXCEEDED")
    assert await checker(s, customer, "unknownKey")() == (False, "FEATURE_NOT_AVAILABLE")
    whole = await s.call("GET", f"/v1/entitlements?customerId={customer}")
    assert (whole["planName"], whole["status"], whole["entitlements"]) == ("Pro", "active", EXAMPLE)


async def test_usage_resets_at_renewal_and_cancel_at_period_end_ends_access_then(http):
    s, _ = await example_shop(http)
    sub = await s.subscribe("Pro")
    customer = sub["customerId"]
    await settle(checker(s, customer, "analytics"), (True, None))
    used = await s.call(
        "POST",
        "/v1/usage",
        json={"customerId": customer, "metric": "projects", "quantity": 10, "enforce": True},
    )
    assert (used["currentUsage"], used["remaining"]) == (10, 0)
    assert await settle(checker(s, customer, "projects"), (False, "LIMIT_EXCEEDED")) == (
        False,
        "LIMIT_EXCEEDED",
    )

    await s.advance(to=sub["currentPeriodEnd"])  # renewed: a new period, usage from zero
    assert await settle(checker(s, customer, "projects"), (True, None)) == (True, None)
    usage = await s.call("GET", f"/v1/usage?customerId={customer}")
    assert usage["periodStart"] == sub["currentPeriodEnd"]
    assert {u["metric"]: u["currentUsage"] for u in usage["data"]}["projects"] == 0

    renewed = await s.sub(sub["id"])
    await s.act(sub["id"], "cancel", atPeriodEnd=True)
    end = moment(renewed["currentPeriodEnd"])
    await s.advance(to=(end - timedelta(seconds=1)).isoformat())
    assert await checker(s, customer, "analytics")() == (True, None)  # still until the end
    await s.advance(to=renewed["currentPeriodEnd"])
    assert await settle(checker(s, customer, "analytics"), (False, "NO_ACTIVE_SUBSCRIPTION")) == (
        False,
        "NO_ACTIVE_SUBSCRIPTION",
    )


async def test_past_due_keeps_access_until_the_grace_period_ends(http):
    s, _ = await example_shop(http)
    sub = await s.subscribe("Pro")
    customer = sub["customerId"]
    await s.call(
        "POST", f"/v1/sandbox/customers/{customer}/payment-behavior", json={"behavior": "fail"}
    )
    await s.advance(to=sub["currentPeriodEnd"])
    assert (await s.sub(sub["id"]))["status"] == "past_due"
    assert await settle(checker(s, customer, "analytics"), (True, None)) == (True, None)
    await s.advance(seconds=6 * DAY)
    assert await checker(s, customer, "analytics")() == (True, None)  # day 6 of 7
    await s.advance(seconds=DAY)
    assert await settle(checker(s, customer, "analytics"), (False, "NO_ACTIVE_SUBSCRIPTION")) == (
        False,
        "NO_ACTIVE_SUBSCRIPTION",
    )


async def test_a_plans_new_entitlements_reach_an_existing_subscriber(http):
    s, plan_id = await example_shop(http)
    sub = await s.subscribe("Pro")
    customer = sub["customerId"]
    await settle(checker(s, customer, "analytics"), (True, None))
    r = await s.http.patch(
        f"/v1/plans/{plan_id}",
        headers=s.headers,
        json={"entitlements": {**EXAMPLE, "features": ["exports"], "sso": True}},
    )
    assert r.status_code == 200
    assert await settle(checker(s, customer, "analytics"), (False, "FEATURE_NOT_AVAILABLE")) == (
        False,
        "FEATURE_NOT_AVAILABLE",
    )
    assert await checker(s, customer, "sso")() == (True, None)


async def test_the_customer_session_shows_the_subscription_and_entitlements(http, mailbox):
    s, _ = await example_shop(http)
    sub = await s.subscribe("Pro")
    customer = sub["customerId"]
    await settle(checker(s, customer, "analytics"), (True, None))
    minted = await s.call("POST", f"/v1/customers/{customer}/sessions", 201, json={})
    r = await http.get(f"/v1/apps/{s.app_id}/auth/session", headers=bearer(minted["sessionToken"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customer"]["id"] == customer
    assert (body["subscription"]["id"], body["subscription"]["status"]) == (sub["id"], "active")
    assert body["subscription"]["planName"] == "Pro" and body["entitlements"] == EXAMPLE

    # Paused: the session shows the subscription as it is, and no entitlements.
    await s.call("POST", f"/v1/subscriptions/{sub['id']}/pause", 200, json={})
    await settle(checker(s, customer, "analytics"), (False, "NO_ACTIVE_SUBSCRIPTION"))
    r = await http.get(f"/v1/apps/{s.app_id}/auth/session", headers=bearer(minted["sessionToken"]))
    body = r.json()
    assert (body["subscription"]["status"], body["entitlements"]) == ("paused", {}), body
