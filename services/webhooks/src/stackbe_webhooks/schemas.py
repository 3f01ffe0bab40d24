"""Request and response bodies of the webhooks API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from stackbe_common.fields import Input, Moment, Output, Text

from .fanout import EVENT_TYPES

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
Url = Annotated[str, Meta(min_length=1, max_length=2048, pattern=r"^https?://[^\s\x00\\]+$")]
EventTypes = Annotated[list[EventType], Meta(min_length=1, max_length=len(EVENT_TYPES))]
EndpointId = Annotated[str, Meta(pattern=r"^we_[0-9a-z]{26}$")]
DeliveryStatus = Literal["pending", "delivered", "failed"]


class CreateEndpoint(Input, frozen=True):
    url: Url
    events: EventTypes | None = None  # every type when absent
    description: Text | None = None


class UpdateEndpoint(Input, frozen=True):
    url: Url | msgspec.UnsetType = msgspec.UNSET
    events: EventTypes | msgspec.UnsetType | None = msgspec.UNSET
    description: Text | msgspec.UnsetType | None = msgspec.UNSET


class Recover(Input, frozen=True):
    since: Moment


class Retry(Input, frozen=True):
    endpoint_id: EndpointId | None = None


class Endpoint(Output, omit_defaults=False):
    id: str
    app_id: str
    url: str
    events: list[str]
    description: str | None
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str | msgspec.UnsetType = msgspec.UNSET  # on creation and rotation only


class Delivery(Output):
    endpoint_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_response_status: int | None
    delivered_at: datetime | None


class Message(Output):
    id: str
    event_type: str
    created_at: datetime
    payload: Any
    deliveries: list[Delivery]


class Attempt(Output):
    id: str
    message_id: str
    endpoint_id: str
    attempted_at: datetime
    response_status: int | None
    response_body: str | None
    duration_ms: int
    error: str | None


class Recovered(Output):
    endpoint_id: str
    recovered: int
