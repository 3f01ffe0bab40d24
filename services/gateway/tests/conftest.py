"""Gateway-tier fixtures: real NATS, a real echo upstream, a fake identity, the gateway."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from stackbe_common.infra import NatsServer
from stackbe_gateway.app import create_app
from stackbe_gateway.config import GatewaySettings

from .support import FakeIdentity, Upstream


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[None]:
    """Drive the ASGI lifespan from one task of our own, so start and stop share it."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()
    failures: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            if message["type"].endswith("failed"):
                failures.append(message.get("message", "startup failed"))
            started.set()
        else:
            stopped.set()

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    )
    await inbox.put({"type": "lifespan.startup"})
    await started.wait()
    if failures:
        await task
        raise RuntimeError(failures[0])
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await stopped.wait()
        await task


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """A nats-server of our own: a real identity started by another suite in this worker
    would otherwise answer the gateway's questions in place of the fake one."""
    with tempfile.TemporaryDirectory(prefix="stackbe-gateway-nats-") as tmp:
        server = NatsServer(Path(tmp) / "js", log_file=Path(tmp) / "nats.log").start()
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
async def identity(nc: NATS) -> AsyncIterator[FakeIdentity]:
    fake = await FakeIdentity(nc).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def upstream(internal_secret: bytes) -> AsyncIterator[Upstream]:
    server = await Upstream(internal_secret.hex().encode()).start()
    yield server
    await server.stop()


@pytest.fixture
async def make_upstream(
    internal_secret: bytes,
) -> AsyncIterator[Callable[[], Awaitable[Upstream]]]:
    started: list[Upstream] = []

    async def make() -> Upstream:
        server = await Upstream(internal_secret.hex().encode()).start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()


@pytest.fixture
def settings(nats_url: str, internal_secret: bytes, upstream: Upstream) -> GatewaySettings:
    return GatewaySettings(
        nats_url=nats_url,
        internal_secret=internal_secret.hex(),
        identity_url=upstream.url,
        catalog_url=upstream.url,
        subscriptions_url=upstream.url,
        entitlements_url=upstream.url,
        webhooks_url=upstream.url,
        key_use_report_seconds=0.2,
        log_json=False,
    )


GatewayFactory = Callable[..., Any]


@pytest.fixture
def make_gateway(settings: GatewaySettings) -> GatewayFactory:
    """``async with make_gateway(**setting_overrides, routes=..., upstreams=...) as client``."""

    @asynccontextmanager
    async def make(
        routes: dict[str, str] | None = None,
        upstreams: dict[str, str] | None = None,
        **overrides: Any,
    ) -> AsyncIterator[httpx.AsyncClient]:
        # In-process, on the test's own loop (the fake identity answers on it too).
        app = create_app(
            msgspec.structs.replace(settings, **overrides), routes=routes, upstreams=upstreams
        )
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        async with (
            running(app),
            httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
        ):
            yield client

    return make


@pytest.fixture
async def gateway(
    make_gateway: GatewayFactory, identity: FakeIdentity
) -> AsyncIterator[httpx.AsyncClient]:
    async with make_gateway() as client:
        yield client
