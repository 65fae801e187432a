"""Replay the fixture bodies (tests/fixtures/smsonline, tests/fixtures/beesms) through the real
adapters over real HTTP on 127.0.0.1: each parses to exactly what its ``expect`` says (price,
number, status, dates, SMS), or raises exactly the typed error it names.

A fixture is ``{"op", "call", "source", "origin", "http_status", "body" | "body_text", "expect"}``
with optional ``clock`` (the adapter's now), ``routes`` (bodies for the other calls the
operation makes) and ``xfail`` (a known adapter defect: the test keeps the correct reading).
``call`` is the SMS-Activate ``action`` (SMS.online) or the URL path (BEE-SMS). Every request
the adapter makes must be one the fixture answers; anything else fails the test.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.money import Money
from bot.providers import base
from bot.providers.base import (
    Offer,
    Order,
    OrderKind,
    OrderState,
    ProviderError,
    RemoteOrder,
    RenewalOption,
)
from bot.providers.beesms import BeeSmsProvider
from bot.providers.http import ProviderHttp, RetryPolicy
from bot.providers.smsonline import SmsOnlineProvider, parse_webhook
from tests.emulators.base import FakeClock
from tests.helpers import provider_http, serve_locally

FIXTURES = Path(__file__).parent / "fixtures"
PROVIDERS = ("smsonline", "beesms")
KEY = "fixture-Key-0077-secret"
SOURCES = frozenset(
    {
        "docs",  # ../shared/provider-docs
        "docs-copy",  # a vendor's own API page, stored in public material
        "docs-shape",  # a documented shape whose values come from a public client
        "live-capture",  # a public client that says it recorded the answer from a live server
        "public-client",  # a body written in a public client's code or tests
        "public-client-shape",  # a shape several public clients read; values illustrative
        "public-client-claim",  # a shape a public client says the server sends; no body found
        "public-client-code",  # an error code a public client handles; message not recorded
    }
)


def fixture_paths(provider: str) -> list[Path]:
    return sorted((FIXTURES / provider).glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


class FixtureServer:
    """Answers the fixture's ``call`` with its body, other known calls from ``routes``, and
    anything else with a 404 that the test then reports."""

    def __init__(self, provider: str, fixture: dict[str, Any]) -> None:
        self.provider = provider
        self.fixture = fixture
        self.calls: list[str] = []
        self.unexpected: list[str] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self.runner = web.AppRunner(app)
        self.base_url = ""

    def _call_of(self, request: web.Request) -> str:
        if self.provider == "smsonline":
            return request.query.get("action", "")
        return request.path

    async def _serve(self, request: web.Request) -> web.Response:
        call = self._call_of(request)
        self.calls.append(call)
        if call == self.fixture["call"]:
            status = int(self.fixture["http_status"])
            if "body_text" in self.fixture:
                return web.Response(text=self.fixture["body_text"], status=status)
            return web.json_response(self.fixture["body"], status=status)
        route = self.fixture.get("routes", {}).get(call)
        if route is not None:
            return web.json_response(route["body"])
        self.unexpected.append(call)
        return web.Response(text=f"no fixture for {call}", status=404)

    async def __aenter__(self) -> FixtureServer:
        self.base_url = await serve_locally(self.runner)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


# --- what the adapters are asked, and how their answers are written down ---------------------


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else "-"


def _state(state: OrderState) -> str:
    head = state.status.value + (f":{_iso(state.expires_at)}" if state.expires_at else "")
    messages = [
        f"{sms.sender}:{sms.text}"
        + (f":{sms.code}" if sms.code else "")
        + f":{_iso(sms.received_at)}"
        for sms in state.messages
    ]
    return "|".join([head, *messages])


def _listed(orders: list[RemoteOrder]) -> str:
    return ";".join(
        f"{o.order_id}:{o.phone}:{o.status.value}"
        + (f":{_iso(o.expires_at)}" if o.expires_at else "")
        for o in orders
    )


def _options(options: list[RenewalOption]) -> str:
    return ";".join(f"{o.duration_hours}h:{o.price}" for o in options)


def _offers(offers: list[Offer]) -> str:
    return ";".join(f"{o.duration_hours}h:{o.price}:stock={o.stock}" for o in offers)


def _bought(order: Order) -> str:
    return f"order:{order.order_id}:{order.phone}:{order.price}:{_iso(order.expires_at)}"


def smsonline_case(
    http: httpx.AsyncClient, base_url: str, clock: FakeClock
) -> tuple[SmsOnlineProvider, Offer, Order, int]:
    provider = SmsOnlineProvider(_http("smsonline", http, base_url), KEY, clock=clock)
    offer = Offer(
        "smsonline", "tg", "RU", OrderKind.RENTAL, Money(Decimal("0.5"), "USD"), 10, 4, ref="0"
    )
    order = Order(
        "smsonline",
        "1049",
        OrderKind.RENTAL,
        "79959707564",
        "tg",
        "RU",
        duration_hours=4,
        meta={"country_id": "0"},
        bought_at=clock.now(),
    )
    return provider, offer, order, 4


def beesms_case(
    http: httpx.AsyncClient, base_url: str, clock: FakeClock
) -> tuple[BeeSmsProvider, Offer, Order, int]:
    provider = BeeSmsProvider(_http("beesms", http, base_url), KEY, clock=clock)
    offer = Offer(
        "beesms",
        "tg",
        "US",
        OrderKind.RENTAL,
        Money(Decimal("14.25"), "USD"),
        24,
        720,
        ref="tg|us|30",
    )
    order = Order(
        "beesms",
        "3541517119212500001",
        OrderKind.RENTAL,
        "14155552671",
        "tg",
        "US",
        duration_hours=720,
        meta={"service": "tg", "area": "us", "mobile_number": "4155552671", "dialing_code": "1"},
        bought_at=clock.now(),
    )
    return provider, offer, order, 720


def _http(name: str, client: httpx.AsyncClient, base_url: str) -> ProviderHttp:
    retry = RetryPolicy(attempts=1, initial_delay=0.001, max_delay=0.01)
    return provider_http(name, client, base_url, KEY, retry, 5.0)


async def run(
    name: str, op: str, client: httpx.AsyncClient, base_url: str, clock: FakeClock
) -> str:
    case = smsonline_case if name == "smsonline" else beesms_case
    provider, offer, order, hours = case(client, base_url, clock)
    if op == "balance":
        return str(await provider.balance())
    if op == "offers":
        return _offers(await provider.offers(offer.service, offer.country))
    if op == "buy":
        return _bought(await provider.buy(offer))
    if op == "state":
        return _state(await provider.state(order))
    if op == "cancel":
        return f"cancelled:{(await provider.cancel(order)).refund.value}"
    if op == "finish":
        await provider.finish(order)
        return "finished"
    if op == "list":
        return _listed(await provider.list_orders())
    if op == "renewal_options":
        return _options(await provider.renewal_options(order))
    if op == "renew":
        renewal = await provider.renew(order, hours)
        price = f":{renewal.price}" if renewal.price is not None else ""
        return f"renewed:{renewal.order_id}:{_iso(renewal.expires_at)}{price}"
    raise AssertionError(f"unknown op {op}")


def _cases() -> list[Any]:
    cases: list[Any] = []
    for name in PROVIDERS:
        for path in fixture_paths(name):
            reason = load(path).get("xfail")
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(name, path, marks=marks, id=f"{name}/{path.stem}"))
    return cases


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http_client:
        yield http_client


@pytest.mark.parametrize(("name", "path"), _cases())
async def test_fixture_is_read_as_expected(
    name: str, path: Path, client: httpx.AsyncClient
) -> None:
    fixture = load(path)
    assert fixture["source"] in SOURCES, fixture["source"]
    assert fixture["origin"].strip()
    expect: str = fixture["expect"]
    clock = FakeClock(datetime.fromisoformat(fixture["clock"]) if "clock" in fixture else None)

    if fixture["op"] == "webhook":  # provider -> bot: the body is parsed as the webhook gets it
        raw = json.dumps(fixture["body"]).encode()
        rent, sms = parse_webhook(raw)
        assert f"{rent}:{sms.sender}:{sms.text}:{_iso(sms.received_at)}" == expect
        return

    async with FixtureServer(name, fixture) as server:
        if expect.startswith("error:"):
            wanted = [getattr(base, e) for e in expect.removeprefix("error:").split("|")]
            with pytest.raises(ProviderError) as info:
                await run(name, fixture["op"], client, server.base_url, clock)
            # Exactly one of those, not a subclass (PurchaseOutcomeUnknown is an Unavailable).
            assert type(info.value) in wanted, f"{type(info.value).__name__}: {info.value}"
            assert KEY not in str(info.value)
        else:
            assert await run(name, fixture["op"], client, server.base_url, clock) == expect
        assert server.unexpected == [], f"calls the fixture does not answer: {server.unexpected}"
        assert fixture["call"] in server.calls, f"{fixture['call']} was never asked"


@pytest.mark.parametrize("name", PROVIDERS)
def test_every_fixture_is_listed_in_its_readme(name: str) -> None:
    readme = (FIXTURES / name / "README.md").read_text("utf-8")
    paths = fixture_paths(name)
    assert paths, name
    missing = [path.name for path in paths if f"`{path.name}`" not in readme]
    assert missing == [], f"{name}/README.md does not describe {missing}"
