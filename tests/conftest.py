"""End-to-end fixtures: the real services and gateway as processes, a real SMTP server."""

from __future__ import annotations

import asyncio
import email
import logging
import re
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from stackbe_common.devstack import Platform
from stackbe_common.infra import free_port

logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass
class Mailbox:
    messages: list[email.message.Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    async def link_for(self, to: str, timeout: float = 10.0) -> str:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for message in reversed(self.messages):
                if message["To"] == to:
                    body = message.get_payload(decode=True).decode()
                    match = re.search(r"(https?://\S+/v1/auth/confirm\?token=\S+)", body)
                    assert match, body
                    return match.group(1)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no mail to {to}")


@pytest.fixture(scope="session")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture(scope="session")
async def platform(
    database_url: str,
    nats_url: str,
    mailbox: tuple[Mailbox, int],
) -> AsyncIterator[Platform]:
    """identity (serve + worker) and the gateway, each its own process, on free ports."""
    stack = Platform(services=["identity"], output=sys.stderr)
    await asyncio.to_thread(
        stack.start,
        database_url,
        nats_url,
        ports={"identity": free_port()},
        env={"STACKBE_SMTP_URL": f"smtp://127.0.0.1:{mailbox[1]}", "STACKBE_DEV": "false"},
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
