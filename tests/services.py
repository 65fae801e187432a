"""The PostgreSQL and Redis the tests that need them talk to.

URLs come from ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` (defaults: the machine's own servers).
Under ``CI=true`` an unreachable server fails the test; elsewhere the test is skipped with one line
saying what to start.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
import pytest

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def database_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL


def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def _require(url: str, default_port: int, what: str, start: str) -> str:
    if _reachable(url, default_port):
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} at {url} is unreachable, and CI=true needs it", pytrace=False)
    pytest.skip(f"{what} not running at {url}: start it ({start}) or set the URL")


def require_postgres() -> str:
    """The PostgreSQL URL, or skip/fail as the module docstring says."""
    return _require(
        database_url(), 5432, "PostgreSQL", "pg_ctlcluster <version> main start; TEST_DATABASE_URL"
    )


def require_redis() -> str:
    """The Redis URL, or skip/fail as the module docstring says."""
    return _require(redis_url(), 6379, "Redis", "redis-server --port 6379; TEST_REDIS_URL")


@asynccontextmanager
async def fresh_postgres_schema() -> AsyncIterator[str]:
    """A URL whose connections use a new, empty schema of the test database (dropped after)."""
    base = require_postgres()
    schema = f"test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        glue = "&" if "?" in base else "?"
        yield f"{base}{glue}search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()
