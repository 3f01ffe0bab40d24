"""Fixtures of the Stripe tests: the fake Stripe API, the service pointed at it, Stripe
apps connected through the API, and a record of every response and log line, which the
last test of each Stripe module scans for the secrets the tests handed out."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import structlog
from litestar.testing import AsyncTestClient

from stackbe_common.ids import new_id
from stackbe_common.scope import Principal, Scope, sign_scope
from stackbe_common.testing.fake_stripe import FakeStripe
from stackbe_events.identity import AppCreated
from stackbe_subscriptions import readmodels
from stackbe_subscriptions.app import create_app
from stackbe_subscriptions.config import SubscriptionsSettings

from .conftest import Api, App


@dataclass
class Seen:
    """Everything the service said: response bodies and headers, and log lines."""

    secrets: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)  # structlog's, filled as they happen

    def lines(self) -> list[str]:
        return self.logs + [repr(event) for event in self.events]

    def leaks(self) -> list[str]:
        said = "\n".join(self.responses + self.lines())
        return [s for s in self.secrets if s in said]


class _Lines(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(self.format(record))


@pytest.fixture(scope="module")
def seen() -> Iterator[Seen]:
    """Every structlog event (all fields) and standard-library record (the Stripe SDK's
    own debug lines too) logged while the module's tests run."""
    found = Seen()
    handler = _Lines(found.logs)
    root, sdk = logging.getLogger(), logging.getLogger("stripe")
    levels = root.level, sdk.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    sdk.setLevel(logging.DEBUG)
    with structlog.testing.capture_logs() as found.events:
        yield found
    root.removeHandler(handler)
    root.setLevel(levels[0])
    sdk.setLevel(levels[1])


class RecordingApi(Api):
    def __init__(self, client: AsyncTestClient[Any], secret: bytes, seen: Seen) -> None:
        super().__init__(client, secret)
        self.seen = seen

    async def call(self, method: str, path: str, scope: Any, **kwargs: Any) -> httpx.Response:
        r = await super().call(method, path, scope, **kwargs)
        self.seen.responses.append(f"{r.status_code} {dict(r.headers)} {r.text}")
        return r

    async def post_raw(self, path: str, body: str, headers: dict[str, str]) -> httpx.Response:
        """A public POST, as the gateway forwards it: an anonymous scope, the body as is."""
        anonymous = sign_scope(Scope(principal=Principal(kind="anonymous")), self.secret)
        sent = {"x-stackbe-scope": anonymous, **headers}
        r = await self.client.post(path, content=body, headers=sent)
        self.seen.responses.append(f"{r.status_code} {dict(r.headers)} {r.text}")
        return r


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[FakeStripe]:
    async with FakeStripe() as made:
        yield made


@pytest.fixture(scope="module")
def stripe_settings(
    subscriptions_settings: SubscriptionsSettings, fake: FakeStripe
) -> SubscriptionsSettings:
    return msgspec.structs.replace(subscriptions_settings, stripe_api_base=fake.url)


@pytest.fixture(scope="module")
async def sapi(
    stripe_settings: SubscriptionsSettings,
    subscriptions_db: str,
    internal_secret: bytes,
    seen: Seen,
) -> AsyncIterator[RecordingApi]:
    async with AsyncTestClient(create_app(stripe_settings)) as client:
        yield RecordingApi(client, internal_secret, seen)


@dataclass
class StripeApp(App):
    """An app on a Stripe connection made through the API."""

    gateway_id: str = ""
    secret_key: str = ""
    webhook_secret: str = ""

    @property
    def webhook(self) -> str:
        return f"/v1/gateways/stripe/{self.gateway_id}/webhook"


async def connect(api: RecordingApi, fake: FakeStripe, tenant: App) -> dict[str, Any]:
    """A new Stripe account connected to the tenant; its secrets are remembered for the
    final scan. The connection, with the secrets under ``_secretKey`` / ``_webhookSecret``."""
    key = f"sk_test_{secrets.token_hex(16)}"
    webhook_secret = f"whsec_{secrets.token_hex(16)}"
    api.seen.secrets += [key, webhook_secret]
    fake.account_for(key)
    body = {"secretKey": key, "webhookSecret": webhook_secret}
    made = await api.ok("POST", "/v1/gateways/stripe", tenant.tenant(), json=body)
    return {**made, "_secretKey": key, "_webhookSecret": webhook_secret}


async def stripe_app(
    api: RecordingApi, fake: FakeStripe, db: asyncpg.Connection, *, grace_days: int = 7
) -> StripeApp:
    """A new tenant's app moved onto a new Stripe connection (as identity announces it)."""
    base = App(tenant_id=new_id("ten"), id=new_id("app"), db=db)
    gateway = await connect(api, fake, base)
    made = StripeApp(
        tenant_id=base.tenant_id,
        id=base.id,
        db=db,
        gateway_id=gateway["id"],
        secret_key=gateway["_secretKey"],
        webhook_secret=gateway["_webhookSecret"],
    )
    event = AppCreated(
        id=new_id("evt"),
        occurred_at=datetime.now(UTC),
        tenant_id=made.tenant_id,
        app_id=made.id,
        name="Shop",
        grace_period_days=grace_days,
        gateway="stripe",
        gateway_id=made.gateway_id,
    )
    await readmodels.on_app(db, event)
    return made
