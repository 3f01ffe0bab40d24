"""Catalog tests: the real app on real Postgres, called as the gateway calls it."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from stackbe_catalog.app import SCHEMA, create_app
from stackbe_common.ids import new_id
from stackbe_common.migrations import migrate
from stackbe_common.scope import Principal, Scope, sign_scope
from stackbe_common.service import ServiceSettings

MIGRATIONS = Path(__file__).parents[1] / "src" / "stackbe_catalog" / "migrations"

EXAMPLE_ENTITLEMENTS = {
    "projects": 10,
    "apiCallsPerMonth": 100000,
    "features": ["analytics", "exports"],
}


@pytest.fixture(scope="session")
def catalog_settings(database_url: str, nats_url: str, internal_secret: bytes) -> ServiceSettings:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return ServiceSettings(
        database_pool_size=4,  # the test server's connections are shared by every worker
        database_url=database_url,
        nats_url=nats_url,
        internal_secret=internal_secret.decode("latin-1"),
        encryption_key=f"e1:{key}",
        log_json=False,
    )


@pytest.fixture(scope="session")
async def catalog_db(catalog_settings: ServiceSettings) -> str:
    conn = await asyncpg.connect(catalog_settings.database_url)
    try:
        await migrate(conn, SCHEMA, MIGRATIONS)
    finally:
        await conn.close()
    return catalog_settings.database_url


@dataclass(frozen=True)
class App:
    """An app of a tenant, as the gateway describes its callers to the catalog."""

    tenant_id: str
    id: str

    def key(self) -> Scope:
        """The app's own API key."""
        return Scope(
            principal=Principal(kind="app_key", id="key_app"),
            tenant_id=self.tenant_id,
            app_id=self.id,
        )

    def via_tenant(self, role: str = "admin") -> Scope:
        """A tenant key that named this app in X-StackBE-App."""
        return Scope(
            principal=Principal(kind="tenant_key", id="key_tenant"),
            tenant_id=self.tenant_id,
            app_id=self.id,
            role=role,  # type: ignore[arg-type]
        )

    def customer(self) -> Scope:
        return Scope(
            principal=Principal(kind="customer", id="cust_x"),
            tenant_id=self.tenant_id,
            app_id=self.id,
        )


def new_app(tenant_id: str | None = None) -> App:
    return App(tenant_id=tenant_id or new_id("ten"), id=new_id("app"))


@dataclass
class Api:
    """Calls the catalog as the gateway would, signing the caller's scope."""

    client: AsyncTestClient[Any]
    secret: bytes

    async def call(self, method: str, path: str, scope: Scope, **kwargs: Any) -> httpx.Response:
        headers = {"x-stackbe-scope": sign_scope(scope, self.secret), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def product(self, app: App, name: str = "Widgets", **fields: Any) -> dict[str, Any]:
        r = await self.call("POST", "/v1/products", app.key(), json={"name": name, **fields})
        assert r.status_code == 201, r.text
        return r.json()

    async def plan(self, app: App, product_id: str, **fields: Any) -> dict[str, Any]:
        body = {
            "productId": product_id,
            "name": "Pro",
            "priceCents": 2900,
            "currency": "USD",
            "interval": "month",
            "entitlements": EXAMPLE_ENTITLEMENTS,
            **fields,
        }
        r = await self.call("POST", "/v1/plans", app.key(), json=body)
        assert r.status_code == 201, r.text
        return r.json()


@pytest.fixture(scope="session")
async def api(
    catalog_settings: ServiceSettings, catalog_db: str, internal_secret: bytes
) -> AsyncIterator[Api]:
    async with AsyncTestClient(create_app(catalog_settings)) as client:
        yield Api(client, internal_secret)


@pytest.fixture
async def db(catalog_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(catalog_db, server_settings={"search_path": SCHEMA})
    yield conn
    await conn.close()


async def outbox_subjects(db: asyncpg.Connection, app_id: str) -> list[str]:
    """Subjects recorded for an app's catalog, oldest first."""
    rows = await db.fetch(
        "SELECT subject FROM outbox WHERE convert_from(payload, 'UTF8')::jsonb->>'appId' = $1"
        " ORDER BY id",
        app_id,
    )
    return [row["subject"] for row in rows]
