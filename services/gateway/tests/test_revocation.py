"""Revocations published by identity stop a credential on every replica within a second."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.aio.client import Client as NATS

from stackbe_common.bus import ensure_stream
from stackbe_common.ids import new_id
from stackbe_common.infra import NatsServer
from stackbe_events import (
    ApiKeyRevoked,
    AppArchived,
    Event,
    MemberRemoved,
    MemberSignedOut,
    MemberUpdated,
    encode,
)
from stackbe_events.rpc import RESOLVE_KEY

from .support import FakeIdentity, bearer


async def _publish(nc: NATS, event: Event) -> None:
    js = nc.jetstream()
    await ensure_stream(js, "identity")
    await js.publish(type(event).subject, encode(event), headers={"Nats-Msg-Id": event.id})


def _event(cls: type[Event], tenant_id: str, app_id: str | None = None, **fields: Any) -> Any:
    return cls(
        id=new_id("evt"),
        occurred_at=datetime.now(UTC),
        tenant_id=tenant_id,
        app_id=app_id,
        **fields,
    )


async def _seconds_until(check: Callable[[], Awaitable[bool]], limit: float = 1.0) -> float:
    """How long until ``check`` holds; fails the test past ``limit`` seconds."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < limit, f"still not refused after {limit}s"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_revoked_key_is_refused_within_one_second(
    gateway: httpx.AsyncClient, identity: FakeIdentity, nc: NATS
) -> None:
    tenant = identity.tenant()
    key, resolved = identity.add_key(tenant)
    assert (await gateway.get("/v1/tenants/me", headers=bearer(key))).status_code == 200
    key_hash = next(h for h, k in identity.keys.items() if k == resolved)

    await _publish(
        nc, _event(ApiKeyRevoked, tenant, key_id=resolved.key_id, kind="tenant", key_hash=key_hash)
    )

    async def refused() -> bool:
        return (await gateway.get("/v1/tenants/me", headers=bearer(key))).status_code == 401

    # identity still answers for the key here: the event alone must stop it
    assert await _seconds_until(refused) < 1.0
    assert identity.calls[RESOLVE_KEY] == 1


async def test_archived_app_stops_its_keys_and_app_header_within_one_second(
    gateway: httpx.AsyncClient, identity: FakeIdentity, nc: NATS
) -> None:
    tenant = identity.tenant()
    app = identity.add_app(tenant)
    app_key, _ = identity.add_key(tenant, app)
    tenant_key, _ = identity.add_key(tenant)
    token = identity.token(tid=tenant)
    as_app = [
        bearer(app_key),
        {**bearer(tenant_key), "X-StackBE-App": app},
        {**bearer(token), "X-StackBE-App": app},
    ]
    for headers in as_app:
        assert (await gateway.get("/v1/customers", headers=headers)).status_code == 200

    await _publish(nc, _event(AppArchived, tenant, app, archived_at=datetime.now(UTC)))
    # what identity answers from now on, once the gateway asks again
    identity.apps.pop((tenant, app))
    for key_hash in [h for h, k in identity.keys.items() if k.app_id == app]:
        identity.keys.pop(key_hash)

    async def refused() -> bool:
        statuses = [(await gateway.get("/v1/customers", headers=h)).status_code for h in as_app]
        return statuses == [401, 404, 404]

    assert await _seconds_until(refused) < 1.0
    still = await gateway.get("/v1/tenants/me", headers=bearer(tenant_key))
    assert still.status_code == 200


async def test_removed_members_tokens_are_refused_within_one_second(
    gateway: httpx.AsyncClient, identity: FakeIdentity, nc: NATS
) -> None:
    tenant, member = identity.tenant(), new_id("mem")
    token = identity.token(sub=member, tid=tenant, iat=int(time.time()) - 5)
    assert (await gateway.get("/v1/members", headers=bearer(token))).status_code == 200

    await _publish(nc, _event(MemberRemoved, tenant, member_id=member))

    async def refused() -> bool:
        return (await gateway.get("/v1/members", headers=bearer(token))).status_code == 401

    assert await _seconds_until(refused) < 1.0


async def test_a_signed_out_sessions_tokens_are_refused_within_one_second(
    gateway: httpx.AsyncClient, identity: FakeIdentity, nc: NATS
) -> None:
    tenant, member = identity.tenant(), new_id("mem")
    ended = identity.token(sub=member, tid=tenant, sid="sess_ended")
    other = identity.token(sub=member, tid=tenant, sid="sess_other")
    assert (await gateway.get("/v1/members", headers=bearer(ended))).status_code == 200

    await _publish(nc, _event(MemberSignedOut, tenant, member_id=member, session_id="sess_ended"))

    async def refused() -> bool:
        return (await gateway.get("/v1/members", headers=bearer(ended))).status_code == 401

    assert await _seconds_until(refused) < 1.0
    # The member's other sessions go on.
    assert (await gateway.get("/v1/members", headers=bearer(other))).status_code == 200


async def test_a_member_removed_before_the_gateway_started_stays_refused(
    make_gateway: Any, identity: FakeIdentity, nc: NATS
) -> None:
    tenant, member = identity.tenant(), new_id("mem")
    token = identity.token(sub=member, tid=tenant, iat=int(time.time()) - 5)
    await _publish(nc, _event(MemberRemoved, tenant, member_id=member))

    async with make_gateway() as gateway:
        response = await gateway.get("/v1/members", headers=bearer(token))

    assert response.status_code == 401


async def test_cached_credentials_are_forgotten_when_nats_reconnects(
    make_gateway: Any, upstream: Any
) -> None:
    with tempfile.TemporaryDirectory(prefix="stackbe-gw-nats-") as tmp:
        server = NatsServer(Path(tmp) / "js").start()
        identity_nc = await nats.connect(
            server.url, reconnect_time_wait=0.1, max_reconnect_attempts=-1
        )
        identity = await FakeIdentity(identity_nc).start()
        try:
            async with make_gateway(nats_url=server.url) as gateway:
                key, _ = identity.add_key(identity.tenant())
                assert (await gateway.get("/v1/tenants/me", headers=bearer(key))).status_code == 200
                identity.keys.clear()  # revoked while this gateway could not hear about it

                server.kill()
                await asyncio.sleep(0.2)
                server.start()

                async def refused() -> bool:
                    response = await gateway.get("/v1/tenants/me", headers=bearer(key))
                    return response.status_code == 401

                await _seconds_until(refused, limit=10.0)
            assert identity.calls[RESOLVE_KEY] >= 2
        finally:
            await identity.stop()
            await identity_nc.close()
            server.stop()


async def test_a_role_change_makes_older_tokens_refresh(
    gateway: httpx.AsyncClient, identity: FakeIdentity, nc: NATS
) -> None:
    tenant, member = identity.tenant(), new_id("mem")
    old = identity.token(sub=member, tid=tenant, role="admin", iat=int(time.time()) - 5)
    assert (await gateway.get("/v1/members", headers=bearer(old))).status_code == 200

    await _publish(nc, _event(MemberUpdated, tenant, member_id=member, role="viewer"))

    async def must_refresh() -> bool:
        response = await gateway.get("/v1/members", headers=bearer(old))
        return response.status_code == 401 and response.json()["code"] == "TOKEN_EXPIRED"

    assert await _seconds_until(must_refresh) < 1.0
    fresh = identity.token(sub=member, tid=tenant, role="viewer", iat=int(time.time()) + 1)
    assert (await gateway.get("/v1/members", headers=bearer(fresh))).status_code == 200
