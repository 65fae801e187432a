"""The SMS-BUS adapter against its emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from bot.money import Money
from bot.providers.base import (
    AccountRestricted,
    BadCredentials,
    CancelBlock,
    Capability,
    InsufficientBalance,
    InvalidRequest,
    NoNumbers,
    Offer,
    Order,
    OrderClosed,
    OrderKind,
    PriceAboveLimit,
    Provider,
    ProviderError,
    ProviderUnavailable,
    PurchaseOutcomeUnknown,
    RefundScope,
    RemoteStatus,
    Unsupported,
)
from bot.providers.http import RetryPolicy
from bot.providers.smsbus import SmsBusProvider
from tests.emulators.base import FakeClock
from tests.emulators.smsbus import SmsBusEmulator
from tests.helpers import free_port, provider_http

KEY = "bus-SECRET-key-5f3a9c1e77"


@pytest.fixture
async def emulator(clock: FakeClock) -> AsyncIterator[SmsBusEmulator]:
    emu = SmsBusEmulator(clock, token=KEY)
    await emu.start()
    yield emu
    await emu.stop()


def make(
    base_url: str,
    client: httpx.AsyncClient,
    retry: RetryPolicy,
    *,
    key: str = KEY,
    timeout: float = 5.0,
    concurrency: int = 5,
    clock: FakeClock | None = None,
) -> SmsBusProvider:
    http = provider_http("smsbus", client, base_url, key, retry, timeout)
    return SmsBusProvider(http, key, clock=clock or FakeClock(), concurrency=concurrency)


@pytest.fixture
def provider(
    emulator: SmsBusEmulator,
    http_client: httpx.AsyncClient,
    fast_retry: RetryPolicy,
    clock: FakeClock,
) -> SmsBusProvider:
    return make(emulator.base_url, http_client, fast_retry, clock=clock)


async def offer_for(provider: SmsBusProvider, service: str, country: str) -> Offer:
    offers = await provider.offers(service, country)
    assert len(offers) == 1
    return offers[0]


async def bought(provider: SmsBusProvider, service: str = "tg", country: str = "RU") -> Order:
    return await provider.buy(await offer_for(provider, service, country))


def error(code: int, message: str = "whatever") -> dict[str, Any]:
    return {"code": code, "message": message}


# --- identity ---------------------------------------------------------------------------------


def test_identity_and_capabilities(provider: SmsBusProvider) -> None:
    assert isinstance(provider, Provider)
    assert (provider.id, provider.title, provider.currency) == ("smsbus", "SMS-BUS", "USD")
    assert provider.capabilities == {Capability.ACTIVATIONS, Capability.CANCEL, Capability.REUSE}


async def test_unsupported_operations_raise(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    order = await bought(provider)
    before = len(emulator.requests)
    for call in (
        provider.finish(order),
        provider.ban(order),
        provider.another_code(order),
        provider.renew(order, 24),
        provider.renewal_options(order),
        provider.list_orders(),
    ):
        with pytest.raises(Unsupported):
            await call
    assert len(emulator.requests) == before


# --- reads ------------------------------------------------------------------------------------


async def test_balance(provider: SmsBusProvider, emulator: SmsBusEmulator) -> None:
    emulator.set_balance("2.52")
    assert await provider.balance() == Money(Decimal("2.52"), "USD")
    query = emulator.requests[-1].query
    assert emulator.requests[-1].path == "/api/control/get/balance"
    assert query["token"] == KEY


async def test_catalog_maps_countries_and_projects(provider: SmsBusProvider) -> None:
    catalog = await provider.catalog()
    assert catalog.pairs == {
        ("tg", "RU"),
        ("wa", "RU"),
        ("tg", "US"),
        ("ts", "US"),  # project "pp" titled "Paypal" is PayPal (ts), not Huya (pp)
        ("wa", "GB"),  # country code "uk" is not ISO: the id table says 25 is GB
        ("ig", "GB"),  # "Instagram" (code "ins") by its title
        ("go", "IT"),  # "Google" by the alias
    }
    # ("go", "US") has no stock; Germany answers 50001: neither is a pair.
    assert catalog.service_names["ts"] == "Paypal"
    assert catalog.service_names["tg"] == "Telegram"


async def test_catalog_reads_strings_and_arrays(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    emulator.numbers_as_strings = True
    emulator.lists_as_arrays = True
    catalog = await provider.catalog()
    assert ("ts", "US") in catalog.pairs
    assert len(catalog.pairs) == 7
    offer = await offer_for(provider, "ts", "US")
    assert offer.price == Money(Decimal("0.9"), "USD")
    assert offer.stock == 1023


async def test_catalog_skips_unknown_country_and_uses_code_fallback(
    provider: SmsBusProvider, emulator: SmsBusEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.add_country(900, "Atlantis", "xx")  # neither ISO nor in the id table
    emulator.add_project(9, "Some Unknown Messenger", "vk")  # no title match: by code
    emulator.set_price(900, 1, "0.10", 5)
    emulator.set_price(1, 9, "0.10", 5)
    caplog.set_level(logging.DEBUG, logger="bot.providers.smsbus")
    catalog = await provider.catalog()
    assert ("vk", "RU") in catalog.pairs
    assert all(country != "XX" for _, country in catalog.pairs)
    assert "skipping country 900" in caplog.text


async def test_title_match_beats_code_match(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    emulator.add_project(7, "Something", "ts")  # by code it would also claim ts
    emulator.set_price(5, 7, "0.01", 50)
    offers = await provider.offers("ts", "US")
    assert [o.price.amount for o in offers] == [Decimal("0.9")]
    assert offers[0].ref == "5:2"


async def test_catalog_concurrency_is_bounded(
    emulator: SmsBusEmulator, http_client: httpx.AsyncClient, fast_retry: RetryPolicy
) -> None:
    for cid in range(300, 310):
        emulator.add_country(cid, "Somewhere", "fr")
        emulator.set_price(cid, 1, "0.10", 1)
    emulator.latency = 0.02
    provider = make(emulator.base_url, http_client, fast_retry, concurrency=2)
    catalog = await provider.catalog()
    assert ("tg", "FR") in catalog.pairs
    assert emulator.calls("prices") == 15
    assert emulator.max_prices_in_flight <= 2


async def test_catalog_fails_when_a_country_fails(
    emulator: SmsBusEmulator, http_client: httpx.AsyncClient, fast_retry: RetryPolicy
) -> None:
    provider = make(emulator.base_url, http_client, fast_retry, concurrency=1)
    emulator.force("prices", error(59999, "boom"), times=3)  # every try of the first country
    with pytest.raises(ProviderUnavailable, match="59999"):
        await provider.catalog()
    assert emulator.calls("prices") == 3 + 4  # the other countries were still asked


async def test_offers(provider: SmsBusProvider, emulator: SmsBusEmulator) -> None:
    offer = await offer_for(provider, "ts", "us")
    assert offer == Offer(
        provider="smsbus",
        service="ts",
        country="US",
        kind=OrderKind.ACTIVATION,
        price=Money(Decimal("0.9"), "USD"),
        stock=1023,
        ref="5:2",
    )
    assert emulator.requests[-1].query["country_id"] == "5"
    # An out-of-stock project is still an offer, with stock 0.
    assert (await offer_for(provider, "go", "US")).stock == 0
    assert await provider.offers("tg", "DE") == []  # 50001: nothing sold in Germany
    assert await provider.offers("tg", "JP") == []  # a country SMS-BUS does not list
    assert await provider.offers("pp", "US") == []  # Huya is not sold


async def test_offers_cache_the_id_maps(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    await provider.offers("tg", "RU")
    await provider.offers("wa", "RU")
    await provider.buy(await offer_for(provider, "tg", "US"))
    assert emulator.calls("countries") == 1
    assert emulator.calls("projects") == 1


async def test_reads_retry_a_transient_fault(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    emulator.fail("5xx")
    assert await provider.balance() == Money(Decimal("10.00"), "USD")
    assert emulator.calls("balance") == 2
    emulator.fail("garbage")
    assert len(await provider.offers("tg", "RU")) == 1


async def test_read_gives_up_after_the_retry_budget(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    emulator.fail("5xx", times=3)
    with pytest.raises(ProviderUnavailable) as info:
        await provider.balance()
    assert not isinstance(info.value, PurchaseOutcomeUnknown)
    assert emulator.calls("balance") == 3


@pytest.mark.parametrize(
    "data",
    [
        "abc",
        {"frozen": 0},
        {"balance": "lots"},
        None,
    ],
)
async def test_balance_with_unexpected_data_is_unavailable(
    provider: SmsBusProvider, emulator: SmsBusEmulator, data: Any
) -> None:
    emulator.force("balance", {"code": 200, "message": "ok", "data": data}, times=3)
    with pytest.raises(ProviderUnavailable):
        await provider.balance()


@pytest.mark.parametrize(
    "body",
    [
        {"code": 200, "data": "not a collection"},
        {"code": 200, "data": {"1": {"project_id": 1, "total_count": 3}}},  # no cost
        {"code": 200, "data": {"1": "x"}},
        {"message": "no code at all"},
        [1, 2, 3],
    ],
)
async def test_prices_with_unexpected_shapes_are_unavailable(
    provider: SmsBusProvider, emulator: SmsBusEmulator, body: Any
) -> None:
    await provider.offers("tg", "RU")  # load the maps first
    emulator.force("prices", body, times=3)
    with pytest.raises(ProviderUnavailable):
        await provider.offers("tg", "RU")


async def test_empty_prices_are_no_offers(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    await provider.offers("tg", "RU")
    emulator.force("prices", {"code": 200, "message": "ok", "data": []})
    assert await provider.offers("tg", "RU") == []


# --- buy, state, cancel -----------------------------------------------------------------------


async def test_buy_holds_money_and_returns_order(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    offer = await offer_for(provider, "ts", "US")
    order = await provider.buy(offer)
    query = emulator.requests[-1].query
    assert (query["country_id"], query["project_id"]) == ("5", "2")
    assert order.provider == "smsbus"
    assert order.kind is OrderKind.ACTIVATION
    assert (order.service, order.country) == ("ts", "US")
    assert order.phone.startswith("1") and order.phone.isdigit()
    assert order.price == Money(Decimal("0.9"), "USD")
    assert order.expires_at is None
    assert order.meta == {"country_id": "5", "project_id": "2"}
    request = emulator.orders[int(order.order_id)]
    assert request.number == order.phone
    assert emulator.balance == Decimal("9.10")
    assert emulator.frozen == Decimal("0.90")
    assert emulator.prices[(5, 2)].count == 1022


async def test_buy_without_ref_uses_the_maps(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    offer = await offer_for(provider, "wa", "GB")
    plain = Offer("smsbus", "wa", "GB", OrderKind.ACTIVATION, offer.price, None)
    order = await provider.buy(plain)
    assert order.meta == {"country_id": "25", "project_id": "3"}
    assert order.phone.startswith("44")


async def test_buy_refuses_what_it_cannot_do(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    offer = await offer_for(provider, "tg", "RU")
    with pytest.raises(PriceAboveLimit):
        await provider.buy(offer, max_price=Money(Decimal("0.10"), "USD"))
    with pytest.raises(Unsupported):
        await provider.buy(offer, auto_renew=True)
    rental = Offer("smsbus", "tg", "RU", OrderKind.RENTAL, offer.price, 5, 24, offer.ref)
    with pytest.raises(InvalidRequest):
        await provider.buy(rental)
    with pytest.raises(InvalidRequest):
        await provider.buy(Offer("smsbus", "xyz", "RU", OrderKind.ACTIVATION, offer.price, 1))
    assert emulator.calls("number") == 0
    order = await provider.buy(offer, max_price=Money(Decimal("0.25"), "USD"))
    assert order.order_id


async def test_state_waiting_then_code(provider: SmsBusProvider, emulator: SmsBusEmulator) -> None:
    order = await bought(provider)
    state = await provider.state(order)
    assert state.status is RemoteStatus.WAITING
    assert state.messages == ()
    emulator.inject_code(order.order_id, "429916")
    first = await provider.state(order)
    second = await provider.state(order)
    assert first.status is RemoteStatus.FINISHED  # the request closes with its code
    assert len(first.messages) == 1
    sms = first.messages[0]
    assert (sms.code, sms.text) == ("429916", None)
    assert second.messages == first.messages  # the id is stable across polls
    assert emulator.requests[-1].query["request_id"] == order.order_id
    # The held price was charged, not returned.
    assert emulator.frozen == 0
    assert emulator.balance == Decimal("9.75")


async def test_numeric_code_is_read_as_text(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    order = await bought(provider)
    emulator.force("sms", {"code": 200, "message": "ok", "data": 12345})
    state = await provider.state(order)
    assert state.messages[0].code == "12345"


async def test_empty_code_is_unavailable(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    order = await bought(provider)
    emulator.force("sms", {"code": 200, "message": "ok", "data": ""}, times=3)
    with pytest.raises(ProviderUnavailable):
        await provider.state(order)


async def test_timeout_expires_and_releases_money(
    provider: SmsBusProvider, emulator: SmsBusEmulator, clock: FakeClock
) -> None:
    order = await bought(provider)
    clock.advance(minutes=19, seconds=59)
    assert (await provider.state(order)).status is RemoteStatus.WAITING
    clock.advance(seconds=1)
    assert (await provider.state(order)).status is RemoteStatus.EXPIRED
    assert emulator.balance == Decimal("10.00")
    assert emulator.frozen == 0
    with pytest.raises(OrderClosed):
        await provider.cancel(order)


async def test_configurable_lifetime(
    http_client: httpx.AsyncClient, fast_retry: RetryPolicy, clock: FakeClock
) -> None:
    async with SmsBusEmulator(clock, token=KEY, lifetime=timedelta(minutes=5)) as emu:
        assert isinstance(emu, SmsBusEmulator)
        provider = make(emu.base_url, http_client, fast_retry, clock=clock)
        order = await bought(provider)
        clock.advance(minutes=5)
        assert (await provider.state(order)).status is RemoteStatus.EXPIRED


async def test_cancel(provider: SmsBusProvider, emulator: SmsBusEmulator) -> None:
    order = await bought(provider, "wa", "RU")
    outcome = await provider.cancel(order)
    assert outcome.refund is RefundScope.ALL
    assert emulator.requests[-1].query["request_id"] == order.order_id
    assert emulator.balance == Decimal("10.00")
    assert emulator.frozen == 0
    assert emulator.prices[(1, 3)].count == 120
    # get/sms answers 50102 "released or timeout" for both: this adapter knows it cancelled.
    assert (await provider.state(order)).status is RemoteStatus.CANCELLED
    with pytest.raises(OrderClosed):
        await provider.cancel(order)


async def test_a_cancel_whose_answer_was_lost_reads_as_cancelled(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    order = await bought(provider)
    other = await bought(provider)
    emulator.fail("5xx")
    with pytest.raises(PurchaseOutcomeUnknown):
        await provider.cancel(order)
    for request in (order, other):  # released at the provider (by the cancel, or its timeout)
        emulator.expire(request.order_id)
    assert (await provider.state(order)).status is RemoteStatus.CANCELLED
    assert (await provider.state(other)).status is RemoteStatus.EXPIRED


def test_kinds_listed_windows_and_cancel_terms(provider: SmsBusProvider) -> None:
    assert provider.listed_kinds == frozenset()  # the API has no order list
    assert provider.unclaimed_window(OrderKind.ACTIVATION) >= timedelta(minutes=20)
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    order = Order("smsbus", "7", OrderKind.ACTIVATION, "7900", "tg", "RU", bought_at=now)
    terms = provider.cancel_terms(order, [], now)
    assert (terms.blocked, terms.refund, terms.opens_at) == (None, RefundScope.ALL, None)
    # The request closes with its code: cancel would answer 50103.
    used = provider.cancel_terms(order, [now], now)
    assert (used.blocked, used.refund) == (CancelBlock.SMS_RECEIVED, RefundScope.NONE)
    rental = dataclasses.replace(order, kind=OrderKind.RENTAL)
    assert provider.cancel_terms(rental, [], now).blocked is CancelBlock.UNSUPPORTED


async def test_price_rows_numbering_countries_otherwise_are_read(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    # The doc's examples number countries two ways (list/countries: USA 1; list/prices: 5).
    emulator.row_country_ids = {1: 2, 5: 1}
    offer = await offer_for(provider, "tg", "RU")
    assert (offer.country, offer.ref, offer.price) == ("RU", "1:1", Money(Decimal("0.25"), "USD"))
    assert (await offer_for(provider, "ts", "US")).stock == 1023
    catalog = await provider.catalog()
    assert {("tg", "RU"), ("ts", "US")} <= catalog.pairs


async def test_a_price_row_naming_another_country_is_skipped_loudly(
    provider: SmsBusProvider, emulator: SmsBusEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    await provider.offers("tg", "RU")  # id maps loaded
    row = {"country_id": 5, "project_id": 1, "cost": 1.1, "total_count": 80, "code": "us"}
    emulator.force(
        "prices",
        {"code": 200, "message": "Operation Success", "data": {"5": row}},
    )
    with caplog.at_level(logging.WARNING, "bot.providers.smsbus"):
        assert await provider.offers("tg", "RU") == []
    assert "has a row for US" in caplog.text


async def test_cloudflare_refusal_of_a_purchase_is_not_an_unknown_outcome(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    offer = await offer_for(provider, "tg", "RU")
    emulator.force_html("number", 403)
    with pytest.raises(ProviderUnavailable) as info:
        await provider.buy(offer)
    assert not isinstance(info.value, PurchaseOutcomeUnknown)  # nothing was bought
    assert "Cloudflare" in str(info.value) and KEY not in str(info.value)
    assert emulator.orders == {} and emulator.balance == Decimal("10.00")
    emulator.force_html("cancel", 403)
    order = await bought(provider)
    with pytest.raises(ProviderUnavailable) as cancel_info:
        await provider.cancel(order)
    assert not isinstance(cancel_info.value, PurchaseOutcomeUnknown)
    assert emulator.orders[int(order.order_id)].status == "waiting"


async def test_cancel_after_code_is_closed(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    order = await bought(provider)
    emulator.inject_code(order.order_id, "1111")
    with pytest.raises(OrderClosed):
        await provider.cancel(order)
    assert emulator.calls("cancel") == 1


# --- reuse ------------------------------------------------------------------------------------


async def received(provider: SmsBusProvider, emulator: SmsBusEmulator) -> Order:
    order = await bought(provider, "ts", "US")
    emulator.inject_code(order.order_id, "777000")
    return order


async def test_reuse(provider: SmsBusProvider, emulator: SmsBusEmulator) -> None:
    first = await received(provider, emulator)
    again = await provider.reuse(first)
    query = emulator.requests[-1].query
    assert (query["country_id"], query["project_id"]) == ("5", "2")
    assert query["mobile_number"] == first.phone
    assert again.order_id != first.order_id
    assert (again.phone, again.service, again.country) == (first.phone, "ts", "US")
    assert again.meta == first.meta
    assert again.kind is OrderKind.ACTIVATION
    assert (await provider.state(again)).status is RemoteStatus.WAITING
    assert emulator.frozen == Decimal("0.90")


async def test_reuse_errors(provider: SmsBusProvider, emulator: SmsBusEmulator) -> None:
    first = await received(provider, emulator)
    stranger = Order(
        "smsbus", "1", OrderKind.ACTIVATION, "15550000000", "ts", "US", meta=first.meta
    )
    with pytest.raises(InvalidRequest, match="50007"):
        await provider.reuse(stranger)
    no_sms = await bought(provider, "ts", "US")
    with pytest.raises(InvalidRequest, match="50107"):
        await provider.reuse(no_sms)
    busy = await provider.reuse(first)
    with pytest.raises(InvalidRequest, match="50108"):
        await provider.reuse(first)  # the number is already waiting again
    await provider.cancel(busy)
    emulator.forbid_reuse(first.phone)
    with pytest.raises(InvalidRequest, match="50108"):
        await provider.reuse(first)


async def test_reuse_expired_number(
    provider: SmsBusProvider, emulator: SmsBusEmulator, clock: FakeClock
) -> None:
    first = await received(provider, emulator)
    clock.advance(days=1, seconds=1)
    with pytest.raises(OrderClosed, match="50109"):
        await provider.reuse(first)


async def test_reuse_money_and_service_errors(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    first = await received(provider, emulator)
    emulator.set_balance("0.10")
    with pytest.raises(InsufficientBalance):
        await provider.reuse(first)
    emulator.set_balance("10")
    emulator.activated = False
    with pytest.raises(AccountRestricted, match="50208"):
        await provider.reuse(first)
    emulator.activated = True
    emulator.remove_price(5, 2)
    with pytest.raises(NoNumbers, match="50001"):
        await provider.reuse(first)
    assert emulator.calls("reuse") == 3


async def test_reuse_wrong_token_is_bad_credentials(
    emulator: SmsBusEmulator, http_client: httpx.AsyncClient, fast_retry: RetryPolicy
) -> None:
    order = Order(
        "smsbus",
        "5",
        OrderKind.ACTIVATION,
        "1555",
        "ts",
        "US",
        meta={"country_id": "5", "project_id": "2"},
    )
    provider = make(emulator.base_url, http_client, fast_retry, key="wrong-key-123456")
    with pytest.raises(BadCredentials):
        await provider.reuse(order)
    assert emulator.requests[-1].path == "/api/control/reuse"  # answered HTTP 400 "Wrong token!"


# --- error codes ------------------------------------------------------------------------------


async def test_wrong_token(
    emulator: SmsBusEmulator, http_client: httpx.AsyncClient, fast_retry: RetryPolicy
) -> None:
    provider = make(emulator.base_url, http_client, fast_retry, key="wrong-key-123456")
    with pytest.raises(BadCredentials):
        await provider.balance()
    assert emulator.calls("balance") == 1  # not retried
    with pytest.raises(BadCredentials):
        await provider.catalog()


async def test_buy_out_of_stock(provider: SmsBusProvider, emulator: SmsBusEmulator) -> None:
    offer = await offer_for(provider, "go", "US")
    with pytest.raises(NoNumbers, match="50002"):
        await provider.buy(offer)


async def test_buy_insufficient_balance(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    offer = await offer_for(provider, "tg", "US")
    emulator.set_balance("1.00")
    with pytest.raises(InsufficientBalance):
        await provider.buy(offer)
    assert emulator.balance == Decimal("1.00")


async def test_buy_waiting_limit(provider: SmsBusProvider, emulator: SmsBusEmulator) -> None:
    emulator.waiting_limit = 2
    offer = await offer_for(provider, "tg", "RU")
    first = await provider.buy(offer)
    await provider.buy(offer)
    with pytest.raises(AccountRestricted, match="50104"):
        await provider.buy(offer)
    await provider.cancel(first)
    assert (await provider.buy(offer)).order_id


async def test_buy_account_not_activated(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    offer = await offer_for(provider, "tg", "RU")
    emulator.activated = False
    with pytest.raises(AccountRestricted, match="50208"):
        await provider.buy(offer)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        (50001, 200, NoNumbers),
        (50002, 200, NoNumbers),
        (50104, 403, AccountRestricted),  # the body's code decides, whatever the HTTP status
        (50201, 402, InsufficientBalance),
        (50208, 200, AccountRestricted),
        (401, 401, BadCredentials),
        (401, 200, BadCredentials),
        (50201, 500, InsufficientBalance),
    ],
)
async def test_buy_error_codes(
    provider: SmsBusProvider,
    emulator: SmsBusEmulator,
    code: int,
    status: int,
    expected: type[ProviderError],
) -> None:
    offer = await offer_for(provider, "tg", "RU")
    emulator.force("number", error(code), status=status)
    with pytest.raises(expected) as info:
        await provider.buy(offer)
    assert not isinstance(info.value, ProviderUnavailable)
    assert str(code) in str(info.value)


async def test_message_mentioning_token_is_bad_credentials(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    emulator.force("balance", error(400, "Wrong token!"), status=400)
    with pytest.raises(BadCredentials):
        await provider.balance()


async def test_unknown_code_is_unavailable_with_the_code(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    offer = await offer_for(provider, "tg", "RU")
    emulator.force("number", error(59999, "Something new"))
    with pytest.raises(ProviderUnavailable) as info:
        await provider.buy(offer)
    assert not isinstance(info.value, PurchaseOutcomeUnknown)  # a clear refusal
    assert "59999" in str(info.value)
    emulator.force("number", error(59998, "Gateway trouble"), status=502)
    with pytest.raises(PurchaseOutcomeUnknown, match="59998"):
        await provider.buy(offer)


async def test_state_unknown_code(provider: SmsBusProvider, emulator: SmsBusEmulator) -> None:
    order = await bought(provider)
    emulator.force("sms", error(50555, "odd"), times=3)
    with pytest.raises(ProviderUnavailable, match="50555"):
        await provider.state(order)
    assert emulator.calls("sms") == 3  # a read: retried


# --- lost answers -----------------------------------------------------------------------------


async def test_buy_garbage_is_outcome_unknown_and_not_retried(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    offer = await offer_for(provider, "tg", "RU")
    emulator.fail("garbage")
    with pytest.raises(PurchaseOutcomeUnknown):
        await provider.buy(offer)
    assert emulator.calls("number") == 1


async def test_buy_success_with_unexpected_data_is_outcome_unknown(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    offer = await offer_for(provider, "tg", "RU")
    emulator.force("number", {"code": 200, "message": "ok", "data": {"number": "7999"}})
    with pytest.raises(PurchaseOutcomeUnknown):
        await provider.buy(offer)
    assert emulator.calls("number") == 1


async def test_cancel_5xx_is_outcome_unknown(
    provider: SmsBusProvider, emulator: SmsBusEmulator
) -> None:
    order = await bought(provider)
    emulator.fail("5xx")
    with pytest.raises(PurchaseOutcomeUnknown):
        await provider.cancel(order)
    assert emulator.calls("cancel") == 1


async def test_buy_refused_connection_is_unavailable_not_unknown(
    http_client: httpx.AsyncClient, fast_retry: RetryPolicy
) -> None:
    provider = make(f"http://127.0.0.1:{free_port()}", http_client, fast_retry)
    offer = Offer(
        "smsbus", "tg", "RU", OrderKind.ACTIVATION, Money(Decimal(1), "USD"), 1, ref="1:1"
    )
    with pytest.raises(ProviderUnavailable) as info:
        await provider.buy(offer)
    assert not isinstance(info.value, PurchaseOutcomeUnknown)


async def test_timeouts(
    emulator: SmsBusEmulator, http_client: httpx.AsyncClient, fast_retry: RetryPolicy
) -> None:
    provider = make(emulator.base_url, http_client, fast_retry, timeout=0.2)
    offer = await offer_for(provider, "tg", "RU")
    emulator.fail("timeout")
    with pytest.raises(PurchaseOutcomeUnknown, match="timed out"):
        await provider.buy(offer)
    assert emulator.calls("number") == 1
    emulator.fail("timeout", times=3)
    with pytest.raises(ProviderUnavailable, match="timed out"):
        await provider.balance()
    assert emulator.calls("balance") == 3
    emulator.release()


# --- secrets ----------------------------------------------------------------------------------


async def test_key_never_leaks(
    emulator: SmsBusEmulator,
    http_client: httpx.AsyncClient,
    fast_retry: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = make(emulator.base_url, http_client, fast_retry, timeout=0.2)
    offer = await offer_for(provider, "tg", "RU")
    errors: list[ProviderError] = []

    async def collect(call: Any) -> None:
        try:
            await call
        except ProviderError as exc:
            errors.append(exc)
        else:
            raise AssertionError("expected a ProviderError")

    emulator.fail("garbage")
    await collect(provider.buy(offer))
    emulator.fail("5xx", times=3)
    await collect(provider.balance())
    emulator.fail("timeout")
    await collect(provider.buy(offer))
    emulator.force("balance", error(59999, f"echo {KEY}"), times=3)  # retried: all 3 used
    await collect(provider.balance())
    emulator.force("balance", error(401, f"Wrong token! token={KEY}&x=1"))
    await collect(provider.balance())
    emulator.force("number", {"code": 200, "data": {"bad": KEY}})
    await collect(provider.buy(offer))
    refused = make(f"http://127.0.0.1:{free_port()}", http_client, fast_retry)
    await collect(refused.balance())
    wrong = make(emulator.base_url, http_client, fast_retry, key="another-secret-98765")
    await collect(wrong.balance())
    emulator.release()

    assert len(errors) == 8
    for exc in errors:
        assert KEY not in str(exc) and KEY not in repr(exc.args)
        assert "another-secret-98765" not in str(exc)
        assert exc.__cause__ is None or KEY not in str(exc.__cause__)
    assert caplog.records  # httpx did log the requests
    assert KEY not in caplog.text
    assert "another-secret-98765" not in caplog.text
