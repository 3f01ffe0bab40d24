"""Events produced by the subscriptions service (stream ``STACKBE_SUBSCRIPTIONS``).

Subscription events carry the whole subscription as it is after the change, with a
per-subscription ``version`` that grows by one with each change: a consumer keeps the
highest version it has applied and ignores an older one. ``occurredAt`` is the app's
time, which a sandbox test clock may have moved ahead of the wall clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from .base import Event, register

__all__ = [
    "LIVE_STATUSES",
    "CheckoutCompleted",
    "GatewayPriceCreated",
    "Payment",
    "PaymentFailed",
    "PaymentKind",
    "PaymentSucceeded",
    "Status",
    "Subscription",
    "SubscriptionCanceled",
    "SubscriptionCreated",
    "SubscriptionPaused",
    "SubscriptionResumed",
    "SubscriptionUpdated",
]

Status = Literal["incomplete", "trialing", "active", "past_due", "paused", "canceled"]
# A live subscription is any but canceled; a customer has at most one per app.
LIVE_STATUSES: frozenset[str] = frozenset(
    {"incomplete", "trialing", "active", "past_due", "paused"}
)
PaymentKind = Literal["initial", "renewal", "retry", "proration", "resume"]


class Subscription(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    id: str
    app_id: str
    customer_id: str
    plan_id: str
    status: Status
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    trial_end: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    paused_at: datetime | None = None
    resumes_at: datetime | None = None
    # Set when a payment fails: past_due access lasts until then, and the subscription
    # is canceled if still unpaid. Kept on a subscription canceled that way.
    grace_ends_at: datetime | None = None
    # A change of plan that takes effect at the end of the current period.
    pending_plan_id: str | None = None
    version: int
    created_at: datetime
    updated_at: datetime


class Payment(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A charge (positive) or a refund of unused time (negative), in minor units."""

    id: str
    subscription_id: str
    customer_id: str
    amount_cents: int
    currency: str
    status: Literal["succeeded", "failed"]
    kind: PaymentKind
    failure_reason: str | None = None
    created_at: datetime


@register("stackbe.subscriptions.checkout.completed.v1")
class CheckoutCompleted(Event, frozen=True, kw_only=True):
    session_id: str
    customer_id: str
    plan_id: str
    subscription_id: str


@register("stackbe.subscriptions.subscription.created.v1")
class SubscriptionCreated(Event, frozen=True, kw_only=True):
    subscription: Subscription


@register("stackbe.subscriptions.subscription.updated.v1")
class SubscriptionUpdated(Event, frozen=True, kw_only=True):
    """Any change but the ones below: renewal, status, plan, cancel at period end..."""

    subscription: Subscription


@register("stackbe.subscriptions.subscription.canceled.v1")
class SubscriptionCanceled(Event, frozen=True, kw_only=True):
    subscription: Subscription


@register("stackbe.subscriptions.subscription.paused.v1")
class SubscriptionPaused(Event, frozen=True, kw_only=True):
    subscription: Subscription


@register("stackbe.subscriptions.subscription.resumed.v1")
class SubscriptionResumed(Event, frozen=True, kw_only=True):
    subscription: Subscription


@register("stackbe.subscriptions.payment.succeeded.v1")
class PaymentSucceeded(Event, frozen=True, kw_only=True):
    payment: Payment


@register("stackbe.subscriptions.payment.failed.v1")
class PaymentFailed(Event, frozen=True, kw_only=True):
    payment: Payment


@register("stackbe.subscriptions.gateway_price.created.v1")
class GatewayPriceCreated(Event, frozen=True, kw_only=True):
    """StackBE made a price in the app's payment gateway for a plan that had none; the
    catalog stores it as the plan's ``gatewayMappings``."""

    plan_id: str
    gateway: Literal["stripe"]
    gateway_id: str
    price_id: str
    product_id: str
