"""Fixtures every test module may use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.providers.http import RetryPolicy
from tests.emulators.base import FakeClock
from tests.services import fresh_postgres_schema
from tests.stack import Stack, running_stack


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def fast_retry() -> RetryPolicy:
    """Retries without real waiting worth noticing."""
    return RetryPolicy(attempts=3, initial_delay=0.001, max_delay=0.01)


@pytest.fixture
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    """The bot with all four providers (emulated) and a fake Bot API."""
    if "stack_database" in request.fixturenames:
        request.getfixturevalue("stack_database")  # before the stack is made
    async with running_stack(tmp_path) as running:
        yield running


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module marked ``both_databases`` runs each test on SQLite and on PostgreSQL."""
    if metafunc.definition.get_closest_marker("both_databases") is None:
        return
    if "stack_database" not in metafunc.fixturenames:
        metafunc.fixturenames.append("stack_database")
    metafunc.parametrize("stack_database", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def stack_database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """What ``running_stack`` opens in this test: ``sqlite`` or ``postgresql``."""
    backend = str(getattr(request, "param", "sqlite"))
    monkeypatch.setenv("TEST_STACK_DATABASE", backend)
    return backend


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_location(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Where a storage test's database lives: a new SQLite file, then a new schema of the
    test PostgreSQL (the same test runs on both)."""
    if request.param == "sqlite":
        yield str(tmp_path / "data" / "bot.sqlite3")
        return
    async with fresh_postgres_schema() as url:
        yield url
