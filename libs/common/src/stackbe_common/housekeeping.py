"""A worker's periodic clean-up: run each job on a pooled connection, every so often."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from .logging import get_logger
from .stopping import Stopping

__all__ = ["Job", "run_periodically"]

log = get_logger(__name__)

Job = Callable[[asyncpg.Connection], Awaitable[Any]]


async def run_periodically(
    pool: asyncpg.Pool, seconds: float, *jobs: Job, stopping: Stopping
) -> None:
    """Run ``jobs`` now and then every ``seconds`` until stopping is asked; a failure is
    logged and retried later."""
    while not stopping.requested:
        try:
            async with pool.acquire() as conn:
                for job in jobs:
                    await job(conn)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("housekeeping.failed", error=repr(exc))
        await stopping.pause(seconds)
