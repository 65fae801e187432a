"""One aiosqlite connection shared by the whole bot, with serialized transactions.

Every statement goes through an :class:`asyncio.Lock`: a transaction holds it from
``BEGIN IMMEDIATE`` to ``COMMIT``/``ROLLBACK`` and a single read holds it for one statement,
so statements of two coroutines never interleave on the connection and a read never sees
another coroutine's uncommitted writes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from storage.migrations import MIGRATIONS, Migration, apply_migrations

logger = logging.getLogger(__name__)

Params = Sequence[Any]

MEMORY = ":memory:"

# Set while the current task (and tasks it spawns) runs inside a transaction, so that a
# nested use of the database fails loudly instead of waiting forever for its own lock.
_in_transaction: ContextVar[bool] = ContextVar("storage_in_transaction", default=False)


async def _run(conn: aiosqlite.Connection, sql: str) -> None:
    async with conn.execute(sql):
        pass


class StorageError(Exception):
    """Base of the storage layer's own errors."""


class NestedTransactionError(StorageError, RuntimeError):
    """The database was used through ``Database`` while this task holds a transaction."""


class Tx:
    """Statements of one open transaction; valid only inside ``Database.transaction()``."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement and return the number of rows it changed."""
        async with self._conn.execute(sql, params) as cursor:
            return cursor.rowcount

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT and return the new row id."""
        async with self._conn.execute(sql, params) as cursor:
            if cursor.lastrowid is None:
                raise StorageError("INSERT returned no row id")
            return cursor.lastrowid

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        async with self._conn.execute(sql, params) as cursor:
            row: sqlite3.Row | None = await cursor.fetchone()
            return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        async with self._conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())


class Database:
    """The bot's database. Create with ``await Database.open(path)``; ``close()`` when done."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.path = path
        self.migrations_applied: tuple[int, ...] = ()  # versions the last open() applied

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
        busy_timeout_ms: int = 5000,
    ) -> Database:
        """Open (creating the folder if needed), configure and migrate the database."""
        location = str(path)
        if location != MEMORY:
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the sqlite3 module never opens transactions by itself.
        conn = await aiosqlite.connect(location, isolation_level=None)
        db = cls(conn, location)
        try:
            conn.row_factory = sqlite3.Row
            await _run(conn, f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await _run(conn, "PRAGMA foreign_keys = ON")
            if location != MEMORY:
                async with conn.execute("PRAGMA journal_mode = WAL") as cursor:
                    mode = await cursor.fetchone()
                if mode is None or str(mode[0]).lower() != "wal":
                    logger.warning("WAL journal mode not available for %s", location)
                await _run(conn, "PRAGMA synchronous = NORMAL")
            db.migrations_applied = tuple(await apply_migrations(db, migrations))
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; any exception (or cancellation) rolls back."""
        self._check_not_nested()
        async with self._lock:
            token = _in_transaction.set(True)
            try:
                await _run(self._conn, "BEGIN IMMEDIATE")
                try:
                    yield Tx(self._conn)
                    await _run(self._conn, "COMMIT")
                except BaseException:
                    await self._rollback()
                    raise
            finally:
                _in_transaction.reset(token)

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """One read statement outside any transaction (waits for a running one to end)."""
        self._check_not_nested()
        async with self._lock:
            return await Tx(self._conn).fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        self._check_not_nested()
        async with self._lock:
            return await Tx(self._conn).fetchall(sql, params)

    async def ping(self) -> None:
        """One trivial statement: raises if the database cannot be reached."""
        await self.fetchone("SELECT 1")

    async def schema_version(self) -> int:
        row = await self.fetchone("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        return int(row[0]) if row is not None else 0

    async def _rollback(self) -> None:
        # aiosqlite runs statements in FIFO order on its worker thread, so even if this await
        # is cancelled the ROLLBACK still runs before any statement queued after it.
        try:
            await _run(self._conn, "ROLLBACK")
        except sqlite3.OperationalError:
            # SQLite already rolled back by itself (some errors end the transaction).
            logger.debug("ROLLBACK found no open transaction")

    @staticmethod
    def _check_not_nested() -> None:
        if _in_transaction.get():
            raise NestedTransactionError(
                "database used inside a transaction: use the Tx given by transaction()"
            )
