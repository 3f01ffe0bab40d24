"""Errors of the webhooks API."""

from __future__ import annotations

from stackbe_common.errors import Conflict, Forbidden, NotFound

__all__ = [
    "EndpointDisabledError",
    "EndpointNotFound",
    "MessageNotFound",
    "UsageLimitExceeded",
]


class EndpointNotFound(NotFound):
    code = "ENDPOINT_NOT_FOUND"
    default_message = "Webhook endpoint not found"


class MessageNotFound(NotFound):
    code = "MESSAGE_NOT_FOUND"
    default_message = "Webhook message not found"


class EndpointDisabledError(Conflict):
    code = "ENDPOINT_DISABLED"
    default_message = "The endpoint is disabled: enable it first"


class UsageLimitExceeded(Forbidden):
    code = "USAGE_LIMIT_EXCEEDED"
    default_message = "The tenant's StackBE plan allows no more webhook endpoints"
