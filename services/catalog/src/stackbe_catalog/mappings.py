"""Plans' gateway mappings made by StackBE: when the subscriptions service makes a Stripe
price for a plan that had none, the plan keeps it in ``gatewayMappings.stripe.priceId``
(a new version, announced as ``plan.updated``). A mapping the tenant gave is kept."""

from __future__ import annotations

import asyncpg

from stackbe_common import outbox
from stackbe_common.clock import SystemClock
from stackbe_events.catalog import PlanUpdated
from stackbe_events.subscriptions import GatewayPriceCreated

from .plans import plan_out
from .products import fact

__all__ = ["on_price_created"]

STORE = """
UPDATE plans SET gateway_mappings = jsonb_set(gateway_mappings, '{stripe}',
                                              jsonb_build_object('priceId', $4::text)),
                 version = version + 1, updated_at = now()
WHERE tenant_id = $1 AND app_id = $2 AND id = $3 AND NOT gateway_mappings ? 'stripe'
RETURNING *
"""


async def on_price_created(conn: asyncpg.Connection, event: GatewayPriceCreated) -> None:
    assert event.app_id is not None
    row = await conn.fetchrow(STORE, event.tenant_id, event.app_id, event.plan_id, event.price_id)
    if row is not None:
        await outbox.record(conn, fact(PlanUpdated, SystemClock(), row, plan=plan_out(row)))
