"""Identity's SQL for signing in: members' magic links and refresh tokens, customers'
sign-in links, the sends that rate-limit them, and pruning what has expired."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from .repository import Row, one

# Magic links


async def insert_magic_link(
    conn: asyncpg.Connection, token_hash: str, member_id: str, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO magic_links (token_hash, member_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        member_id,
        expires_at,
    )


async def lock_magic_link(conn: asyncpg.Connection, token_hash: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM magic_links WHERE token_hash = $1 FOR UPDATE", token_hash
    )


async def spend_magic_link(conn: asyncpg.Connection, token_hash: str, now: datetime) -> None:
    await conn.execute("UPDATE magic_links SET used_at = $2 WHERE token_hash = $1", token_hash, now)


RECENT_SENDS = """
SELECT
  count(*) FILTER (WHERE email = $1) AS by_email,
  count(*) FILTER (WHERE client_ip = $2) AS by_ip
FROM magic_link_sends
WHERE sent_at > $3 AND (email = $1 OR client_ip = $2)
"""


async def count_recent_sends(
    conn: asyncpg.Connection, email: str, client_ip: str | None, since: datetime
) -> tuple[int, int]:
    row = one(await conn.fetchrow(RECENT_SENDS, email, client_ip, since))
    return int(row["by_email"]), int(row["by_ip"])


async def insert_send(conn: asyncpg.Connection, email: str, client_ip: str | None) -> None:
    await conn.execute(
        "INSERT INTO magic_link_sends (email, client_ip) VALUES ($1, $2)", email, client_ip
    )


# Refresh tokens

INSERT_REFRESH = """
INSERT INTO refresh_tokens (token_hash, family_id, member_id, tenant_id, expires_at)
VALUES ($1, $2, $3, $4, $5)
"""


async def insert_refresh_token(
    conn: asyncpg.Connection,
    token_hash: str,
    family_id: str,
    member_id: str,
    tenant_id: str,
    expires_at: datetime,
) -> None:
    await conn.execute(INSERT_REFRESH, token_hash, family_id, member_id, tenant_id, expires_at)


async def get_refresh_token(conn: asyncpg.Connection, token_hash: str) -> Row | None:
    return await conn.fetchrow("SELECT * FROM refresh_tokens WHERE token_hash = $1", token_hash)


async def lock_family(conn: asyncpg.Connection, family_id: str) -> None:
    """Serialise work on one refresh-token family until this transaction ends."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('refresh-family:' || $1, 0))", family_id
    )


async def lock_refresh_token(conn: asyncpg.Connection, token_hash: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE", token_hash
    )


async def spend_refresh_token(conn: asyncpg.Connection, token_hash: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1", token_hash, now
    )


async def revoke_family(conn: asyncpg.Connection, family_id: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
        now,
    )


# Customers' sign-in links

INSERT_CUSTOMER_LINK = """
INSERT INTO customer_links (token_hash, tenant_id, app_id, customer_id, redirect_url, expires_at,
                            purpose)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""


async def insert_customer_link(
    conn: asyncpg.Connection,
    token_hash: str,
    tenant_id: str,
    app_id: str,
    customer_id: str,
    redirect_url: str | None,
    expires_at: datetime,
    purpose: str = "app",
) -> None:
    await conn.execute(
        INSERT_CUSTOMER_LINK,
        token_hash,
        tenant_id,
        app_id,
        customer_id,
        redirect_url,
        expires_at,
        purpose,
    )


async def lock_customer_link(conn: asyncpg.Connection, app_id: str, token_hash: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM customer_links WHERE token_hash = $1 AND app_id = $2 FOR UPDATE",
        token_hash,
        app_id,
    )


async def spend_customer_link(conn: asyncpg.Connection, token_hash: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE customer_links SET used_at = $2 WHERE token_hash = $1", token_hash, now
    )


# Housekeeping

PRUNE = """
WITH sends AS (DELETE FROM magic_link_sends WHERE sent_at < now() - interval '1 day'),
     links AS (DELETE FROM magic_links WHERE expires_at < now() - interval '1 day'),
     customer_links AS (DELETE FROM customer_links WHERE expires_at < now() - interval '1 day')
DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'
"""


async def prune_expired(conn: asyncpg.Connection) -> None:
    await conn.execute(PRUNE)
