from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import jwt

from stackbe_common.scope import Principal, Scope

from .test_auth import sign_in


async def test_a_logout_racing_a_refresh_leaves_no_live_refresh_token(api, mailbox, db):
    for _ in range(8):
        tenant = await api.new_tenant()  # a fresh owner: sign-in links are limited per email
        pair = await sign_in(api, mailbox, tenant.owner_email)
        sid = jwt.decode(pair["accessToken"], options={"verify_signature": False})["sid"]
        caller = Scope(
            principal=Principal(kind="member", id=tenant.owner_id),
            tenant_id=tenant.id,
            role="owner",
            session_id=sid,
        )
        refreshed, logged_out = await asyncio.gather(
            api.call("POST", "/v1/auth/refresh", json={"refreshToken": pair["refreshToken"]}),
            api.call("POST", "/v1/auth/logout", caller),
        )
        assert logged_out.status_code == 204
        assert refreshed.status_code in (200, 401)
        live = await db.fetchval(
            "SELECT count(*) FROM refresh_tokens WHERE family_id = $1 AND revoked_at IS NULL", sid
        )
        assert live == 0
        if refreshed.status_code == 200:
            again = await api.call(
                "POST", "/v1/auth/refresh", json={"refreshToken": refreshed.json()["refreshToken"]}
            )
            assert again.status_code == 401 and again.json()["code"] == "TOKEN_INVALID"


async def test_two_concurrent_archives_of_one_app_answer_200_and_409(api):
    tenant = await api.new_tenant()
    app = (await api.call("POST", "/v1/apps", tenant.scope(), json={"name": "Race"})).json()
    first, second = await asyncio.gather(
        api.call("DELETE", f"/v1/apps/{app['id']}", tenant.scope()),
        api.call("DELETE", f"/v1/apps/{app['id']}", tenant.scope()),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    loser = first if first.status_code == 409 else second
    assert loser.json()["code"] == "APP_ARCHIVED"


async def test_an_api_key_expiry_beyond_ten_years_is_400_not_500(api, db):
    tenant = await api.new_tenant()
    before = await db.fetchval("SELECT count(*) FROM api_keys WHERE tenant_id = $1", tenant.id)
    for expires in (
        "9999-12-31T23:59:59-14:00",
        (datetime.now(UTC) + timedelta(days=3700)).isoformat(),
    ):
        r = await api.call(
            "POST", "/v1/api-keys", tenant.scope(), json={"name": "forever", "expiresAt": expires}
        )
        assert r.status_code == 400 and r.json()["field"] == "expiresAt", r.text
    after = await db.fetchval("SELECT count(*) FROM api_keys WHERE tenant_id = $1", tenant.id)
    assert after == before


async def test_an_idempotency_key_is_not_applied_to_requests_without_a_credential(api, db):
    key = secrets.token_hex(8)
    emails = [f"anon-{secrets.token_hex(4)}@example.com" for _ in range(2)]
    first, second = [
        await api.call(
            "POST",
            "/v1/tenants",
            json={"name": "Anon", "ownerEmail": email},
            headers={"Idempotency-Key": key},
        )
        for email in emails
    ]
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert first.json()["apiKey"] != second.json()["apiKey"]
    stored = await db.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", key)
    assert stored == 0
