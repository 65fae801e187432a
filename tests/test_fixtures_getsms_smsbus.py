"""Replay the fixture bodies (tests/fixtures/getsms, tests/fixtures/smsbus) through the adapters
over real HTTP: each parses to what its ``expect`` says, or raises the named typed error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.money import Money
from bot.providers import base
from bot.providers.base import Offer, Order, OrderKind, Provider
from bot.providers.getsms import GetSmsProvider
from bot.providers.http import RetryPolicy
from bot.providers.smsbus import SmsBusProvider
from tests.helpers import provider_http, serve_locally

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "fixture-Key-0042"


def fixtures(provider: str) -> list[Path]:
    return sorted((FIXTURES / provider).glob("*.json"))


class BodyServer:
    """Serves one fixture body to every request on 127.0.0.1."""

    def __init__(self, fixture: dict[str, Any]) -> None:
        self.fixture = fixture
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._serve)
        self.runner = web.AppRunner(self.app)
        self.base_url = ""

    async def _serve(self, request: web.Request) -> web.Response:
        # ``also``: bodies for the other calls the operation makes first (by ``method``).
        also = self.fixture.get("also", {}).get(request.query.get("method", ""))
        if also is not None:
            return web.json_response(also)
        return web.json_response(self.fixture["body"], status=self.fixture["http_status"])

    async def __aenter__(self) -> BodyServer:
        self.base_url = await serve_locally(self.runner)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


@pytest.fixture
def no_retry() -> RetryPolicy:
    return RetryPolicy(attempts=1, initial_delay=0.001, max_delay=0.01)


def adapter(name: str, base_url: str, client: httpx.AsyncClient, retry: RetryPolicy) -> Provider:
    http = provider_http(name, client, base_url, KEY, retry, 5.0)
    if name == "getsms":
        return GetSmsProvider(http, KEY, currency="USD")
    return SmsBusProvider(http, KEY)


def offer(name: str) -> Offer:
    ref = "ru" if name == "getsms" else "1:1"
    price = Money(Decimal("0.5"), "USD")
    return Offer(name, "tg", "RU", OrderKind.ACTIVATION, price, 1, ref=ref)


async def run(name: str, op: str, provider: Provider) -> str:
    order = Order(name, "377253343", OrderKind.ACTIVATION, "79969817867", "tg", "RU")
    if op == "buy":
        bought = await provider.buy(offer(name))
        return f"order:{bought.order_id}:{bought.phone}"
    if op == "state":
        state = await provider.state(order)
        codes = ",".join(m.code or "" for m in state.messages)
        return state.status.value + (f":{codes}" if state.messages else "")
    if op == "cancel":
        outcome = await provider.cancel(order)
        return f"cancelled:{outcome.refund.value}"
    if op == "balance":
        return str(await provider.balance())
    raise AssertionError(f"unknown op {op}")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http_client:
        yield http_client


@pytest.mark.parametrize(
    ("name", "path"),
    [(name, path) for name in ("getsms", "smsbus") for path in fixtures(name)],
    ids=lambda value: value.name if isinstance(value, Path) else value,
)
async def test_fixture_is_read_as_expected(
    name: str, path: Path, client: httpx.AsyncClient, no_retry: RetryPolicy
) -> None:
    fixture = json.loads(path.read_bytes().decode("utf-8"))  # noqa: ASYNC240 - a tiny file
    assert fixture["source"] in ("docs", "docs-copy", "public-client", "issue")
    async with BodyServer(fixture) as server:
        provider = adapter(name, server.base_url, client, no_retry)
        expect: str = fixture["expect"]
        if expect.startswith("error:"):
            error = getattr(base, expect.removeprefix("error:"))
            with pytest.raises(error) as info:
                await run(name, fixture["op"], provider)
            assert type(info.value) is error  # exactly that, not a subclass like "unknown"
            assert KEY not in str(info.value)
        else:
            assert await run(name, fixture["op"], provider) == expect


def test_every_fixture_folder_says_where_its_bodies_come_from() -> None:
    for name in ("getsms", "smsbus"):
        assert fixtures(name), name
        assert "source" in (FIXTURES / name / "README.md").read_text("utf-8").lower()
