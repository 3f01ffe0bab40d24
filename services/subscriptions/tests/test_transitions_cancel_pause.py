"""Cancel now or at period end, reactivate, pause and resume."""

from __future__ import annotations

from datetime import timedelta

import pytest

from .conftest import subjects
from .transitions import (
    ANY,
    GRACE,
    SECOND,
    acted,
    add_months,
    advance_to,
    assert_events,
    behave,
    catalog,
    check,
    in_state,
    now,
    pays,
    subscribe,
    ts,
)

# 4. Cancel and reactivate


@pytest.mark.parametrize("status", ["active", "trialing", "past_due", "paused", "incomplete"])
async def test_cancel_now(api, app, db, status):
    await catalog(app)
    sub, _ = await in_state(api, app, status)
    payments = await api.payments(app, sub["id"])
    events = await subjects(db, sub["id"])
    before = await now(api, app)
    canceled = await acted(api, app, sub["id"], "cancel", {"atPeriodEnd": False})
    after = await now(api, app)
    at = ts(canceled["updatedAt"])
    assert before <= at <= after
    assert canceled["status"] == "canceled" and ts(canceled["canceledAt"]) == at
    assert canceled["cancelAtPeriodEnd"] is False
    assert canceled["version"] == sub["version"] + 1
    changed = {"status", "canceledAt", "cancelAtPeriodEnd", "version", "updatedAt"}
    assert {k: v for k, v in canceled.items() if k not in changed} == {
        k: v for k, v in sub.items() if k not in changed
    }
    assert await api.payments(app, sub["id"]) == payments
    await assert_events(db, canceled, [*events, ("canceled", sub["version"] + 1)])

    await api.advance(app, seconds=60 * 86400)  # nothing is due any more
    assert await api.sub(app, sub["id"]) == canceled
    assert await api.payments(app, sub["id"]) == payments


@pytest.mark.parametrize("plan", ["Basic", "Trial"])
async def test_cancel_at_period_end_cancels_exactly_then_without_charging(api, app, db, plan):
    await catalog(app)
    sub, _ = await subscribe(api, app, plan)
    status = sub["status"]
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    trial_end = ts(sub["trialEnd"])
    payments = await api.payments(app, sub["id"])
    canceling = await acted(api, app, sub["id"], "cancel")  # at period end by default
    fields = {"currentPeriodStart": start, "currentPeriodEnd": end, "trialEnd": trial_end}
    check(canceling, status=status, cancelAtPeriodEnd=True, **fields)
    await assert_events(db, canceling, [("created", 1), ("updated", 2)])

    await advance_to(api, app, end - SECOND)
    assert await api.sub(app, sub["id"]) == canceling
    await advance_to(api, app, end)
    sub = await api.sub(app, sub["id"])
    check(sub, status="canceled", canceledAt=end, **fields)
    assert await api.payments(app, sub["id"]) == payments
    await assert_events(db, sub, [("created", 1), ("updated", 2), ("canceled", 3)])


async def test_reactivate_clears_the_cancel_and_the_subscription_renews(api, app, db):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Basic")
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    await acted(api, app, sub["id"], "cancel", {"atPeriodEnd": True})
    sub = await acted(api, app, sub["id"], "reactivate")
    check(sub, status="active", currentPeriodStart=start, currentPeriodEnd=end)
    await assert_events(db, sub, [("created", 1), ("updated", 2), ("updated", 3)])

    await advance_to(api, app, end)
    sub = await api.sub(app, sub["id"])
    check(sub, status="active", currentPeriodStart=end, currentPeriodEnd=add_months(start, 2))
    assert pays(await api.payments(app, sub["id"])) == [
        (1000, "initial", "succeeded"),
        (1000, "renewal", "succeeded"),
    ]
    await assert_events(db, sub, [("created", 1), ("updated", 2), ("updated", 3), ("updated", 4)])


# 5. Pause and resume


@pytest.mark.parametrize("plan", ["Basic", "Trial"])
async def test_pause_stops_access_and_billing(api, app, db, plan):
    await catalog(app)
    sub, _ = await subscribe(api, app, plan)
    payments = await api.payments(app, sub["id"])
    paused = await acted(api, app, sub["id"], "pause")
    at = ts(paused["updatedAt"])
    check(
        paused,
        status="paused",
        pausedAt=at,
        currentPeriodStart=ts(sub["currentPeriodStart"]),
        currentPeriodEnd=ts(sub["currentPeriodEnd"]),
    )
    await assert_events(db, paused, [("created", 1), ("paused", 2)])
    await api.advance(app, seconds=90 * 86400)  # past the period's (or trial's) end
    assert await api.sub(app, sub["id"]) == paused
    assert await api.payments(app, sub["id"]) == payments


async def test_resume_starts_a_new_paid_period_now(api, app, db):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Basic")
    await acted(api, app, sub["id"], "pause")
    await api.advance(app, seconds=3 * 86400)
    sub = await acted(api, app, sub["id"], "resume")
    at = ts(sub["updatedAt"])
    check(sub, status="active", currentPeriodStart=at, currentPeriodEnd=add_months(at, 1))
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [(1000, "initial", "succeeded"), (1000, "resume", "succeeded")]
    assert ts(payments[1]["createdAt"]) == at
    await assert_events(db, sub, [("created", 1), ("paused", 2), ("resumed", 3)])


async def test_a_pause_with_resumes_at_resumes_by_itself(api, app, db):
    await catalog(app)
    sub, _ = await subscribe(api, app, "Basic")
    resumes = await now(api, app) + timedelta(days=10)
    paused = await acted(api, app, sub["id"], "pause", {"resumesAt": resumes.isoformat()})
    check(
        paused,
        status="paused",
        pausedAt=ts(paused["updatedAt"]),
        resumesAt=resumes,
        currentPeriodStart=ANY,
        currentPeriodEnd=ANY,
    )
    await advance_to(api, app, resumes - SECOND)
    assert await api.sub(app, sub["id"]) == paused
    await advance_to(api, app, resumes)
    sub = await api.sub(app, sub["id"])
    check(sub, status="active", currentPeriodStart=resumes, currentPeriodEnd=add_months(resumes, 1))
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [(1000, "initial", "succeeded"), (1000, "resume", "succeeded")]
    assert ts(payments[1]["createdAt"]) == resumes
    await assert_events(db, sub, [("created", 1), ("paused", 2), ("resumed", 3)])


async def test_resume_with_a_failing_payment_is_past_due(api, app, db):
    await catalog(app)
    sub, customer = await subscribe(api, app, "Basic")
    await acted(api, app, sub["id"], "pause")
    await behave(api, app, customer, "fail")
    sub = await acted(api, app, sub["id"], "resume")
    at = ts(sub["updatedAt"])
    check(
        sub,
        status="past_due",
        currentPeriodStart=at,
        currentPeriodEnd=add_months(at, 1),
        graceEndsAt=at + GRACE,
    )
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [(1000, "initial", "succeeded"), (1000, "resume", "failed")]
    assert ts(payments[1]["createdAt"]) == at
    await assert_events(db, sub, [("created", 1), ("paused", 2), ("resumed", 3)])
