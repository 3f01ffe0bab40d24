"""Which plans live subscriptions use, kept from subscription events: a plan that a live
subscription is on (or is moving to at its period end) cannot be archived."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from stackbe_events import Event
from stackbe_events.subscriptions import (
    SubscriptionCanceled,
    SubscriptionCreated,
    SubscriptionPaused,
    SubscriptionResumed,
    SubscriptionUpdated,
)

__all__ = ["SUBSCRIPTION_HANDLERS", "subscriptions_using"]

RECORD = """
INSERT INTO plan_usage (subscription_id, tenant_id, app_id, plan_id, pending_plan_id, live,
                        version)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (subscription_id) DO UPDATE SET plan_id = excluded.plan_id,
    pending_plan_id = excluded.pending_plan_id, live = excluded.live,
    version = excluded.version
WHERE plan_usage.version < excluded.version
"""


async def on_subscription(conn: asyncpg.Connection, event: SubscriptionUpdated) -> None:
    sub = event.subscription
    await conn.execute(
        RECORD,
        sub.id,
        event.tenant_id,
        sub.app_id,
        sub.plan_id,
        sub.pending_plan_id,
        sub.status != "canceled",
        sub.version,
    )


SUBSCRIPTION_HANDLERS: Mapping[type[Event], Any] = dict.fromkeys(
    (
        SubscriptionCreated,
        SubscriptionUpdated,
        SubscriptionCanceled,
        SubscriptionPaused,
        SubscriptionResumed,
    ),
    on_subscription,
)


async def subscriptions_using(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, plan_id: str
) -> int:
    """How many live subscriptions are on the plan or moving to it."""
    count = await conn.fetchval(
        "SELECT count(*) FROM plan_usage WHERE tenant_id = $1 AND app_id = $2 AND live"
        " AND (plan_id = $3 OR pending_plan_id = $3)",
        tenant_id,
        app_id,
        plan_id,
    )
    return int(count)
