"""Each customer's projection, built only from events: the customer (its externalId), its
subscription (newest ``version`` wins; an older or repeated event changes nothing) and
the plan's entitlements (newest ``version`` wins). A change that alters what the customer
may use is stored with the projection's next version and announced as
``entitlements.updated``, which every replica's cache applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from stackbe_common import outbox
from stackbe_common.bus import PlanSource
from stackbe_common.ids import new_id
from stackbe_events import Event
from stackbe_events.catalog import Plan, PlanArchived, PlanCreated, PlanDeprecated, PlanUpdated
from stackbe_events.entitlements import CustomerEntitlements, EntitlementsUpdated
from stackbe_events.identity import CustomerCreated, CustomerUpdated
from stackbe_events.subscriptions import (
    SubscriptionCanceled,
    SubscriptionCreated,
    SubscriptionPaused,
    SubscriptionResumed,
    SubscriptionUpdated,
)

from .rules import ACCESS_STATUSES

__all__ = ["PlanSource", "handlers", "load", "on_subscription", "refresh", "store_plan"]

_LATEST_SUBSCRIPTION = """
SELECT s.*, p.name AS plan_name, p.entitlements
FROM subscriptions s LEFT JOIN plans p ON p.id = s.plan_id
WHERE s.customer_id = $1
ORDER BY (s.status <> 'canceled') DESC, s.updated_at DESC, s.id DESC
LIMIT 1
"""


# The first key of this worker's advisory locks (the second is the customer's hash).
_TURNS = 0x656E74  # "ent"


async def load(conn: asyncpg.Connection, customer_id: str) -> CustomerEntitlements | None:
    """The stored projection, or None when the customer has none yet."""
    body = await conn.fetchval("SELECT body FROM projections WHERE customer_id = $1", customer_id)
    return None if body is None else msgspec.convert(body, CustomerEntitlements)


async def _compute(conn: asyncpg.Connection, customer_id: str, app_id: str) -> CustomerEntitlements:
    external_id = await conn.fetchval(
        "SELECT external_id FROM customers WHERE id = $1", customer_id
    )
    sub = await conn.fetchrow(_LATEST_SUBSCRIPTION, customer_id)
    if sub is None:
        return CustomerEntitlements(customer_id=customer_id, app_id=app_id, external_id=external_id)
    granted = sub["status"] in ACCESS_STATUSES and sub["entitlements"] is not None
    return CustomerEntitlements(
        customer_id=customer_id,
        app_id=sub["app_id"],
        external_id=external_id,
        subscription_id=sub["id"],
        plan_id=sub["plan_id"],
        plan_name=sub["plan_name"],
        status=sub["status"],
        entitlements=sub["entitlements"] if granted else {},
        current_period_start=sub["current_period_start"],
        current_period_end=sub["current_period_end"],
        grace_ends_at=sub["grace_ends_at"],
    )


async def _take_turn(conn: asyncpg.Connection, customer_id: str) -> None:
    """Handlers of one customer's events take turns until their transactions end.

    The worker handles each stream's events concurrently, and a customer's projection
    reads what two of them write: its subscriptions (``on_subscription``) and its
    externalId (``on_customer``). Without turns, a new customer's two events handled at
    once each miss the other's uncommitted row: the projection is stored without its
    externalId, and ``on_customer`` sees no projection to refresh, so none ever carries
    it and checks by externalId find no one. With turns, under READ COMMITTED, whichever
    waits sees the other's commit."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _TURNS, customer_id)


async def refresh(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, customer_id: str, at: datetime
) -> CustomerEntitlements | None:
    """Recompute the customer's projection; store and announce it if it changed."""
    await _take_turn(conn, customer_id)
    current = await conn.fetchrow(
        "SELECT body, version FROM projections WHERE customer_id = $1 FOR UPDATE", customer_id
    )
    computed = await _compute(conn, customer_id, app_id)
    if current is not None:
        before = msgspec.convert(current["body"], CustomerEntitlements)
        if msgspec.structs.replace(before, version=0) == computed:
            return None
    version = 1 if current is None else current["version"] + 1
    projection = msgspec.structs.replace(computed, version=version)
    await conn.execute(
        "INSERT INTO projections (customer_id, tenant_id, app_id, body, version, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (customer_id) DO UPDATE SET"
        " body = excluded.body, version = excluded.version, updated_at = now()",
        customer_id,
        tenant_id,
        projection.app_id,
        projection,
        version,
    )
    event = EntitlementsUpdated(
        id=new_id("evt"),
        occurred_at=at,
        tenant_id=tenant_id,
        app_id=projection.app_id,
        entitlements=projection,
    )
    await outbox.record(conn, event)
    return projection


# Event handlers (the worker's durable consumers run them, one transaction each)


async def on_customer(conn: asyncpg.Connection, event: CustomerCreated | CustomerUpdated) -> None:
    await _take_turn(conn, event.customer_id)
    changed = await conn.fetchval(
        "INSERT INTO customers (id, tenant_id, app_id, external_id, seen_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET"
        " external_id = excluded.external_id, seen_at = excluded.seen_at"
        " WHERE customers.seen_at <= excluded.seen_at RETURNING 1",
        event.customer_id,
        event.tenant_id,
        event.app_id,
        event.external_id,
        event.occurred_at,
    )
    has_projection = await conn.fetchval(
        "SELECT 1 FROM projections WHERE customer_id = $1", event.customer_id
    )
    if changed and has_projection and event.app_id:
        await refresh(conn, event.tenant_id, event.app_id, event.customer_id, event.occurred_at)


async def store_plan(conn: asyncpg.Connection, tenant_id: str, plan: Plan) -> bool:
    """Keep the plan if it is newer than the one stored; True when it was."""
    stored = await conn.fetchval(
        "INSERT INTO plans (id, tenant_id, app_id, name, entitlements, version)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
        " entitlements = excluded.entitlements, version = excluded.version"
        " WHERE plans.version < excluded.version RETURNING 1",
        plan.id,
        tenant_id,
        plan.app_id,
        plan.name,
        plan.entitlements,
        plan.version,
    )
    return bool(stored)


async def on_plan(conn: asyncpg.Connection, event: PlanUpdated) -> None:
    if not await store_plan(conn, event.tenant_id, event.plan):
        return
    subscribers = await conn.fetch(
        "SELECT DISTINCT customer_id, tenant_id, app_id FROM subscriptions"
        " WHERE plan_id = $1 AND status <> 'canceled' ORDER BY customer_id",  # turns in order
        event.plan.id,
    )
    for row in subscribers:
        await refresh(conn, row["tenant_id"], row["app_id"], row["customer_id"], event.occurred_at)


async def on_subscription(
    conn: asyncpg.Connection, event: SubscriptionUpdated, plans: PlanSource | None = None
) -> None:
    """Keep the newest version of the subscription; a plan not seen yet (its event is on
    another stream) is asked of the catalog, so the projection is right at once."""
    sub = event.subscription
    known = await conn.fetchval("SELECT 1 FROM plans WHERE id = $1", sub.plan_id)
    if not known and plans is not None:
        plan = await plans(event.tenant_id, sub.app_id, sub.plan_id)
        if plan is not None:
            await store_plan(conn, event.tenant_id, plan)
    newer = await conn.fetchval(
        "INSERT INTO subscriptions (id, tenant_id, app_id, customer_id, plan_id, status,"
        " current_period_start, current_period_end, grace_ends_at, version, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT (id) DO UPDATE SET plan_id = excluded.plan_id, status = excluded.status,"
        " current_period_start = excluded.current_period_start,"
        " current_period_end = excluded.current_period_end,"
        " grace_ends_at = excluded.grace_ends_at, version = excluded.version,"
        " updated_at = excluded.updated_at"
        " WHERE subscriptions.version < excluded.version RETURNING 1",
        sub.id,
        event.tenant_id,
        sub.app_id,
        sub.customer_id,
        sub.plan_id,
        sub.status,
        sub.current_period_start,
        sub.current_period_end,
        sub.grace_ends_at,
        sub.version,
        sub.updated_at,
    )
    if newer:
        await refresh(conn, event.tenant_id, sub.app_id, sub.customer_id, event.occurred_at)


_SUBSCRIPTION_EVENTS = (
    SubscriptionCreated,
    SubscriptionUpdated,
    SubscriptionCanceled,
    SubscriptionPaused,
    SubscriptionResumed,
)


def handlers(plans: PlanSource | None) -> Mapping[str, Mapping[type[Event], Any]]:
    """Per producing context, the handler of each event the projection needs."""

    async def subscription(conn: asyncpg.Connection, event: SubscriptionUpdated) -> None:
        await on_subscription(conn, event, plans)

    return {
        "identity": {CustomerCreated: on_customer, CustomerUpdated: on_customer},
        "catalog": dict.fromkeys((PlanCreated, PlanUpdated, PlanDeprecated, PlanArchived), on_plan),
        "subscriptions": dict.fromkeys(_SUBSCRIPTION_EVENTS, subscription),
    }
