"""Delivery workers: claim due deliveries, sign, POST, record, and schedule what failed.

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
from datetime import datetime, timedelta

import aiohttp
import asyncpg

from stackbe_common import outbox
from stackbe_common.clock import Clock
from stackbe_common.crypto import DecryptionError, Keyring
from stackbe_common.ids import new_id
from stackbe_common.logging import get_logger
from stackbe_common.stopping import Stopping
from stackbe_events.webhooks import MessageExhausted

from . import signing
from .config import WebhooksSettings
from .disabling import disable_endpoint
from .fanout import DUE_CHANNEL
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
            await self._record(row, outcome)
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

    async def _record(self, row: asyncpg.Record, outcome: Outcome) -> None:
        """The attempt, and the delivery's next step, if this worker still holds the claim
        (a worker whose lease ran out logs its attempt and changes nothing else)."""
        now = self._clock.now()
        message, endpoint = row["message_id"], row["endpoint_id"]
        async with self._pool.acquire() as conn, conn.transaction():
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
            await self._failed(conn, row, held, status == "enabled", outcome, now)

    async def _failed(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        held: asyncpg.Record,
        enabled: bool,
        outcome: Outcome,
        now: datetime,
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
        if now - failing_since >= self._disable_after:
            await disable_endpoint(conn, endpoint, "failing", now)


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
