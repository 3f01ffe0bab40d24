"""The check rules: may this customer use this feature now? Pure functions of the
customer's projection and this period's usage.

- No subscription with access (trialing, active, or past_due before its grace period
  ends) -> ``NO_ACTIVE_SUBSCRIPTION``.
- A top-level key decides by its value: a boolean as is; an integer when it is not 0 and
  usage + quantity stays within it (-1 is unlimited), else ``LIMIT_EXCEEDED``; a string
  when it is not empty; a list when it is not empty, or, given ``value``, contains it.
- A name that is not a key but is listed in ``features`` has access.
- Anything else -> ``FEATURE_NOT_AVAILABLE``.

``quantity`` defaults to 1: "may the customer use one more?".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from stackbe_events.entitlements import CustomerEntitlements

__all__ = ["ACCESS_STATUSES", "Verdict", "check", "has_access", "limit_of"]

ACCESS_STATUSES = frozenset({"trialing", "active", "past_due"})
FEATURES = "features"
UNLIMITED = -1

Reason = Literal["NO_ACTIVE_SUBSCRIPTION", "FEATURE_NOT_AVAILABLE", "LIMIT_EXCEEDED"]


@dataclass(frozen=True)
class Verdict:
    feature: str
    has_access: bool
    value: Any = None
    reason: Reason | None = None
    remaining: int | None = None


def has_access(projection: CustomerEntitlements, now: datetime) -> bool:
    """Whether the customer's subscription grants anything at ``now``."""
    if projection.status not in ACCESS_STATUSES:
        return False
    grace = projection.grace_ends_at
    return not (projection.status == "past_due" and grace is not None and now >= grace)


def limit_of(entitlements: Mapping[str, Any], metric: str) -> int | None:
    """The metric's limit: its integer entitlement (-1 unlimited), or None if not metered."""
    value = entitlements.get(metric)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def check(
    projection: CustomerEntitlements,
    feature: str,
    now: datetime,
    *,
    used: int = 0,
    quantity: int = 1,
    value: str | None = None,
) -> Verdict:
    """The answer for one feature; ``used`` is this period's usage of it."""
    if not has_access(projection, now):
        return Verdict(feature, False, reason="NO_ACTIVE_SUBSCRIPTION")
    entitlements = projection.entitlements
    if feature not in entitlements:
        listed = entitlements.get(FEATURES)
        if isinstance(listed, list) and feature in listed:
            return Verdict(feature, True, value=True)
        return Verdict(feature, False, reason="FEATURE_NOT_AVAILABLE")
    granted = entitlements[feature]
    if isinstance(granted, bool):
        return Verdict(feature, granted, granted, None if granted else "FEATURE_NOT_AVAILABLE")
    if isinstance(granted, int):
        return _limit(feature, granted, used, quantity)
    if isinstance(granted, str):
        ok = granted != ""
        return Verdict(feature, ok, granted, None if ok else "FEATURE_NOT_AVAILABLE")
    ok = bool(granted) and (value is None or value in granted)
    return Verdict(feature, ok, granted, None if ok else "FEATURE_NOT_AVAILABLE")


def _limit(feature: str, limit: int, used: int, quantity: int) -> Verdict:
    if limit == UNLIMITED:
        return Verdict(feature, True, limit)
    if limit == 0:
        return Verdict(feature, False, limit, "FEATURE_NOT_AVAILABLE", remaining=0)
    remaining = max(0, limit - used)
    if used + quantity <= limit:
        return Verdict(feature, True, limit, remaining=remaining)
    return Verdict(feature, False, limit, "LIMIT_EXCEEDED", remaining=remaining)
