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
