"""The catalog through the gateway: an app key builds products and plans, another app of
the same tenant sees none of them, and every change reaches JetStream as an event."""

from __future__ import annotations

import json

import stackbe_events
from stackbe_events.catalog import PlanCreated, PlanDeprecated, PlanUpdated, ProductCreated

from .conftest import assert_error, bearer, new_app, new_tenant, read_events

EXAMPLE = {"projects": 10, "apiCallsPerMonth": 100000, "features": ["analytics", "exports"]}


async def test_an_app_key_creates_a_product_and_plans_and_the_entitlements_come_back_exactly(
    http, nats_url
):
    tenant_key = (await new_tenant(http))["apiKey"]
    app, app_key = await new_app(http, tenant_key)
    product = await http.post("/v1/products", headers=bearer(app_key), json={"name": "Acme Cloud"})
    assert product.status_code == 201, product.text
    product_id = product.json()["id"]
    created = {}
    for name, cents in (("Pro", 2900), ("Team", 9900)):
        r = await http.post(
            "/v1/plans",
            headers=bearer(app_key),
            json={
                "productId": product_id,
                "name": name,
                "priceCents": cents,
                "currency": "USD",
                "interval": "month",
                "trialDays": 14,
                "entitlements": EXAMPLE,
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["entitlements"] == EXAMPLE
        created[name] = r.json()

    pro = created["Pro"]
    fetched = await http.get(f"/v1/plans/{pro['id']}", headers=bearer(app_key))
    assert fetched.status_code == 200
    assert fetched.json()["entitlements"] == EXAMPLE
    # Stored exactly: the same keys, values, JSON types and order.
    assert json.dumps(EXAMPLE, separators=(",", ":")) in fetched.text
    listed = await http.get(f"/v1/plans?productId={product_id}", headers=bearer(app_key))
    assert [p["name"] for p in listed.json()["data"]] == ["Pro", "Team"]

    grown = {**EXAMPLE, "projects": 25}
    r = await http.patch(
        f"/v1/plans/{pro['id']}", headers=bearer(app_key), json={"entitlements": grown}
    )
    assert r.status_code == 200 and r.json()["entitlements"] == grown
    r = await http.patch(f"/v1/plans/{pro['id']}", headers=bearer(app_key), json={"priceCents": 1})
    assert_error(r, 400, "PLAN_IMMUTABLE_FIELD")
    r = await http.post(f"/v1/plans/{pro['id']}/deprecate", headers=bearer(app_key))
    assert r.status_code == 200 and r.json()["status"] == "deprecated"
    active = await http.get("/v1/plans?status=active", headers=bearer(app_key))
    assert [p["name"] for p in active.json()["data"]] == ["Team"]

    events = await read_events(nats_url, "catalog", lambda e: e.app_id == app, 5)
    assert [type(e) for e in events] == [
        ProductCreated,
        PlanCreated,
        PlanCreated,
        PlanUpdated,
        PlanDeprecated,
    ]
    first_plan, updated, deprecated = events[1], events[3], events[4]
    assert isinstance(first_plan, PlanCreated) and first_plan.plan.entitlements == EXAMPLE
    assert (first_plan.plan.price_cents, first_plan.plan.currency) == (2900, "USD")
    assert (first_plan.plan.interval, first_plan.plan.trial_days) == ("month", 14)
    assert isinstance(updated, PlanUpdated) and updated.plan.entitlements == grown
    assert isinstance(deprecated, PlanDeprecated) and deprecated.plan.status == "deprecated"
    assert [e.plan.version for e in (first_plan, updated, deprecated)] == [1, 2, 3]
    assert all(isinstance(e, stackbe_events.Event) and e.tenant_id for e in events)


async def test_another_app_of_the_same_tenant_sees_none_of_the_apps_data(http):
    tenant_key = (await new_tenant(http))["apiKey"]
    app_a, key_a = await new_app(http, tenant_key)
    app_b, key_b = await new_app(http, tenant_key)
    customer = (
        await http.post("/v1/customers", headers=bearer(key_a), json={"email": "a@example.com"})
    ).json()["id"]
    product = (
        await http.post("/v1/products", headers=bearer(key_a), json={"name": "A's product"})
    ).json()["id"]
    plan_body = {
        "productId": product,
        "name": "A's plan",
        "priceCents": 500,
        "currency": "EUR",
        "interval": "year",
        "entitlements": {"seats": 3},
    }
    plan = (await http.post("/v1/plans", headers=bearer(key_a), json=plan_body)).json()["id"]

    for path, code in (
        (f"/v1/customers/{customer}", "CUSTOMER_NOT_FOUND"),
        (f"/v1/products/{product}", "PRODUCT_NOT_FOUND"),
        (f"/v1/plans/{plan}", "PLAN_NOT_FOUND"),
    ):
        assert_error(await http.get(path, headers=bearer(key_b)), 404, code)
        assert_error(
            await http.patch(path, headers=bearer(key_b), json={"name": "taken"}), 404, code
        )
    for action in ("deprecate", "archive"):
        r = await http.post(f"/v1/plans/{plan}/{action}", headers=bearer(key_b))
        assert_error(r, 404, "PLAN_NOT_FOUND")
    r = await http.post("/v1/plans", headers=bearer(key_b), json=plan_body)
    assert_error(r, 404, "PRODUCT_NOT_FOUND")
    for path in ("/v1/customers", "/v1/products", "/v1/plans"):
        r = await http.get(path, headers=bearer(key_b))
        assert r.status_code == 200 and r.json()["data"] == []
    assert (await http.get(f"/v1/plans/{plan}", headers=bearer(key_a))).json()["name"] == "A's plan"

    # A tenant key reaches an app's data only by naming the app.
    assert (await http.get("/v1/products", headers=bearer(tenant_key))).status_code == 401
    as_a = {**bearer(tenant_key), "X-StackBE-App": app_a}
    as_b = {**bearer(tenant_key), "X-StackBE-App": app_b}
    for path, wanted in (
        ("/v1/customers", customer),
        ("/v1/products", product),
        ("/v1/plans", plan),
    ):
        assert [o["id"] for o in (await http.get(path, headers=as_a)).json()["data"]] == [wanted]
        assert (await http.get(path, headers=as_b)).json()["data"] == []
    assert (await http.get(f"/v1/plans/{plan}", headers=as_a)).status_code == 200
    assert_error(await http.get(f"/v1/plans/{plan}", headers=as_b), 404, "PLAN_NOT_FOUND")


async def test_the_public_api_document_describes_the_catalog_beside_identity(http):
    document = (await http.get("/openapi.json")).json()
    for path in ("/v1/products", "/v1/products/{product_id}", "/v1/plans/{plan_id}/deprecate"):
        assert path in document["paths"], sorted(document["paths"])
    assert "/v1/customers" in document["paths"]
    page = await http.get("/docs")
    assert page.status_code == 200 and "/v1/plans/{plan_id}/archive" in page.text
