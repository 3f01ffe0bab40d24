"""The request's unit of work: one connection, one transaction, opened on first use.

The edge (``ServiceEdge``) commits it when the response is a success and rolls it back
otherwise, so services never commit and a failed request changes nothing.
"""

from __future__ import annotations

import asyncpg
from asyncpg.transaction import Transaction

__all__ = ["UnitOfWork"]


class UnitOfWork:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.Connection | None = None
        self._tx: Transaction | None = None

    @property
    def started(self) -> bool:
        return self._conn is not None

    async def connection(self) -> asyncpg.Connection:
        if self._conn is None:
            conn = await self._pool.acquire()
            try:
                tx = conn.transaction()
                await tx.start()
            except BaseException:
                await self._pool.release(conn)
                raise
            self._conn, self._tx = conn, tx
        return self._conn

    async def finish(self, commit: bool) -> None:
        if self._conn is None or self._tx is None:
            return
        conn, tx = self._conn, self._tx
        self._conn = self._tx = None
        try:
            if commit:
                await tx.commit()
            else:
                await tx.rollback()
        finally:
            await self._pool.release(conn)
