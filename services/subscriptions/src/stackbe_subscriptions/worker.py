"""The subscriptions worker: the outbox relay, the read-model consumers (which also make a
Stripe price for each new plan of a Stripe app), the gateway responder, the scheduler
that runs due transitions by each app's clock, Stripe reconciliation and housekeeping."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import asyncpg

from stackbe_common import bus, idempotency
from stackbe_common.clock import SystemClock
from stackbe_common.consumer import Consumer
from stackbe_common.db import create_pool
from stackbe_common.errors import Unavailable
from stackbe_common.housekeeping import run_periodically
from stackbe_common.logging import get_logger
from stackbe_common.outbox import OutboxRelay
from stackbe_common.service import ServiceSettings
from stackbe_common.stopping import Stopping

from . import portal
from . import repository as repo
from .app import SCHEMA
from .config import SubscriptionsSettings
from .consumers import catalog_handlers, responders
from .deps import Deps
from .lifecycle import app_now, run_due_until
from .readmodels import IDENTITY_HANDLERS, Lookups
from .reconcile import reconcile_periodically
from .stripe_api import StripeHttp
from .subscriptions import billing_for

log = get_logger(__name__)

HOUSEKEEPING_SECONDS = 600
IDLE_SECONDS = 1.0
FAILED_PAUSE_SECONDS = 60.0


class DueFailed(Exception):
    """Running one subscription's due transition failed (not the database or NATS)."""

    def __init__(self, subscription_id: str) -> None:
        super().__init__(subscription_id)
        self.subscription_id = subscription_id


async def run_due_once(pool: asyncpg.Pool, deps: Deps, skip: Collection[str] = ()) -> str | None:
    """Claim one due subscription (skipping those another replica holds, and ``skip``)
    and bring it up to its app's now; its id, or None when nothing is due."""
    async with pool.acquire() as conn, conn.transaction():
        claimed = await repo.claim_due(conn, 1, list(skip))
        if not claimed:
            return None
        sub_id = str(claimed[0]["id"])
        try:
            row = await repo.get_subscription(
                conn, claimed[0]["tenant_id"], claimed[0]["app_id"], sub_id
            )
            assert row is not None
            # Postgres found it due: run at least its first action, even if this host's
            # clock is a little behind the database's.
            now = max(await app_now(conn, deps, row["app_id"]), row["next_action_at"])
            await run_due_until(conn, row, now, billing_for(conn, deps))
        except (OSError, asyncpg.PostgresError, Unavailable):
            raise
        except Exception as exc:
            raise DueFailed(sub_id) from exc
        return sub_id


async def scheduler(pool: asyncpg.Pool, deps: Deps, stopping: Stopping) -> None:
    """Run due transitions as they fall due, until stopping is asked (each in its own
    transaction); replicas share the work through SKIP LOCKED. A subscription whose
    transition fails is set aside for a while, so that it cannot hold up the others."""
    failing: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    while not stopping.requested:
        failing = {k: until for k, until in failing.items() if until > loop.time()}
        try:
            while not stopping.requested and await run_due_once(pool, deps, failing):
                pass
        except asyncio.CancelledError:
            raise
        except DueFailed as exc:
            log.exception("scheduler.subscription_failed", subscription_id=exc.subscription_id)
            failing[exc.subscription_id] = loop.time() + FAILED_PAUSE_SECONDS
            continue
        except Exception as exc:  # Postgres or NATS away: log, wait, go on
            log.warning("scheduler.failed", error=repr(exc))
        await stopping.pause(IDLE_SECONDS)


async def run_worker(settings: ServiceSettings, stopping: Stopping) -> None:
    assert isinstance(settings, SubscriptionsSettings)
    pool = await create_pool(settings.database_url, SCHEMA, max_size=settings.database_pool_size)
    nc = await bus.connect(settings.nats_url, "stackbe-subscriptions-worker")
    js = nc.jetstream()
    deps = Deps(
        settings=settings,
        clock=SystemClock(),
        lookups=Lookups(nc, settings.rpc_timeout_seconds),
        stripe=StripeHttp(settings.stripe_api_base, settings.stripe_timeout_seconds),
    )
    consumers = [
        Consumer(
            name="subscriptions", context="identity", pool=pool, js=js, handlers=IDENTITY_HANDLERS
        ),
        Consumer(
            name="subscriptions",
            context="catalog",
            pool=pool,
            js=js,
            handlers=catalog_handlers(deps),
        ),
    ]
    try:
        await bus.ensure_streams(js, settings.streams, SCHEMA, "identity", "catalog")
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(bus.answer_until_stopped(stopping, *responders(nc, pool)))
            tasks.create_task(reconcile_periodically(pool, deps, stopping))
            tasks.create_task(OutboxRelay(pool, js, SCHEMA).run(stopping))
            for consumer in consumers:
                tasks.create_task(consumer.run(stopping))
            tasks.create_task(scheduler(pool, deps, stopping))
            tasks.create_task(
                run_periodically(
                    pool,
                    HOUSEKEEPING_SECONDS,
                    idempotency.prune,
                    portal.prune_expired,
                    stopping=stopping,
                )
            )
    finally:
        await asyncio.shield(nc.drain())
        assert deps.stripe is not None
        await deps.stripe.close()
        await pool.close()
