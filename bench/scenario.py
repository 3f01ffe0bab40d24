"""What the bench does through the public API: seed an app, and time subscription changes
until the entitlement check reflects them."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

EXAMPLE = {"projects": 10, "apiCallsPerMonth": 100000, "features": ["analytics", "exports"]}


@dataclass(frozen=True)
class Seeded:
    app_key: str
    customers: list[str]
    subscriptions: list[str]

    @property
    def check_path(self) -> str:
        return f"/v1/entitlements/check/analytics?customerId={self.customers[0]}"


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str, key: str | None = None) -> None:
        self.session, self.base = session, base
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(
            method, self.base + path, json=body, headers=self.headers
        ) as r:
            answer = await r.json()
            if r.status >= 300:
                raise RuntimeError(f"{method} {path}: {r.status} {answer}")
            return answer


async def seed(url: str, customers: int) -> Seeded:
    async with aiohttp.ClientSession() as session:
        anonymous = Client(session, url)
        tenant = await anonymous.call(
            "POST",
            "/v1/tenants",
            {"name": "Bench", "ownerEmail": f"bench-{secrets.token_hex(4)}@example.com"},
        )
        admin = Client(session, url, tenant["apiKey"])
        app = await admin.call("POST", "/v1/apps", {"name": "Bench"})
        key = await admin.call("POST", f"/v1/apps/{app['id']}/api-keys", {"name": "bench"})
        api = Client(session, url, key["key"])
        product = await api.call("POST", "/v1/products", {"name": "Bench"})
        plan = await api.call(
            "POST",
            "/v1/plans",
            {
                "productId": product["id"],
                "name": "Pro",
                "priceCents": 2900,
                "currency": "USD",
                "interval": "month",
                "entitlements": EXAMPLE,
            },
        )
        ids, subs = [], []
        for n in range(customers):
            session_ = await api.call(
                "POST",
                "/v1/checkout/session",
                {
                    "email": f"customer-{n}@bench.example",
                    "planId": plan["id"],
                    "successUrl": "https://bench.example/ok",
                    "cancelUrl": "https://bench.example/no",
                },
            )
            done = await api.call("POST", f"/v1/sandbox/checkout/{session_['id']}/complete", {})
            ids.append(done["customerId"])
            subs.append(done["subscription"]["id"])
        seeded = Seeded(key["key"], ids, subs)
        await _until(api, seeded.check_path, True, timeout=30)
        return seeded


async def _until(api: Client, path: str, access: bool, timeout: float) -> float:
    """Poll the check until it says ``access``; the seconds it took."""
    started = time.perf_counter()
    while True:
        if (await api.call("GET", path))["hasAccess"] is access:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"the check did not turn {access} within {timeout} s")
        await asyncio.sleep(0.001)


async def freshness(url: str, seeded: Seeded, changes: int) -> dict[str, Any]:
    """Pause and resume one subscription ``changes`` times; after each committed change
    (its API call has answered), time until the check through the gateway reflects it."""
    seen: list[float] = []
    sub = seeded.subscriptions[0]
    async with aiohttp.ClientSession() as session:
        api = Client(session, url, seeded.app_key)
        for n in range(changes):
            pausing = n % 2 == 0
            await api.call(
                "POST", f"/v1/subscriptions/{sub}/{'pause' if pausing else 'resume'}", {}
            )
            seen.append(await _until(api, seeded.check_path, not pausing, timeout=10) * 1000)
    ordered = sorted(seen)
    return {
        "changes": len(seen),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)],
        "max_ms": ordered[-1],
    }
