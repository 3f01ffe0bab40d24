"""What the identity worker answers and consumes over NATS.

- request-reply: resolve an API key hash or an app to a scope, and the JWKS (gateway);
  find, or create by email, an app's customer (subscriptions, at checkout);
- core NATS: batches of key use from gateways, stored as ``last_used_at``.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from stackbe_common.bus import Responder
from stackbe_common.logging import get_logger
from stackbe_events import rpc
from stackbe_events.identity import TenantCreated

from . import customer_auth, customers
from . import customer_repository as customers_repo
from . import repository as repo
from .apps import announced
from .billing import ApiAnswer, BillingNotSetUp, BillingUnavailable
from .deps import Deps
from .service import normalise_email

log = get_logger(__name__)

QUEUE = "identity"

_resolve_key = msgspec.json.Decoder(rpc.ResolveKey)
_resolve_app = msgspec.json.Decoder(rpc.ResolveApp)
_keys_used = msgspec.json.Decoder(rpc.KeysUsed)
_resolve_customer = msgspec.json.Decoder(rpc.ResolveCustomer)
_tenant_limit = msgspec.json.Decoder(rpc.TenantLimit)
_enrol = msgspec.json.Decoder(rpc.EnrolTenant)
_portal_link = msgspec.json.Decoder(rpc.PortalLink)
_redeem_link = msgspec.json.Decoder(rpc.RedeemLink)


def _resolved(row: asyncpg.Record, created: bool = False) -> rpc.ResolvedCustomer:
    return rpc.ResolvedCustomer(
        customer_id=row["id"],
        email=row["email"],
        name=row["name"],
        external_id=row["external_id"],
        created=created,
    )


def responders(nc: NATS, pool: asyncpg.Pool, deps: Deps) -> list[Responder]:
    async def resolve_key(data: bytes) -> rpc.ResolvedKey | None:
        request = _resolve_key.decode(data)
        async with pool.acquire() as conn:
            row = await repo.resolve_key(conn, request.key_hash)
        if row is None:
            return None
        return rpc.ResolvedKey(
            key_id=row["id"],
            kind="app" if row["app_id"] else "tenant",
            tenant_id=row["tenant_id"],
            app_id=row["app_id"],
            expires_at=row["expires_at"],
        )

    async def resolve_app(data: bytes) -> rpc.ResolvedApp | None:
        request = _resolve_app.decode(data)
        async with pool.acquire() as conn:
            row = await repo.resolve_app(conn, request.tenant_id, request.app_id)
        if row is None:
            return None
        return rpc.ResolvedApp(app_id=row["id"], tenant_id=row["tenant_id"], **announced(row))

    async def resolve_customer(data: bytes) -> rpc.ResolvedCustomer | None:
        q = _resolve_customer.decode(data)
        async with pool.acquire() as conn, conn.transaction():
            if await repo.resolve_app(conn, q.tenant_id, q.app_id) is None:
                return None
            if q.customer_id is not None:
                row = await customers_repo.get_customer(conn, q.tenant_id, q.app_id, q.customer_id)
                return None if row is None else _resolved(row)
            if q.email is None:
                return None
            if not q.create:
                email = normalise_email(q.email)
                row = await customers_repo.find_customer_by_email(
                    conn, q.tenant_id, q.app_id, email
                )
                return None if row is None else _resolved(row)
            row, created = await customers.find_or_create_by_email(
                conn, deps, q.tenant_id, q.app_id, q.email
            )
            return _resolved(row, created)

    async def jwks(_: bytes) -> rpc.Jwks:
        return rpc.Jwks(keys=deps.keys.jwks())

    async def enrol(data: bytes) -> rpc.Enrolled:
        """Enrolment calls the public API (identity's HTTP side among others) holding no
        connection of this worker's while it waits."""
        q = _enrol.decode(data)
        async with pool.acquire() as conn:
            platform = await deps.billing.platform(conn)
            tenant = await conn.fetchrow("SELECT * FROM tenants WHERE id = $1", q.tenant_id)
        if platform is None or tenant is None:
            raise BillingNotSetUp()
        customer_id, subscribed = await deps.billing.enrol(platform, tenant)
        return rpc.Enrolled(customer_id=customer_id, subscribed=subscribed)

    async def tenant_limit(data: bytes) -> None:
        """Raises ``UsageLimitExceeded`` (the reply's code) when the plan allows no more."""
        q = _tenant_limit.decode(data)
        async with pool.acquire() as conn:
            await deps.billing.enforce(conn, q.tenant_id, q.key, q.count)

    async def portal_link(data: bytes) -> None:
        await customer_auth.request_portal_link(pool, deps, _portal_link.decode(data))

    async def redeem_link(data: bytes) -> rpc.Redeemed:
        return await customer_auth.redeem_portal_link(pool, deps, _redeem_link.decode(data))

    return [
        Responder(nc, rpc.PORTAL_LINK, QUEUE, portal_link),
        Responder(nc, rpc.REDEEM_LINK, QUEUE, redeem_link),
        Responder(nc, rpc.RESOLVE_KEY, QUEUE, resolve_key),
        Responder(nc, rpc.RESOLVE_APP, QUEUE, resolve_app),
        Responder(nc, rpc.JWKS, QUEUE, jwks),
        Responder(nc, rpc.RESOLVE_CUSTOMER, QUEUE, resolve_customer),
        Responder(nc, rpc.TENANT_LIMIT, QUEUE, tenant_limit),
        Responder(nc, rpc.ENROL_TENANT, QUEUE, enrol),
    ]


def billing_handlers(deps: Deps) -> dict[type[Any], Any]:
    """Every new tenant becomes a customer of StackBE Billing on its default plan (once
    StackBE Billing is set up); retried while the API does not answer."""

    async def on_tenant(conn: asyncpg.Connection, event: TenantCreated) -> None:
        platform = await deps.billing.platform(conn)
        tenant = await conn.fetchrow("SELECT * FROM tenants WHERE id = $1", event.tenant_id)
        if platform is not None and tenant is not None:
            try:
                await deps.billing.enrol(platform, tenant)
            except ApiAnswer as exc:  # retried by the consumer, like an outage
                raise BillingUnavailable(exc.message) from None

    return {TenantCreated: on_tenant}


async def subscribe_key_use(nc: NATS, pool: asyncpg.Pool) -> None:
    """Record last use of keys, reported by gateways in batches (one UPDATE per batch)."""

    async def on_batch(msg: Msg) -> None:
        try:
            batch = _keys_used.decode(msg.data)
            async with pool.acquire() as conn:
                await repo.record_key_use(conn, batch.used)
        except Exception as exc:  # last use is best effort; never stop the subscription
            log.warning("api_key.use_not_recorded", error=repr(exc))

    await nc.subscribe(rpc.KEYS_USED, queue=QUEUE, cb=on_batch)
