"""Stripe as the payment gateway, against a fake Stripe API on loopback that the official
SDK is pointed at: connections, checkout, Stripe's signed events, actions, and
reconciliation. The last test scans every response and log line for the secrets."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import msgspec
import nats

from stackbe_common import bus
from stackbe_common.clock import SystemClock
from stackbe_common.crypto import Keyring
from stackbe_common.ids import new_id
from stackbe_common.stopping import Stopping
from stackbe_common.testing.fake_stripe import FakeStripe, signature
from stackbe_events import rpc
from stackbe_events.catalog import Plan, PlanCreated
from stackbe_subscriptions.config import SubscriptionsSettings
from stackbe_subscriptions.consumers import catalog_handlers, responders
from stackbe_subscriptions.deps import Deps
from stackbe_subscriptions.readmodels import Lookups
from stackbe_subscriptions.reconcile import reconcile, reconcile_periodically
from stackbe_subscriptions.stripe_api import StripeHttp

from .conftest import App
from .stripe_support import RecordingApi, Seen, StripeApp, connect, stripe_app


async def deliver(
    api: RecordingApi, app: StripeApp, event: dict[str, Any], secret: str | None = None
) -> httpx.Response:
    body = json.dumps(event)
    header = signature(body, secret or app.webhook_secret)
    return await api.post_raw(
        app.webhook, body, {"Stripe-Signature": header, "Content-Type": "application/json"}
    )


async def checkout(api: RecordingApi, app: StripeApp, plan: str, customer: str) -> dict[str, Any]:
    return await api.ok(
        "POST",
        "/v1/checkout/session",
        app.key(),
        json={
            "customerId": customer,
            "planId": app.plans.get(plan, plan),
            "successUrl": "https://shop.example/done",
            "cancelUrl": "https://shop.example/cancel",
        },
    )


async def paid(api: RecordingApi, fake: FakeStripe, app: StripeApp, plan: str = "Pro") -> Any:
    """A customer checks out and pays on Stripe's page; Stripe's events are delivered in
    order. (our subscription, Stripe's subscription id)."""
    customer = await app.customer()
    session = await checkout(api, app, plan, customer)
    stripe_session = fake.get(session["url"].rsplit("/", 1)[1])
    events = fake.pay(stripe_session["id"])
    for event in events:
        assert (await deliver(api, app, event)).status_code == 200
    current = await api.ok("GET", f"/v1/subscriptions/current?customerId={customer}", app.key())
    return current, stripe_session["subscription"]


async def stripe_events(db: asyncpg.Connection, app: StripeApp) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM stripe_events WHERE gateway_id = $1", app.gateway_id
        )
    )


# Connections


async def test_a_connection_is_checked_with_stripe_and_its_secrets_are_sealed(
    sapi: RecordingApi, fake: FakeStripe, app: App, db: asyncpg.Connection
) -> None:
    made = await connect(sapi, fake, app)
    live_key = "sk_live_" + "z" * 24
    seen = sapi.seen
    seen.secrets.append(live_key)
    fake.account_for(live_key)
    live = await sapi.ok("POST", "/v1/gateways/stripe", app.tenant(), json={"secretKey": live_key})

    assert live["livemode"] is True and live["hasWebhookSecret"] is False
    assert made["type"] == "stripe"
    assert made["accountId"].startswith("acct_") and made["livemode"] is False
    assert made["keyHint"] == made["_secretKey"][:8] + "…" + made["_secretKey"][-4:]
    assert made["webhookPath"] == f"/v1/gateways/stripe/{made['id']}/webhook"
    checked = [c.headers["Authorization"] for c in fake.calls_to("GET", "/v1/account")]
    assert f"Bearer {made['_secretKey']}" in checked
    row = await db.fetchrow("SELECT * FROM gateways WHERE id = $1", made["id"])
    assert made["_secretKey"].encode() not in bytes(row["secret_key"])
    assert made["_webhookSecret"].encode() not in bytes(row["webhook_secret"])
    listed = await sapi.ok("GET", "/v1/gateways", app.tenant())
    assert [g["id"] for g in listed["data"]] == [made["id"], live["id"]]
    assert "secretKey" not in listed["data"][0] and "webhookSecret" not in listed["data"][0]


async def test_a_key_stripe_refuses_is_400_and_stores_nothing(
    sapi: RecordingApi, app: App, db: asyncpg.Connection, seen: Seen
) -> None:
    key = "sk_test_" + "x" * 24
    seen.secrets.append(key)

    r = await sapi.call("POST", "/v1/gateways/stripe", app.tenant(), json={"secretKey": key})
    bad = await sapi.call("POST", "/v1/gateways/stripe", app.tenant(), json={"secretKey": "nope"})

    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        400,
        "VALIDATION_ERROR",
        "secretKey",
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "VALIDATION_ERROR")
    assert (
        await db.fetchval("SELECT count(*) FROM gateways WHERE tenant_id = $1", app.tenant_id) == 0
    )
    app_key = await sapi.call("POST", "/v1/gateways/stripe", app.key(), json={"secretKey": key})
    assert app_key.status_code == 403


async def test_a_connection_in_use_is_not_deleted_and_another_tenant_cannot_see_it(
    sapi: RecordingApi, fake: FakeStripe, db: asyncpg.Connection
) -> None:
    app = await stripe_app(sapi, fake, db)
    stranger = App(tenant_id="ten_" + "1" * 26, id="app_" + "1" * 26, db=db)
    path = f"/v1/gateways/{app.gateway_id}"

    in_use = await sapi.call("DELETE", path, app.tenant())
    foreign = await sapi.call("DELETE", path, stranger.tenant())
    listed = await sapi.ok("GET", "/v1/gateways", stranger.tenant())
    await db.execute("UPDATE apps SET gateway = 'sandbox', gateway_id = NULL WHERE id = $1", app.id)
    deleted = await sapi.call("DELETE", path, app.tenant())

    assert (in_use.status_code, in_use.json()["code"]) == (409, "GATEWAY_IN_USE")
    assert app.id in in_use.json()["message"]
    assert (foreign.status_code, foreign.json()["code"]) == (404, "NOT_FOUND")
    assert listed["data"] == []
    assert deleted.status_code == 200
    assert (await sapi.ok("GET", "/v1/gateways", app.tenant()))["data"] == []


async def test_an_app_identity_asked_about_holds_the_connection_before_its_event(
    sapi: RecordingApi, fake: FakeStripe, db: asyncpg.Connection, pool: asyncpg.Pool, nats_url: str
) -> None:
    tenant = App(tenant_id=new_id("ten"), id=new_id("app"), db=db)
    gateway = await connect(sapi, fake, tenant)
    nc = await nats.connect(nats_url)
    answerers = responders(nc, pool)
    for answerer in answerers:
        await answerer.start()
    try:
        ask = rpc.GetGateway(tenant_id=tenant.tenant_id, gateway_id=gateway["id"], app_id=tenant.id)
        answer: Any = rpc.FoundGateway | None
        found = await bus.request(nc, rpc.GET_GATEWAY, ask, answer, timeout=2)
        stranger = rpc.GetGateway(tenant_id=new_id("ten"), gateway_id=gateway["id"])
        foreign = await bus.request(nc, rpc.GET_GATEWAY, stranger, answer, timeout=2)
    finally:
        for answerer in answerers:
            await answerer.stop()
        await nc.close()

    refused = await sapi.call("DELETE", f"/v1/gateways/{gateway['id']}", tenant.tenant())

    assert found == rpc.FoundGateway(gateway_id=gateway["id"], type="stripe")
    assert foreign is None
    assert (refused.status_code, refused.json()["code"]) == (409, "GATEWAY_IN_USE")
    assert tenant.id in refused.json()["message"]


# Checkout and Stripe's events


async def test_checkout_opens_a_stripe_session_and_paying_makes_an_active_subscription(
    sapi: RecordingApi, fake: FakeStripe, db: asyncpg.Connection
) -> None:
    app = await stripe_app(sapi, fake, db)
    await app.plan("Pro", 2900, trial_days=0)
    customer = await app.customer()
    first = len(fake.calls)

    session = await checkout(sapi, app, "Pro", customer)

    made = fake.calls[first:]
    assert [(c.method, c.path) for c in made] == [
        ("POST", "/v1/customers"),
        ("POST", "/v1/products"),
        ("POST", "/v1/prices"),
        ("POST", "/v1/checkout/sessions"),
    ]
    assert all(c.headers.get("Idempotency-Key", "").startswith("stackbe-") for c in made)
    assert made[0].params["metadata"]["stackbe_customer_id"] == customer
    assert made[2].params["unit_amount"] == "2900" and made[2].params["currency"] == "usd"
    created = made[3].params
    assert created["mode"] == "subscription"
    assert created["metadata"]["stackbe_checkout_session_id"] == session["id"]
    assert created["subscription_data"]["metadata"]["stackbe_plan_id"] == app.plans["Pro"]
    assert "trial_period_days" not in created["subscription_data"]
    assert session["url"].startswith(fake.url + "/pay/cs_test_")

    events = fake.pay(session["url"].rsplit("/", 1)[1])
    answers = [await deliver(sapi, app, e) for e in events]

    assert [a.status_code for a in answers] == [200, 200, 200]
    sub = await sapi.ok("GET", f"/v1/subscriptions/current?customerId={customer}", app.key())
    assert (sub["status"], sub["planId"]) == ("active", app.plans["Pro"])
    after = await sapi.ok("GET", f"/v1/checkout/session/{session['id']}", app.key())
    assert (after["status"], after["subscriptionId"]) == ("completed", sub["id"])
    payments = await sapi.payments(app, sub["id"])
    assert [(p["amountCents"], p["status"], p["kind"]) for p in payments] == [
        (2900, "succeeded", "initial")
    ]
    subjects = await db.fetch(
        "SELECT subject FROM outbox WHERE convert_from(payload, 'UTF8') LIKE $1 ORDER BY id",
        f"%{sub['id']}%",
    )
    assert [".".join(r["subject"].split(".")[2:4]) for r in subjects] == [
        "subscription.created",
        "checkout.completed",
        "payment.succeeded",
    ]


async def test_a_second_checkout_reuses_the_stripe_customer_and_passes_trial_days(
    sapi: RecordingApi, fake: FakeStripe, db: asyncpg.Connection
) -> None:
    app = await stripe_app(sapi, fake, db)
    await app.plan("Trial", 1500, trial_days=14)
    customer = await app.customer()
    await checkout(sapi, app, "Trial", customer)
    first = len(fake.calls)

    await checkout(sapi, app, "Trial", customer)

    again = fake.calls[first:]
    assert [c.path for c in again] == ["/v1/checkout/sessions"]
    assert again[0].params["subscription_data"]["trial_period_days"] == "14"
    events = fake.pay(
        again[0].params["client_reference_id"] and fake.objects("checkout.session")[-1]["id"]
    )
    for event in events:
        await deliver(sapi, app, event)
    sub = await sapi.ok("GET", f"/v1/subscriptions/current?customerId={customer}", app.key())
    assert sub["status"] == "trialing" and sub["trialEnd"] is not None
    assert await sapi.payments(app, sub["id"]) == []  # nothing was charged during the trial


async def test_a_failed_renewal_makes_it_past_due_and_the_end_cancels_it(
    sapi: RecordingApi, fake: FakeStripe, db: asyncpg.Connection
) -> None:
    app = await stripe_app(sapi, fake, db, grace_days=3)
    await app.plan("Pro", 2900)
    sub, stripe_id = await paid(sapi, fake, app)

    for event in fake.fail_renewal(stripe_id):
        assert (await deliver(sapi, app, event)).status_code == 200
    past_due = await sapi.sub(app, sub["id"])
    for event in fake.end(stripe_id):
        assert (await deliver(sapi, app, event)).status_code == 200
    ended = await sapi.sub(app, sub["id"])

    assert past_due["status"] == "past_due" and past_due["graceEndsAt"] is not None
    payments = await sapi.payments(app, sub["id"])
    assert [(p["status"], p["kind"]) for p in payments] == [
        ("succeeded", "initial"),
        ("failed", "renewal"),
    ]
    assert ended["status"] == "canceled" and ended["canceledAt"] is not None


async def test_events_twice_and_in_reverse_order_end_in_the_right_state(
    sapi: RecordingApi, fake: FakeStripe, db: asyncpg.Connection
) -> None:
    app = await stripe_app(sapi, fake, db)
    await app.plan("Pro", 2900)
    customer = await app.customer()
    session = await checkout(sapi, app, "Pro", customer)
    events = fake.pay(session["url"].rsplit("/", 1)[1])
    stripe_id = fake.objects("checkout.session")[-1]["subscription"]
    events += fake.fail_renewal(stripe_id)

    answers = [await deliver(sapi, app, e) for e in reversed(events + events)]

    assert all(a.status_code == 200 for a in answers)
    assert [a.json()["duplicate"] for a in answers] == [False] * len(events) + [True] * len(events)
    sub = await sapi.ok("GET", f"/v1/subscriptions/current?customerId={customer}", app.key())
    assert sub["status"] == "past_due"
    completed = await sapi.ok("GET", f"/v1/checkout/session/{session['id']}", app.key())
    assert completed["subscriptionId"] == sub["id"]
    payments = await sapi.payments(app, sub["id"])
    assert sorted(p["status"] for p in payments) == ["failed", "succeeded"]
    count = await db.fetchval(
        "SELECT count(*) FROM subscriptions WHERE app_id = $1 AND customer_id = $2",
        app.id,
        customer,
    )
    assert count == 1
    assert await stripe_events(db, app) == len(events)


async def test_a_tampered_or_unsigned_event_is_400_and_changes_nothing(
    sapi: RecordingApi, fake: FakeStripe, db: asyncpg.Connection
) -> None:
    app = await stripe_app(sapi, fake, db)
    await app.plan("Pro", 2900)
    customer = await app.customer()
    session = await checkout(sapi, app, "Pro", customer)
    completed = fake.pay(session["url"].rsplit("/", 1)[1])[0]
    body = json.dumps(completed)
    good = signature(body, app.webhook_secret)
    tampered = body.replace(customer, customer.upper())

    answers = [
        await sapi.post_raw(app.webhook, tampered, {"Stripe-Signature": good}),
        await deliver(sapi, app, completed, secret="whsec_someone_else"),
        await sapi.post_raw(app.webhook, body, {}),
        await sapi.post_raw(app.webhook, body, {"Stripe-Signature": "t=1,v1=00"}),
    ]

    for r in answers:
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (
            400,
            "VALIDATION_ERROR",
            "Stripe-Signature",
        )
    assert await stripe_events(db, app) == 0
    r = await sapi.call("GET", f"/v1/subscriptions/current?customerId={customer}", app.key())
    assert r.status_code == 404
    unknown = await sapi.post_raw(
        "/v1/gateways/stripe/gw_nope/webhook", body, {"Stripe-Signature": good}
    )
    assert unknown.status_code == 404


# Actions


async def test_actions_on_a_stripe_subscription_are_made_in_stripe(
    sapi: RecordingApi, fake: FakeStripe, db: asyncpg.Connection
) -> None:
    app = await stripe_app(sapi, fake, db)
    await app.plan("Pro", 2900)
    await app.plan("Team", 9900)
    sub, stripe_id = await paid(sapi, fake, app)
    path = f"/v1/subscriptions/{sub['id']}"
    first = len(fake.calls)

    canceling = await sapi.ok("POST", f"{path}/cancel", app.key(), json={})
    again = await sapi.call("POST", f"{path}/cancel", app.key(), json={})
    reactivated = await sapi.ok("POST", f"{path}/reactivate", app.key())
    paused = await sapi.ok("POST", f"{path}/pause", app.key(), json={})
    resumed = await sapi.ok("POST", f"{path}/resume", app.key())
    changed = await sapi.ok(
        "POST", f"{path}/change-plan", app.key(), json={"planId": app.plans["Team"]}
    )
    later = await sapi.call(
        "POST",
        f"{path}/change-plan",
        app.key(),
        json={"planId": app.plans["Pro"], "effective": "period_end"},
    )
    canceled = await sapi.ok("POST", f"{path}/cancel", app.key(), json={"atPeriodEnd": False})

    assert canceling["cancelAtPeriodEnd"] is True
    assert again.status_code == 200 and again.json()["cancelAtPeriodEnd"] is True
    assert reactivated["cancelAtPeriodEnd"] is False
    assert paused["status"] == "paused" and resumed["status"] == "active"
    assert changed["planId"] == app.plans["Team"]
    assert (later.status_code, later.json()["field"]) == (400, "effective")
    assert canceled["status"] == "canceled"
    updates = [c for c in fake.calls[first:] if c.path == f"/v1/subscriptions/{stripe_id}"]
    asked = [(c.method, {k: v for k, v in c.params.items()}) for c in updates]
    team_price = fake.objects("price")[-1]["id"]
    item = fake.get(stripe_id)["items"]["data"][0]["id"]
    assert [a for a in asked if a[0] != "GET"] == [
        ("POST", {"cancel_at_period_end": "true"}),
        ("POST", {"cancel_at_period_end": "true"}),
        ("POST", {"cancel_at_period_end": "false"}),
        ("POST", {"pause_collection": {"behavior": "void"}}),
        ("POST", {"pause_collection": ""}),
        (
            "POST",
            {
                "items": {"0": {"id": item, "price": team_price}},
                "proration_behavior": "create_prorations",
            },
        ),
        ("DELETE", {}),
    ]
    assert all(c.headers.get("Idempotency-Key") for c in updates if c.method != "GET")
    assert fake.get(stripe_id)["status"] == "canceled"


async def test_two_paid_checkouts_keep_one_subscription_and_the_second_is_logged(
    sapi: RecordingApi, fake: FakeStripe, db: asyncpg.Connection, seen: Seen
) -> None:
    app = await stripe_app(sapi, fake, db)
    await app.plan("Pro", 2900)
    customer = await app.customer()
    first = await checkout(sapi, app, "Pro", customer)
    second = await checkout(sapi, app, "Pro", customer)  # another tab, before paying

    both = fake.pay(first["url"].rsplit("/", 1)[1]) + fake.pay(second["url"].rsplit("/", 1)[1])
    answers = [await deliver(sapi, app, e) for e in both]

    assert [a.status_code for a in answers] == [200] * 6
    live = await db.fetch(
        "SELECT stripe_subscription_id FROM subscriptions WHERE app_id = $1 AND customer_id = $2",
        app.id,
        customer,
    )
    assert [r["stripe_subscription_id"] for r in live] == [both[1]["data"]["object"]["id"]]
    assert any("stripe.subscription_conflict" in line for line in seen.lines())


async def test_a_subscription_stripe_paused_itself_is_resumed_with_stripes_resume(
    sapi: RecordingApi, fake: FakeStripe, db: asyncpg.Connection
) -> None:
    app = await stripe_app(sapi, fake, db)
    await app.plan("Pro", 2900)
    sub, stripe_id = await paid(sapi, fake, app)
    fake.get(stripe_id)["status"] = "paused"  # a trial ended without a payment method
    await deliver(sapi, app, fake.event("customer.subscription.paused", fake.get(stripe_id)))
    assert (await sapi.sub(app, sub["id"]))["status"] == "paused"

    resumed = await sapi.ok("POST", f"/v1/subscriptions/{sub['id']}/resume", app.key())

    assert resumed["status"] == "active"
    assert fake.calls_to("POST", f"/v1/subscriptions/{stripe_id}/resume")


async def test_a_new_connection_gets_its_own_price_and_the_old_one_stays_while_billing(
    sapi: RecordingApi, fake: FakeStripe, db: asyncpg.Connection
) -> None:
    app = await stripe_app(sapi, fake, db)
    plan_id = await app.plan("Pro", 2900)
    sub, _ = await paid(sapi, fake, app)
    made = fake.objects("price")[-1]["id"]
    await db.execute(  # the catalog stored the made price in the plan (gateway_price.created)
        "UPDATE plans SET plan = jsonb_set(plan::jsonb, '{gatewayMappings}', $2::jsonb)::json"
        " WHERE id = $1",
        plan_id,
        {"stripe": {"priceId": made}},
    )
    old_gateway = app.gateway_id
    second = await connect(sapi, fake, app)
    await db.execute("UPDATE apps SET gateway_id = $2 WHERE id = $1", app.id, second["id"])
    app.gateway_id = second["id"]

    await checkout(sapi, app, "Pro", await app.customer())
    refused = await sapi.call("DELETE", f"/v1/gateways/{old_gateway}", app.tenant())
    await sapi.ok(
        "POST", f"/v1/subscriptions/{sub['id']}/cancel", app.key(), json={"atPeriodEnd": False}
    )
    deleted = await sapi.call("DELETE", f"/v1/gateways/{old_gateway}", app.tenant())

    priced = fake.calls_to("POST", "/v1/prices")[-1]
    assert priced.headers["Authorization"] == f"Bearer {second['_secretKey']}"
    session = fake.calls_to("POST", "/v1/checkout/sessions")[-1].params
    assert session["line_items"]["0"]["price"] not in (made, None)
    assert (refused.status_code, refused.json()["code"]) == (409, "GATEWAY_IN_USE")
    assert "live subscription" in refused.json()["message"]
    assert deleted.status_code == 200


# Catalog mapping


async def test_a_plan_with_its_own_price_id_is_not_made_again_in_stripe(
    sapi: RecordingApi, fake: FakeStripe, db: asyncpg.Connection
) -> None:
    app = await stripe_app(sapi, fake, db)
    account = next(a for k, a in fake.keys.items() if k == app.secret_key)
    price = fake._put(account.objects, "price_given", "price", product="prod_x", unit_amount=500)
    plan_id = await app.plan("Basic", 500)
    await db.execute(
        "UPDATE plans SET plan = jsonb_set(plan::jsonb, '{gatewayMappings}', $2::jsonb)::json"
        " WHERE id = $1",
        plan_id,
        {"stripe": {"priceId": price["id"]}},
    )
    first = len(fake.calls)

    await checkout(sapi, app, "Basic", await app.customer())

    paths = [c.path for c in fake.calls[first:]]
    assert paths == ["/v1/customers", "/v1/checkout/sessions"]
    assert fake.calls[-1].params["line_items"]["0"]["price"] == "price_given"


async def test_a_new_plan_of_a_stripe_app_gets_a_stripe_price_and_the_catalog_hears(
    sapi: RecordingApi,
    fake: FakeStripe,
    db: asyncpg.Connection,
    nats_url: str,
    stripe_settings: SubscriptionsSettings,
) -> None:
    app = await stripe_app(sapi, fake, db)
    plan_id = await app.plan("Pro", 2900)  # the read model, as the consumer stores it
    plan = msgspec.convert(await db.fetchval("SELECT plan FROM plans WHERE id = $1", plan_id), Plan)
    event = PlanCreated(
        id=new_id("evt"),
        occurred_at=datetime.now(UTC),
        tenant_id=app.tenant_id,
        app_id=app.id,
        plan=plan,
    )
    http = StripeHttp(fake.url, 5)
    nc = await nats.connect(nats_url)  # identity does not answer here: the read model decides
    lookups = Lookups(nc, 0.5)
    deps = Deps(settings=stripe_settings, clock=SystemClock(), lookups=lookups, stripe=http)
    try:
        handler = catalog_handlers(deps)[PlanCreated]
        await handler(db, event)
        await handler(db, event)  # redelivered: nothing made twice
    finally:
        await http.close()
        await nc.close()

    prices = [p for p in fake.objects("price") if p["metadata"].get("stackbe_plan_id") == plan_id]
    assert len(prices) == 1 and prices[0]["unit_amount"] == 2900
    mapped = await db.fetch(
        "SELECT convert_from(payload, 'UTF8')::jsonb AS e FROM outbox"
        " WHERE subject = 'stackbe.subscriptions.gateway_price.created.v1'"
        " AND convert_from(payload, 'UTF8')::jsonb ->> 'planId' = $1",
        plan_id,
    )
    assert [r["e"]["priceId"] for r in mapped] == [prices[0]["id"]]


# Reconciliation


async def test_reconciliation_repairs_drift_from_stripe(
    sapi: RecordingApi,
    fake: FakeStripe,
    db: asyncpg.Connection,
    stripe_settings: SubscriptionsSettings,
    seen: Seen,
) -> None:
    app = await stripe_app(sapi, fake, db)
    await app.plan("Pro", 2900)
    sub, stripe_id = await paid(sapi, fake, app)
    fake.get(stripe_id)["cancel_at_period_end"] = True  # changed in Stripe, no event sent
    other, other_stripe_id = await paid(sapi, fake, app)
    fake.get(other_stripe_id).update(status="canceled", ended_at=1_800_000_000)

    done = await _reconcile(stripe_settings, app.gateway_id, seen)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "gatewayId": app.gateway_id,
        "checked": 2,
        "repaired": 2,
    }
    assert done.stderr.count("stripe.reconciled") == 2
    assert (await sapi.sub(app, sub["id"]))["cancelAtPeriodEnd"] is True
    assert (await sapi.sub(app, other["id"]))["status"] == "canceled"
    calm = await _reconcile(stripe_settings, app.gateway_id, seen)
    assert calm.stderr.count("stripe.reconciled") == 0
    assert json.loads(calm.stdout.strip().splitlines()[-1])["repaired"] == 0


async def test_the_worker_reconciles_every_so_often(
    sapi: RecordingApi,
    fake: FakeStripe,
    db: asyncpg.Connection,
    pool: asyncpg.Pool,
    nats_url: str,
    stripe_settings: SubscriptionsSettings,
) -> None:
    app = await stripe_app(sapi, fake, db)
    await app.plan("Pro", 2900)
    sub, stripe_id = await paid(sapi, fake, app)
    fake.get(stripe_id)["cancel_at_period_end"] = True
    settings = msgspec.structs.replace(stripe_settings, stripe_reconcile_seconds=0.05)
    nc = await nats.connect(nats_url)
    http = StripeHttp(fake.url, 5)
    deps = Deps(settings=settings, clock=SystemClock(), lookups=Lookups(nc, 1), stripe=http)
    stopping = Stopping()
    job = asyncio.create_task(reconcile_periodically(pool, deps, stopping))
    try:
        for _ in range(100):
            if (await sapi.sub(app, sub["id"]))["cancelAtPeriodEnd"]:
                break
            await asyncio.sleep(0.05)
    finally:
        stopping.request()
        await asyncio.wait_for(job, 5)  # asked to stop, the job returns
        await http.close()
        await nc.close()

    assert (await sapi.sub(app, sub["id"]))["cancelAtPeriodEnd"] is True


class _Done:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


async def test_a_connection_stripe_refuses_does_not_stop_the_others(
    sapi: RecordingApi,
    fake: FakeStripe,
    db: asyncpg.Connection,
    pool: asyncpg.Pool,
    nats_url: str,
    stripe_settings: SubscriptionsSettings,
) -> None:
    revoked = await stripe_app(sapi, fake, db)
    del fake.keys[revoked.secret_key]  # the key was rolled in Stripe's dashboard
    unreadable = await stripe_app(sapi, fake, db)
    other = Keyring.parse(f"gone:{base64.urlsafe_b64encode(bytes(32)).decode().rstrip('=')}")
    sealed_elsewhere = other.encrypt(b"sk_test_x", unreadable.gateway_id.encode())
    await db.execute(
        "UPDATE gateways SET secret_key = $2 WHERE id = $1",
        unreadable.gateway_id,
        sealed_elsewhere,
    )  # sealed under a key STACKBE_ENCRYPTION_KEY no longer holds
    app = await stripe_app(sapi, fake, db)
    await app.plan("Pro", 2900)
    sub, stripe_id = await paid(sapi, fake, app)
    fake.get(stripe_id)["cancel_at_period_end"] = True
    nc = await nats.connect(nats_url)
    http = StripeHttp(fake.url, 5)
    deps = Deps(settings=stripe_settings, clock=SystemClock(), lookups=Lookups(nc, 1), stripe=http)
    try:
        done = {d.gateway_id: d for d in await reconcile(pool, deps)}
    finally:
        await http.close()
        await nc.close()
    assert (done[revoked.gateway_id].error or "").startswith("Stripe refused to list")
    assert "cannot be opened" in (done[unreadable.gateway_id].error or "")
    assert (done[app.gateway_id].repaired, done[app.gateway_id].error) == (1, None)
    assert (await sapi.sub(app, sub["id"]))["cancelAtPeriodEnd"] is True


async def _reconcile(settings: SubscriptionsSettings, gateway_id: str, seen: Seen) -> _Done:
    """The operator command, as a process of its own."""
    env = {
        **os.environ,
        "STACKBE_DATABASE_URL": settings.database_url,
        "STACKBE_NATS_URL": settings.nats_url,
        "STACKBE_INTERNAL_SECRET": settings.internal_secret,
        "STACKBE_ENCRYPTION_KEY": settings.encryption_key,
        "STACKBE_STRIPE_API_BASE": settings.stripe_api_base,
        "STACKBE_LOG_JSON": "true",
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stackbe_subscriptions",
        "reconcile",
        "--gateway",
        gateway_id,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await child.communicate()
    seen.logs += [out.decode(), err.decode()]
    return _Done(child.returncode or 0, out.decode(), err.decode())


# Last: nothing said anything secret


async def test_no_secret_key_or_webhook_secret_in_any_response_or_log(seen: Seen) -> None:
    assert len(seen.secrets) >= 10 and len(seen.responses) >= 50 and seen.logs
    assert any("stripe.event_taken" in line for line in seen.lines())
    assert seen.leaks() == []
