"""Fixtures every test module may use."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.providers.http import RetryPolicy
from tests.emulators.base import FakeClock


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
