"""Standard Webhooks signing: ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, one signature per
secret in use (two during a rotation)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["PREFIX", "headers", "new_secret", "signature"]

PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks asks for 24 to 64


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(
    secrets_in_use: list[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "accept-encoding": "identity",  # the first 4 KB of the answer are kept as text
        "user-agent": "StackBE-Webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, message_id, timestamp, body) for secret in secrets_in_use
        ),
    }
