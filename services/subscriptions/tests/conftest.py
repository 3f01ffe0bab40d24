"""Subscriptions tests: the real app on real Postgres and NATS, called as the gateway calls
it. Apps, customers and plans reach its read models through the same handlers its
consumers run for identity and catalog events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from stackbe_common.db import create_pool
from stackbe_common.ids import new_id
from stackbe_common.migrations import migrate
from stackbe_common.scope import Principal, Scope, sign_scope
from stackbe_common.testing.plugin import service_settings
from stackbe_events.catalog import Plan, PlanCreated
from stackbe_events.identity import AppCreated, CustomerCreated
from stackbe_subscriptions import readmodels
from stackbe_subscriptions.app import SCHEMA, create_app
from stackbe_subscriptions.config import SubscriptionsSettings

MIGRATIONS = Path(__file__).parents[1] / "src" / "stackbe_subscriptions" / "migrations"


@pytest.fixture(scope="session")
def subscriptions_settings(
    database_url: str, nats_url: str, internal_secret: bytes
) -> SubscriptionsSettings:
    return service_settings(
        SubscriptionsSettings,
        database_url,
        nats_url,
        internal_secret,
        public_url="http://stackbe.test",
        rpc_timeout_seconds=0.5,
    )


@pytest.fixture(scope="session")
async def subscriptions_db(subscriptions_settings: SubscriptionsSettings) -> str:
    conn = await asyncpg.connect(subscriptions_settings.database_url)
    try:
        await migrate(conn, SCHEMA, MIGRATIONS)
    finally:
        await conn.close()
    return subscriptions_settings.database_url


def _event(cls: type[Any], tenant_id: str, app_id: str, **body: Any) -> Any:
    return cls(
        id=new_id("evt"), occurred_at=datetime.now(UTC), tenant_id=tenant_id, app_id=app_id, **body
    )


@dataclass
class App:
    """A sandbox app whose catalog and customers the read models know."""

    tenant_id: str
    id: str
    db: asyncpg.Connection
    plans: dict[str, str] = field(default_factory=dict)

    def key(self) -> Scope:
        return Scope(
            principal=Principal(kind="app_key", id="key_app"),
            tenant_id=self.tenant_id,
            app_id=self.id,
        )

    def tenant(self) -> Scope:
        return Scope(
            principal=Principal(kind="tenant_key", id="key_tenant"),
            tenant_id=self.tenant_id,
            role="admin",
        )

    async def plan(
        self,
        name: str,
        price_cents: int,
        interval: str = "month",
        *,
        interval_count: int = 1,
        trial_days: int = 0,
        currency: str = "USD",
        status: str = "active",
        version: int = 1,
        plan_id: str | None = None,
    ) -> str:
        now = datetime.now(UTC)
        plan = Plan(
            id=plan_id or new_id("plan"),
            app_id=self.id,
            product_id="prod_" + "0" * 26,
            name=name,
            price_cents=price_cents,
            currency=currency,
            interval=interval,  # type: ignore[arg-type]
            interval_count=interval_count,
            trial_days=trial_days,
            entitlements={"projects": 10},
            status=status,  # type: ignore[arg-type]
            version=version,
            created_at=now,
            updated_at=now,
        )
        await readmodels.on_plan(self.db, _event(PlanCreated, self.tenant_id, self.id, plan=plan))
        self.plans[name] = plan.id
        return plan.id

    async def customer(self, email: str | None = None) -> str:
        customer_id = new_id("cust")
        event = _event(
            CustomerCreated,
            self.tenant_id,
            self.id,
            customer_id=customer_id,
            email=email or f"{customer_id}@example.com",
        )
        await readmodels.on_customer(self.db, event)
        return customer_id


@dataclass
class Api:
    client: AsyncTestClient[Any]
    secret: bytes

    async def call(self, method: str, path: str, scope: Scope, **kwargs: Any) -> httpx.Response:
        headers = {"x-stackbe-scope": sign_scope(scope, self.secret), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def ok(self, method: str, path: str, scope: Scope, **kwargs: Any) -> dict[str, Any]:
        r = await self.call(method, path, scope, **kwargs)
        assert r.status_code in (200, 201), r.text
        return r.json()

    async def subscribe(
        self, app: App, plan: str, customer: str | None = None, outcome: str = "succeeded"
    ) -> dict[str, Any]:
        """Checkout and complete: the subscription."""
        customer = customer or await app.customer()
        session = await self.ok(
            "POST",
            "/v1/checkout/session",
            app.key(),
            json={
                "customerId": customer,
                "planId": app.plans.get(plan, plan),
                "successUrl": "https://shop.example/done",
                "cancelUrl": "https://shop.example/cancel",
            },
        )
        done = await self.ok(
            "POST",
            f"/v1/sandbox/checkout/{session['id']}/complete",
            app.key(),
            json={"outcome": outcome},
        )
        return done["subscription"]

    async def advance(self, app: App, **by: Any) -> dict[str, Any]:
        return await self.ok("POST", "/v1/sandbox/clock/advance", app.key(), json=by)

    async def sub(self, app: App, sub_id: str) -> dict[str, Any]:
        return await self.ok("GET", f"/v1/subscriptions/{sub_id}", app.key())

    async def payments(self, app: App, sub_id: str) -> list[dict[str, Any]]:
        page = await self.ok("GET", f"/v1/payments?subscriptionId={sub_id}&limit=100", app.key())
        return page["data"]


@pytest.fixture(scope="session")
async def api(
    subscriptions_settings: SubscriptionsSettings, subscriptions_db: str, internal_secret: bytes
) -> AsyncIterator[Api]:
    async with AsyncTestClient(create_app(subscriptions_settings)) as client:
        yield Api(client, internal_secret)


@pytest.fixture(scope="session")
async def pool(subscriptions_db: str) -> AsyncIterator[asyncpg.Pool]:
    """Connections as the service makes them (its schema, its JSON codecs)."""
    made = await create_pool(subscriptions_db, SCHEMA, max_size=4)
    yield made
    await made.close()


@pytest.fixture
async def db(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn:
        yield conn


@pytest.fixture
async def app(db: asyncpg.Connection) -> App:
    """A fresh sandbox app with a 7-day grace period."""
    made = App(tenant_id=new_id("ten"), id=new_id("app"), db=db)
    event = _event(
        AppCreated, made.tenant_id, made.id, name="Shop", grace_period_days=7, gateway="sandbox"
    )
    await readmodels.on_app(db, event)
    return made


async def subjects(db: asyncpg.Connection, sub_id: str) -> list[tuple[str, int]]:
    """(subject, version) of the subscription's events, in order."""
    rows = await db.fetch(
        "SELECT subject, convert_from(payload, 'UTF8')::jsonb #>> '{subscription,version}' AS v"
        " FROM outbox WHERE convert_from(payload, 'UTF8')::jsonb #>> '{subscription,id}' = $1"
        " ORDER BY id",
        sub_id,
    )
    return [(r["subject"].split(".")[3], int(r["v"])) for r in rows]


from .stripe_support import fake, sapi, seen, stripe_settings  # noqa: E402, F401  (fixtures)
