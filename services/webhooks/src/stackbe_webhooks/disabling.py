"""Disabling an endpoint: it answered 410, or failed for the whole window."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from stackbe_common import outbox
from stackbe_common.ids import new_id
from stackbe_common.logging import get_logger
from stackbe_events.webhooks import EndpointDisabled

__all__ = ["disable_endpoint"]

log = get_logger(__name__)

_DISABLE = """
UPDATE endpoints SET status = 'disabled', disabled_reason = $2, updated_at = $3
WHERE id = $1 AND status = 'enabled'
RETURNING id, url, tenant_id, app_id, failing_since
"""
# Deliveries in flight are left to their worker, which records them as failed.
_FAIL_PENDING = """
UPDATE deliveries SET status = 'failed', leased_until = NULL, next_attempt_at = NULL
WHERE endpoint_id = $1 AND status = 'pending' AND (leased_until IS NULL OR leased_until <= $2)
"""


async def disable_endpoint(
    conn: asyncpg.Connection, endpoint_id: str, reason: str, now: datetime
) -> bool:
    """Disable the endpoint (its pending deliveries fail) and say so on NATS."""
    row = await conn.fetchrow(_DISABLE, endpoint_id, reason, now)
    if row is None:
        return False
    await conn.execute(_FAIL_PENDING, endpoint_id, now)
    await outbox.record(
        conn,
        EndpointDisabled(
            id=new_id("evt"),
            occurred_at=now,
            tenant_id=row["tenant_id"],
            app_id=row["app_id"],
            endpoint_id=endpoint_id,
            url=row["url"],
            reason=reason,
            failing_since=row["failing_since"],
        ),
    )
    log.warning("webhooks.endpoint_disabled", endpoint_id=endpoint_id, reason=reason)
    return True
