"""Projections from events: duplicates and late, older events change nothing; a plan's
new entitlements reach its subscribers; each change is announced once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from stackbe_common.ids import new_id
from stackbe_entitlements.projection import load
from stackbe_events.entitlements import EntitlementsUpdated
from stackbe_events.identity import CustomerCreated

from .conftest import EXAMPLE, HANDLERS, eventually


async def announced(pool, customer: str) -> list[int]:
    """The versions of the customer's entitlements.updated events, in order."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT convert_from(payload, 'UTF8')::jsonb #>> '{entitlements,version}' AS v"
            " FROM outbox WHERE subject = $2"
            " AND convert_from(payload, 'UTF8')::jsonb #>> '{entitlements,customerId}' = $1"
            " ORDER BY id",
            customer,
            EntitlementsUpdated.subject,
        )
    return [int(r["v"]) for r in rows]


async def test_a_duplicated_or_reordered_subscription_event_changes_nothing(api, app, pool):
    plan = await app.plan(EXAMPLE)
    customer = await app.customer()
    created = app.subscription(customer, plan, status="active", version=1)
    sub_id = created.subscription.id
    renewed = app.subscription(customer, plan, status="active", version=2, sub_id=sub_id)
    canceled = app.subscription(customer, plan, status="canceled", version=3, sub_id=sub_id)

    async def access() -> bool:
        r = await api.ok(
            "GET", f"/v1/entitlements/check/analytics?customerId={customer}", app.key()
        )
        return r["hasAccess"]

    await app.feed("subscriptions", created)
    await app.feed("subscriptions", canceled)  # version 3 before version 2
    assert await eventually(access, False) is False
    before = await announced(pool, customer)
    await app.feed("subscriptions", renewed)  # late and older: ignored
    await app.feed("subscriptions", canceled)  # a duplicate (redelivered past the inbox)
    await app.feed("subscriptions", created)
    assert await announced(pool, customer) == before == [1, 2]
    assert await access() is False


async def test_an_older_plan_event_does_not_undo_a_newer_one(api, app, pool):
    plan = await app.plan(EXAMPLE)
    await app.plan({"projects": 99}, plan_id=plan)  # version 2
    customer = await app.customer()
    await app.subscribe(customer, plan)

    async def projects() -> int:
        r = await api.ok("GET", f"/v1/entitlements/check/projects?customerId={customer}", app.key())
        return r.get("value")

    assert await eventually(projects, 99) == 99
    app.versions[plan] = 0  # replay version 1
    await app.plan(EXAMPLE, plan_id=plan)
    assert await projects() == 99 and await announced(pool, customer) == [1]


async def test_a_plan_change_reaches_every_subscriber(api, app, pool):
    plan = await app.plan(EXAMPLE)
    customers = [await app.customer() for _ in range(5)]
    for customer in customers:
        await app.subscribe(customer, plan)
    await app.plan({**EXAMPLE, "features": ["exports"]}, plan_id=plan)

    for customer in customers:

        async def analytics(customer: str = customer) -> bool:
            r = await api.ok(
                "GET", f"/v1/entitlements/check/analytics?customerId={customer}", app.key()
            )
            return r["hasAccess"]

        assert await eventually(analytics, False) is False
        assert await announced(pool, customer) == [1, 2]


@pytest.mark.parametrize("first", ["subscriptions", "identity"])
async def test_a_new_customer_and_its_subscription_handled_at_once_keep_its_external_id(
    api, app, pool, first
):
    # The worker's consumers handle the two streams concurrently; a new customer's
    # customer.created and subscription.created can be in flight together.
    plan = await app.plan(EXAMPLE)
    customer_id, external_id = new_id("cust"), f"ext-{new_id('x')}"
    events = {
        "identity": CustomerCreated(
            id=new_id("evt"),
            occurred_at=datetime.now(UTC),
            tenant_id=app.tenant_id,
            app_id=app.id,
            customer_id=customer_id,
            email=f"{customer_id}@example.com",
            external_id=external_id,
        ),
        "subscriptions": app.subscription(customer_id, plan),
    }
    second = "identity" if first == "subscriptions" else "subscriptions"
    async with pool.acquire() as a, pool.acquire() as b:
        tx_a, tx_b = a.transaction(), b.transaction()
        await tx_a.start()
        await HANDLERS[first][type(events[first])](a, events[first])
        await tx_b.start()
        other = asyncio.create_task(HANDLERS[second][type(events[second])](b, events[second]))
        await asyncio.sleep(0.3)
        assert not other.done()  # its turn comes when the first transaction ends
        await tx_a.commit()
        await asyncio.wait_for(other, 10)
        await tx_b.commit()
    async with pool.acquire() as conn:
        stored = await load(conn, customer_id)
    assert stored is not None
    assert (stored.external_id, stored.status) == (external_id, "active")
    # ... and a check by externalId finds the customer.
    r = await api.ok("GET", f"/v1/entitlements/check/analytics?externalId={external_id}", app.key())
    assert r["hasAccess"] is True


async def test_an_external_id_found_unknown_is_asked_of_postgres_again_soon(api, app, pool):
    # Should the event carrying a customer's externalId ever be missed, a replica that
    # found the externalId unknown finds the customer by itself within seconds.
    plan = await app.plan(EXAMPLE)
    customer_id, external_id = new_id("cust"), f"ext-{new_id('x')}"
    await app.subscribe(customer_id, plan)  # projected before its customer was seen

    async def access() -> bool:
        r = await api.ok(
            "GET", f"/v1/entitlements/check/analytics?externalId={external_id}", app.key()
        )
        return r["hasAccess"]

    assert await access() is False  # no customer with that externalId: remembered
    async with pool.acquire() as conn:  # its row arrives, but no event tells the replica
        await conn.execute(
            "INSERT INTO customers (id, tenant_id, app_id, external_id, seen_at)"
            " VALUES ($1, $2, $3, $4, now())",
            customer_id,
            app.tenant_id,
            app.id,
            external_id,
        )
    assert await eventually(access, True, seconds=10) is True
