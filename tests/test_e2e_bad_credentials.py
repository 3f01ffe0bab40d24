"""Bad credentials and bad requests through the gateway: documented errors, nothing changes."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stackbe_common.apikeys import TENANT_PREFIX, generate_key
from stackbe_common.scope import Principal, Scope, sign_scope

from .conftest import assert_error, bearer, new_tenant


async def app_names(http: httpx.AsyncClient, key: str) -> list[str]:
    r = await http.get("/v1/apps?limit=100", headers=bearer(key))
    assert r.status_code == 200
    return [a["name"] for a in r.json()["data"]]


def forged_token(tenant_id: str, **overrides: object) -> str:
    now = int(time.time())
    claims = {
        "iss": "stackbe",
        "aud": "stackbe-dashboard",
        "sub": "mem_x",
        "tid": tenant_id,
        "role": "owner",
        "sid": "sess_x",
        "iat": now,
        "exp": now + 600,
        **overrides,
    }
    return jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "k1"}
    )


def unsigned_token(tenant_id: str) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    body = (
        base64.urlsafe_b64encode(
            f'{{"sub":"mem_x","tid":"{tenant_id}","role":"owner","aud":"stackbe-dashboard",'
            f'"iss":"stackbe","exp":{int(time.time()) + 600},"iat":{int(time.time())}}}'.encode()
        )
        .rstrip(b"=")
        .decode()
    )
    return f"{header}.{body}."


@pytest.mark.parametrize(
    "credential",
    [
        "missing",
        "malformed",
        "mistyped",
        "unknown",
        "expired",
        "revoked",
        "forged_jwt",
        "alg_none",
    ],
)
async def test_a_bad_credential_gets_401_and_changes_nothing(http, credential):
    created = await new_tenant(http)
    good, tenant_id = created["apiKey"], created["tenant"]["id"]
    if credential == "missing":
        headers = {}
    elif credential == "malformed":
        headers = {"Authorization": "Basic dXNlcjpwYXNz"}
    elif credential == "mistyped":
        headers = bearer(good[:-1] + ("A" if good[-1] != "A" else "B"))
    elif credential == "unknown":
        headers = bearer(generate_key(TENANT_PREFIX))
    elif credential == "expired":
        soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        key = (
            await http.post(
                "/v1/api-keys", headers=bearer(good), json={"name": "short", "expiresAt": soon}
            )
        ).json()
        headers = bearer(key["key"])
        assert (await http.get("/v1/tenants/me", headers=headers)).status_code == 200
        await asyncio.sleep(2.2)
    elif credential == "revoked":
        key = (await http.post("/v1/api-keys", headers=bearer(good), json={"name": "gone"})).json()
        await http.delete(f"/v1/api-keys/{key['id']}", headers=bearer(good))
        headers = bearer(key["key"])
        for _ in range(50):
            if (await http.get("/v1/tenants/me", headers=headers)).status_code == 401:
                break
    elif credential == "forged_jwt":
        headers = bearer(forged_token(tenant_id))
    else:
        headers = bearer(unsigned_token(tenant_id))
    r = await http.post("/v1/apps", headers=headers, json={"name": "Intruder"})
    assert_error(r, 401, "UNAUTHORIZED")
    assert "Intruder" not in await app_names(http, good)


async def test_client_scope_headers_are_ignored_by_the_gateway(http, platform):
    victim = await new_tenant(http)
    attacker = await new_tenant(http)
    forged = sign_scope(
        Scope(
            principal=Principal(kind="tenant_key", id="key_x"),
            tenant_id=victim["tenant"]["id"],
            role="owner",
        ),
        platform.env["STACKBE_INTERNAL_SECRET"].encode(),
    )
    r = await http.post(
        "/v1/apps",
        headers={**bearer(attacker["apiKey"]), "X-StackBE-Scope": forged},
        json={"name": "Planted"},
    )
    assert r.status_code == 201
    assert "Planted" not in await app_names(http, victim["apiKey"])
    assert "Planted" in await app_names(http, attacker["apiKey"])


@pytest.mark.parametrize(
    "body,code",
    [
        (b"{not json", "VALIDATION_ERROR"),
        (b'{"name": "A", "extra": 1}', "VALIDATION_ERROR"),
        (b'{"name": 42}', "VALIDATION_ERROR"),
        (b'{"name": "A", "gracePeriodDays": "7"}', "VALIDATION_ERROR"),
    ],
)
async def test_malformed_bodies_get_400_and_change_nothing(http, body, code):
    key = (await new_tenant(http))["apiKey"]
    r = await http.post(
        "/v1/apps", headers={**bearer(key), "Content-Type": "application/json"}, content=body
    )
    assert_error(r, 400, code)
    assert await app_names(http, key) == []


async def test_a_body_over_one_mebibyte_gets_413_and_changes_nothing(http):
    key = (await new_tenant(http))["apiKey"]
    huge = b'{"name": "' + b"a" * (1024 * 1024) + b'"}'
    r = await http.post(
        "/v1/apps", headers={**bearer(key), "Content-Type": "application/json"}, content=huge
    )
    assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert await app_names(http, key) == []


async def test_a_request_straight_to_a_service_without_the_gateway_signature_gets_401(platform):
    identity = f"http://127.0.0.1:{platform.env['STACKBE_IDENTITY_URL'].rsplit(':', 1)[1]}"
    async with httpx.AsyncClient(base_url=identity) as direct:
        r = await direct.post("/v1/tenants", json={"name": "Sneaky", "ownerEmail": "s@x.io"})
        assert_error(r, 401, "UNAUTHORIZED")
        forged = sign_scope(Scope(principal=Principal(kind="anonymous")), b"not-the-secret")
        r = await direct.post(
            "/v1/tenants",
            json={"name": "Sneaky", "ownerEmail": "s@x.io"},
            headers={"X-StackBE-Scope": forged},
        )
        assert_error(r, 401, "UNAUTHORIZED")
        stale = sign_scope(
            Scope(principal=Principal(kind="anonymous")),
            platform.env["STACKBE_INTERNAL_SECRET"].encode(),
            now=time.time() - 120,
        )
        r = await direct.get("/v1/tenants/me", headers={"X-StackBE-Scope": stale})
        assert_error(r, 401, "UNAUTHORIZED")
