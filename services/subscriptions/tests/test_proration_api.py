"""Changes of plan and MRR through the HTTP API, exact to the cent.

The in-process app here runs on a fixed wall clock, so an app's time is exactly that
moment plus its sandbox test clock's offset: after ``advance(to=X)`` a change of plan
happens at X itself, and the remaining share of the period is known to the microsecond.
(With the wall clock, a change would land some milliseconds after X.) The moment is in
the future, on 31 January, so month-end clamping is exercised and nothing run by the
wall clock could ever find these subscriptions due.

Expected amounts are computed here from the documented formula with ``Fraction``:
credit = round(old * r), charge = round(new * r), amount = charge - credit, each rounded
half up, r = (end - at) / (end - start) in microseconds.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from stackbe_common.clock import FixedClock
from stackbe_subscriptions.app import create_app

from .conftest import Api, App

T0 = datetime(2030, 1, 31, 9, 30, tzinfo=UTC)  # every test app starts here
MICRO = timedelta(microseconds=1)


@pytest.fixture(scope="module")
async def api(
    subscriptions_settings: Any, subscriptions_db: str, internal_secret: bytes
) -> AsyncIterator[Api]:
    """The app on a wall clock fixed at T0 (each test app's own test clock adds to it)."""
    clock = FixedClock(T0)
    async with AsyncTestClient(create_app(subscriptions_settings, clock=clock)) as client:
        yield Api(client, internal_secret)


def moment(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


def half_up(value: Fraction) -> int:
    """Rounding halves up, away from zero."""
    return (
        math.floor(value + Fraction(1, 2)) if value >= 0 else -math.floor(-value + Fraction(1, 2))
    )


def remaining(sub: dict[str, Any], at: datetime) -> Fraction:
    start, end = moment(sub["currentPeriodStart"]), moment(sub["currentPeriodEnd"])
    return Fraction((end - at) // MICRO, (end - start) // MICRO)


def at_share(sub: dict[str, Any], used: Fraction) -> datetime:
    """The exact moment when ``used`` of the current period has gone by."""
    start, end = moment(sub["currentPeriodStart"]), moment(sub["currentPeriodEnd"])
    micros = (end - start) // MICRO * used
    assert micros.denominator == 1, "pick a share that falls on a whole microsecond"
    return start + int(micros) * MICRO


async def change(api: Api, app: App, sub_id: str, plan: str, **body: Any) -> dict[str, Any]:
    return await api.ok(
        "POST",
        f"/v1/subscriptions/{sub_id}/change-plan",
        app.key(),
        json={"planId": app.plans[plan], **body},
    )


def summary(payments: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    return [(p["kind"], p["amountCents"], p["status"]) for p in payments]


async def test_the_fixed_clock_starts_subscriptions_at_t0(api, app):
    """The setup the other tests rely on: a subscription starts at T0 exactly, and a
    monthly period from 31 January ends on 28 February at the same time of day."""
    await app.plan("Basic", 1000)
    sub = await api.subscribe(app, "Basic")
    assert sub["status"] == "active"
    assert moment(sub["currentPeriodStart"]) == T0
    assert moment(sub["currentPeriodEnd"]) == datetime(2030, 2, 28, 9, 30, tzinfo=UTC)
    clock = await api.ok("POST", "/v1/sandbox/clock/advance", app.key(), json={"seconds": 60})
    assert moment(clock["now"]) == T0 + timedelta(seconds=60)


async def test_an_upgrade_mid_period_charges_the_prorated_difference(api, app):
    """1000 -> 3000 monthly at an odd moment: one proration payment of
    round(3000 r) - round(1000 r), dated at the change; the period is unchanged and the
    next renewal charges 3000."""
    await app.plan("Basic", 1000)
    await app.plan("Pro", 3000)
    sub = await api.subscribe(app, "Basic")
    start, end = moment(sub["currentPeriodStart"]), moment(sub["currentPeriodEnd"])

    at = start + timedelta(days=9, hours=7, minutes=13, seconds=5, microseconds=123_457)
    await api.advance(app, to=at.isoformat())
    r = remaining(sub, at)
    expected = half_up(3000 * r) - half_up(1000 * r)
    assert expected == 2003 - 668  # 18 d 16:46:54.876543 of 28 d left: 2003.49 - 667.83

    changed = await change(api, app, sub["id"], "Pro")
    assert changed["planId"] == app.plans["Pro"] and changed["status"] == "active"
    assert changed["pendingPlanId"] is None
    assert moment(changed["currentPeriodStart"]) == start
    assert moment(changed["currentPeriodEnd"]) == end

    payments = await api.payments(app, sub["id"])
    assert summary(payments) == [
        ("initial", 1000, "succeeded"),
        ("proration", expected, "succeeded"),
    ]
    assert moment(payments[1]["createdAt"]) == at

    await api.advance(app, to=end.isoformat())
    renewed = await api.sub(app, sub["id"])
    assert renewed["planId"] == app.plans["Pro"]
    assert moment(renewed["currentPeriodStart"]) == end
    assert summary(await api.payments(app, sub["id"]))[2:] == [("renewal", 3000, "succeeded")]


async def test_an_upgrade_at_the_midpoint(api, app):
    """Exactly half left (14 of 28 days): 500 credited, 1500 charged, 1000 paid."""
    await app.plan("Basic", 1000)
    await app.plan("Pro", 3000)
    sub = await api.subscribe(app, "Basic")
    at = at_share(sub, Fraction(1, 2))
    assert at == datetime(2030, 2, 14, 9, 30, tzinfo=UTC)
    await api.advance(app, to=at.isoformat())
    assert remaining(sub, at) == Fraction(1, 2)
    await change(api, app, sub["id"], "Pro")
    assert summary(await api.payments(app, sub["id"]))[1:] == [("proration", 1000, "succeeded")]


async def test_an_immediate_downgrade_refunds_the_prorated_difference(api, app):
    """3000 -> 1000 with effective=immediately, a third of the period used: a negative
    proration payment (a refund) of round(1000 r) - round(3000 r); plan switched now."""
    await app.plan("Basic", 1000)
    await app.plan("Pro", 3000)
    sub = await api.subscribe(app, "Pro")
    at = at_share(sub, Fraction(1, 3)) + 7 * MICRO
    await api.advance(app, to=at.isoformat())
    r = remaining(sub, at)
    expected = half_up(1000 * r) - half_up(3000 * r)
    assert expected == -1333  # 667 - 2000

    changed = await change(api, app, sub["id"], "Basic", effective="immediately")
    assert changed["planId"] == app.plans["Basic"] and changed["pendingPlanId"] is None
    assert changed["currentPeriodEnd"] == sub["currentPeriodEnd"]
    payments = await api.payments(app, sub["id"])
    assert summary(payments) == [
        ("initial", 3000, "succeeded"),
        ("proration", expected, "succeeded"),
    ]
    assert moment(payments[1]["createdAt"]) == at


async def test_monthly_to_yearly_starts_a_new_period_at_the_change(api, app):
    """Monthly 1000 -> yearly 12000 (an upgrade: 1000 a month is not more) at an odd
    moment: the yearly price less the credit of the unused monthly part is charged, and a
    yearly period starts at the change."""
    await app.plan("Basic", 1000)
    await app.plan("Annual", 12100, "year")
    sub = await api.subscribe(app, "Basic")
    at = T0 + timedelta(days=20, hours=3, microseconds=999_999)
    await api.advance(app, to=at.isoformat())
    r = remaining(sub, at)
    expected = 12100 - half_up(1000 * r)
    assert expected == 12100 - 281  # 7 d 20:59:59.000001 of 28 d left: 281.25

    changed = await change(api, app, sub["id"], "Annual")
    assert changed["planId"] == app.plans["Annual"] and changed["status"] == "active"
    assert moment(changed["currentPeriodStart"]) == at
    assert moment(changed["currentPeriodEnd"]) == at.replace(year=2031)
    payments = await api.payments(app, sub["id"])
    assert summary(payments) == [
        ("initial", 1000, "succeeded"),
        ("proration", expected, "succeeded"),
    ]
    assert moment(payments[1]["createdAt"]) == at

    # No renewal at the old monthly end; the next charge is the yearly one, a year on.
    await api.advance(app, to=(at + timedelta(days=300)).isoformat())
    assert len(await api.payments(app, sub["id"])) == 2
    await api.advance(app, to=at.replace(year=2031).isoformat())
    assert summary(await api.payments(app, sub["id"]))[2:] == [("renewal", 12100, "succeeded")]


async def test_a_default_downgrade_waits_for_the_period_end(api, app):
    """3000 -> 1000 with no options: nothing is paid now, the plan is pending, and the
    renewal at the period end switches plans and charges the cheaper price."""
    await app.plan("Basic", 1000)
    await app.plan("Pro", 3000)
    sub = await api.subscribe(app, "Pro")
    end = moment(sub["currentPeriodEnd"])
    await api.advance(app, seconds=5 * 86400)

    changed = await change(api, app, sub["id"], "Basic")
    assert changed["planId"] == app.plans["Pro"]
    assert changed["pendingPlanId"] == app.plans["Basic"]
    assert summary(await api.payments(app, sub["id"])) == [("initial", 3000, "succeeded")]

    await api.advance(app, to=end.isoformat())
    renewed = await api.sub(app, sub["id"])
    assert renewed["planId"] == app.plans["Basic"] and renewed["pendingPlanId"] is None
    assert renewed["status"] == "active" and moment(renewed["currentPeriodStart"]) == end
    payments = await api.payments(app, sub["id"])
    assert summary(payments)[1:] == [("renewal", 1000, "succeeded")]
    assert moment(payments[1]["createdAt"]) == end


async def test_an_upgrade_without_proration_switches_plans_for_free(api, app):
    """proration "none" between plans of the same period: no payment, the plan switches
    now, the period stays, and the next renewal charges the new price."""
    await app.plan("Basic", 1000)
    await app.plan("Pro", 3000)
    sub = await api.subscribe(app, "Basic")
    await api.advance(app, seconds=10 * 86400)

    changed = await change(api, app, sub["id"], "Pro", proration="none")
    assert changed["planId"] == app.plans["Pro"] and changed["pendingPlanId"] is None
    assert changed["currentPeriodStart"] == sub["currentPeriodStart"]
    assert changed["currentPeriodEnd"] == sub["currentPeriodEnd"]
    assert summary(await api.payments(app, sub["id"])) == [("initial", 1000, "succeeded")]

    await api.advance(app, to=sub["currentPeriodEnd"])
    assert summary(await api.payments(app, sub["id"]))[1:] == [("renewal", 3000, "succeeded")]


async def test_without_proration_a_new_period_is_charged_in_full(api, app):
    """proration "none" from monthly to yearly: the yearly price is charged whole, with
    no credit for the unused month, and a yearly period starts at the change."""
    await app.plan("Basic", 1000)
    await app.plan("Annual", 12100, "year")
    sub = await api.subscribe(app, "Basic")
    at = T0 + timedelta(days=3, microseconds=5)
    await api.advance(app, to=at.isoformat())

    changed = await change(api, app, sub["id"], "Annual", proration="none")
    assert changed["planId"] == app.plans["Annual"]
    assert moment(changed["currentPeriodStart"]) == at
    assert moment(changed["currentPeriodEnd"]) == at.replace(year=2031)
    assert summary(await api.payments(app, sub["id"]))[1:] == [("proration", 12100, "succeeded")]


async def test_a_declined_upgrade_keeps_the_plan_and_records_the_failed_charge(api, app):
    """When the customer's card declines the prorated charge: 409 PAYMENT_FAILED, the plan
    and period are unchanged, and the failed payment of the formula's amount is kept."""
    await app.plan("Basic", 1000)
    await app.plan("Pro", 3000)
    customer = await app.customer()
    sub = await api.subscribe(app, "Basic", customer)
    await api.ok(
        "POST",
        f"/v1/sandbox/customers/{customer}/payment-behavior",
        app.key(),
        json={"behavior": "fail"},
    )
    at = at_share(sub, Fraction(1, 4))
    await api.advance(app, to=at.isoformat())
    expected = half_up(3000 * remaining(sub, at)) - half_up(1000 * remaining(sub, at))
    assert expected == 2250 - 750

    r = await api.call(
        "POST",
        f"/v1/subscriptions/{sub['id']}/change-plan",
        app.key(),
        json={"planId": app.plans["Pro"]},
    )
    assert r.status_code == 409, r.text
    assert "PAYMENT_FAILED" in r.text
    after = await api.sub(app, sub["id"])
    assert after["planId"] == app.plans["Basic"] and after["version"] == sub["version"]
    assert after["currentPeriodEnd"] == sub["currentPeriodEnd"]
    assert summary(await api.payments(app, sub["id"])) == [
        ("initial", 1000, "succeeded"),
        ("proration", expected, "failed"),
    ]


async def test_renewals_keep_the_month_end_anchor(api, app):
    """Started on 31 January: periods end 28 February, then 31 March, 30 April, 31 May:
    each end counted from the billing anchor, so a short month never moves the billing
    day for good (periods.py)."""
    await app.plan("Basic", 1000)
    sub = await api.subscribe(app, "Basic")
    ends = [moment(sub["currentPeriodEnd"])]
    for _ in range(3):
        await api.advance(app, to=ends[-1].isoformat())
        ends.append(moment((await api.sub(app, sub["id"]))["currentPeriodEnd"]))
    assert ends == [
        datetime(2030, 2, 28, 9, 30, tzinfo=UTC),
        datetime(2030, 3, 31, 9, 30, tzinfo=UTC),
        datetime(2030, 4, 30, 9, 30, tzinfo=UTC),
        datetime(2030, 5, 31, 9, 30, tzinfo=UTC),
    ]
    assert (
        summary(await api.payments(app, sub["id"]))
        == [("initial", 1000, "succeeded")] + [("renewal", 1000, "succeeded")] * 3
    )


async def test_metrics_normalise_mrr_to_a_month(api, app):
    """MRR sums active plans' prices per month exactly and rounds once per currency:
    1000 + 12000 / 12 + 700 * 365 / 84 = 5041.67 -> 5042 USD, 2999 every 3 months ->
    999.67 -> 1000 EUR. Trialing, paused, incomplete and canceled ones add nothing to MRR
    and are counted by status."""
    await app.plan("Monthly", 1000)
    await app.plan("Yearly", 12000, "year")
    await app.plan("Weekly", 700, "week")
    await app.plan("Quarterly", 2999, "month", interval_count=3, currency="EUR")
    await app.plan("Trial", 5000, trial_days=14)
    for name in ("Monthly", "Yearly", "Weekly", "Quarterly"):
        assert (await api.subscribe(app, name))["status"] == "active"
    assert (await api.subscribe(app, "Trial"))["status"] == "trialing"
    assert (await api.subscribe(app, "Monthly", outcome="failed"))["status"] == "incomplete"
    paused = await api.subscribe(app, "Monthly")
    await api.ok("POST", f"/v1/subscriptions/{paused['id']}/pause", app.key())
    gone = await api.subscribe(app, "Yearly")
    await api.ok(
        "POST", f"/v1/subscriptions/{gone['id']}/cancel", app.key(), json={"atPeriodEnd": False}
    )

    usd = half_up(Fraction(1000) + Fraction(12000, 12) + Fraction(700 * 365, 12 * 7))
    eur = half_up(Fraction(2999, 3))
    assert (usd, eur) == (5042, 1000)

    body = await api.ok("GET", "/v1/metrics", app.tenant())
    assert len(body["data"]) == 1
    figures = body["data"][0]
    assert figures["appId"] == app.id
    assert figures["mrr"] == {"EUR": eur, "USD": usd}
    counts = {k: figures[k] for k in ("active", "trialing", "pastDue", "paused", "incomplete")}
    assert counts == {"active": 4, "trialing": 1, "pastDue": 0, "paused": 1, "incomplete": 1}
