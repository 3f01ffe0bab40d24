"""Free plans start without checkout; a paid checkout replaces a free subscription."""

from __future__ import annotations

from .conftest import subjects


async def start_free(api, app, customer: str) -> dict:
    """The customer on the app's Free plan, started without checkout."""
    return await api.ok(
        "POST",
        "/v1/subscriptions",
        app.key(),
        json={"customerId": customer, "planId": app.plans["Free"]},
    )


async def test_a_free_plan_starts_at_once_with_no_payment(api, app, db):
    await app.plan("Free", 0)
    customer = await app.customer()
    sub = await start_free(api, app, customer)
    assert (sub["status"], sub["customerId"], sub["planId"]) == (
        "active",
        customer,
        app.plans["Free"],
    )
    assert sub["currentPeriodStart"] and sub["currentPeriodEnd"]
    assert await api.payments(app, sub["id"]) == []
    assert await subjects(db, sub["id"]) == [("created", 1)]


async def test_a_paid_plan_is_refused_and_nothing_starts(api, app, db):
    await app.plan("Pro", 2900)
    customer = await app.customer()
    r = await api.call(
        "POST",
        "/v1/subscriptions",
        app.key(),
        json={"customerId": customer, "planId": app.plans["Pro"]},
    )
    assert r.status_code == 400, r.text
    assert (r.json()["code"], r.json()["field"]) == ("VALIDATION_ERROR", "planId")
    listed = await api.ok("GET", f"/v1/subscriptions?customerId={customer}", app.key())
    assert listed["data"] == []


async def test_a_second_live_subscription_is_refused(api, app):
    await app.plan("Free", 0)
    customer = await app.customer()
    body = {"customerId": customer, "planId": app.plans["Free"]}
    await api.ok("POST", "/v1/subscriptions", app.key(), json=body)
    r = await api.call("POST", "/v1/subscriptions", app.key(), json=body)
    assert r.status_code == 409 and r.json()["code"] == "SUBSCRIPTION_EXISTS", r.text
    listed = await api.ok("GET", f"/v1/subscriptions?customerId={customer}", app.key())
    assert len(listed["data"]) == 1


async def test_a_paid_checkout_replaces_a_free_subscription_when_it_completes(api, app, db):
    await app.plan("Free", 0)
    await app.plan("Pro", 2900)
    customer = await app.customer()
    free = await start_free(api, app, customer)
    pro = await api.subscribe(app, "Pro", customer=customer)
    assert pro["status"] == "active" and pro["id"] != free["id"]
    assert (await api.sub(app, free["id"]))["status"] == "canceled"
    assert await subjects(db, free["id"]) == [("created", 1), ("canceled", 2)]
    live = await api.ok("GET", f"/v1/subscriptions/current?customerId={customer}", app.key())
    assert live["id"] == pro["id"]


async def test_a_paid_subscription_is_not_replaced_by_a_checkout(api, app):
    await app.plan("Pro", 2900)
    await app.plan("Scale", 9900)
    customer = await app.customer()
    await api.subscribe(app, "Pro", customer=customer)
    r = await api.call(
        "POST",
        "/v1/checkout/session",
        app.key(),
        json={
            "customerId": customer,
            "planId": app.plans["Scale"],
            "successUrl": "https://shop.example/done",
            "cancelUrl": "https://shop.example/cancel",
        },
    )
    assert r.status_code == 409 and r.json()["code"] == "SUBSCRIPTION_EXISTS", r.text


async def test_a_declined_paid_checkout_leaves_the_free_subscription_as_it_was(api, app, db):
    await app.plan("Free", 0)
    await app.plan("Pro", 2900)
    customer = await app.customer()
    free = await start_free(api, app, customer)
    session = await api.ok(
        "POST",
        "/v1/checkout/session",
        app.key(),
        json={
            "customerId": customer,
            "planId": app.plans["Pro"],
            "successUrl": "https://shop.example/done",
            "cancelUrl": "https://shop.example/cancel",
        },
    )
    r = await api.call(
        "POST",
        f"/v1/sandbox/checkout/{session['id']}/complete",
        app.key(),
        json={"outcome": "failed"},
    )
    assert r.status_code == 409 and r.json()["code"] == "PAYMENT_DECLINED", r.text
    assert (await api.sub(app, free["id"]))["status"] == "active"
    assert await subjects(db, free["id"]) == [("created", 1)]
    listed = await api.ok("GET", f"/v1/subscriptions?customerId={customer}", app.key())
    assert [s["id"] for s in listed["data"]] == [free["id"]]
    # The same session can still be paid.
    done = await api.ok(
        "POST",
        f"/v1/sandbox/checkout/{session['id']}/complete",
        app.key(),
        json={"outcome": "succeeded"},
    )
    assert done["subscription"]["status"] == "active"
    assert (await api.sub(app, free["id"]))["status"] == "canceled"
