"""Entitlements tests: the real app and the real outbox relay on Postgres and NATS.

Projections are built by the handlers the worker's consumers run, fed with identity,
catalog and subscription events; the relay publishes ``entitlements.updated`` and the
app's cache follows it over NATS, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from litestar.testing import AsyncTestClient

from stackbe_common.db import create_pool
from stackbe_common.ids import new_id
from stackbe_common.migrations import migrate
from stackbe_common.outbox import OutboxRelay
from stackbe_common.scope import Principal, Scope, sign_scope
from stackbe_common.stopping import Stopping
from stackbe_common.testing.plugin import service_settings
from stackbe_entitlements.app import SCHEMA, create_app, create_asgi
from stackbe_entitlements.config import EntitlementsSettings
from stackbe_entitlements.projection import handlers
from stackbe_events.catalog import Plan, PlanCreated, PlanUpdated
from stackbe_events.identity import CustomerCreated
from stackbe_events.subscriptions import Subscription, SubscriptionCreated, SubscriptionUpdated

MIGRATIONS = Path(__file__).parents[1] / "src" / "stackbe_entitlements" / "migrations"
EXAMPLE = {"projects": 10, "apiCallsPerMonth": 100000, "features": ["analytics", "exports"]}
HANDLERS = handlers(None)


@pytest.fixture(scope="session")
def entitlements_settings(
    database_url: str, nats_url: str, internal_secret: bytes
) -> EntitlementsSettings:
    return service_settings(EntitlementsSettings, database_url, nats_url, internal_secret)


@pytest.fixture(scope="session")
async def pool(entitlements_settings: EntitlementsSettings) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(entitlements_settings.database_url)
    try:
        await migrate(conn, SCHEMA, MIGRATIONS)
    finally:
        await conn.close()
    made = await create_pool(entitlements_settings.database_url, SCHEMA, max_size=4)
    yield made
    await made.close()


@pytest.fixture(scope="session")
async def relay(pool: asyncpg.Pool, nats_url: str) -> AsyncIterator[None]:
    """The worker's outbox relay, publishing projections to JetStream."""
    from stackbe_common import bus

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await bus.ensure_stream(js, SCHEMA)
    task = asyncio.create_task(OutboxRelay(pool, js, SCHEMA).run(Stopping()))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await nc.close()


@dataclass
class Api:
    client: AsyncTestClient[Any]
    secret: bytes

    async def call(self, method: str, path: str, scope: Scope, **kwargs: Any) -> httpx.Response:
        headers = {"x-stackbe-scope": sign_scope(scope, self.secret), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def ok(self, method: str, path: str, scope: Scope, **kwargs: Any) -> dict[str, Any]:
        r = await self.call(method, path, scope, **kwargs)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="session")
async def api(
    entitlements_settings: EntitlementsSettings,
    pool: asyncpg.Pool,
    relay: None,
    internal_secret: bytes,
) -> AsyncIterator[Api]:
    """The app as served: checks on the fast path, the rest through Litestar."""
    async with AsyncTestClient(create_asgi(entitlements_settings)) as client:  # type: ignore[arg-type]
        yield Api(client, internal_secret)


@pytest.fixture(scope="session")
async def full_api(
    entitlements_settings: EntitlementsSettings,
    pool: asyncpg.Pool,
    relay: None,
    internal_secret: bytes,
) -> AsyncIterator[Api]:
    """The full app alone, without the fast path: the reference it must agree with."""
    async with AsyncTestClient(create_app(entitlements_settings)) as client:
        yield Api(client, internal_secret)


def _event(cls: type[Any], tenant_id: str, app_id: str, **body: Any) -> Any:
    return cls(
        id=new_id("evt"), occurred_at=datetime.now(UTC), tenant_id=tenant_id, app_id=app_id, **body
    )


@dataclass
class App:
    """An app whose events the tests feed to the projection handlers."""

    pool: asyncpg.Pool
    tenant_id: str = field(default_factory=lambda: new_id("ten"))
    id: str = field(default_factory=lambda: new_id("app"))
    versions: dict[str, int] = field(default_factory=dict)

    def key(self) -> Scope:
        return Scope(
            principal=Principal(kind="app_key", id="key_app"),
            tenant_id=self.tenant_id,
            app_id=self.id,
        )

    async def feed(self, context: str, event: Any) -> None:
        """Handle an event in one transaction, as the worker's consumer does."""
        async with self.pool.acquire() as conn, conn.transaction():
            await HANDLERS[context][type(event)](conn, event)

    async def plan(
        self, entitlements: dict[str, Any], name: str = "Pro", plan_id: str | None = None
    ) -> str:
        plan_id = plan_id or new_id("plan")
        version = self.versions[plan_id] = self.versions.get(plan_id, 0) + 1
        now = datetime.now(UTC)
        plan = Plan(
            id=plan_id,
            app_id=self.id,
            product_id="prod_" + "0" * 26,
            name=name,
            price_cents=1000,
            currency="USD",
            interval="month",
            interval_count=1,
            trial_days=0,
            entitlements=entitlements,
            status="active",
            version=version,
            created_at=now,
            updated_at=now,
        )
        cls = PlanCreated if version == 1 else PlanUpdated
        await self.feed("catalog", _event(cls, self.tenant_id, self.id, plan=plan))
        return plan_id

    async def customer(self, external_id: str | None = None) -> str:
        customer_id = new_id("cust")
        event = _event(
            CustomerCreated,
            self.tenant_id,
            self.id,
            customer_id=customer_id,
            email=f"{customer_id}@example.com",
            external_id=external_id,
        )
        await self.feed("identity", event)
        return customer_id

    def subscription(
        self,
        customer_id: str,
        plan_id: str,
        status: str = "active",
        version: int = 1,
        sub_id: str | None = None,
        start: datetime | None = None,
        **fields: Any,
    ) -> Any:
        start = start or datetime(2030, 1, 1, tzinfo=UTC)
        now = datetime.now(UTC)
        sub = Subscription(
            id=sub_id or new_id("sub"),
            app_id=self.id,
            customer_id=customer_id,
            plan_id=plan_id,
            status=status,
            current_period_start=start,
            current_period_end=start + timedelta(days=31),
            version=version,
            created_at=now,
            updated_at=now,
            **fields,
        )
        cls = SubscriptionCreated if version == 1 else SubscriptionUpdated
        return _event(cls, self.tenant_id, self.id, subscription=sub)

    async def subscribe(self, customer_id: str, plan_id: str, **fields: Any) -> Any:
        event = self.subscription(customer_id, plan_id, **fields)
        await self.feed("subscriptions", event)
        return event


@pytest.fixture
def app(pool: asyncpg.Pool) -> App:
    return App(pool)


async def eventually(probe: Any, expect: Any, seconds: float = 5.0) -> Any:
    """Poll ``probe()`` until it returns ``expect`` (caches follow NATS asynchronously)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        got = await probe()
        if got == expect or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.01)
