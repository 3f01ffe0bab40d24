"""The identity service's collaborators, built once in ``create_app`` and passed down."""

from __future__ import annotations

from dataclasses import dataclass

from stackbe_common.clock import Clock

from .billing import Billing
from .config import IdentitySettings
from .mail import Mailer
from .tokens import SigningKeys


@dataclass(frozen=True)
class Deps:
    settings: IdentitySettings
    keys: SigningKeys
    mailer: Mailer
    clock: Clock
    billing: Billing
