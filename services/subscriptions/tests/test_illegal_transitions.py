"""Transitions the state machine refuses: each a 409 with its code, and nothing changed
(the subscription as it was, no payment, no event), except the failed payment of a
refused upgrade, which stays on record."""

from __future__ import annotations

from datetime import timedelta

import pytest

from .conftest import subjects
from .transitions import (
    act,
    behave,
    catalog,
    checkout,
    complete,
    in_state,
    pays,
    prorated,
    subscribe,
    ts,
)

LIVE = ["active", "trialing", "past_due", "paused", "incomplete"]

# (status, action, body with plan names for ids, code)
REFUSED = [
    *[(s, "reactivate", None, "SUBSCRIPTION_NOT_CANCELING") for s in LIVE],
    ("canceled", "cancel", {"atPeriodEnd": False}, "SUBSCRIPTION_CANCELED"),
    ("canceled", "cancel", {"atPeriodEnd": True}, "SUBSCRIPTION_CANCELED"),
    ("canceled", "reactivate", None, "SUBSCRIPTION_CANCELED"),
    ("canceled", "pause", None, "SUBSCRIPTION_CANCELED"),
    ("canceled", "resume", None, "SUBSCRIPTION_CANCELED"),
    ("canceled", "change-plan", {"planId": "Pro"}, "SUBSCRIPTION_CANCELED"),
    *[(s, "resume", None, "SUBSCRIPTION_NOT_PAUSED") for s in LIVE if s != "paused"],
    ("past_due", "pause", None, "SUBSCRIPTION_PAST_DUE"),
    ("past_due", "change-plan", {"planId": "Pro"}, "SUBSCRIPTION_PAST_DUE"),
    ("incomplete", "pause", None, "SUBSCRIPTION_INCOMPLETE"),
    ("incomplete", "change-plan", {"planId": "Pro"}, "SUBSCRIPTION_INCOMPLETE"),
    ("paused", "pause", None, "SUBSCRIPTION_PAUSED"),
    ("paused", "change-plan", {"planId": "Pro"}, "SUBSCRIPTION_PAUSED"),
    ("paused", "cancel", {"atPeriodEnd": True}, "SUBSCRIPTION_PAUSED"),
    ("incomplete", "cancel", {"atPeriodEnd": True}, "SUBSCRIPTION_INCOMPLETE"),
    ("active", "change-plan", {"planId": "Basic"}, "SAME_PLAN"),
    ("trialing", "change-plan", {"planId": "Trial"}, "SAME_PLAN"),
    ("active", "change-plan", {"planId": "Euro"}, "CURRENCY_MISMATCH"),
    ("trialing", "change-plan", {"planId": "Euro"}, "CURRENCY_MISMATCH"),
    ("active", "change-plan", {"planId": "Old"}, "PLAN_DEPRECATED"),
    ("trialing", "change-plan", {"planId": "Old"}, "PLAN_DEPRECATED"),
]


@pytest.mark.parametrize(
    ("status", "action", "body", "code"),
    REFUSED,
    ids=[
        f"{s}-{a}-{(b or {}).get('planId', b and b.get('atPeriodEnd'))}" for s, a, b, _ in REFUSED
    ],
)
async def test_a_refused_transition_changes_nothing(api, app, db, status, action, body, code):
    await catalog(app)
    sub, _ = await in_state(api, app, status)
    if body and "planId" in body:
        body = {**body, "planId": app.plans[body["planId"]]}
    payments = await api.payments(app, sub["id"])
    events = await subjects(db, sub["id"])

    r = await act(api, app, sub["id"], action, body)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == code, r.text
    assert await api.sub(app, sub["id"]) == sub
    assert await api.payments(app, sub["id"]) == payments
    assert await subjects(db, sub["id"]) == events


@pytest.mark.parametrize("status", LIVE)
async def test_a_second_checkout_for_a_customer_with_a_live_subscription(api, app, db, status):
    await catalog(app)
    sub, customer = await in_state(api, app, status)
    events = await subjects(db, sub["id"])
    r = await api.call(
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
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "SUBSCRIPTION_EXISTS", r.text
    assert await api.sub(app, sub["id"]) == sub
    assert await subjects(db, sub["id"]) == events
    listed = await api.ok("GET", f"/v1/subscriptions?customerId={customer}", app.key())
    assert [s["id"] for s in listed["data"]] == [sub["id"]]


async def test_a_canceled_customer_may_check_out_again(api, app, db):
    await catalog(app)
    old, customer = await in_state(api, app, "canceled")
    session = await checkout(api, app, "Pro", customer)
    r = await complete(api, app, session["id"], "succeeded")
    assert r.status_code == 200, r.text
    new = r.json()["subscription"]
    assert new["id"] != old["id"] and new["status"] == "active"
    assert await api.sub(app, old["id"]) == old


async def test_completing_an_expired_session_is_refused(api, app, db):
    await catalog(app)
    customer = await app.customer()
    session = await checkout(api, app, "Basic", customer)
    await api.advance(app, seconds=25 * 3600)
    r = await complete(api, app, session["id"], "succeeded")
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "CHECKOUT_SESSION_EXPIRED", r.text
    got = await api.ok("GET", f"/v1/checkout/session/{session['id']}", app.key())
    assert got["status"] == "expired" and got["subscriptionId"] is None
    listed = await api.ok("GET", f"/v1/subscriptions?customerId={customer}", app.key())
    assert listed["data"] == []
    assert (await api.ok("GET", "/v1/payments", app.key()))["data"] == []


async def test_a_session_expires_24_hours_after_it_was_created(api, app, db):
    await catalog(app)
    customer = await app.customer()
    session = await checkout(api, app, "Basic", customer)
    expires = ts(session["expiresAt"])
    assert expires == ts(session["createdAt"]) + timedelta(hours=24)
    await api.advance(app, to=(expires - timedelta(seconds=1)).isoformat())
    r = await complete(api, app, session["id"], "succeeded")
    assert r.status_code == 200, r.text
    assert r.json()["subscription"]["status"] == "active"


async def test_an_upgrade_whose_proration_fails_keeps_the_plan_and_the_failed_payment(api, app, db):
    await catalog(app)
    sub, customer = await subscribe(api, app, "Basic")
    await api.advance(app, seconds=10 * 86400)
    sub = await api.sub(app, sub["id"])
    events = await subjects(db, sub["id"])
    await behave(api, app, customer, "fail")

    r = await act(api, app, sub["id"], "change-plan", {"planId": app.plans["Pro"]})
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "PAYMENT_FAILED", r.text
    assert await api.sub(app, sub["id"]) == sub
    assert await subjects(db, sub["id"]) == events
    payments = await api.payments(app, sub["id"])
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    at = ts(payments[1]["createdAt"])
    assert start < at < end
    amount = prorated(1000, 3000, start, end, at)
    assert pays(payments) == [(1000, "initial", "succeeded"), (amount, "proration", "failed")]
    assert payments[1]["failureReason"]
