"""``Idempotency-Key`` on POST: the first response is stored with the effect, in its
transaction, for 24 h per (scope, key) with a fingerprint of the request; a replay
returns it byte for byte; the same key with another request is 409.

Concurrent requests with one key are serialised by a transaction-scoped advisory lock,
so the second waits for the first and then replays it. A stored response may hold a
secret shown once (a new API key), so it is kept encrypted (AES-256-GCM).
"""

from __future__ import annotations

import hashlib

import asyncpg
import msgspec

from .crypto import Keyring
from .errors import IdempotencyKeyReused, InvalidInput

__all__ = ["TTL_HOURS", "StoredResponse", "check_key", "fingerprint", "lookup", "store"]

TTL_HOURS = 24


class StoredResponse(msgspec.Struct, frozen=True):
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def check_key(raw: bytes) -> str:
    key = raw.decode("latin-1")
    if not 1 <= len(key) <= 255:
        raise InvalidInput("Idempotency-Key must be 1 to 255 characters", field="Idempotency-Key")
    return key


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))"
_LOOKUP = """
SELECT fingerprint, sealed_response FROM idempotency_keys
WHERE scope_key = $1 AND key = $2
  AND created_at > now() - make_interval(hours => $3)
"""
_STORE = """
INSERT INTO idempotency_keys (scope_key, key, fingerprint, sealed_response)
VALUES ($1, $2, $3, $4)
ON CONFLICT (scope_key, key) DO UPDATE SET
    fingerprint = EXCLUDED.fingerprint, sealed_response = EXCLUDED.sealed_response,
    created_at = now()
"""


_encode = msgspec.msgpack.Encoder()
_decode = msgspec.msgpack.Decoder(StoredResponse)


async def lookup(
    conn: asyncpg.Connection, keyring: Keyring, scope_key: str, key: str, print_: str
) -> StoredResponse | None:
    """Lock the key for this transaction and return its stored response, if any."""
    await conn.execute(_LOCK, scope_key, key)
    row = await conn.fetchrow(_LOOKUP, scope_key, key, TTL_HOURS)
    if row is None:
        return None
    if row["fingerprint"] != print_:
        raise IdempotencyKeyReused()
    return _decode.decode(keyring.decrypt(row["sealed_response"], f"{scope_key}:{key}".encode()))


async def store(
    conn: asyncpg.Connection,
    keyring: Keyring,
    scope_key: str,
    key: str,
    print_: str,
    response: StoredResponse,
) -> None:
    sealed = keyring.encrypt(_encode.encode(response), f"{scope_key}:{key}".encode())
    await conn.execute(_STORE, scope_key, key, print_, sealed)


async def prune(conn: asyncpg.Connection) -> str:
    return str(
        await conn.execute(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
            TTL_HOURS,
        )
    )
