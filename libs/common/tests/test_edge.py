"""The edge answers every request in the documented body, even when its own work fails
after the route has answered: the commit refused by Postgres, or the connection cut
before the commit. Left to the HTTP server, either would be a bare 500."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
import structlog
from litestar import Litestar, post
from litestar.testing import AsyncTestClient

from stackbe_common.crypto import Keyring
from stackbe_common.db import create_pool, database_unavailable
from stackbe_common.errors import NotFound
from stackbe_common.scope import Principal, Scope, sign_scope
from stackbe_common.web import Conn, create_service_app

SECRET = secrets.token_bytes(32)
TENANT = "ten_edge"


def _keyring() -> Keyring:
    return Keyring.parse("k1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())


@pytest.fixture
async def client(
    database_url: str, pool: asyncpg.Pool, schema: str
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE pairs (n int UNIQUE DEFERRABLE INITIALLY DEFERRED);"
            "CREATE TABLE notes (body text)"
        )

    @post("/refused-at-commit", status_code=200)
    async def refused_at_commit(conn: Conn) -> dict[str, Any]:
        # Both rows go in; the deferred unique constraint refuses them at COMMIT.
        await conn.execute("INSERT INTO pairs VALUES (1), (1)")
        await conn.execute("INSERT INTO notes VALUES ('refused')")
        return {"ok": True}

    @post("/cut-before-commit", status_code=200)
    async def cut_before_commit(conn: Conn) -> dict[str, Any]:
        await conn.execute("INSERT INTO notes VALUES ('cut')")
        other = await asyncpg.connect(database_url)
        try:  # Postgres goes away under this request's connection
            await other.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
        finally:
            await other.close()
        return {"ok": True}

    async def cut(conn: asyncpg.Connection) -> None:
        other = await asyncpg.connect(database_url)
        try:  # Postgres goes away under this request's connection
            await other.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
        finally:
            await other.close()
        for _ in range(100):  # until the client has seen its connection close
            try:
                if conn.is_closed():
                    break
            except asyncpg.InterfaceError:  # closed, and handed back to the pool already
                break
            await asyncio.sleep(0.01)

    @post("/cut-then-not-found", status_code=200)
    async def cut_then_not_found(conn: Conn) -> dict[str, Any]:
        await conn.execute("INSERT INTO notes VALUES ('not found')")
        await cut(conn)
        raise NotFound("No such thing")

    @post("/cut-then-anything", status_code=200)
    async def cut_then_anything(conn: Conn) -> dict[str, Any]:
        await cut(conn)
        raise RuntimeError("whatever the driver said next")

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await create_pool(database_url, schema, max_size=2)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = create_service_app(
        name="edge",
        secret=SECRET,
        keyring=_keyring(),
        route_handlers=[
            refused_at_commit,
            cut_before_commit,
            cut_then_not_found,
            cut_then_anything,
        ],
        lifespan=lifespan,
    )
    async with AsyncTestClient(app) as client:
        yield client


def _headers(key: str | None = None) -> dict[str, str]:
    scope = Scope(Principal("app_key", "key_edge"), tenant_id=TENANT, app_id="app_edge")
    headers = {"x-stackbe-scope": sign_scope(scope, SECRET)}
    if key is not None:
        headers["idempotency-key"] = key
    return headers


async def _notes(pool: asyncpg.Pool) -> list[str]:
    async with pool.acquire() as conn:
        return [r["body"] for r in await conn.fetch("SELECT body FROM notes")]


@pytest.mark.parametrize("key", [None, "k-refused"])
async def test_a_commit_refused_after_the_route_answered_is_a_documented_500(
    client: AsyncTestClient[Litestar], pool: asyncpg.Pool, key: str | None
) -> None:
    with structlog.testing.capture_logs() as logs:
        r = await client.post("/refused-at-commit", headers=_headers(key))
    assert r.status_code == 500, r.text
    body = r.json()
    assert body["code"] == "INTERNAL_ERROR"
    assert body["requestId"] == r.headers["x-request-id"]
    assert "quote the request id" in body["message"]
    failed = [e for e in logs if e["event"] == "request.failed"]
    assert failed and failed[0]["request_id"] == body["requestId"]
    assert failed[0]["path"] == "/refused-at-commit"
    assert await _notes(pool) == []  # nothing of the request stayed


@pytest.mark.parametrize("key", [None, "k-cut"])
async def test_a_connection_cut_before_the_commit_is_a_documented_503(
    client: AsyncTestClient[Litestar], pool: asyncpg.Pool, key: str | None
) -> None:
    r = await client.post("/cut-before-commit", headers=_headers(key))
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "SERVICE_UNAVAILABLE"
    assert r.json()["requestId"] == r.headers["x-request-id"]
    assert await _notes(pool) == []
    # The pool carries on with fresh connections.
    r = await client.post("/refused-at-commit", headers=_headers())
    assert r.status_code == 500 and r.json()["code"] == "INTERNAL_ERROR"


def test_asyncpg_left_mid_operation_by_a_cut_connection_is_the_database_away() -> None:
    # Seen while Postgres restarts: the protocol's state machine, cut off mid-query.
    exc = asyncpg.InternalClientError("cannot switch to state 12; another operation is in progress")
    assert database_unavailable(exc)
    # asyncpg hands a lost pooled connection back to its pool: its proxy refuses calls.
    gone = asyncpg.InterfaceError(
        "cannot call Connection.execute(): connection has been released back to the pool"
    )
    assert database_unavailable(gone)
    assert not database_unavailable(asyncpg.UniqueViolationError("duplicate key"))


async def test_an_error_answer_stands_when_its_rollback_finds_the_connection_gone(
    client: AsyncTestClient[Litestar], pool: asyncpg.Pool
) -> None:
    r = await client.post("/cut-then-not-found", headers=_headers())
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND", r.text
    assert await _notes(pool) == []


async def test_any_error_after_the_connection_closed_under_the_request_is_a_503(
    client: AsyncTestClient[Litestar],
) -> None:
    with structlog.testing.capture_logs() as logs:
        r = await client.post("/cut-then-anything", headers=_headers())
    assert r.status_code == 503 and r.json()["code"] == "SERVICE_UNAVAILABLE", r.text
    assert [e["event"] for e in logs if e["log_level"] == "error"] == []


def test_bugs_in_using_a_connection_are_not_taken_for_the_database_away() -> None:
    closed_value = asyncpg.exceptions.DataError("invalid input for query argument $1: 'closed'")
    busy = asyncpg.InterfaceError("cannot perform operation: another operation is in progress")
    protocol = asyncpg.exceptions.ProtocolError("cannot switch to state 3")
    for bug in (closed_value, busy, protocol, asyncpg.InternalClientError("no encoder")):
        assert not database_unavailable(bug), bug
