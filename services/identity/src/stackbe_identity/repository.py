"""Identity's SQL for tenants, members, apps and API keys. Every query below tenant level
filters by the caller's tenant. Sign-in SQL is in ``signin_repository``, customers' in
``customer_repository``."""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias, cast

import asyncpg

Row: TypeAlias = asyncpg.Record


def one(row: Row | None) -> Row:
    """The row a statement always returns (INSERT ... RETURNING, an aggregate)."""
    if row is None:
        raise RuntimeError("expected the statement to return a row, it returned none")
    return row


# Tenants

INSERT_TENANT = "INSERT INTO tenants (id, name, owner_email) VALUES ($1, $2, $3) RETURNING *"


async def insert_tenant(conn: asyncpg.Connection, id: str, name: str, owner_email: str) -> Row:
    return one(await conn.fetchrow(INSERT_TENANT, id, name, owner_email))


async def get_tenant(conn: asyncpg.Connection, tenant_id: str) -> Row | None:
    return await conn.fetchrow("SELECT * FROM tenants WHERE id = $1", tenant_id)


# Members

INSERT_MEMBER = """
INSERT INTO members (id, tenant_id, email, role) VALUES ($1, $2, $3, $4) RETURNING *
"""


async def insert_member(
    conn: asyncpg.Connection, id: str, tenant_id: str, email: str, role: str
) -> Row:
    return one(await conn.fetchrow(INSERT_MEMBER, id, tenant_id, email, role))


async def get_member(conn: asyncpg.Connection, tenant_id: str, member_id: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM members WHERE tenant_id = $1 AND id = $2", tenant_id, member_id
    )


async def get_member_by_id(conn: asyncpg.Connection, member_id: str) -> Row | None:
    return await conn.fetchrow("SELECT * FROM members WHERE id = $1", member_id)


LIST_MEMBERS = """
SELECT * FROM members
WHERE tenant_id = $1 AND ($2::text IS NULL OR id > $2)
ORDER BY id LIMIT $3
"""


async def list_members(
    conn: asyncpg.Connection, tenant_id: str, after: str | None, limit: int
) -> list[Row]:
    return cast(list[Row], await conn.fetch(LIST_MEMBERS, tenant_id, after, limit))


FIND_MEMBER_FOR_LOGIN = """
SELECT * FROM members WHERE email = $1 AND ($2::text IS NULL OR tenant_id = $2)
ORDER BY created_at LIMIT 1
"""


async def find_member_for_login(
    conn: asyncpg.Connection, email: str, tenant_id: str | None
) -> Row | None:
    return await conn.fetchrow(FIND_MEMBER_FOR_LOGIN, email, tenant_id)


LOCK_OWNERS = "SELECT id FROM members WHERE tenant_id = $1 AND role = 'owner' FOR UPDATE"


async def lock_owners(conn: asyncpg.Connection, tenant_id: str) -> list[Row]:
    """Owners of the tenant, locked so two demotions cannot both pass the last-owner check."""
    return cast(list[Row], await conn.fetch(LOCK_OWNERS, tenant_id))


async def update_member_role(
    conn: asyncpg.Connection, tenant_id: str, member_id: str, role: str
) -> Row | None:
    return await conn.fetchrow(
        "UPDATE members SET role = $3 WHERE tenant_id = $1 AND id = $2 RETURNING *",
        tenant_id,
        member_id,
        role,
    )


async def delete_member(conn: asyncpg.Connection, tenant_id: str, member_id: str) -> Row | None:
    return await conn.fetchrow(
        "DELETE FROM members WHERE tenant_id = $1 AND id = $2 RETURNING *", tenant_id, member_id
    )


# Apps

INSERT_APP = """
INSERT INTO apps (id, tenant_id, name, grace_period_days, allowed_redirect_urls,
                  auto_create_customers, customer_session_days, brand_color, logo_url,
                  portal_pause_enabled)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *
"""


async def insert_app(
    conn: asyncpg.Connection,
    id: str,
    tenant_id: str,
    name: str,
    grace_period_days: int,
    allowed_redirect_urls: list[str],
    auto_create_customers: bool,
    customer_session_days: int,
    brand_color: str | None = None,
    logo_url: str | None = None,
    portal_pause_enabled: bool = False,
) -> Row:
    return one(
        await conn.fetchrow(
            INSERT_APP,
            id,
            tenant_id,
            name,
            grace_period_days,
            allowed_redirect_urls,
            auto_create_customers,
            customer_session_days,
            brand_color,
            logo_url,
            portal_pause_enabled,
        )
    )


async def get_app(conn: asyncpg.Connection, tenant_id: str, app_id: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM apps WHERE tenant_id = $1 AND id = $2", tenant_id, app_id
    )


LIST_APPS = """
SELECT * FROM apps
WHERE tenant_id = $1 AND ($2 OR archived_at IS NULL) AND ($3::text IS NULL OR id > $3)
ORDER BY id LIMIT $4
"""


async def list_apps(
    conn: asyncpg.Connection, tenant_id: str, include_archived: bool, after: str | None, limit: int
) -> list[Row]:
    return cast(list[Row], await conn.fetch(LIST_APPS, tenant_id, include_archived, after, limit))


UPDATE_APP = """
UPDATE apps SET name = coalesce($3, name),
                grace_period_days = coalesce($4, grace_period_days),
                allowed_redirect_urls = coalesce($5, allowed_redirect_urls),
                auto_create_customers = coalesce($6, auto_create_customers),
                customer_session_days = coalesce($7, customer_session_days),
                gateway = CASE WHEN $8::text IS NULL THEN gateway ELSE 'stripe' END,
                gateway_id = coalesce($8, gateway_id),
                brand_color = coalesce($9, brand_color),
                logo_url = coalesce($10, logo_url),
                portal_pause_enabled = coalesce($11, portal_pause_enabled),
                updated_at = now()
WHERE tenant_id = $1 AND id = $2 AND archived_at IS NULL
RETURNING *
"""


async def update_app(
    conn: asyncpg.Connection,
    tenant_id: str,
    app_id: str,
    name: str | None,
    grace_period_days: int | None,
    allowed_redirect_urls: list[str] | None,
    auto_create_customers: bool | None,
    customer_session_days: int | None,
    gateway_id: str | None = None,
    brand_color: str | None = None,
    logo_url: str | None = None,
    portal_pause_enabled: bool | None = None,
) -> Row | None:
    return await conn.fetchrow(
        UPDATE_APP,
        tenant_id,
        app_id,
        name,
        grace_period_days,
        allowed_redirect_urls,
        auto_create_customers,
        customer_session_days,
        gateway_id,
        brand_color,
        logo_url,
        portal_pause_enabled,
    )


ARCHIVE_APP = """
UPDATE apps SET archived_at = $3, updated_at = $3
WHERE tenant_id = $1 AND id = $2 AND archived_at IS NULL
RETURNING *
"""


async def archive_app(
    conn: asyncpg.Connection, tenant_id: str, app_id: str, now: datetime
) -> Row | None:
    return await conn.fetchrow(ARCHIVE_APP, tenant_id, app_id, now)


# API keys

INSERT_KEY = """
INSERT INTO api_keys (id, tenant_id, app_id, name, key_hash, hint, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *
"""


async def insert_api_key(
    conn: asyncpg.Connection,
    id: str,
    tenant_id: str,
    app_id: str | None,
    name: str,
    key_hash: str,
    hint: str,
    expires_at: datetime | None,
) -> Row:
    return one(
        await conn.fetchrow(INSERT_KEY, id, tenant_id, app_id, name, key_hash, hint, expires_at)
    )


LIST_KEYS = """
SELECT * FROM api_keys
WHERE tenant_id = $1 AND app_id IS NOT DISTINCT FROM $2 AND revoked_at IS NULL
  AND ($3::text IS NULL OR id > $3)
ORDER BY id LIMIT $4
"""


async def list_api_keys(
    conn: asyncpg.Connection, tenant_id: str, app_id: str | None, after: str | None, limit: int
) -> list[Row]:
    return cast(list[Row], await conn.fetch(LIST_KEYS, tenant_id, app_id, after, limit))


REVOKE_KEY = """
UPDATE api_keys SET revoked_at = $4
WHERE tenant_id = $1 AND app_id IS NOT DISTINCT FROM $2 AND id = $3 AND revoked_at IS NULL
RETURNING *
"""


async def revoke_api_key(
    conn: asyncpg.Connection, tenant_id: str, app_id: str | None, key_id: str, now: datetime
) -> Row | None:
    return await conn.fetchrow(REVOKE_KEY, tenant_id, app_id, key_id, now)


RESOLVE_KEY = """
SELECT k.id, k.tenant_id, k.app_id, k.expires_at
FROM api_keys k LEFT JOIN apps a ON a.id = k.app_id
WHERE k.key_hash = $1 AND k.revoked_at IS NULL
  AND (k.expires_at IS NULL OR k.expires_at > now())
  AND (k.app_id IS NULL OR a.archived_at IS NULL)
"""


async def resolve_key(conn: asyncpg.Connection, key_hash: str) -> Row | None:
    return await conn.fetchrow(RESOLVE_KEY, key_hash)


async def resolve_app(conn: asyncpg.Connection, tenant_id: str, app_id: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT id, tenant_id, name, grace_period_days, gateway, gateway_id, brand_color,"
        " logo_url, allowed_redirect_urls, portal_pause_enabled FROM apps"
        " WHERE tenant_id = $1 AND id = $2 AND archived_at IS NULL",
        tenant_id,
        app_id,
    )


RECORD_USE = """
UPDATE api_keys k SET last_used_at = u.used_at
FROM unnest($1::text[], $2::timestamptz[]) AS u(id, used_at)
WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.used_at)
"""


async def record_key_use(conn: asyncpg.Connection, used: dict[str, datetime]) -> None:
    await conn.execute(RECORD_USE, list(used.keys()), list(used.values()))


async def get_live_app(conn: asyncpg.Connection, app_id: str) -> Row | None:
    """An app by id alone, for public endpoints that name it in their path."""
    return await conn.fetchrow("SELECT * FROM apps WHERE id = $1 AND archived_at IS NULL", app_id)
