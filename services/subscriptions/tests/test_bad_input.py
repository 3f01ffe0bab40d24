"""Bad input to the subscriptions API: a 400 naming the field, and nothing written."""

from __future__ import annotations

from typing import Any

import pytest

MISSING = object()


async def written(db, app) -> tuple[int, int, int, int]:
    counts = []
    for table in ("checkout_sessions", "subscriptions", "payments", "outbox"):
        column = "app_id" if table != "outbox" else "convert_from(payload, 'UTF8')::jsonb->>'appId'"
        counts.append(
            await db.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", app.id)
        )
    return tuple(counts)  # type: ignore[return-value]


def refused(r, field: str | None) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert (body["code"], body.get("field")) == ("VALIDATION_ERROR", field), body


def checkout_body(app, customer: str, **changes: Any) -> dict[str, Any]:
    body = {
        "customerId": customer,
        "planId": app.plans["Pro"],
        "successUrl": "https://shop.example/done",
        "cancelUrl": "https://shop.example/cancel",
        **changes,
    }
    return {k: v for k, v in body.items() if v is not MISSING}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"planId": MISSING}, "planId", id="plan-missing"),
        pytest.param({"planId": "pro"}, "planId", id="plan-malformed"),
        pytest.param({"successUrl": "javascript:alert(1)"}, "successUrl", id="success-not-http"),
        pytest.param({"successUrl": MISSING}, "successUrl", id="success-missing"),
        pytest.param({"cancelUrl": "https://a b"}, "cancelUrl", id="cancel-with-space"),
        pytest.param({"customerId": "cust_1"}, "customerId", id="customer-malformed"),
        pytest.param({"customerId": MISSING}, "customerId", id="neither-customer-nor-email"),
        pytest.param({"email": "a@example.com"}, "customerId", id="both-customer-and-email"),
        pytest.param({"customerId": MISSING, "email": "nope"}, "email", id="email-malformed"),
        pytest.param({"coupon": "X"}, "coupon", id="unknown-field"),
    ],
)
async def test_a_bad_checkout_is_refused_and_writes_nothing(api, app, db, changes, field):
    await app.plan("Pro", 2900)
    customer = await app.customer()
    before = await written(db, app)
    r = await api.call(
        "POST", "/v1/checkout/session", app.key(), json=checkout_body(app, customer, **changes)
    )
    refused(r, field)
    assert await written(db, app) == before


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("cancel", {"atPeriodEnd": "yes"}, "atPeriodEnd"),
        ("pause", {"resumesAt": "tomorrow"}, "resumesAt"),
        ("pause", {"resumesAt": "2020-01-01T00:00:00Z"}, "resumesAt"),  # in the past
        ("change-plan", {}, "planId"),
        ("change-plan", {"planId": "plan_x"}, "planId"),
        ("change-plan", {"planId": "plan_" + "0" * 26, "effective": "later"}, "effective"),
        ("change-plan", {"planId": "plan_" + "0" * 26, "proration": "always"}, "proration"),
    ],
)
async def test_a_bad_subscription_action_is_refused_and_changes_nothing(
    api, app, db, path, body, field
):
    await app.plan("Pro", 2900)
    sub = await api.subscribe(app, "Pro")
    before = await written(db, app)
    r = await api.call("POST", f"/v1/subscriptions/{sub['id']}/{path}", app.key(), json=body)
    refused(r, field)
    assert await written(db, app) == before
    assert (await api.sub(app, sub["id"]))["version"] == sub["version"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "to"),
        ({"to": "2020-01-01T00:00:00Z"}, "to"),  # the clock never goes back
        ({"to": "2030-01-01T00:00:00"}, "to"),  # no offset
        ({"seconds": 0}, "seconds"),
        ({"seconds": 1.5}, "seconds"),
        ({"seconds": 60, "to": "2099-01-01T00:00:00Z"}, "to"),
    ],
)
async def test_a_bad_clock_advance_is_refused_and_the_clock_stays(api, app, body, field):
    before = await api.ok("GET", "/v1/sandbox/clock", app.key())
    refused(await api.call("POST", "/v1/sandbox/clock/advance", app.key(), json=body), field)
    after = await api.ok("GET", "/v1/sandbox/clock", app.key())
    assert after["advancedSeconds"] == before["advancedSeconds"] == 0


async def test_a_bad_payment_behavior_or_outcome_is_refused(api, app, db):
    await app.plan("Pro", 2900)
    customer = await app.customer()
    r = await api.call(
        "POST",
        f"/v1/sandbox/customers/{customer}/payment-behavior",
        app.key(),
        json={"behavior": "maybe"},
    )
    refused(r, "behavior")
    session = await api.ok(
        "POST", "/v1/checkout/session", app.key(), json=checkout_body(app, customer)
    )
    before = await written(db, app)
    r = await api.call(
        "POST", f"/v1/sandbox/checkout/{session['id']}/complete", app.key(), json={"outcome": "won"}
    )
    refused(r, "outcome")
    assert await written(db, app) == before


async def test_lists_refuse_a_bad_filter(api, app):
    refused(await api.call("GET", "/v1/subscriptions?status=gone", app.key()), "status")
    refused(
        await api.call("GET", "/v1/subscriptions/current?customerId=x&expand=all", app.key()),
        "expand",
    )
    refused(await api.call("GET", "/v1/payments?limit=0", app.key()), "limit")
