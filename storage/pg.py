"""PostgreSQL through asyncpg: the same repositories and migrations as SQLite, for replicas.

Repositories write SQLite-flavoured portable SQL; this module turns ``?`` placeholders into
``$1, $2, ...`` and constraint errors into :class:`storage.db.IntegrityError` worded as SQLite
words them, so the repositories stay one code.

**One writer at a time, across processes.** The repositories were written for SQLite's
``BEGIN IMMEDIATE``: a transaction reads (a balance, an open intent) and writes what that read
allows, and nothing else writes in between. Under PostgreSQL's READ COMMITTED that would not
hold between two replicas, so every transaction takes the same transaction-level advisory lock
first (``pg_advisory_xact_lock``, released at COMMIT/ROLLBACK, also when a replica dies): the
database itself, not a process, keeps the ledger's and the intents' guards. The price is that
writes are serialized (as on SQLite); they are short (no provider call ever runs inside one).
``transaction(shared=True)`` skips the lock, for work written for concurrency: the watcher's
order leases (``FOR UPDATE SKIP LOCKED``). Reads outside a transaction never wait.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from storage.db import (
    Database,
    IntegrityError,
    Params,
    Row,
    StorageError,
    Tx,
    _in_transaction,
)
from storage.migrations import MIGRATIONS, Migration, apply_migrations

# The key of the advisory lock every (non-shared) transaction holds: any constant will do, as
# long as every replica uses the same one (this is "smsbot" in ASCII).
WRITE_LOCK = 0x736D73626F74

_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\?")
_KEY_COLUMNS = re.compile(r"Key \(([^)]*)\)")


@lru_cache(maxsize=2048)
def placeholders(sql: str) -> str:
    """``?`` -> ``$1``, ``$2``, ... (not inside quotes or comments)."""
    counter = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal counter
        if match.group(0) != "?":
            return match.group(0)
        counter += 1
        return f"${counter}"

    return _TOKENS.sub(replace, sql)


def _rowcount(status: str) -> int:
    """``UPDATE 3`` -> 3, ``INSERT 0 1`` -> 1; 0 for a status without a count."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _integrity(exc: asyncpg.PostgresError) -> IntegrityError:
    """SQLite's wording of the constraint that failed (never the values: they may be private)."""
    table = getattr(exc, "table_name", None) or "?"
    constraint = getattr(exc, "constraint_name", None) or "?"
    if isinstance(exc, asyncpg.UniqueViolationError):
        found = _KEY_COLUMNS.search(getattr(exc, "detail", None) or "")
        columns = ", ".join(
            f"{table}.{column.strip()}" for column in (found.group(1) if found else "?").split(",")
        )
        return IntegrityError(f"UNIQUE constraint failed: {columns} [{constraint}]")
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return IntegrityError(f"FOREIGN KEY constraint failed [{constraint}]")
    if isinstance(exc, asyncpg.CheckViolationError):
        return IntegrityError(f"CHECK constraint failed: {constraint}")
    if isinstance(exc, asyncpg.NotNullViolationError):
        column = getattr(exc, "column_name", None) or "?"
        return IntegrityError(f"NOT NULL constraint failed: {table}.{column}")
    return IntegrityError(str(getattr(exc, "message", None) or type(exc).__name__))


class PgTx(Tx):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            status = await self._conn.execute(placeholders(sql), *params)
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.RaiseError) as exc:
            raise _integrity(exc) from exc
        return _rowcount(str(status))

    async def insert(self, sql: str, params: Params = ()) -> int:
        try:
            new_id = await self._conn.fetchval(placeholders(sql) + " RETURNING id", *params)
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.RaiseError) as exc:
            raise _integrity(exc) from exc
        if new_id is None:
            raise StorageError("INSERT returned no row id")
        return int(new_id)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        try:
            row = await self._conn.fetchrow(placeholders(sql), *params)
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.RaiseError) as exc:
            raise _integrity(exc) from exc
        return cast(Row | None, row)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            rows = await self._conn.fetch(placeholders(sql), *params)
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.RaiseError) as exc:
            raise _integrity(exc) from exc
        return cast(list[Row], rows)

    async def script(self, sql: str) -> None:
        """Several statements at once (a migration), without parameters."""
        await self._conn.execute(sql)


def public_url(url: str) -> str:
    """The URL without its password (for logs, ``doctor`` and ``Database.path``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host))


class PgDatabase(Database):
    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self.path = public_url(url)
        self.migrations_applied = ()

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
        min_size: int = 1,
        max_size: int = 10,
    ) -> PgDatabase:
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, command_timeout=60
            )
        except (OSError, asyncpg.PostgresError) as exc:
            # the URL may carry a password: name the server without it
            raise StorageError(
                f"cannot connect to PostgreSQL at {public_url(url)}: {type(exc).__name__}"
            ) from exc
        db = cls(pool, url)
        try:
            db.migrations_applied = tuple(await apply_migrations(db, migrations))
        except BaseException:
            await pool.close()
            raise
        return db

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self, *, shared: bool = False) -> AsyncIterator[Tx]:
        self._check_not_nested()
        async with self._pool.acquire() as conn:
            token = _in_transaction.set(True)
            try:
                async with conn.transaction():
                    if not shared:
                        await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
                    yield PgTx(conn)
            finally:
                _in_transaction.reset(token)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        self._check_not_nested()
        row: Any = await self._pool.fetchrow(placeholders(sql), *params)
        return cast(Row | None, row)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        self._check_not_nested()
        rows: Any = await self._pool.fetch(placeholders(sql), *params)
        return cast(list[Row], rows)
