"""Conditions the entitlements service reports; statuses come from their kinds at the edge."""

from __future__ import annotations

from stackbe_common.errors import Forbidden, NotFound


class UsageLimitExceeded(Forbidden):
    code = "USAGE_LIMIT_EXCEEDED"
    default_message = "This would take the customer over the plan's limit"


class NoActiveSubscription(Forbidden):
    code = "NO_ACTIVE_SUBSCRIPTION"
    default_message = "The customer has no subscription with access in this app"


class MetricNotFound(NotFound):
    code = "METRIC_NOT_FOUND"
    default_message = "The customer's plan has no integer entitlement with this name"
