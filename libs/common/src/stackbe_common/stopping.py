"""Stopping a worker gently: asked once (SIGTERM), heard by every loop of the process.

A worker's loops check ``stopping.requested`` between units of work and sleep with
``stopping.pause``: asked to stop, a consumer finishes the message it holds and gives back
the ones it fetched but has not started, the outbox relay finishes its batch, webhook
delivery waits for its requests in flight, and periodic jobs stop waiting. ``service``
cancels whatever is still running when the grace period ends.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Stopping"]


class Stopping:
    def __init__(self) -> None:
        self._asked = asyncio.Event()
        self._wakes: list[asyncio.Event] = []

    @property
    def requested(self) -> bool:
        return self._asked.is_set()

    def request(self) -> None:
        """Ask every loop to stop, waking those that sleep on an event of their own."""
        self._asked.set()
        for wake in self._wakes:
            wake.set()

    def wakes(self, event: asyncio.Event) -> None:
        """Set ``event`` too when stopping is asked (a loop that waits on it wakes up)."""
        self._wakes.append(event)
        if self.requested:
            event.set()

    async def pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, less if stopping is asked; whether it was."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._asked.wait(), seconds)
        return self.requested

    async def wait(self) -> None:
        await self._asked.wait()
