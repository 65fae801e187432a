"""Fixtures every test module may use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.providers.http import RetryPolicy
from tests.emulators.base import FakeClock
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
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """The bot with all four providers (emulated) and a fake Bot API."""
    async with running_stack(tmp_path) as running:
        yield running
