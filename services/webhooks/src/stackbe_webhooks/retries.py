"""When a failed delivery is tried again, and what an attempt came to."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

__all__ = ["BODY_KEPT", "LEASE_MARGIN", "SCHEDULE", "Outcome", "retry_delay"]

SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
JITTER = 0.2
RETRY_AFTER_STATUSES = frozenset({429, 502, 504})
MIN_RETRY_AFTER = timedelta(seconds=60)
MAX_RETRY_AFTER = timedelta(hours=24)
BODY_KEPT = 4096
LEASE_MARGIN = timedelta(seconds=5)  # a claim outlives the request timeout by this


def retry_delay(attempts: int, status: int | None, retry_after: str | None) -> timedelta:
    """The wait before the next attempt, after ``attempts`` failed ones."""
    if status in RETRY_AFTER_STATUSES and retry_after is not None:
        text = retry_after.strip()
        asked = None  # an HTTP date or nonsense: the schedule decides
        if text.isascii() and text.isdigit():
            asked = timedelta(seconds=min(int(text), int(MAX_RETRY_AFTER.total_seconds())))
        if asked is not None:
            return min(max(asked, MIN_RETRY_AFTER), MAX_RETRY_AFTER)
    base = SCHEDULE[min(attempts, len(SCHEDULE)) - 1]
    return base * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 (spread, not secrecy)


@dataclass(frozen=True)
class Outcome:
    status: int | None
    body: str | None
    duration_ms: int
    error: str | None
    retry_after: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300
