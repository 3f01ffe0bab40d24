"""Races that must never make two live subscriptions for one customer of an app."""

from __future__ import annotations

import asyncio


async def _session(api, app, customer: str) -> str:
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
    return session["id"]


async def _live(db, app, customer: str) -> list[str]:
    rows = await db.fetch(
        "SELECT id FROM subscriptions WHERE app_id = $1 AND customer_id = $2"
        " AND status <> 'canceled'",
        app.id,
        customer,
    )
    return [r["id"] for r in rows]


async def test_completing_one_session_at_the_same_moment_makes_one_subscription(api, app, db):
    await app.plan("Pro", 2900)
    customer = await app.customer()
    session = await _session(api, app, customer)

    answers = await asyncio.gather(
        *(
            api.call("POST", f"/v1/sandbox/checkout/{session}/complete", app.key(), json={})
            for _ in range(8)
        )
    )

    assert [r.status_code for r in answers] == [200] * 8
    assert len({r.json()["subscription"]["id"] for r in answers}) == 1
    assert len(await _live(db, app, customer)) == 1
    sub_id = answers[0].json()["subscription"]["id"]
    assert [p["kind"] for p in await api.payments(app, sub_id)] == ["initial"]  # charged once


async def test_two_checkouts_for_one_customer_completed_at_once_make_one_subscription(api, app, db):
    await app.plan("Pro", 2900)
    customer = await app.customer()
    sessions = [await _session(api, app, customer) for _ in range(4)]

    answers = await asyncio.gather(
        *(
            api.call("POST", f"/v1/sandbox/checkout/{s}/complete", app.key(), json={})
            for s in sessions
        )
    )

    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 409, 409, 409], [r.text for r in answers]
    refused = [r.json() for r in answers if r.status_code == 409]
    assert {body["code"] for body in refused} == {"SUBSCRIPTION_EXISTS"}
    live = await _live(db, app, customer)
    assert len(live) == 1
    # The losers charged nothing: their transactions left no payment behind.
    assert await db.fetchval("SELECT count(*) FROM payments WHERE customer_id = $1", customer) == 1
    open_sessions = await db.fetchval(
        "SELECT count(*) FROM checkout_sessions WHERE customer_id = $1 AND status = 'open'",
        customer,
    )
    assert open_sessions == 3


async def test_two_checkout_sessions_at_once_for_a_subscribed_customer_are_refused(api, app, db):
    await app.plan("Pro", 2900)
    customer = await app.customer()
    await api.subscribe(app, "Pro", customer)
    body = {
        "customerId": customer,
        "planId": app.plans["Pro"],
        "successUrl": "https://shop.example/done",
        "cancelUrl": "https://shop.example/cancel",
    }
    answers = await asyncio.gather(
        *(api.call("POST", "/v1/checkout/session", app.key(), json=body) for _ in range(4))
    )
    assert {(r.status_code, r.json()["code"]) for r in answers} == {(409, "SUBSCRIPTION_EXISTS")}
