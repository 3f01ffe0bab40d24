from __future__ import annotations

import json

import msgspec

from stackbe_events import decode
from stackbe_events.catalog import PlanCreated

from .conftest import EXAMPLE_ENTITLEMENTS, new_app, outbox_subjects


async def test_a_product_and_plan_keep_the_example_entitlements_exactly(api, db):
    app = new_app()
    product = await api.product(app, description="Hosted widgets", metadata={"line": "core"})
    assert product["id"].startswith("prod_") and product["appId"] == app.id
    assert (product["name"], product["description"], product["metadata"]) == (
        "Widgets",
        "Hosted widgets",
        {"line": "core"},
    )

    plan = await api.plan(app, product["id"], trialDays=14)
    assert plan["id"].startswith("plan_")
    assert plan["status"] == "active" and plan["version"] == 1
    assert (plan["priceCents"], plan["currency"], plan["interval"], plan["intervalCount"]) == (
        2900,
        "USD",
        "month",
        1,
    )
    assert plan["trialDays"] == 14
    fetched = await api.call("GET", f"/v1/plans/{plan['id']}", app.key())
    assert fetched.status_code == 200
    # The same keys, values, types and order as written.
    raw = fetched.content.decode()
    assert json.loads(raw)["entitlements"] == EXAMPLE_ENTITLEMENTS
    assert (
        '"entitlements":{"projects":10,"apiCallsPerMonth":100000,"features":["analytics","exports"]}'
        in raw
    )

    assert await outbox_subjects(db, app.id) == [
        "stackbe.catalog.product.created.v1",
        "stackbe.catalog.plan.created.v1",
    ]
    payload = await db.fetchval(
        "SELECT payload FROM outbox WHERE subject = 'stackbe.catalog.plan.created.v1' "
        "AND convert_from(payload, 'UTF8')::jsonb->>'appId' = $1",
        app.id,
    )
    event = decode(PlanCreated.subject, payload)
    assert isinstance(event, PlanCreated)
    assert msgspec.to_builtins(event.plan)["entitlements"] == EXAMPLE_ENTITLEMENTS
    assert event.plan.price_cents == 2900 and event.plan.trial_days == 14


async def test_a_product_is_listed_fetched_and_updated_with_a_new_version_only_on_change(api, db):
    app = new_app()
    first = await api.product(app, "First")
    second = await api.product(app, "Second", description="Two")
    page = await api.call("GET", "/v1/products?limit=1", app.key())
    assert page.json()["hasMore"] is True and page.json()["data"][0]["id"] == first["id"]
    rest = await api.call("GET", f"/v1/products?startingAfter={first['id']}", app.key())
    assert [p["id"] for p in rest.json()["data"]] == [second["id"]]

    path = f"/v1/products/{second['id']}"
    r = await api.call("PATCH", path, app.key(), json={"description": None, "metadata": {"a": 1}})
    assert r.status_code == 200
    assert (r.json()["description"], r.json()["metadata"], r.json()["version"]) == (
        None,
        {"a": 1},
        2,
    )
    again = await api.call("PATCH", path, app.key(), json={"name": "Second", "metadata": {"a": 1}})
    assert again.json()["version"] == 2  # nothing changed
    changed = await api.call("PATCH", path, app.key(), json={"metadata": {"a": True}})
    assert changed.json()["version"] == 3  # true is not 1
    assert await outbox_subjects(db, app.id) == [
        "stackbe.catalog.product.created.v1",
        "stackbe.catalog.product.created.v1",
        "stackbe.catalog.product.updated.v1",
        "stackbe.catalog.product.updated.v1",
    ]


async def test_a_plan_changes_name_entitlements_and_metadata_and_keeps_its_price(api, db):
    app = new_app()
    product = await api.product(app)
    plan = await api.plan(app, product["id"], metadata={"tier": "pro"})
    path = f"/v1/plans/{plan['id']}"

    r = await api.call(
        "PATCH", path, app.key(), json={"name": "Pro 2", "entitlements": {"projects": -1}}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["entitlements"], body["version"]) == ("Pro 2", {"projects": -1}, 2)
    assert (body["priceCents"], body["currency"], body["interval"]) == (2900, "USD", "month")
    assert body["metadata"] == {"tier": "pro"}
    same = await api.call("PATCH", path, app.key(), json={"entitlements": {"projects": -1}})
    assert same.json()["version"] == 2
    flipped = await api.call("PATCH", path, app.key(), json={"entitlements": {"projects": True}})
    assert flipped.json()["entitlements"] == {"projects": True} and flipped.json()["version"] == 3
    assert (await outbox_subjects(db, app.id))[-2:] == [
        "stackbe.catalog.plan.updated.v1",
        "stackbe.catalog.plan.updated.v1",
    ]


async def test_deprecate_and_archive_move_a_plan_once_and_lists_filter_by_status(api, db):
    app = new_app()
    product = await api.product(app)
    _, retired, other = [await api.plan(app, product["id"], name=n) for n in "ABC"]
    for _ in range(2):  # repeating is a no-op
        r = await api.call("POST", f"/v1/plans/{retired['id']}/deprecate", app.key())
        assert r.status_code == 200 and r.json()["status"] == "deprecated"
        assert r.json()["version"] == 2
    for _ in range(2):
        r = await api.call("POST", f"/v1/plans/{other['id']}/archive", app.key())
        assert r.status_code == 200 and r.json()["status"] == "archived"
    r = await api.call("POST", f"/v1/plans/{other['id']}/deprecate", app.key())
    assert r.status_code == 409 and r.json()["code"] == "PLAN_ARCHIVED"

    async def names(query: str) -> list[str]:
        r = await api.call("GET", f"/v1/plans{query}", app.key())
        assert r.status_code == 200, r.text
        return [p["name"] for p in r.json()["data"]]

    assert await names("") == ["A", "B", "C"]
    assert await names("?status=active") == ["A"]
    assert await names("?status=deprecated") == ["B"]
    assert await names(f"?status=archived&productId={product['id']}") == ["C"]
    other_product = await api.product(app, "Other")
    assert await names(f"?productId={other_product['id']}") == []
    r = await api.call("GET", "/v1/plans?status=gone", app.key())
    assert r.status_code == 400 and r.json()["field"] == "status"
    r = await api.call("GET", "/v1/plans?productId=nope", app.key())
    assert r.status_code == 400 and r.json()["field"] == "productId"
    subjects = await outbox_subjects(db, app.id)
    assert subjects.count("stackbe.catalog.plan.deprecated.v1") == 1
    assert subjects.count("stackbe.catalog.plan.archived.v1") == 1


async def test_who_may_read_and_write_the_catalog(api, db):
    app = new_app()
    product = await api.product(app)
    viewer = app.via_tenant(role="viewer")
    assert (await api.call("GET", "/v1/products", viewer)).status_code == 200
    r = await api.call("POST", "/v1/products", viewer, json={"name": "No"})
    assert r.status_code == 403
    r = await api.call("PATCH", f"/v1/products/{product['id']}", viewer, json={"name": "No"})
    assert r.status_code == 403
    r = await api.call("GET", "/v1/products", app.customer())
    assert r.status_code == 401  # a customer's session is not the app's credential
    tenant_only = msgspec.structs.replace(app.via_tenant(), app_id=None)
    assert (await api.call("GET", "/v1/plans", tenant_only)).status_code == 401
    assert await db.fetchval("SELECT count(*) FROM products WHERE app_id = $1", app.id) == 1


async def test_a_repeated_idempotency_key_creates_one_plan(api, db):
    app = new_app()
    product = await api.product(app)
    body = {
        "productId": product["id"],
        "name": "Once",
        "priceCents": 0,
        "currency": "eur",
        "interval": "week",
        "entitlements": {},
    }
    headers = {"Idempotency-Key": "plan-once"}
    first = await api.call("POST", "/v1/plans", app.key(), json=body, headers=headers)
    second = await api.call("POST", "/v1/plans", app.key(), json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and first.json()["currency"] == "EUR"
    assert await db.fetchval("SELECT count(*) FROM plans WHERE app_id = $1", app.id) == 1
