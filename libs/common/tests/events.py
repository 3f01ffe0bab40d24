"""Event contracts used only by these tests, on their own stream."""

from __future__ import annotations

from stackbe_events import Event, register

CONTEXT = "commontest"


@register("stackbe.commontest.thing.happened.v1")
class ThingHappened(Event, frozen=True, kw_only=True):
    n: int
