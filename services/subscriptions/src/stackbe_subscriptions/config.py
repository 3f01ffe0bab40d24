"""Subscriptions settings, read once from ``STACKBE_*`` variables."""

from __future__ import annotations

from stackbe_common.service import ServiceSettings


class SubscriptionsSettings(ServiceSettings, frozen=True, kw_only=True):
    public_url: str = "http://127.0.0.1:8080"  # the gateway, for hosted checkout links
    checkout_session_hours: int = 24
    incomplete_hours: int = 23  # an unpaid first charge cancels the subscription after this
    rpc_timeout_seconds: float = 2.0
    dev: bool = False  # make dev: portal cookies without Secure, for plain-http localhost
    # Stripe's API; tests and staging point it at a fake (STACKBE_STRIPE_API_BASE).
    stripe_api_base: str = "https://api.stripe.com"
    stripe_timeout_seconds: float = 20.0
    # How often the worker compares each connection's Stripe subscriptions with ours.
    stripe_reconcile_seconds: float = 3600.0
