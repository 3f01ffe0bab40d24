"""Transactional outbox: record events with the change, publish them after commit.

``record`` writes the event row in the caller's transaction. ``OutboxRelay`` is woken
by NOTIFY after commit (polling as a fallback), claims rows with ``FOR UPDATE SKIP
LOCKED`` so relays of several replicas share the work, publishes each with
``Nats-Msg-Id: <event id>`` (JetStream drops a re-publish within its duplicate window),
and marks them published. A relay killed between publish and mark re-publishes on
restart, and JetStream de-duplicates it.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog
from nats.js import JetStreamContext

from stackbe_events import Event, encode

from .logging import get_logger
from .stopping import Stopping

__all__ = ["OutboxRelay", "PendingBatch", "record"]

log = get_logger(__name__)

_INSERT = "INSERT INTO outbox (id, subject, payload, headers) VALUES ($1, $2, $3, $4)"


async def record(conn: asyncpg.Connection, *events: Event) -> None:
    """Write events into the outbox inside the caller's open transaction."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    headers = {"StackBE-Request-Id": request_id} if request_id else {}
    await conn.executemany(_INSERT, [(e.id, type(e).subject, encode(e), headers) for e in events])


_CLAIM = """
SELECT id, subject, payload, headers FROM outbox
WHERE published_at IS NULL ORDER BY id LIMIT $1
FOR UPDATE SKIP LOCKED
"""
_MARK = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::text[])"
_PRUNE = "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)"


class PendingBatch:
    """One claimed batch: ``publish`` then ``mark``, inside the claiming transaction."""

    def __init__(self, conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> None:
        self.conn, self.rows = conn, rows

    async def publish(self, js: JetStreamContext) -> None:
        await asyncio.gather(
            *(
                js.publish(
                    r["subject"], r["payload"], headers={**r["headers"], "Nats-Msg-Id": r["id"]}
                )
                for r in self.rows
            )
        )

    async def mark(self) -> None:
        await self.conn.execute(_MARK, [r["id"] for r in self.rows])


async def claim(conn: asyncpg.Connection, limit: int) -> PendingBatch:
    return PendingBatch(conn, await conn.fetch(_CLAIM, limit))


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        schema: str,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        keep_published_seconds: float = 3600.0,
    ) -> None:
        self._pool, self._js, self._schema = pool, js, schema
        self._batch_size, self._poll = batch_size, poll_interval
        self._keep = keep_published_seconds
        self._wake = asyncio.Event()

    async def publish_pending(self, stopping: Stopping | None = None) -> int:
        """Publish every unpublished row (or stop between batches when asked); return how
        many were published."""
        total = 0
        while stopping is None or not stopping.requested:
            async with self._pool.acquire() as conn, conn.transaction():
                batch = await claim(conn, self._batch_size)
                if not batch.rows:
                    return total
                await batch.publish(self._js)
                await batch.mark()
            total += len(batch.rows)
            log.debug("outbox.published", count=len(batch.rows))
        return total

    async def run(self, stopping: Stopping) -> None:
        """Relay until stopping is asked (or cancelled); survive Postgres and NATS outages
        with backoff. Asked to stop, it finishes the batch it holds."""
        stopping.wakes(self._wake)
        backoff = self._poll
        listener: asyncpg.Connection | None = None
        channel = f"stackbe_outbox_{self._schema}"
        pruned_at = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not stopping.requested:
                try:
                    if listener is None or listener.is_closed():
                        listener = await self._pool.acquire()
                        await listener.add_listener(channel, self._on_notify)
                    if not stopping.requested:
                        self._wake.clear()
                    count = await self.publish_pending(stopping)
                    if count:
                        log.info("outbox.relayed", count=count)
                    if loop.time() - pruned_at > 60:
                        async with self._pool.acquire() as conn:
                            await conn.execute(_PRUNE, self._keep)
                        pruned_at = loop.time()
                    backoff = self._poll
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll)
                except Exception as exc:  # keep relaying through Postgres and NATS outages
                    log.warning("outbox.relay_failed", error=repr(exc), retry_in=backoff)
                    if listener is not None:
                        with contextlib.suppress(Exception):
                            await listener.remove_listener(channel, self._on_notify)
                        with contextlib.suppress(Exception):
                            await self._pool.release(listener)
                        listener = None
                    await stopping.pause(backoff)
                    backoff = min(backoff * 2, 10.0)
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.remove_listener(channel, self._on_notify)
                with contextlib.suppress(Exception):
                    await self._pool.release(listener)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()
