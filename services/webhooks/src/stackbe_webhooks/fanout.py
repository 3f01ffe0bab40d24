"""From internal events to public webhook messages.

The worker consumes every stream. Each event an app's endpoints may hear of becomes one
message (its id is the event's id, so a redelivered event is the same message) and one
pending delivery per enabled endpoint whose filter matches, in one transaction. Read
models of customers, plans and subscriptions, built from the same streams, let a message
carry whole objects: ``data.subscription``, ``data.customer`` and ``data.plan`` on
subscription events, ``data.payment`` and ``data.subscription`` on payment events. If an
object a message needs has not arrived yet, the event is retried a moment later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from stackbe_common.bus import PlanSource
from stackbe_common.clock import Clock
from stackbe_common.consumer import Handler
from stackbe_common.errors import Unavailable
from stackbe_events import Event
from stackbe_events.catalog import PlanArchived, PlanCreated, PlanDeprecated, PlanUpdated
from stackbe_events.entitlements import EntitlementsUpdated, UsageLimitReached
from stackbe_events.identity import CustomerCreated, CustomerUpdated
from stackbe_events.subscriptions import (
    CheckoutCompleted,
    PaymentFailed,
    PaymentSucceeded,
    SubscriptionCanceled,
    SubscriptionCreated,
    SubscriptionPaused,
    SubscriptionResumed,
    SubscriptionUpdated,
)

__all__ = ["DUE_CHANNEL", "EVENT_TYPES", "handlers", "publish"]

DUE_CHANNEL = "stackbe_webhooks_due"

# Every public type an endpoint may filter on (API.md).
EVENT_TYPES = (
    "customer.created",
    "customer.updated",
    "checkout.completed",
    "subscription.created",
    "subscription.updated",
    "subscription.canceled",
    "subscription.paused",
    "subscription.resumed",
    "payment.succeeded",
    "payment.failed",
    "entitlements.updated",
    "usage.limit_reached",
    "webhook.test",
)
ACCESS_STATUSES = frozenset({"trialing", "active", "past_due"})

_encoder = msgspec.json.Encoder()

_MESSAGE = """
INSERT INTO messages (id, tenant_id, app_id, event_type, payload, created_at)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING 1
"""
_DELIVERIES = """
WITH made AS (
    INSERT INTO deliveries (message_id, endpoint_id, tenant_id, app_id, next_attempt_at,
                            created_at)
    SELECT $1, e.id, e.tenant_id, e.app_id, $4, $4 FROM endpoints e
    WHERE e.app_id = $2 AND e.status = 'enabled'
      AND CASE WHEN $5::text IS NULL THEN e.event_types IS NULL OR $3 = ANY (e.event_types)
               ELSE e.id = $5 END
    FOR SHARE OF e  -- an endpoint being disabled waits, then fails these deliveries too
    RETURNING 1
)
SELECT count(*) FROM made
"""


async def publish(
    conn: asyncpg.Connection,
    *,
    message_id: str,
    tenant_id: str,
    app_id: str,
    event_type: str,
    data: Any,
    occurred_at: datetime,
    now: datetime,
    endpoint_id: str | None = None,
) -> int:
    """Store the message and its deliveries; how many endpoints will receive it."""
    payload = _encoder.encode(
        {
            "id": message_id,
            "type": event_type,
            "timestamp": occurred_at,
            "appId": app_id,
            "data": data,
        }
    )
    stored = [message_id, tenant_id, app_id, event_type, payload, now]
    if await conn.fetchval(_MESSAGE, *stored) is None:
        return 0  # seen before: its deliveries exist already
    count: int = await conn.fetchval(_DELIVERIES, message_id, app_id, event_type, now, endpoint_id)
    if count:
        await conn.execute("SELECT pg_notify($1, '')", DUE_CHANNEL)
    return count


# Read models


WAIT_FOR_OBJECT = 0.5  # seconds a fresh event waits for an object another stream brings
FRESH = timedelta(seconds=10)


async def _body(
    conn: asyncpg.Connection, table: str, object_id: str, what: str, event: Event
) -> Any:
    """The object's latest body. Streams are consumed side by side, so the customer of a
    new subscription may be a moment behind it: for a fresh event, wait briefly (each
    read sees what other transactions committed); then let the consumer retry the event
    later, without holding up the events behind it."""
    query = f"SELECT body FROM {table} WHERE id = $1"
    fresh = datetime.now(UTC) - event.occurred_at < FRESH
    deadline = asyncio.get_running_loop().time() + (WAIT_FOR_OBJECT if fresh else 0.0)
    while (body := await conn.fetchval(query, object_id)) is None:
        if asyncio.get_running_loop().time() >= deadline:
            raise Unavailable(f"{what} {object_id} is not known yet")
        await asyncio.sleep(0.02)
    return body


_CUSTOMER = """
INSERT INTO customers (id, app_id, body, occurred_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET body = excluded.body, occurred_at = excluded.occurred_at
WHERE customers.occurred_at <= excluded.occurred_at
"""
_VERSIONED = """
INSERT INTO {table} (id, app_id, body, version) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET body = excluded.body, version = excluded.version
WHERE {table}.version < excluded.version
"""


def _customer(event: CustomerCreated | CustomerUpdated) -> dict[str, Any]:
    return {
        "id": event.customer_id,
        "appId": event.app_id,
        "email": event.email,
        "name": event.name,
        "externalId": event.external_id,
        "metadata": event.metadata,
    }


def handlers(
    clock: Clock, plans: PlanSource | None = None
) -> dict[str, Mapping[type[Event], Handler]]:
    """The handler table of each stream the worker consumes, by producing context;
    ``plans`` asks the catalog for a plan whose event has not arrived yet."""

    async def plan_body(conn: asyncpg.Connection, event: Event, plan_id: str) -> Any:
        body = await conn.fetchval("SELECT body FROM plans WHERE id = $1", plan_id)
        if body is None and plans is not None and event.app_id is not None:
            found = await plans(event.tenant_id, event.app_id, plan_id)
            if found is not None:
                await conn.execute(
                    _VERSIONED.format(table="plans"), found.id, found.app_id, found, found.version
                )
                return found
        return body if body is not None else await _body(conn, "plans", plan_id, "plan", event)

    async def fan_out(conn: asyncpg.Connection, event: Event, event_type: str, data: Any) -> None:
        assert event.app_id is not None
        await publish(
            conn,
            message_id=event.id,
            tenant_id=event.tenant_id,
            app_id=event.app_id,
            event_type=event_type,
            data=data,
            occurred_at=event.occurred_at,
            now=clock.now(),
        )

    async def customer(conn: asyncpg.Connection, event: CustomerCreated | CustomerUpdated) -> None:
        body = _customer(event)
        await conn.execute(_CUSTOMER, event.customer_id, event.app_id, body, event.occurred_at)
        kind = "customer.created" if isinstance(event, CustomerCreated) else "customer.updated"
        await fan_out(conn, event, kind, {"customer": body})

    async def plan(conn: asyncpg.Connection, event: Any) -> None:
        p = event.plan
        await conn.execute(_VERSIONED.format(table="plans"), p.id, p.app_id, p, p.version)

    def subscription_handler(event_type: str) -> Handler:
        async def handle(conn: asyncpg.Connection, event: Any) -> None:
            sub = event.subscription
            await conn.execute(
                _VERSIONED.format(table="subscriptions"), sub.id, sub.app_id, sub, sub.version
            )
            data = {
                "subscription": sub,
                "customer": await _body(conn, "customers", sub.customer_id, "customer", event),
                "plan": await plan_body(conn, event, sub.plan_id),
            }
            await fan_out(conn, event, event_type, data)

        return handle

    async def checkout(conn: asyncpg.Connection, event: CheckoutCompleted) -> None:
        data = {
            "checkoutSessionId": event.session_id,
            "subscription": await _body(
                conn, "subscriptions", event.subscription_id, "subscription", event
            ),
            "customer": await _body(conn, "customers", event.customer_id, "customer", event),
            "plan": await plan_body(conn, event, event.plan_id),
        }
        await fan_out(conn, event, "checkout.completed", data)

    def payment_handler(event_type: str) -> Handler:
        async def handle(conn: asyncpg.Connection, event: Any) -> None:
            pay = event.payment
            sub = await _body(conn, "subscriptions", pay.subscription_id, "subscription", event)
            await fan_out(conn, event, event_type, {"payment": pay, "subscription": sub})

        return handle

    async def entitlements(conn: asyncpg.Connection, event: EntitlementsUpdated) -> None:
        p = event.entitlements
        live = p.status in ACCESS_STATUSES
        data = {
            "customerId": p.customer_id,
            "externalId": p.external_id,
            "entitlements": p.entitlements if live else {},
            "status": p.status,
            "planId": p.plan_id,
            "subscriptionId": p.subscription_id,
        }
        await fan_out(conn, event, "entitlements.updated", data)

    async def limit_reached(conn: asyncpg.Connection, event: UsageLimitReached) -> None:
        data = {
            "customerId": event.customer_id,
            "metric": event.metric,
            "limit": event.limit,
            "currentUsage": event.current_usage,
            "periodStart": event.period_start,
            "periodEnd": event.period_end,
        }
        await fan_out(conn, event, "usage.limit_reached", data)

    return {
        "identity": {CustomerCreated: customer, CustomerUpdated: customer},
        "catalog": {PlanCreated: plan, PlanUpdated: plan, PlanDeprecated: plan, PlanArchived: plan},
        "subscriptions": {
            CheckoutCompleted: checkout,
            SubscriptionCreated: subscription_handler("subscription.created"),
            SubscriptionUpdated: subscription_handler("subscription.updated"),
            SubscriptionCanceled: subscription_handler("subscription.canceled"),
            SubscriptionPaused: subscription_handler("subscription.paused"),
            SubscriptionResumed: subscription_handler("subscription.resumed"),
            PaymentSucceeded: payment_handler("payment.succeeded"),
            PaymentFailed: payment_handler("payment.failed"),
        },
        "entitlements": {EntitlementsUpdated: entitlements, UsageLimitReached: limit_reached},
    }
