"""Request and response bodies of the identity API (camelCase JSON, unknown fields refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from stackbe_common.fields import Input, Moment, Name, Output
from stackbe_common.metadata import Metadata
from stackbe_events.catalog import EntitlementValue

Role = Literal["owner", "admin", "viewer"]
Email = Annotated[
    str, Meta(min_length=3, max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")
]
AppId = Annotated[str, Meta(pattern=r"^app_[0-9a-z]{26}$")]


# Tenants and members


class CreateTenant(Input, frozen=True):
    name: Name
    owner_email: Email


class Tenant(Output):
    id: str
    name: str
    created_at: datetime


class CreatedTenant(Output):
    tenant: Tenant
    api_key: str


class InviteMember(Input, frozen=True):
    email: Email
    role: Role = "viewer"


class UpdateMember(Input, frozen=True):
    role: Role


class Member(Output):
    id: str
    tenant_id: str
    email: str
    role: Role
    created_at: datetime


# Dashboard auth


class RequestMagicLink(Input, frozen=True):
    email: Email
    tenant_id: Annotated[str, Meta(pattern=r"^ten_[0-9a-z]{26}$")] | None = None


class Accepted(Output, kw_only=True):
    status: str = "accepted"


class VerifyToken(Input, frozen=True):
    token: Annotated[str, Meta(min_length=1, max_length=200)]


class RefreshTokens(Input, frozen=True):
    refresh_token: Annotated[str, Meta(min_length=1, max_length=200)]


class TokenPair(Output):
    access_token: str
    refresh_token: str
    expires_in: int
    member: Member
    token_type: str = "Bearer"


class Me(Output):
    member: Member
    tenant: Tenant


# Apps


# Where customer sign-in may send a customer back to: absolute http(s) URLs.
RedirectUrl = Annotated[str, Meta(max_length=2000, pattern=r"^https?://[^\s\x00/]+(/[^\s\x00]*)?$")]
RedirectUrls = Annotated[list[RedirectUrl], Meta(max_length=20)]
SessionDays = Annotated[int, Meta(ge=1, le=90)]
GraceDays = Annotated[int, Meta(ge=0, le=365)]
GatewayId = Annotated[str, Meta(pattern=r"^gw_[0-9a-z]{26}$")]
BrandColor = Annotated[str, Meta(pattern=r"^#[0-9a-fA-F]{6}$")]
LogoUrl = Annotated[str, Meta(max_length=2000, pattern=r"^https://[^\s\x00\"'<>]+$")]


class CreateApp(Input, frozen=True):
    name: Name
    grace_period_days: GraceDays = 7
    allowed_redirect_urls: RedirectUrls = []
    auto_create_customers: bool = False
    customer_session_days: SessionDays = 7
    brand_color: BrandColor | None = None  # the accent of hosted pages
    logo_url: LogoUrl | None = None
    portal_pause_enabled: bool = False  # customers may pause and resume in the portal


class UpdateApp(Input, frozen=True):
    name: Name | None = None
    grace_period_days: GraceDays | None = None
    allowed_redirect_urls: RedirectUrls | None = None
    auto_create_customers: bool | None = None
    customer_session_days: SessionDays | None = None
    # Moves the app onto the tenant's connection (POST /v1/gateways/stripe).
    gateway_id: GatewayId | None = None
    brand_color: BrandColor | None = None
    logo_url: LogoUrl | None = None
    portal_pause_enabled: bool | None = None


class App(Output):
    id: str
    tenant_id: str
    name: str
    gateway: str  # "sandbox" or "stripe"
    grace_period_days: int
    allowed_redirect_urls: list[str]
    auto_create_customers: bool
    customer_session_days: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    gateway_id: str | None = None  # the connection (gw_...) when the gateway is not the sandbox
    brand_color: str | None = None
    logo_url: str | None = None
    portal_pause_enabled: bool = False


# API keys


class CreateApiKey(Input, frozen=True):
    name: Name
    expires_at: Moment | None = None


class ApiKey(Output):
    id: str
    name: str
    hint: str
    app_id: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None = None


class CreatedApiKey(ApiKey, kw_only=True):
    key: str


# Customers

ExternalId = Annotated[str, Meta(min_length=1, max_length=255, pattern=r"^[^\x00]*$")]


class CreateCustomer(Input, frozen=True):
    email: Email
    name: Name | None = None
    external_id: ExternalId | None = None
    metadata: Metadata = {}


class UpdateCustomer(Input, frozen=True):
    """Fields present replace the stored ones; ``null`` clears ``name`` or ``externalId``;
    ``metadata`` replaces the whole object."""

    email: Email | msgspec.UnsetType = msgspec.UNSET
    name: Name | msgspec.UnsetType | None = msgspec.UNSET
    external_id: ExternalId | msgspec.UnsetType | None = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET


class Customer(Output):
    id: str
    app_id: str
    email: str
    name: str | None
    external_id: str | None
    metadata: dict[str, str | int | float | bool | None]
    created_at: datetime
    updated_at: datetime


# Customer sign-in


class RequestCustomerLink(Input, frozen=True):
    email: Email
    redirect_url: RedirectUrl | None = None


class CustomerSession(Output):
    session_token: str
    customer: Customer
    expires_at: datetime


class SessionSubscription(Output):
    id: str
    plan_id: str | None
    plan_name: str | None
    status: str | None
    current_period_end: datetime | None


class SessionView(Output):
    """The signed-in customer, their subscription and what it lets them use now."""

    customer: Customer
    subscription: SessionSubscription | None = None
    entitlements: dict[str, EntitlementValue] = {}


# StackBE Billing: the tenant's own plan

PlanId = Annotated[str, Meta(pattern=r"^plan_[0-9a-z]{26}$")]


class BillingCheckout(Input, frozen=True):
    plan_id: PlanId
    success_url: RedirectUrl
    cancel_url: RedirectUrl


class BillingPlan(Output):
    id: str
    name: str
    price_cents: int
    currency: str
    interval: str
    entitlements: dict[str, EntitlementValue]


class BillingSubscription(Output):
    id: str
    status: str
    plan_id: str
    current_period_end: datetime | None
    cancel_at_period_end: bool


class LimitUsage(Output, omit_defaults=False):
    used: int | None  # None when the count could not be read
    limit: EntitlementValue | None  # -1: unlimited; None: the plan does not include it


class TenantBilling(Output, omit_defaults=False):
    customer_id: str
    plan: BillingPlan | None
    subscription: BillingSubscription | None
    usage: dict[str, LimitUsage]
    plans: list[BillingPlan]  # the plans the tenant can move to
