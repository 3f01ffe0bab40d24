"""StackBE runs on StackBE, on real processes: the bootstrap makes "StackBE Billing" and
its plans from the plans file; every tenant is its customer on Free; tenants' limits are
their entitlements, checked through the public API; upgrading is a sandbox checkout.

The plans come from a copy of config/billing-plans.toml, so the test can edit it as an
operator would. Every tenant of this test platform is limited from here on, which the
other end-to-end tests (one or two apps per tenant) stay within."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import assert_error, bearer, new_tenant, pay_hosted_checkout

PLANS = Path(__file__).parents[1] / "config" / "billing-plans.toml"
MONTH = 31 * 86_400


@pytest.fixture
async def http(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A patient client: a tenant's first limited creation may wait for its enrolment."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        yield client


def run_bootstrap(platform: Any, plans: Path) -> str:
    env = {
        **platform.env,
        "STACKBE_GATEWAY_URL": platform.url,
        "STACKBE_LOG_JSON": "false",
    }
    done = subprocess.run(
        [sys.executable, "-m", "stackbe_identity.bootstrap", "--plans", str(plans)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def billing(platform: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    plans = tmp_path_factory.mktemp("billing") / "plans.toml"
    shutil.copy(PLANS, plans)
    first = run_bootstrap(platform, plans)
    key = re.search(r"StackBE Billing app key \(shown once[^)]*\): (\S+)", first)
    assert key, first
    return {"plans": plans, "key": key.group(1), "first": first}


async def eventually(probe: Any, seconds: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        got = await probe()
        if got or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.05)


async def create_app(http: httpx.AsyncClient, tenant_key: str, n: int) -> httpx.Response:
    return await http.post("/v1/apps", headers=bearer(tenant_key), json={"name": f"App {n}"})


async def test_the_bootstrap_makes_the_plans_and_a_second_run_changes_nothing(
    http, billing, platform
):
    assert "created the tenant StackBE" in billing["first"]
    for code in ("free", "pro", "scale"):
        assert f"plan {code}: created" in billing["first"]
    again = run_bootstrap(platform, billing["plans"])
    assert "nothing changed" in again and "created" not in again, again
    assert "app key" not in again  # shown once
    plans = (await http.get("/v1/plans?limit=100", headers=bearer(billing["key"]))).json()
    by_name = {p["name"]: p for p in plans["data"] if p["status"] == "active"}
    assert {n: (p["priceCents"], p["entitlements"]) for n, p in by_name.items()} == {
        "Free": (0, {"apps": 3, "webhookEndpoints": 3}),
        "Pro": (2900, {"apps": 10, "webhookEndpoints": 10}),
        "Scale": (9900, {"apps": -1, "webhookEndpoints": -1}),
    }
    third = run_bootstrap(platform, billing["plans"])
    plans_after = (await http.get("/v1/plans?limit=100", headers=bearer(billing["key"]))).json()
    assert plans_after == plans and "nothing changed" in third


async def test_a_tenant_grows_from_free_to_pro_and_back(http, billing):
    tenant = await new_tenant(http)
    key = tenant["apiKey"]
    apps = []
    for n in range(3):
        r = await create_app(http, key, n)
        assert r.status_code == 201, r.text
        apps.append(r.json()["id"])
    refused = await create_app(http, key, 3)
    assert_error(refused, 403, "USAGE_LIMIT_EXCEEDED")
    message = refused.json()["message"]
    assert "Free" in message and "3" in message, message
    listed = (await http.get("/v1/apps", headers=bearer(key))).json()["data"]
    assert len(listed) == 3  # nothing was created

    # The tenant is a customer of StackBE Billing: externalId = tenant id, owner email.
    platform_key = bearer(billing["key"])
    found = (
        await http.get(f"/v1/customers?externalId={tenant['tenant']['id']}", headers=platform_key)
    ).json()["data"]
    assert [c["email"] for c in found] == [tenant["ownerEmail"]]

    summary = (await http.get("/v1/billing", headers=bearer(key))).json()
    assert summary["plan"]["name"] == "Free" and summary["subscription"]["status"] == "active"
    assert summary["usage"] == {
        "apps": {"used": 3, "limit": 3},
        "webhookEndpoints": {"used": 0, "limit": 3},
    }
    offered = {p["name"]: p for p in summary["plans"]}
    assert set(offered) == {"Pro", "Scale"}
    assert offered["Pro"]["priceCents"] == 2900 and offered["Pro"]["entitlements"]["apps"] == 10

    # Upgrade: a sandbox checkout on StackBE Billing, paid on its hosted page.
    session = await http.post(
        "/v1/billing/checkout",
        headers=bearer(key),
        json={
            "planId": offered["Pro"]["id"],
            "successUrl": "https://tenant.example/upgraded",
            "cancelUrl": "https://tenant.example/billing",
        },
    )
    assert session.status_code == 201, session.text
    url = session.json()["url"]
    path = "/" + url.split("/", 3)[3]
    page = await http.get(path)
    assert page.status_code == 200 and "Pro" in page.text
    paid = await pay_hosted_checkout(http, path)
    assert paid.status_code == 303 and paid.headers["location"] == "https://tenant.example/upgraded"

    async def fourth() -> httpx.Response | None:
        r = await create_app(http, key, 3)
        return r if r.status_code == 201 else None

    created = await eventually(fourth)
    assert created is not None, "the 4th app was refused on Pro"
    apps.append(created.json()["id"])
    summary = (await http.get("/v1/billing", headers=bearer(key))).json()
    assert summary["plan"]["name"] == "Pro" and summary["usage"]["apps"] == {
        "used": 4,
        "limit": 10,
    }

    # Cancel at period end, then StackBE Billing's test clock passes the period's end.
    sub = summary["subscription"]
    r = await http.post(
        f"/v1/subscriptions/{sub['id']}/cancel", headers=platform_key, json={"atPeriodEnd": True}
    )
    assert r.status_code == 200, r.text
    still = await create_app(http, key, 4)  # still Pro until the period ends
    assert still.status_code == 201, still.text
    apps.append(still.json()["id"])
    r = await http.post(
        "/v1/sandbox/clock/advance", headers=platform_key, json={"seconds": MONTH + 86_400}
    )
    assert r.status_code == 200, r.text

    async def refused_again() -> httpx.Response | None:
        r = await create_app(http, key, 5)
        if r.status_code == 201:  # Pro's end has not reached the check yet: undo, try again
            gone = await http.delete(f"/v1/apps/{r.json()['id']}", headers=bearer(key))
            assert gone.status_code == 200, gone.text
        return r if r.status_code == 403 else None

    again = await eventually(refused_again)
    assert again is not None, "a new app was still allowed after Pro ended"
    assert_error(again, 403, "USAGE_LIMIT_EXCEEDED")
    assert "Free" in again.json()["message"]  # back on Free, with 5 apps of 3
    for app_id in apps:  # the existing apps still answer
        r = await http.get(f"/v1/apps/{app_id}", headers=bearer(key))
        assert r.status_code == 200, r.text


async def test_webhook_endpoints_are_limited_over_all_the_tenants_apps(http, billing):
    tenant = await new_tenant(http)
    key = tenant["apiKey"]
    apps = [(await create_app(http, key, n)).json()["id"] for n in range(2)]
    for n in range(3):
        r = await http.post(
            "/v1/webhooks/endpoints",
            headers={**bearer(key), "X-StackBE-App": apps[n % 2]},
            json={"url": f"http://127.0.0.1:9/hook-{n}"},
        )
        assert r.status_code == 201, r.text
    r = await http.post(
        "/v1/webhooks/endpoints",
        headers={**bearer(key), "X-StackBE-App": apps[1]},
        json={"url": "http://127.0.0.1:9/hook-4"},
    )
    assert_error(r, 403, "USAGE_LIMIT_EXCEEDED")
    assert "Free" in r.json()["message"] and "webhook endpoints" in r.json()["message"]
    summary = (await http.get("/v1/billing", headers=bearer(key))).json()
    assert summary["usage"]["webhookEndpoints"] == {"used": 3, "limit": 3}


async def test_the_plans_file_decides_the_limits(http, billing, platform):
    """Identity holds no limits: edit the file, run the bootstrap, and the limit moves."""
    edited = billing["plans"].read_text().replace("apps = 3,", "apps = 1,", 1)
    assert edited != billing["plans"].read_text()
    billing["plans"].write_text(edited)
    try:
        out = run_bootstrap(platform, billing["plans"])
        assert "plan free: updated entitlements" in out, out
        tenant = await new_tenant(http)
        key = tenant["apiKey"]
        assert (await create_app(http, key, 0)).status_code == 201
        r = await create_app(http, key, 1)
        assert_error(r, 403, "USAGE_LIMIT_EXCEEDED")
        assert "allows 1 apps" in r.json()["message"]
    finally:
        billing["plans"].write_text(PLANS.read_text())
        restored = run_bootstrap(platform, billing["plans"])
        assert "plan free: updated entitlements" in restored, restored


def test_the_bootstrap_refuses_a_plans_file_without_one_free_default(tmp_path, platform):
    bad = tmp_path / "plans.toml"
    bad.write_text(PLANS.read_text().replace("default = true\n", ""))
    env = {**platform.env, "STACKBE_GATEWAY_URL": platform.url}
    done = subprocess.run(
        [sys.executable, "-m", "stackbe_identity.bootstrap", "--plans", str(bad)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "default" in done.stderr + done.stdout


async def test_one_owner_of_two_tenants_is_two_customers(http, billing):
    """A person who owns two tenants: the second tenant's customer is tagged with its id."""
    first = await new_tenant(http)
    r = await http.post("/v1/tenants", json={"name": "Second", "ownerEmail": first["ownerEmail"]})
    assert r.status_code == 201, r.text
    second = r.json()
    for tenant_key in (first["apiKey"], second["apiKey"]):
        assert (await create_app(http, tenant_key, 0)).status_code == 201
        summary = await http.get("/v1/billing", headers=bearer(tenant_key))
        assert summary.status_code == 200, summary.text
        assert summary.json()["plan"]["name"] == "Free"
    local, domain = first["ownerEmail"].split("@")
    found = (
        await http.get(
            f"/v1/customers?externalId={second['tenant']['id']}",
            headers=bearer(billing["key"]),
        )
    ).json()["data"]
    assert [c["email"] for c in found] == [f"{local}+{second['tenant']['id']}@{domain}"]


async def test_a_busy_tenant_asking_about_its_plan_does_not_stall_others(http, billing):
    tenant = await new_tenant(http)
    key = tenant["apiKey"]
    answers = await asyncio.gather(
        *(http.get("/v1/billing", headers=bearer(key)) for _ in range(6)),
        create_app(http, key, 0),
    )
    assert [r.status_code for r in answers] == [200] * 6 + [201], [r.text for r in answers]


async def test_only_the_plans_of_the_file_are_offered_and_sold(http, billing):
    """A plan an operator adds to StackBE Billing by hand is not for tenants."""
    platform_key = bearer(billing["key"])
    plans = (await http.get("/v1/plans?limit=100", headers=platform_key)).json()["data"]
    product = plans[0]["productId"]
    private = await http.post(
        "/v1/plans",
        headers=platform_key,
        json={
            "productId": product,
            "name": "Friends",
            "priceCents": 0,
            "currency": "USD",
            "interval": "month",
            "entitlements": {"apps": -1, "webhookEndpoints": -1},
        },
    )
    assert private.status_code == 201, private.text
    tenant = await new_tenant(http)
    summary = (await http.get("/v1/billing", headers=bearer(tenant["apiKey"]))).json()
    assert "Friends" not in {p["name"] for p in summary["plans"]}
    r = await http.post(
        "/v1/billing/checkout",
        headers=bearer(tenant["apiKey"]),
        json={
            "planId": private.json()["id"],
            "successUrl": "https://tenant.example/ok",
            "cancelUrl": "https://tenant.example/no",
        },
    )
    assert_error(r, 404, "PLAN_NOT_FOUND")
    await http.post(f"/v1/plans/{private.json()['id']}/deprecate", headers=platform_key)
