"""Projections from events: duplicates and late, older events change nothing; a plan's
new entitlements reach its subscribers; each change is announced once."""

from __future__ import annotations

from stackbe_events.entitlements import EntitlementsUpdated

from .conftest import EXAMPLE, eventually


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
