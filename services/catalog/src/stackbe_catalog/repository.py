"""All catalog SQL. Every query filters by the caller's tenant and app."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias, cast

import asyncpg

Row: TypeAlias = asyncpg.Record


def one(row: Row | None) -> Row:
    """The row a statement always returns (INSERT ... RETURNING)."""
    if row is None:
        raise RuntimeError("expected the statement to return a row, it returned none")
    return row


Table: TypeAlias = Literal["products", "plans"]


async def get_owned(
    conn: asyncpg.Connection,
    table: Table,
    tenant_id: str,
    app_id: str,
    object_id: str,
    *,
    lock: bool = False,
) -> Row | None:
    """One product or plan of the app; ``lock`` holds it until the transaction ends."""
    query = f"SELECT * FROM {table} WHERE tenant_id = $1 AND app_id = $2 AND id = $3"
    return await conn.fetchrow(
        query + (" FOR UPDATE" if lock else ""), tenant_id, app_id, object_id
    )


# Products

INSERT_PRODUCT = """
INSERT INTO products (id, tenant_id, app_id, name, description, metadata)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING *
"""


LIST_PRODUCTS = """
SELECT * FROM products
WHERE tenant_id = $1 AND app_id = $2 AND ($3::text IS NULL OR id > $3)
ORDER BY id LIMIT $4
"""

UPDATE_PRODUCT = """
UPDATE products SET name = $4, description = $5, metadata = $6,
       version = version + 1, updated_at = now()
WHERE tenant_id = $1 AND app_id = $2 AND id = $3
RETURNING *
"""


async def insert_product(
    conn: asyncpg.Connection,
    id: str,
    tenant_id: str,
    app_id: str,
    name: str,
    description: str | None,
    metadata: dict[str, Any],
) -> Row:
    return one(
        await conn.fetchrow(INSERT_PRODUCT, id, tenant_id, app_id, name, description, metadata)
    )


async def list_products(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, after: str | None, limit: int
) -> list[Row]:
    return cast(list[Row], await conn.fetch(LIST_PRODUCTS, tenant_id, app_id, after, limit))


async def update_product(
    conn: asyncpg.Connection,
    tenant_id: str,
    app_id: str,
    product_id: str,
    name: str,
    description: str | None,
    metadata: dict[str, Any],
) -> Row:
    return one(
        await conn.fetchrow(
            UPDATE_PRODUCT, tenant_id, app_id, product_id, name, description, metadata
        )
    )


# Plans

INSERT_PLAN = """
INSERT INTO plans (id, tenant_id, app_id, product_id, name, price_cents, currency, interval,
                   interval_count, trial_days, entitlements, metadata, gateway_mappings)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING *
"""


LIST_PLANS = """
SELECT * FROM plans
WHERE tenant_id = $1 AND app_id = $2
  AND ($3::text IS NULL OR product_id = $3) AND ($4::text IS NULL OR status = $4)
  AND ($5::text IS NULL OR id > $5)
ORDER BY id LIMIT $6
"""

UPDATE_PLAN = """
UPDATE plans SET name = $4, entitlements = $5, metadata = $6,
       version = version + 1, updated_at = now()
WHERE tenant_id = $1 AND app_id = $2 AND id = $3
RETURNING *
"""

SET_PLAN_STATUS = """
UPDATE plans SET status = $4, version = version + 1, updated_at = now(),
       deprecated_at = CASE WHEN $4 = 'deprecated' THEN now() ELSE deprecated_at END,
       archived_at = CASE WHEN $4 = 'archived' THEN now() ELSE archived_at END
WHERE tenant_id = $1 AND app_id = $2 AND id = $3
RETURNING *
"""


async def insert_plan(conn: asyncpg.Connection, *values: Any) -> Row:
    """``values`` in the column order of ``INSERT_PLAN``."""
    return one(await conn.fetchrow(INSERT_PLAN, *values))


async def list_plans(
    conn: asyncpg.Connection,
    tenant_id: str,
    app_id: str,
    product_id: str | None,
    status: str | None,
    after: str | None,
    limit: int,
) -> list[Row]:
    return cast(
        list[Row],
        await conn.fetch(LIST_PLANS, tenant_id, app_id, product_id, status, after, limit),
    )


async def update_plan(
    conn: asyncpg.Connection,
    tenant_id: str,
    app_id: str,
    plan_id: str,
    name: str,
    entitlements: dict[str, Any],
    metadata: dict[str, Any],
) -> Row:
    return one(
        await conn.fetchrow(UPDATE_PLAN, tenant_id, app_id, plan_id, name, entitlements, metadata)
    )


async def set_plan_status(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, plan_id: str, status: str
) -> Row:
    return one(await conn.fetchrow(SET_PLAN_STATUS, tenant_id, app_id, plan_id, status))
