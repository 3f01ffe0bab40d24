"""Keeping every replica's credential cache honest: a revocation stops a credential at once.

Choice: each replica holds plain core-NATS subscriptions (no queue group, never a shared
durable consumer) on the identity subjects in ``HANDLERS``. A JetStream publish to a
stream subject is also delivered to core subscribers of that subject, so every replica
sees every revocation within milliseconds of identity's outbox publishing it. Core NATS
does not redeliver, so gaps heal three ways:

- on reconnect, and on a slow-consumer error, every cached key and app is flushed, so the
  next request asks identity again (misses and tombstones stay: they are facts);
- cached entries live at most ``credentials.POSITIVE_TTL`` seconds, bounding any gap we
  failed to notice;
- member events cannot be healed by a flush (access tokens are self-contained), so on
  start and after every reconnect the replica replays the last hour of
  ``stackbe.identity.member.>`` from the STACKBE_IDENTITY stream through a short-lived
  ephemeral consumer of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from stackbe_common.ids import new_id
from stackbe_common.logging import get_logger
from stackbe_events import (
    ApiKeyRevoked,
    AppArchived,
    Event,
    MemberRemoved,
    MemberSignedOut,
    MemberUpdated,
    decode,
    stream_for,
)

from .credentials import MEMBER_TOMBSTONE_SECONDS, Credentials

__all__ = ["HANDLERS", "RevocationFeed"]

log = get_logger(__name__)

HANDLERS: dict[type[Event], Callable[[Credentials, Any], None]] = {
    ApiKeyRevoked: Credentials.key_revoked,
    AppArchived: Credentials.app_archived,
    MemberRemoved: Credentials.member_removed,
    MemberSignedOut: Credentials.member_signed_out,
    MemberUpdated: Credentials.member_updated,
}
REPLAYED_SUBJECTS = "stackbe.identity.member.>"
STREAM, _ = stream_for("identity")


class RevocationFeed:
    def __init__(self, nc: NATS, credentials: Credentials) -> None:
        self._nc, self._credentials = nc, credentials
        self._subs: list[Subscription] = []
        self._replay: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for event_type in HANDLERS:
            self._subs.append(await self._nc.subscribe(event_type.subject, cb=self._on_msg))
        await self.replay_member_events()

    async def stop(self) -> None:
        if self._replay is not None:
            self._replay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replay
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def reconnected(self) -> None:
        """Messages may have been lost while disconnected: forget, then replay members."""
        self._credentials.flush()
        if self._replay is None or self._replay.done():
            self._replay = asyncio.create_task(self.replay_member_events())

    def lost_messages(self) -> None:
        self._credentials.flush()

    async def _on_msg(self, msg: Msg) -> None:
        self.apply(msg.subject, msg.data)

    def apply(self, subject: str, data: bytes) -> None:
        try:
            event = decode(subject, data)
        except Exception:
            log.warning("revocation.undecodable", subject=subject)
            return
        handler = HANDLERS.get(type(event))
        if handler is not None:
            handler(self._credentials, event)

    async def replay_member_events(self) -> None:
        """Apply the member events of the last hour from the stream (best effort)."""
        js = self._nc.jetstream()
        name = new_id("gwreplay")
        since = datetime.now(UTC) - timedelta(seconds=MEMBER_TOMBSTONE_SECONDS)
        config = ConsumerConfig(
            name=name,
            filter_subject=REPLAYED_SUBJECTS,
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=since,
            ack_policy=AckPolicy.ALL,
            inactive_threshold=60.0,
            mem_storage=True,
        )
        try:
            info = await js.add_consumer(STREAM, config)
        except NotFoundError:
            log.info("revocation.no_stream", stream=STREAM)
            return
        except Exception as exc:
            log.warning("revocation.replay_failed", error=repr(exc))
            return
        try:
            pending = info.num_pending or 0
            if pending:
                psub = await js.pull_subscribe_bind(consumer=name, stream=STREAM)
                try:
                    while pending > 0:
                        msgs = await psub.fetch(batch=min(pending, 256), timeout=5)
                        for msg in msgs:
                            self.apply(msg.subject, msg.data)
                        await msgs[-1].ack()
                        pending -= len(msgs)
                finally:
                    await psub.unsubscribe()
            log.info("revocation.replayed", events=info.num_pending or 0)
        except Exception as exc:
            log.warning("revocation.replay_failed", error=repr(exc))
        finally:
            with contextlib.suppress(Exception):
                await js.delete_consumer(STREAM, name)
