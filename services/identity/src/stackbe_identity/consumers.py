"""What the identity worker answers and consumes over NATS.

- request-reply: resolve an API key hash or an app to a scope, and the JWKS (gateway);
- core NATS: batches of key use from gateways, stored as ``last_used_at``.
"""

from __future__ import annotations

import asyncpg
import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from stackbe_common.bus import Responder
from stackbe_common.logging import get_logger
from stackbe_events import rpc

from . import repository as repo
from .tokens import SigningKeys

log = get_logger(__name__)

QUEUE = "identity"

_resolve_key = msgspec.json.Decoder(rpc.ResolveKey)
_resolve_app = msgspec.json.Decoder(rpc.ResolveApp)
_keys_used = msgspec.json.Decoder(rpc.KeysUsed)


def responders(nc: NATS, pool: asyncpg.Pool, keys: SigningKeys) -> list[Responder]:
    async def resolve_key(data: bytes) -> rpc.ResolvedKey | None:
        request = _resolve_key.decode(data)
        async with pool.acquire() as conn:
            row = await repo.resolve_key(conn, request.key_hash)
        if row is None:
            return None
        return rpc.ResolvedKey(
            key_id=row["id"],
            kind="app" if row["app_id"] else "tenant",
            tenant_id=row["tenant_id"],
            app_id=row["app_id"],
            expires_at=row["expires_at"],
        )

    async def resolve_app(data: bytes) -> rpc.ResolvedApp | None:
        request = _resolve_app.decode(data)
        async with pool.acquire() as conn:
            row = await repo.resolve_app(conn, request.tenant_id, request.app_id)
        return (
            None if row is None else rpc.ResolvedApp(app_id=row["id"], tenant_id=row["tenant_id"])
        )

    async def jwks(_: bytes) -> rpc.Jwks:
        return rpc.Jwks(keys=keys.jwks())

    return [
        Responder(nc, rpc.RESOLVE_KEY, QUEUE, resolve_key),
        Responder(nc, rpc.RESOLVE_APP, QUEUE, resolve_app),
        Responder(nc, rpc.JWKS, QUEUE, jwks),
    ]


async def subscribe_key_use(nc: NATS, pool: asyncpg.Pool) -> None:
    """Record last use of keys, reported by gateways in batches (one UPDATE per batch)."""

    async def on_batch(msg: Msg) -> None:
        try:
            batch = _keys_used.decode(msg.data)
            async with pool.acquire() as conn:
                await repo.record_key_use(conn, batch.used)
        except Exception as exc:  # last use is best effort; never stop the subscription
            log.warning("api_key.use_not_recorded", error=repr(exc))

    await nc.subscribe(rpc.KEYS_USED, queue=QUEUE, cb=on_batch)
