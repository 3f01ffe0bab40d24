from __future__ import annotations

import pytest

from stackbe_common.scope import Principal, Scope


async def new_app(api, tenant, name: str = "Shop") -> str:
    r = await api.call("POST", "/v1/apps", tenant.scope(), json={"name": name})
    assert r.status_code == 201
    return r.json()["id"]


def via_tenant(tenant, app_id: str) -> Scope:
    """A tenant key that named the app in X-StackBE-App (the gateway resolved it)."""
    return Scope(
        principal=Principal(kind="tenant_key", id=tenant.key_id),
        tenant_id=tenant.id,
        app_id=app_id,
        role="admin",
    )


async def count(db, tenant_id: str) -> int:
    return await db.fetchval("SELECT count(*) FROM customers WHERE tenant_id = $1", tenant_id)


async def test_a_customer_is_created_with_its_fields_and_event(api, db):
    tenant = await api.new_tenant()
    app = await new_app(api, tenant)
    r = await api.call(
        "POST",
        "/v1/customers",
        tenant.app_key(app),
        json={
            "email": "Ada@Example.com",
            "name": "Ada",
            "externalId": "user-1",
            "metadata": {"plan": "beta", "seats": 3, "vip": True, "note": None},
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("cust_") and body["appId"] == app
    assert (body["email"], body["name"], body["externalId"]) == ("ada@example.com", "Ada", "user-1")
    assert body["metadata"] == {"plan": "beta", "seats": 3, "vip": True, "note": None}
    subjects = await db.fetch(
        "SELECT subject FROM outbox WHERE convert_from(payload, 'UTF8')::jsonb->>'customerId' = $1",
        body["id"],
    )
    assert [r["subject"] for r in subjects] == ["stackbe.identity.customer.created.v1"]


async def test_email_and_external_id_are_unique_per_app_but_not_across_apps(api, db):
    tenant = await api.new_tenant()
    first, second = await new_app(api, tenant, "A"), await new_app(api, tenant, "B")
    body = {"email": "same@example.com", "externalId": "u1"}
    assert (
        await api.call("POST", "/v1/customers", tenant.app_key(first), json=body)
    ).status_code == 201
    for clash in (
        {"email": "SAME@example.com"},
        {"email": "other@example.com", "externalId": "u1"},
    ):
        r = await api.call("POST", "/v1/customers", tenant.app_key(first), json=clash)
        assert r.status_code == 409 and r.json()["code"] == "CUSTOMER_EXISTS"
    assert (
        await api.call("POST", "/v1/customers", tenant.app_key(second), json=body)
    ).status_code == 201
    assert await count(db, tenant.id) == 2


async def test_customers_are_looked_up_by_email_or_external_id(api):
    tenant = await api.new_tenant()
    app = await new_app(api, tenant)
    scope = via_tenant(tenant, app)
    for i in range(3):
        await api.call(
            "POST",
            "/v1/customers",
            scope,
            json={"email": f"c{i}@example.com", "externalId": f"ext-{i}"},
        )
    by_email = (await api.call("GET", "/v1/customers?email=C1@example.com", scope)).json()
    assert [c["externalId"] for c in by_email["data"]] == ["ext-1"]
    by_ext = (await api.call("GET", "/v1/customers?externalId=ext-2", scope)).json()
    assert [c["email"] for c in by_ext["data"]] == ["c2@example.com"]
    page = (await api.call("GET", "/v1/customers?limit=2", scope)).json()
    assert len(page["data"]) == 2 and page["hasMore"] is True


async def test_an_update_replaces_given_fields_and_null_clears(api, db):
    tenant = await api.new_tenant()
    app = await new_app(api, tenant)
    scope = tenant.app_key(app)
    created = (
        await api.call(
            "POST",
            "/v1/customers",
            scope,
            json={
                "email": "b@example.com",
                "name": "Bo",
                "externalId": "x",
                "metadata": {"a": "1"},
            },
        )
    ).json()
    r = await api.call(
        "PATCH",
        f"/v1/customers/{created['id']}",
        scope,
        json={"name": None, "metadata": {"b": "2"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] is None and r.json()["externalId"] == "x"
    assert r.json()["metadata"] == {"b": "2"}
    same = await api.call("PATCH", f"/v1/customers/{created['id']}", scope, json={})
    assert same.status_code == 200
    updates = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE subject = 'stackbe.identity.customer.updated.v1'"
        " AND convert_from(payload, 'UTF8')::jsonb->>'customerId' = $1",
        created["id"],
    )
    assert updates == 1


@pytest.mark.parametrize(
    "metadata",
    [
        {str(i): "v" for i in range(51)},
        {"k" * 41: "v"},
        {"k": "v" * 501},
        {"k": {"nested": True}},
        {"k": ["a"]},
        {"": "v"},
    ],
)
async def test_metadata_beyond_its_limits_is_400_naming_metadata_and_writes_nothing(
    api, db, metadata
):
    tenant = await api.new_tenant()
    app = await new_app(api, tenant)
    r = await api.call(
        "POST",
        "/v1/customers",
        tenant.app_key(app),
        json={"email": "m@example.com", "metadata": metadata},
    )
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR", r.text
    assert r.json()["field"].startswith("metadata")
    assert await count(db, tenant.id) == 0


async def test_another_apps_key_sees_nothing_of_this_apps_customers(api):
    tenant = await api.new_tenant()
    mine, theirs = await new_app(api, tenant, "Mine"), await new_app(api, tenant, "Theirs")
    created = (
        await api.call(
            "POST", "/v1/customers", tenant.app_key(mine), json={"email": "p@example.com"}
        )
    ).json()
    other = tenant.app_key(theirs)
    for method, body in (("GET", None), ("PATCH", {"name": "Hijack"})):
        r = await api.call(method, f"/v1/customers/{created['id']}", other, json=body)
        assert r.status_code == 404 and r.json()["code"] == "CUSTOMER_NOT_FOUND"
    listed = (await api.call("GET", "/v1/customers?limit=100", other)).json()["data"]
    assert listed == []
    looked_up = (await api.call("GET", "/v1/customers?email=p@example.com", other)).json()
    assert looked_up["data"] == []
    unchanged = (
        await api.call("GET", f"/v1/customers/{created['id']}", tenant.app_key(mine))
    ).json()
    assert unchanged["name"] is None


async def test_a_tenant_credential_without_an_app_is_refused(api):
    tenant = await api.new_tenant()
    r = await api.call("POST", "/v1/customers", tenant.scope(), json={"email": "t@example.com"})
    assert r.status_code == 401 and "X-StackBE-App" in r.json()["message"]


async def test_a_customer_session_cannot_use_the_apps_customer_api(api):
    tenant = await api.new_tenant()
    app = await new_app(api, tenant)
    created = (
        await api.call(
            "POST", "/v1/customers", tenant.app_key(app), json={"email": "nosy@example.com"}
        )
    ).json()
    nosy = Scope(
        principal=Principal(kind="customer", id=created["id"]), tenant_id=tenant.id, app_id=app
    )
    for method, path, body in (
        ("GET", "/v1/customers", None),
        ("GET", f"/v1/customers/{created['id']}", None),
        ("PATCH", f"/v1/customers/{created['id']}", {"name": "Me"}),
        ("POST", "/v1/customers", {"email": "other@example.com"}),
        ("POST", f"/v1/customers/{created['id']}/sessions", None),
    ):
        r = await api.call(method, path, nosy, json=body)
        assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED", (method, path)


@pytest.mark.parametrize(
    "body,field",
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b.co", "name": "   "}, "name"),
        ({"email": "a@b.co", "name": "n" * 201}, "name"),
        ({"email": "a@b.co", "externalId": ""}, "externalId"),
        ({"email": "a@b.co", "externalId": "x" * 256}, "externalId"),
        ({"email": "a@b.co", "externalId": 42}, "externalId"),
        ({"email": "a@b.co", "unknown": 1}, "unknown"),
        ({}, "email"),
    ],
)
async def test_a_bad_customer_field_is_400_naming_it_and_writes_nothing(api, db, body, field):
    tenant = await api.new_tenant()
    app = await new_app(api, tenant)
    r = await api.call("POST", "/v1/customers", tenant.app_key(app), json=body)
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR", r.text
    assert r.json()["field"] == field
    assert await count(db, tenant.id) == 0
