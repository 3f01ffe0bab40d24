"""The subscriptions service's collaborators, built in ``create_app`` and its lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from stackbe_common.clock import Clock

from .config import SubscriptionsSettings
from .readmodels import Lookups
from .stripe_api import StripeHttp


@dataclass
class Deps:
    settings: SubscriptionsSettings
    clock: Clock  # the wall clock; an app's time adds its sandbox test clock's offset
    lookups: Lookups | None = None  # set once NATS is connected
    stripe: StripeHttp | None = None  # set once the event loop runs
