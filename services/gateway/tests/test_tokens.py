"""Dashboard access tokens: EdDSA only, every required claim checked, keys from identity."""

from __future__ import annotations

import time

import httpx
import jwt

from stackbe_common.ids import new_id
from stackbe_common.scope import verify_scope
from stackbe_events.rpc import JWKS
from stackbe_gateway.config import GatewaySettings

from .support import FakeIdentity, Upstream, bearer, header_of


def _refused(response: httpx.Response, code: str = "UNAUTHORIZED") -> None:
    assert response.status_code == 401, response.text
    assert response.json()["code"] == code


async def test_a_member_token_reaches_the_service_with_the_member_scope(
    gateway: httpx.AsyncClient,
    identity: FakeIdentity,
    upstream: Upstream,
    settings: GatewaySettings,
) -> None:
    member, tenant, session = new_id("mem"), new_id("ten"), new_id("fam")
    token = identity.token(sub=member, tid=tenant, role="viewer", sid=session)

    response = await gateway.get("/v1/members", headers=bearer(token))

    assert response.status_code == 200, response.text
    scope = verify_scope(header_of(upstream.requests[-1], "x-stackbe-scope"), settings.secret)
    assert (scope.principal.kind, scope.principal.id) == ("member", member)
    assert (scope.tenant_id, scope.app_id, scope.role) == (tenant, None, "viewer")
    assert scope.session_id == session


async def test_a_customer_session_token_reaches_its_app_as_that_customer(
    gateway: httpx.AsyncClient,
    identity: FakeIdentity,
    upstream: Upstream,
    settings: GatewaySettings,
) -> None:
    customer, tenant, app = new_id("cust"), new_id("ten"), new_id("app")
    token = identity.token(aud=app, kind="customer", sub=customer, tid=tenant, role=None)

    response = await gateway.get(f"/v1/apps/{app}/auth/session", headers=bearer(token))

    assert response.status_code == 200, response.text
    scope = verify_scope(header_of(upstream.requests[-1], "x-stackbe-scope"), settings.secret)
    assert (scope.principal.kind, scope.principal.id) == ("customer", customer)
    assert (scope.tenant_id, scope.app_id, scope.role) == (tenant, app, None)


async def test_a_token_for_an_app_that_does_not_name_a_customer_is_refused(
    gateway: httpx.AsyncClient, identity: FakeIdentity, upstream: Upstream
) -> None:
    app = new_id("app")
    for claims in ({"aud": app}, {"aud": app, "kind": "customer", "sub": new_id("mem")}):
        response = await gateway.get("/v1/members", headers=bearer(identity.token(**claims)))
        assert response.status_code == 401, claims
    assert upstream.requests == []


async def test_a_member_token_may_name_an_app_of_its_tenant(
    gateway: httpx.AsyncClient,
    identity: FakeIdentity,
    upstream: Upstream,
    settings: GatewaySettings,
) -> None:
    tenant = identity.tenant()
    app = identity.add_app(tenant)
    token = identity.token(tid=tenant)

    mine = await gateway.get("/v1/customers", headers={**bearer(token), "X-StackBE-App": app})
    foreign = await gateway.get(
        "/v1/customers",
        headers={**bearer(token), "X-StackBE-App": identity.add_app(identity.tenant())},
    )

    assert mine.status_code == 200
    scope = verify_scope(header_of(upstream.requests[-1], "x-stackbe-scope"), settings.secret)
    assert (scope.tenant_id, scope.app_id) == (tenant, app)
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "APP_NOT_FOUND"


async def test_a_token_with_alg_none_is_refused(
    gateway: httpx.AsyncClient, identity: FakeIdentity, upstream: Upstream
) -> None:
    kid = next(iter(identity.signing))
    token = jwt.encode(identity.claims(), None, algorithm="none", headers={"kid": kid})

    _refused(await gateway.get("/v1/members", headers=bearer(token)))
    assert upstream.requests == []


async def test_a_token_signed_with_hs256_is_refused(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    kid, private = next(iter(identity.signing.items()))
    public = jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)["x"]
    token = jwt.encode(identity.claims(), public, algorithm="HS256", headers={"kid": kid})

    _refused(await gateway.get("/v1/members", headers=bearer(token)))


async def test_a_token_for_another_audience_is_refused(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    token = identity.token(aud="stackbe-customer")

    _refused(await gateway.get("/v1/members", headers=bearer(token)))


async def test_a_token_from_another_issuer_is_refused(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    _refused(await gateway.get("/v1/members", headers=bearer(identity.token(iss="evil"))))


async def test_an_expired_token_is_refused_as_token_expired(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    now = int(time.time())
    token = identity.token(iat=now - 1000, exp=now - 60)

    _refused(await gateway.get("/v1/members", headers=bearer(token)), "TOKEN_EXPIRED")


async def test_a_token_missing_a_required_claim_is_refused(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    for missing in ("exp", "iat", "iss", "aud", "sub"):
        token = identity.token(**{missing: None})
        _refused(await gateway.get("/v1/members", headers=bearer(token)))


async def test_a_token_without_a_member_tenant_or_role_is_refused(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    for claims in ({"sub": "cust_1"}, {"tid": None}, {"role": "superuser"}):
        token = identity.token(**claims)
        _refused(await gateway.get("/v1/members", headers=bearer(token)))


async def test_a_token_with_a_forged_signature_is_refused(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    head, _payload, signature = identity.token().split(".")
    other = identity.token(role="owner").split(".")[1]

    _refused(await gateway.get("/v1/members", headers=bearer(f"{head}.{other}.{signature}")))
    _refused(await gateway.get("/v1/members", headers=bearer("not-a-jwt")))


async def test_a_new_signing_key_is_fetched_once_and_garbage_kids_do_not_flood_identity(
    gateway: httpx.AsyncClient, identity: FakeIdentity
) -> None:
    assert (await gateway.get("/v1/members", headers=bearer(identity.token()))).status_code == 200
    before = identity.calls[JWKS]

    identity.rotate_signing_key()
    rotated = await gateway.get("/v1/members", headers=bearer(identity.token()))
    after_rotation = identity.calls[JWKS]
    for _ in range(5):
        private = next(iter(identity.signing.values()))
        garbage = jwt.encode(
            identity.claims(), private, algorithm="EdDSA", headers={"kid": new_id("kid")}
        )
        _refused(await gateway.get("/v1/members", headers=bearer(garbage)))

    assert rotated.status_code == 200, rotated.text
    assert after_rotation == before + 1
    assert identity.calls[JWKS] == after_rotation
