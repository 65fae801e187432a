"""OfferService and CatalogService over the real adapters, talking HTTP to the emulators."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.money import CurrencyConverter, MissingExchangeRate, Money
from bot.providers.base import OrderKind, Provider, ProviderUnavailable
from bot.providers.http import RetryPolicy
from bot.providers.registry import PROVIDER_IDS, build_providers
from bot.services.catalog import CatalogService
from bot.services.offers import OfferService, OffersResult
from tests.emulators.base import FakeClock
from tests.emulators.suite import EmulatorSuite


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the process environment too: only what a test passes may count."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
async def suite(clock: FakeClock) -> AsyncIterator[EmulatorSuite]:
    suite = EmulatorSuite(clock)
    await suite.start()
    try:
        yield suite
    finally:
        await suite.stop()


class World:
    """The emulators plus a way to build the bot's providers and services over them."""

    def __init__(
        self,
        suite: EmulatorSuite,
        client: httpx.AsyncClient,
        clock: FakeClock,
        retry: RetryPolicy,
    ) -> None:
        self.suite = suite
        self.client = client
        self.clock = clock
        self.retry = retry

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {k.lower(): v for k, v in self.suite.env().items()}
        values.update(overrides)
        return Settings(_env_file=None, **values)

    def providers(self, settings: Settings) -> Mapping[str, Provider]:
        return build_providers(settings, self.client, clock=self.clock, retry=self.retry)

    def offer_service(
        self, *, cache_seconds: float = 30.0, max_cached: int = 1024, **overrides: Any
    ) -> OfferService:
        settings = self.settings(**overrides)
        return OfferService(
            self.providers(settings),
            CurrencyConverter(settings.display_currency, settings.exchange_rates),
            clock=self.clock,
            cache_seconds=cache_seconds,
            max_cached=max_cached,
        )

    def catalog_service(self, *, cache_seconds: float = 600.0) -> CatalogService:
        providers = self.providers(self.settings())
        return CatalogService(providers, clock=self.clock, cache_seconds=cache_seconds)

    def requests(self) -> dict[str, int]:
        return {pid: len(server.requests) for pid, server in self.suite.servers.items()}

    def since(self, before: Mapping[str, int]) -> dict[str, int]:
        return {pid: n - before[pid] for pid, n in self.requests().items()}


@pytest.fixture
def world(
    suite: EmulatorSuite, http_client: httpx.AsyncClient, clock: FakeClock, fast_retry: RetryPolicy
) -> World:
    return World(suite, http_client, clock, fast_retry)


def display_amounts(result: OffersResult) -> list[Decimal]:
    return [p.display_price.amount for p in result.offers]


def described(result: OffersResult) -> set[tuple[str, OrderKind, int | None, Money]]:
    return {
        (p.offer.provider, p.offer.kind, p.offer.duration_hours, p.offer.price)
        for p in result.offers
    }


# --- offers ---------------------------------------------------------------------------------


async def test_offers_from_every_provider_merged_cheapest_first(world: World) -> None:
    service = world.offer_service()

    result = await service.offers("tg", "US")

    assert (result.service, result.country, result.failures) == ("tg", "US", ())
    assert result.fetched_at == world.clock.now()
    assert {p.offer.provider for p in result.offers} == set(PROVIDER_IDS)
    amounts = display_amounts(result)
    assert amounts == sorted(amounts)
    first = result.offers[0]
    assert (first.offer.provider, first.offer.kind, first.display_price) == (
        "getsms",
        OrderKind.ACTIVATION,
        Money(Decimal("0.4000"), "USD"),
    )
    # At an equal price an activation comes before a rental.
    at_1_20 = [p.offer for p in result.offers if p.display_price.amount == Decimal("1.2")]
    assert [(o.provider, o.kind) for o in at_1_20] == [
        ("getsms", OrderKind.ACTIVATION),
        ("smsonline", OrderKind.RENTAL),
    ]
    # Nothing lost, nothing invented: exactly what the providers sell (all in stock here).
    expected = set()
    for provider in world.providers(world.settings()).values():
        for offer in await provider.offers("tg", "US"):
            expected.add((offer.provider, offer.kind, offer.duration_hours, offer.price))
    assert described(result) == expected


async def test_prices_compared_on_the_display_scale(world: World) -> None:
    service = world.offer_service(getsms_currency="RUB", exchange_rates={"RUB": Decimal("0.011")})

    result = await service.offers("tg", "US")

    assert result.failures == ()
    getsms = [p for p in result.offers if p.offer.provider == "getsms"]
    assert getsms
    for priced in getsms:
        assert priced.offer.price.currency == "RUB"
        assert priced.display_price == Money(
            (priced.offer.price.amount * Decimal("0.011")).quantize(Decimal("0.0001")), "USD"
        )
    for priced in result.offers:
        assert priced.display_price.currency == "USD"
    # 13.00 RUB (0.143 USD) sorts before SMS-BUS's 1.1 USD, though 13 > 1.1 on the raw scale.
    week = next(p for p in getsms if p.offer.duration_hours == 168)
    assert week.offer.price == Money(Decimal("13.00"), "RUB")
    smsbus = next(p for p in result.offers if p.offer.provider == "smsbus")
    assert result.offers.index(week) < result.offers.index(smsbus)
    amounts = display_amounts(result)
    assert amounts == sorted(amounts)


async def test_missing_exchange_rate_is_a_failure_not_one_to_one(world: World) -> None:
    service = world.offer_service(getsms_currency="RUB")

    result = await service.offers("tg", "US")

    assert [f.provider for f in result.failures] == ["getsms"]
    error = result.failures[0].error
    assert isinstance(error, MissingExchangeRate)
    assert (error.currency, error.display) == ("RUB", "USD")
    assert {p.offer.provider for p in result.offers} == {"smsbus", "beesms", "smsonline"}


async def test_out_of_stock_offers_are_dropped(world: World) -> None:
    # Seeded: SMS-BUS lists Google in the US with 0 left; BEE-SMS and SMS.online have stock.
    smsbus = world.providers(world.settings())["smsbus"]
    assert [o.stock for o in await smsbus.offers("go", "US")] == [0]
    service = world.offer_service()

    result = await service.offers("go", "US")

    assert result.failures == ()
    assert {p.offer.provider for p in result.offers} == {"beesms", "smsonline"}
    assert all(p.offer.stock != 0 for p in result.offers)


async def test_failing_provider_is_listed_and_the_others_still_answer(world: World) -> None:
    world.suite.smsbus.fail("5xx", times=world.retry.attempts)
    service = world.offer_service()

    result = await service.offers("tg", "US")

    assert [f.provider for f in result.failures] == ["smsbus"]
    error = result.failures[0].error
    assert isinstance(error, ProviderUnavailable)
    assert error.provider == "smsbus"
    assert "bus-test-token" not in str(error)
    assert len(world.suite.smsbus.requests) == world.retry.attempts  # retried, then gave up
    assert {p.offer.provider for p in result.offers} == {"getsms", "beesms", "smsonline"}


async def test_cache_hit_asks_no_provider(world: World) -> None:
    service = world.offer_service()
    first = await service.offers("tg", "US")
    before = world.requests()
    assert all(before.values())

    again = await service.offers("tg", "US")
    lower = await service.offers("tg", "us")

    assert again is first
    assert lower is first
    assert world.since(before) == dict.fromkeys(PROVIDER_IDS, 0)


async def test_fresh_bypasses_the_cache(world: World) -> None:
    service = world.offer_service()
    first = await service.offers("tg", "US")
    before = world.requests()

    fresh = await service.offers("tg", "US", fresh=True)

    assert fresh is not first
    assert all(world.since(before).values())
    assert await service.offers("tg", "US") is fresh  # the fresh answer is cached in turn


async def test_cache_is_per_pair(world: World) -> None:
    service = world.offer_service()
    await service.offers("tg", "US")
    before = world.requests()

    other = await service.offers("tg", "GB")

    assert other.country == "GB"
    assert any(world.since(before).values())


async def test_the_cache_is_bounded_and_forgets_the_least_recent_pair(world: World) -> None:
    service = world.offer_service(max_cached=2)
    us = await service.offers("tg", "US")
    await service.offers("tg", "GB")
    assert await service.offers("tg", "US") is us  # used again: now the most recent
    await service.offers("tg", "RU")  # a third pair: GB, the least recent, goes

    before = world.requests()
    assert await service.offers("tg", "US") is us
    assert world.since(before) == dict.fromkeys(PROVIDER_IDS, 0)
    await service.offers("tg", "GB")
    assert any(world.since(before).values())  # asked again


async def test_concurrent_calls_share_one_round_of_requests(world: World) -> None:
    before = world.requests()
    await world.offer_service().offers("tg", "US")
    one_round = world.since(before)
    service = world.offer_service()
    before = world.requests()

    a, b = await asyncio.gather(service.offers("tg", "US"), service.offers("tg", "US"))

    assert a is b
    assert world.since(before) == one_round
    assert all(one_round.values())


async def test_cache_expires_on_the_clock(world: World) -> None:
    service = world.offer_service(cache_seconds=30)
    first = await service.offers("tg", "US")
    before = world.requests()

    world.clock.advance(seconds=29)
    assert await service.offers("tg", "US") is first
    assert world.since(before) == dict.fromkeys(PROVIDER_IDS, 0)

    world.clock.advance(seconds=1)
    renewed = await service.offers("tg", "US")
    assert renewed is not first
    assert renewed.fetched_at == world.clock.now()
    assert all(world.since(before).values())


async def test_invalidate_forgets_the_pair(world: World) -> None:
    service = world.offer_service()
    first = await service.offers("tg", "US")
    before = world.requests()

    service.invalidate("tg", "us")

    assert await service.offers("tg", "US") is not first
    assert all(world.since(before).values())


# --- catalog --------------------------------------------------------------------------------


async def test_catalog_is_the_union_of_what_each_provider_sells(world: World) -> None:
    expected: set[tuple[str, str]] = set()
    for provider in world.providers(world.settings()).values():
        expected |= (await provider.catalog()).pairs

    merged = await world.catalog_service().get()

    assert merged.failed == ()
    pairs = {(s, c) for s, countries in merged.by_service.items() for c in countries}
    assert pairs == expected
    assert merged.sells("tg", "US")
    assert merged.sells("ts", "us")  # only SMS-BUS sells PayPal (its "pp") in the US
    assert merged.sells("full", "DE")  # only SMS.online
    # Only combinations someone sells: VK and the US are both known, but not together.
    assert "US" in merged.by_service["tg"]
    assert not merged.sells("vk", "US")
    assert merged.countries("vk") == ["RU"]
    assert merged.countries("tg") == ["DE", "RU", "UA", "GB", "US"]  # by English name
    assert merged.services()[:3] == ["tg", "wa", "go"]  # popular first
    assert merged.name("tg") == "Telegram"


async def test_catalog_without_a_failing_provider(world: World) -> None:
    world.suite.smsbus.fail("5xx", times=world.retry.attempts)

    merged = await world.catalog_service().get()

    assert merged.failed == ("smsbus",)
    assert not merged.sells("ts", "US")
    assert merged.sells("tg", "US")


async def test_catalog_keeps_a_failing_providers_last_good_answer(world: World) -> None:
    catalog = world.catalog_service()
    first = await catalog.get()
    assert first.sells("ts", "US")
    world.suite.smsbus.fail("5xx", times=world.retry.attempts)

    again = await catalog.get(fresh=True)

    assert again.failed == ("smsbus",)
    assert again.by_service == first.by_service


async def test_catalog_cache_fresh_and_expiry(world: World) -> None:
    catalog = world.catalog_service(cache_seconds=600)
    first = await catalog.get()
    before = world.requests()

    world.clock.advance(seconds=599)
    assert await catalog.get() is first
    assert world.since(before) == dict.fromkeys(PROVIDER_IDS, 0)

    fresh = await catalog.get(fresh=True)
    assert fresh is not first
    assert all(world.since(before).values())

    before = world.requests()
    world.clock.advance(seconds=599)
    assert await catalog.get() is fresh
    world.clock.advance(seconds=1)
    assert await catalog.get() is not fresh
    assert all(world.since(before).values())


async def test_concurrent_catalog_reads_share_one_round(world: World) -> None:
    before = world.requests()
    await world.catalog_service().get()
    one_round = world.since(before)
    catalog = world.catalog_service()
    before = world.requests()

    a, b = await asyncio.gather(catalog.get(), catalog.get())

    assert a is b
    assert world.since(before) == one_round
