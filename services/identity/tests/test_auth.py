from __future__ import annotations

import asyncio
import secrets

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stackbe_common.scope import Principal, Scope
from stackbe_common.testing.smtp import token_in
from stackbe_identity.tokens import hash_secret

from .conftest import anonymous


async def sign_in(api, mailbox, email: str, ip: str = "198.51.100.1") -> dict:
    before = len(mailbox.to(email))
    r = await api.call("POST", "/v1/auth/magic-link", anonymous(ip), json={"email": email})
    assert r.status_code == 202
    token = token_in(await mailbox.wait_for(email, after=before))
    r = await api.call("POST", "/v1/auth/verify", json={"token": token})
    assert r.status_code == 200, r.text
    return r.json()


async def test_magic_link_is_202_for_known_and_unknown_emails_alike(api, mailbox):
    tenant = await api.new_tenant()
    known = await api.call("POST", "/v1/auth/magic-link", json={"email": tenant.owner_email})
    unknown = await api.call(
        "POST", "/v1/auth/magic-link", json={"email": "nobody-here@example.com"}
    )
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json() == {"status": "accepted"}
    await mailbox.wait_for(tenant.owner_email)
    await asyncio.sleep(0.2)
    assert mailbox.to("nobody-here@example.com") == []


async def test_confirmation_page_shows_a_form_and_does_not_spend_the_token(api, mailbox, db):
    tenant = await api.new_tenant()
    token = token_in(await mailbox.wait_for(tenant.owner_email))
    page = await api.call("GET", f"/v1/auth/confirm?token={token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'method=post action="/v1/auth/confirm"' in page.text and token in page.text
    row = await db.fetchrow(
        "SELECT used_at FROM magic_links WHERE token_hash = $1", hash_secret(token)
    )
    assert row["used_at"] is None
    done = await api.call("POST", "/v1/auth/confirm", data={"token": token})
    assert done.status_code == 200 and "Signed in" in done.text
    again = await api.call("POST", "/v1/auth/confirm", data={"token": token})
    assert again.status_code == 400 and "already used" in again.text


async def test_verify_issues_an_eddsa_access_token_checked_against_the_jwks(api, mailbox):
    tenant = await api.new_tenant()
    pair = await sign_in(api, mailbox, tenant.owner_email)
    assert pair["expiresIn"] == 900 and pair["member"]["role"] == "owner"
    jwks = (await api.call("GET", "/.well-known/jwks.json")).json()["keys"]
    header = jwt.get_unverified_header(pair["accessToken"])
    assert header["alg"] == "EdDSA" and header["kid"] == jwks[0]["kid"]
    key = jwt.PyJWK(jwks[0]).key
    assert isinstance(key, Ed25519PublicKey)
    claims = jwt.decode(
        pair["accessToken"],
        key,
        algorithms=["EdDSA"],
        audience="stackbe-dashboard",
        issuer="stackbe",
        options={"require": ["exp", "iat", "iss", "aud"]},
    )
    assert claims["sub"] == tenant.owner_id and claims["tid"] == tenant.id
    assert claims["exp"] - claims["iat"] == 900


async def test_a_magic_link_token_works_once(api, mailbox):
    tenant = await api.new_tenant()
    token = token_in(await mailbox.wait_for(tenant.owner_email))
    first = await api.call("POST", "/v1/auth/verify", json={"token": token})
    second = await api.call("POST", "/v1/auth/verify", json={"token": token})
    assert first.status_code == 200
    assert second.status_code == 401 and second.json()["code"] == "TOKEN_ALREADY_USED"


async def test_an_unknown_or_expired_magic_link_token_is_refused(api, mailbox, db):
    r = await api.call("POST", "/v1/auth/verify", json={"token": secrets.token_urlsafe(32)})
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_INVALID"
    tenant = await api.new_tenant()
    token = token_in(await mailbox.wait_for(tenant.owner_email))
    await db.execute(
        "UPDATE magic_links SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
        hash_secret(token),
    )
    r = await api.call("POST", "/v1/auth/verify", json={"token": token})
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_EXPIRED"
    used = await db.fetchval(
        "SELECT used_at FROM magic_links WHERE token_hash = $1", hash_secret(token)
    )
    assert used is None


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(api, mailbox, db):
    tenant = await api.new_tenant()
    first = await sign_in(api, mailbox, tenant.owner_email)
    r = await api.call("POST", "/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert r.status_code == 200
    second = r.json()
    assert second["refreshToken"] != first["refreshToken"]
    # The spent token is presented again: someone copied it.
    r = await api.call("POST", "/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_ALREADY_USED"
    # The newest token of the family no longer works either.
    r = await api.call("POST", "/v1/auth/refresh", json={"refreshToken": second["refreshToken"]})
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_INVALID"
    revoked = await db.fetchval(
        "SELECT bool_and(revoked_at IS NOT NULL) FROM refresh_tokens WHERE member_id = $1",
        tenant.owner_id,
    )
    assert revoked


async def test_logout_revokes_the_session_refresh_tokens(api, mailbox):
    tenant = await api.new_tenant()
    pair = await sign_in(api, mailbox, tenant.owner_email)
    sid = jwt.decode(pair["accessToken"], options={"verify_signature": False})["sid"]
    caller = tenant.member(tenant.owner_id, "owner")
    caller = type(caller)(
        principal=caller.principal, tenant_id=tenant.id, role="owner", session_id=sid
    )
    me = await api.call("GET", "/v1/auth/me", caller)
    assert me.status_code == 200 and me.json()["member"]["email"] == tenant.owner_email
    assert (await api.call("POST", "/v1/auth/logout", caller)).status_code == 204
    r = await api.call("POST", "/v1/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert r.status_code == 401


async def test_magic_links_are_rate_limited_per_email_and_per_ip(api, mailbox):
    tenant = await api.new_tenant()
    await mailbox.wait_for(tenant.owner_email)
    before = len(mailbox.to(tenant.owner_email))
    for i in range(7):
        r = await api.call(
            "POST",
            "/v1/auth/magic-link",
            anonymous(f"192.0.2.{i}"),
            json={"email": tenant.owner_email},
        )
        assert r.status_code == 202
    await asyncio.sleep(0.3)
    # 5 requests per email per hour are sent; the other 2 are dropped without a word.
    assert len(mailbox.to(tenant.owner_email)) - before == 5
    ip = "192.0.2.200"
    codes = []
    for i in range(32):
        r = await api.call(
            "POST", "/v1/auth/magic-link", anonymous(ip), json={"email": f"guess{i}@example.com"}
        )
        codes.append(r.status_code)
    assert codes[:30] == [202] * 30 and codes[30:] == [429, 429]
    assert r.json()["code"] == "RATE_LIMITED" and "retry-after" in r.headers


async def test_logout_and_refresh_reuse_record_that_the_session_ended(api, mailbox, db):
    tenant = await api.new_tenant()
    pair = await sign_in(api, mailbox, tenant.owner_email)
    sid = jwt.decode(pair["accessToken"], options={"verify_signature": False})["sid"]
    caller = Scope(
        principal=Principal(kind="member", id=tenant.owner_id),
        tenant_id=tenant.id,
        role="owner",
        session_id=sid,
    )
    assert (await api.call("POST", "/v1/auth/logout", caller)).status_code == 204
    ended = await db.fetch(
        "SELECT convert_from(payload, 'UTF8')::jsonb->>'memberId' AS member FROM outbox"
        " WHERE subject = 'stackbe.identity.member.signed_out.v1'"
        " AND convert_from(payload, 'UTF8')::jsonb->>'sessionId' = $1",
        sid,
    )
    assert [r["member"] for r in ended] == [tenant.owner_id]
