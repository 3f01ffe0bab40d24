"""Changes of plan: upgrades now with proration, downgrades at period end, overrides."""

from __future__ import annotations

from typing import Any

from .transitions import (
    acted,
    add_months,
    advance_to,
    assert_events,
    behave,
    catalog,
    check,
    pays,
    prorated,
    subscribe,
    ts,
)

# 6. Change of plan


async def _ten_days_in(api: Any, app: Any, plan: str) -> tuple[dict[str, Any], str]:
    sub, customer = await subscribe(api, app, plan)
    await api.advance(app, seconds=10 * 86400)
    return sub, customer


async def test_an_upgrade_takes_effect_now_with_a_proration_charge(api, app, db):
    await catalog(app)
    sub, _ = await _ten_days_in(api, app, "Basic")
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    sub = await acted(api, app, sub["id"], "change-plan", {"planId": app.plans["Pro"]})
    at = ts(sub["updatedAt"])
    assert sub["planId"] == app.plans["Pro"]
    check(sub, status="active", currentPeriodStart=start, currentPeriodEnd=end)
    amount = prorated(1000, 3000, start, end, at)
    assert 0 < amount < 2000
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [(1000, "initial", "succeeded"), (amount, "proration", "succeeded")]
    assert ts(payments[1]["createdAt"]) == at
    await assert_events(db, sub, [("created", 1), ("updated", 2)])

    await advance_to(api, app, end)
    assert pays(await api.payments(app, sub["id"]))[-1] == (3000, "renewal", "succeeded")


async def test_an_upgrade_to_another_billing_period_starts_a_new_period_now(api, app, db):
    await catalog(app)
    sub, _ = await _ten_days_in(api, app, "Basic")
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    sub = await acted(api, app, sub["id"], "change-plan", {"planId": app.plans["Annual"]})
    at = ts(sub["updatedAt"])
    assert sub["planId"] == app.plans["Annual"]
    check(sub, status="active", currentPeriodStart=at, currentPeriodEnd=add_months(at, 12))
    amount = 24000 + prorated(1000, 0, start, end, at)  # full new price minus the credit
    assert pays(await api.payments(app, sub["id"]))[1:] == [(amount, "proration", "succeeded")]
    await assert_events(db, sub, [("created", 1), ("updated", 2)])


async def test_a_downgrade_waits_for_the_renewal_which_charges_the_new_price(api, app, db):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Pro")
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    pending = await acted(api, app, sub["id"], "change-plan", {"planId": app.plans["Basic"]})
    assert pending["planId"] == app.plans["Pro"]
    check(
        pending,
        status="active",
        currentPeriodStart=start,
        currentPeriodEnd=end,
        pendingPlanId=app.plans["Basic"],
    )
    assert pays(await api.payments(app, sub["id"])) == [(3000, "initial", "succeeded")]
    await assert_events(db, pending, [("created", 1), ("updated", 2)])

    await advance_to(api, app, end)
    sub = await api.sub(app, sub["id"])
    assert sub["planId"] == app.plans["Basic"]
    check(sub, status="active", currentPeriodStart=end, currentPeriodEnd=add_months(start, 2))
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [(3000, "initial", "succeeded"), (1000, "renewal", "succeeded")]
    assert ts(payments[1]["createdAt"]) == end
    await assert_events(db, sub, [("created", 1), ("updated", 2), ("updated", 3)])


async def test_a_downgrade_made_immediately_refunds_the_difference(api, app, db):
    await catalog(app)
    sub, customer = await _ten_days_in(api, app, "Pro")
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    await behave(api, app, customer, "fail")  # a refund does not depend on the card
    body = {"planId": app.plans["Basic"], "effective": "immediately"}
    sub = await acted(api, app, sub["id"], "change-plan", body)
    at = ts(sub["updatedAt"])
    assert sub["planId"] == app.plans["Basic"]
    check(sub, status="active", currentPeriodStart=start, currentPeriodEnd=end)
    amount = prorated(3000, 1000, start, end, at)
    assert -2000 < amount < 0
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [(3000, "initial", "succeeded"), (amount, "proration", "succeeded")]
    assert ts(payments[1]["createdAt"]) == at
    await assert_events(db, sub, [("created", 1), ("updated", 2)])


async def test_an_upgrade_at_period_end_waits_for_the_renewal(api, app, db):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Basic")
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    body = {"planId": app.plans["Pro"], "effective": "period_end"}
    pending = await acted(api, app, sub["id"], "change-plan", body)
    assert pending["planId"] == app.plans["Basic"]
    check(
        pending,
        status="active",
        currentPeriodStart=start,
        currentPeriodEnd=end,
        pendingPlanId=app.plans["Pro"],
    )
    assert len(await api.payments(app, sub["id"])) == 1
    await advance_to(api, app, end)
    sub = await api.sub(app, sub["id"])
    assert sub["planId"] == app.plans["Pro"]
    check(sub, status="active", currentPeriodStart=end, currentPeriodEnd=add_months(start, 2))
    assert pays(await api.payments(app, sub["id"]))[1:] == [(3000, "renewal", "succeeded")]
    await assert_events(db, sub, [("created", 1), ("updated", 2), ("updated", 3)])


async def test_changing_back_to_the_current_plan_drops_a_pending_change(api, app, db):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Pro")
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    await acted(api, app, sub["id"], "change-plan", {"planId": app.plans["Basic"]})
    sub = await acted(api, app, sub["id"], "change-plan", {"planId": app.plans["Pro"]})
    assert sub["planId"] == app.plans["Pro"]
    check(sub, status="active", currentPeriodStart=start, currentPeriodEnd=end)
    await assert_events(db, sub, [("created", 1), ("updated", 2), ("updated", 3)])
    await advance_to(api, app, end)
    sub = await api.sub(app, sub["id"])
    assert sub["planId"] == app.plans["Pro"]
    assert pays(await api.payments(app, sub["id"]))[1:] == [(3000, "renewal", "succeeded")]


async def test_a_change_without_proration_charges_nothing(api, app, db):
    await catalog(app)
    sub, _ = await _ten_days_in(api, app, "Basic")
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    body = {"planId": app.plans["Pro"], "proration": "none"}
    sub = await acted(api, app, sub["id"], "change-plan", body)
    assert sub["planId"] == app.plans["Pro"]
    check(sub, status="active", currentPeriodStart=start, currentPeriodEnd=end)
    assert pays(await api.payments(app, sub["id"])) == [(1000, "initial", "succeeded")]
    await assert_events(db, sub, [("created", 1), ("updated", 2)])


async def test_a_change_of_plan_while_trialing_keeps_the_trial(api, app, db):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Trial")
    start, trial_end = ts(sub["currentPeriodStart"]), ts(sub["trialEnd"])
    sub = await acted(api, app, sub["id"], "change-plan", {"planId": app.plans["Pro"]})
    assert sub["planId"] == app.plans["Pro"]
    trial = {"currentPeriodStart": start, "currentPeriodEnd": trial_end, "trialEnd": trial_end}
    check(sub, status="trialing", **trial)
    assert await api.payments(app, sub["id"]) == []
    await assert_events(db, sub, [("created", 1), ("updated", 2)])

    await advance_to(api, app, trial_end)  # the trial ends as planned, on the new price
    sub = await api.sub(app, sub["id"])
    check(
        sub,
        status="active",
        currentPeriodStart=trial_end,
        currentPeriodEnd=add_months(trial_end, 1),
        trialEnd=trial_end,
    )
    assert pays(await api.payments(app, sub["id"])) == [(3000, "renewal", "succeeded")]
