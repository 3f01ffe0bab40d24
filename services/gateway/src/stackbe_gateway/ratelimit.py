"""Requests per credential per minute, counted in memory in fixed one-minute windows.

Choice: a fixed window aligned to the wall-clock minute, per gateway replica. All keys
share the window, so starting a new minute is dropping one dict: O(1) per request and
memory bounded by the callers seen in the current minute. The costs, accepted: a caller
may burst up to twice its limit across a minute boundary, and with N replicas behind a
load balancer the effective limit is up to N times the configured one (size the limits
per replica, or put sticky routing in front). No shared store is on the hot path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["RateLimiter", "Verdict"]

WINDOW_SECONDS = 60


class Verdict:
    """The outcome for one request, and the ``X-RateLimit-*`` headers that describe it."""

    __slots__ = ("allowed", "limit", "remaining", "reset")

    def __init__(self, allowed: bool, limit: int, remaining: int, reset: int) -> None:
        self.allowed, self.limit, self.remaining, self.reset = allowed, limit, remaining, reset

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset).encode()),
        ]


class RateLimiter:
    def __init__(
        self, clock: Callable[[], float] = time.time, window_seconds: int = WINDOW_SECONDS
    ) -> None:
        self._clock, self._size = clock, window_seconds
        self._window = -1
        self._counts: dict[str, int] = {}

    def hit(self, key: str, limit: int) -> Verdict:
        """Count one request for ``key``; a refused request is not counted."""
        now = self._clock()
        window = int(now // self._size)
        if window != self._window:
            self._window, self._counts = window, {}
        reset = max(1, math.ceil((window + 1) * self._size - now))
        count = self._counts.get(key, 0)
        if count >= limit:
            return Verdict(False, limit, 0, reset)
        self._counts[key] = count + 1
        return Verdict(True, limit, limit - count - 1, reset)
