"""A plan that live subscriptions use (or are moving to) cannot be archived; the catalog
learns that from subscription events, through the handler its consumer runs."""

from __future__ import annotations

from datetime import UTC, datetime

from stackbe_catalog.usage import on_subscription
from stackbe_common.ids import new_id
from stackbe_events.subscriptions import Subscription, SubscriptionCanceled, SubscriptionUpdated

from .conftest import new_app, outbox_subjects


def event(cls, app, plan_id: str, status: str, version: int, sub_id: str, pending=None):
    now = datetime.now(UTC)
    sub = Subscription(
        id=sub_id,
        app_id=app.id,
        customer_id=new_id("cust"),
        plan_id=plan_id,
        status=status,
        pending_plan_id=pending,
        version=version,
        created_at=now,
        updated_at=now,
    )
    return cls(
        id=new_id("evt"), occurred_at=now, tenant_id=app.tenant_id, app_id=app.id, subscription=sub
    )


async def test_archiving_waits_until_no_live_subscription_uses_the_plan(api, db):
    app = new_app()
    product = await api.product(app)
    plan, cheaper = [await api.plan(app, product["id"], name=n) for n in ("Pro", "Lite")]
    sub_id = new_id("sub")
    await on_subscription(db, event(SubscriptionUpdated, app, plan["id"], "active", 2, sub_id))
    await on_subscription(  # an older version arriving late changes nothing
        db, event(SubscriptionCanceled, app, plan["id"], "canceled", 1, sub_id)
    )

    r = await api.call("POST", f"/v1/plans/{plan['id']}/archive", app.key())
    assert r.status_code == 409 and r.json()["code"] == "PLAN_IN_USE", r.text
    assert "1 live subscription" in r.json()["message"]
    assert (await api.call("GET", f"/v1/plans/{plan['id']}", app.key())).json()[
        "status"
    ] == "active"

    # Moving to the cheaper plan at period end: that plan is in use too.
    await on_subscription(
        db, event(SubscriptionUpdated, app, plan["id"], "active", 3, sub_id, cheaper["id"])
    )
    r = await api.call("POST", f"/v1/plans/{cheaper['id']}/archive", app.key())
    assert r.status_code == 409 and r.json()["code"] == "PLAN_IN_USE"

    await on_subscription(db, event(SubscriptionCanceled, app, plan["id"], "canceled", 4, sub_id))
    for archived in (plan, cheaper):
        r = await api.call("POST", f"/v1/plans/{archived['id']}/archive", app.key())
        assert r.status_code == 200 and r.json()["status"] == "archived"
    assert (await outbox_subjects(db, app.id)).count("stackbe.catalog.plan.archived.v1") == 2


async def test_another_apps_subscriptions_do_not_hold_a_plan(api, db):
    app, other = new_app(), new_app()
    plan = await api.plan(app, (await api.product(app))["id"])
    await on_subscription(
        db, event(SubscriptionUpdated, other, plan["id"], "active", 1, new_id("sub"))
    )
    r = await api.call("POST", f"/v1/plans/{plan['id']}/archive", app.key())
    assert r.status_code == 200
