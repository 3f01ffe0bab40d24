"""The subscription state machine: what each action and each due moment does.

Statuses: ``incomplete`` (first payment failed), ``trialing``, ``active``, ``past_due``
(a renewal failed; retried 1, 3 and 5 days later; access until the app's grace period
ends), ``paused`` (no access, no billing) and ``canceled`` (final).

The functions here decide; they never touch a database. A transition that takes money
calls ``Billing.charge`` (the service records the payment with the app's gateway) and
goes on according to its outcome. Each returns the new state, or raises a ``Conflict``
whose code names why the subscription cannot do that now.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, Protocol

from stackbe_events.catalog import Interval
from stackbe_events.subscriptions import PaymentKind, Status

from .errors import (
    CurrencyMismatch,
    PaymentFailedError,
    SamePlan,
    SubscriptionCanceled,
    SubscriptionCanceling,
    SubscriptionIncomplete,
    SubscriptionNotCanceling,
    SubscriptionNotPaused,
    SubscriptionPastDue,
    SubscriptionPaused,
)
from .money import monthly_cents, prorate
from .periods import period_end_after

__all__ = [
    "RETRY_DAYS",
    "Action",
    "Billing",
    "Effective",
    "ProrationBehavior",
    "Sub",
    "Terms",
    "cancel",
    "change_plan",
    "next_due",
    "pause",
    "pay_incomplete",
    "reactivate",
    "refuse_change",
    "resume",
    "run_due",
    "start",
]

RETRY_DAYS = (1, 3, 5)  # after a failed renewal, payment is tried again on these days

Effective = Literal["immediately", "period_end"]
ProrationBehavior = Literal["create_prorations", "none"]


@dataclass(frozen=True)
class Terms:
    """What a plan charges, and how often."""

    plan_id: str
    price_cents: int
    currency: str
    interval: Interval
    interval_count: int
    trial_days: int = 0

    def period_after(self, anchor: datetime, start: datetime) -> datetime:
        return period_end_after(anchor, start, self.interval, self.interval_count)

    def same_period_as(self, other: Terms) -> bool:
        return (self.interval, self.interval_count) == (other.interval, other.interval_count)


@dataclass(frozen=True)
class Sub:
    """The state the machine reads and writes (ids and versions live with the row)."""

    status: Status
    plan_id: str
    anchor: datetime | None = None
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    trial_end: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    paused_at: datetime | None = None
    resumes_at: datetime | None = None
    failed_at: datetime | None = None
    grace_ends_at: datetime | None = None
    retries: int = 0
    due_cents: int = 0
    pending_plan_id: str | None = None
    expires_at: datetime | None = None
    # The full-period price the customer is paying in the current period: what a
    # proration credits back, so a refund never exceeds what was paid.
    rate_cents: int = 0

    def but(self, **changes: object) -> Sub:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


class Billing(Protocol):
    """Money and plans, as the service provides them to the machine."""

    grace_days: int

    def charge(self, amount_cents: int, kind: PaymentKind, at: datetime) -> Awaitable[bool]:
        """Charge (or refund, when negative) the customer now; True when it succeeded.
        Zero succeeds without a payment."""
        ...

    def terms(self, plan_id: str) -> Awaitable[Terms]: ...


class Action(StrEnum):
    EXPIRE = "expire"  # an incomplete subscription was never paid
    TRIAL_END = "trial_end"
    RENEW = "renew"
    END = "end"  # cancel at period end
    RETRY = "retry"
    GRACE_END = "grace_end"
    RESUME = "resume"


def next_due(sub: Sub) -> tuple[datetime, Action] | None:
    """The next moment the subscription changes by itself, and what happens then."""
    if sub.status == "incomplete" and sub.expires_at:
        return sub.expires_at, Action.EXPIRE
    if sub.status == "trialing" and sub.trial_end:
        return sub.trial_end, Action.END if sub.cancel_at_period_end else Action.TRIAL_END
    if sub.status == "active" and sub.current_period_end:
        return sub.current_period_end, Action.END if sub.cancel_at_period_end else Action.RENEW
    if sub.status == "past_due" and sub.failed_at and sub.grace_ends_at:
        # Earliest first; at the same moment a retry goes before an end.
        due = [(sub.grace_ends_at, 2, Action.GRACE_END)]
        if sub.retries < len(RETRY_DAYS):
            retry_at = sub.failed_at + timedelta(days=RETRY_DAYS[sub.retries])
            if retry_at <= sub.grace_ends_at:
                due.append((retry_at, 0, Action.RETRY))
        if sub.cancel_at_period_end and sub.current_period_end:
            due.append((sub.current_period_end, 1, Action.END))
        at, _, action = min(due)
        return at, action
    if sub.status == "paused" and sub.resumes_at:
        return sub.resumes_at, Action.RESUME
    return None


# Starting


def _active_from(sub: Sub, terms: Terms, at: datetime, anchor: datetime | None = None) -> Sub:
    """Active for a period that starts at ``at``; its end is counted from ``anchor`` (a
    renewal keeps the subscription's anchor; anything else starts a new one at ``at``)."""
    anchor = anchor or at
    return sub.but(
        status="active",
        plan_id=terms.plan_id,
        anchor=anchor,
        current_period_start=at,
        current_period_end=terms.period_after(anchor, at),
        failed_at=None,
        grace_ends_at=None,
        retries=0,
        due_cents=0,
        expires_at=None,
        rate_cents=terms.price_cents,
    )


def _past_due_from(
    sub: Sub, terms: Terms, at: datetime, grace_days: int, anchor: datetime | None = None
) -> Sub:
    """A charge for the period starting at ``at`` failed: the period runs, unpaid."""
    anchor = anchor or at
    return sub.but(
        status="past_due",
        plan_id=terms.plan_id,
        anchor=anchor,
        current_period_start=at,
        current_period_end=terms.period_after(anchor, at),
        failed_at=at,
        grace_ends_at=at + timedelta(days=grace_days),
        retries=0,
        due_cents=terms.price_cents,
        rate_cents=0,
    )


async def start(terms: Terms, at: datetime, billing: Billing, expires_at: datetime) -> Sub:
    """A checkout completed: trialing for a trial plan, else charge the first period."""
    sub = Sub(status="incomplete", plan_id=terms.plan_id)
    if terms.trial_days > 0:
        trial_end = at + timedelta(days=terms.trial_days)
        return sub.but(
            status="trialing",
            anchor=at,
            current_period_start=at,
            current_period_end=trial_end,
            trial_end=trial_end,
        )
    return await pay_incomplete(sub.but(expires_at=expires_at), terms, at, billing)


async def pay_incomplete(sub: Sub, terms: Terms, at: datetime, billing: Billing) -> Sub:
    """Try the first charge of an incomplete subscription again."""
    if sub.status != "incomplete":
        return sub  # already paid: completing a checkout twice changes nothing
    if await billing.charge(terms.price_cents, "initial", at):
        return _active_from(sub, terms, at)
    return sub


# What happens by itself


async def run_due(sub: Sub, billing: Billing) -> Sub:
    """Carry out the subscription's next due action, at the moment it was due."""
    due = next_due(sub)
    if due is None:
        return sub
    at, action = due
    if action in (Action.EXPIRE, Action.END, Action.GRACE_END):
        return sub.but(status="canceled", canceled_at=at, cancel_at_period_end=False)
    if action in (Action.TRIAL_END, Action.RENEW):
        return await _renew(sub, at, billing)
    if action is Action.RETRY:
        return await _retry(sub, at, billing)
    return await resume(sub, at, billing)


async def _renew(sub: Sub, at: datetime, billing: Billing) -> Sub:
    """A period (or the trial) ended: switch to a pending plan, charge the next period."""
    current = await billing.terms(sub.plan_id)
    terms = await billing.terms(sub.pending_plan_id) if sub.pending_plan_id else current
    # The billing day stays the anchor's (31 Jan, 28 Feb, 31 Mar...); a trial's end or a
    # new billing period starts a new anchor.
    keep = sub.status == "active" and sub.anchor is not None and terms.same_period_as(current)
    anchor = sub.anchor if keep else at
    sub = sub.but(pending_plan_id=None)
    if await billing.charge(terms.price_cents, "renewal", at):
        return _active_from(sub, terms, at, anchor)
    return _past_due_from(sub, terms, at, billing.grace_days, anchor)


async def _retry(sub: Sub, at: datetime, billing: Billing) -> Sub:
    if not await billing.charge(sub.due_cents, "retry", at):
        return sub.but(retries=sub.retries + 1)
    if sub.current_period_end is not None and at >= sub.current_period_end:
        # Paid after the unpaid period ended: the payment buys a period from now on.
        return _active_from(sub, await billing.terms(sub.plan_id), at)
    paid = sub.due_cents
    return sub.but(
        status="active", failed_at=None, grace_ends_at=None, retries=0, due_cents=0, rate_cents=paid
    )


# What the app asks for


def _refuse_canceled(sub: Sub) -> None:
    if sub.status == "canceled":
        raise SubscriptionCanceled()


def cancel(sub: Sub, at: datetime, at_period_end: bool) -> Sub:
    """Cancel now, or at the end of the current period (or trial)."""
    _refuse_canceled(sub)
    if not at_period_end:
        return sub.but(status="canceled", canceled_at=at, cancel_at_period_end=False)
    if sub.status == "incomplete":
        raise SubscriptionIncomplete("An incomplete subscription has no period: cancel it now")
    if sub.status == "paused":
        raise SubscriptionPaused("A paused subscription has no running period: cancel it now")
    return sub.but(cancel_at_period_end=True)


def reactivate(sub: Sub) -> Sub:
    """Undo a cancel at period end."""
    _refuse_canceled(sub)
    if not sub.cancel_at_period_end:
        raise SubscriptionNotCanceling()
    return sub.but(cancel_at_period_end=False)


def _refuse_unsettled(sub: Sub, doing: str) -> None:
    _refuse_canceled(sub)
    if sub.status == "incomplete":
        raise SubscriptionIncomplete(f"An incomplete subscription cannot be {doing}")
    if sub.status == "past_due":
        raise SubscriptionPastDue(f"A past_due subscription cannot be {doing}: payment is due")
    if sub.status == "paused":
        raise SubscriptionPaused(f"A paused subscription cannot be {doing}; resume it first")


def pause(sub: Sub, at: datetime, resumes_at: datetime | None) -> Sub:
    """No access and no billing from now; the rest of the period is not refunded. A
    pending change of plan applies when the subscription resumes."""
    _refuse_unsettled(sub, "paused")
    if sub.cancel_at_period_end:
        raise SubscriptionCanceling()
    return sub.but(status="paused", paused_at=at, resumes_at=resumes_at, trial_end=None)


async def resume(sub: Sub, at: datetime, billing: Billing) -> Sub:
    """Resume a paused subscription: a new period starts now and is charged."""
    _refuse_canceled(sub)
    if sub.status != "paused":
        raise SubscriptionNotPaused()
    terms = await billing.terms(sub.pending_plan_id or sub.plan_id)
    sub = sub.but(paused_at=None, resumes_at=None, pending_plan_id=None)
    if await billing.charge(terms.price_cents, "resume", at):
        return _active_from(sub, terms, at)
    return _past_due_from(sub, terms, at, billing.grace_days)


def is_upgrade(old: Terms, new: Terms) -> bool:
    """Costs more per month than the current plan."""
    return monthly_cents(new.price_cents, new.interval, new.interval_count) > monthly_cents(
        old.price_cents, old.interval, old.interval_count
    )


def refuse_change(sub: Sub, old: Terms, new: Terms) -> None:
    """Raise why the subscription cannot move from ``old`` to ``new`` now, if it cannot."""
    _refuse_unsettled(sub, "moved to another plan")
    if new.plan_id == sub.plan_id:
        raise SamePlan()
    if new.currency != old.currency:
        raise CurrencyMismatch(
            f"The new plan is billed in {new.currency}, the subscription in {old.currency}"
        )


async def change_plan(
    sub: Sub,
    old: Terms,
    new: Terms,
    at: datetime,
    billing: Billing,
    effective: Effective | None,
    proration: ProrationBehavior | None,
) -> Sub:
    """Switch plans: by default an upgrade now with proration, a downgrade at period end."""
    if new.plan_id == sub.plan_id and sub.pending_plan_id is not None:
        _refuse_unsettled(sub, "moved to another plan")
        return sub.but(pending_plan_id=None)  # keep the current plan after all
    refuse_change(sub, old, new)
    upgrade = is_upgrade(old, new)
    when = effective or ("immediately" if upgrade else "period_end")
    if when == "period_end":
        return sub.but(pending_plan_id=new.plan_id)
    sub = sub.but(pending_plan_id=None)
    if sub.status == "trialing":
        return sub.but(plan_id=new.plan_id)  # the trial goes on, on the new plan
    assert sub.current_period_start and sub.current_period_end
    same = new.same_period_as(old)
    if (proration or "create_prorations") == "none":
        if same:
            return sub.but(plan_id=new.plan_id)  # the rate paid stays what it was
        amount = new.price_cents
    else:
        amount = prorate(
            sub.rate_cents,  # what the customer pays now, which the credit gives back
            new.price_cents,
            sub.current_period_start,
            sub.current_period_end,
            at,
            same_period=same,
        ).amount_cents
    if not await billing.charge(amount, "proration", at):
        raise PaymentFailedError()
    if same:
        return sub.but(plan_id=new.plan_id, rate_cents=new.price_cents)
    return _active_from(sub, new, at)
