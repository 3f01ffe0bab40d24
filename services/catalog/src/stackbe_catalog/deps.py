"""The catalog's collaborators, built once in ``create_app`` and passed down."""

from __future__ import annotations

from dataclasses import dataclass

from stackbe_common.clock import Clock


@dataclass(frozen=True)
class Deps:
    clock: Clock  # stamps events' occurredAt; tests pass a FixedClock
