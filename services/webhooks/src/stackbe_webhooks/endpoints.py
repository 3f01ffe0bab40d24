"""An app's webhook endpoints: create (the secret shown once), read, update, rotate the
secret, enable, send a test event, delete. Functions take the request's connection and
never commit."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import msgspec
from nats.aio.client import Client as NATS

from stackbe_common import bus
from stackbe_common.access import app_of
from stackbe_common.clock import Clock
from stackbe_common.crypto import Keyring
from stackbe_common.errors import InvalidInput, Unavailable
from stackbe_common.ids import has_prefix, new_id
from stackbe_common.pagination import Page, PageParams, page_of
from stackbe_common.scope import Scope
from stackbe_events import rpc

from . import schemas as s
from . import signing
from .errors import EndpointDisabledError, EndpointNotFound, UsageLimitExceeded
from .fanout import EVENT_TYPES, publish
from .sealing import seal
from .ssrf import AddressRefused, Guard

__all__ = [
    "create_endpoint",
    "delete_endpoint",
    "enable_endpoint",
    "endpoint_out",
    "get_endpoint",
    "list_endpoints",
    "owned_endpoint",
    "rotate_secret",
    "send_test",
    "update_endpoint",
]

ROTATION_OVERLAP = timedelta(hours=24)


def endpoint_out(row: asyncpg.Record, secret: str | None = None) -> s.Endpoint:
    return s.Endpoint(
        id=row["id"],
        app_id=row["app_id"],
        url=row["url"],
        events=list(row["event_types"] or EVENT_TYPES),
        description=row["description"],
        status=row["status"],
        disabled_reason=row["disabled_reason"],
        failing_since=row["failing_since"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        secret=secret if secret is not None else msgspec.UNSET,
    )


async def _checked_url(guard: Guard, url: str) -> str:
    try:
        await guard.check_url(url)
    except AddressRefused as exc:
        raise InvalidInput(f"url: {exc}", field="url") from None
    return url


def _types(events: list[str] | None) -> list[str] | None:
    """Stored filter: None means every type, now and to come."""
    return None if events is None else sorted(set(events))


async def owned_endpoint(
    conn: asyncpg.Connection, caller: Scope, endpoint_id: str, *, write: bool = False
) -> asyncpg.Record:
    tenant_id, app_id = app_of(caller, write=write)
    row = None
    if has_prefix(endpoint_id, "we"):
        row = await conn.fetchrow(
            "SELECT * FROM endpoints WHERE id = $1 AND tenant_id = $2 AND app_id = $3"
            + (" FOR UPDATE" if write else ""),
            endpoint_id,
            tenant_id,
            app_id,
        )
    if row is None:
        raise EndpointNotFound()
    return row


async def _within_plan(conn: asyncpg.Connection, nc: NATS | None, tenant_id: str) -> None:
    """The tenant's StackBE plan limits its webhook endpoints over all its apps: identity
    asks StackBE Billing's entitlement API (one creation at a time per tenant)."""
    if nc is None:
        return
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('stackbe.webhook_endpoints'), hashtext($1))",
        tenant_id,
    )
    count = await conn.fetchval("SELECT count(*) FROM endpoints WHERE tenant_id = $1", tenant_id)
    q = rpc.TenantLimit(tenant_id=tenant_id, key="webhookEndpoints", count=count)
    try:
        await bus.request(nc, rpc.TENANT_LIMIT, q, type(None), timeout=10.0)
    except bus.RemoteError as exc:
        if exc.error.code == "USAGE_LIMIT_EXCEEDED":
            raise UsageLimitExceeded(exc.error.message) from None
        raise Unavailable(exc.error.message) from None
    except Exception as exc:
        raise Unavailable(
            "StackBE Billing could not be reached to check this tenant's plan; nothing was "
            "created, try again"
        ) from exc


async def create_endpoint(
    conn: asyncpg.Connection,
    nc: NATS | None,
    clock: Clock,
    keyring: Keyring,
    guard: Guard,
    caller: Scope,
    data: s.CreateEndpoint,
) -> s.Endpoint:
    tenant_id, app_id = app_of(caller, write=True)
    url = await _checked_url(guard, data.url)
    await _within_plan(conn, nc, tenant_id)
    endpoint_id, secret, now = new_id("we"), signing.new_secret(), clock.now()
    row = await conn.fetchrow(
        """
        INSERT INTO endpoints (id, tenant_id, app_id, url, description, event_types, secret,
                               created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING *
        """,
        endpoint_id,
        tenant_id,
        app_id,
        url,
        data.description,
        _types(data.events),
        seal(keyring, endpoint_id, secret),
        now,
    )
    return endpoint_out(row, secret)


async def get_endpoint(conn: asyncpg.Connection, caller: Scope, endpoint_id: str) -> s.Endpoint:
    return endpoint_out(await owned_endpoint(conn, caller, endpoint_id))


async def list_endpoints(
    conn: asyncpg.Connection, caller: Scope, params: PageParams
) -> Page[s.Endpoint]:
    tenant_id, app_id = app_of(caller)
    rows = await conn.fetch(
        """
        SELECT * FROM endpoints WHERE tenant_id = $1 AND app_id = $2
          AND ($3::text IS NULL OR id > $3) ORDER BY id LIMIT $4
        """,
        tenant_id,
        app_id,
        params.starting_after,
        params.limit + 1,
    )
    return page_of(rows, params, endpoint_out)


async def update_endpoint(
    conn: asyncpg.Connection,
    clock: Clock,
    guard: Guard,
    caller: Scope,
    endpoint_id: str,
    data: s.UpdateEndpoint,
) -> s.Endpoint:
    current = await owned_endpoint(conn, caller, endpoint_id, write=True)
    url = current["url"]
    if not isinstance(data.url, msgspec.UnsetType) and data.url != url:
        url = await _checked_url(guard, data.url)
    types = current["event_types"]
    if not isinstance(data.events, msgspec.UnsetType):
        types = _types(data.events)
    description = current["description"]
    if not isinstance(data.description, msgspec.UnsetType):
        description = data.description
    row = await conn.fetchrow(
        """
        UPDATE endpoints SET url = $2, event_types = $3, description = $4, updated_at = $5
        WHERE id = $1 RETURNING *
        """,
        endpoint_id,
        url,
        types,
        description,
        clock.now(),
    )
    return endpoint_out(row)


async def rotate_secret(
    conn: asyncpg.Connection, clock: Clock, keyring: Keyring, caller: Scope, endpoint_id: str
) -> s.Endpoint:
    """A new secret; the one it replaces keeps signing beside it for 24 hours."""
    current = await owned_endpoint(conn, caller, endpoint_id, write=True)
    secret, now = signing.new_secret(), clock.now()
    row = await conn.fetchrow(
        """
        UPDATE endpoints SET previous_secret = secret, previous_secret_until = $3,
               secret = $2, updated_at = $4
        WHERE id = $1 RETURNING *
        """,
        current["id"],
        seal(keyring, endpoint_id, secret),
        now + ROTATION_OVERLAP,
        now,
    )
    return endpoint_out(row, secret)


async def enable_endpoint(
    conn: asyncpg.Connection, clock: Clock, caller: Scope, endpoint_id: str
) -> s.Endpoint:
    current = await owned_endpoint(conn, caller, endpoint_id, write=True)
    if current["status"] == "enabled":
        return endpoint_out(current)
    row = await conn.fetchrow(
        """
        UPDATE endpoints SET status = 'enabled', disabled_reason = NULL, failing_since = NULL,
               updated_at = $2
        WHERE id = $1 RETURNING *
        """,
        endpoint_id,
        clock.now(),
    )
    return endpoint_out(row)


async def delete_endpoint(conn: asyncpg.Connection, caller: Scope, endpoint_id: str) -> s.Endpoint:
    """Gone with its deliveries and attempts; messages stay for the app's other endpoints."""
    current = await owned_endpoint(conn, caller, endpoint_id, write=True)
    await conn.execute("DELETE FROM endpoints WHERE id = $1", endpoint_id)
    return endpoint_out(current)


async def send_test(conn: asyncpg.Connection, clock: Clock, caller: Scope, endpoint_id: str) -> str:
    """A ``webhook.test`` message for this endpoint alone; its id."""
    current = await owned_endpoint(conn, caller, endpoint_id, write=True)
    if current["status"] != "enabled":
        raise EndpointDisabledError()
    message_id, now = new_id("evt"), clock.now()
    await publish(
        conn,
        message_id=message_id,
        tenant_id=current["tenant_id"],
        app_id=current["app_id"],
        event_type="webhook.test",
        data={"endpointId": endpoint_id},
        occurred_at=now,
        now=now,
        endpoint_id=endpoint_id,
    )
    return message_id
