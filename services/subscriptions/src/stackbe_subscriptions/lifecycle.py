"""Subscriptions as rows: load the machine's state, let it decide, save the result with
its events, and run what is due by each app's clock.

Every change bumps the subscription's ``version``, sets ``next_action_at`` (when the
machine next acts by itself) and records one event carrying the whole subscription.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from stackbe_common import outbox
from stackbe_common.ids import new_id
from stackbe_events import Event
from stackbe_events.subscriptions import (
    Payment,
    PaymentFailed,
    PaymentKind,
    PaymentSucceeded,
    Subscription,
    SubscriptionCanceled,
    SubscriptionCreated,
    SubscriptionPaused,
    SubscriptionResumed,
    SubscriptionUpdated,
)

from . import machine
from . import repository as repo
from .deps import Deps
from .machine import Sub, Terms

__all__ = [
    "RowBilling",
    "app_now",
    "fact",
    "payment_out",
    "run_due_until",
    "save",
    "sub_of",
    "subscription_out",
    "terms_of",
]

SANDBOX_DECLINE = "card_declined: the sandbox customer's payment behavior is 'fail'"


def fact(cls: type[Any], at: datetime, tenant_id: str, app_id: str, **body: Any) -> Event:
    event: Event = cls(id=new_id("evt"), occurred_at=at, tenant_id=tenant_id, app_id=app_id, **body)
    return event


async def app_now(conn: asyncpg.Connection, deps: Deps, app_id: str) -> datetime:
    """The app's time: the wall clock plus how far its sandbox test clock was advanced."""
    offset = await repo.clock_offset_us(conn, app_id)
    return deps.clock.now() + timedelta(microseconds=offset)


def terms_of(plan: Any) -> Terms:
    return Terms(
        plan_id=plan.id,
        price_cents=plan.price_cents,
        currency=plan.currency,
        interval=plan.interval,
        interval_count=plan.interval_count,
        trial_days=plan.trial_days,
    )


def sub_of(row: asyncpg.Record) -> Sub:
    return Sub(**{column: row[column] for column in repo.STATE_COLUMNS})


def subscription_out(row: asyncpg.Record) -> Subscription:
    return Subscription(
        id=row["id"],
        app_id=row["app_id"],
        customer_id=row["customer_id"],
        plan_id=row["plan_id"],
        status=row["status"],
        current_period_start=row["current_period_start"],
        current_period_end=row["current_period_end"],
        trial_end=row["trial_end"],
        cancel_at_period_end=row["cancel_at_period_end"],
        canceled_at=row["canceled_at"],
        paused_at=row["paused_at"],
        resumes_at=row["resumes_at"],
        grace_ends_at=row["grace_ends_at"],
        pending_plan_id=row["pending_plan_id"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def payment_out(row: asyncpg.Record) -> Payment:
    return Payment(
        id=row["id"],
        subscription_id=row["subscription_id"],
        customer_id=row["customer_id"],
        amount_cents=row["amount_cents"],
        currency=row["currency"],
        status=row["status"],
        kind=row["kind"],
        failure_reason=row["failure_reason"],
        created_at=row["created_at"],
    )


class RowBilling:
    """The machine's money for one subscription, inside the caller's transaction: the
    sandbox gateway charges by the customer's payment behavior (or the outcome a checkout
    completion names), and every charge or refund becomes a payment with its event."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        deps: Deps,
        *,
        tenant_id: str,
        app_id: str,
        subscription_id: str,
        customer_id: str,
        currency: str,
        grace_days: int,
        outcome: str | None = None,
    ) -> None:
        self.conn, self.deps = conn, deps
        self.tenant_id, self.app_id = tenant_id, app_id
        self.subscription_id, self.customer_id = subscription_id, customer_id
        self.currency, self.grace_days, self.outcome = currency, grace_days, outcome
        self._held: list[tuple[type[Any], datetime, Payment]] | None = None

    def hold_events(self) -> None:
        """Keep payment events back until ``release_events``: a new subscription's first
        charge is announced after the subscription itself, so consumers of the stream
        meet the subscription first."""
        self._held = []

    async def release_events(self) -> None:
        held, self._held = self._held or [], None
        for cls, at, payment in held:  # made now, so their ids sort after the subscription's
            await outbox.record(
                self.conn, fact(cls, at, self.tenant_id, self.app_id, payment=payment)
            )

    async def charge(self, amount_cents: int, kind: PaymentKind, at: datetime) -> bool:
        if amount_cents == 0:
            return True
        behavior = self.outcome or await repo.get_behavior(self.conn, self.customer_id)
        succeeded = amount_cents < 0 or behavior in ("succeed", "succeeded")
        row = await repo.insert_payment(
            self.conn,
            new_id("pay"),
            self.tenant_id,
            self.app_id,
            self.subscription_id,
            self.customer_id,
            amount_cents,
            self.currency,
            "succeeded" if succeeded else "failed",
            kind,
            None if succeeded else SANDBOX_DECLINE,
            at,
        )
        cls = PaymentSucceeded if succeeded else PaymentFailed
        if self._held is not None:
            self._held.append((cls, at, payment_out(row)))
        else:
            await outbox.record(
                self.conn, fact(cls, at, self.tenant_id, self.app_id, payment=payment_out(row))
            )
        return succeeded

    async def terms(self, plan_id: str) -> Terms:
        assert self.deps.lookups is not None
        plan = await self.deps.lookups.plan(self.conn, self.tenant_id, self.app_id, plan_id)
        return terms_of(plan)


def _event_class(before: Sub | None, after: Sub) -> type[Any]:
    if before is None:
        return SubscriptionCreated
    if after.status == "canceled":
        return SubscriptionCanceled
    if after.status == "paused" and before.status != "paused":
        return SubscriptionPaused
    if before.status == "paused" and after.status != "paused":
        return SubscriptionResumed
    return SubscriptionUpdated


async def save(
    conn: asyncpg.Connection,
    current: asyncpg.Record | None,
    after: Sub,
    at: datetime,
    *,
    new: dict[str, str] | None = None,
    scheduled: bool = True,
) -> asyncpg.Record:
    """Write the state (insert when ``current`` is None, with ``new`` naming the ids) and
    record its event; an unchanged state writes nothing. A subscription a payment
    gateway runs (Stripe) is not ``scheduled``: its gateway's events move it, not ours."""
    before = None if current is None else sub_of(current)
    if current is not None and before == after:
        return current
    due = machine.next_due(after) if scheduled else None
    state = dataclasses.asdict(after)
    if current is None:
        assert new is not None
        row = await repo.insert_subscription(
            conn,
            new["id"],
            new["tenant_id"],
            new["app_id"],
            new["customer_id"],
            state,
            due[0] if due else None,
            at,
        )
    else:
        row = await repo.update_subscription(
            conn, current["id"], state, due[0] if due else None, at
        )
    cls = _event_class(before, after)
    event = fact(cls, at, row["tenant_id"], row["app_id"], subscription=subscription_out(row))
    await outbox.record(conn, event)
    return row


BillingFor = Callable[[asyncpg.Record], Awaitable[RowBilling]]


async def run_due_until(
    conn: asyncpg.Connection, row: asyncpg.Record, until: datetime, billing_for: BillingFor
) -> asyncpg.Record:
    """Carry out each of the (locked) subscription's actions due by ``until``, in order,
    each at the moment it was due."""
    while row["next_action_at"] is not None and row["next_action_at"] <= until:
        due = machine.next_due(sub_of(row))
        assert due is not None
        before = sub_of(row)
        after = await machine.run_due(before, await billing_for(row))
        if after == before:
            raise RuntimeError(f"subscription {row['id']} was due and did not change")
        row = await save(conn, row, after, due[0])
    return row
