"""The delivery log: messages with their deliveries, attempts, a manual retry of one
message, and recovery of every failed message of an endpoint since a time.

A retry or a recovery is one immediate attempt per delivery; if it fails the delivery
stays failed (no new schedule), and can be retried again.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import asyncpg
import msgspec

from stackbe_common.access import app_of
from stackbe_common.clock import Clock
from stackbe_common.errors import InvalidInput
from stackbe_common.ids import has_prefix
from stackbe_common.pagination import Page, PageParams, make_page, page_of
from stackbe_common.scope import Scope

from . import schemas as s
from .endpoints import owned_endpoint
from .errors import EndpointDisabledError, MessageNotFound
from .fanout import DUE_CHANNEL

__all__ = ["attempts_of", "list_messages", "recover", "retry_message"]

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # before any message


def _delivery(row: asyncpg.Record) -> s.Delivery:
    return s.Delivery(
        endpoint_id=row["endpoint_id"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_attempt_at=row["last_attempt_at"],
        last_response_status=row["last_response_status"],
        delivered_at=row["delivered_at"],
    )


async def _with_deliveries(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> list[s.Message]:
    found: dict[str, list[s.Delivery]] = defaultdict(list)
    for d in await conn.fetch(
        "SELECT * FROM deliveries WHERE message_id = ANY ($1) ORDER BY endpoint_id",
        [r["id"] for r in rows],
    ):
        found[d["message_id"]].append(_delivery(d))
    return [
        s.Message(
            id=r["id"],
            event_type=r["event_type"],
            created_at=r["created_at"],
            payload=msgspec.Raw(r["payload"]),
            deliveries=found[r["id"]],
        )
        for r in rows
    ]


async def _owned_message(
    conn: asyncpg.Connection, caller: Scope, message_id: str
) -> asyncpg.Record:
    tenant_id, app_id = app_of(caller)
    row = None
    if has_prefix(message_id, "evt"):
        row = await conn.fetchrow(
            "SELECT * FROM messages WHERE id = $1 AND tenant_id = $2 AND app_id = $3",
            message_id,
            tenant_id,
            app_id,
        )
    if row is None:
        raise MessageNotFound()
    return row


_LIST = """
SELECT m.* FROM messages m
WHERE m.tenant_id = $1 AND m.app_id = $2 AND ($3::text IS NULL OR m.id > $3)
  AND ($4::text IS NULL OR m.event_type = $4)
  AND ($5::text IS NULL AND $6::text IS NULL OR EXISTS (
        SELECT 1 FROM deliveries d WHERE d.message_id = m.id
          AND ($5::text IS NULL OR d.endpoint_id = $5)
          AND ($6::text IS NULL OR d.status = $6)))
ORDER BY m.id LIMIT $7
"""


async def list_messages(
    conn: asyncpg.Connection,
    caller: Scope,
    params: PageParams,
    endpoint_id: str | None,
    event_type: str | None,
    status: str | None,
) -> Page[s.Message]:
    tenant_id, app_id = app_of(caller)
    if endpoint_id is not None:
        await owned_endpoint(conn, caller, endpoint_id)
    rows = await conn.fetch(
        _LIST,
        tenant_id,
        app_id,
        params.starting_after,
        event_type,
        endpoint_id,
        status,
        params.limit + 1,
    )
    return make_page(await _with_deliveries(conn, rows), params)


async def get_message(conn: asyncpg.Connection, caller: Scope, message_id: str) -> s.Message:
    row = await _owned_message(conn, caller, message_id)
    return (await _with_deliveries(conn, [row]))[0]


def _attempt(row: asyncpg.Record) -> s.Attempt:
    return s.Attempt(
        id=row["id"],
        message_id=row["message_id"],
        endpoint_id=row["endpoint_id"],
        attempted_at=row["attempted_at"],
        response_status=row["response_status"],
        response_body=row["response_body"],
        duration_ms=row["duration_ms"],
        error=row["error"],
    )


async def attempts_of(
    conn: asyncpg.Connection, caller: Scope, message_id: str, params: PageParams
) -> Page[s.Attempt]:
    message = await _owned_message(conn, caller, message_id)
    rows = await conn.fetch(
        """
        SELECT * FROM attempts WHERE message_id = $1 AND ($2::text IS NULL OR id > $2)
        ORDER BY id LIMIT $3
        """,
        message["id"],
        params.starting_after,
        params.limit + 1,
    )
    return page_of(rows, params, _attempt)


# A delivery in flight keeps its attempt; the retry is remembered and made when that
# attempt is recorded, if it failed. A delivery waiting for its next scheduled attempt has
# that attempt brought forward; any other is sent once more (manual: no new schedule).
_RETRY = """
INSERT INTO deliveries (message_id, endpoint_id, tenant_id, app_id, next_attempt_at,
                        created_at, manual)
SELECT $1, e.id, e.tenant_id, e.app_id, $3, $3, true FROM endpoints e
WHERE e.id = ANY ($2) AND e.status = 'enabled'
ON CONFLICT (message_id, endpoint_id) DO UPDATE SET
    retry_requested = coalesce(deliveries.leased_until > $3, false),
    status = CASE WHEN deliveries.leased_until > $3 THEN deliveries.status ELSE 'pending' END,
    next_attempt_at = CASE WHEN deliveries.leased_until > $3
                           THEN deliveries.next_attempt_at ELSE $3 END,
    manual = CASE WHEN deliveries.leased_until > $3 THEN deliveries.manual
                  ELSE deliveries.manual OR deliveries.status <> 'pending' END
"""


async def retry_message(
    conn: asyncpg.Connection, clock: Clock, caller: Scope, message_id: str, data: s.Retry
) -> s.Message:
    """Send the message again: to ``endpointId`` (even one it never went to), or to every
    enabled endpoint it went to."""
    app_of(caller, write=True)
    message = await _owned_message(conn, caller, message_id)
    if data.endpoint_id is not None:
        endpoint = await owned_endpoint(conn, caller, data.endpoint_id)
        if endpoint["status"] != "enabled":
            raise EndpointDisabledError()
        targets = [endpoint["id"]]
    else:
        targets = [
            r["endpoint_id"]
            for r in await conn.fetch(
                "SELECT endpoint_id FROM deliveries WHERE message_id = $1", message["id"]
            )
        ]
    await conn.execute(_RETRY, message["id"], targets, clock.now())
    await conn.execute("SELECT pg_notify($1, '')", DUE_CHANNEL)
    return (await _with_deliveries(conn, [message]))[0]


async def recover(
    conn: asyncpg.Connection, clock: Clock, caller: Scope, endpoint_id: str, since: datetime
) -> s.Recovered:
    """Every failed delivery to the endpoint of a message created since ``since``, again."""
    endpoint = await owned_endpoint(conn, caller, endpoint_id, write=True)
    if endpoint["status"] != "enabled":
        raise EndpointDisabledError()
    now = clock.now()
    try:
        since = max(since.astimezone(UTC), EARLIEST)
    except OverflowError:  # beyond the calendar in UTC: before the year 1, or after 9999
        if since.year > 1:
            raise InvalidInput("since must not be in the future", field="since") from None
        since = EARLIEST
    if since > now:
        raise InvalidInput("since must not be in the future", field="since")
    count = await conn.fetchval(
        """
        WITH again AS (
            UPDATE deliveries d SET status = 'pending', manual = true, next_attempt_at = $3,
                   leased_until = NULL
            FROM messages m
            WHERE d.endpoint_id = $1 AND d.status = 'failed' AND m.id = d.message_id
              AND m.created_at >= $2
            RETURNING 1
        )
        SELECT count(*) FROM again
        """,
        endpoint_id,
        since,
        now,
    )
    if count:
        await conn.execute("SELECT pg_notify($1, '')", DUE_CHANNEL)
    return s.Recovered(endpoint_id=endpoint_id, recovered=count)
