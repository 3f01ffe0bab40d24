"""Row-level security, forced, on every table with a tenant column, in every service's
schema of the platform's database (which every end-to-end test runs on, as the
unprivileged role services log in with). A table added without it fails here.

Then the policy at work, as that role: a transaction narrowed to one tenant (as a
request made with that tenant's credential is) sees that tenant's rows only, cannot
touch another's, nor move a row to another tenant; unset, it sees nothing."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from stackbe_common.testing.plugin import SERVICE_ROLE
from stackbe_common.testing.smtp import Mailbox

from .conftest import SERVICES, bearer, new_app, new_tenant
from .test_e2e_dashboard import sign_in

NARROW = "SELECT set_config('stackbe.tenant_id', $1, true)"


@pytest.fixture
async def as_service(database_url: str, platform: object) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)  # migrated by the platform's services
    try:
        yield conn
    finally:
        await conn.close()


async def test_every_table_with_a_tenant_column_has_forced_row_security(
    as_service: asyncpg.Connection,
) -> None:
    assert await as_service.fetchval("SELECT current_user") == SERVICE_ROLE
    role = await as_service.fetchrow(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    )
    assert (role["rolsuper"], role["rolbypassrls"]) == (False, False)  # it does apply
    tables = await as_service.fetch(
        """
        SELECT n.nspname AS schema, c.relname AS name, c.relrowsecurity AS enabled,
               c.relforcerowsecurity AS forced,
               (SELECT p.qual FROM pg_policies p
                 WHERE p.schemaname = n.nspname AND p.tablename = c.relname
                   AND p.policyname = 'tenant_isolation') AS policy
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
        WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p') AND NOT a.attisdropped
        ORDER BY 1, 2
        """,
        list(SERVICES),
    )
    assert {t["schema"] for t in tables} == set(SERVICES)
    lacking = [
        f"{t['schema']}.{t['name']}"
        for t in tables
        if not (t["enabled"] and t["forced"] and "tenant_visible(tenant_id)" in (t["policy"] or ""))
    ]
    assert lacking == [], f"tables with a tenant column but no forced row security: {lacking}"
    assert len(tables) >= 30


async def _tenant_with_customer(http: httpx.AsyncClient) -> tuple[str, str]:
    tenant = await new_tenant(http)
    _, key = await new_app(http, tenant["apiKey"])
    email = f"rls-{secrets.token_hex(4)}@example.com"
    r = await http.post("/v1/customers", headers=bearer(key), json={"email": email})
    assert r.status_code == 201, r.text
    return tenant["tenant"]["id"], r.json()["id"]


async def test_a_narrowed_transaction_sees_and_touches_its_tenant_only(
    as_service: asyncpg.Connection, http: httpx.AsyncClient
) -> None:
    mine, my_customer = await _tenant_with_customer(http)
    theirs, their_customer = await _tenant_with_customer(http)
    await as_service.execute("SET search_path TO identity")
    both = [my_customer, their_customer]
    count = "SELECT count(*) FROM customers WHERE id = ANY($1::text[])"

    async with as_service.transaction():  # nothing set: nothing visible
        await as_service.execute("RESET stackbe.tenant_id")
        assert await as_service.fetchval(count, both) == 0
    async with as_service.transaction():  # system work sees every tenant
        await as_service.execute(NARROW, "*")
        assert await as_service.fetchval(count, both) == 2

    tx = as_service.transaction()
    await tx.start()
    try:
        await as_service.execute(NARROW, mine)
        assert await as_service.fetchval(count, both) == 1
        # Even asked by id, with no tenant filter in the query:
        assert (
            await as_service.fetchval(
                "SELECT tenant_id FROM customers WHERE id = $1", their_customer
            )
            is None
        )
        touched = await as_service.execute(
            "UPDATE customers SET name = 'taken' WHERE id = $1", their_customer
        )
        assert touched == "UPDATE 0"
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await as_service.execute(
                "UPDATE customers SET tenant_id = $2 WHERE id = $1", my_customer, theirs
            )
    finally:
        await tx.rollback()
    async with as_service.transaction():
        await as_service.execute(NARROW, "*")
        names = await as_service.fetch(
            "SELECT tenant_id, name FROM customers WHERE id = ANY($1::text[])", both
        )
    assert sorted((r["tenant_id"], r["name"]) for r in names) == sorted(
        [(mine, None), (theirs, None)]
    )


async def test_signing_up_with_another_tenants_key_still_makes_the_new_tenant(
    http: httpx.AsyncClient,
) -> None:
    """Sign-up is public: a credential sent along (here an app key of another tenant)
    does not narrow it to that tenant, whose rows the new tenant's are not."""
    _, key = await new_app(http, (await new_tenant(http))["apiKey"])
    email = f"owner-{secrets.token_hex(4)}@example.com"
    r = await http.post("/v1/tenants", headers=bearer(key), json={"name": "0", "ownerEmail": email})
    assert r.status_code == 201, r.text
    made = await http.get("/v1/tenants/me", headers=bearer(r.json()["apiKey"]))
    assert made.json()["id"] == r.json()["tenant"]["id"]


async def test_a_token_in_the_body_works_whatever_bearer_comes_along(
    http: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    """Sign-in and refresh take their credential from the body: another tenant's key sent
    along (a member of two tenants, signed in to one) does not narrow them away."""
    owner = await new_tenant(http)
    other_key = (await new_tenant(http))["apiKey"]
    pair = await sign_in(http, mailbox, owner["ownerEmail"])
    r = await http.post(
        "/v1/auth/refresh",
        headers=bearer(other_key),
        json={"refreshToken": pair["refreshToken"]},
    )
    assert r.status_code == 200, r.text
    me = await http.get("/v1/auth/me", headers=bearer(r.json()["accessToken"]))
    assert me.json()["tenant"]["id"] == owner["tenant"]["id"]
