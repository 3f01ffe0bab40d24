from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
from litestar.testing import AsyncTestClient

from stackbe_common.clock import FixedClock
from stackbe_common.scope import Principal, Scope
from stackbe_common.testing.smtp import token_in
from stackbe_identity import signin_repository
from stackbe_identity.app import create_app

from .conftest import Api, anonymous
from .test_customers import new_app


async def customer(api, tenant, app_id: str, email: str) -> dict[str, Any]:
    r = await api.call("POST", "/v1/customers", tenant.app_key(app_id), json={"email": email})
    assert r.status_code == 201
    return r.json()


async def request_link(api, mailbox, app_id: str, email: str, **extra: Any) -> str:
    before = len(mailbox.to(email))
    r = await api.call(
        "POST", f"/v1/apps/{app_id}/auth/magic-link", anonymous(), json={"email": email, **extra}
    )
    assert r.status_code == 202, r.text
    return token_in(await mailbox.wait_for(email, after=before))


def as_customer(tenant, app_id: str, customer_id: str) -> Scope:
    return Scope(
        principal=Principal(kind="customer", id=customer_id), tenant_id=tenant.id, app_id=app_id
    )


async def test_a_customer_signs_in_by_magic_link_once(api, mailbox, db):
    tenant = await api.new_tenant()
    app = await new_app(api, tenant)
    cust = await customer(api, tenant, app, "buyer@example.com")
    token = await request_link(api, mailbox, app, "buyer@example.com")

    page = await api.call("GET", f"/v1/apps/{app}/auth/confirm?token={token}")
    assert page.status_code == 200 and f'action="/v1/apps/{app}/auth/confirm"' in page.text
    assert await db.fetchval("SELECT used_at FROM customer_links WHERE app_id = $1", app) is None

    first = await api.call("POST", f"/v1/apps/{app}/auth/verify", json={"token": token})
    assert first.status_code == 200, first.text
    session = first.json()
    assert session["customer"]["id"] == cust["id"]
    claims = jwt.decode(session["sessionToken"], options={"verify_signature": False})
    assert claims["aud"] == app and claims["sub"] == cust["id"] and claims["kind"] == "customer"
    assert claims["exp"] - claims["iat"] == 7 * 86400

    second = await api.call("POST", f"/v1/apps/{app}/auth/verify", json={"token": token})
    assert second.status_code == 401 and second.json()["code"] == "TOKEN_ALREADY_USED"


async def test_an_unknown_email_gets_the_same_202_and_no_mail_unless_the_app_creates_customers(
    api, mailbox, db
):
    tenant = await api.new_tenant()
    closed = await new_app(api, tenant, "Closed")
    r = await api.call(
        "POST", f"/v1/apps/{closed}/auth/magic-link", json={"email": "stranger@example.com"}
    )
    assert r.status_code == 202 and r.json() == {"status": "accepted"}
    await asyncio.sleep(0.3)
    assert mailbox.to("stranger@example.com") == []
    assert await db.fetchval("SELECT count(*) FROM customers WHERE app_id = $1", closed) == 0

    opened = (
        await api.call(
            "POST", "/v1/apps", tenant.scope(), json={"name": "Open", "autoCreateCustomers": True}
        )
    ).json()["id"]
    token = await request_link(api, mailbox, opened, "stranger@example.com")
    made = await db.fetchrow("SELECT id FROM customers WHERE app_id = $1", opened)
    session = (
        await api.call("POST", f"/v1/apps/{opened}/auth/verify", json={"token": token})
    ).json()
    assert session["customer"]["id"] == made["id"]


async def test_a_redirect_url_outside_the_apps_allowed_list_is_400_and_sends_nothing(
    api, mailbox, db
):
    tenant = await api.new_tenant()
    app = (
        await api.call(
            "POST",
            "/v1/apps",
            tenant.scope(),
            json={"name": "Web", "allowedRedirectUrls": ["https://shop.example.com/welcome"]},
        )
    ).json()["id"]
    await customer(api, tenant, app, "r@example.com")
    sends = await db.fetchval("SELECT count(*) FROM magic_link_sends WHERE email = 'r@example.com'")
    for bad in (
        "https://evil.example.com/welcome",
        "https://shop.example.com/welcome/../x",
        "javascript:alert(1)",
    ):
        r = await api.call(
            "POST",
            f"/v1/apps/{app}/auth/magic-link",
            json={"email": "r@example.com", "redirectUrl": bad},
        )
        assert r.status_code == 400 and r.json()["field"] == "redirectUrl", r.text
    after = await db.fetchval("SELECT count(*) FROM magic_link_sends WHERE email = 'r@example.com'")
    assert after == sends and mailbox.to("r@example.com") == []


async def test_confirming_with_an_allowed_redirect_sends_the_session_in_the_fragment(api, mailbox):
    tenant = await api.new_tenant()
    back = "https://shop.example.com/welcome"
    app = (
        await api.call(
            "POST", "/v1/apps", tenant.scope(), json={"name": "Web", "allowedRedirectUrls": [back]}
        )
    ).json()["id"]
    await customer(api, tenant, app, "f@example.com")
    token = await request_link(api, mailbox, app, "f@example.com", redirectUrl=back)
    r = await api.call(
        "POST", f"/v1/apps/{app}/auth/confirm", data={"token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    location = urlparse(r.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == back
    assert location.query == ""
    session = parse_qs(location.fragment)["sessionToken"][0]
    assert jwt.decode(session, options={"verify_signature": False})["aud"] == app


async def test_a_session_of_one_app_is_refused_by_another(api):
    tenant = await api.new_tenant()
    first, second = await new_app(api, tenant, "A"), await new_app(api, tenant, "B")
    cust = await customer(api, tenant, first, "two@example.com")
    mine = await api.call(
        "GET", f"/v1/apps/{first}/auth/session", as_customer(tenant, first, cust["id"])
    )
    assert mine.status_code == 200 and mine.json()["customer"]["id"] == cust["id"]
    theirs = await api.call(
        "GET", f"/v1/apps/{second}/auth/session", as_customer(tenant, first, cust["id"])
    )
    assert theirs.status_code == 401 and theirs.json()["code"] == "SESSION_INVALID"


async def test_an_app_mints_a_session_for_its_own_user_for_the_apps_session_length(api):
    tenant = await api.new_tenant()
    app = (
        await api.call(
            "POST", "/v1/apps", tenant.scope(), json={"name": "Long", "customerSessionDays": 30}
        )
    ).json()["id"]
    cust = await customer(api, tenant, app, "own@example.com")
    r = await api.call("POST", f"/v1/customers/{cust['id']}/sessions", tenant.app_key(app))
    assert r.status_code == 201, r.text
    claims = jwt.decode(r.json()["sessionToken"], options={"verify_signature": False})
    assert claims["aud"] == app and claims["exp"] - claims["iat"] == 30 * 86400
    other = await new_app(api, tenant, "Other")
    r = await api.call("POST", f"/v1/customers/{cust['id']}/sessions", tenant.app_key(other))
    assert r.status_code == 404 and r.json()["code"] == "CUSTOMER_NOT_FOUND"


@pytest.fixture
async def clocked(
    identity_settings, identity_db, internal_secret
) -> AsyncIterator[tuple[Api, FixedClock]]:
    clock = FixedClock(datetime.now(UTC))
    async with AsyncTestClient(create_app(identity_settings, clock=clock)) as client:
        yield Api(client, internal_secret), clock


async def test_an_expired_customer_link_is_token_expired(clocked, mailbox):
    api, clock = clocked
    tenant = await api.new_tenant()
    app = await new_app(api, tenant)
    await customer(api, tenant, app, "late@example.com")
    token = await request_link(api, mailbox, app, "late@example.com")
    clock.set(clock.now() + timedelta(minutes=15, seconds=1))
    r = await api.call("POST", f"/v1/apps/{app}/auth/verify", json={"token": token})
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_EXPIRED"


async def test_customer_links_a_day_past_expiry_are_pruned(api, db):
    tenant = await api.new_tenant()
    app = await new_app(api, tenant)
    cust = await customer(api, tenant, app, "pruned@example.com")
    now = datetime.now(UTC)
    ages = {"old": now - timedelta(days=2), "recent": now - timedelta(hours=2), "live": now}
    for label, expires in ages.items():
        await db.execute(
            "INSERT INTO customer_links (token_hash, tenant_id, app_id, customer_id, expires_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            f"{app}-{label}",
            tenant.id,
            app,
            cust["id"],
            expires,
        )
    await signin_repository.prune_expired(db)
    rows = await db.fetch("SELECT token_hash FROM customer_links WHERE app_id = $1", app)
    assert {r["token_hash"] for r in rows} == {f"{app}-recent", f"{app}-live"}
