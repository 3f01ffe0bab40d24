"""The request's unit of work: one connection, one transaction, opened on first use.

The edge (``ServiceEdge``) commits it when the response is a success and rolls it back
otherwise, so services never commit and a failed request changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
from asyncpg.transaction import Transaction

from .errors import DatabaseUnavailable

__all__ = ["UnitOfWork"]

_NARROW = "SELECT set_config('stackbe.tenant_id', $1, true)"


class UnitOfWork:
    def __init__(self, pool: asyncpg.Pool, tenant_id: str | None = None) -> None:
        self._pool = pool
        # A tenant's request sees its tenant's rows only (row-level security), whatever
        # its queries say; without a tenant (sign-up, public pages) the pool's `*` holds.
        self._tenant_id = tenant_id
        self._conn: asyncpg.Connection | None = None
        self._tx: Transaction | None = None
        self._after_commit: list[Callable[[], Awaitable[None]]] = []
        self.keep_on_error = False
        self._lost = False

    @property
    def pool(self) -> asyncpg.Pool:
        """For work that runs after commit, on a connection of its own."""
        return self._pool

    async def connection(self) -> asyncpg.Connection:
        """The request's connection, its transaction begun. Failing to get one (Postgres
        refusing connections, or a pooled connection that died with a restart) is a
        503: acquiring, BEGIN and the narrowing do nothing else that could fail."""
        if self._conn is None:
            try:
                conn = await self._pool.acquire()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise DatabaseUnavailable() from exc
            try:
                tx = conn.transaction()
                await tx.start()
                if self._tenant_id is not None:
                    await conn.execute(_NARROW, self._tenant_id)
            except Exception as exc:
                await self._discard(conn)
                raise DatabaseUnavailable() from exc
            except BaseException:
                await self._discard(conn)
                raise
            self._conn, self._tx = conn, tx
        return self._conn

    @property
    def lost(self) -> bool:
        """Whether the request's connection closed under it (Postgres restarting, its
        backend terminated): whatever error the request then meets, the database is away."""
        return self._lost or (self._conn is not None and _gone(self._conn))

    async def _discard(self, conn: asyncpg.Connection) -> None:
        """Give back a connection whose state is unknown: the pool opens a fresh one."""
        with contextlib.suppress(Exception):
            conn.terminate()
        with contextlib.suppress(Exception):
            await self._pool.release(conn)

    async def widen(self) -> None:
        """Let this request's transaction reach every tenant, for the rare route whose work
        is not the caller's tenant's (signing up makes a new tenant, whoever asks)."""
        self._tenant_id = None
        if self._conn is not None:
            await self._conn.execute(_NARROW, "*")

    def commit_even_on_error(self) -> None:
        """Keep this transaction's writes although the response is an error (e.g. revoking a
        refresh-token family on reuse, which must stick while the client gets a 401)."""
        self.keep_on_error = True

    def after_commit(self, effect: Callable[[], Awaitable[None]]) -> None:
        """Run ``effect`` in the background once the transaction has committed (e.g. mail)."""
        self._after_commit.append(effect)

    async def finish(self, commit: bool) -> None:
        effects, self._after_commit = self._after_commit, []
        if self._conn is None or self._tx is None:
            if commit:
                self._spawn(effects)
            return
        conn, tx = self._conn, self._tx
        self._conn = self._tx = None
        if not commit:
            # Nothing of the request is to stay: a rollback that fails (its connection
            # lost) leaves nothing either, so the request's own answer stands.
            try:
                await tx.rollback()
            except BaseException as exc:
                await self._discard(conn)
                if not isinstance(exc, Exception):
                    raise
                return
            await self._release(conn)
            return
        try:
            await tx.commit()
        except BaseException:
            self._lost = self._lost or _gone(conn)
            await self._discard(conn)
            raise
        await self._release(conn)
        self._spawn(effects)

    async def _release(self, conn: asyncpg.Connection) -> None:
        try:
            await self._pool.release(conn)
        except Exception:  # committed already: a connection lost now changes nothing
            await self._discard(conn)

    def _spawn(self, effects: list[Callable[[], Awaitable[None]]]) -> None:
        for effect in effects:
            task: asyncio.Task[None] = asyncio.ensure_future(effect())
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)


def _gone(conn: asyncpg.Connection) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # asyncpg hands a closed one back to its pool at once
        return True


# Strong references so background effects are not garbage-collected mid-flight.
_BACKGROUND: set[asyncio.Task[None]] = set()
