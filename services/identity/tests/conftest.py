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

from stackbe_common.migrations import migrate
from stackbe_common.scope import Principal, Scope, sign_scope
from stackbe_common.testing.smtp import Mailbox
from stackbe_identity.app import SCHEMA, create_app
from stackbe_identity.config import IdentitySettings

MIGRATIONS = Path(__file__).parents[1] / "src" / "stackbe_identity" / "migrations"


def signing_keys() -> str:
    seed = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"k1:{seed}"


def encryption_key() -> str:
    return "e1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


@pytest.fixture(scope="session")
def identity_settings(
    database_url: str, nats_url: str, internal_secret: bytes, mailbox: Mailbox
) -> IdentitySettings:
    return IdentitySettings(
        database_pool_size=4,  # the test server's connections are shared by every worker
        database_url=database_url,
        nats_url=nats_url,
        internal_secret=internal_secret.decode("latin-1"),
        jwt_signing_keys=signing_keys(),
        encryption_key=encryption_key(),
        smtp_url=f"smtp://127.0.0.1:{mailbox.port}",
        log_json=False,
    )


@pytest.fixture(scope="session")
async def identity_db(identity_settings: IdentitySettings) -> str:
    conn = await asyncpg.connect(identity_settings.database_url)
    try:
        await migrate(conn, SCHEMA, MIGRATIONS)
    finally:
        await conn.close()
    return identity_settings.database_url


@dataclass
class Api:
    """Calls identity as the gateway would, signing the caller's scope."""

    client: AsyncTestClient[Any]
    secret: bytes

    async def call(
        self, method: str, path: str, scope: Scope | None = None, **kwargs: Any
    ) -> httpx.Response:
        scope = scope or anonymous()
        headers = {"x-stackbe-scope": sign_scope(scope, self.secret), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def new_tenant(self, name: str = "Acme", email: str | None = None) -> Tenant:
        email = email or f"owner-{secrets.token_hex(4)}@example.com"
        r = await self.call("POST", "/v1/tenants", json={"name": name, "ownerEmail": email})
        assert r.status_code == 201, r.text
        body = r.json()
        tenant = Tenant(id=body["tenant"]["id"], key=body["apiKey"], owner_email=email)
        keys = await self.call("GET", "/v1/api-keys", tenant.scope())
        tenant.key_id = keys.json()["data"][0]["id"]
        members = await self.call("GET", "/v1/members", tenant.scope())
        tenant.owner_id = members.json()["data"][0]["id"]
        return tenant


@dataclass
class Tenant:
    id: str
    key: str
    owner_email: str
    key_id: str = ""
    owner_id: str = ""

    def scope(self, role: str = "admin") -> Scope:
        return Scope(
            principal=Principal(kind="tenant_key", id=self.key_id), tenant_id=self.id, role=role
        )  # type: ignore[arg-type]

    def member(self, member_id: str, role: str) -> Scope:
        return Scope(principal=Principal(kind="member", id=member_id), tenant_id=self.id, role=role)  # type: ignore[arg-type]

    def app_key(self, app_id: str) -> Scope:
        return Scope(
            principal=Principal(kind="app_key", id="key_x"), tenant_id=self.id, app_id=app_id
        )


def anonymous(ip: str = "203.0.113.7") -> Scope:
    return Scope(principal=Principal(kind="anonymous"), client_ip=ip)


@pytest.fixture(scope="session")
async def api(
    identity_settings: IdentitySettings, identity_db: str, internal_secret: bytes
) -> AsyncIterator[Api]:
    app = create_app(identity_settings)
    async with AsyncTestClient(app) as client:
        yield Api(client, internal_secret)


@pytest.fixture
async def db(identity_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(identity_db, server_settings={"search_path": SCHEMA})
    yield conn
    await conn.close()
