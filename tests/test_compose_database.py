"""Under ``docker compose`` the services log in as an unprivileged role, so row-level
security holds for them: the postgres container makes it on its first start with
``deploy/compose/initdb/10-stackbe-role.sql``.

The script is run here the way the postgres image runs it (``psql -f`` as the server's
superuser, ``POSTGRES_USER`` against ``POSTGRES_DB``, with the container's environment),
on a fresh database of the test server.
Every service's migrations then run as the role it made, with the settings of
``.env.example``, and a service's pool finds row-level security in force."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import asyncpg
import pytest
import structlog
import yaml

from stackbe_common.db import create_pool
from stackbe_common.devstack import generate_secrets
from stackbe_common.testing.plugin import fresh_database

from .conftest import SERVICES

ROOT = Path(__file__).parents[1]
INITDB = ROOT / "deploy" / "compose" / "initdb"
SCRIPT = INITDB / "10-stackbe-role.sql"


def _example_env(name: str = ".env.example") -> dict[str, str]:
    env = {}
    for line in (ROOT / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


def _run_script(
    server_url: str, database: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    """As the postgres image does (its ``docker_process_sql``), with the compose file's
    variables in the environment."""
    url = urlparse(server_url)
    env = {
        "PATH": os.environ["PATH"],
        "PGHOST": url.hostname or "127.0.0.1",
        "PGPORT": str(url.port or 5432),
        "PGPASSWORD": unquote(url.password or ""),
        **settings,
    }
    user = unquote(url.username or "postgres")
    psql = ["psql", "-v", "ON_ERROR_STOP=1", "--username", user, "--no-password", "--no-psqlrc"]
    return subprocess.run(
        [*psql, "--dbname", database, "-f", str(SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
async def database(pg_server_url: str) -> AsyncIterator[tuple[str, str]]:
    """A fresh database, and a role name of its own (roles are the whole server's)."""
    if shutil.which("psql") is None:
        pytest.skip("no psql (postgresql-client) to run the init script with")
    role = f"stackbe_compose_{secrets.token_hex(3)}"
    async with fresh_database(pg_server_url, "stackbe_compose") as url:
        yield url, role
        admin = await asyncpg.connect(url)
        try:
            await admin.execute(f'DROP OWNED BY "{role}"')
        except asyncpg.UndefinedObjectError:
            pass  # the script refused: no role was made
        finally:
            await admin.close()
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await admin.close()


def test_the_compose_postgres_runs_the_script_with_the_settings_it_needs() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    postgres = compose["postgres"]
    assert "./deploy/compose/initdb:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    assert {"STACKBE_DATABASE_USER", "STACKBE_DATABASE_PASSWORD"} <= set(postgres["environment"])
    assert postgres["environment"]["POSTGRES_USER"] != "stackbe"  # the admin is another role
    # The superuser's password is read by the postgres container alone.
    assert [f["path"] for f in postgres["env_file"]] == [".env.postgres"]
    assert "POSTGRES_PASSWORD" in _example_env(".env.postgres.example")
    assert "POSTGRES_PASSWORD" not in _example_env()
    for name, service in compose.items():
        if name != "postgres":
            assert ".env.postgres" not in str(service.get("env_file", "")), name
    # .env.example's URL logs in as the role the script makes, with its password.
    example = _example_env()
    url = urlparse(example["STACKBE_DATABASE_URL"])
    assert url.username == example["STACKBE_DATABASE_USER"]
    assert url.password == example["STACKBE_DATABASE_PASSWORD"]
    assert url.path == "/" + postgres["environment"]["POSTGRES_DB"]


async def test_without_a_password_the_script_refuses_and_makes_no_role(
    pg_server_url: str, database: tuple[str, str]
) -> None:
    url, role = database
    done = await asyncio.to_thread(
        _run_script, pg_server_url, urlparse(url).path[1:], STACKBE_DATABASE_USER=role
    )
    assert done.returncode != 0
    assert "set STACKBE_DATABASE_PASSWORD" in done.stderr
    admin = await asyncpg.connect(url)
    try:
        assert await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role) is None
    finally:
        await admin.close()


async def test_the_services_migrate_and_run_as_an_unprivileged_role(
    pg_server_url: str, database: tuple[str, str]
) -> None:
    url, role = database
    password = secrets.token_urlsafe(12)
    name = urlparse(url).path[1:]
    done = await asyncio.to_thread(
        _run_script,
        pg_server_url,
        name,
        STACKBE_DATABASE_USER=role,
        STACKBE_DATABASE_PASSWORD=password,
    )
    assert done.returncode == 0, done.stderr

    admin = await asyncpg.connect(url)
    try:
        made = await admin.fetchrow(
            "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole,"
            " rolpassword IS NOT NULL AS has_password FROM pg_authid WHERE rolname = $1",
            role,
        )
    finally:
        await admin.close()
    assert dict(made) == {
        "rolcanlogin": True,
        "rolsuper": False,
        "rolbypassrls": False,
        "rolcreatedb": False,
        "rolcreaterole": False,
        "has_password": True,
    }

    server = urlparse(pg_server_url)
    as_role = f"postgresql://{role}:{password}@{server.hostname}:{server.port or 5432}/{name}"
    env = {**os.environ, **_example_env(), **generate_secrets(), "STACKBE_DATABASE_URL": as_role}
    for service in SERVICES:
        migrated = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", f"stackbe_{service}", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    conn = await asyncpg.connect(as_role)
    try:
        owned = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspowner = (SELECT oid FROM pg_roles"
            " WHERE rolname = current_user)"
        )
        unprotected = await conn.fetch(
            "SELECT n.nspname, c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'"
            " WHERE c.relkind = 'r' AND n.nspname = ANY($1::text[])"
            " AND NOT (c.relrowsecurity AND c.relforcerowsecurity)",
            list(SERVICES),
        )
    finally:
        await conn.close()
    assert set(SERVICES) <= {r["nspname"] for r in owned}
    assert unprotected == []

    # What each service checks at start: nothing bypasses row-level security.
    with structlog.testing.capture_logs() as logs:
        pool = await create_pool(as_role, "identity", max_size=1)
        await pool.close()
    assert [e for e in logs if e["event"] == "database.row_security_bypassed"] == []
