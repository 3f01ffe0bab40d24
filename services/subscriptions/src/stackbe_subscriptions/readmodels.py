"""Local read models of apps, customers and plans.

Built from identity and catalog events by the worker's consumers (newest wins: customers
and apps by ``occurredAt``, plans by ``version``). A request that finds nothing yet (a
checkout right after the plan or customer was made) asks the owning service over NATS
and keeps the answer, so the read model only ever speeds things up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import nats.errors
from nats.aio.client import Client as NATS

from stackbe_common import bus
from stackbe_common.errors import AppNotFound, Unavailable
from stackbe_common.ids import has_prefix
from stackbe_events import Event, rpc
from stackbe_events.catalog import (
    Plan,
    PlanArchived,
    PlanCreated,
    PlanDeprecated,
    PlanUpdated,
    ProductCreated,
    ProductUpdated,
)
from stackbe_events.identity import (
    AppArchived,
    AppCreated,
    AppUpdated,
    CustomerCreated,
    CustomerUpdated,
)

from . import repository as repo
from .errors import CustomerNotFound, PlanNotFound

__all__ = ["CATALOG_HANDLERS", "IDENTITY_HANDLERS", "AppInfo", "Lookups"]


async def _store_plan(conn: asyncpg.Connection, tenant_id: str, plan: Plan) -> None:
    await repo.upsert_plan(
        conn,
        plan.id,
        tenant_id,
        plan.app_id,
        plan.product_id,
        plan.name,
        plan.price_cents,
        plan.currency,
        plan.interval,
        plan.interval_count,
        plan.trial_days,
        plan.status,
        plan,
        plan.version,
    )


async def on_plan(conn: asyncpg.Connection, event: PlanCreated) -> None:
    await _store_plan(conn, event.tenant_id, event.plan)


async def on_product(conn: asyncpg.Connection, event: ProductCreated | ProductUpdated) -> None:
    """Product names, for the Stripe Products made for them."""
    p = event.product
    await conn.execute(
        "INSERT INTO products (id, tenant_id, app_id, name, version) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version"
        " WHERE products.version < excluded.version",
        p.id,
        event.tenant_id,
        p.app_id,
        p.name,
        p.version,
    )


async def on_app(conn: asyncpg.Connection, event: AppCreated | AppUpdated) -> None:
    await repo.upsert_app(
        conn,
        event.app_id,
        event.tenant_id,
        event.grace_period_days,
        event.gateway,
        False,
        event.occurred_at,
        event.gateway_id,
        event.name,
        event.brand_color,
        event.logo_url,
        event.allowed_redirect_urls,
        event.portal_pause_enabled,
    )


async def on_app_archived(conn: asyncpg.Connection, event: AppArchived) -> None:
    await conn.execute("UPDATE apps SET archived = true WHERE id = $1", event.app_id)


async def on_customer(conn: asyncpg.Connection, event: CustomerCreated | CustomerUpdated) -> None:
    await repo.upsert_customer(
        conn,
        event.customer_id,
        event.tenant_id,
        event.app_id,
        event.email,
        event.external_id,
        event.occurred_at,
    )


IDENTITY_HANDLERS: Mapping[type[Event], Any] = {
    AppCreated: on_app,
    AppUpdated: on_app,
    AppArchived: on_app_archived,
    CustomerCreated: on_customer,
    CustomerUpdated: on_customer,
}
CATALOG_HANDLERS: Mapping[type[Event], Any] = {
    PlanCreated: on_plan,
    PlanUpdated: on_plan,
    PlanDeprecated: on_plan,
    PlanArchived: on_plan,
    ProductCreated: on_product,
    ProductUpdated: on_product,
}


@dataclass(frozen=True)
class AppInfo:
    grace_period_days: int
    gateway: str  # "sandbox" or "stripe"
    gateway_id: str | None = None
    name: str = ""
    brand_color: str | None = None
    logo_url: str | None = None
    allowed_redirect_urls: tuple[str, ...] = ()
    portal_pause_enabled: bool = False


class Lookups:
    """Read model first, then the owning service over NATS."""

    def __init__(self, nc: NATS, timeout: float) -> None:
        self._nc, self._timeout = nc, timeout

    async def _ask(self, subject: str, payload: msgspec.Struct, answer: Any) -> Any:
        """The responder's answer decoded as ``answer`` (a type, or a union with None)."""
        try:
            return await bus.request(self._nc, subject, payload, answer, timeout=self._timeout)
        except (nats.errors.Error, bus.RemoteError, OSError) as exc:
            raise Unavailable(f"Could not reach the service that answers {subject}") from exc

    async def app(
        self, conn: asyncpg.Connection, tenant_id: str, app_id: str, *, fresh: bool = False
    ) -> AppInfo:
        """The app; ``fresh`` asks identity even when the read model has it (events of
        other streams may have overtaken the app's own)."""
        row = await repo.get_app(conn, tenant_id, app_id)
        if row is not None and not fresh:
            return AppInfo(
                row["grace_period_days"],
                row["gateway"],
                row["gateway_id"],
                row["name"],
                row["brand_color"],
                row["logo_url"],
                tuple(row["allowed_redirect_urls"]),
                row["portal_pause_enabled"],
            )
        q = rpc.ResolveApp(tenant_id=tenant_id, app_id=app_id)
        found: rpc.ResolvedApp | None = await self._ask(rpc.RESOLVE_APP, q, rpc.ResolvedApp | None)
        if found is None:
            raise AppNotFound()
        await repo.upsert_app(
            conn,
            app_id,
            tenant_id,
            found.grace_period_days,
            found.gateway,
            False,
            datetime.now(UTC),
            found.gateway_id,
            found.name,
            found.brand_color,
            found.logo_url,
            found.allowed_redirect_urls,
            found.portal_pause_enabled,
        )
        return AppInfo(
            found.grace_period_days,
            found.gateway,
            found.gateway_id,
            found.name,
            found.brand_color,
            found.logo_url,
            tuple(found.allowed_redirect_urls),
            found.portal_pause_enabled,
        )

    async def active_plans(self, tenant_id: str, app_id: str) -> list[Plan]:
        q = rpc.ActivePlans(tenant_id=tenant_id, app_id=app_id)
        found: rpc.PlanList = await self._ask(rpc.ACTIVE_PLANS, q, rpc.PlanList)
        return found.plans

    async def portal_link(self, app_id: str, email: str, client_ip: str | None) -> None:
        """Identity emails the customer a portal sign-in link (``RemoteError`` carries
        RATE_LIMITED)."""
        q = rpc.PortalLink(app_id=app_id, email=email, client_ip=client_ip)
        await self._ask_remote(rpc.PORTAL_LINK, q, type(None))

    async def redeem(self, app_id: str, token: str) -> rpc.Redeemed:
        """Spend a portal sign-in link (``RemoteError`` carries TOKEN_* codes)."""
        q = rpc.RedeemLink(app_id=app_id, token=token)
        found: rpc.Redeemed = await self._ask_remote(rpc.REDEEM_LINK, q, rpc.Redeemed)
        return found

    async def _ask_remote(self, subject: str, payload: msgspec.Struct, answer: Any) -> Any:
        """As ``_ask``, but the responder's own refusals reach the caller."""
        try:
            return await bus.request(self._nc, subject, payload, answer, timeout=self._timeout)
        except (nats.errors.Error, OSError) as exc:
            raise Unavailable(f"Could not reach the service that answers {subject}") from exc

    async def plan(
        self, conn: asyncpg.Connection, tenant_id: str, app_id: str, plan_id: str
    ) -> Plan:
        if not has_prefix(plan_id, "plan"):
            raise PlanNotFound()
        row = await repo.get_plan(conn, tenant_id, app_id, plan_id)
        if row is not None:
            return msgspec.convert(row["plan"], Plan)
        q = rpc.GetPlan(tenant_id=tenant_id, app_id=app_id, plan_id=plan_id)
        plan: Plan | None = await self._ask(rpc.GET_PLAN, q, Plan | None)
        if plan is None:
            raise PlanNotFound()
        await _store_plan(conn, tenant_id, plan)
        return plan

    async def customer(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        app_id: str,
        *,
        customer_id: str | None = None,
        email: str | None = None,
    ) -> str:
        """The customer's id; an unknown email becomes a new customer of the app."""
        if customer_id is not None:
            if not has_prefix(customer_id, "cust"):
                raise CustomerNotFound()
            if await repo.get_customer(conn, tenant_id, app_id, customer_id) is not None:
                return customer_id
        q = rpc.ResolveCustomer(
            tenant_id=tenant_id,
            app_id=app_id,
            customer_id=customer_id,
            email=email,
            create=email is not None,
        )
        found: rpc.ResolvedCustomer | None = await self._ask(
            rpc.RESOLVE_CUSTOMER, q, rpc.ResolvedCustomer | None
        )
        if found is None:
            raise CustomerNotFound()
        await repo.upsert_customer(
            conn,
            found.customer_id,
            tenant_id,
            app_id,
            found.email,
            found.external_id,
            datetime.now(UTC),
        )
        return found.customer_id
