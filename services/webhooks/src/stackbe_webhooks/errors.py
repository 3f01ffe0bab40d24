"""Errors of the webhooks API."""

from __future__ import annotations

from stackbe_common.errors import Conflict, NotFound

__all__ = ["EndpointDisabledError", "EndpointNotFound", "MessageNotFound"]


class EndpointNotFound(NotFound):
    code = "ENDPOINT_NOT_FOUND"
    default_message = "Webhook endpoint not found"


class MessageNotFound(NotFound):
    code = "MESSAGE_NOT_FOUND"
    default_message = "Webhook message not found"


class EndpointDisabledError(Conflict):
    code = "ENDPOINT_DISABLED"
    default_message = "The endpoint is disabled: enable it first"
