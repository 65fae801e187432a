"""The bot's database: SQLite (the embedded default) or PostgreSQL, behind one small API.

:meth:`Database.open` takes a file path (SQLite, through aiosqlite) or a ``postgresql://`` URL
(:mod:`storage.pg`, through asyncpg). Repositories write portable SQL with ``?`` placeholders
and use only what both give: :meth:`Database.transaction` for every write, ``fetchone`` /
``fetchall`` for single reads, rows indexed by position or column name.

**Transactions are serialized.** On SQLite every statement goes through an
:class:`asyncio.Lock` and a transaction is ``BEGIN IMMEDIATE`` ... ``COMMIT``, so two
transactions never interleave (across processes too: SQLite has one writer). PostgreSQL keeps
the same guarantee across processes with a transaction-level advisory lock (see
:mod:`storage.pg`): the check-then-write steps of the ledger and the intents hold in every
replica as they do in one. Work written for concurrency (the watcher's order leases) asks for
``transaction(shared=True)``, which on PostgreSQL takes row locks only.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Protocol

import aiosqlite

from storage.migrations import MIGRATIONS, Migration, apply_migrations, split_statements

logger = logging.getLogger(__name__)

Params = Sequence[Any]

MEMORY = ":memory:"

# Set while the current task (and tasks it spawns) runs inside a transaction, so that a
# nested use of the database fails loudly instead of waiting forever for its own lock.
_in_transaction: ContextVar[bool] = ContextVar("storage_in_transaction", default=False)


class Row(Protocol):
    """A result row: ``row[0]`` or ``row["column"]`` (Row and asyncpg.Record both)."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def keys(self) -> Any: ...


async def _run(conn: aiosqlite.Connection, sql: str) -> None:
    await conn.execute(sql)  # one hop to the worker thread; the cursor goes with its last ref


def is_postgres_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


class StorageError(Exception):
    """Base of the storage layer's own errors."""


class NestedTransactionError(StorageError, RuntimeError):
    """The database was used through ``Database`` while this task holds a transaction."""


class IntegrityError(StorageError, sqlite3.IntegrityError):
    """A constraint refused a write on PostgreSQL, worded as SQLite words it ("UNIQUE
    constraint failed: ...", "FOREIGN KEY constraint failed", "CHECK constraint failed: ...")
    so callers catch one ``sqlite3.IntegrityError`` on either database."""


class Tx(ABC):
    """Statements of one open transaction; valid only inside ``Database.transaction()``."""

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement and return the number of rows it changed."""

    @abstractmethod
    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT into a table with an ``id`` key and return the new row's id."""

    @abstractmethod
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    @abstractmethod
    async def script(self, sql: str) -> None:
        """Several statements without parameters (a migration)."""


class Database(ABC):
    """The bot's database. Create with ``await Database.open(path_or_url)``; ``close()``."""

    dialect: ClassVar[str]
    path: str  # the file, or the URL without its password
    migrations_applied: tuple[int, ...]  # versions the last open() applied

    @classmethod
    async def open(
        cls,
        location: str | Path,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
        busy_timeout_ms: int = 5000,
    ) -> Database:
        """Open (creating a SQLite file's folder if needed), configure and migrate."""
        if is_postgres_url(str(location)):
            from storage.pg import PgDatabase

            return await PgDatabase.connect(str(location), migrations=migrations)
        return await SqliteDatabase.connect(
            location, migrations=migrations, busy_timeout_ms=busy_timeout_ms
        )

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(self, *, shared: bool = False) -> AbstractAsyncContextManager[Tx]:
        """One transaction: committed at the end of the block, rolled back by any exception
        (or cancellation). ``shared``: may run beside other transactions (PostgreSQL: no
        global lock; the statements must lock the rows they need themselves)."""

    @abstractmethod
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """One read statement outside any transaction."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def ping(self) -> None:
        """One trivial statement: raises if the database cannot be reached."""
        await self.fetchone("SELECT 1")

    async def schema_version(self) -> int:
        row = await self.fetchone("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        return int(row[0]) if row is not None else 0

    @staticmethod
    def _check_not_nested() -> None:
        if _in_transaction.get():
            raise NestedTransactionError(
                "database used inside a transaction: use the Tx given by transaction()"
            )


class SqliteTx(Tx):
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    # Each call is one hop to aiosqlite's worker thread (a statement, its rows at once); a
    # cursor is not closed by another hop but freed with its last reference. A hop costs the
    # event loop more than most statements do (about 20 per update before: issue #13).

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement and return the number of rows it changed."""
        cursor = await self._conn.execute(sql, params)
        return cursor.rowcount

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run an INSERT and return the new row id."""
        cursor = await self._conn.execute(sql, params)
        if cursor.lastrowid is None:
            raise StorageError("INSERT returned no row id")
        return cursor.lastrowid

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._conn.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self._conn.execute_fetchall(sql, params))

    async def script(self, sql: str) -> None:
        for statement in split_statements(sql):
            await self.execute(statement)


class SqliteDatabase(Database):
    """SQLite through one aiosqlite connection shared by the whole bot."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.path = path
        self.migrations_applied = ()

    @classmethod
    async def connect(
        cls,
        path: str | Path,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
        busy_timeout_ms: int = 5000,
    ) -> SqliteDatabase:
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

    @asynccontextmanager
    async def transaction(self, *, shared: bool = False) -> AsyncIterator[Tx]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (SQLite has one writer: ``shared`` changes
        nothing)."""
        self._check_not_nested()
        async with self._lock:
            token = _in_transaction.set(True)
            try:
                await _run(self._conn, "BEGIN IMMEDIATE")
                try:
                    yield SqliteTx(self._conn)
                    await _run(self._conn, "COMMIT")
                except BaseException:
                    await self._rollback()
                    raise
            finally:
                _in_transaction.reset(token)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """One read statement outside any transaction (waits for a running one to end)."""
        self._check_not_nested()
        async with self._lock:
            return await SqliteTx(self._conn).fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        self._check_not_nested()
        async with self._lock:
            return await SqliteTx(self._conn).fetchall(sql, params)

    async def _rollback(self) -> None:
        # aiosqlite runs statements in FIFO order on its worker thread, so even if this await
        # is cancelled the ROLLBACK still runs before any statement queued after it.
        try:
            await _run(self._conn, "ROLLBACK")
        except sqlite3.OperationalError:
            # SQLite already rolled back by itself (some errors end the transaction).
            logger.debug("ROLLBACK found no open transaction")
