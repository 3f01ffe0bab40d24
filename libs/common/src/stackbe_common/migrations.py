"""Plain-SQL migrations, numbered in order, applied under an advisory lock.

Each applied file's SHA-256 is recorded; editing an applied file is refused, because
the database would no longer be what the files say.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

from .logging import get_logger

__all__ = ["COMMON_MIGRATIONS", "Migration", "MigrationError", "discover", "migrate"]

log = get_logger(__name__)

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(Exception):
    """The migration files and the database disagree."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path | resources.abc.Traversable, namespace: str = "") -> list[Migration]:
    found = []
    for entry in directory.iterdir():
        if entry.name.endswith(".sql"):
            if not _NAME.match(entry.name):
                raise MigrationError(f"migration file name must be NNNN_name.sql: {entry.name}")
            found.append(Migration(namespace + entry.name, entry.read_text()))
    found.sort(key=lambda m: m.name)
    return found


COMMON_MIGRATIONS = resources.files("stackbe_common") / "migrations"

_CREATE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def migrate(conn: asyncpg.Connection, schema: str, service_dir: Path | None) -> list[str]:
    """Apply common then service migrations to ``schema``; return the names applied now."""
    migrations = discover(COMMON_MIGRATIONS, "common/")
    if service_dir is not None:
        migrations += discover(service_dir)
    lock = zlib.crc32(f"stackbe-migrate:{schema}".encode())
    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    await conn.execute(f'SET search_path TO "{schema}"')
    await conn.execute("SET stackbe.tenant_id = '*'")  # data migrations see every tenant
    await conn.execute("SELECT pg_advisory_lock($1)", lock)
    try:
        await conn.execute(_CREATE)
        applied = {
            r["name"]: r["checksum"]
            for r in await conn.fetch("SELECT name, checksum FROM schema_migrations")
        }
        for m in migrations:
            if m.name in applied and applied[m.name] != m.checksum:
                raise MigrationError(
                    f"migration {m.name} was edited after it was applied to schema {schema}; "
                    "add a new migration instead"
                )
        done = []
        for m in migrations:
            if m.name in applied:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                    m.name,
                    m.checksum,
                )
            log.info("migration.applied", schema=schema, migration=m.name)
            done.append(m.name)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock)
