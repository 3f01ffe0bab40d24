"""Events produced by the entitlements service (stream ``STACKBE_ENTITLEMENTS``)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from .base import Event, register
from .catalog import EntitlementValue
from .subscriptions import Status

__all__ = ["CustomerEntitlements", "EntitlementsUpdated", "UsageLimitReached"]


class CustomerEntitlements(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """What a customer may use now: their live subscription's plan entitlements, or none.

    ``version`` grows by one with each change of the customer's projection.
    """

    customer_id: str
    app_id: str
    external_id: str | None = None
    subscription_id: str | None = None
    plan_id: str | None = None
    plan_name: str | None = None
    status: Status | None = None
    entitlements: dict[str, EntitlementValue] = {}
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    grace_ends_at: datetime | None = None
    version: int = 0


@register("stackbe.entitlements.entitlements.updated.v1")
class EntitlementsUpdated(Event, frozen=True, kw_only=True):
    """A customer's effective entitlements changed (plan, status or the plan's
    entitlements); carries the whole new projection."""

    entitlements: CustomerEntitlements


@register("stackbe.entitlements.usage.limit_reached.v1")
class UsageLimitReached(Event, frozen=True, kw_only=True):
    """A metric's usage reached its limit; once per metric per billing period."""

    customer_id: str
    metric: str
    limit: int
    current_usage: int
    period_start: datetime
    period_end: datetime | None = None
