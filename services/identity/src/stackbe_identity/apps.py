"""A tenant's apps: create (within the tenant's StackBE plan), list, read, update (a
payment gateway connection and the hosted pages' look among the settings) and archive.
Every change is announced with the app's whole state."""

from __future__ import annotations

from typing import Any

import asyncpg

from stackbe_common import outbox
from stackbe_common.ids import new_id
from stackbe_common.pagination import Page, PageParams, page_of
from stackbe_common.scope import Scope
from stackbe_events import identity as ev

from . import repository as repo
from . import schemas as s
from .access import tenant_of
from .deps import Deps
from .errors import AppArchived
from .gateways import find_gateway
from .service import app_row, event, live_app_row

__all__ = [
    "announced",
    "app_out",
    "archive_app",
    "create_app",
    "get_app",
    "list_apps",
    "update_app",
]


def app_out(row: asyncpg.Record) -> s.App:
    return s.App(
        id=row["id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        gateway=row["gateway"],
        gateway_id=row["gateway_id"],
        brand_color=row["brand_color"],
        logo_url=row["logo_url"],
        portal_pause_enabled=row["portal_pause_enabled"],
        grace_period_days=row["grace_period_days"],
        allowed_redirect_urls=list(row["allowed_redirect_urls"]),
        auto_create_customers=row["auto_create_customers"],
        customer_session_days=row["customer_session_days"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        archived_at=row["archived_at"],
    )


def announced(row: asyncpg.Record) -> dict[str, Any]:
    """What ``app.created`` and ``app.updated`` carry: the app's whole state."""
    return {
        "name": row["name"],
        "grace_period_days": row["grace_period_days"],
        "gateway": row["gateway"],
        "gateway_id": row["gateway_id"],
        "brand_color": row["brand_color"],
        "logo_url": row["logo_url"],
        "allowed_redirect_urls": list(row["allowed_redirect_urls"]),
        "portal_pause_enabled": row["portal_pause_enabled"],
    }


async def create_app(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, data: s.CreateApp
) -> s.App:
    tenant_id = tenant_of(caller, write=True)
    # One creation at a time per tenant, so two cannot both take the last place (a lock
    # of its own: the tenant's row stays free for everything else the tenant does).
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('stackbe.apps'), hashtext($1))", tenant_id
    )
    apps = await conn.fetchval(
        "SELECT count(*) FROM apps WHERE tenant_id = $1 AND archived_at IS NULL", tenant_id
    )
    await deps.billing.enforce(conn, tenant_id, "apps", apps)
    row = await repo.insert_app(
        conn,
        new_id("app"),
        tenant_id,
        data.name.strip(),
        data.grace_period_days,
        data.allowed_redirect_urls,
        data.auto_create_customers,
        data.customer_session_days,
        data.brand_color,
        data.logo_url,
        data.portal_pause_enabled,
    )
    await outbox.record(
        conn,
        event(
            ev.AppCreated,
            deps,
            tenant_id,
            row["id"],
            **announced(row),
        ),
    )
    return app_out(row)


async def list_apps(
    conn: asyncpg.Connection, caller: Scope, params: PageParams, include_archived: bool
) -> Page[s.App]:
    rows = await repo.list_apps(
        conn, tenant_of(caller), include_archived, params.starting_after, params.limit + 1
    )
    return page_of(rows, params, app_out)


async def get_app(conn: asyncpg.Connection, caller: Scope, app_id: str) -> s.App:
    return app_out(await app_row(conn, tenant_of(caller), app_id))


async def update_app(
    conn: asyncpg.Connection, deps: Deps, caller: Scope, app_id: str, data: s.UpdateApp
) -> s.App:
    tenant_id = tenant_of(caller, write=True)
    await live_app_row(conn, tenant_id, app_id)
    if data.gateway_id is not None:
        await find_gateway(deps, tenant_id, data.gateway_id, app_id)
    row = await repo.update_app(
        conn,
        tenant_id,
        app_id,
        data.name.strip() if data.name else None,
        data.grace_period_days,
        data.allowed_redirect_urls,
        data.auto_create_customers,
        data.customer_session_days,
        data.gateway_id,
        data.brand_color,
        data.logo_url,
        data.portal_pause_enabled,
    )
    if row is None:  # archived by a concurrent request since it was read
        raise AppArchived()
    await outbox.record(
        conn,
        event(
            ev.AppUpdated,
            deps,
            tenant_id,
            app_id,
            **announced(row),
        ),
    )
    return app_out(row)


async def archive_app(conn: asyncpg.Connection, deps: Deps, caller: Scope, app_id: str) -> s.App:
    tenant_id = tenant_of(caller, write=True)
    await live_app_row(conn, tenant_id, app_id)
    now = deps.clock.now()
    row = await repo.archive_app(conn, tenant_id, app_id, now)
    if row is None:  # archived by a concurrent request since it was read
        raise AppArchived()
    await outbox.record(conn, event(ev.AppArchived, deps, tenant_id, app_id, archived_at=now))
    return app_out(row)
