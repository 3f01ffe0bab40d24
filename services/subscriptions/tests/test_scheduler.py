"""The worker's scheduler runs due transitions in real time, and replicas side by side
share them without running one twice (rows claimed with SKIP LOCKED)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import nats
import pytest
from litestar.testing import AsyncTestClient

from stackbe_common.clock import SystemClock
from stackbe_subscriptions.app import create_app
from stackbe_subscriptions.deps import Deps
from stackbe_subscriptions.readmodels import Lookups
from stackbe_subscriptions.worker import run_due_once

from .conftest import Api, subjects


@pytest.fixture
async def unpaid_expire_at_once(
    subscriptions_settings, subscriptions_db, internal_secret
) -> AsyncIterator[Api]:
    """The service configured so that an unpaid first charge expires at once."""
    settings = msgspec.structs.replace(subscriptions_settings, incomplete_hours=0)
    async with AsyncTestClient(create_app(settings)) as client:
        yield Api(client, internal_secret)


async def test_two_replicas_run_every_due_transition_once(
    unpaid_expire_at_once, app, pool, subscriptions_settings, nats_url
):
    api = unpaid_expire_at_once
    await app.plan("Pro", 2900)
    subs = [await api.subscribe(app, "Pro", outcome="failed") for _ in range(12)]
    assert {s["status"] for s in subs} == {"incomplete"}

    nc = await nats.connect(nats_url)
    deps = Deps(
        settings=subscriptions_settings,
        clock=SystemClock(),
        lookups=Lookups(nc, subscriptions_settings.rpc_timeout_seconds),
    )
    ran: list[str] = []

    async def replica() -> None:
        while (sub_id := await run_due_once(pool, deps)) is not None:
            ran.append(sub_id)

    try:
        await asyncio.gather(replica(), replica())
    finally:
        await nc.close()

    # Another worker on this database (the end-to-end platform's) may take some of them:
    # whoever ran one, it ran once, which the events below show.
    mine = [sub_id for sub_id in ran if sub_id in {s["id"] for s in subs}]
    assert len(mine) == len(set(mine))
    async with pool.acquire() as db:
        for sub in subs:
            assert await subjects(db, sub["id"]) == [("created", 1), ("canceled", 2)]
            row = await db.fetchrow(
                "SELECT status, next_action_at FROM subscriptions WHERE id = $1", sub["id"]
            )
            assert (row["status"], row["next_action_at"]) == ("canceled", None)
