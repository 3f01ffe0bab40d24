"""End-to-end fixtures: the real services and gateway as processes, a real SMTP server."""

from __future__ import annotations

import asyncio
import io
import re
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from aiohttp import web
from nats.js.api import ConsumerConfig, DeliverPolicy

import stackbe_events
from stackbe_common.devstack import Platform
from stackbe_common.infra import free_ports
from stackbe_common.testing.browser import chromium  # noqa: F401  (a fixture)
from stackbe_common.testing.fake_stripe import FakeStripe
from stackbe_common.testing.plugin import fresh_database, fresh_nats_server
from stackbe_common.testing.smtp import Mailbox

SERVICES = ("identity", "catalog", "subscriptions", "entitlements", "webhooks")


@pytest.fixture(scope="session")
async def database_url(pg_server_url: str) -> AsyncIterator[str]:
    """The end-to-end platform's own database and (below) NATS: nothing the service tests
    on this worker write reaches the platform's consumers, nor the other way round."""
    async with fresh_database(pg_server_url, "stackbe_e2e", as_service=True) as url:
        yield url


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    with fresh_nats_server() as url:
        yield url


@pytest.fixture
async def own_database_url(pg_server_url: str) -> AsyncIterator[str]:
    """A database for one test that runs a platform of its own (``make dev``)."""
    async with fresh_database(pg_server_url, "stackbe_own") as url:
        yield url


@pytest.fixture
def own_nats_url() -> Iterator[str]:
    with fresh_nats_server() as url:
        yield url


class Tee(io.TextIOBase):
    """The platform's output on stderr, as ever, and kept in a file: the Stripe tests
    scan every line the processes logged for secrets."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def write(self, text: str) -> int:
        sys.stderr.write(text)
        return self._file.write(text)

    def flush(self) -> None:
        sys.stderr.flush()
        self._file.flush()


@pytest.fixture(scope="session")
def platform_log(tmp_path_factory: pytest.TempPathFactory) -> Tee:
    return Tee(tmp_path_factory.mktemp("platform") / "output.log")


@pytest.fixture(scope="session")
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    """Stripe's API for the platform (``STACKBE_STRIPE_API_BASE``), a fake on loopback."""
    async with FakeStripe() as fake:
        yield fake


@pytest.fixture(scope="session")
async def platform(
    database_url: str,
    nats_url: str,
    mailbox: Mailbox,
    fake_stripe: FakeStripe,
    platform_log: Tee,
) -> AsyncIterator[Platform]:
    """Every service (serve + worker each) and the gateway, each its own process, on free
    ports."""
    stack = Platform(services=list(SERVICES), output=platform_log)
    await asyncio.to_thread(
        stack.start,
        database_url,
        nats_url,
        ports=dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True)),
        env={
            "STACKBE_SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}",
            "STACKBE_DEV": "false",
            "STACKBE_STRIPE_API_BASE": fake_stripe.url,
            # Ten processes share the test server's connections with the service tests.
            "STACKBE_DATABASE_POOL_SIZE": "3",
            # The fuzzing test sends a few thousand requests a minute with one key.
            "STACKBE_RATE_LIMIT_PER_MINUTE": "100000",
        },
    )
    yield stack
    await asyncio.to_thread(stack.stop)


@pytest.fixture(scope="session")
def gateway_url(platform: Platform) -> str:
    assert platform.url
    return platform.url


@pytest.fixture
async def http(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def new_tenant(http: httpx.AsyncClient) -> dict[str, Any]:
    owner = f"owner-{secrets.token_hex(4)}@example.com"
    r = await http.post("/v1/tenants", json={"name": "E2E", "ownerEmail": owner})
    assert r.status_code == 201, r.text
    return {**r.json(), "ownerEmail": owner}


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["statusCode"] == status and body["code"] == code
    assert body["error"] and body["message"]
    assert "Traceback" not in r.text


async def read_events(
    nats_url: str,
    context: str,
    wanted: Callable[[stackbe_events.Event], bool],
    count: int,
    attempts: int = 100,
) -> list[stackbe_events.Event]:
    """The first ``count`` events of a context's stream that ``wanted`` picks, decoded with
    stackbe_events, read by a fresh consumer from the start of the stream."""
    nc = await nats.connect(nats_url)
    seen: list[stackbe_events.Event] = []
    try:
        stream, subjects = stackbe_events.stream_for(context)
        sub = await nc.jetstream().pull_subscribe(
            subjects,
            stream=stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0),
        )
        for _ in range(attempts):
            try:
                batch = await sub.fetch(200, timeout=0.5)
            except nats.errors.TimeoutError:
                batch = []
            for msg in batch:
                event = stackbe_events.decode(msg.subject, msg.data)
                if wanted(event):
                    seen.append(event)
                await msg.ack()
            if len(seen) >= count:
                break
            await asyncio.sleep(0.05)
    finally:
        await nc.close()
    return seen


async def new_app(http: httpx.AsyncClient, tenant_key: str, **settings: Any) -> tuple[str, str]:
    """(app id, app key) of a new app of the tenant."""
    app = (
        await http.post("/v1/apps", headers=bearer(tenant_key), json={"name": "Shop", **settings})
    ).json()["id"]
    key = (
        await http.post(
            f"/v1/apps/{app}/api-keys", headers=bearer(tenant_key), json={"name": "backend"}
        )
    ).json()["key"]
    return app, key


async def pay_hosted_checkout(http: httpx.AsyncClient, path: str) -> httpx.Response:
    """Open the hosted checkout page and press Pay, as a browser without JavaScript does:
    the form's fields (its CSRF token) posted back, the redirect not followed."""
    page = await http.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name=csrf value="([^"]+)"', page.text)
    assert found, "the page has no payment form"
    return await http.post(path, data={"csrf": found.group(1)}, follow_redirects=False)


@asynccontextmanager
async def hook_receiver(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A real HTTP receiver on loopback for webhooks: ``POST /hooks`` goes to ``handle``.
    Yields the URL to register as an endpoint."""
    app = web.Application()
    app.router.add_post("/hooks", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hooks"
    finally:
        await runner.cleanup()
