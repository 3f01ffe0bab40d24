from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import nats
import pytest

from stackbe_common.apikeys import hash_key
from stackbe_common.bus import RemoteError, request
from stackbe_common.clock import SystemClock
from stackbe_common.db import create_pool
from stackbe_common.infra import NatsServer
from stackbe_events import rpc
from stackbe_identity.app import SCHEMA, build_deps
from stackbe_identity.consumers import responders, subscribe_key_use
from stackbe_identity.tokens import SigningKeys

from .test_customers import new_app


@pytest.fixture(scope="module")
async def nc(identity_settings, identity_db) -> AsyncIterator[nats.NATS]:
    """Identity's responders on a nats-server of their own, as the worker runs them (the
    end-to-end suite's identity worker would otherwise answer on a shared server)."""
    with tempfile.TemporaryDirectory(prefix="stackbe-responders-") as tmp:
        server = NatsServer(Path(tmp) / "js").start()
        pool = await create_pool(identity_db, SCHEMA, max_size=2)
        client = await nats.connect(server.url)
        started = responders(client, pool, build_deps(identity_settings, SystemClock()))
        for responder in started:
            await responder.start()
        await subscribe_key_use(client, pool)
        try:
            yield client
        finally:
            for responder in started:
                await responder.stop()
            await client.close()
            await pool.close()
            server.stop()


async def resolve(nc, key: str) -> rpc.ResolvedKey | None:
    return await request(
        nc, rpc.RESOLVE_KEY, rpc.ResolveKey(key_hash=hash_key(key)), rpc.ResolvedKey | None
    )


async def test_a_tenant_key_resolves_to_its_tenant_scope(api, nc):
    tenant = await api.new_tenant()
    resolved = await resolve(nc, tenant.key)
    assert resolved == rpc.ResolvedKey(key_id=tenant.key_id, kind="tenant", tenant_id=tenant.id)


async def test_an_app_key_resolves_until_revoked(api, nc):
    tenant = await api.new_tenant()
    app = (await api.call("POST", "/v1/apps", tenant.scope(), json={"name": "Shop"})).json()
    created = (
        await api.call(
            "POST", f"/v1/apps/{app['id']}/api-keys", tenant.scope(), json={"name": "backend"}
        )
    ).json()
    resolved = await resolve(nc, created["key"])
    assert resolved is not None and resolved.kind == "app" and resolved.app_id == app["id"]
    r = await api.call("DELETE", f"/v1/apps/{app['id']}/api-keys/{created['id']}", tenant.scope())
    assert r.status_code == 200
    assert await resolve(nc, created["key"]) is None


async def test_keys_of_an_archived_app_no_longer_resolve(api, nc):
    tenant = await api.new_tenant()
    app = (await api.call("POST", "/v1/apps", tenant.scope(), json={"name": "Old"})).json()
    key = (
        await api.call("POST", f"/v1/apps/{app['id']}/api-keys", tenant.scope(), json={"name": "k"})
    ).json()["key"]
    found = await request(
        nc,
        rpc.RESOLVE_APP,
        rpc.ResolveApp(tenant_id=tenant.id, app_id=app["id"]),
        rpc.ResolvedApp | None,
    )
    assert found == rpc.ResolvedApp(
        app_id=app["id"], tenant_id=tenant.id, grace_period_days=7, gateway="sandbox", name="Old"
    )
    assert (await api.call("DELETE", f"/v1/apps/{app['id']}", tenant.scope())).status_code == 200
    assert await resolve(nc, key) is None
    gone = await request(
        nc,
        rpc.RESOLVE_APP,
        rpc.ResolveApp(tenant_id=tenant.id, app_id=app["id"]),
        rpc.ResolvedApp | None,
    )
    assert gone is None


async def test_an_app_of_another_tenant_does_not_resolve(api, nc):
    owner, other = await api.new_tenant(), await api.new_tenant()
    app = (await api.call("POST", "/v1/apps", owner.scope(), json={"name": "Mine"})).json()
    answer = await request(
        nc,
        rpc.RESOLVE_APP,
        rpc.ResolveApp(tenant_id=other.id, app_id=app["id"]),
        rpc.ResolvedApp | None,
    )
    assert answer is None


async def test_expired_and_unknown_keys_do_not_resolve(api, nc, db):
    tenant = await api.new_tenant()
    await db.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", tenant.key_id
    )
    assert await resolve(nc, tenant.key) is None
    assert await resolve(nc, "sbt_" + "x" * 38) is None


async def test_jwks_are_served_over_nats(nc, identity_settings):
    jwks = await request(nc, rpc.JWKS, rpc.GetJwks(), rpc.Jwks)
    assert jwks.keys == SigningKeys.parse(identity_settings.jwt_signing_keys).jwks()


async def test_key_use_reported_in_a_batch_is_recorded_as_last_use(api, nc, db):
    tenant = await api.new_tenant()
    used_at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    batch = rpc.KeysUsed(used={tenant.key_id: used_at})
    await nc.publish(rpc.KEYS_USED, msgspec.json.encode(batch))
    for _ in range(100):
        if await db.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", tenant.key_id):
            break
        await asyncio.sleep(0.02)
    assert (
        await db.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", tenant.key_id)
        == used_at
    )
    listed = (await api.call("GET", "/v1/api-keys", tenant.scope())).json()["data"]
    assert listed[0]["lastUsedAt"] == "2026-05-01T12:00:00Z"


async def customer(nc, **fields) -> rpc.ResolvedCustomer | None:
    return await request(
        nc, rpc.RESOLVE_CUSTOMER, rpc.ResolveCustomer(**fields), rpc.ResolvedCustomer | None
    )


async def test_a_customer_is_found_by_id_or_email_and_created_by_email_once(api, nc, db):
    tenant = await api.new_tenant()
    app = (await api.call("POST", "/v1/apps", tenant.scope(), json={"name": "Shop"})).json()["id"]
    scope = {"tenant_id": tenant.id, "app_id": app}

    assert await customer(nc, **scope, email="new@example.com") is None  # no create asked
    made = await asyncio.gather(
        *(customer(nc, **scope, email="New@Example.com", create=True) for _ in range(3))
    )
    assert len({m.customer_id for m in made}) == 1 and sum(m.created for m in made) == 1
    assert made[0].email == "new@example.com"
    by_id = await customer(nc, **scope, customer_id=made[0].customer_id)
    assert by_id is not None and by_id.email == "new@example.com" and not by_id.created
    created_events = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE subject = 'stackbe.identity.customer.created.v1'"
        " AND convert_from(payload, 'UTF8')::jsonb->>'customerId' = $1",
        made[0].customer_id,
    )
    assert created_events == 1


async def test_a_customer_of_another_app_or_tenant_is_not_resolved(api, nc):
    tenant, other = await api.new_tenant(), await api.new_tenant()
    app = (await api.call("POST", "/v1/apps", tenant.scope(), json={"name": "A"})).json()["id"]
    second = (await api.call("POST", "/v1/apps", tenant.scope(), json={"name": "B"})).json()["id"]
    made = await customer(nc, tenant_id=tenant.id, app_id=app, email="a@example.com", create=True)
    assert made is not None
    assert (
        await customer(nc, tenant_id=tenant.id, app_id=second, customer_id=made.customer_id) is None
    )
    assert await customer(nc, tenant_id=other.id, app_id=app, customer_id=made.customer_id) is None
    assert (
        await customer(nc, tenant_id=other.id, app_id=app, email="x@example.com", create=True)
        is None
    )


async def test_a_portal_link_is_mailed_spent_once_and_is_no_app_sign_in_link(api, nc, mailbox):
    tenant = await api.new_tenant()
    app = await new_app(api, tenant)
    made = await api.call(
        "POST", "/v1/customers", tenant.app_key(app), json={"email": "portal@example.com"}
    )
    before = len(mailbox.to("portal@example.com"))
    ask = rpc.PortalLink(app_id=app, email="Portal@Example.com", client_ip="198.51.100.4")

    await request(nc, rpc.PORTAL_LINK, ask, type(None))
    mail = await mailbox.wait_for("portal@example.com", after=before)
    body = mail.get_payload(decode=True).decode()
    token = re.search(r"/portal/[^/\s]+/confirm\?token=(\S+)", body).group(1)
    as_app_link = await api.call("POST", f"/v1/apps/{app}/auth/verify", json={"token": token})
    redeemed = await request(
        nc, rpc.REDEEM_LINK, rpc.RedeemLink(app_id=app, token=token), rpc.Redeemed
    )
    with pytest.raises(RemoteError) as again:
        await request(nc, rpc.REDEEM_LINK, rpc.RedeemLink(app_id=app, token=token), rpc.Redeemed)

    assert f"/portal/{app}/confirm?token=" in body
    assert as_app_link.status_code == 401 and as_app_link.json()["code"] == "TOKEN_INVALID"
    assert redeemed == rpc.Redeemed(tenant_id=tenant.id, customer_id=made.json()["id"])
    assert again.value.error.code == "TOKEN_ALREADY_USED"
