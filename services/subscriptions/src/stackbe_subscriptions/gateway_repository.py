"""SQL of payment gateway connections and of what StackBE keeps about Stripe objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import asyncpg

from .repository import Row, one

# Connections


async def insert_gateway(conn: asyncpg.Connection, *values: Any) -> Row:
    return one(
        await conn.fetchrow(
            "INSERT INTO gateways (id, tenant_id, type, account_id, livemode, secret_key,"
            " webhook_secret, key_hint, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " RETURNING *",
            *values,
        )
    )


async def list_gateways(
    conn: asyncpg.Connection, tenant_id: str, after: str | None, limit: int
) -> list[Row]:
    return cast(
        list[Row],
        await conn.fetch(
            "SELECT * FROM gateways WHERE tenant_id = $1 AND deleted_at IS NULL"
            " AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3",
            tenant_id,
            after,
            limit,
        ),
    )


async def get_gateway(
    conn: asyncpg.Connection, tenant_id: str, gateway_id: str, *, lock: bool = False
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM gateways WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        + (" FOR UPDATE" if lock else ""),
        tenant_id,
        gateway_id,
    )


async def gateway_by_id(conn: asyncpg.Connection, gateway_id: str) -> Row | None:
    """A connection by id alone (Stripe's events name only the connection)."""
    return await conn.fetchrow("SELECT * FROM gateways WHERE id = $1", gateway_id)


async def live_gateways(conn: asyncpg.Connection, gateway_id: str | None = None) -> list[Row]:
    return cast(
        list[Row],
        await conn.fetch(
            "SELECT * FROM gateways WHERE deleted_at IS NULL AND ($1::text IS NULL OR id = $1)"
            " ORDER BY id",
            gateway_id,
        ),
    )


APPS_ON_GATEWAY = """
SELECT id FROM apps WHERE gateway_id = $1 AND NOT archived
UNION
SELECT c.app_id FROM gateway_claims c LEFT JOIN apps a ON a.id = c.app_id
WHERE c.gateway_id = $1 AND (a.id IS NULL OR (a.seen_at < c.claimed_at AND NOT a.archived))
ORDER BY 1
"""


async def apps_on_gateway(conn: asyncpg.Connection, gateway_id: str) -> list[str]:
    """Apps on the connection: as identity's events said, or about to move onto it (a
    claim newer than the last event seen of the app)."""
    return [r["id"] for r in await conn.fetch(APPS_ON_GATEWAY, gateway_id)]


async def claim_gateway(conn: asyncpg.Connection, gateway_id: str, app_id: str) -> None:
    await conn.execute(
        "INSERT INTO gateway_claims VALUES ($1, $2, now()) ON CONFLICT (gateway_id, app_id)"
        " DO UPDATE SET claimed_at = now()",
        gateway_id,
        app_id,
    )


async def delete_gateway(conn: asyncpg.Connection, gateway_id: str, at: datetime) -> Row:
    return one(
        await conn.fetchrow(
            "UPDATE gateways SET deleted_at = $2 WHERE id = $1 RETURNING *", gateway_id, at
        )
    )


# Stripe objects made for StackBE's products, plans (prices) and customers


async def stripe_id_of(
    conn: asyncpg.Connection, gateway_id: str, kind: str, local_id: str
) -> str | None:
    value = await conn.fetchval(
        "SELECT stripe_id FROM stripe_objects WHERE gateway_id = $1 AND kind = $2"
        " AND local_id = $3",
        gateway_id,
        kind,
        local_id,
    )
    return None if value is None else str(value)


async def local_id(
    conn: asyncpg.Connection, gateway_id: str, kind: str, stripe_id: str
) -> str | None:
    value = await conn.fetchval(
        "SELECT local_id FROM stripe_objects WHERE gateway_id = $1 AND kind = $2"
        " AND stripe_id = $3 ORDER BY created_at LIMIT 1",
        gateway_id,
        kind,
        stripe_id,
    )
    return None if value is None else str(value)


async def remember(
    conn: asyncpg.Connection,
    gateway_id: str,
    kind: str,
    local_id: str,
    stripe_id: str,
    at: datetime,
    *,
    made: bool = True,
) -> str:
    """Keep the mapping; the first one stored wins a race. The stored Stripe id. (Two
    statements: the second sees a racing transaction's row once it has committed.)"""
    value = await conn.fetchval(
        "INSERT INTO stripe_objects (gateway_id, kind, local_id, stripe_id, created_at, made)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING stripe_id",
        gateway_id,
        kind,
        local_id,
        stripe_id,
        at,
        made,
    )
    if value is None:
        value = await stripe_id_of(conn, gateway_id, kind, local_id)
    assert value is not None
    return str(value)


async def made_by_stackbe(conn: asyncpg.Connection, kind: str, stripe_id: str) -> bool:
    """Whether StackBE made this Stripe object (for any connection)."""
    found = await conn.fetchval(
        "SELECT 1 FROM stripe_objects WHERE kind = $1 AND stripe_id = $2 AND made LIMIT 1",
        kind,
        stripe_id,
    )
    return found is not None


async def lock_stripe_subscription(
    conn: asyncpg.Connection, gateway_id: str, stripe_sub_id: str
) -> None:
    """Until the transaction ends, nothing else reads this Stripe subscription to write
    it (webhooks, actions, reconciliation): the last to read from Stripe writes last."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"stripe-subscription:{gateway_id}:{stripe_sub_id}",
    )


async def live_subscriptions_on(conn: asyncpg.Connection, gateway_id: str) -> int:
    found = await conn.fetchval(
        "SELECT count(*) FROM subscriptions WHERE gateway_id = $1 AND status <> 'canceled'",
        gateway_id,
    )
    return int(found)


async def product_name(conn: asyncpg.Connection, product_id: str) -> str | None:
    value = await conn.fetchval("SELECT name FROM products WHERE id = $1", product_id)
    return None if value is None else str(value)


async def customer_email(conn: asyncpg.Connection, customer_id: str) -> str | None:
    value = await conn.fetchval("SELECT email FROM customers WHERE id = $1", customer_id)
    return None if value is None else str(value)


# Subscriptions, sessions, payments and events that came from Stripe


async def link_subscription(
    conn: asyncpg.Connection, sub_id: str, gateway_id: str, stripe_sub_id: str
) -> Row:
    return one(
        await conn.fetchrow(
            "UPDATE subscriptions SET gateway_id = $2, stripe_subscription_id = $3"
            " WHERE id = $1 RETURNING *",
            sub_id,
            gateway_id,
            stripe_sub_id,
        )
    )


async def subscription_by_stripe_id(
    conn: asyncpg.Connection, gateway_id: str, stripe_sub_id: str
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM subscriptions WHERE gateway_id = $1 AND stripe_subscription_id = $2"
        " FOR UPDATE",
        gateway_id,
        stripe_sub_id,
    )


async def stripe_subscription_ids(conn: asyncpg.Connection, gateway_id: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT stripe_subscription_id FROM subscriptions WHERE gateway_id = $1", gateway_id
    )
    return {r["stripe_subscription_id"] for r in rows}


async def link_session(
    conn: asyncpg.Connection, session_id: str, gateway_id: str, stripe_id: str, url: str
) -> Row:
    return one(
        await conn.fetchrow(
            "UPDATE checkout_sessions SET gateway_id = $2, stripe_session_id = $3, url = $4"
            " WHERE id = $1 RETURNING *",
            session_id,
            gateway_id,
            stripe_id,
            url,
        )
    )


async def set_payment_invoice(conn: asyncpg.Connection, payment_id: str, invoice: str) -> None:
    await conn.execute(
        "UPDATE payments SET stripe_invoice_id = $2 WHERE id = $1", payment_id, invoice
    )


async def invoice_paid(conn: asyncpg.Connection, invoice: str) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM payments WHERE stripe_invoice_id = $1 AND status = 'succeeded'", invoice
    )
    return found is not None


async def first_take(
    conn: asyncpg.Connection, gateway_id: str, event_id: str, kind: str, at: datetime
) -> bool:
    """Record the event; False when it was taken in before (a redelivery)."""
    done = await conn.execute(
        "INSERT INTO stripe_events VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        gateway_id,
        event_id,
        kind,
        at,
    )
    return bool(done == "INSERT 0 1")
