"""Failed renewals: past_due, retries on days 1, 3 and 5, and the grace period."""

from __future__ import annotations

import pytest

from .transitions import (
    ANY,
    DAY,
    GRACE,
    RETRY_DAYS,
    SECOND,
    add_months,
    advance_to,
    assert_events,
    behave,
    catalog,
    check,
    pays,
    subscribe,
    ts,
)

# 3. Failed renewals, retries and the grace period


async def test_a_failed_renewal_makes_the_subscription_past_due(api, app, db):
    await catalog(app)
    sub, customer = await subscribe(api, app, "Basic")
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    await behave(api, app, customer, "fail")
    await advance_to(api, app, end)
    sub = await api.sub(app, sub["id"])
    check(
        sub,
        status="past_due",
        currentPeriodStart=end,
        currentPeriodEnd=add_months(start, 2),
        graceEndsAt=end + GRACE,
    )
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [(1000, "initial", "succeeded"), (1000, "renewal", "failed")]
    assert ts(payments[1]["createdAt"]) == end
    await assert_events(db, sub, [("created", 1), ("updated", 2)])


@pytest.mark.parametrize("paid_on_day", RETRY_DAYS)
async def test_a_successful_retry_makes_a_past_due_subscription_active(api, app, db, paid_on_day):
    await catalog(app)
    sub, customer = await subscribe(api, app, "Basic")
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    await behave(api, app, customer, "fail")
    failed_days = [d for d in RETRY_DAYS if d < paid_on_day]
    for day in [0, *failed_days]:
        await advance_to(api, app, end + day * DAY)
    await behave(api, app, customer, "succeed")
    await advance_to(api, app, end + paid_on_day * DAY)
    sub = await api.sub(app, sub["id"])
    check(sub, status="active", currentPeriodStart=end, currentPeriodEnd=add_months(start, 2))
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [
        (1000, "initial", "succeeded"),
        (1000, "renewal", "failed"),
        *[(1000, "retry", "failed")] * len(failed_days),
        (1000, "retry", "succeeded"),
    ]
    retried = [ts(p["createdAt"]) for p in payments[2:]]
    assert retried == [end + d * DAY for d in [*failed_days, paid_on_day]]
    updates = [("updated", v) for v in range(2, 4 + len(failed_days))]
    await assert_events(db, sub, [("created", 1), *updates])

    await advance_to(api, app, add_months(start, 2))  # then it renews as usual
    renewed = await api.sub(app, sub["id"])
    check(renewed, status="active", currentPeriodStart=add_months(start, 2), currentPeriodEnd=ANY)
    assert pays(await api.payments(app, sub["id"]))[-1] == (1000, "renewal", "succeeded")


async def test_retries_happen_exactly_one_three_and_five_days_after_the_failure(api, app, db):
    await catalog(app)
    sub, customer = await subscribe(api, app, "Basic")
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    await behave(api, app, customer, "fail")
    await advance_to(api, app, end)
    await advance_to(api, app, end + DAY - SECOND)
    assert len(await api.payments(app, sub["id"])) == 2
    await advance_to(api, app, end + GRACE - SECOND)
    sub = await api.sub(app, sub["id"])
    check(
        sub,
        status="past_due",
        currentPeriodStart=end,
        currentPeriodEnd=add_months(start, 2),
        graceEndsAt=end + GRACE,
    )
    payments = await api.payments(app, sub["id"])
    assert pays(payments)[2:] == [(1000, "retry", "failed")] * 3
    assert [ts(p["createdAt"]) for p in payments[2:]] == [end + d * DAY for d in RETRY_DAYS]
    await assert_events(db, sub, [("created", 1), *[("updated", v) for v in range(2, 6)]])


async def test_a_past_due_subscription_is_canceled_when_the_grace_period_ends(api, app, db):
    await catalog(app)
    sub, customer = await subscribe(api, app, "Basic")
    start, end = ts(sub["currentPeriodStart"]), ts(sub["currentPeriodEnd"])
    await behave(api, app, customer, "fail")
    await advance_to(api, app, end + GRACE)  # everything due runs, in order
    sub = await api.sub(app, sub["id"])
    check(
        sub,
        status="canceled",
        canceledAt=end + GRACE,
        currentPeriodStart=end,
        currentPeriodEnd=add_months(start, 2),
        graceEndsAt=end + GRACE,  # kept, as a canceled subscription keeps its other fields
    )
    payments = await api.payments(app, sub["id"])
    assert pays(payments) == [
        (1000, "initial", "succeeded"),
        (1000, "renewal", "failed"),
        *[(1000, "retry", "failed")] * 3,
    ]
    events = [("created", 1), *[("updated", v) for v in range(2, 6)], ("canceled", 6)]
    await assert_events(db, sub, events)
    await api.advance(app, seconds=60 * 86400)
    assert await api.sub(app, sub["id"]) == sub
    assert len(await api.payments(app, sub["id"])) == 5
