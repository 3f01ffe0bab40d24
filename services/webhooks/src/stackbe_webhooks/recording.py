"""Recording a delivery attempt: the attempt row, then the delivery's next step (delivered,
retried on the schedule, or failed for good), the endpoint's failing streak, and
disabling an endpoint that is gone or has failed too long."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from stackbe_common import outbox
from stackbe_common.ids import new_id
from stackbe_common.logging import get_logger
from stackbe_events.webhooks import MessageExhausted

from .disabling import disable_endpoint
from .retries import SCHEDULE, Outcome, retry_delay

__all__ = ["record"]

log = get_logger(__name__)

_ATTEMPT = """
INSERT INTO attempts (id, message_id, endpoint_id, tenant_id, app_id, attempted_at,
                      response_status, response_body, duration_ms, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""
# A success locks only its delivery, so deliveries to one endpoint are recorded side by
# side. A failure then locks the endpoint (its failing streak); disabling an endpoint
# locks it and then only deliveries nobody holds, so the two orders never meet.
_ENDPOINT = "SELECT status FROM endpoints WHERE id = $1"
_ENDPOINT_LOCKED = "SELECT status FROM endpoints WHERE id = $1 FOR NO KEY UPDATE"
_HELD = """
SELECT attempts, manual, retry_requested FROM deliveries
WHERE message_id = $1 AND endpoint_id = $2 AND lease_token = $3 FOR UPDATE
"""
_DELIVERED = """
UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, leased_until = NULL,
    lease_token = NULL, retry_requested = false, next_attempt_at = NULL,
    last_attempt_at = $3, last_response_status = $4, delivered_at = $3
WHERE message_id = $1 AND endpoint_id = $2
"""
_HEALTHY = "UPDATE endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL"
_FAILED = """
UPDATE deliveries SET attempts = attempts + 1, leased_until = NULL, lease_token = NULL,
    last_attempt_at = $3, last_response_status = $4,
    status = CASE WHEN $5::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
    next_attempt_at = $5, manual = manual OR $6, retry_requested = false
WHERE message_id = $1 AND endpoint_id = $2
"""
_FAILING = """
UPDATE endpoints SET failing_since = coalesce(failing_since, $2)
WHERE id = $1 RETURNING failing_since
"""


async def record(
    pool: asyncpg.Pool,
    row: asyncpg.Record,
    outcome: Outcome,
    now: datetime,
    disable_after: timedelta,
) -> None:
    """The attempt, and the delivery's next step, if this worker still holds the claim
    (a worker whose lease ran out logs its attempt and changes nothing else)."""
    message, endpoint = row["message_id"], row["endpoint_id"]
    async with pool.acquire() as conn, conn.transaction():
        status = await conn.fetchval(_ENDPOINT, endpoint)
        await conn.execute(
            _ATTEMPT,
            new_id("att"),
            message,
            endpoint,
            row["tenant_id"],
            row["app_id"],
            now,
            outcome.status,
            outcome.body,
            outcome.duration_ms,
            outcome.error,
        )
        held = await conn.fetchrow(_HELD, message, endpoint, row["lease_token"])
        if status is None or held is None:
            log.info("webhooks.claim_lost", endpoint_id=endpoint, message_id=message)
            return
        if outcome.delivered:
            await conn.execute(_DELIVERED, message, endpoint, now, outcome.status)
            await conn.execute(_HEALTHY, endpoint)
            return
        status = await conn.fetchval(_ENDPOINT_LOCKED, endpoint)
        await _failed(conn, row, held, status == "enabled", outcome, now, disable_after)


async def _failed(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    held: asyncpg.Record,
    enabled: bool,
    outcome: Outcome,
    now: datetime,
    disable_after: timedelta,
) -> None:
    message, endpoint = row["message_id"], row["endpoint_id"]
    attempts = held["attempts"] + 1
    again = held["retry_requested"]  # a retry asked for during this attempt
    exhausted = not held["manual"] and attempts > len(SCHEDULE) and not again
    if not enabled or (held["manual"] and not again) or exhausted:
        next_at = None
    elif again:
        next_at = now
    else:
        next_at = now + retry_delay(attempts, outcome.status, outcome.retry_after)
    await conn.execute(_FAILED, message, endpoint, now, outcome.status, next_at, again)
    log.info(
        "webhooks.attempt_failed",
        endpoint_id=endpoint,
        message_id=message,
        attempts=attempts,
        error=outcome.error,
        next_attempt_at=next_at,
    )
    if exhausted and enabled:
        await outbox.record(
            conn,
            MessageExhausted(
                id=new_id("evt"),
                occurred_at=now,
                tenant_id=row["tenant_id"],
                app_id=row["app_id"],
                message_id=message,
                endpoint_id=endpoint,
                event_type=row["event_type"],
                attempts=attempts,
            ),
        )
    if not enabled:
        return
    if outcome.status == 410:
        await disable_endpoint(conn, endpoint, "gone", now)
        return
    failing_since = await conn.fetchval(_FAILING, endpoint, now)
    if now - failing_since >= disable_after:
        await disable_endpoint(conn, endpoint, "failing", now)
