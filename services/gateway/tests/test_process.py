"""One smoke test of the real thing: ``python -m stackbe_gateway serve`` on granian."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from stackbe_common.infra import free_port
from stackbe_common.scope import verify_scope
from stackbe_gateway.config import GatewaySettings

from .support import FakeIdentity, Upstream, bearer, header_of


async def _wait_for_port(port: int, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.fixture
async def served(settings: GatewaySettings, identity: FakeIdentity) -> AsyncIterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "STACKBE_NATS_URL": settings.nats_url,
        "STACKBE_INTERNAL_SECRET": settings.internal_secret,
        "STACKBE_IDENTITY_URL": settings.identity_url,
        "STACKBE_CATALOG_URL": settings.catalog_url,
        "STACKBE_SUBSCRIPTIONS_URL": settings.subscriptions_url,
        "STACKBE_ENTITLEMENTS_URL": settings.entitlements_url,
        "STACKBE_WEBHOOKS_URL": settings.webhooks_url,
        "STACKBE_LOG_JSON": "true",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stackbe_gateway",
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await _wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _raw_get(url: str, path: str) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


async def test_the_served_gateway_forwards_refuses_and_documents(
    served: str, identity: FakeIdentity, upstream: Upstream, settings: GatewaySettings
) -> None:
    tenant = identity.tenant()
    key, resolved = identity.add_key(tenant)
    async with aiohttp.ClientSession() as client:
        async with client.get(served + "/v1/tenants/me?x=1", headers=bearer(key)) as ok:
            assert ok.status == 200
            assert ok.headers["X-RateLimit-Limit"] == "1000"
            request_id = ok.headers["X-Request-Id"]
        scope = verify_scope(header_of(upstream.requests[-1], "x-stackbe-scope"), settings.secret)
        assert (scope.tenant_id, scope.principal.id) == (tenant, resolved.key_id)
        assert scope.request_id == request_id
        assert upstream.requests[-1]["path"] == "/v1/tenants/me"
        assert upstream.requests[-1]["query"] == "x=1"

        async def big() -> AsyncIterator[bytes]:
            for _ in range(40):
                yield b"b" * 32 * 1024

        async with client.post(served + "/v1/apps", data=big(), headers=bearer(key)) as large:
            assert large.status == 413
            assert (await large.json())["code"] == "PAYLOAD_TOO_LARGE"

        # Refused early, the rest of a body is drained so the client always reads the answer.
        for _ in range(10):
            huge = b"h" * (2 * 1024 * 1024)
            async with client.post(served + "/v1/apps", data=huge, headers=bearer(key)) as r:
                assert r.status == 413
            async with client.post(
                served + "/v1/apps", data=b"s" * 300_000, headers=bearer("sbt_typo")
            ) as r:
                assert r.status == 401

        async with client.get(served + "/docs") as docs:
            assert docs.status == 200
            assert "StackBE API" in await docs.text()

    forwarded = len(upstream.requests)
    for path in ("/v1/tenants/../../metrics", "/v1/apps/./x", "/v1/tenants/.."):
        answer = await _raw_get(served, path)
        assert answer.startswith(b"HTTP/1.1 404"), answer[:200]
        assert b'"code":"NOT_FOUND"' in answer
    assert len(upstream.requests) == forwarded
