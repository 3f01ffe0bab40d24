"""The isolation matrix, generated from the gateway's OpenAPI document.

A victim tenant owns one of everything in its app A1 (product, plan, customer, open
checkout session, subscription with payments, webhook endpoint and message, app key)
and at tenant level (a second app A2, a member, a Stripe connection). Then, for every
operation of the document whose path takes an id:

- app-level paths: the app key of another tenant's app, the app key of the victim's own
  other app A2, and another tenant's key naming A1 in ``X-StackBE-App`` each get 404;
- tenant-level paths: another tenant's key gets 404.

Every list, and every query by id, answered to those credentials holds none of the
victim's ids. Afterwards, everything the victim owns reads as it did before. A path
added to the API without an id to try here fails the test until it is given one.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from stackbe_common.testing.fake_stripe import FakeStripe

from .conftest import bearer, new_app, new_tenant
from .test_e2e_subscriptions import Shop

METHODS = ("get", "post", "put", "patch", "delete")

# Paths whose id is not a tenant's resource reached with a credential: each is public
# by design and guarded otherwise (said here, and in docs/reliability.md).
PUBLIC = {
    "/v1/gateways/stripe/{gateway_id}/webhook": "Stripe's events: checked by signature",
    "/v1/apps/{app_id}/auth/magic-link": "customers sign in: anonymous by design",
    "/v1/apps/{app_id}/auth/verify": "customers sign in: the link token is the credential",
    "/v1/apps/{app_id}/auth/confirm": "customers sign in: the link token is the credential",
    "/v1/apps/{app_id}/auth/session": "a customer's own token names its app",
}
TENANT_LEVEL = ("/v1/apps", "/v1/api-keys", "/v1/members", "/v1/gateways")
NOT_IDS = {"feature": "projects", "metric": "api_calls"}  # names, not ids

BODIES: dict[tuple[str, str], Any] = {
    ("patch", "/v1/apps/{app_id}"): {"name": "Hijacked"},
    ("post", "/v1/apps/{app_id}/api-keys"): {"name": "planted"},
    ("patch", "/v1/customers/{customer_id}"): {"email": "hijacked@example.com"},
    ("patch", "/v1/members/{member_id}"): {"role": "admin"},
    ("patch", "/v1/plans/{plan_id}"): {"name": "Hijacked"},
    ("patch", "/v1/products/{product_id}"): {"name": "Hijacked"},
    ("post", "/v1/sandbox/customers/{customer_id}/payment-behavior"): {"behavior": "fail"},
    ("patch", "/v1/webhooks/endpoints/{endpoint_id}"): {"description": "hijacked"},
    ("post", "/v1/subscriptions/{subscription_id}/change-plan"): {"planId": "{plan_id}"},
    ("post", "/v1/webhooks/endpoints/{endpoint_id}/recover"): {"since": "2026-01-01T00:00:00Z"},
}
# Query parameters that take one of the victim's ids.
ID_QUERIES = {
    "customerId": "customer_id",
    "subscriptionId": "subscription_id",
    "endpointId": "endpoint_id",
    "productId": "product_id",
}
# Fields that change by themselves while the test runs (key use, delivery attempts).
VOLATILE = {"lastUsedAt", "attempts", "nextAttemptAt", "lastAttemptAt", "status"}


@dataclass
class Victim:
    tenant_key: str
    app_key: str
    other_app_key: str  # A2's key: the same tenant, another app
    ids: dict[str, str] = field(default_factory=dict)  # path parameter -> id
    reads: list[str] = field(default_factory=list)  # what "unchanged" is checked on


@dataclass
class Attacker:
    tenant_key: str
    app_key: str


@pytest.fixture(scope="module")
async def api(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def victim(api: httpx.AsyncClient, fake_stripe: FakeStripe) -> Victim:
    tenant = await new_tenant(api)
    key = tenant["apiKey"]
    a1, a1_key = await new_app(api, key)
    _, a2_key = await new_app(api, key)
    shop = Shop(api, a1, a1_key)
    await shop.catalog(Pro=(1000, "month", 0))
    sub = await shop.subscribe("Pro")
    session = await shop.checkout("Pro")
    customer = await shop.call(
        "POST", "/v1/customers", 201, json={"email": f"v-{secrets.token_hex(3)}@example.com"}
    )
    endpoint = await shop.call(
        "POST", "/v1/webhooks/endpoints", 201, json={"url": "http://127.0.0.1:9/hooks"}
    )
    messages: list[dict[str, Any]] = []
    for _ in range(100):  # the customers' events reach the endpoint as messages
        messages = (await shop.call("GET", "/v1/webhooks/messages"))["data"]
        if messages:
            break
        await asyncio.sleep(0.1)
    assert messages, "no webhook message was made for the victim's app"
    stripe_key = f"sk_test_{secrets.token_hex(12)}"
    fake_stripe.account_for(stripe_key)
    as_tenant = bearer(key)
    gateway = await api.post(
        "/v1/gateways/stripe", headers=as_tenant, json={"secretKey": stripe_key}
    )
    assert gateway.status_code == 201, gateway.text
    app_keys = await api.get(f"/v1/apps/{a1}/api-keys", headers=as_tenant)
    members = await api.get("/v1/members", headers=as_tenant)
    assert app_keys.status_code == members.status_code == 200, (app_keys.text, members.text)
    found = Victim(tenant_key=key, app_key=a1_key, other_app_key=a2_key)
    found.ids = {
        "app_id": a1,
        "key_id": app_keys.json()["data"][0]["id"],
        "member_id": members.json()["data"][0]["id"],
        "gateway_id": gateway.json()["id"],
        "product_id": (await shop.call("GET", "/v1/products"))["data"][0]["id"],
        "plan_id": shop.plans["Pro"],
        "customer_id": sub["customerId"],
        "subscription_id": sub["id"],
        "session_id": session["id"],
        "endpoint_id": endpoint["id"],
        "message_id": messages[0]["id"],
    }
    found.ids["other_customer_id"] = customer["id"]
    found.reads = [
        f"/v1/apps/{a1}",
        f"/v1/apps/{a1}/api-keys",
        "/v1/members",
        "/v1/gateways",
        f"/v1/products/{found.ids['product_id']}",
        f"/v1/plans/{found.ids['plan_id']}",
        f"/v1/customers/{found.ids['customer_id']}",
        f"/v1/customers/{customer['id']}",
        f"/v1/subscriptions/{sub['id']}",
        f"/v1/payments?subscriptionId={sub['id']}",
        f"/v1/checkout/session/{session['id']}",
        f"/v1/webhooks/endpoints/{endpoint['id']}",
    ]
    return found


@pytest.fixture(scope="module")
async def attacker(api: httpx.AsyncClient) -> Attacker:
    key = (await new_tenant(api))["apiKey"]
    _, app_key = await new_app(api, key)
    return Attacker(tenant_key=key, app_key=app_key)


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, ops in sorted(document["paths"].items())
        for method, op in ops.items()
        if method in METHODS
    ]


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


async def _snapshot(api: httpx.AsyncClient, victim: Victim) -> dict[str, Any]:
    seen = {}
    for path in victim.reads:
        headers = bearer(victim.tenant_key if _tenant_level(path) else victim.app_key)
        r = await api.get(path, headers=headers)
        assert r.status_code == 200, (path, r.text)
        seen[path] = _stable(r.json())
    return seen


def _tenant_level(path: str) -> bool:
    return any(path == p or path.startswith((p + "/", p + "?")) for p in TENANT_LEVEL)


def _credentials(
    path: str, victim: Victim, attacker: Attacker, *, listing: bool
) -> dict[str, dict[str, str]]:
    naming = {**bearer(attacker.tenant_key), "X-StackBE-App": victim.ids["app_id"]}
    if listing:  # lists and queries: every foreign credential there is
        return {
            "another tenant's key": bearer(attacker.tenant_key),
            "another tenant's app key": bearer(attacker.app_key),
            "the same tenant's other app key": bearer(victim.other_app_key),
            "another tenant's key naming the app": naming,
        }
    if _tenant_level(path):
        return {"another tenant's key": bearer(attacker.tenant_key)}
    return {
        "another tenant's app key": bearer(attacker.app_key),
        "the same tenant's other app key": bearer(victim.other_app_key),
        "another tenant's key naming the app": naming,
    }


def _foreign(text: str, victim: Victim, asked: Any) -> bool:
    """Whether a victim's id shows that the request did not itself name: a query by id
    may echo the id it was given (as for an unknown id; docs/entitlements.md), no more."""
    return any(v in text for v in set(victim.ids.values()) - set(asked))


def _refused(r: httpx.Response) -> bool:
    """404 in the documented body: nothing says whether the id exists elsewhere."""
    return r.status_code == 404 and str(r.json().get("code", "")).endswith("NOT_FOUND")


async def test_every_id_path_is_404_to_other_tenants_and_apps_and_lists_hold_no_foreign_rows(
    api: httpx.AsyncClient, victim: Victim, attacker: Attacker
) -> None:
    document = (await api.get("/openapi.json")).json()
    before = await _snapshot(api, victim)
    tried, leaks, unmapped = 0, [], []
    for method, path, op in _operations(document):
        if path in PUBLIC:
            continue
        params = op.get("parameters", [])
        names = [p["name"] for p in params if p["in"] == "path"]
        if any(n not in victim.ids and n not in NOT_IDS for n in names):
            unmapped.append(f"{method.upper()} {path}")
            continue
        by_id = any(n in victim.ids for n in names)
        query = {
            p["name"]: victim.ids[ID_QUERIES[p["name"]]]
            for p in params
            if p["in"] == "query" and p["name"] in ID_QUERIES
        }
        body = BODIES.get((method, path), {} if "requestBody" in op else None)
        if isinstance(body, dict):  # a body may name the victim's ids too
            body = {k: v.format(**victim.ids) if isinstance(v, str) else v for k, v in body.items()}
        url = path.format(**NOT_IDS, **victim.ids)
        if by_id or method == "get":
            credentials = _credentials(path, victim, attacker, listing=not by_id)
        else:  # creating: only by naming the victim's app, which must be refused
            credentials = {
                "another tenant's key naming the app": {
                    **bearer(attacker.tenant_key),
                    "X-StackBE-App": victim.ids["app_id"],
                }
            }
        for who, headers in credentials.items():
            r = await api.request(method, url, headers=headers, params=query, json=body)
            tried += 1
            what = f"{method.upper()} {url} {query or ''} as {who}: {r.status_code} {r.text[:160]}"
            naming = "X-StackBE-App" in headers and not _tenant_level(path)
            if by_id or naming or (method != "get"):
                if not _refused(r):
                    leaks.append(what)
            elif r.status_code >= 500 or _foreign(r.text, victim, asked=query.values()):
                leaks.append(what)  # a list or a query: never a foreign row
    assert unmapped == [], f"paths with an id this test cannot fill: {unmapped}"
    assert leaks == [], "\n".join(leaks)
    assert tried > 150  # the matrix did run over the document
    after = await _snapshot(api, victim)
    for path in before:
        assert after[path] == before[path], f"{path} changed:\n{json.dumps(after[path])}"
