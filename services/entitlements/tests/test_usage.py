"""Usage metering: enforced atomically in Postgres, per billing period, announced once
per metric and period when the limit is reached."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from stackbe_events.entitlements import UsageLimitReached

from .conftest import eventually


async def count(pool, customer: str, metric: str = "projects") -> list[int]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT used FROM usage WHERE customer_id = $1 AND metric = $2 ORDER BY period_start",
            customer,
            metric,
        )
    return [r["used"] for r in rows]


async def reached(pool, customer: str) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = $2"
            " AND convert_from(payload, 'UTF8')::jsonb->>'customerId' = $1",
            customer,
            UsageLimitReached.subject,
        )


@pytest.fixture
async def subscriber(app):
    plan = await app.plan({"projects": 10, "apiCalls": -1, "sso": True})
    customer = await app.customer(external_id=None)
    await app.subscribe(customer, plan)
    return customer


async def test_fifty_simultaneous_enforced_calls_against_a_limit_of_ten_record_exactly_ten(
    api, app, pool, subscriber
):
    body = {"customerId": subscriber, "metric": "projects", "enforce": True}
    answers = await asyncio.gather(
        *(api.call("POST", "/v1/usage", app.key(), json=body) for _ in range(50))
    )
    codes = [r.status_code for r in answers]
    assert codes.count(200) == 10 and codes.count(403) == 40
    assert {r.json()["code"] for r in answers if r.status_code == 403} == {"USAGE_LIMIT_EXCEEDED"}
    assert sorted(r.json()["currentUsage"] for r in answers if r.status_code == 200) == list(
        range(1, 11)
    )
    assert await count(pool, subscriber) == [10]
    assert await reached(pool, subscriber) == 1  # once, however many calls hit the limit

    async def check() -> tuple[bool, str | None]:
        b = await api.ok(
            "GET", f"/v1/entitlements/check/projects?customerId={subscriber}", app.key()
        )
        return b["hasAccess"], b.get("reason")

    assert await eventually(check, (False, "LIMIT_EXCEEDED")) == (False, "LIMIT_EXCEEDED")
    usage = await api.ok("GET", f"/v1/usage/check/projects?customerId={subscriber}", app.key())
    assert usage == {"allowed": False, "remaining": 0}


async def test_without_enforce_usage_is_recorded_past_the_limit_and_not_allowed(
    api, app, pool, subscriber
):
    r = await api.ok(
        "POST",
        "/v1/usage",
        app.key(),
        json={"customerId": subscriber, "metric": "projects", "quantity": 12},
    )
    assert (r["currentUsage"], r["limit"], r["remaining"], r["allowed"]) == (12, 10, 0, False)
    refused = await api.call(
        "POST",
        "/v1/usage",
        app.key(),
        json={"customerId": subscriber, "metric": "projects", "enforce": True},
    )
    assert refused.status_code == 403 and "12 used of 10" in refused.json()["message"]
    assert await count(pool, subscriber) == [12]


async def test_unlimited_metrics_never_refuse(api, app, subscriber):
    body = {"customerId": subscriber, "metric": "apiCalls", "quantity": 10**9, "enforce": True}
    r = await api.ok("POST", "/v1/usage", app.key(), json=body)
    assert (r["currentUsage"], r["limit"], r["remaining"], r["allowed"]) == (10**9, -1, None, True)


async def test_a_new_period_starts_counting_from_zero(api, app, pool, subscriber):
    body = {"customerId": subscriber, "metric": "projects", "quantity": 10, "enforce": True}
    first = await api.ok("POST", "/v1/usage", app.key(), json=body)
    async with pool.acquire() as conn:
        sub = await conn.fetchrow(
            "SELECT id, plan_id FROM subscriptions WHERE customer_id = $1", subscriber
        )
    renewed = datetime.fromisoformat(first["periodEnd"].replace("Z", "+00:00"))
    await app.subscribe(subscriber, sub["plan_id"], sub_id=sub["id"], version=2, start=renewed)

    async def period() -> str | None:
        b = await api.ok("GET", f"/v1/usage?customerId={subscriber}", app.key())
        return b["periodStart"]

    assert await eventually(period, renewed.isoformat().replace("+00:00", "Z")) is not None
    second = await api.ok("POST", "/v1/usage", app.key(), json={**body, "quantity": 3})
    assert (second["currentUsage"], second["periodStart"]) == (3, first["periodEnd"])
    assert await count(pool, subscriber) == [10, 3]
    listed = await api.ok("GET", f"/v1/usage?customerId={subscriber}", app.key())
    assert {u["metric"]: u["currentUsage"] for u in listed["data"]} == {
        "apiCalls": 0,
        "projects": 3,
    }


async def test_an_idempotency_key_records_usage_once(api, app, pool, subscriber):
    body = {"customerId": subscriber, "metric": "projects", "quantity": 2}
    headers = {"Idempotency-Key": "usage-once"}
    first = await api.ok("POST", "/v1/usage", app.key(), json=body, headers=headers)
    again = await api.ok("POST", "/v1/usage", app.key(), json=body, headers=headers)
    assert first == again and await count(pool, subscriber) == [2]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"metric": "projects"}, 400, "VALIDATION_ERROR", "customerId"),
        ({"metric": "projects", "quantity": 0}, 400, "VALIDATION_ERROR", "quantity"),
        ({"metric": "projects", "quantity": 1.5}, 400, "VALIDATION_ERROR", "quantity"),
        ({"metric": "bad-name"}, 400, "VALIDATION_ERROR", "metric"),
        ({"metric": "projects", "enforce": "yes"}, 400, "VALIDATION_ERROR", "enforce"),
        ({"metric": "missing"}, 404, "METRIC_NOT_FOUND", None),
        ({"metric": "sso"}, 404, "METRIC_NOT_FOUND", None),  # a boolean is not a limit
    ],
)
async def test_bad_usage_is_refused_and_records_nothing(
    api, app, pool, subscriber, body, status, code, field
):
    payload = (
        {"customerId": subscriber, **body}
        if "customerId" not in body and field != "customerId"
        else body
    )
    r = await api.call("POST", "/v1/usage", app.key(), json=payload)
    assert (r.status_code, r.json()["code"], r.json().get("field")) == (status, code, field), r.text
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM usage WHERE customer_id = $1", subscriber)
            == 0
        )


async def test_usage_without_a_subscription_is_refused(api, app, pool):
    customer = await app.customer()
    r = await api.call(
        "POST", "/v1/usage", app.key(), json={"customerId": customer, "metric": "projects"}
    )
    assert (r.status_code, r.json()["code"]) == (403, "NO_ACTIVE_SUBSCRIPTION")
