"""Schema migrations: applied in order from empty, once each, atomically."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage.db import Database
from storage.migrations import (
    MIGRATIONS,
    Migration,
    MigrationError,
    apply_migrations,
    split_statements,
)

EXTRA = Migration(
    len(MIGRATIONS) + 1,
    "extra",
    """
    -- a comment; with a semicolon
    CREATE TABLE extra (id INTEGER PRIMARY KEY, note TEXT NOT NULL);
    CREATE TABLE extra_log (note TEXT NOT NULL);
    CREATE TRIGGER extra_logged AFTER INSERT ON extra BEGIN
        INSERT INTO extra_log (note) VALUES (new.note || ';logged');
    END;
    INSERT INTO extra (note) VALUES ('semi;colon')
    """,
)


async def _rows(db: Database, sql: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in await db.fetchall(sql)]


async def _tables(db: Database) -> set[str]:
    rows = await db.fetchall("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")
    return {str(row[0]) for row in rows}


async def test_fresh_database_applies_every_migration_in_order(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "bot.sqlite3"
    db = await Database.open(path)
    try:
        assert path.exists()
        assert db.migrations_applied == tuple(m.version for m in MIGRATIONS)
        history = await _rows(db, "SELECT version, name FROM schema_version ORDER BY version")
        assert history == [(m.version, m.name) for m in MIGRATIONS]
        assert await db.schema_version() == MIGRATIONS[-1].version
        assert {
            "users",
            "orders",
            "messages",
            "reminders",
            "orders_by_user_status",
            "orders_active_by_expiry",
            "messages_undelivered",
        } <= await _tables(db)
        assert await _rows(db, "PRAGMA journal_mode") == [("wal",)]
        assert await _rows(db, "PRAGMA foreign_keys") == [(1,)]
        assert (await _rows(db, "PRAGMA busy_timeout"))[0][0] == 5000
    finally:
        await db.close()


async def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with await Database.open(path) as db:
        first = await _rows(db, "SELECT version, name, applied_at FROM schema_version")
    async with await Database.open(path) as db:
        assert db.migrations_applied == ()
        assert await apply_migrations(db, MIGRATIONS) == []
        assert await _rows(db, "SELECT version, name, applied_at FROM schema_version") == first


async def test_reopening_applies_only_the_new_migration(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with await Database.open(path):
        pass
    # v1 creates its tables without IF NOT EXISTS: re-running it would fail.
    async with await Database.open(path, migrations=(*MIGRATIONS, EXTRA)) as db:
        assert db.migrations_applied == (EXTRA.version,)
        assert await db.schema_version() == EXTRA.version
        assert await _rows(db, "SELECT note FROM extra") == [("semi;colon",)]
        assert await _rows(db, "SELECT note FROM extra_log") == [("semi;colon;logged",)]


async def test_failed_migration_rolls_back_its_whole_step(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    broken = Migration(
        EXTRA.version, "broken", "CREATE TABLE half (a TEXT); INSERT INTO missing VALUES (1);"
    )
    with pytest.raises(sqlite3.OperationalError, match="missing"):
        await Database.open(path, migrations=(*MIGRATIONS, broken))
    async with await Database.open(path) as db:
        assert await db.schema_version() == MIGRATIONS[-1].version
        assert "half" not in await _tables(db)
        assert "users" in await _tables(db)


async def test_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with await Database.open(path, migrations=(*MIGRATIONS, EXTRA)):
        pass
    with pytest.raises(MigrationError, match="newer"):
        await Database.open(path)


async def test_renamed_migration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with await Database.open(path):
        pass
    renamed = (Migration(1, "something else", MIGRATIONS[0].sql), *MIGRATIONS[1:])
    with pytest.raises(MigrationError, match="something else"):
        await Database.open(path, migrations=renamed)


async def test_migration_versions_must_be_consecutive(tmp_path: Path) -> None:
    gap = Migration(len(MIGRATIONS) + 2, "gap", "SELECT 1")
    with pytest.raises(MigrationError, match="expected version"):
        await Database.open(tmp_path / "bot.sqlite3", migrations=(*MIGRATIONS, gap))


async def test_memory_database_is_migrated() -> None:
    async with await Database.open(":memory:") as db:
        assert await db.schema_version() == MIGRATIONS[-1].version
        assert "orders" in await _tables(db)


def test_split_statements_keeps_semicolons_in_strings_and_triggers() -> None:
    statements = split_statements(EXTRA.sql)
    assert len(statements) == 4
    assert statements[0].endswith("note TEXT NOT NULL);")
    assert "';logged');\n    END;" in statements[2]
    assert statements[3] == "INSERT INTO extra (note) VALUES ('semi;colon')"
    assert split_statements("  ;\n") == []
