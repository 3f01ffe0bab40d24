"""StackBE bills itself: every tenant is a customer of the platform's "StackBE Billing"
app, and a tenant's limits are that customer's entitlements.

Identity holds no plan limits: it asks the public API, through the gateway, with the
StackBE Billing app key, exactly as any product backend asks about its customers:

- ``GET /v1/entitlements/check/{key}?externalId=<tenant>&quantity=<count + 1>`` before a
  tenant creates one more app or webhook endpoint (the count is what the tenant has, so
  nothing is metered);
- ``POST /v1/customers`` and ``POST /v1/subscriptions`` (the default, free plan) to enrol
  a tenant, when it is created and whenever it is found without a live subscription (a
  paid plan that ended falls back to the free one);
- ``POST /v1/checkout/session`` when a tenant upgrades.

Until ``python -m stackbe_identity.bootstrap`` has set StackBE Billing up, nothing is
limited. Once it has, a limit that cannot be checked (the API does not answer) refuses
the creation with 503: nothing is created that the tenant's plan might not allow.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
from nats.aio.client import Client as NATS

from stackbe_common import bus
from stackbe_common.crypto import Keyring
from stackbe_common.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    StackBEError,
    Unavailable,
)
from stackbe_common.logging import get_logger
from stackbe_events import rpc

from . import schemas as s

__all__ = [
    "LIMITS",
    "Billing",
    "BillingNotSetUp",
    "Platform",
    "UsageLimitExceeded",
]

log = get_logger(__name__)

# The entitlements that limit a tenant, and how a message names them.
LIMITS = {"apps": "apps", "webhookEndpoints": "webhook endpoints"}
ACCESS_STATUSES = frozenset({"trialing", "active", "past_due"})
ENROL_WAIT_SECONDS = 15.0  # a new subscription reaches the check in milliseconds, if not loaded


class UsageLimitExceeded(Forbidden):
    code = "USAGE_LIMIT_EXCEEDED"
    default_message = "The plan's limit is reached"


class BillingNotSetUp(NotFound):
    default_message = "StackBE Billing is not set up on this instance (run the bootstrap)"


class BillingUnavailable(Unavailable):
    default_message = (
        "StackBE Billing could not be reached to check this tenant's plan; nothing was "
        "created, try again"
    )


class ApiAnswer(StackBEError):
    """An error answer of the public API, passed on as it came."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("message") or f"HTTP {status}"))
        self.status, self.body = status, body
        self.code = str(body.get("code") or "INTERNAL_ERROR")

    def passed_on(self) -> StackBEError:
        kind: type[StackBEError] = {400: InvalidInput, 404: NotFound, 409: Conflict}.get(
            self.status, BillingUnavailable
        )
        if kind is InvalidInput:
            error: StackBEError = InvalidInput(self.message, field=self.body.get("field"))
        else:
            error = kind(self.message)
        error.code = self.code
        return error


@dataclass(frozen=True)
class Platform:
    tenant_id: str
    app_id: str
    app_key: str = field(repr=False)  # never in a log line or a traceback


_PLATFORM = "SELECT platform_tenant_id, app_id, app_key FROM platform_billing"
_CUSTOMER = """
SELECT id, email FROM customers WHERE tenant_id = $1 AND app_id = $2 AND external_id = $3
"""


class Billing:
    """The StackBE Billing app as a client of the public API. One per process.

    Identity's HTTP side never calls identity back through the gateway while it holds a
    request's connection: it reads its own ``customers`` table, and enrolment (which
    creates a customer through the public API) runs in the worker, asked over NATS.
    """

    def __init__(self, base_url: str, keyring: Keyring, timeout: float = 5.0) -> None:
        self._base = base_url.rstrip("/")
        self._keyring = keyring
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._platform: Platform | None = None
        self.nc: NATS | None = None  # set once the process is connected

    # The platform's app

    async def platform(self, conn: asyncpg.Connection) -> Platform | None:
        """StackBE Billing's tenant, app and key; None until the bootstrap has run."""
        if self._platform is not None:
            return self._platform
        row = await conn.fetchrow(_PLATFORM)  # one row; asked again until it exists
        if row is not None:
            key = self._keyring.decrypt(row["app_key"], b"platform_billing").decode()
            self._platform = Platform(row["platform_tenant_id"], row["app_id"], key)
        return self._platform

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _http(self, platform: Platform) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"Authorization": "Bearer " + platform.app_key},
            )
        return self._session

    async def call(
        self, platform: Platform, method: str, path: str, body: Any = None
    ) -> dict[str, Any]:
        """One public API call with the StackBE Billing key; an error answer raises
        ``ApiAnswer``, no answer raises ``BillingUnavailable``."""
        try:
            async with self._http(platform).request(method, self._base + path, json=body) as r:
                found: dict[str, Any] = await r.json(content_type=None)
                status = r.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("billing.unreachable", path=path, error=type(exc).__name__)
            raise BillingUnavailable() from None
        if status >= 500 or status == 429:
            raise BillingUnavailable()
        if status >= 300:
            raise ApiAnswer(status, found)
        return found

    # Tenants as customers

    async def customer_of(
        self, conn: asyncpg.Connection, platform: Platform, tenant_id: str
    ) -> asyncpg.Record | None:
        """The tenant's customer of StackBE Billing (identity's own table)."""
        return await conn.fetchrow(_CUSTOMER, platform.tenant_id, platform.app_id, tenant_id)

    async def default_plan(self, platform: Platform) -> dict[str, Any]:
        """The plan a tenant gets when it has none: the bootstrap marks it."""
        page = await self.call(platform, "GET", "/v1/plans?status=active&limit=100")
        for plan in page["data"]:
            if (plan.get("metadata") or {}).get("default") is True:
                return dict(plan)
        raise BillingUnavailable("StackBE Billing has no default plan yet (run the bootstrap)")

    async def _create_customer(self, platform: Platform, tenant: asyncpg.Record) -> dict[str, Any]:
        """The tenant as a customer: its owner's email, or, when that email is already
        another tenant's customer (one person owning two tenants), the same address
        tagged with the tenant id (``owner+ten_...@example.com``)."""
        email = tenant["owner_email"]
        local, _, domain = email.partition("@")
        for candidate in (email, f"{local}+{tenant['id']}@{domain}"):
            body = {"email": candidate, "name": tenant["name"], "externalId": tenant["id"]}
            try:
                return await self.call(platform, "POST", "/v1/customers", body)
            except ApiAnswer as exc:
                if exc.code != "CUSTOMER_EXISTS":
                    raise
                page = await self.call(platform, "GET", f"/v1/customers?externalId={tenant['id']}")
                if page["data"]:  # a racing enrolment made it
                    return dict(page["data"][0])
        raise BillingUnavailable("The tenant could not be made a customer of StackBE Billing")

    async def enrol(self, platform: Platform, tenant: asyncpg.Record) -> tuple[str, bool]:
        """Make the tenant a customer with a live subscription (the default plan when it
        has none): (customer id, whether that subscription gives access). Idempotent and
        safe when two enrolments race. Runs in the worker."""
        page = await self.call(platform, "GET", f"/v1/customers?externalId={tenant['id']}")
        customer = page["data"][0] if page["data"] else None
        if customer is None:
            customer = await self._create_customer(platform, tenant)
        try:
            current = f"/v1/subscriptions/current?customerId={customer['id']}"
            live = await self.call(platform, "GET", current)
            return customer["id"], live["status"] in ACCESS_STATUSES
        except ApiAnswer as exc:
            if exc.status != 404:
                raise
        plan = await self.default_plan(platform)
        body = {"customerId": customer["id"], "planId": plan["id"]}
        try:
            await self.call(platform, "POST", "/v1/subscriptions", body)
        except ApiAnswer as exc:
            if exc.code != "SUBSCRIPTION_EXISTS":
                raise
        log.info("billing.enrolled", tenant_id=tenant["id"], plan=plan["name"])
        return customer["id"], True

    async def ask_enrolment(self, tenant_id: str) -> tuple[str, bool]:
        """Enrol the tenant through the worker (over NATS)."""
        if self.nc is None:
            raise BillingUnavailable()
        try:
            done = await bus.request(
                self.nc, rpc.ENROL_TENANT, rpc.EnrolTenant(tenant_id=tenant_id), rpc.Enrolled, 20.0
            )
        except Exception as exc:
            log.warning("billing.enrolment_failed", tenant_id=tenant_id, error=repr(exc))
            raise BillingUnavailable() from None
        return done.customer_id, done.subscribed

    async def check(
        self, platform: Platform, tenant_id: str, key: str, quantity: int
    ) -> dict[str, Any]:
        return await self.call(
            platform,
            "GET",
            f"/v1/entitlements/check/{key}?externalId={tenant_id}&quantity={quantity}",
        )

    async def entitlements(self, platform: Platform, tenant_id: str) -> dict[str, Any]:
        return await self.call(platform, "GET", f"/v1/entitlements?externalId={tenant_id}")

    async def enforce(self, conn: asyncpg.Connection, tenant_id: str, key: str, count: int) -> None:
        """Refuse one more ``key`` (the tenant has ``count``) beyond the tenant's plan."""
        platform = await self.platform(conn)
        if platform is None:
            return
        try:
            await self._enforce(platform, tenant_id, key, count)
        except ApiAnswer:  # the API refused StackBE Billing's own question
            raise BillingUnavailable() from None

    async def _enforce(self, platform: Platform, tenant_id: str, key: str, count: int) -> None:
        verdict = await self.check(platform, tenant_id, key, count + 1)
        if verdict.get("reason") == "NO_ACTIVE_SUBSCRIPTION":
            _, subscribed = await self.ask_enrolment(tenant_id)
            wait, deadline = 0.02, time.monotonic() + ENROL_WAIT_SECONDS
            while subscribed and verdict.get("reason") == "NO_ACTIVE_SUBSCRIPTION":
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(wait)
                wait = min(wait * 2, 0.5)
                verdict = await self.check(platform, tenant_id, key, count + 1)
        if verdict["hasAccess"]:
            return
        label = LIMITS.get(key, key)
        if verdict.get("reason") == "NO_ACTIVE_SUBSCRIPTION":
            status = (await self.entitlements(platform, tenant_id)).get("status") or "none"
            raise UsageLimitExceeded(
                f"This tenant has no active StackBE plan (subscription: {status}), so it "
                f"cannot add {label}; see GET /v1/billing"
            )
        plan = (await self.entitlements(platform, tenant_id)).get("planName") or "current"
        limit = verdict.get("value")
        if limit is None or limit is False or limit == 0:
            raise UsageLimitExceeded(
                f"The {plan} plan does not include {label}; "
                "move to a larger plan with POST /v1/billing/checkout"
            )
        raise UsageLimitExceeded(
            f"The {plan} plan allows {limit} {label} and this tenant has {count}; "
            "move to a larger plan with POST /v1/billing/checkout"
        )


# The tenant's view: GET /v1/billing and POST /v1/billing/checkout


def _plan_out(plan: dict[str, Any]) -> s.BillingPlan:
    return s.BillingPlan(
        id=plan["id"],
        name=plan["name"],
        price_cents=plan["priceCents"],
        currency=plan["currency"],
        interval=plan["interval"],
        entitlements=plan["entitlements"],
    )


async def _set_up(billing: Billing, pool: asyncpg.Pool, tenant_id: str) -> tuple[Platform, str]:
    """StackBE Billing and the tenant's customer id (enrolled through the worker if the
    tenant is not a customer yet). No connection is held while the worker enrols: it
    calls identity's own API, which needs connections of this pool."""
    async with pool.acquire() as conn:
        platform = await billing.platform(conn)
        if platform is None:
            raise BillingNotSetUp()
        customer = await billing.customer_of(conn, platform, tenant_id)
    if customer is not None:
        return platform, str(customer["id"])
    customer_id, _ = await billing.ask_enrolment(tenant_id)
    return platform, customer_id


def _offered(plan: dict[str, Any]) -> bool:
    """Plans of the plans file (they carry a ``code``); an operator's private plans of
    StackBE Billing are not offered to tenants."""
    return bool((plan.get("metadata") or {}).get("code"))


async def summary(
    billing: Billing,
    pool: asyncpg.Pool,
    tenant_id: str,
    count_endpoints: Callable[[str], Awaitable[int | None]],
) -> s.TenantBilling:
    """The tenant's plan, its usage against each limit, and the plans it can move to."""
    platform, customer_id = await _set_up(billing, pool, tenant_id)
    try:
        ents = await billing.entitlements(platform, tenant_id)
        plans = await billing.call(platform, "GET", "/v1/plans?status=active&limit=100")
        subscription = None
        if ents.get("planId") is not None:
            current = await billing.call(
                platform, "GET", f"/v1/subscriptions/current?customerId={customer_id}"
            )
            subscription = s.BillingSubscription(
                id=current["id"],
                status=current["status"],
                plan_id=current["planId"],
                current_period_end=current.get("currentPeriodEnd"),
                cancel_at_period_end=current.get("cancelAtPeriodEnd", False),
            )
    except ApiAnswer as exc:
        raise exc.passed_on() from None
    current_plan = next((p for p in plans["data"] if p["id"] == ents.get("planId")), None)
    if current_plan is None and ents.get("planId") is not None:  # a deprecated plan
        try:
            current_plan = await billing.call(platform, "GET", f"/v1/plans/{ents['planId']}")
        except ApiAnswer:
            current_plan = None
    async with pool.acquire() as conn:
        apps = await conn.fetchval(
            "SELECT count(*) FROM apps WHERE tenant_id = $1 AND archived_at IS NULL", tenant_id
        )
    used = {"apps": apps, "webhookEndpoints": await count_endpoints(tenant_id)}
    entitlements = ents.get("entitlements") or {}
    return s.TenantBilling(
        customer_id=customer_id,
        plan=_plan_out(current_plan) if current_plan else None,
        subscription=subscription,
        usage={k: s.LimitUsage(used=used[k], limit=entitlements.get(k)) for k in LIMITS},
        plans=[
            _plan_out(p) for p in plans["data"] if p["id"] != ents.get("planId") and _offered(p)
        ],
    )


async def checkout(
    billing: Billing, pool: asyncpg.Pool, tenant_id: str, data: s.BillingCheckout
) -> dict[str, Any]:
    """A checkout on StackBE Billing for the tenant's own customer; its ``url`` is the
    hosted page the tenant's owner pays on."""
    platform, customer_id = await _set_up(billing, pool, tenant_id)
    try:
        plan = await billing.call(platform, "GET", f"/v1/plans/{data.plan_id}")
        if not _offered(plan):
            raise ApiAnswer(404, {"code": "PLAN_NOT_FOUND", "message": "Plan not found"})
        body = {
            "customerId": customer_id,
            "planId": data.plan_id,
            "successUrl": data.success_url,
            "cancelUrl": data.cancel_url,
        }
        return await billing.call(platform, "POST", "/v1/checkout/session", body)
    except ApiAnswer as exc:
        raise exc.passed_on() from None
