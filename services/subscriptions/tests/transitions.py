"""Helpers for the transition tests: expected moments, checks of fields, payments and
events, and driving a subscription into a given status through the HTTP API.

Each test checks the resulting status and fields, the payments recorded and the
subscription's events (one per change, versions growing by one). Expected moments are
computed from what the API returns: actions happen at the app's now (the subscription's
``updatedAt``), due transitions exactly when they were due.
"""

from __future__ import annotations

import calendar
import itertools
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from .conftest import subjects

SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
GRACE = timedelta(days=7)  # the fixture app's grace period
RETRY_DAYS = (1, 3, 5)
ANY = object()  # a field check() leaves alone

MOMENTS = (
    "currentPeriodStart",
    "currentPeriodEnd",
    "trialEnd",
    "canceledAt",
    "pausedAt",
    "resumesAt",
    "graceEndsAt",
    "createdAt",
    "updatedAt",
)
# Checked by check(); absent from its arguments they must be empty.
QUIET: dict[str, Any] = {
    "trialEnd": None,
    "cancelAtPeriodEnd": False,
    "canceledAt": None,
    "pausedAt": None,
    "resumesAt": None,
    "graceEndsAt": None,
    "pendingPlanId": None,
}


def ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months, the day clamped to the month's last."""
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    return moment.replace(
        year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1])
    )


def _half_up(value: Fraction) -> int:
    return int(value + Fraction(1, 2)) if value >= 0 else -int(-value + Fraction(1, 2))


def prorated(old: int, new: int, start: datetime, end: datetime, at: datetime) -> int:
    """Same-period proration as documented: new share minus old share of what remains."""
    us = timedelta(microseconds=1)
    share = Fraction((end - at) // us, (end - start) // us)
    return _half_up(new * share) - _half_up(old * share)


def check(sub: dict[str, Any], **expected: Any) -> None:
    """The status, the given fields and, unless given, QUIET's fields empty."""
    for key, want in {**QUIET, **expected}.items():
        if want is ANY:
            continue
        got = ts(sub[key]) if key in MOMENTS else sub[key]
        assert got == want, f"{key}: {got!r} != {want!r} in {sub}"


def pays(payments: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    return [(p["amountCents"], p["kind"], p["status"]) for p in payments]


async def catalog(app: Any) -> None:
    await app.plan("Basic", 1000)
    await app.plan("Pro", 3000)
    await app.plan("Annual", 24000, "year")
    await app.plan("Trial", 1000, trial_days=14)
    await app.plan("Euro", 1000, currency="EUR")
    await app.plan("Old", 500, status="deprecated")


async def checkout(api: Any, app: Any, plan: str, customer: str) -> dict[str, Any]:
    return await api.ok(
        "POST",
        "/v1/checkout/session",
        app.key(),
        json={
            "customerId": customer,
            "planId": app.plans[plan],
            "successUrl": "https://shop.example/done",
            "cancelUrl": "https://shop.example/cancel",
        },
    )


async def complete(api: Any, app: Any, session_id: str, outcome: str) -> Any:
    return await api.call(
        "POST", f"/v1/sandbox/checkout/{session_id}/complete", app.key(), json={"outcome": outcome}
    )


async def subscribe(
    api: Any, app: Any, plan: str, outcome: str = "succeeded"
) -> tuple[dict[str, Any], str]:
    customer = await app.customer()
    return await api.subscribe(app, plan, customer, outcome), customer


async def behave(api: Any, app: Any, customer: str, behavior: str) -> None:
    await api.ok(
        "POST",
        f"/v1/sandbox/customers/{customer}/payment-behavior",
        app.key(),
        json={"behavior": behavior},
    )


async def act(api: Any, app: Any, sub_id: str, action: str, body: Any = None) -> Any:
    kwargs = {} if body is None else {"json": body}
    return await api.call("POST", f"/v1/subscriptions/{sub_id}/{action}", app.key(), **kwargs)


async def acted(api: Any, app: Any, sub_id: str, action: str, body: Any = None) -> dict[str, Any]:
    r = await act(api, app, sub_id, action, body)
    assert r.status_code == 200, r.text
    return r.json()


async def now(api: Any, app: Any) -> datetime:
    clock = await api.ok("GET", "/v1/sandbox/clock", app.key())
    moment = ts(clock["now"])
    assert moment is not None
    return moment


async def advance_to(api: Any, app: Any, moment: datetime) -> None:
    await api.advance(app, to=moment.isoformat())


async def in_state(api: Any, app: Any, status: str) -> tuple[dict[str, Any], str]:
    """A subscription to Basic (Trial when trialing) in ``status``, and its customer."""
    plan = "Trial" if status == "trialing" else "Basic"
    outcome = "failed" if status == "incomplete" else "succeeded"
    sub, customer = await subscribe(api, app, plan, outcome)
    if status == "past_due":
        await behave(api, app, customer, "fail")
        await advance_to(api, app, ts(sub["currentPeriodEnd"]))
    elif status == "paused":
        await acted(api, app, sub["id"], "pause")
    elif status == "canceled":
        await acted(api, app, sub["id"], "cancel", {"atPeriodEnd": False})
    sub = await api.sub(app, sub["id"])
    assert sub["status"] == status, sub
    return sub, customer


async def assert_events(db: Any, sub: dict[str, Any], expected: list[tuple[str, int]]) -> None:
    got = await subjects(db, sub["id"])
    assert got == expected
    versions = [v for _, v in got]
    assert all(a < b for a, b in itertools.pairwise(versions))
    assert versions[-1] == sub["version"]
