"""Checkout sessions: what a customer is about to buy, and completing it into one
subscription however often, or however concurrently, it is completed."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from stackbe_common import outbox
from stackbe_common.access import app_of
from stackbe_common.errors import InvalidInput
from stackbe_common.ids import has_prefix, new_id, new_key_id
from stackbe_common.scope import Scope
from stackbe_events.catalog import Plan
from stackbe_events.subscriptions import CheckoutCompleted, Subscription

from . import machine
from . import repository as repo
from . import schemas as s
from .deps import Deps
from .errors import (
    CheckoutExpired,
    CheckoutNotFound,
    ClockNotAvailable,
    PaymentDeclined,
    PlanDeprecated,
    SubscriptionExists,
)
from .gateway_repository import link_session
from .gateways import open_account
from .lifecycle import (
    RowBilling,
    app_now,
    fact,
    run_due_until,
    save,
    sub_of,
    subscription_out,
    terms_of,
)
from .stripe_sync import ensure_customer, ensure_price
from .subscriptions import billing_for

__all__ = [
    "complete",
    "create_session",
    "get_session",
    "refuse_second_live",
    "session_out",
    "session_row",
    "start_free",
]


def session_out(row: asyncpg.Record, deps: Deps, now: datetime) -> s.CheckoutSession:
    status = row["status"]
    if status == "open" and row["expires_at"] <= now:
        status = "expired"
    return s.CheckoutSession(
        id=row["id"],
        app_id=row["app_id"],
        status=status,
        customer_id=row["customer_id"],
        plan_id=row["plan_id"],
        subscription_id=row["subscription_id"],
        url=row["url"] or f"{deps.settings.public_url.rstrip('/')}/checkout/{row['id']}",
        success_url=row["success_url"],
        cancel_url=row["cancel_url"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
    )


async def refuse_second_live(
    conn: asyncpg.Connection,
    deps: Deps,
    tenant_id: str,
    app_id: str,
    customer_id: str,
    *,
    free_replaceable: bool = False,
) -> asyncpg.Record | None:
    """SUBSCRIPTION_EXISTS if the customer has a live subscription. With
    ``free_replaceable``, a trialing or active subscription to a free plan is returned
    instead: a paid checkout replaces it when it completes (the upgrade from a free tier)."""
    live = await repo.live_subscription(conn, tenant_id, app_id, customer_id)
    if live is None:
        return None
    if free_replaceable and live["status"] in ("trialing", "active"):
        assert deps.lookups is not None
        plan = await deps.lookups.plan(conn, tenant_id, app_id, sub_of(live).plan_id)
        if plan.price_cents == 0:
            return live
    raise SubscriptionExists(
        f"The customer already has a live subscription ({live['id']}, {live['status']})"
    )


async def create_session(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, data: s.CreateCheckoutSession
) -> s.CheckoutSession:
    tenant_id, app_id = app_of(caller, write=True)
    if (data.customer_id is None) == (data.email is None):
        raise InvalidInput("Give exactly one of customerId and email", field="customerId")
    assert deps.lookups is not None
    plan = await deps.lookups.plan(conn, tenant_id, app_id, data.plan_id)
    if plan.status != "active":
        raise PlanDeprecated(f"The plan is {plan.status} and takes no new subscriptions")
    info = await deps.lookups.app(conn, tenant_id, app_id)
    customer_id = await deps.lookups.customer(
        conn, tenant_id, app_id, customer_id=data.customer_id, email=data.email
    )
    await refuse_second_live(conn, deps, tenant_id, app_id, customer_id, free_replaceable=True)
    now = await app_now(conn, deps, app_id)
    row = await repo.insert_session(
        conn,
        new_key_id("cs"),  # the hosted page's address: not guessable from other ids
        tenant_id,
        app_id,
        customer_id,
        plan.id,
        data.success_url,
        data.cancel_url,
        now + timedelta(hours=deps.settings.checkout_session_hours),
        now,
    )
    if info.gateway == "stripe" and info.gateway_id is not None:
        row = await _on_stripe(conn, deps, row, plan, info.gateway_id)
    return session_out(row, deps, now)


async def _on_stripe(
    conn: asyncpg.Connection, deps: Deps, row: asyncpg.Record, plan: Plan, gateway_id: str
) -> asyncpg.Record:
    """The app takes payments with Stripe: a Checkout Session in subscription mode for
    the plan's price, for the customer's Stripe customer (made once); its page is the
    session's ``url``. Stripe's ``checkout.session.completed`` completes ours."""
    account = await open_account(conn, deps, gateway_id)
    customer = await ensure_customer(conn, deps, account, row["app_id"], row["customer_id"])
    price = await ensure_price(conn, deps, account, row["tenant_id"], plan)
    metadata = {
        "stackbe_checkout_session_id": row["id"],
        "stackbe_app_id": row["app_id"],
        "stackbe_customer_id": row["customer_id"],
        "stackbe_plan_id": plan.id,
    }
    stripe_id, url = await account.create_checkout(
        row["id"],
        customer=customer,
        price=price,
        trial_days=plan.trial_days,
        success_url=row["success_url"],
        cancel_url=row["cancel_url"],
        metadata=metadata,
    )
    return await link_session(conn, row["id"], gateway_id, stripe_id, url)


async def session_row(
    conn: asyncpg.Connection, session_id: str, app: tuple[str, str] | None, *, lock: bool = False
) -> asyncpg.Record:
    """The session; with ``app`` (tenant, app) only if it is that app's."""
    row = None
    if has_prefix(session_id, "cs"):
        row = await repo.get_session(conn, session_id, lock=lock)
    if row is None or (app is not None and (row["tenant_id"], row["app_id"]) != app):
        raise CheckoutNotFound()
    return row


async def get_session(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, session_id: str
) -> s.CheckoutSession:
    app = app_of(caller)
    row = await session_row(conn, session_id, app)
    return session_out(row, deps, await app_now(conn, deps, app[1]))


async def complete(
    conn: asyncpg.Connection,
    deps: Deps,
    session_id: str,
    app: tuple[str, str] | None,
    outcome: str | None,
) -> s.CompletedCheckout:
    """Pay the session: the first completion makes the subscription; a later one returns
    it, paying its first charge again while it is still incomplete. ``outcome`` None
    charges by the customer's sandbox payment behavior (the hosted page's Pay button)."""
    session = await session_row(conn, session_id, app, lock=True)  # one completion at a time
    tenant_id, app_id = session["tenant_id"], session["app_id"]
    now = await app_now(conn, deps, app_id)
    assert deps.lookups is not None
    plan = await deps.lookups.plan(conn, tenant_id, app_id, session["plan_id"])
    info = await deps.lookups.app(conn, tenant_id, app_id)
    subscription_id = session["subscription_id"] or new_id("sub")
    billing = RowBilling(
        conn,
        deps,
        tenant_id=tenant_id,
        app_id=app_id,
        subscription_id=subscription_id,
        customer_id=session["customer_id"],
        currency=plan.currency,
        grace_days=info.grace_period_days,
        outcome=outcome,
    )
    if info.gateway != "sandbox":
        raise ClockNotAvailable("Only a sandbox app's checkouts are completed by StackBE")
    if session["status"] == "completed":
        current = await repo.get_subscription(conn, tenant_id, app_id, subscription_id, lock=True)
        assert current is not None
        current = await run_due_until(conn, current, now, billing_for(conn, deps))
        if current["status"] == "canceled":
            raise CheckoutExpired("The checkout was never paid and its subscription has ended")
        after = await machine.pay_incomplete(sub_of(current), terms_of(plan), now, billing)
        sub = await save(conn, current, after, now)
    else:
        if session["expires_at"] <= now:
            raise CheckoutExpired()
        replaced = await refuse_second_live(
            conn, deps, tenant_id, app_id, session["customer_id"], free_replaceable=True
        )
        if replaced is not None:  # the free plan ends as the paid one starts
            replaced = await _lock_free(conn, deps, replaced, now)
            await save(conn, replaced, machine.cancel(sub_of(replaced), now, False), now)
        sub = await _start(conn, deps, billing, plan, now)
        if replaced is not None and sub["status"] not in ("trialing", "active"):
            raise PaymentDeclined()  # rolled back: the free subscription stays
        session = await repo.complete_session(conn, session_id, subscription_id, now)
        await outbox.record(
            conn,
            fact(
                CheckoutCompleted,
                now,
                tenant_id,
                app_id,
                session_id=session_id,
                customer_id=session["customer_id"],
                plan_id=plan.id,
                subscription_id=subscription_id,
            ),
        )
    return s.CompletedCheckout(
        **{
            f: getattr(session_out(session, deps, now), f)
            for f in s.CheckoutSession.__struct_fields__
        },
        subscription=subscription_out(sub),
    )


async def _lock_free(
    conn: asyncpg.Connection, deps: Deps, live: asyncpg.Record, now: datetime
) -> asyncpg.Record:
    """The free subscription a checkout replaces, locked and brought up to ``now``; if it
    changed meanwhile (another plan, paused...) it is not replaced after all."""
    row = await repo.get_subscription(
        conn, live["tenant_id"], live["app_id"], live["id"], lock=True
    )
    if row is not None:
        row = await run_due_until(conn, row, now, billing_for(conn, deps))
    if row is None or row["status"] not in ("trialing", "active"):
        raise SubscriptionExists()
    assert deps.lookups is not None
    plan = await deps.lookups.plan(conn, row["tenant_id"], row["app_id"], sub_of(row).plan_id)
    if plan.price_cents != 0:
        raise SubscriptionExists(f"The customer already has a live subscription ({row['id']})")
    return row


async def _start(
    conn: asyncpg.Connection, deps: Deps, billing: RowBilling, plan: Plan, now: datetime
) -> asyncpg.Record:
    """A new subscription (its first charge, if any, announced after it); 409
    ``SUBSCRIPTION_EXISTS`` if a racing start made the customer's live one first."""
    expires = now + timedelta(hours=deps.settings.incomplete_hours)
    billing.hold_events()
    started = await machine.start(terms_of(plan), now, billing, expires)
    try:
        async with conn.transaction():  # a savepoint: a racing checkout may have won
            row = await save(
                conn,
                None,
                started,
                now,
                new={
                    "id": billing.subscription_id,
                    "tenant_id": billing.tenant_id,
                    "app_id": billing.app_id,
                    "customer_id": billing.customer_id,
                },
            )
    except asyncpg.UniqueViolationError as exc:
        raise SubscriptionExists() from exc
    await billing.release_events()
    return row


async def start_free(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, data: s.CreateSubscription
) -> Subscription:
    """Subscribe a customer to a $0 plan at once: nothing to pay, so no checkout. A paid
    plan is 400: it starts with a checkout."""
    tenant_id, app_id = app_of(caller, write=True)
    assert deps.lookups is not None
    plan = await deps.lookups.plan(conn, tenant_id, app_id, data.plan_id)
    if plan.status != "active":
        raise PlanDeprecated(f"The plan is {plan.status} and takes no new subscriptions")
    if plan.price_cents != 0:
        raise InvalidInput(
            "Only a free plan starts without a checkout; start a paid plan with "
            "POST /v1/checkout/session",
            field="planId",
        )
    info = await deps.lookups.app(conn, tenant_id, app_id)
    customer_id = await deps.lookups.customer(
        conn, tenant_id, app_id, customer_id=data.customer_id, email=None
    )
    await refuse_second_live(conn, deps, tenant_id, app_id, customer_id)
    now = await app_now(conn, deps, app_id)
    subscription_id = new_id("sub")
    billing = RowBilling(
        conn,
        deps,
        tenant_id=tenant_id,
        app_id=app_id,
        subscription_id=subscription_id,
        customer_id=customer_id,
        currency=plan.currency,
        grace_days=info.grace_period_days,
    )
    row = await _start(conn, deps, billing, plan, now)
    return subscription_out(row)
