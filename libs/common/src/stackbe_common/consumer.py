"""Inbox-based event consumers over durable JetStream pull consumers.

One durable per (consuming service, stream), shared by the service's replicas. Each
message is routed by subject to a handler from an explicit table. The handler runs in
a transaction that also records the event id in the inbox, so a redelivered event is
an acked no-op. A payload that does not decode, or a ``PermanentError``, is kept in
``dead_letters`` and terminated; anything else is naked with backoff and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import msgspec
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from stackbe_events import Event, UnknownSubject, decode, stream_for

from .logging import get_logger
from .stopping import Stopping

__all__ = ["Consumer", "Handler", "PermanentError", "backoff_for"]

log = get_logger(__name__)

Handler = Callable[[asyncpg.Connection, Any], Awaitable[None]]


class PermanentError(Exception):
    """Retrying will not help: dead-letter the message."""


MAX_DELIVERIES = 10


def backoff_for(deliveries: int) -> float:
    """Seconds to wait before the next delivery: 1, 2, 4 ... capped at 60."""
    return float(min(2 ** max(deliveries - 1, 0), 60))


_INBOX = """
INSERT INTO inbox (consumer, event_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING RETURNING 1
"""
_DEAD = """
INSERT INTO dead_letters (consumer, subject, event_id, payload, error)
VALUES ($1, $2, $3, $4, $5)
"""


class Consumer:
    """Consume one context's stream with a handler table keyed by event class."""

    def __init__(
        self,
        *,
        name: str,
        context: str,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        handlers: Mapping[type[Event], Handler],
        batch: int = 50,
        ack_wait: float = 30.0,
        concurrency: int = 1,
    ) -> None:
        self.name, self._pool, self._js = name, pool, js
        self.stream, self.filter = stream_for(context)
        self._handlers = {cls.subject: (cls, h) for cls, h in handlers.items()}
        self._batch, self._ack_wait = batch, ack_wait
        # Above 1, a fetched batch is handled that many messages at a time, each in its
        # own transaction: for handlers that do not depend on the order of messages.
        self._concurrency = concurrency

    async def run(self, stopping: Stopping) -> None:
        """Fetch and handle until stopping is asked (or cancelled); survive outages with a
        pause. Asked to stop, it finishes the message in hand and naks the fetched ones
        it has not started, so that another replica takes them at once."""
        sub: JetStreamContext.PullSubscription | None = None
        try:
            while not stopping.requested:
                try:
                    if sub is None:
                        sub = await self._subscribe()
                    try:
                        msgs = await sub.fetch(self._batch, timeout=1.0)
                    except TimeoutError:  # nothing new (nats-py raises its own or asyncio's)
                        continue
                    if self._concurrency == 1:
                        for msg in msgs:
                            await self._handle_unless_stopping(msg, stopping)
                    else:
                        await self._handle_side_by_side(msgs, stopping)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # NATS or Postgres away: wait and go on
                    log.warning("consumer.failed", consumer=self.name, error=repr(exc))
                    await _dropped(sub)
                    sub = None
                    await stopping.pause(1.0)
        finally:
            await _dropped(sub)

    async def _handle_unless_stopping(self, msg: Msg, stopping: Stopping) -> None:
        if stopping.requested:
            await msg.nak()  # given back: redelivered now, here or to another replica
        else:
            await self.handle(msg)

    async def _handle_side_by_side(self, msgs: list[Msg], stopping: Stopping) -> None:
        gate = asyncio.Semaphore(self._concurrency)

        async def one(msg: Msg) -> None:
            async with gate:
                await self._handle_unless_stopping(msg, stopping)

        await asyncio.gather(*(one(m) for m in msgs))

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        return await self._js.pull_subscribe(
            self.filter,
            durable=self.name,
            stream=self.stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self._ack_wait,
                max_ack_pending=1000,
            ),
        )

    async def handle(self, msg: Msg) -> None:
        entry = self._handlers.get(msg.subject)
        if entry is None:
            await msg.ack()  # a fact this service does not care about
            return
        try:
            event = decode(msg.subject, msg.data)
        except (msgspec.DecodeError, UnknownSubject) as exc:
            await self._dead_letter(msg, None, f"undecodable: {exc}")
            return
        _, handler = entry
        structlog.contextvars.bind_contextvars(
            event_id=event.id, request_id=(msg.headers or {}).get("StackBE-Request-Id")
        )
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if await conn.fetchval(_INBOX, self.name, event.id) is None:
                    log.debug("inbox.duplicate", consumer=self.name, subject=msg.subject)
                else:
                    await handler(conn, event)
            await msg.ack()
        except PermanentError as exc:
            await self._dead_letter(msg, event.id, repr(exc))
        except Exception as exc:
            delivered = msg.metadata.num_delivered or 1
            if delivered >= MAX_DELIVERIES:
                await self._dead_letter(msg, event.id, f"gave up after {delivered}: {exc!r}")
            else:
                delay = backoff_for(delivered)
                log.warning(
                    "consumer.retry",
                    consumer=self.name,
                    subject=msg.subject,
                    error=repr(exc),
                    delay=delay,
                )
                await msg.nak(delay=delay)
        finally:
            structlog.contextvars.unbind_contextvars("event_id", "request_id")

    async def _dead_letter(self, msg: Msg, event_id: str | None, error: str) -> None:
        log.error("consumer.dead_lettered", consumer=self.name, subject=msg.subject, error=error)
        async with self._pool.acquire() as conn:
            await conn.execute(_DEAD, self.name, msg.subject, event_id, msg.data, error)
        await msg.term()


async def _dropped(sub: JetStreamContext.PullSubscription | None) -> None:
    """Unsubscribe (a subscription left behind would hold up the connection's drain)."""
    if sub is not None:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
