"""Request-reply contracts for the few synchronous internal questions (NATS request-reply).

Each request is answered by one service's replicas in a queue group named after it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from .catalog import Plan

__all__ = [
    "ACTIVE_PLANS",
    "COUNT_ENDPOINTS",
    "DASHBOARD_TOKEN_AUDIENCE",
    "DASHBOARD_TOKEN_ISSUER",
    "ENROL_TENANT",
    "GET_ENTITLEMENTS",
    "GET_GATEWAY",
    "GET_PLAN",
    "JWKS",
    "KEYS_USED",
    "PORTAL_LINK",
    "REDEEM_LINK",
    "RESOLVE_APP",
    "RESOLVE_CUSTOMER",
    "RESOLVE_KEY",
    "TENANT_LIMIT",
    "USAGE_RECORDED",
    "ActivePlans",
    "CountEndpoints",
    "EndpointCount",
    "EnrolTenant",
    "Enrolled",
    "FoundGateway",
    "GetEntitlements",
    "GetGateway",
    "GetJwks",
    "GetPlan",
    "Jwks",
    "KeysUsed",
    "PlanList",
    "PortalLink",
    "RedeemLink",
    "Redeemed",
    "ResolveApp",
    "ResolveCustomer",
    "ResolveKey",
    "ResolvedApp",
    "ResolvedCustomer",
    "ResolvedKey",
    "TenantLimit",
]

# Dashboard access tokens: identity signs them with these claims, gateways verify them.
DASHBOARD_TOKEN_ISSUER = "stackbe"
DASHBOARD_TOKEN_AUDIENCE = "stackbe-dashboard"

RESOLVE_KEY = "stackbe.rpc.identity.resolve_key.v1"
RESOLVE_APP = "stackbe.rpc.identity.resolve_app.v1"
JWKS = "stackbe.rpc.identity.jwks.v1"
RESOLVE_CUSTOMER = "stackbe.rpc.identity.resolve_customer.v1"
GET_PLAN = "stackbe.rpc.catalog.get_plan.v1"
# An app's active plans (at most 100, by id): the portal offers them as plan changes.
ACTIVE_PLANS = "stackbe.rpc.catalog.active_plans.v1"
GET_ENTITLEMENTS = "stackbe.rpc.entitlements.get.v1"
# A tenant's payment gateway connection (subscriptions), before an app moves onto it.
GET_GATEWAY = "stackbe.rpc.subscriptions.get_gateway.v1"
# StackBE bills itself: may the tenant have one more of a limited thing? Identity asks
# StackBE Billing's entitlement API; an error reply carries USAGE_LIMIT_EXCEEDED.
TENANT_LIMIT = "stackbe.rpc.identity.tenant_limit.v1"
# Make a tenant a customer of StackBE Billing on its default plan (identity's worker).
ENROL_TENANT = "stackbe.rpc.identity.enrol_tenant.v1"
# The customer portal's sign-in (subscriptions asks): email a customer a link to the
# portal, and spend such a link. Errors carry RATE_LIMITED, TOKEN_INVALID,
# TOKEN_ALREADY_USED or TOKEN_EXPIRED.
PORTAL_LINK = "stackbe.rpc.identity.portal_link.v1"
REDEEM_LINK = "stackbe.rpc.identity.redeem_link.v1"
# How many webhook endpoints a tenant has, over all its apps (an integer).
COUNT_ENDPOINTS = "stackbe.rpc.webhooks.count_endpoints.v1"
# Core NATS, outside every stream: an entitlements replica that recorded usage tells the
# others the new count, so their caches answer checks without asking Postgres.
USAGE_RECORDED = "stackbe.rpc.entitlements.usage_recorded.v1"
# Core NATS, outside every stream's subjects (streams hold only events): gateways report
# key use in batches; identity records it.
KEYS_USED = "stackbe.rpc.identity.keys_used.v1"


class ResolveKey(msgspec.Struct, frozen=True, rename="camel"):
    key_hash: str


class ResolvedKey(msgspec.Struct, frozen=True, rename="camel"):
    """A live key's scope; the reply is ``null`` for an unknown, revoked or expired key."""

    key_id: str
    kind: Literal["tenant", "app"]
    tenant_id: str
    app_id: str | None = None
    expires_at: datetime | None = None


class ResolveApp(msgspec.Struct, frozen=True, rename="camel"):
    tenant_id: str
    app_id: str


class ResolvedApp(msgspec.Struct, frozen=True, rename="camel"):
    """The app if it belongs to the tenant and is not archived; otherwise the reply is null."""

    app_id: str
    tenant_id: str
    grace_period_days: int = 7
    gateway: str = "sandbox"
    gateway_id: str | None = None
    name: str = ""
    brand_color: str | None = None
    logo_url: str | None = None
    allowed_redirect_urls: list[str] = []
    portal_pause_enabled: bool = False


class ResolveCustomer(msgspec.Struct, frozen=True, rename="camel", kw_only=True):
    """An app's customer by id, or by email; with ``create`` an unknown email becomes a new
    customer (``customer.created`` is recorded as for the public API)."""

    tenant_id: str
    app_id: str
    customer_id: str | None = None
    email: str | None = None
    create: bool = False


class ResolvedCustomer(msgspec.Struct, frozen=True, rename="camel", kw_only=True):
    """The customer; the reply is null when there is none (and none was created)."""

    customer_id: str
    email: str
    name: str | None = None
    external_id: str | None = None
    created: bool = False


class GetPlan(msgspec.Struct, frozen=True, rename="camel"):
    """A plan of the app, whatever its status; the reply is a ``Plan`` or null."""

    tenant_id: str
    app_id: str
    plan_id: str


class GetGateway(msgspec.Struct, frozen=True, rename="camel"):
    """With ``app_id``, the app is about to move onto the connection: the answerer counts
    the connection as in use by the app from now on, before the app's event arrives."""

    tenant_id: str
    gateway_id: str
    app_id: str | None = None


class FoundGateway(msgspec.Struct, frozen=True, rename="camel"):
    """The tenant's live connection; the reply is null for an unknown or deleted one."""

    gateway_id: str
    type: str  # "stripe"


class PortalLink(msgspec.Struct, frozen=True, rename="camel", kw_only=True):
    """Email the app's customer with this address a sign-in link to the portal (nothing is
    sent to an address that is no customer; the answer is the same)."""

    app_id: str
    email: str
    client_ip: str | None = None


class RedeemLink(msgspec.Struct, frozen=True, rename="camel"):
    app_id: str
    token: str


class Redeemed(msgspec.Struct, frozen=True, rename="camel"):
    tenant_id: str
    customer_id: str


class ActivePlans(msgspec.Struct, frozen=True, rename="camel"):
    """The reply is a ``PlanList``."""

    tenant_id: str
    app_id: str


class PlanList(msgspec.Struct, frozen=True):
    plans: list[Plan]


class GetJwks(msgspec.Struct, frozen=True):
    pass


class Jwks(msgspec.Struct, frozen=True):
    keys: list[dict[str, str]]


class KeysUsed(msgspec.Struct, frozen=True, rename="camel"):
    """Last use per key id, batched by a gateway."""

    used: dict[str, datetime]


class GetEntitlements(msgspec.Struct, frozen=True, rename="camel"):
    """A customer's projection (``entitlements.CustomerEntitlements``), or null if the
    customer has none in that app."""

    tenant_id: str
    app_id: str
    customer_id: str


class TenantLimit(msgspec.Struct, frozen=True, rename="camel"):
    """One more ``key`` (an entitlement such as ``webhookEndpoints``) for a tenant that
    has ``count``: answered with null when allowed."""

    tenant_id: str
    key: str
    count: int


class CountEndpoints(msgspec.Struct, frozen=True, rename="camel"):
    tenant_id: str


class EndpointCount(msgspec.Struct, frozen=True, rename="camel"):
    count: int


class EnrolTenant(msgspec.Struct, frozen=True, rename="camel"):
    tenant_id: str


class Enrolled(msgspec.Struct, frozen=True, rename="camel"):
    customer_id: str
    subscribed: bool  # the tenant has a subscription that gives access (maybe just made)
