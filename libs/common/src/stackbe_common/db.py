"""asyncpg pools bound to a service's own schema, with JSON codecs.

A connection goes back to the pool as it is, apart from an open transaction, which is
rolled back. asyncpg would otherwise send a reset query on every release (``RESET ALL``,
``UNLISTEN *``, ``CLOSE ALL``, unlock advisory locks): one more round trip per request,
for state StackBE never leaves on a pooled connection. So, on a pooled connection:
``SET LOCAL`` only, transaction-scoped advisory locks only (``pg_advisory_xact_lock``),
and a ``LISTEN`` is undone with ``remove_listener`` before the connection goes back.
Session-level state belongs on a connection of its own (``asyncpg.connect``), as the
migrations and the bootstrap do.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from .logging import get_logger

__all__ = ["POSTGRES_UNAVAILABLE", "Connection", "Pool", "create_pool", "database_unavailable"]

log = get_logger(__name__)

Connection = asyncpg.Connection
Pool = asyncpg.Pool


# What Postgres being away looks like once a connection exists: lost connections, a
# server shutting down, starting up or out of connection slots. (A refused connection is
# an OSError, taken as this only where a connection is opened: see ``database_unavailable``.)
# asyncpg's own errors (InterfaceError, InternalClientError) count only when they say the
# connection is gone: see ``database_unavailable``.
POSTGRES_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)

# What asyncpg says of a connection lost under a query: closed; handed back to its pool
# at once (its proxy then refuses every call); or its protocol left mid-operation
# ("cannot switch to state ...", seen while Postgres restarts).
_LOST = ("closed", "released back to the pool")
_CUT_MID_OPERATION = "cannot switch to state"


def database_unavailable(exc: BaseException, *, connecting: bool = False) -> bool:
    """Whether ``exc`` says the database cannot be reached now (answer 503, not 500).
    ``connecting``: raised while opening or finishing a transaction, where an OSError is
    the way to Postgres failing (elsewhere it may be anything: DNS, SMTP, a file). Misuse
    of a connection, bad arguments and protocol errors stay 500s: they are bugs."""
    if isinstance(exc, asyncpg.exceptions.DataError):  # a bad argument, whatever it says
        return False
    if isinstance(exc, asyncpg.InterfaceError):
        return any(said in str(exc) for said in _LOST)
    if isinstance(exc, asyncpg.InternalClientError):
        return type(exc) is asyncpg.InternalClientError and str(exc).startswith(_CUT_MID_OPERATION)
    return isinstance(exc, POSTGRES_UNAVAILABLE) or (connecting and isinstance(exc, OSError))


async def _init_connection(conn: asyncpg.Connection, schema: str) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            encoder=lambda v: msgspec.json.encode(v).decode(),
            decoder=msgspec.json.decode,
            schema="pg_catalog",
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing beyond asyncpg's rollback of an open transaction."""


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
        server_settings={
            "search_path": schema,
            "application_name": f"stackbe-{schema}",
            # Row-level security (common/0003_row_security.sql): pooled work sees every
            # tenant unless its transaction narrows it (the edge does, for a tenant's caller).
            "stackbe.tenant_id": "*",
        },
        init=lambda conn: _init_connection(conn, schema),
        reset=_keep_session,
        **kwargs,
    )


async def ensure_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        except asyncpg.UniqueViolationError:
            pass  # created by a concurrent process at the same moment
        role = await conn.fetchrow(_ROLE)
        if role is not None and role["bypasses"]:
            log.warning("database.row_security_bypassed", role=role["name"], schema=schema)
    finally:
        await conn.close()


# Superusers and BYPASSRLS roles are never subject to row-level security.
_ROLE = """
SELECT rolname AS name, rolsuper OR rolbypassrls AS bypasses
FROM pg_roles WHERE rolname = current_user
"""
