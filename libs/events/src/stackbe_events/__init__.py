"""StackBE event contracts: one frozen msgspec Struct per NATS subject and version.

Depends only on msgspec, so internal teams can install it to consume StackBE events::

    from stackbe_events import REGISTRY, decode
    event = decode(msg.subject, msg.data)
"""

from __future__ import annotations

import msgspec

from . import catalog, entitlements, identity, rpc, subscriptions, webhooks
from .base import REGISTRY, Event, event_type_for, register, stream_for, subject_of
from .catalog import (
    PlanArchived,
    PlanCreated,
    PlanDeprecated,
    PlanUpdated,
    ProductCreated,
    ProductUpdated,
)
from .identity import (
    ApiKeyCreated,
    ApiKeyRevoked,
    AppArchived,
    AppCreated,
    AppUpdated,
    CustomerCreated,
    CustomerUpdated,
    MemberAdded,
    MemberRemoved,
    MemberSignedOut,
    MemberUpdated,
    TenantCreated,
)

__all__ = [
    "REGISTRY",
    "ApiKeyCreated",
    "ApiKeyRevoked",
    "AppArchived",
    "AppCreated",
    "AppUpdated",
    "CustomerCreated",
    "CustomerUpdated",
    "Event",
    "MemberAdded",
    "MemberRemoved",
    "MemberSignedOut",
    "MemberUpdated",
    "PlanArchived",
    "PlanCreated",
    "PlanDeprecated",
    "PlanUpdated",
    "ProductCreated",
    "ProductUpdated",
    "TenantCreated",
    "UnknownSubject",
    "catalog",
    "decode",
    "encode",
    "entitlements",
    "event_type_for",
    "identity",
    "register",
    "rpc",
    "stream_for",
    "subject_of",
    "subscriptions",
    "webhooks",
]

CONTEXTS = ("identity", "catalog", "subscriptions", "entitlements", "webhooks")

_encoder = msgspec.json.Encoder()


class UnknownSubject(LookupError):
    """No contract is registered for this subject."""


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(subject: str, data: bytes) -> Event:
    """Decode a message by its subject; raises ``UnknownSubject`` or ``msgspec.DecodeError``."""
    cls = event_type_for(subject)
    if cls is None:
        raise UnknownSubject(subject)
    return msgspec.json.decode(data, type=cls)
