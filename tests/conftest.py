"""End-to-end fixtures: the real services and gateway as processes, a real SMTP server."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from stackbe_common.devstack import Platform
from stackbe_common.infra import free_port
from stackbe_common.testing.smtp import Mailbox


@pytest.fixture(scope="session")
async def platform(
    database_url: str,
    nats_url: str,
    mailbox: Mailbox,
) -> AsyncIterator[Platform]:
    """identity and catalog (serve + worker each) and the gateway, each its own process, on
    free ports."""
    stack = Platform(services=["identity", "catalog"], output=sys.stderr)
    await asyncio.to_thread(
        stack.start,
        database_url,
        nats_url,
        ports={"identity": free_port(), "catalog": free_port()},
        env={"STACKBE_SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}", "STACKBE_DEV": "false"},
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
