"""Request and response bodies of the entitlements API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from msgspec import Meta

from stackbe_common.fields import Input, Output
from stackbe_events.catalog import EntitlementValue

CustomerId = Annotated[str, Meta(pattern=r"^cust_[0-9a-z]{26}$")]
ExternalId = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
Metric = Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
Quantity = Annotated[int, Meta(ge=1, le=2**53 - 1)]


class Entitlements(Output):
    customer_id: str
    plan_id: str | None
    plan_name: str | None
    status: str | None
    entitlements: dict[str, EntitlementValue]
    current_period_end: datetime | None


class Check(Output, omit_defaults=True):
    feature: str
    has_access: bool
    value: Any = None
    reason: str | None = None
    remaining: int | None = None


class RecordUsage(Input, frozen=True):
    metric: Metric
    customer_id: CustomerId | None = None
    external_id: ExternalId | None = None
    quantity: Quantity = 1
    enforce: bool = False


class Usage(Output):
    metric: str
    current_usage: int
    limit: int | None  # -1: unlimited
    remaining: int | None
    allowed: bool
    period_start: datetime | None
    period_end: datetime | None


class UsageList(Output):
    customer_id: str
    period_start: datetime | None
    period_end: datetime | None
    data: list[Usage]


class UsageCheck(Output):
    allowed: bool
    remaining: int | None
