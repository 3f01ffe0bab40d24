"""API keys and X-StackBE-App: what the gateway forwards, and what it refuses."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec
from nats.aio.client import Client as NATS

from stackbe_common.apikeys import generate_key
from stackbe_common.scope import verify_scope
from stackbe_events.rpc import KEYS_USED, RESOLVE_APP, RESOLVE_KEY, KeysUsed
from stackbe_gateway.config import GatewaySettings

from .support import FakeIdentity, Upstream, bearer, header_of, utc


def _mistype(key: str) -> str:
    i = len(key) // 2
    return key[:i] + ("A" if key[i] != "A" else "B") + key[i + 1 :]


def _error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["statusCode"] == status
    assert body["requestId"] == response.headers["x-request-id"]


async def test_a_mistyped_key_is_refused_without_asking_identity(
    gateway: httpx.AsyncClient, identity: FakeIdentity, upstream: Upstream
) -> None:
    key, _ = identity.add_key(identity.tenant())

    response = await gateway.get("/v1/tenants/me", headers=bearer(_mistype(key)))

    _error(response, 401, "UNAUTHORIZED")
    assert identity.calls[RESOLVE_KEY] == 0
    assert upstream.requests == []


async def test_a_tenant_key_reaches_the_service_with_a_signed_tenant_scope(
    gateway: httpx.AsyncClient,
    identity: FakeIdentity,
    upstream: Upstream,
    settings: GatewaySettings,
) -> None:
    tenant = identity.tenant()
    key, resolved = identity.add_key(tenant)

    response = await gateway.post(
        "/v1/api-keys?expand=x&b=2",
        content=b'{"name":"ci"}',
        headers={
            **bearer(key),
            "Content-Type": "application/json",
            "X-StackBE-Scope": "forged.by-client",
            "x-StackBe-Debug": "1",
            "X-StackBE-Tenant": "ten_other",
            "X-Custom": "kept",
        },
    )

    assert response.status_code == 200, response.text
    seen = upstream.requests[-1]
    assert seen["method"] == "POST"
    assert seen["path"] == "/v1/api-keys"
    assert seen["query"] == "expand=x&b=2"
    assert msgspec.json.decode(__import__("base64").b64decode(seen["body"])) == {"name": "ci"}
    assert header_of(seen, "x-custom") == "kept"
    assert header_of(seen, "authorization") is None  # the raw key never leaves the gateway
    stackbe_headers = [k.lower() for k, _ in seen["headers"] if k.lower().startswith("x-stackbe-")]
    assert stackbe_headers == ["x-stackbe-scope"]
    scope = verify_scope(header_of(seen, "x-stackbe-scope"), settings.secret)
    assert scope.tenant_id == tenant
    assert scope.app_id is None
    assert scope.principal.kind == "tenant_key"
    assert scope.principal.id == resolved.key_id
    assert scope.role == "admin"
    assert scope.request_id == response.headers["x-request-id"]
    assert scope.request_id == header_of(seen, "x-request-id")
    assert scope.client_ip
    assert response.headers["x-upstream"] == "echo"


async def test_an_app_key_reaches_the_service_with_its_tenant_and_app(
    gateway: httpx.AsyncClient,
    identity: FakeIdentity,
    upstream: Upstream,
    settings: GatewaySettings,
) -> None:
    tenant = identity.tenant()
    app = identity.add_app(tenant)
    key, resolved = identity.add_key(tenant, app)

    response = await gateway.get("/v1/customers", headers=bearer(key))

    assert response.status_code == 200, response.text
    scope = verify_scope(header_of(upstream.requests[-1], "x-stackbe-scope"), settings.secret)
    assert (scope.tenant_id, scope.app_id) == (tenant, app)
    assert (scope.principal.kind, scope.principal.id) == ("app_key", resolved.key_id)


async def test_a_warm_key_is_answered_from_memory(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    key, _ = identity.add_key(identity.tenant())

    for _ in range(5):
        assert (await gateway.get("/v1/tenants/me", headers=bearer(key))).status_code == 200

    assert identity.calls[RESOLVE_KEY] == 1


async def test_concurrent_first_requests_share_one_lookup(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    key, _ = identity.add_key(identity.tenant())

    responses = await asyncio.gather(
        *(gateway.get("/v1/tenants/me", headers=bearer(key)) for _ in range(10))
    )

    assert {r.status_code for r in responses} == {200}
    assert identity.calls[RESOLVE_KEY] == 1


async def test_an_unknown_key_is_refused_and_not_asked_about_twice(
    gateway: httpx.AsyncClient, identity: FakeIdentity, upstream: Upstream
) -> None:
    key = generate_key("sbt_")

    for _ in range(3):
        _error(await gateway.get("/v1/tenants/me", headers=bearer(key)), 401, "UNAUTHORIZED")

    assert identity.calls[RESOLVE_KEY] == 1
    assert upstream.requests == []


async def test_an_expired_key_is_refused(
    gateway: httpx.AsyncClient, identity: FakeIdentity, upstream: Upstream
) -> None:
    key, _ = identity.add_key(identity.tenant(), expires_at=utc(-1))

    _error(await gateway.get("/v1/tenants/me", headers=bearer(key)), 401, "UNAUTHORIZED")
    assert upstream.requests == []


async def test_a_cached_key_stops_working_when_it_expires(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    key, _ = identity.add_key(identity.tenant(), expires_at=utc(0.5))
    assert (await gateway.get("/v1/tenants/me", headers=bearer(key))).status_code == 200

    await asyncio.sleep(0.6)

    _error(await gateway.get("/v1/tenants/me", headers=bearer(key)), 401, "UNAUTHORIZED")
    assert identity.calls[RESOLVE_KEY] == 1


async def test_a_credential_that_is_not_a_bearer_is_refused(gateway: httpx.AsyncClient) -> None:
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "sbt_abc"):
        response = await gateway.get("/v1/tenants/me", headers={"Authorization": value})
        _error(response, 401, "UNAUTHORIZED")


async def test_a_tenant_key_may_name_an_app_of_its_tenant(
    gateway: httpx.AsyncClient,
    identity: FakeIdentity,
    upstream: Upstream,
    settings: GatewaySettings,
) -> None:
    tenant = identity.tenant()
    app = identity.add_app(tenant)
    key, _ = identity.add_key(tenant)

    for _ in range(3):
        response = await gateway.get("/v1/customers", headers={**bearer(key), "X-StackBE-App": app})
        assert response.status_code == 200, response.text

    scope = verify_scope(header_of(upstream.requests[-1], "x-stackbe-scope"), settings.secret)
    assert (scope.tenant_id, scope.app_id, scope.principal.kind) == (tenant, app, "tenant_key")
    assert identity.calls[RESOLVE_APP] == 1


async def test_a_tenant_key_naming_another_tenants_app_is_app_not_found(
    gateway: httpx.AsyncClient, identity: FakeIdentity, upstream: Upstream
) -> None:
    other_app = identity.add_app(identity.tenant())
    key, _ = identity.add_key(identity.tenant())

    response = await gateway.get(
        "/v1/customers", headers={**bearer(key), "X-StackBE-App": other_app}
    )

    _error(response, 404, "APP_NOT_FOUND")
    assert upstream.requests == []


async def test_a_malformed_app_id_is_app_not_found_without_a_lookup(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    key, _ = identity.add_key(identity.tenant())

    response = await gateway.get(
        "/v1/customers", headers={**bearer(key), "X-StackBE-App": "cust_123"}
    )

    _error(response, 404, "APP_NOT_FOUND")
    assert identity.calls[RESOLVE_APP] == 0


async def test_an_app_key_may_repeat_its_own_app_but_not_name_another(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    tenant = identity.tenant()
    app, sibling = identity.add_app(tenant), identity.add_app(tenant)
    key, _ = identity.add_key(tenant, app)

    own = await gateway.get("/v1/customers", headers={**bearer(key), "X-StackBE-App": app})
    other = await gateway.get("/v1/customers", headers={**bearer(key), "X-StackBE-App": sibling})

    assert own.status_code == 200
    _error(other, 404, "APP_NOT_FOUND")


async def test_a_key_cannot_be_checked_while_identity_is_down(
    make_gateway: Any, upstream: Upstream
) -> None:
    async with make_gateway() as gateway:
        key = generate_key("sbt_")
        response = await gateway.get("/v1/tenants/me", headers=bearer(key))

    _error(response, 503, "SERVICE_UNAVAILABLE")
    assert upstream.requests == []


async def test_key_use_is_reported_to_identity_in_batches(
    gateway: httpx.AsyncClient, identity: FakeIdentity, nc: NATS
) -> None:
    key, resolved = identity.add_key(identity.tenant())
    reports: asyncio.Queue[KeysUsed] = asyncio.Queue()

    async def collect(msg: Any) -> None:
        await reports.put(msgspec.json.decode(msg.data, type=KeysUsed))

    sub = await nc.subscribe(KEYS_USED, cb=collect)
    await nc.flush()
    for _ in range(3):
        await gateway.get("/v1/tenants/me", headers=bearer(key))

    report = await asyncio.wait_for(reports.get(), timeout=3)
    await sub.unsubscribe()
    assert list(report.used) == [resolved.key_id]
