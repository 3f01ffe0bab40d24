"""The webhooks service's collaborators, built in ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from stackbe_common.clock import Clock
from stackbe_common.crypto import Keyring

from .config import WebhooksSettings
from .ssrf import Guard


@dataclass
class Deps:
    settings: WebhooksSettings
    clock: Clock
    keyring: Keyring
    guard: Guard
