"""Reconciliation: read every subscription of each Stripe connection and repair ours
where it drifted (an event lost, a change made in Stripe's dashboard while StackBE was
away). Each repair is logged as ``stripe.reconciled`` with what changed. The worker runs
it every ``STACKBE_STRIPE_RECONCILE_SECONDS``; operators run
``python -m stackbe_subscriptions reconcile [--gateway gw_...]``."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from stackbe_common.crypto import DecryptionError
from stackbe_common.errors import StackBEError
from stackbe_common.logging import get_logger
from stackbe_common.stopping import Stopping

from . import gateway_repository as grepo
from . import schemas as s
from .deps import Deps
from .gateways import open_account
from .stripe_api import StripeAccount
from .stripe_sync import apply

__all__ = ["reconcile", "reconcile_periodically"]

log = get_logger(__name__)

WATCHED = ("status", "plan_id", "cancel_at_period_end", "current_period_end", "trial_end")


async def _one(
    pool: asyncpg.Pool,
    deps: Deps,
    gateway: asyncpg.Record,
    account: StripeAccount,
    listed: dict[str, Any],
) -> bool:
    """One Stripe subscription, in its own transaction and under its lock. The listed
    copy may be older than what a webhook just wrote, so it is only tried (and rolled
    back); where it differs from ours, the subscription is read again from Stripe and
    that is written. True when ours changed."""
    stripe_id = str(listed["id"])
    async with pool.acquire() as conn, conn.transaction():
        await grepo.lock_stripe_subscription(conn, gateway["id"], stripe_id)
        before = await grepo.subscription_by_stripe_id(conn, gateway["id"], stripe_id)
        probe = conn.transaction()
        await probe.start()
        try:
            tried = await apply(conn, deps, gateway, listed)
        finally:
            await probe.rollback()
        if tried is None or (before is not None and tried["version"] == before["version"]):
            return False
        after = await apply(conn, deps, gateway, await account.subscription(stripe_id))
    if after is None or (before is not None and before["version"] == after["version"]):
        return False
    changed = {
        k: [None if before is None else str(before[k]), str(after[k])]
        for k in WATCHED
        if before is None or before[k] != after[k]
    }
    log.warning(
        "stripe.reconciled",
        gateway_id=gateway["id"],
        subscription_id=after["id"],
        stripe_id=stripe_id,
        changed=changed,
    )
    return True


async def reconcile(
    pool: asyncpg.Pool, deps: Deps, gateway_id: str | None = None, stopping: Stopping | None = None
) -> list[s.Reconciled]:
    """Reconcile every live connection (or one), until stopping is asked. A connection
    that cannot be read (Stripe refuses its key, or its sealed key cannot be opened) is
    logged and reported with what was done before, and the others are still reconciled."""
    stopping = stopping or Stopping()
    async with pool.acquire() as conn:
        gateways = await grepo.live_gateways(conn, gateway_id)
    done = []
    for gateway in gateways:
        if stopping.requested:
            break
        tally = s.Reconciled(gateway_id=gateway["id"], checked=0, repaired=0)
        try:
            await _reconcile_gateway(pool, deps, gateway, tally, stopping)
        except (StackBEError, DecryptionError) as exc:  # reworded; never the key itself
            tally.error = (
                exc.message
                if isinstance(exc, StackBEError)
                else "The connection's keys cannot be opened with STACKBE_ENCRYPTION_KEY"
            )
            log.warning("stripe.reconcile_failed", gateway_id=gateway["id"], error=tally.error)
        done.append(tally)
    return done


async def _reconcile_gateway(
    pool: asyncpg.Pool,
    deps: Deps,
    gateway: asyncpg.Record,
    tally: s.Reconciled,
    stopping: Stopping,
) -> None:
    async with pool.acquire() as conn:
        account = await open_account(conn, deps, gateway["id"])
        ours = await grepo.stripe_subscription_ids(conn, gateway["id"])
    seen = set()
    async for theirs in account.subscriptions():
        if stopping.requested:
            return  # the next pass goes on from the start
        tally.checked += 1
        seen.add(theirs["id"])
        try:
            tally.repaired += await _one(pool, deps, gateway, account, theirs)
        except StackBEError as exc:
            log.warning(
                "stripe.reconcile_failed",
                gateway_id=gateway["id"],
                stripe_id=theirs["id"],
                error=exc.message,
            )
    for missing in sorted(ours - seen):
        log.warning("stripe.subscription_missing", gateway_id=gateway["id"], stripe_id=missing)
    log.info(
        "stripe.reconcile_done",
        gateway_id=gateway["id"],
        checked=tally.checked,
        repaired=tally.repaired,
    )


async def reconcile_periodically(pool: asyncpg.Pool, deps: Deps, stopping: Stopping) -> None:
    while not await stopping.pause(deps.settings.stripe_reconcile_seconds):
        try:
            await reconcile(pool, deps, stopping=stopping)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Stripe, Postgres or NATS away: log, try next time
            log.warning("stripe.reconcile_failed", error=repr(exc))
