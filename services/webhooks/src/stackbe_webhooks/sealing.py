"""Endpoint signing secrets, sealed at rest under the keyring and bound to the endpoint id."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from stackbe_common.crypto import Keyring

__all__ = ["seal", "secrets_in_use", "unseal"]


def seal(keyring: Keyring, endpoint_id: str, secret: str) -> bytes:
    return keyring.encrypt(secret.encode(), endpoint_id.encode())


def unseal(keyring: Keyring, endpoint_id: str, sealed: bytes) -> str:
    return keyring.decrypt(sealed, endpoint_id.encode()).decode()


def secrets_in_use(keyring: Keyring, row: asyncpg.Record, now: datetime) -> list[str]:
    """The current secret, and the previous one while its 24 hours after a rotation last."""
    found = [unseal(keyring, row["endpoint_id"], row["secret"])]
    until = row["previous_secret_until"]
    if row["previous_secret"] is not None and until is not None and now < until:
        found.append(unseal(keyring, row["endpoint_id"], row["previous_secret"]))
    return found
