from __future__ import annotations


async def test_a_checkout_completes_into_an_active_subscription_that_renews(api, app, db):
    await app.plan("Pro", 2900)
    sub = await api.subscribe(app, "Pro")
    assert sub["status"] == "active", sub
    payments = await api.payments(app, sub["id"])
    assert [(p["amountCents"], p["kind"], p["status"]) for p in payments] == [
        (2900, "initial", "succeeded")
    ]
    await api.advance(app, seconds=32 * 86400)
    again = await api.sub(app, sub["id"])
    assert again["status"] == "active" and again["version"] == 2
    assert [p["kind"] for p in await api.payments(app, sub["id"])] == ["initial", "renewal"]
