"""What the bench does through the public API, as a product backend would: seed a
tenant's apps, customers and subscriptions, then time what users wait for."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

EXAMPLE = {"projects": 10, "apiCallsPerMonth": 100000, "features": ["analytics", "exports"]}
PLANS = {  # name -> (price, entitlements); customers are spread over them in turn
    "Free": (0, {"projects": 1, "apiCallsPerMonth": 1000, "features": []}),
    "Starter": (900, {"projects": 3, "apiCallsPerMonth": 10000, "features": ["analytics"]}),
    "Pro": (2900, EXAMPLE),
    "Team": (9900, {"projects": -1, "apiCallsPerMonth": -1, "features": ["analytics", "sso"]}),
}
METERED = "apiCallsPerMonth"

Say = Callable[[str], None]


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {
        "count": len(ordered),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max_ms": ordered[-1],
    }


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str, key: str | None = None) -> None:
        self.session, self.base = session, base
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        ok: bool = True,
    ) -> tuple[int, Any]:
        async with self.session.request(
            method, self.base + path, json=body, headers={**self.headers, **(headers or {})}
        ) as r:
            answer = await r.json(content_type=None)
            if ok and r.status >= 300:
                raise RuntimeError(f"{method} {path}: {r.status} {answer}")
            return r.status, answer

    async def get(self, path: str, **kw: Any) -> Any:
        return (await self.call("GET", path, **kw))[1]

    async def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return (await self.call("POST", path, body if body is not None else {}, **kw))[1]


@dataclass
class Seeded:
    tenant_key: str
    app_id: str
    app_key: str
    plans: dict[str, str]
    customers: list[str] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)
    by_plan: dict[str, int] = field(default_factory=dict)
    other_apps: list[str] = field(default_factory=list)

    def check_path(self, customer: int = 0) -> str:
        return f"/v1/entitlements/check/analytics?customerId={self.pro_customer(customer)}"

    def pro_customer(self, n: int = 0) -> str:
        """The n-th customer on Pro (customers go round the plans in order)."""
        return self.customers[2 + 4 * n]


async def _gather_limited(jobs: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return await asyncio.gather(*(run(j) for j in jobs))


async def _catalog(api: Client, name: str) -> dict[str, str]:
    product = await api.post("/v1/products", {"name": name})
    plans = {}
    for plan, (cents, ents) in PLANS.items():
        made = await api.post(
            "/v1/plans",
            {
                "productId": product["id"],
                "name": plan,
                "priceCents": cents,
                "currency": "USD",
                "interval": "month",
                "entitlements": ents,
            },
        )
        plans[plan] = made["id"]
    return plans


async def _subscribe(api: Client, plan_id: str, email: str) -> tuple[str, str]:
    session = await api.post(
        "/v1/checkout/session",
        {
            "email": email,
            "planId": plan_id,
            "successUrl": "https://bench.example/ok",
            "cancelUrl": "https://bench.example/no",
        },
    )
    done = await api.post(f"/v1/sandbox/checkout/{session['id']}/complete")
    return done["customerId"], done["subscription"]["id"]


async def seed(url: str, customers: int, apps: int, say: Say) -> Seeded:
    """One tenant with ``apps`` apps; ``customers`` subscribed customers in the first,
    spread over four plans, a tenth of them with usage; ten in each other app."""
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        anonymous = Client(session, url)
        tenant = await anonymous.post(
            "/v1/tenants", {"name": "Bench", "ownerEmail": f"bench-{secrets.token_hex(4)}@x.io"}
        )
        admin = Client(session, url, tenant["apiKey"])
        made = [await admin.post("/v1/apps", {"name": f"Bench {n}"}) for n in range(apps)]
        keys = [
            (await admin.post(f"/v1/apps/{a['id']}/api-keys", {"name": "bench"}))["key"]
            for a in made
        ]
        api = Client(session, url, keys[0])
        plans = await _catalog(api, "Bench")
        seeded = Seeded(tenant["apiKey"], made[0]["id"], keys[0], plans)
        names = list(PLANS)
        started = time.monotonic()
        done = 0

        def job(n: int) -> Callable[[], Awaitable[tuple[str, str]]]:
            async def run() -> tuple[str, str]:
                nonlocal done
                got = await _subscribe(api, plans[names[n % 4]], f"c{n}@bench.example")
                done += 1
                if done % 1000 == 0:
                    rate = done / (time.monotonic() - started)
                    say(f"  {done}/{customers} subscribed customers ({rate:.0f}/s)")
                return got

            return run

        results = await _gather_limited([job(n) for n in range(customers)], 24)
        seeded.customers = [c for c, _ in results]
        seeded.subscriptions = [s for _, s in results]
        seeded.by_plan = {name: len(range(i, customers, 4)) for i, name in enumerate(names)}
        say(f"  usage for {customers // 10} customers")

        def usage(n: int) -> Callable[[], Awaitable[Any]]:
            body = {"customerId": seeded.customers[n], "metric": METERED, "quantity": 1 + n % 7}

            async def record() -> Any:
                # A subscription reaches the entitlements service through its events: a
                # customer subscribed a moment ago may not have access yet.
                deadline = time.monotonic() + 30
                while True:
                    status, answer = await api.call("POST", "/v1/usage", body, ok=False)
                    if status == 200 or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
                if status != 200:
                    raise RuntimeError(f"POST /v1/usage: {status} {answer}")
                return answer

            return record

        await _gather_limited([usage(n) for n in range(0, customers, 10)], 24)
        for app, key in zip(made[1:], keys[1:], strict=True):
            other = Client(session, url, key)
            other_plans = await _catalog(other, app["name"])
            pro = other_plans["Pro"]
            await asyncio.gather(
                *(_subscribe(other, pro, f"o{n}@bench.example") for n in range(10))
            )
            seeded.other_apps.append(app["id"])
        await until_access(api, seeded.check_path(), True, timeout=30)
        return seeded


async def until_access(api: Client, path: str, access: bool, timeout: float) -> float:
    """Poll the check until it says ``access``; the seconds it took."""
    started = time.perf_counter()
    while True:
        if (await api.get(path))["hasAccess"] is access:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"the check did not turn {access} within {timeout} s")
        await asyncio.sleep(0.0005)


async def freshness(url: str, seeded: Seeded, changes: int) -> dict[str, Any]:
    """Pause and resume one subscription ``changes`` times; after each committed change
    (its API call has answered), the time until the check through the gateway shows it."""
    seen: list[float] = []
    sub = seeded.subscriptions[2]  # the first Pro customer's
    async with aiohttp.ClientSession() as session:
        api = Client(session, url, seeded.app_key)
        for n in range(changes):
            pausing = n % 2 == 0
            await api.post(f"/v1/subscriptions/{sub}/{'pause' if pausing else 'resume'}")
            seen.append(await until_access(api, seeded.check_path(), not pausing, 10) * 1000)
    return percentiles(seen)


async def revocation(url: str, seeded: Seeded, rounds: int) -> dict[str, Any]:
    """A warm app key is revoked; the time from the DELETE's answer until the gateway
    answers 401 to that key, and the time of that first refused request."""
    until_401: list[float] = []
    first: list[float] = []
    async with aiohttp.ClientSession() as session:
        admin = Client(session, url, seeded.tenant_key)
        for n in range(rounds):
            key = await admin.post(f"/v1/apps/{seeded.app_id}/api-keys", {"name": f"r{n}"})
            api = Client(session, url, key["key"])
            await api.get(seeded.check_path())  # warm in the gateway's cache
            await admin.call("DELETE", f"/v1/apps/{seeded.app_id}/api-keys/{key['id']}")
            revoked = time.perf_counter()
            while True:
                asked = time.perf_counter()
                status, _ = await api.call("GET", seeded.check_path(), ok=False)
                if status == 401:
                    now = time.perf_counter()
                    until_401.append((now - revoked) * 1000)
                    first.append((now - asked) * 1000)
                    break
                if asked - revoked > 5:
                    raise TimeoutError("a revoked key still worked after 5 s")
    return {"until_401": percentiles(until_401), "refused_request": percentiles(first)}


async def checkout_to_active(url: str, seeded: Seeded, count: int) -> dict[str, Any]:
    """A sandbox checkout completes; the time until the check says the customer has
    access (the new subscription travels subscriptions -> NATS -> entitlements)."""
    seen: list[float] = []
    async with aiohttp.ClientSession() as session:
        api = Client(session, url, seeded.app_key)
        for n in range(count):
            customer, _ = await _subscribe(
                api, seeded.plans["Pro"], f"new{n}-{secrets.token_hex(3)}@bench.example"
            )
            path = f"/v1/entitlements/check/analytics?customerId={customer}"
            seen.append(await until_access(api, path, True, 10) * 1000)
    return percentiles(seen)


async def receiver_stats(receiver: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(receiver + "/stats") as r:
        stats: dict[str, Any] = await r.json()
        return stats


async def forget(receiver: str) -> None:
    async with aiohttp.ClientSession() as session, session.delete(receiver + "/stats"):
        pass


async def aiohttp_floor(receiver: str, count: int, concurrency: int = 32) -> float:
    """Posts per second a bare pooled aiohttp client sustains to the receiver."""
    body = b'{"id":"evt_floor","type":"webhook.test","data":{}}'
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(n: int) -> None:
            async with session.post(
                receiver + "/hook", data=body, headers={"webhook-id": f"floor{n}"}
            ) as r:
                await r.read()

        def job(n: int) -> Callable[[], Awaitable[None]]:
            return lambda: post(n)

        started = time.perf_counter()
        await _gather_limited([job(n) for n in range(count)], concurrency)
        rate = count / (time.perf_counter() - started)
    await forget(receiver)
    return rate


async def webhook_latency(url: str, seeded: Seeded, receiver: str, count: int) -> dict[str, Any]:
    """Customers updated one at a time: from the event (its ``timestamp``) to the first
    attempt reaching the receiver."""
    async with aiohttp.ClientSession() as session:
        api = Client(session, url, seeded.app_key)
        endpoint = await api.post(
            "/v1/webhooks/endpoints", {"url": receiver + "/latency", "events": ["customer.updated"]}
        )
        for n in range(count):
            customer = seeded.customers[n]
            await api.call("PATCH", f"/v1/customers/{customer}", {"metadata": {"bench": n}})
            await asyncio.sleep(0.01)
        deadline = time.monotonic() + 30
        while len((stats := await receiver_stats(receiver))["first"]) < count:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        await api.call("DELETE", f"/v1/webhooks/endpoints/{endpoint['id']}")
    waits = [(a - s) * 1000 for a, s in stats["first"].values() if s is not None]
    await forget(receiver)
    return {**percentiles(waits), "delivered": len(stats["first"]), "sent": count}


async def webhook_burst(url: str, seeded: Seeded, receiver: str) -> dict[str, Any]:
    """One plan change notifies every subscriber (``entitlements.updated``): deliveries
    per second while that burst drains."""
    expected = seeded.by_plan["Pro"]
    async with aiohttp.ClientSession() as session:
        api = Client(session, url, seeded.app_key)
        endpoint = await api.post(
            "/v1/webhooks/endpoints",
            {"url": receiver + "/burst", "events": ["entitlements.updated"]},
        )
        await api.call(
            "PATCH",
            f"/v1/plans/{seeded.plans['Pro']}",
            {"entitlements": {**EXAMPLE, "bench": secrets.token_hex(3)}},
        )
        deadline, last, stalled = time.monotonic() + 300, -1, 0
        while True:
            stats = await receiver_stats(receiver)
            got = len(stats["first"])
            if got >= expected or time.monotonic() > deadline:
                break
            stalled = stalled + 1 if got == last else 0
            if stalled > 50:  # nothing new for 10 s
                break
            last = got
            await asyncio.sleep(0.2)
        await api.call("DELETE", f"/v1/webhooks/endpoints/{endpoint['id']}")
    arrivals = sorted(a for a, _ in stats["first"].values())
    sent = [s for _, s in stats["first"].values() if s is not None]
    span = (arrivals[-1] - min(sent + arrivals[:1])) if arrivals else 0.0
    await forget(receiver)
    return {
        "expected": expected,
        "delivered": len(arrivals),
        "seconds": span,
        "rate": len(arrivals) / span if span else 0.0,
    }
