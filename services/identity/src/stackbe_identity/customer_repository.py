"""Identity's SQL for an app's customers: always within one tenant and app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import asyncpg

from .repository import Row, one

INSERT_CUSTOMER = """
INSERT INTO customers (id, tenant_id, app_id, email, name, external_id, metadata)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *
"""


async def insert_customer(
    conn: asyncpg.Connection,
    id: str,
    tenant_id: str,
    app_id: str,
    email: str,
    name: str | None,
    external_id: str | None,
    metadata: Mapping[str, object],
) -> Row:
    return one(
        await conn.fetchrow(
            INSERT_CUSTOMER, id, tenant_id, app_id, email, name, external_id, metadata
        )
    )


async def get_customer(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, customer_id: str
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM customers WHERE tenant_id = $1 AND app_id = $2 AND id = $3",
        tenant_id,
        app_id,
        customer_id,
    )


LIST_CUSTOMERS = """
SELECT * FROM customers
WHERE tenant_id = $1 AND app_id = $2
  AND ($3::text IS NULL OR email = $3) AND ($4::text IS NULL OR external_id = $4)
  AND ($5::text IS NULL OR id > $5)
ORDER BY id LIMIT $6
"""


async def list_customers(
    conn: asyncpg.Connection,
    tenant_id: str,
    app_id: str,
    email: str | None,
    external_id: str | None,
    after: str | None,
    limit: int,
) -> list[Row]:
    return cast(
        list[Row],
        await conn.fetch(LIST_CUSTOMERS, tenant_id, app_id, email, external_id, after, limit),
    )


UPDATE_CUSTOMER = """
UPDATE customers SET email = $4, name = $5, external_id = $6, metadata = $7, updated_at = now()
WHERE tenant_id = $1 AND app_id = $2 AND id = $3
RETURNING *
"""


async def update_customer(
    conn: asyncpg.Connection,
    tenant_id: str,
    app_id: str,
    customer_id: str,
    email: str,
    name: str | None,
    external_id: str | None,
    metadata: Mapping[str, object],
) -> Row | None:
    return await conn.fetchrow(
        UPDATE_CUSTOMER, tenant_id, app_id, customer_id, email, name, external_id, metadata
    )


async def find_customer_by_email(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, email: str
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM customers WHERE tenant_id = $1 AND app_id = $2 AND email = $3",
        tenant_id,
        app_id,
        email,
    )
