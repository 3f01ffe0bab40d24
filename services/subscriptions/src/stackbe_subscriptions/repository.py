"""All subscriptions SQL. Every query below the read models filters by tenant and app."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias, cast

import asyncpg

Row: TypeAlias = asyncpg.Record


def one(row: Row | None) -> Row:
    if row is None:
        raise RuntimeError("expected the statement to return a row, it returned none")
    return row


# Read models, written by event handlers (newest wins) and by lookups on a miss.

UPSERT_APP = """
INSERT INTO apps (id, tenant_id, grace_period_days, gateway, archived, seen_at, gateway_id,
                  name, brand_color, logo_url, allowed_redirect_urls, portal_pause_enabled)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (id) DO UPDATE SET grace_period_days = excluded.grace_period_days,
    gateway = excluded.gateway, gateway_id = excluded.gateway_id, name = excluded.name,
    brand_color = excluded.brand_color, logo_url = excluded.logo_url,
    allowed_redirect_urls = excluded.allowed_redirect_urls,
    portal_pause_enabled = excluded.portal_pause_enabled,
    archived = apps.archived OR excluded.archived,
    seen_at = excluded.seen_at
WHERE apps.seen_at <= excluded.seen_at
"""

UPSERT_CUSTOMER = """
INSERT INTO customers (id, tenant_id, app_id, email, external_id, seen_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (id) DO UPDATE SET email = excluded.email, external_id = excluded.external_id,
    seen_at = excluded.seen_at
WHERE customers.seen_at <= excluded.seen_at
"""

UPSERT_PLAN = """
INSERT INTO plans (id, tenant_id, app_id, product_id, name, price_cents, currency, interval,
                   interval_count, trial_days, status, plan, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status,
    plan = excluded.plan, version = excluded.version
WHERE plans.version < excluded.version
"""


async def upsert_app(conn: asyncpg.Connection, *values: Any) -> None:
    await conn.execute(UPSERT_APP, *values)


async def upsert_customer(conn: asyncpg.Connection, *values: Any) -> None:
    await conn.execute(UPSERT_CUSTOMER, *values)


async def upsert_plan(conn: asyncpg.Connection, *values: Any) -> None:
    await conn.execute(UPSERT_PLAN, *values)


async def get_app(conn: asyncpg.Connection, tenant_id: str, app_id: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM apps WHERE tenant_id = $1 AND id = $2", tenant_id, app_id
    )


async def app_by_id(conn: asyncpg.Connection, app_id: str) -> Row | None:
    """An app by id alone (a public page names only the app)."""
    return await conn.fetchrow("SELECT * FROM apps WHERE id = $1", app_id)


async def get_customer(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, customer_id: str
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM customers WHERE tenant_id = $1 AND app_id = $2 AND id = $3",
        tenant_id,
        app_id,
        customer_id,
    )


async def get_plan(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, plan_id: str
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM plans WHERE tenant_id = $1 AND app_id = $2 AND id = $3",
        tenant_id,
        app_id,
        plan_id,
    )


# The app's clock (sandbox test clocks)


async def clock_offset_us(conn: asyncpg.Connection, app_id: str, *, lock: bool = False) -> int:
    query = "SELECT offset_us FROM app_clocks WHERE app_id = $1" + (" FOR UPDATE" if lock else "")
    value = await conn.fetchval(query, app_id)
    return int(value or 0)


async def set_clock_offset(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, offset_us: int
) -> None:
    await conn.execute(
        "INSERT INTO app_clocks (app_id, tenant_id, offset_us) VALUES ($1, $2, $3)"
        " ON CONFLICT (app_id) DO UPDATE SET offset_us = excluded.offset_us",
        app_id,
        tenant_id,
        offset_us,
    )


async def lock_clock(conn: asyncpg.Connection, tenant_id: str, app_id: str) -> int:
    """The app's clock offset, its row locked: one advance of an app's clock at a time."""
    await conn.execute(
        "INSERT INTO app_clocks (app_id, tenant_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        app_id,
        tenant_id,
    )
    return await clock_offset_us(conn, app_id, lock=True)


async def get_behavior(conn: asyncpg.Connection, customer_id: str) -> str:
    value = await conn.fetchval(
        "SELECT behavior FROM sandbox_behaviors WHERE customer_id = $1", customer_id
    )
    return str(value or "succeed")


async def set_behavior(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, customer_id: str, behavior: str
) -> None:
    await conn.execute(
        "INSERT INTO sandbox_behaviors (customer_id, tenant_id, app_id, behavior)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (customer_id) DO UPDATE SET behavior = $4",
        customer_id,
        tenant_id,
        app_id,
        behavior,
    )


# Subscriptions

SUB_STATE = (
    "plan_id, status, anchor, current_period_start, current_period_end, trial_end, "
    "cancel_at_period_end, canceled_at, paused_at, resumes_at, failed_at, grace_ends_at, "
    "retries, due_cents, pending_plan_id, expires_at, rate_cents"
)
STATE_COLUMNS = tuple(c.strip() for c in SUB_STATE.split(","))


async def insert_subscription(
    conn: asyncpg.Connection,
    id: str,
    tenant_id: str,
    app_id: str,
    customer_id: str,
    state: dict[str, Any],
    next_action_at: datetime | None,
    at: datetime,
) -> Row:
    columns = ", ".join(STATE_COLUMNS)
    params = ", ".join(f"${i}" for i in range(7, 7 + len(STATE_COLUMNS)))
    return one(
        await conn.fetchrow(
            f"INSERT INTO subscriptions (id, tenant_id, app_id, customer_id, next_action_at,"
            f" created_at, updated_at, {columns}) VALUES ($1, $2, $3, $4, $5, $6, $6, {params})"
            " RETURNING *",
            id,
            tenant_id,
            app_id,
            customer_id,
            next_action_at,
            at,
            *(state[c] for c in STATE_COLUMNS),
        )
    )


async def update_subscription(
    conn: asyncpg.Connection,
    id: str,
    state: dict[str, Any],
    next_action_at: datetime | None,
    at: datetime,
) -> Row:
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(STATE_COLUMNS, start=4))
    return one(
        await conn.fetchrow(
            f"UPDATE subscriptions SET next_action_at = $2, updated_at = $3,"
            f" version = version + 1, {sets} WHERE id = $1 RETURNING *",
            id,
            next_action_at,
            at,
            *(state[c] for c in STATE_COLUMNS),
        )
    )


async def get_subscription(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, sub_id: str, *, lock: bool = False
) -> Row | None:
    query = "SELECT * FROM subscriptions WHERE tenant_id = $1 AND app_id = $2 AND id = $3"
    if lock:
        query += " FOR UPDATE"
    return await conn.fetchrow(query, tenant_id, app_id, sub_id)


async def live_subscription(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, customer_id: str
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM subscriptions WHERE tenant_id = $1 AND app_id = $2 AND customer_id = $3"
        " AND status <> 'canceled'",
        tenant_id,
        app_id,
        customer_id,
    )


LIST_SUBSCRIPTIONS = """
SELECT * FROM subscriptions
WHERE tenant_id = $1 AND app_id = $2
  AND ($3::text IS NULL OR customer_id = $3) AND ($4::text IS NULL OR status = $4)
  AND ($5::text IS NULL OR id > $5)
ORDER BY id LIMIT $6
"""


async def list_subscriptions(conn: asyncpg.Connection, *values: Any) -> list[Row]:
    return cast(list[Row], await conn.fetch(LIST_SUBSCRIPTIONS, *values))


DUE = """
SELECT s.id, s.tenant_id, s.app_id FROM subscriptions s
LEFT JOIN app_clocks c ON c.app_id = s.app_id
WHERE s.next_action_at <= now() + make_interval(secs => coalesce(c.offset_us, 0) / 1e6)
  AND NOT (s.id = ANY($2::text[]))
ORDER BY s.next_action_at
LIMIT $1
FOR UPDATE OF s SKIP LOCKED
"""


async def claim_due(conn: asyncpg.Connection, limit: int, skip: Sequence[str] = ()) -> list[Row]:
    """Subscriptions due by their app's clock, locked; rows another replica holds, and
    ``skip``, are left alone."""
    return cast(list[Row], await conn.fetch(DUE, limit, list(skip)))


async def next_due_of_app(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, until: datetime
) -> Row | None:
    """The app's earliest subscription due by ``until``, locked (waiting for a worker
    that holds it)."""
    return await conn.fetchrow(
        "SELECT * FROM subscriptions WHERE tenant_id = $1 AND app_id = $2"
        " AND next_action_at <= $3 ORDER BY next_action_at, id LIMIT 1 FOR UPDATE",
        tenant_id,
        app_id,
        until,
    )


# Checkout sessions

INSERT_SESSION = """
INSERT INTO checkout_sessions (id, tenant_id, app_id, customer_id, plan_id, success_url,
                               cancel_url, expires_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *
"""


async def insert_session(conn: asyncpg.Connection, *values: Any) -> Row:
    return one(await conn.fetchrow(INSERT_SESSION, *values))


async def get_session(
    conn: asyncpg.Connection, session_id: str, *, lock: bool = False
) -> Row | None:
    """A session by id alone: the hosted page knows no app; callers check the scope."""
    query = "SELECT * FROM checkout_sessions WHERE id = $1" + (" FOR UPDATE" if lock else "")
    return await conn.fetchrow(query, session_id)


async def complete_session(
    conn: asyncpg.Connection, session_id: str, subscription_id: str, at: datetime
) -> Row:
    return one(
        await conn.fetchrow(
            "UPDATE checkout_sessions SET status = 'completed', subscription_id = $2,"
            " completed_at = $3 WHERE id = $1 RETURNING *",
            session_id,
            subscription_id,
            at,
        )
    )


# Payments

INSERT_PAYMENT = """
INSERT INTO payments (id, tenant_id, app_id, subscription_id, customer_id, amount_cents,
                      currency, status, kind, failure_reason, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *
"""


async def insert_payment(conn: asyncpg.Connection, *values: Any) -> Row:
    return one(await conn.fetchrow(INSERT_PAYMENT, *values))


async def recent_payments(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, subscription_id: str, limit: int
) -> list[Row]:
    """The subscription's newest payments, newest first."""
    return cast(
        list[Row],
        await conn.fetch(
            "SELECT * FROM payments WHERE tenant_id = $1 AND app_id = $2"
            " AND subscription_id = $3 ORDER BY id DESC LIMIT $4",
            tenant_id,
            app_id,
            subscription_id,
            limit,
        ),
    )


LIST_PAYMENTS = """
SELECT * FROM payments
WHERE tenant_id = $1 AND app_id = $2 AND ($3::text IS NULL OR subscription_id = $3)
  AND ($4::text IS NULL OR id > $4)
ORDER BY id LIMIT $5
"""


async def list_payments(conn: asyncpg.Connection, *values: Any) -> list[Row]:
    return cast(list[Row], await conn.fetch(LIST_PAYMENTS, *values))


# Metrics


async def live_by_plan(conn: asyncpg.Connection, tenant_id: str) -> Sequence[Row]:
    return cast(
        list[Row],
        await conn.fetch(
            "SELECT s.app_id, s.status, p.price_cents, p.currency, p.interval, p.interval_count,"
            " count(*) AS n FROM subscriptions s JOIN plans p ON p.id = s.plan_id"
            " WHERE s.tenant_id = $1 AND s.status <> 'canceled'"
            " GROUP BY 1, 2, 3, 4, 5, 6",
            tenant_id,
        ),
    )


MOVEMENT = """
SELECT s.app_id,
       count(*) FILTER (WHERE s.created_at > t.now - interval '30 days') AS new,
       count(*) FILTER (WHERE s.canceled_at > t.now - interval '30 days') AS churned
FROM subscriptions s
LEFT JOIN app_clocks c ON c.app_id = s.app_id
CROSS JOIN LATERAL (
    SELECT now() + make_interval(secs => coalesce(c.offset_us, 0) / 1e6) AS now
) t
WHERE s.tenant_id = $1
GROUP BY s.app_id
"""


async def movement(conn: asyncpg.Connection, tenant_id: str) -> Sequence[Row]:
    """Per app: subscriptions started and canceled in the 30 days before the app's now."""
    return cast(list[Row], await conn.fetch(MOVEMENT, tenant_id))
