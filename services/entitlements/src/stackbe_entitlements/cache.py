"""Each replica's memory of projections and this period's usage: a warm check touches
neither Postgres nor another service.

Freshness comes from NATS, per replica (never the shared durable consumer):

- ``entitlements.updated`` events, read by an ordered consumer of this replica's own
  starting at new messages; every event is applied, cached customer or not, and the
  highest projection ``version`` wins, so a cold load racing an event cannot go back;
- usage counts, broadcast on core NATS by whichever replica recorded them; within a
  period a count only grows, so the highest wins.

A miss loads the customer's projection and this period's usage from Postgres once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import asyncpg
import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from prometheus_client import Counter

from stackbe_common.logging import get_logger
from stackbe_events import decode, rpc
from stackbe_events.entitlements import CustomerEntitlements, EntitlementsUpdated

from .projection import load

__all__ = ["USAGE_SUBJECT", "Cache", "UsageRecorded"]

log = get_logger(__name__)

USAGE_SUBJECT = rpc.USAGE_RECORDED
MAX_UNKNOWN = 100_000  # remembered unknown customer ids and externalIds, then forgotten
# An externalId found unknown is asked of Postgres again after this long. Its mapping
# normally arrives with the customer's projection event; should that event ever be
# missed, the replica finds the customer by itself within this time.
UNKNOWN_EXTERNAL_SECONDS = 2.0

LOADS = Counter(
    "stackbe_entitlements_cache_loads_total",
    "Reads from Postgres on a cache miss, by what was looked up",
    ["lookup"],
)


class UsageRecorded(msgspec.Struct, frozen=True, rename="camel"):
    customer_id: str
    metric: str
    period_start: datetime
    used: int


_usage = msgspec.json.Decoder(UsageRecorded)


class Cache:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._projections: dict[str, CustomerEntitlements] = {}
        self._external: dict[tuple[str, str], str] = {}
        self._unknown_external: dict[tuple[str, str], float] = {}  # -> when, monotonic
        self._usage: dict[tuple[str, str], tuple[datetime, int]] = {}
        self._loads: dict[str, asyncio.Future[CustomerEntitlements]] = {}
        self._unknown = 0

    # Applying what NATS says

    def apply(self, projection: CustomerEntitlements) -> None:
        cached = self._projections.get(projection.customer_id)
        if cached is not None and cached.version > projection.version:
            return
        self._projections[projection.customer_id] = projection
        if projection.external_id is not None:
            key = (projection.app_id, projection.external_id)
            self._external[key] = projection.customer_id
            self._unknown_external.pop(key, None)

    def count(self, customer_id: str, metric: str, period_start: datetime, used: int) -> None:
        key = (customer_id, metric)
        known = self._usage.get(key)
        if (
            known is None
            or known[0] < period_start
            or (known[0] == period_start and known[1] < used)
        ):
            self._usage[key] = (period_start, used)

    async def follow(self, nc: NATS) -> None:
        """Subscribe this replica to projection changes and usage counts."""

        async def on_projection(msg: Msg) -> None:
            try:
                event = decode(msg.subject, msg.data)
                if isinstance(event, EntitlementsUpdated):
                    self.apply(event.entitlements)
            except Exception as exc:  # a bad message must not stop the subscription
                log.warning("cache.event_skipped", error=repr(exc))

        async def on_usage(msg: Msg) -> None:
            try:
                seen = _usage.decode(msg.data)
                self.count(seen.customer_id, seen.metric, seen.period_start, seen.used)
            except msgspec.DecodeError as exc:
                log.warning("cache.usage_skipped", error=repr(exc))

        await nc.jetstream().subscribe(
            EntitlementsUpdated.subject,
            cb=on_projection,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )
        await nc.subscribe(USAGE_SUBJECT, cb=on_usage)

    # Reading

    def used(self, customer_id: str, metric: str, period_start: datetime | None) -> int:
        known = self._usage.get((customer_id, metric))
        if known is None or period_start is None or known[0] != period_start:
            return 0
        return known[1]

    async def projection(self, customer_id: str) -> CustomerEntitlements | None:
        """The customer's projection (None when there is none), from memory when warm."""
        cached = self._projections.get(customer_id)
        if cached is not None:
            return cached if cached.version > 0 else None
        pending = self._loads.get(customer_id)
        if pending is None:  # one load per customer, however many checks wait for it
            pending = asyncio.get_running_loop().create_future()
            self._loads[customer_id] = pending
            try:
                pending.set_result(await self._load(customer_id))
            except BaseException as exc:
                pending.set_exception(exc)
                raise
            finally:
                del self._loads[customer_id]
        loaded = await asyncio.shield(pending)
        return loaded if loaded.version > 0 else None

    async def _load(self, customer_id: str) -> CustomerEntitlements:
        LOADS.labels("customerId").inc()
        async with self._pool.acquire() as conn:
            found = await load(conn, customer_id)
            if found is None:
                self._forget_if_full()
                self._unknown += 1
                found = CustomerEntitlements(customer_id=customer_id, app_id="", version=0)
            elif found.current_period_start is not None:
                rows = await conn.fetch(
                    "SELECT metric, used FROM usage WHERE customer_id = $1 AND period_start = $2",
                    customer_id,
                    found.current_period_start,
                )
                for row in rows:
                    self.count(customer_id, row["metric"], found.current_period_start, row["used"])
        self.apply(found)
        return self._projections[customer_id]

    async def customer_of(self, app_id: str, external_id: str) -> str | None:
        """The app's customer with this externalId, if StackBE knows one."""
        key = (app_id, external_id)
        if key in self._external:
            return self._external[key]
        seen = self._unknown_external.get(key)
        if seen is not None and time.monotonic() - seen < UNKNOWN_EXTERNAL_SECONDS:
            return None
        LOADS.labels("externalId").inc()
        async with self._pool.acquire() as conn:
            found = await conn.fetchval(
                "SELECT id FROM customers WHERE app_id = $1 AND external_id = $2 LIMIT 1",
                app_id,
                external_id,
            )
        if found is None:
            self._forget_if_full()
            self._unknown_external[key] = time.monotonic()
            return None
        self._external[key] = found
        return str(found)

    def _forget_if_full(self) -> None:
        """Unknown ids are remembered to spare the database; not without bound."""
        if self._unknown + len(self._unknown_external) < MAX_UNKNOWN:
            return
        self._projections = {k: v for k, v in self._projections.items() if v.version > 0}
        self._unknown_external.clear()
        self._unknown = 0
