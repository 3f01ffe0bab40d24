"""Events produced by the webhooks service (stream ``STACKBE_WEBHOOKS``)."""

from __future__ import annotations

from datetime import datetime

from .base import Event, register

__all__ = ["EndpointDisabled", "MessageExhausted"]


@register("stackbe.webhooks.endpoint.disabled.v1")
class EndpointDisabled(Event, frozen=True, kw_only=True):
    """An endpoint stopped receiving: it answered 410, or failed for the whole window.

    ``reason`` is ``gone`` (410) or ``failing`` (every attempt failed since
    ``failingSince``)."""

    endpoint_id: str
    url: str
    reason: str
    failing_since: datetime | None = None


@register("stackbe.webhooks.message.exhausted.v1")
class MessageExhausted(Event, frozen=True, kw_only=True):
    """Every scheduled attempt to deliver a message to an endpoint failed."""

    message_id: str
    endpoint_id: str
    event_type: str
    attempts: int
