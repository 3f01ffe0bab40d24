"""asyncpg pools bound to a service's own schema, with JSON codecs."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

__all__ = ["Connection", "Pool", "create_pool"]

Connection = asyncpg.Connection
Pool = asyncpg.Pool


async def _init_connection(conn: asyncpg.Connection, schema: str) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            encoder=lambda v: msgspec.json.encode(v).decode(),
            decoder=msgspec.json.decode,
            schema="pg_catalog",
        )


async def create_pool(
    dsn: str, schema: str, *, min_size: int = 1, max_size: int = 10, **kwargs: Any
) -> asyncpg.Pool:
    """A pool whose connections see only ``schema`` (plus pg_catalog) on their search_path."""
    await ensure_schema(dsn, schema)
    kwargs.setdefault("max_inactive_connection_lifetime", 30.0)  # idle ones go back
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": f"stackbe-{schema}"},
        init=lambda conn: _init_connection(conn, schema),
        **kwargs,
    )


async def ensure_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except asyncpg.UniqueViolationError:
        pass  # created by a concurrent process at the same moment
    finally:
        await conn.close()
