"""Events produced by the catalog service (stream ``STACKBE_CATALOG``).

Each carries the whole product or plan as it is after the change, so consumers (the
subscriptions and entitlements read models, webhooks) never call back. ``version``
counts the changes to one product or plan: a consumer keeps the highest it has seen and
ignores older ones, whatever order they arrive in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeAlias

import msgspec

from .base import Event, register

__all__ = [
    "EntitlementValue",
    "GatewayMappings",
    "Interval",
    "Plan",
    "PlanArchived",
    "PlanCreated",
    "PlanDeprecated",
    "PlanStatus",
    "PlanUpdated",
    "Product",
    "ProductCreated",
    "ProductUpdated",
    "StripeMapping",
]

Interval = Literal["day", "week", "month", "year"]
PlanStatus = Literal["active", "deprecated", "archived"]
# A feature switch, a limit (-1 means unlimited), a setting, or a list of names.
EntitlementValue: TypeAlias = bool | int | str | list[str]
MetadataValue: TypeAlias = str | int | float | bool | None


class Product(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    id: str
    app_id: str
    name: str
    description: str | None = None
    metadata: dict[str, MetadataValue] = {}
    version: int
    created_at: datetime
    updated_at: datetime


class StripeMapping(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    price_id: str


class GatewayMappings(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The plan's counterpart in each payment gateway (absent until mapped)."""

    stripe: StripeMapping | None = None


class Plan(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    id: str
    app_id: str
    product_id: str
    name: str
    price_cents: int  # minor units of ``currency``
    currency: str  # ISO 4217, upper case
    interval: Interval
    interval_count: int
    trial_days: int
    entitlements: dict[str, EntitlementValue]
    status: PlanStatus
    metadata: dict[str, MetadataValue] = {}
    gateway_mappings: GatewayMappings = GatewayMappings()
    version: int
    created_at: datetime
    updated_at: datetime


@register("stackbe.catalog.product.created.v1")
class ProductCreated(Event, frozen=True, kw_only=True):
    product: Product


@register("stackbe.catalog.product.updated.v1")
class ProductUpdated(Event, frozen=True, kw_only=True):
    product: Product


@register("stackbe.catalog.plan.created.v1")
class PlanCreated(Event, frozen=True, kw_only=True):
    plan: Plan


@register("stackbe.catalog.plan.updated.v1")
class PlanUpdated(Event, frozen=True, kw_only=True):
    """Name, entitlements or metadata changed; price, currency and interval never do."""

    plan: Plan


@register("stackbe.catalog.plan.deprecated.v1")
class PlanDeprecated(Event, frozen=True, kw_only=True):
    """No new checkouts; existing subscriptions continue."""

    plan: Plan


@register("stackbe.catalog.plan.archived.v1")
class PlanArchived(Event, frozen=True, kw_only=True):
    plan: Plan
