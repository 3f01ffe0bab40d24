"""Last use of API keys, reported to identity in batches instead of one write per request."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec
from nats.aio.client import Client as NATS

from stackbe_common.logging import get_logger
from stackbe_events.rpc import KEYS_USED, KeysUsed

from .credentials import Credentials

__all__ = ["KeyUsageReporter"]

log = get_logger(__name__)


class KeyUsageReporter:
    """Every ``interval`` seconds, publish ``KeysUsed`` on core NATS; identity stores it."""

    def __init__(self, nc: NATS, credentials: Credentials, interval: float = 5.0) -> None:
        self._nc, self._credentials, self._interval = nc, credentials, interval

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.report()

    async def report(self) -> None:
        used = self._credentials.take_used()
        if not used:
            return
        batch = KeysUsed(
            used={key_id: datetime.fromtimestamp(at, UTC) for key_id, at in used.items()}
        )
        try:
            await self._nc.publish(KEYS_USED, msgspec.json.encode(batch))
        except Exception as exc:  # last use is advisory; try again with the next batch
            log.warning("key_use.report_failed", error=repr(exc), keys=len(used))
            self._credentials.restore_used(used)
