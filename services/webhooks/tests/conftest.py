"""Webhooks tests: the real app, the real delivery worker and real HTTP receivers on
loopback, on a database and a nats-server of their own (so no other worker's delivery
loop or consumer can touch what these tests schedule).

Delivery time comes from an ``OffsetClock`` the tests move forward; events are fed to
the fan-out handlers the worker's consumers run, or published to JetStream.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiohttp import web
from litestar.testing import AsyncTestClient

from stackbe_common.db import create_pool
from stackbe_common.ids import new_id
from stackbe_common.migrations import migrate
from stackbe_common.scope import Principal, Scope, sign_scope
from stackbe_common.testing.plugin import fresh_database, fresh_nats_server
from stackbe_events.identity import CustomerCreated
from stackbe_webhooks.app import SCHEMA, create_app
from stackbe_webhooks.config import WebhooksSettings
from stackbe_webhooks.delivery import DeliveryWorker
from stackbe_webhooks.fanout import handlers

MIGRATIONS = Path(__file__).parents[1] / "src" / "stackbe_webhooks" / "migrations"
LOOPBACK = "127.0.0.0/8,::1/128"


class OffsetClock:
    """Wall-clock time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by


@pytest.fixture(scope="session")
async def wh_database_url(pg_server_url: str) -> AsyncIterator[str]:
    async with fresh_database(pg_server_url, "stackbe_test_webhooks") as url:
        yield url


@pytest.fixture(scope="session")
def wh_nats_url() -> Iterator[str]:
    with fresh_nats_server() as url:
        yield url


def make_settings(
    database_url: str, nats_url: str, secret: bytes, **extra: Any
) -> WebhooksSettings:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return WebhooksSettings(
        database_url=database_url,
        nats_url=nats_url,
        internal_secret=secret.decode("latin-1"),
        encryption_key=f"w1:{key}",
        log_json=False,
        **{
            "webhook_allowed_networks": LOOPBACK,
            "webhook_timeout_seconds": 2.0,
            "tenant_limits": False,  # no identity here; tests/test_e2e_billing.py has one
            "database_pool_size": 4,
            **extra,
        },
    )


@pytest.fixture(scope="session")
def settings(wh_database_url: str, wh_nats_url: str, internal_secret: bytes) -> WebhooksSettings:
    return make_settings(wh_database_url, wh_nats_url, internal_secret)


@pytest.fixture(scope="session")
async def pool(settings: WebhooksSettings) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await migrate(conn, SCHEMA, MIGRATIONS)
    finally:
        await conn.close()
    made = await create_pool(settings.database_url, SCHEMA, max_size=settings.database_pool_size)
    yield made
    await made.close()


@dataclass
class Api:
    client: AsyncTestClient[Any]
    secret: bytes

    async def call(self, method: str, path: str, scope: Scope, **kwargs: Any) -> httpx.Response:
        headers = {"x-stackbe-scope": sign_scope(scope, self.secret), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def ok(
        self, method: str, path: str, scope: Scope, status: int = 200, **kwargs: Any
    ) -> Any:
        r = await self.call(method, path, scope, **kwargs)
        assert r.status_code == status, r.text
        return r.json()


@pytest.fixture(scope="session")
async def api(
    settings: WebhooksSettings, pool: asyncpg.Pool, internal_secret: bytes
) -> AsyncIterator[Api]:
    async with AsyncTestClient(create_app(settings)) as client:
        yield Api(client, internal_secret)


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
async def worker(
    pool: asyncpg.Pool, settings: WebhooksSettings, clock: OffsetClock
) -> AsyncIterator[DeliveryWorker]:
    async with DeliveryWorker(pool, settings.keyring, settings, clock) as made:
        yield made


# Receivers: real HTTP servers on loopback.

Reply = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    replies: list[Reply | int] = field(default_factory=list)  # then 200 for ever
    default: Reply | int = 200

    @property
    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(
            Received(
                {k.lower(): v for k, v in request.headers.items()},
                await request.read(),
                asyncio.get_running_loop().time(),
            )
        )
        reply = self.replies.pop(0) if self.replies else self.default
        if isinstance(reply, int):
            return web.Response(status=reply, text=f"answered {reply}")
        return await reply(request)


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    runners: list[web.AppRunner] = []

    async def start(
        *replies: Reply | int, default: Reply | int = 200, path: str = "/hook"
    ) -> Receiver:
        receiver = Receiver("", replies=list(replies), default=default)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", receiver.handle)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        receiver.url = f"http://127.0.0.1:{port}{path}"
        return receiver

    yield start
    for runner in runners:
        with contextlib.suppress(Exception):
            await runner.cleanup()


# Apps and their events.


@dataclass
class App:
    pool: asyncpg.Pool
    api: Api
    tenant_id: str = field(default_factory=lambda: new_id("ten"))
    id: str = field(default_factory=lambda: new_id("app"))

    def key(self) -> Scope:
        return Scope(
            principal=Principal(kind="app_key", id="key_app"),
            tenant_id=self.tenant_id,
            app_id=self.id,
        )

    async def endpoint(self, url: str, **body: Any) -> dict[str, Any]:
        made: dict[str, Any] = await self.api.ok(
            "POST", "/v1/webhooks/endpoints", self.key(), 201, json={"url": url, **body}
        )
        return made

    async def feed(self, context: str, event: Any, clock: Any = None) -> None:
        """Handle an event in one transaction, as the worker's consumer does."""
        table = handlers(clock or OffsetClock())[context]
        async with self.pool.acquire() as conn, conn.transaction():
            await table[type(event)](conn, event)

    def customer_created(self, n: int = 0) -> CustomerCreated:
        return CustomerCreated(
            id=new_id("evt"),
            occurred_at=datetime.now(UTC),
            tenant_id=self.tenant_id,
            app_id=self.id,
            customer_id=new_id("cust"),
            email=f"customer-{n}@example.com",
            external_id=f"user-{n}",
        )

    async def customer(self, n: int = 0, clock: Any = None) -> CustomerCreated:
        event = self.customer_created(n)
        await self.feed("identity", event, clock)
        return event

    async def message(self, message_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.api.ok(
            "GET", f"/v1/webhooks/messages/{message_id}", self.key()
        )
        return found

    async def attempts(self, message_id: str) -> list[dict[str, Any]]:
        page = await self.api.ok("GET", f"/v1/webhooks/messages/{message_id}/attempts", self.key())
        data: list[dict[str, Any]] = page["data"]
        return data


@pytest.fixture
async def app(pool: asyncpg.Pool, api: Api) -> AsyncIterator[App]:
    """A new app; its endpoints (and so its deliveries) go with the test, so nothing it
    left pending is due in a later test's delivery run."""
    made = App(pool, api)
    yield made
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM endpoints WHERE app_id = $1", made.id)
