"""A Stripe price StackBE made for a plan (``gateway_price.created``, from the
subscriptions service) is stored in the plan's gatewayMappings, through the handler the
catalog's consumer runs; a mapping the tenant gave is never replaced."""

from __future__ import annotations

from datetime import UTC, datetime

from stackbe_catalog.app import SCHEMA
from stackbe_catalog.mappings import on_price_created
from stackbe_common.db import create_pool
from stackbe_common.ids import new_id
from stackbe_events.subscriptions import GatewayPriceCreated

from .conftest import new_app, outbox_subjects


def made(app, plan_id: str, price_id: str) -> GatewayPriceCreated:
    return GatewayPriceCreated(
        id=new_id("evt"),
        occurred_at=datetime.now(UTC),
        tenant_id=app.tenant_id,
        app_id=app.id,
        plan_id=plan_id,
        gateway="stripe",
        gateway_id=new_id("gw"),
        price_id=price_id,
        product_id="prod_stripe1",
    )


async def test_a_made_price_is_stored_once_and_a_given_one_is_kept(api, catalog_db, db):
    app = new_app()
    product = await api.product(app)
    plan = await api.plan(app, product["id"])
    given = await api.plan(
        app, product["id"], name="Given", gatewayMappings={"stripe": {"priceId": "price_mine"}}
    )
    pool = await create_pool(catalog_db, SCHEMA, max_size=1)
    try:
        async with pool.acquire() as conn:
            await on_price_created(conn, made(app, plan["id"], "price_made"))
            await on_price_created(conn, made(app, plan["id"], "price_again"))
            await on_price_created(conn, made(app, given["id"], "price_other"))
    finally:
        await pool.close()

    mapped = (await api.call("GET", f"/v1/plans/{plan['id']}", app.key())).json()
    kept = (await api.call("GET", f"/v1/plans/{given['id']}", app.key())).json()
    assert mapped["gatewayMappings"] == {"stripe": {"priceId": "price_made"}}
    assert mapped["version"] == plan["version"] + 1
    assert kept["gatewayMappings"] == {"stripe": {"priceId": "price_mine"}}
    assert kept["version"] == given["version"]
    subjects = await outbox_subjects(db, app.id)
    assert subjects.count("stackbe.catalog.plan.updated.v1") == 1
