"""Request bodies of the catalog API. Responses are ``stackbe_events.catalog.Product`` and
``Plan``: the API returns exactly what the events carry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from stackbe_common.fields import Input, Name, Text
from stackbe_common.metadata import Metadata
from stackbe_events.catalog import Interval

ProductId = Annotated[str, Meta(pattern=r"^prod_[0-9a-z]{26}$")]
Cents = Annotated[int, Meta(ge=0, le=2**53 - 1)]
CurrencyCode = Annotated[str, Meta(pattern=r"^[A-Za-z]{3}$")]
IntervalCount = Annotated[int, Meta(ge=1, le=365)]
TrialDays = Annotated[int, Meta(ge=0, le=730)]
StripePriceId = Annotated[str, Meta(max_length=255, pattern=r"^price_[A-Za-z0-9_]+$")]

# Plans fields that never change once a plan exists: make a new plan instead.
IMMUTABLE_PLAN_FIELDS = (
    "productId",
    "priceCents",
    "currency",
    "interval",
    "intervalCount",
    "trialDays",
    "gatewayMappings",
)


class CreateProduct(Input, frozen=True):
    name: Name
    description: Text | None = None
    metadata: Metadata = {}


class UpdateProduct(Input, frozen=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Text | msgspec.UnsetType | None = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET


class StripeMappingIn(Input, frozen=True):
    price_id: StripePriceId


class GatewayMappingsIn(Input, frozen=True):
    stripe: StripeMappingIn | None = None


class CreatePlan(Input, frozen=True):
    product_id: ProductId
    name: Name
    price_cents: Cents
    currency: CurrencyCode
    interval: Interval
    entitlements: dict[str, Any]  # checked by ``validate_entitlements``, key by key
    interval_count: IntervalCount = 1
    trial_days: TrialDays = 0
    metadata: Metadata = {}
    gateway_mappings: GatewayMappingsIn | None = None


class UpdatePlan(Input, frozen=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    entitlements: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET


PlanStatusFilter = Literal["active", "deprecated", "archived"]
