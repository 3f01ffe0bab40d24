"""What an app does with its subscriptions: read them, cancel, reactivate, pause, resume,
change plan; and its payments. Functions take the request's connection and never commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
import msgspec

from stackbe_common.access import app_of
from stackbe_common.errors import InvalidInput
from stackbe_common.ids import has_prefix
from stackbe_common.pagination import Page, PageParams, page_of
from stackbe_common.scope import Scope
from stackbe_common.uow import UnitOfWork
from stackbe_events.catalog import Plan
from stackbe_events.subscriptions import Payment, Subscription

from . import machine, stripe_actions
from . import repository as repo
from . import schemas as s
from .deps import Deps
from .errors import NoActiveSubscription, PaymentFailedError, PlanDeprecated, SubscriptionNotFound
from .gateway_repository import lock_stripe_subscription
from .lifecycle import (
    RowBilling,
    app_now,
    payment_out,
    run_due_until,
    save,
    sub_of,
    subscription_out,
    terms_of,
)
from .machine import Sub
from .stripe_actions import StripeAction

__all__ = [
    "billing_for",
    "cancel",
    "change_plan",
    "current",
    "get",
    "list_payments",
    "list_subscriptions",
    "pause",
    "reactivate",
    "resume",
]

STATUSES = ("incomplete", "trialing", "active", "past_due", "paused", "canceled")


def billing_for(
    conn: asyncpg.Connection, deps: Deps
) -> Callable[[asyncpg.Record], Awaitable[RowBilling]]:
    """Billing for a subscription row: its plan's currency and its app's grace period."""

    async def make(row: asyncpg.Record) -> RowBilling:
        assert deps.lookups is not None
        plan = await deps.lookups.plan(conn, row["tenant_id"], row["app_id"], row["plan_id"])
        info = await deps.lookups.app(conn, row["tenant_id"], row["app_id"])
        return RowBilling(
            conn,
            deps,
            tenant_id=row["tenant_id"],
            app_id=row["app_id"],
            subscription_id=row["id"],
            customer_id=row["customer_id"],
            currency=plan.currency,
            grace_days=info.grace_period_days,
        )

    return make


async def _row(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, sub_id: str, *, lock: bool = False
) -> asyncpg.Record:
    row = None
    if has_prefix(sub_id, "sub"):
        row = await repo.get_subscription(conn, tenant_id, app_id, sub_id, lock=lock)
    if row is None:
        raise SubscriptionNotFound()
    return row


async def get(conn: asyncpg.Connection, caller: Scope, sub_id: str) -> Subscription:
    tenant_id, app_id = app_of(caller)
    return subscription_out(await _row(conn, tenant_id, app_id, sub_id))


async def list_subscriptions(
    conn: asyncpg.Connection,
    caller: Scope,
    params: PageParams,
    customer_id: str | None,
    status: str | None,
) -> Page[Subscription]:
    tenant_id, app_id = app_of(caller)
    if status and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
    rows = await repo.list_subscriptions(
        conn,
        tenant_id,
        app_id,
        customer_id or None,
        status or None,
        params.starting_after,
        params.limit + 1,
    )
    return page_of(rows, params, subscription_out)


async def current(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, customer_id: str, expand: str | None
) -> s.SubscriptionWithPlan:
    """The customer's live subscription, with its plan when ``expand=plan``."""
    tenant_id, app_id = app_of(caller)
    if expand not in (None, "", "plan"):
        raise InvalidInput("expand may only be 'plan'", field="expand")
    row = await repo.live_subscription(conn, tenant_id, app_id, customer_id)
    if row is None:
        raise NoActiveSubscription()
    plan: Plan | None = None
    if expand == "plan":
        assert deps.lookups is not None
        plan = await deps.lookups.plan(conn, tenant_id, app_id, row["plan_id"])
    fields = msgspec.structs.asdict(subscription_out(row))
    return s.SubscriptionWithPlan(**fields, plan=plan)


Decide = Callable[[Sub, datetime, RowBilling], Awaitable[Sub]]
OnStripe = Callable[[asyncpg.Record, datetime], Awaitable[StripeAction]]


async def _act(
    conn: asyncpg.Connection,
    deps: Deps,
    caller: Scope,
    sub_id: str,
    decide: Decide,
    on_stripe: OnStripe,
) -> Subscription:
    """Bring the subscription up to the app's now, then apply the app's decision; a
    subscription Stripe runs is changed in Stripe instead, and takes Stripe's answer."""
    tenant_id, app_id = app_of(caller, write=True)
    row = await _row(conn, tenant_id, app_id, sub_id)
    if row["stripe_subscription_id"] is not None:  # its lock first, as webhooks take them
        await lock_stripe_subscription(conn, row["gateway_id"], row["stripe_subscription_id"])
    row = await _row(conn, tenant_id, app_id, sub_id, lock=True)
    now = await app_now(conn, deps, app_id)
    if row["stripe_subscription_id"] is not None:
        action = await on_stripe(row, now)
        return subscription_out(await stripe_actions.run(conn, deps, row, action))
    make = billing_for(conn, deps)
    row = await run_due_until(conn, row, now, make)
    after = await decide(sub_of(row), now, await make(row))
    return subscription_out(await save(conn, row, after, now))


async def cancel(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, sub_id: str, data: s.CancelSubscription
) -> Subscription:
    async def decide(sub: Sub, now: datetime, _: RowBilling) -> Sub:
        return machine.cancel(sub, now, data.at_period_end)

    async def on_stripe(row: asyncpg.Record, now: datetime) -> StripeAction:
        return StripeAction.cancel(row, data, now)

    return await _act(conn, deps, caller, sub_id, decide, on_stripe)


async def reactivate(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, sub_id: str
) -> Subscription:
    async def decide(sub: Sub, _now: datetime, _: RowBilling) -> Sub:
        return machine.reactivate(sub)

    async def on_stripe(row: asyncpg.Record, _now: datetime) -> StripeAction:
        return StripeAction.reactivate(row)

    return await _act(conn, deps, caller, sub_id, decide, on_stripe)


async def pause(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, sub_id: str, data: s.PauseSubscription
) -> Subscription:
    def refuse_past(now: datetime) -> None:
        if data.resumes_at is not None and data.resumes_at <= now:
            raise InvalidInput("resumesAt must be in the future", field="resumesAt")

    async def decide(sub: Sub, now: datetime, _: RowBilling) -> Sub:
        refuse_past(now)
        return machine.pause(sub, now, data.resumes_at)

    async def on_stripe(row: asyncpg.Record, now: datetime) -> StripeAction:
        refuse_past(now)
        return StripeAction.pause(row, data, now)

    return await _act(conn, deps, caller, sub_id, decide, on_stripe)


async def resume(conn: asyncpg.Connection, deps: Deps, caller: Scope, sub_id: str) -> Subscription:
    async def decide(sub: Sub, now: datetime, billing: RowBilling) -> Sub:
        return await machine.resume(sub, now, billing)

    async def on_stripe(row: asyncpg.Record, _now: datetime) -> StripeAction:
        return StripeAction.resume(row)

    return await _act(conn, deps, caller, sub_id, decide, on_stripe)


async def change_plan(
    conn: asyncpg.Connection,
    deps: Deps,
    uow: UnitOfWork,
    caller: Scope,
    sub_id: str,
    data: s.ChangePlan,
) -> Subscription:
    async def decide(sub: Sub, now: datetime, billing: RowBilling) -> Sub:
        assert deps.lookups is not None
        new = await deps.lookups.plan(conn, billing.tenant_id, billing.app_id, data.plan_id)
        if new.status != "active" and new.id != sub.plan_id:  # staying put is always allowed
            raise PlanDeprecated(f"The plan is {new.status} and takes no new subscriptions")
        old = await billing.terms(sub.plan_id)
        try:
            return await machine.change_plan(
                sub, old, terms_of(new), now, billing, data.effective, data.proration
            )
        except PaymentFailedError:
            uow.commit_even_on_error()  # keep the failed payment on record
            raise

    async def on_stripe(row: asyncpg.Record, _now: datetime) -> StripeAction:
        return await stripe_actions.change_plan(conn, deps, row, data)

    return await _act(conn, deps, caller, sub_id, decide, on_stripe)


async def list_payments(
    conn: asyncpg.Connection, caller: Scope, params: PageParams, subscription_id: str | None
) -> Page[Payment]:
    tenant_id, app_id = app_of(caller)
    rows = await repo.list_payments(
        conn, tenant_id, app_id, subscription_id or None, params.starting_after, params.limit + 1
    )
    return page_of(rows, params, payment_out)
