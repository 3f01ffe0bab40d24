"""The event envelope and the subject registry every producer and consumer shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, TypeVar

import msgspec

__all__ = ["REGISTRY", "Event", "event_type_for", "register", "stream_for", "subject_of"]


class Event(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Envelope fields every event carries; subclasses add their own."""

    subject: ClassVar[str]

    id: str
    occurred_at: datetime
    tenant_id: str
    app_id: str | None = None


E = TypeVar("E", bound=type[Event])

REGISTRY: dict[str, type[Event]] = {}


def register(subject: str) -> Any:
    """Class decorator: bind an event class to its subject, once."""

    def bind(cls: E) -> E:
        if subject in REGISTRY:
            raise ValueError(f"subject registered twice: {subject}")
        cls.subject = subject
        REGISTRY[subject] = cls
        return cls

    return bind


def subject_of(event: Event) -> str:
    return type(event).subject


def event_type_for(subject: str) -> type[Event] | None:
    return REGISTRY.get(subject)


def stream_for(context: str) -> tuple[str, str]:
    """(stream name, subject filter) for a producing context: ``STACKBE_IDENTITY``."""
    return f"STACKBE_{context.upper()}", f"stackbe.{context}.>"
