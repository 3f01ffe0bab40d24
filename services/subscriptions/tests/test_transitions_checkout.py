"""Transitions from checkout, and at period and trial ends."""

from __future__ import annotations

from datetime import datetime, timedelta

from .transitions import (
    GRACE,
    SECOND,
    add_months,
    advance_to,
    assert_events,
    behave,
    catalog,
    check,
    checkout,
    complete,
    now,
    pays,
    subscribe,
    ts,
)

# 1. Checkout


async def test_checkout_with_a_paid_first_charge_is_active(api, app, db):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Basic")
    start = ts(sub["createdAt"])
    assert sub["planId"] == app.plans["Basic"]
    check(sub, status="active", currentPeriodStart=start, currentPeriodEnd=add_months(start, 1))
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [(1000, "initial", "succeeded")]
    assert ts(payments[0]["createdAt"]) == start
    await assert_events(db, sub, [("created", 1)])


async def test_checkout_of_a_trial_plan_is_trialing_without_a_charge(api, app, db):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Trial")
    start = ts(sub["createdAt"])
    trial_end = start + timedelta(days=14)
    check(
        sub,
        status="trialing",
        currentPeriodStart=start,
        currentPeriodEnd=trial_end,
        trialEnd=trial_end,
    )
    assert await api.payments(app, sub["id"]) == []
    await assert_events(db, sub, [("created", 1)])


async def test_checkout_with_a_failed_first_charge_is_incomplete(api, app, db):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Basic", outcome="failed")
    check(sub, status="incomplete", currentPeriodStart=None, currentPeriodEnd=None)
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [(1000, "initial", "failed")]
    assert payments[0]["failureReason"]
    await assert_events(db, sub, [("created", 1)])


async def test_completing_the_session_again_pays_an_incomplete_subscription(api, app, db):
    await catalog(app)
    customer = await app.customer()
    session = await checkout(api, app, "Basic", customer)
    first = await complete(api, app, session["id"], "failed")
    assert first.status_code == 200, first.text
    incomplete = first.json()["subscription"]
    assert incomplete["status"] == "incomplete"

    second = await complete(api, app, session["id"], "succeeded")
    assert second.status_code == 200, second.text
    sub = second.json()["subscription"]
    assert sub["id"] == incomplete["id"] == second.json()["subscriptionId"]
    at = ts(sub["updatedAt"])
    check(sub, status="active", currentPeriodStart=at, currentPeriodEnd=add_months(at, 1))
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [(1000, "initial", "failed"), (1000, "initial", "succeeded")]
    assert ts(payments[1]["createdAt"]) == at
    await assert_events(db, sub, [("created", 1), ("updated", 2)])

    third = await complete(api, app, session["id"], "succeeded")  # paid: changes nothing
    assert third.status_code == 200, third.text
    assert third.json()["subscription"] == sub
    assert len(await api.payments(app, sub["id"])) == 2
    listed = await api.ok("GET", f"/v1/subscriptions?customerId={customer}", app.key())
    assert [s["id"] for s in listed["data"]] == [sub["id"]]
    await assert_events(db, sub, [("created", 1), ("updated", 2)])


async def test_an_unpaid_incomplete_subscription_is_canceled_23_hours_later(api, app, db):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Basic", outcome="failed")
    expires = ts(sub["createdAt"]) + timedelta(hours=23)
    await advance_to(api, app, expires - SECOND)
    assert await api.sub(app, sub["id"]) == sub
    await advance_to(api, app, expires)
    sub = await api.sub(app, sub["id"])
    check(
        sub, status="canceled", canceledAt=expires, currentPeriodStart=None, currentPeriodEnd=None
    )
    assert pays(await api.payments(app, sub["id"])) == [(1000, "initial", "failed")]
    await assert_events(db, sub, [("created", 1), ("canceled", 2)])


# 2. Period and trial ends


async def test_an_active_subscription_renews_at_period_end(api, app, db):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Basic")
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    await advance_to(api, app, end - SECOND)
    assert await api.sub(app, sub["id"]) == sub
    await advance_to(api, app, end)
    sub = await api.sub(app, sub["id"])
    check(sub, status="active", currentPeriodStart=end, currentPeriodEnd=add_months(start, 2))
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [(1000, "initial", "succeeded"), (1000, "renewal", "succeeded")]
    assert ts(payments[1]["createdAt"]) == end
    await assert_events(db, sub, [("created", 1), ("updated", 2)])


async def test_monthly_periods_keep_the_anchor_day_across_short_months(api, app, db):
    await catalog(app)
    next_year = (await now(api, app)).year + 1
    await advance_to(api, app, datetime.fromisoformat(f"{next_year}-01-31T12:00:00+00:00"))
    sub, _ = await subscribe(api, app, "Basic")
    anchor = ts(sub["currentPeriodStart"])
    assert ts(sub["currentPeriodEnd"]) == add_months(anchor, 1)  # 28 or 29 February
    for months in (1, 2, 3):
        await advance_to(api, app, add_months(anchor, months))
        sub = await api.sub(app, sub["id"])
        check(
            sub,
            status="active",
            currentPeriodStart=add_months(anchor, months),
            currentPeriodEnd=add_months(anchor, months + 1),  # 31 March, 30 April, 31 May
        )
    assert [p["kind"] for p in await api.payments(app, sub["id"])] == ["initial"] + ["renewal"] * 3


async def test_a_trial_becomes_active_when_charged_at_its_end(api, app, db):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Trial")
    trial_end = ts(sub["trialEnd"])
    await advance_to(api, app, trial_end - SECOND)
    assert await api.sub(app, sub["id"]) == sub
    await advance_to(api, app, trial_end)
    sub = await api.sub(app, sub["id"])
    check(
        sub,
        status="active",
        currentPeriodStart=trial_end,
        currentPeriodEnd=add_months(trial_end, 1),
        trialEnd=trial_end,  # when the trial ended
    )
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [(1000, "renewal", "succeeded")]
    assert ts(payments[0]["createdAt"]) == trial_end
    await assert_events(db, sub, [("created", 1), ("updated", 2)])


async def test_a_trial_whose_end_charge_fails_is_past_due(api, app, db):
    await catalog(app)
    sub, customer = await subscribe(api, app, "Trial")
    trial_end = ts(sub["trialEnd"])
    await behave(api, app, customer, "fail")
    await advance_to(api, app, trial_end)
    sub = await api.sub(app, sub["id"])
    check(
        sub,
        status="past_due",
        currentPeriodStart=trial_end,
        currentPeriodEnd=add_months(trial_end, 1),
        trialEnd=trial_end,
        graceEndsAt=trial_end + GRACE,
    )
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [(1000, "renewal", "failed")]
    assert ts(payments[0]["createdAt"]) == trial_end
    await assert_events(db, sub, [("created", 1), ("updated", 2)])
