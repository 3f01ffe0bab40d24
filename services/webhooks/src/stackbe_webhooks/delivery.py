"""Delivery workers: claim due deliveries, sign and POST them; ``recording`` records each
attempt and schedules what failed.

- Claiming: due rows are leased with ``FOR UPDATE SKIP LOCKED`` so replicas run side by
  side; a lease outlives the request timeout, so a worker killed mid-delivery leaves a
  row that another (or the restarted one) picks up once the lease ends, with the same
  ``webhook-id``.
- Fairness: at most ``webhook_endpoint_concurrency`` deliveries per endpoint are in
  flight in one worker, so a slow or hanging endpoint never holds the slots other
  endpoints need.
- Outcome: a 2xx within the timeout is a success; redirects are not followed (a 3xx is a
  failure). Failures retry after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h,
  each +/-20%; 429, 502 and 504 honour ``Retry-After`` (at least 60 s). 410 disables the
  endpoint; so does failing continuously for ``webhook_disable_after_days``. After the
  last scheduled attempt the message is exhausted (``message.exhausted``).
- Time comes from the clock the worker is given: tests drive retries with a clock they
  move.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

import aiohttp
import asyncpg

from stackbe_common.clock import Clock
from stackbe_common.crypto import DecryptionError, Keyring
from stackbe_common.logging import get_logger
from stackbe_common.stopping import Stopping

from . import signing
from .config import WebhooksSettings
from .disabling import disable_endpoint
from .fanout import DUE_CHANNEL
from .recording import record
from .retries import BODY_KEPT, LEASE_MARGIN, SCHEDULE, Outcome, retry_delay
from .sealing import secrets_in_use
from .ssrf import AddressRefused, Guard, GuardedResolver, parse_networks

__all__ = ["SCHEDULE", "DeliveryWorker", "Outcome", "disable_endpoint", "retry_delay"]

log = get_logger(__name__)

_CLAIM = """
WITH ready AS (  -- endpoints with something due, and how much more each may take now
    SELECT e.id, $4 - coalesce(busy.in_flight, 0) AS room
    FROM (
        SELECT DISTINCT endpoint_id FROM deliveries
        WHERE status = 'pending' AND next_attempt_at <= $1
          AND (leased_until IS NULL OR leased_until <= $1)
    ) due
    JOIN endpoints e ON e.id = due.endpoint_id AND e.status = 'enabled'
    LEFT JOIN unnest($2::text[], $3::int[]) AS busy (endpoint_id, in_flight)
        ON busy.endpoint_id = e.id
    WHERE $4 - coalesce(busy.in_flight, 0) > 0
), held AS (  -- each endpoint's oldest due deliveries nobody holds
    SELECT d.message_id, d.endpoint_id, d.next_attempt_at
    FROM ready
    CROSS JOIN LATERAL (
        SELECT message_id, endpoint_id, next_attempt_at FROM deliveries
        WHERE endpoint_id = ready.id AND status = 'pending' AND next_attempt_at <= $1
          AND (leased_until IS NULL OR leased_until <= $1)
        ORDER BY next_attempt_at
        LIMIT ready.room
        FOR UPDATE SKIP LOCKED
    ) d
), picked AS (  -- round robin: every endpoint's oldest first, then their second, ...
    SELECT message_id, endpoint_id FROM (
        SELECT message_id, endpoint_id, next_attempt_at,
               row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at) AS place
        FROM held
    ) ranked
    ORDER BY place, next_attempt_at
    LIMIT $5
)
UPDATE deliveries d SET leased_until = $1 + $6::interval, lease_token = gen_random_uuid()::text
FROM picked, messages m, endpoints e
WHERE d.message_id = picked.message_id AND d.endpoint_id = picked.endpoint_id
  AND m.id = d.message_id AND e.id = d.endpoint_id AND e.status = 'enabled'
RETURNING d.message_id, d.endpoint_id, d.tenant_id, d.app_id, d.lease_token,
          m.payload, m.event_type, e.url, e.secret, e.previous_secret,
          e.previous_secret_until
"""


class DeliveryWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        keyring: Keyring,
        settings: WebhooksSettings,
        clock: Clock,
        *,
        poll_seconds: float = 1.0,
    ) -> None:
        self._pool, self._keyring, self._clock = pool, keyring, clock
        self._timeout = settings.webhook_timeout_seconds
        self._lease = timedelta(seconds=settings.webhook_timeout_seconds) + LEASE_MARGIN
        self._per_endpoint = settings.webhook_endpoint_concurrency
        self._slots = settings.webhook_concurrency
        self._disable_after = timedelta(days=settings.webhook_disable_after_days)
        self._guard = Guard(parse_networks(settings.webhook_allowed_networks))
        self._poll = poll_seconds
        self._in_flight: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    # Running

    async def __aenter__(self) -> DeliveryWorker:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self._guard), limit=self._slots, limit_per_host=0
        )
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, trust_env=False
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.settle()
        if self._session is not None:
            await self._session.close()

    async def run(self, stopping: Stopping) -> None:
        """Deliver until stopping is asked (or cancelled): woken by new deliveries, polling
        for retries. Asked to stop, it claims nothing more and waits for the requests in
        flight, so that each is recorded; cancelled, they are dropped, and their leases
        end for another worker to take over."""
        stopping.wakes(self._wake)
        listener: asyncpg.Connection | None = None
        try:
            while not stopping.requested:
                try:
                    if listener is None or listener.is_closed():
                        listener = await self._pool.acquire()
                        await listener.add_listener(DUE_CHANNEL, self._on_due)
                    if not stopping.requested:
                        self._wake.clear()
                        await self.dispatch()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll)
                except Exception as exc:  # Postgres away: wait and go on
                    log.warning("webhooks.dispatch_failed", error=repr(exc))
                    if listener is not None:
                        with contextlib.suppress(Exception):
                            await listener.remove_listener(DUE_CHANNEL, self._on_due)
                        with contextlib.suppress(Exception):
                            await self._pool.release(listener)
                        listener = None
                    await stopping.pause(self._poll)
            await self.settle()
        finally:
            for task in self._tasks:
                task.cancel()
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.remove_listener(DUE_CHANNEL, self._on_due)
                with contextlib.suppress(Exception):
                    await self._pool.release(listener)

    def _on_due(self, *_: object) -> None:
        self._wake.set()

    async def dispatch(self) -> int:
        """Claim what is due and start each delivery; how many were started."""
        started = 0
        while (free := self._slots - len(self._tasks)) > 0:
            busy = [(e, n) for e, n in self._in_flight.items() if n > 0]
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    _CLAIM,
                    self._clock.now(),
                    [e for e, _ in busy],
                    [n for _, n in busy],
                    self._per_endpoint,
                    min(free, 100),
                    self._lease,
                )
            for row in rows:
                endpoint = row["endpoint_id"]
                self._in_flight[endpoint] = self._in_flight.get(endpoint, 0) + 1
                task = asyncio.create_task(self._deliver(row))
                self._tasks.add(task)
                task.add_done_callback(self._finished)
            started += len(rows)
            if len(rows) < min(free, 100):
                break
        return started

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()  # a slot is free: the endpoint may have more waiting

    async def settle(self) -> None:
        """Wait for the deliveries in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def deliver_due(self) -> int:
        """Claim and deliver until nothing is due at the clock's time (tests, operators)."""
        total = 0
        while started := await self.dispatch():
            total += started
            await self.settle()
        return total

    # One delivery

    async def _deliver(self, row: asyncpg.Record) -> None:
        endpoint = row["endpoint_id"]
        try:
            outcome = await self._attempt(row)
            await record(self._pool, row, outcome, self._clock.now(), self._disable_after)
        except Exception as exc:  # recorded next time: the lease ends and it is retried
            log.error("webhooks.delivery_crashed", endpoint_id=endpoint, error=repr(exc))
        finally:
            self._in_flight[endpoint] -= 1
            if not self._in_flight[endpoint]:
                del self._in_flight[endpoint]

    async def _attempt(self, row: asyncpg.Record) -> Outcome:
        assert self._session is not None, "use the worker as an async context manager"
        body: bytes = row["payload"]
        started = time.perf_counter()
        try:
            signing_secrets = secrets_in_use(self._keyring, row, self._clock.now())
        except DecryptionError as exc:  # its key left STACKBE_ENCRYPTION_KEY: rotate the secret
            return Outcome(None, None, 0, f"the signing secret cannot be decrypted: {exc}")
        headers = signing.headers(
            signing_secrets,
            row["message_id"],
            int(time.time()),  # the receiver's replay window is about its wall clock
            body,
        )

        def took() -> int:
            return round((time.perf_counter() - started) * 1000)

        try:
            self._guard.check_literal(row["url"])  # names are checked by the resolver
            async with self._session.post(
                row["url"],
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as answer:
                kept = await _read_some(answer.content, BODY_KEPT)
                return Outcome(
                    status=answer.status,
                    body=kept.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
                    duration_ms=took(),
                    error=None if answer.status < 300 else f"HTTP {answer.status}",
                    retry_after=answer.headers.get("Retry-After"),
                )
        except TimeoutError:
            return Outcome(None, None, took(), f"no answer within {self._timeout:g} s")
        except AddressRefused as exc:
            return Outcome(None, None, took(), f"refused: {exc}")
        except (aiohttp.ClientError, OSError) as exc:
            refused = _refusal(exc)
            if refused is not None:
                return Outcome(None, None, took(), f"refused: {refused}")
            return Outcome(None, None, took(), f"{type(exc).__name__}: {exc}"[:500])


def _refusal(exc: BaseException) -> AddressRefused | None:
    """The guard's refusal behind a connection error, if that is what it was."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, AddressRefused):
            return seen
        seen = getattr(seen, "os_error", None) or seen.__cause__ or seen.__context__
    return None


async def _read_some(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body; the rest is not waited for."""
    chunks, size = [], 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
