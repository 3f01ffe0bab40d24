"""StackBE's objects in Stripe, and Stripe's subscriptions in StackBE.

Outward: the Stripe customer of a StackBE customer, and the Stripe price of a plan
(the tenant's own ``gatewayMappings.stripe.priceId``, or a Product and Price StackBE
makes once and remembers). Inward: ``apply`` writes a Stripe subscription, as Stripe
holds it now, onto StackBE's subscription, with the usual event when anything changed.
Webhooks, actions and reconciliation all end in ``apply``, so whatever order Stripe's
events come in, the state written is Stripe's latest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from stackbe_common import outbox
from stackbe_common.ids import new_id
from stackbe_common.logging import get_logger
from stackbe_events.catalog import Plan
from stackbe_events.subscriptions import GatewayPriceCreated

from . import gateway_repository as grepo
from . import repository as repo
from .deps import Deps
from .errors import CustomerNotFound, SubscriptionExists
from .lifecycle import app_now, fact, save, sub_of
from .machine import Sub
from .stripe_api import StripeAccount, status_of_stripe

__all__ = ["apply", "apply_latest", "ensure_customer", "ensure_price", "plan_of_price"]

log = get_logger(__name__)


async def ensure_customer(
    conn: asyncpg.Connection, deps: Deps, account: StripeAccount, app_id: str, customer_id: str
) -> str:
    found = await grepo.stripe_id_of(conn, account.gateway_id, "customer", customer_id)
    if found is not None:
        return found
    email = await grepo.customer_email(conn, customer_id) or ""
    made = await account.create_customer(customer_id, email, app_id)
    return await grepo.remember(
        conn, account.gateway_id, "customer", customer_id, made, deps.clock.now()
    )


async def ensure_price(
    conn: asyncpg.Connection, deps: Deps, account: StripeAccount, tenant_id: str, plan: Plan
) -> str:
    """The plan's Stripe price. A plan without one gets a Product (one per StackBE
    product) and a Price made for it; the catalog hears of it and stores the mapping."""
    gateway_id, now = account.gateway_id, deps.clock.now()
    found = await grepo.stripe_id_of(conn, gateway_id, "price", plan.id)
    if found is not None:
        return found
    given = plan.gateway_mappings.stripe
    # The tenant's own price; not one StackBE made for another connection (the catalog
    # shows those too), which this account would not know.
    if given is not None and not await grepo.made_by_stackbe(conn, "price", given.price_id):
        return await grepo.remember(
            conn, gateway_id, "price", plan.id, given.price_id, now, made=False
        )
    product = await grepo.stripe_id_of(conn, gateway_id, "product", plan.product_id)
    if product is None:
        name = await grepo.product_name(conn, plan.product_id) or plan.name
        made = await account.create_product(plan.product_id, name, plan.app_id)
        product = await grepo.remember(conn, gateway_id, "product", plan.product_id, made, now)
    price = await account.create_price(plan, product)
    stored = await grepo.remember(conn, gateway_id, "price", plan.id, price, now)
    if stored == price:
        await outbox.record(
            conn,
            fact(
                GatewayPriceCreated,
                now,
                tenant_id,
                plan.app_id,
                plan_id=plan.id,
                gateway="stripe",
                gateway_id=gateway_id,
                price_id=price,
                product_id=product,
            ),
        )
        log.info("stripe.price_created", plan_id=plan.id, gateway_id=gateway_id, price_id=price)
    return stored


async def plan_of_price(conn: asyncpg.Connection, gateway_id: str, price_id: str) -> str | None:
    return await grepo.local_id(conn, gateway_id, "price", price_id)


def _time(value: Any) -> datetime | None:
    return None if value in (None, 0) else datetime.fromtimestamp(int(value), UTC)


def _state(
    theirs: dict[str, Any], before: Sub | None, plan: Plan, grace: int, now: datetime
) -> Sub:
    status = status_of_stripe(theirs)
    item = theirs["items"]["data"][0]
    # Newer API versions keep the period on the item, older ones on the subscription.
    start = item.get("current_period_start") or theirs.get("current_period_start")
    end = item.get("current_period_end") or theirs.get("current_period_end")
    was = before.status if before else None
    failed_at = grace_ends_at = paused_at = canceled_at = None
    if status == "past_due":
        if before is not None and was == "past_due":
            failed_at, grace_ends_at = before.failed_at, before.grace_ends_at
        else:
            failed_at, grace_ends_at = now, now + timedelta(days=grace)
    if status == "paused":
        paused_at = before.paused_at if before is not None and was == "paused" else now
    if status == "canceled":
        canceled_at = _time(theirs.get("ended_at") or theirs.get("canceled_at")) or now
        if before is not None and was == "canceled":
            canceled_at = before.canceled_at
    pause = theirs.get("pause_collection") or {}
    return Sub(
        status=status,  # type: ignore[arg-type]
        plan_id=plan.id,
        anchor=_time(theirs.get("billing_cycle_anchor")),
        current_period_start=_time(start),
        current_period_end=_time(end),
        trial_end=_time(theirs.get("trial_end")) if status == "trialing" else None,
        cancel_at_period_end=status != "canceled"
        and bool(theirs.get("cancel_at_period_end") or theirs.get("cancel_at")),
        canceled_at=canceled_at,
        paused_at=paused_at,
        resumes_at=_time(pause.get("resumes_at")) if status == "paused" else None,
        failed_at=failed_at,
        grace_ends_at=grace_ends_at,
        rate_cents=plan.price_cents,
    )


async def apply_latest(
    conn: asyncpg.Connection,
    deps: Deps,
    gateway: asyncpg.Record,
    account: StripeAccount,
    stripe_sub_id: str,
) -> asyncpg.Record | None:
    """Read the subscription from Stripe and write it, holding its lock from before the
    read, so a writer that read earlier never writes over a later read."""
    await grepo.lock_stripe_subscription(conn, gateway["id"], stripe_sub_id)
    return await apply(conn, deps, gateway, await account.subscription(stripe_sub_id))


async def apply(
    conn: asyncpg.Connection, deps: Deps, gateway: asyncpg.Record, theirs: dict[str, Any]
) -> asyncpg.Record | None:
    """Write Stripe's subscription onto ours (made on first sight, if its metadata or
    customer names a customer of an app of this tenant on this connection). None when
    the subscription is not one of StackBE's. ``SUBSCRIPTION_EXISTS`` when writing it
    would give the customer a second live subscription in the app."""
    gateway_id = gateway["id"]
    row = await grepo.subscription_by_stripe_id(conn, gateway_id, theirs["id"])
    if row is None:
        found = await _owner(conn, deps, gateway, theirs)
        if found is None:
            log.info("stripe.subscription_not_ours", gateway_id=gateway_id, stripe_id=theirs["id"])
            return None
        tenant_id, app_id, customer_id = found
    else:
        tenant_id, app_id, customer_id = row["tenant_id"], row["app_id"], row["customer_id"]
    price = theirs["items"]["data"][0]["price"]
    plan_id = await plan_of_price(conn, gateway_id, price["id"])
    if plan_id is None:
        log.warning(
            "stripe.price_unknown", gateway_id=gateway_id, stripe_id=theirs["id"], price=price["id"]
        )
        if row is None:
            return None
        plan_id = row["plan_id"]  # the rest of Stripe's state is still written
    assert deps.lookups is not None
    plan = await deps.lookups.plan(conn, tenant_id, app_id, plan_id)
    info = await deps.lookups.app(conn, tenant_id, app_id)
    now = await app_now(conn, deps, app_id)
    after = _state(theirs, None if row is None else sub_of(row), plan, info.grace_period_days, now)
    sub_id = new_id("sub") if row is None else row["id"]
    try:
        async with conn.transaction():  # a savepoint: another live subscription may stand
            if row is not None:
                return await save(conn, row, after, now, scheduled=False)
            await _end_free(conn, deps, tenant_id, app_id, customer_id, now, after)
            new = {
                "id": sub_id,
                "tenant_id": tenant_id,
                "app_id": app_id,
                "customer_id": customer_id,
            }
            await save(conn, None, after, now, new=new, scheduled=False)
            linked = await grepo.link_subscription(conn, sub_id, gateway_id, theirs["id"])
    except asyncpg.UniqueViolationError as exc:
        raise SubscriptionExists(
            f"Stripe subscription {theirs['id']} would be a second live subscription"
        ) from exc
    log.info("stripe.subscription_linked", subscription_id=sub_id, stripe_id=theirs["id"])
    return linked


async def _owner(
    conn: asyncpg.Connection, deps: Deps, gateway: asyncpg.Record, theirs: dict[str, Any]
) -> tuple[str, str, str] | None:
    """(tenant, app, customer) a Stripe subscription StackBE has not seen belongs to: an
    app of the connection's tenant on this connection, and a customer of that app."""
    meta = theirs.get("metadata") or {}
    tenant_id, app_id = gateway["tenant_id"], meta.get("stackbe_app_id")
    customer_id = meta.get("stackbe_customer_id") or await grepo.local_id(
        conn, gateway["id"], "customer", str(theirs.get("customer"))
    )
    app = None if app_id is None else await repo.get_app(conn, tenant_id, app_id)
    if app is None or app["gateway_id"] != gateway["id"] or customer_id is None:
        return None
    assert app_id is not None
    assert deps.lookups is not None
    try:
        await deps.lookups.customer(conn, tenant_id, app_id, customer_id=customer_id)
    except CustomerNotFound:
        return None
    return str(tenant_id), str(app_id), str(customer_id)


async def _end_free(
    conn: asyncpg.Connection,
    deps: Deps,
    tenant_id: str,
    app_id: str,
    customer_id: str,
    now: datetime,
    after: Sub,
) -> None:
    """A paid Stripe subscription that started (trialing or active) replaces the
    customer's free one, as a checkout does; an incomplete one does not yet."""
    if after.status not in ("trialing", "active"):
        return
    live = await repo.live_subscription(conn, tenant_id, app_id, customer_id)
    if live is None or live["stripe_subscription_id"] is not None:
        return
    assert deps.lookups is not None
    plan = await deps.lookups.plan(conn, tenant_id, app_id, live["plan_id"])
    if plan.price_cents == 0:
        locked = await repo.get_subscription(conn, tenant_id, app_id, live["id"], lock=True)
        assert locked is not None
        ended = sub_of(locked).but(status="canceled", canceled_at=now, cancel_at_period_end=False)
        await save(conn, locked, ended, now)
