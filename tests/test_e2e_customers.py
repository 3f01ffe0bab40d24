"""Customers and customer sign-in through the gateway, with events read from JetStream."""

from __future__ import annotations

import secrets

import stackbe_events
from stackbe_common.testing.smtp import token_in

from .conftest import assert_error, bearer, new_app, new_tenant, read_events


async def test_customer_events_reach_a_jetstream_consumer_decoded_with_stackbe_events(
    http, nats_url
):
    tenant_key = (await new_tenant(http))["apiKey"]
    _, app_key = await new_app(http, tenant_key)
    email = f"ev-{secrets.token_hex(4)}@example.com"
    created = (
        await http.post(
            "/v1/customers", headers=bearer(app_key), json={"email": email, "externalId": "u-1"}
        )
    ).json()
    r = await http.patch(
        f"/v1/customers/{created['id']}",
        headers=bearer(app_key),
        json={"name": "Renamed", "metadata": {"tier": "gold"}},
    )
    assert r.status_code == 200

    seen = await read_events(
        nats_url, "identity", lambda e: getattr(e, "customer_id", None) == created["id"], 2
    )
    first, second = seen
    assert isinstance(first, stackbe_events.CustomerCreated)
    assert (first.email, first.external_id, first.app_id) == (email, "u-1", created["appId"])
    assert isinstance(second, stackbe_events.CustomerUpdated)
    assert (second.name, second.metadata) == ("Renamed", {"tier": "gold"})


async def test_a_customer_signs_in_through_the_gateway_and_another_app_refuses_the_session(
    http, mailbox
):
    tenant_key = (await new_tenant(http))["apiKey"]
    app, app_key = await new_app(http, tenant_key)
    other, other_key = await new_app(http, tenant_key)
    email = f"buyer-{secrets.token_hex(4)}@example.com"
    assert (
        await http.post("/v1/customers", headers=bearer(app_key), json={"email": email})
    ).status_code == 201

    r = await http.post(f"/v1/apps/{app}/auth/magic-link", json={"email": email})
    assert r.status_code == 202
    token = token_in(await mailbox.wait_for(email))
    page = await http.get(f"/v1/apps/{app}/auth/confirm", params={"token": token})
    assert page.status_code == 200 and "<form method=post" in page.text
    session = (await http.post(f"/v1/apps/{app}/auth/verify", json={"token": token})).json()
    again = await http.post(f"/v1/apps/{app}/auth/verify", json={"token": token})
    assert_error(again, 401, "TOKEN_ALREADY_USED")

    me = await http.get(f"/v1/apps/{app}/auth/session", headers=bearer(session["sessionToken"]))
    assert me.status_code == 200 and me.json()["customer"]["email"] == email
    theirs = await http.get(
        f"/v1/apps/{other}/auth/session", headers=bearer(session["sessionToken"])
    )
    assert_error(theirs, 401, "SESSION_INVALID")
    # A customer session is not an app credential.
    listed = await http.get("/v1/customers", headers=bearer(session["sessionToken"]))
    assert_error(listed, 401, "UNAUTHORIZED")
    assert (await http.get("/v1/customers", headers=bearer(other_key))).json()["data"] == []


async def test_a_tenant_key_reaches_an_apps_customers_only_by_naming_the_app(http):
    tenant_key = (await new_tenant(http))["apiKey"]
    app, app_key = await new_app(http, tenant_key)
    other, _ = await new_app(http, tenant_key)
    created = (
        await http.post(
            "/v1/customers", headers=bearer(app_key), json={"email": "named@example.com"}
        )
    ).json()
    without = await http.get(f"/v1/customers/{created['id']}", headers=bearer(tenant_key))
    assert_error(without, 401, "UNAUTHORIZED")
    named = await http.get(
        f"/v1/customers/{created['id']}", headers={**bearer(tenant_key), "X-StackBE-App": app}
    )
    assert named.status_code == 200 and named.json()["email"] == "named@example.com"
    wrong = await http.get(
        f"/v1/customers/{created['id']}", headers={**bearer(tenant_key), "X-StackBE-App": other}
    )
    assert_error(wrong, 404, "CUSTOMER_NOT_FOUND")
