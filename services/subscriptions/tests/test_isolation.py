"""Nothing leaks between two apps of one tenant in the subscriptions API."""

from __future__ import annotations

from stackbe_common.ids import new_id

from .conftest import App
from .test_bad_input import checkout_body, written


async def test_another_apps_subscriptions_sessions_and_payments_are_not_found(api, app, db):
    """The fixture's app A subscribes; app B of the same tenant sees and touches nothing."""
    await app.plan("Pro", 2900)
    customer = await app.customer()
    session = await api.ok(
        "POST", "/v1/checkout/session", app.key(), json=checkout_body(app, customer)
    )
    sub = (
        await api.ok("POST", f"/v1/sandbox/checkout/{session['id']}/complete", app.key(), json={})
    )["subscription"]
    other = App(tenant_id=app.tenant_id, id=new_id("app"), db=db)
    before = await written(db, app)

    for method, path in [
        ("GET", f"/v1/subscriptions/{sub['id']}"),
        ("POST", f"/v1/subscriptions/{sub['id']}/cancel"),
        ("POST", f"/v1/subscriptions/{sub['id']}/pause"),
        ("POST", f"/v1/subscriptions/{sub['id']}/resume"),
        ("POST", f"/v1/subscriptions/{sub['id']}/reactivate"),
    ]:
        r = await api.call(method, path, other.key(), json={} if method == "POST" else None)
        assert (r.status_code, r.json()["code"]) == (404, "SUBSCRIPTION_NOT_FOUND"), path
    for method, path in [
        ("GET", f"/v1/checkout/session/{session['id']}"),
        ("POST", f"/v1/sandbox/checkout/{session['id']}/complete"),
    ]:
        r = await api.call(method, path, other.key(), json={} if method == "POST" else None)
        assert (r.status_code, r.json()["code"]) == (404, "CHECKOUT_SESSION_NOT_FOUND"), path
    r = await api.call("GET", f"/v1/subscriptions/current?customerId={customer}", other.key())
    assert (r.status_code, r.json()["code"]) == (404, "NO_ACTIVE_SUBSCRIPTION")
    for path in ("/v1/subscriptions", f"/v1/payments?subscriptionId={sub['id']}"):
        assert (await api.ok("GET", path, other.key()))["data"] == []
    assert await written(db, app) == before
    assert (await api.ok("GET", "/v1/payments", app.key()))["data"][0]["subscriptionId"] == sub[
        "id"
    ]
