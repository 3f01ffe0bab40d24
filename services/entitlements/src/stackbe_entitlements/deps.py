"""The entitlements service's collaborators, set up in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NATS

from .cache import Cache
from .config import EntitlementsSettings


@dataclass
class Deps:
    settings: EntitlementsSettings
    cache: Cache | None = None  # this replica's memory, once Postgres and NATS are up
    nc: NATS | None = None

    @property
    def ready(self) -> tuple[Cache, NATS]:
        assert self.cache is not None and self.nc is not None, "used before the lifespan ran"
        return self.cache, self.nc
