from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from stackbe_common.migrations import MigrationError, migrate


async def applied(conn: asyncpg.Connection, schema: str) -> list[str]:
    rows = await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations ORDER BY name')
    return [r["name"] for r in rows]


async def test_migrations_apply_in_order_once(database_url: str, schema: str, tmp_path: Path):
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    (tmp_path / "0002_second.sql").write_text("ALTER TABLE first ADD COLUMN name text;")
    conn = await asyncpg.connect(database_url)
    try:
        done = await migrate(conn, schema, tmp_path)
        common = [n for n in done if n.startswith("common/")]
        assert common[0] == "common/0001_infrastructure.sql" and common == sorted(common)
        assert done == [*common, "0001_first.sql", "0002_second.sql"]
        assert await migrate(conn, schema, tmp_path) == []
        assert "0002_second.sql" in await applied(conn, schema)
        cols = await conn.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = 'first' ORDER BY column_name",
            schema,
        )
        assert [c["column_name"] for c in cols] == ["id", "name"]
    finally:
        await conn.close()


async def test_migration_runner_refuses_an_edited_applied_file(
    database_url: str, schema: str, tmp_path: Path
):
    migration = tmp_path / "0001_first.sql"
    migration.write_text("CREATE TABLE first (id int);")
    (tmp_path / "0002_second.sql").write_text("CREATE TABLE second (id int);")
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, schema, tmp_path)
        migration.write_text("CREATE TABLE first (id bigint);")
        (tmp_path / "0003_third.sql").write_text("CREATE TABLE third (id int);")
        with pytest.raises(MigrationError, match=r"0001_first\.sql was edited"):
            await migrate(conn, schema, tmp_path)
        # Nothing after the refusal was applied.
        assert "0003_third.sql" not in await applied(conn, schema)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_no_trace(database_url: str, schema: str, tmp_path: Path):
    (tmp_path / "0001_bad.sql").write_text("CREATE TABLE half (id int); SELECT no_such_fn();")
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(conn, schema, tmp_path)
        assert "0001_bad.sql" not in await applied(conn, schema)
        exists = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.half")
        assert exists is None
    finally:
        await conn.close()


async def test_migration_file_names_must_be_numbered(
    database_url: str, schema: str, tmp_path: Path
):
    (tmp_path / "first.sql").write_text("SELECT 1;")
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
            await migrate(conn, schema, tmp_path)
    finally:
        await conn.close()
