"""Request and response bodies of the subscriptions API. Subscriptions and payments are
returned as ``stackbe_events.subscriptions`` carries them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta

from stackbe_common.fields import Input, Moment, Output
from stackbe_events.catalog import Plan
from stackbe_events.subscriptions import Subscription

Url = Annotated[str, Meta(max_length=2000, pattern=r"^https?://[^\s\x00]+$")]
Email = Annotated[
    str, Meta(min_length=3, max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")
]
CustomerId = Annotated[str, Meta(pattern=r"^cust_[0-9a-z]{26}$")]
PlanId = Annotated[str, Meta(pattern=r"^plan_[0-9a-z]{26}$")]
FIVE_YEARS = 5 * 366 * 86_400


class CreateCheckoutSession(Input, frozen=True):
    plan_id: PlanId
    success_url: Url
    cancel_url: Url
    customer_id: CustomerId | None = None
    email: Email | None = None


class CreateSubscription(Input, frozen=True):
    """A subscription to a free plan, started without checkout."""

    customer_id: CustomerId
    plan_id: PlanId


class CheckoutSession(Output):
    id: str
    app_id: str
    status: Literal["open", "completed", "expired"]
    customer_id: str
    plan_id: str
    subscription_id: str | None
    url: str
    success_url: str
    cancel_url: str
    expires_at: datetime
    created_at: datetime


class CompletedCheckout(CheckoutSession):
    subscription: Subscription


class CompleteCheckout(Input, frozen=True):
    outcome: Literal["succeeded", "failed"] = "succeeded"


class CancelSubscription(Input, frozen=True):
    at_period_end: bool = True


class PauseSubscription(Input, frozen=True):
    resumes_at: Moment | None = None


class ChangePlan(Input, frozen=True):
    plan_id: PlanId
    effective: Literal["immediately", "period_end"] | None = None
    proration: Literal["create_prorations", "none"] | None = None


class SubscriptionWithPlan(Subscription, frozen=True, kw_only=True):
    plan: Plan | None = None


class PaymentBehavior(Input, frozen=True):
    behavior: Literal["succeed", "fail"]


class CustomerBehavior(Output):
    customer_id: str
    behavior: str


class AdvanceClock(Input, frozen=True):
    to: Moment | None = None
    seconds: Annotated[int, Meta(ge=1, le=FIVE_YEARS)] | None = None


class Clock(Output):
    now: datetime
    advanced_seconds: int


class AppMetrics(Output):
    app_id: str
    mrr: dict[str, int]  # currency -> minor units per month
    active: int = 0
    trialing: int = 0
    past_due: int = 0
    paused: int = 0
    incomplete: int = 0
    new_last_30_days: int = 0
    churned_last_30_days: int = 0


class Metrics(Output):
    data: list[AppMetrics]


# Payment gateway connections

StripeSecretKey = Annotated[
    str, Meta(min_length=8, max_length=255, pattern=r"^(sk|rk)_(test|live)_[A-Za-z0-9_]+$")
]
StripeWebhookSecret = Annotated[
    str, Meta(min_length=8, max_length=255, pattern=r"^whsec_[A-Za-z0-9_]+$")
]


class ConnectStripe(Input, frozen=True):
    secret_key: StripeSecretKey
    webhook_secret: StripeWebhookSecret | None = None


class Gateway(Output):
    """A tenant's payment gateway connection; its secrets never leave the service."""

    id: str
    type: Literal["stripe"]
    account_id: str
    livemode: bool
    key_hint: str  # "sk_test_…" and the key's last four characters
    has_webhook_secret: bool
    webhook_path: str  # where Stripe sends this connection's events, on the gateway
    created_at: datetime


class Reconciled(Output, omit_defaults=True):
    gateway_id: str
    checked: int
    repaired: int
    error: str | None = None  # why Stripe could not be read for this connection


class StripeEventTaken(Output, omit_defaults=False):
    id: str
    type: str
    duplicate: bool  # taken in before: nothing was done again
    received: bool = True


# The customer portal


class CreatePortalSession(Input, frozen=True):
    customer_id: CustomerId
    return_url: Url | None = None  # one of the app's allowedRedirectUrls


class PortalSession(Output):
    """A one-time link into the customer portal, signed in as the customer."""

    id: str
    customer_id: str
    url: str
    return_url: str | None
    expires_at: datetime
    created_at: datetime
