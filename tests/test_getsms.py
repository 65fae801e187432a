"""GetSmsProvider against the Get-SMS emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from bot.money import Money
from bot.providers.base import (
    AccountRestricted,
    BadCredentials,
    CancelBlock,
    CancelNotAllowed,
    Capability,
    InsufficientBalance,
    InvalidRequest,
    NoNumbers,
    Offer,
    Order,
    OrderClosed,
    OrderKind,
    OrderNotFound,
    PriceAboveLimit,
    Provider,
    ProviderError,
    ProviderUnavailable,
    PurchaseOutcomeUnknown,
    RefundScope,
    RemoteStatus,
    Unsupported,
)
from bot.providers.codes import extract_code
from bot.providers.getsms import (
    ANOTHER_CODE_META,
    GetSmsProvider,
    parse_rent_datetime,
    rental_sms_id,
)
from bot.providers.http import RetryPolicy
from tests.emulators.base import FakeClock, FaultMode
from tests.emulators.getsms import GetSmsEmulator
from tests.helpers import free_port, provider_http

KEY = "gs-Secret-Key-7731"


@pytest.fixture
async def emu(clock: FakeClock) -> AsyncIterator[GetSmsEmulator]:
    emulator = GetSmsEmulator(clock, api_key=KEY)
    async with emulator:
        yield emulator


def make_provider(
    base_url: str,
    client: httpx.AsyncClient,
    retry: RetryPolicy,
    clock: FakeClock,
    *,
    key: str = KEY,
    timeout: float = 5.0,
) -> GetSmsProvider:
    http = provider_http("getsms", client, base_url, key, retry, timeout)
    return GetSmsProvider(http, key, currency="USD", clock=clock)


@pytest.fixture
def provider(
    emu: GetSmsEmulator,
    http_client: httpx.AsyncClient,
    fast_retry: RetryPolicy,
    clock: FakeClock,
) -> GetSmsProvider:
    return make_provider(emu.base_url, http_client, fast_retry, clock)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


async def activation_offer(provider: GetSmsProvider, service: str, country: str) -> Offer:
    offers = await provider.offers(service, country)
    return next(o for o in offers if o.kind is OrderKind.ACTIVATION)


async def rental_offer(provider: GetSmsProvider, hours: int = 24) -> Offer:
    offers = await provider.offers("tg", "RU")
    return next(o for o in offers if o.kind is OrderKind.RENTAL and o.duration_hours == hours)


async def buy_activation(provider: GetSmsProvider, service: str = "tg") -> Order:
    return await provider.buy(await activation_offer(provider, service, "RU"))


# --- identity, balance, catalog, offers ---------------------------------------------------------


def test_identity_and_capabilities(provider: GetSmsProvider) -> None:
    assert isinstance(provider, Provider)
    assert (provider.id, provider.title, provider.currency) == ("getsms", "Get-SMS", "USD")
    assert provider.capabilities == {
        Capability.ACTIVATIONS,
        Capability.RENTALS,
        Capability.ANOTHER_CODE,
        Capability.CANCEL,
        Capability.BAN,
        Capability.RENEW,
        Capability.RENEW_PRICE,
        Capability.LIST_ORDERS,
    }


async def test_balance(provider: GetSmsProvider, emu: GetSmsEmulator) -> None:
    emu.set_balance("12.34")
    assert await provider.balance() == usd("12.34")


async def test_balance_in_the_documented_non_json_form(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    emu.balance_comma = True
    emu.set_balance("100")
    assert await provider.balance() == usd("100.00")
    emu.set_balance("7.5")
    assert await provider.balance() == usd("7.50")


async def test_balance_as_a_string_and_status_as_a_string(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    emu.raw_reply("getbalance", '{"status": "200", "data": {"balance": "3.25"}}')
    assert await provider.balance() == usd("3.25")


async def test_balance_non_json_error_form_is_mapped(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    emu.raw_reply("getbalance", '{"status": 401, "data": {"msg": bad key, }}')
    with pytest.raises(BadCredentials):
        await provider.balance()


async def test_balance_envelope_without_balance_is_unavailable(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    for _ in range(3):
        emu.raw_reply("getbalance", '{"status": 200, "data": {}}')
    with pytest.raises(ProviderUnavailable):
        await provider.balance()


async def test_balance_query_error_is_retried_then_unavailable(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    emu.force_status("getbalance", 500, times=3)
    with pytest.raises(ProviderUnavailable) as info:
        await provider.balance()
    assert not isinstance(info.value, PurchaseOutcomeUnknown)
    assert emu.calls("getbalance") == 3


async def test_catalog_maps_slugs_and_names(provider: GetSmsProvider) -> None:
    catalog = await provider.catalog()
    assert {("tg", "RU"), ("wa", "RU"), ("vk", "RU"), ("tg", "US"), ("wa", "US")} <= (
        catalog.pairs
    )
    assert ("tg", "GB") in catalog.pairs
    assert all(len(country) == 2 and country.isupper() for _, country in catalog.pairs)
    assert catalog.service_names["tg"] == "Telegram"
    assert catalog.service_names["wa"] == "Whatsapp"


async def test_catalog_canonicalises_service_codes(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    emu.raw_reply(
        "getallcount",
        '{"ru": {"0": {"wapp": {"name": "WA", "price": "1", "count_all": "3"}}},'
        ' "atlantis": [{"tg": {"name": "TG", "price": "1", "count_all": "1"}}]}',
    )
    catalog = await provider.catalog()
    assert catalog.pairs == {("wa", "RU")}  # unknown slug skipped, alias canonicalised


async def test_services_without_a_display_name_are_kept_and_named(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    emu.raw_reply(
        "getallcount",
        '{"ru": [{"ai": {"price": "3.5", "count_all": "12"},'
        ' "mm": {"name": null, "price": "1", "count_all": "2"},'
        ' "zzq": {"name": "", "price": "1", "count_all": "2"}}]}',
    )
    catalog = await provider.catalog()
    assert {("ai", "RU"), ("mm", "RU"), ("zzq", "RU")} <= catalog.pairs
    # Named from the docs' own "List of services"; an unlisted code is shown as its code.
    assert catalog.service_names["ai"] == "CELEBe"
    assert catalog.service_names["mm"] == "Microsoft"
    assert "zzq" not in catalog.service_names
    emu.set_stock("ai", "ru", price="3.5", count=12, name="")
    (offer,) = [o for o in await provider.offers("ai", "RU") if o.kind is OrderKind.ACTIVATION]
    assert (offer.price, offer.stock) == (usd("3.5"), 12)


async def test_catalog_error_is_retried(provider: GetSmsProvider, emu: GetSmsEmulator) -> None:
    emu.force_status("getallcount", 502)
    assert ("tg", "RU") in (await provider.catalog()).pairs
    assert emu.calls("getallcount") == 2


async def test_offers_for_the_usa_cover_both_slugs(provider: GetSmsProvider) -> None:
    offers = await provider.offers("tg", "US")
    activations = {o.ref: o for o in offers if o.kind is OrderKind.ACTIVATION}
    assert set(activations) == {"ssha", "usavirt"}
    assert activations["ssha"].price == usd("1.20")
    assert activations["usavirt"].price == usd("0.40")
    assert activations["usavirt"].stock == 20
    rentals = [o for o in offers if o.kind is OrderKind.RENTAL]
    assert [o.duration_hours for o in rentals] == [24, 48, 72, 96, 120, 144, 168]
    assert {o.ref for o in rentals} == {"ssha"}
    assert rentals[0].price == usd("4.00")
    assert all(o.country == "US" and o.service == "tg" and o.provider == "getsms" for o in offers)


async def test_offers_accept_aliases_and_report_stock(provider: GetSmsProvider) -> None:
    offers = await provider.offers("whatsapp", "ru")
    activation = next(o for o in offers if o.kind is OrderKind.ACTIVATION)
    assert (activation.service, activation.country, activation.ref) == ("wa", "RU", "ru")
    assert (activation.price, activation.stock) == (usd("0.80"), 30)
    rentals = [o for o in offers if o.kind is OrderKind.RENTAL]
    assert len(rentals) == 7 and rentals[0].stock == 3


async def test_offers_out_of_stock_and_unknown(provider: GetSmsProvider) -> None:
    go = await provider.offers("go", "RU")
    assert [(o.kind, o.stock) for o in go] == [(OrderKind.ACTIVATION, 0)]
    assert await provider.offers("tg", "AQ") == []  # no Get-SMS slug
    assert await provider.offers("zz", "RU") == []


async def test_offers_fail_when_a_read_keeps_failing(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    emu.force_status("getallcount", 502, times=3)
    with pytest.raises(ProviderUnavailable):
        await provider.offers("tg", "RU")


async def test_country_offers_use_getcount_aliases(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    emu.set_stock("vi", "ru", price="0.15", count=9)
    offers = {o.service: o for o in await provider.country_offers("RU")}
    assert {"wa", "vi", "tg", "vk"} <= set(offers)
    assert not {"wapp", "vbr"} & set(offers)
    assert (offers["vi"].price, offers["vi"].stock) == (usd("0.15"), 9)
    wire = [r.query for r in emu.requests if r.query.get("method") == "getcount"]
    assert wire[-1]["country"] == "ru"


# --- activations ---------------------------------------------------------------------------------


async def test_buy_activation(
    provider: GetSmsProvider, emu: GetSmsEmulator, clock: FakeClock
) -> None:
    order = await buy_activation(provider)
    assert order.kind is OrderKind.ACTIVATION
    assert (order.service, order.country, order.price) == ("tg", "RU", usd("0.50"))
    assert order.phone.startswith("7") and order.phone.isdigit()
    assert order.expires_at == clock.now() + timedelta(minutes=15)
    assert order.order_id in emu.activations
    assert emu.balance_of() == Decimal("99.50")
    assert emu.reserved_of() == Decimal("0.50")


async def test_buy_uses_the_offer_slug(provider: GetSmsProvider, emu: GetSmsEmulator) -> None:
    offers = await provider.offers("tg", "US")
    virtual = next(o for o in offers if o.ref == "usavirt")
    order = await provider.buy(virtual)
    assert emu.activations[order.order_id].slug == "usavirt"
    assert order.country == "US" and order.phone.startswith("1")


async def test_buy_respects_max_price(provider: GetSmsProvider, emu: GetSmsEmulator) -> None:
    offer = await activation_offer(provider, "tg", "RU")
    with pytest.raises(PriceAboveLimit):
        await provider.buy(offer, max_price=usd("0.10"))
    assert emu.calls("getnumber") == 0
    with pytest.raises(Unsupported):
        await provider.buy(offer, auto_renew=True)


async def test_activation_sms_flow(
    provider: GetSmsProvider, emu: GetSmsEmulator, clock: FakeClock
) -> None:
    order = await buy_activation(provider)
    waiting = await provider.state(order)
    assert waiting.status is RemoteStatus.WAITING and waiting.messages == ()
    assert waiting.expires_at == order.expires_at
    clock.advance(minutes=2)
    emu.inject_sms(order.order_id, "Telegram code 75345", sender="Telegram")
    state = await provider.state(order)
    assert state.status is RemoteStatus.RECEIVED
    (sms,) = state.messages
    assert (sms.id, sms.code, sms.sender) == (order.order_id, "75345", "Telegram")
    assert sms.text == "Telegram code 75345"
    assert sms.received_at == clock.now()
    assert emu.reserved_of() == Decimal(0)  # charged once the SMS came
    assert emu.balance_of() == Decimal("99.50")


async def test_activation_code_missing_on_the_wire_is_extracted(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    order = await buy_activation(provider)
    emu.inject_sms(order.order_id, "Your code is 123-456", code="")
    (sms,) = (await provider.state(order)).messages
    assert sms.code == "123456"
    assert sms.sender is None


def wrongcode_last_ids(emu: GetSmsEmulator) -> list[str]:
    return [r.query["last_id"] for r in emu.requests if r.query.get("method") == "wrongcode"]


async def test_another_code_flow(provider: GetSmsProvider, emu: GetSmsEmulator) -> None:
    order = await buy_activation(provider)
    with pytest.raises(InvalidRequest, match="first"):
        await provider.another_code(order)
    assert emu.calls("wrongcode") == 0
    emu.inject_sms(order.order_id, "code 1111")
    (first,) = (await provider.state(order)).messages
    assert emu.calls("wrongcode") == 0  # nobody asked for another code: getcode only
    await provider.another_code(order)
    assert wrongcode_last_ids(emu) == [order.order_id]
    # Waiting for it: each poll asks wrongcode (the docs: repeat until it answers 200).
    assert (await provider.state(order)).messages == (first,)
    assert wrongcode_last_ids(emu)[-1] == order.order_id
    second_id = emu.inject_sms(order.order_id, "code 2222")
    assert second_id != order.order_id
    state = await provider.state(order)
    # getcode still answers the first SMS; wrongcode's answer is the second one.
    assert [(m.id, m.code) for m in state.messages] == [
        (order.order_id, "1111"),
        (second_id, "2222"),
    ]
    assert state.status is RemoteStatus.RECEIVED
    assert (await provider.state(order)).messages == state.messages  # stable ids across polls
    await provider.another_code(order)  # a third one: last_id is now the second SMS
    assert wrongcode_last_ids(emu)[-1] == second_id
    third_id = emu.inject_sms(order.order_id, "code 3333")
    assert [m.id for m in (await provider.state(order)).messages] == [
        order.order_id,
        second_id,
        third_id,
    ]


async def test_another_code_is_still_followed_after_a_restart(
    provider: GetSmsProvider,
    emu: GetSmsEmulator,
    http_client: httpx.AsyncClient,
    fast_retry: RetryPolicy,
    clock: FakeClock,
) -> None:
    order = await buy_activation(provider)
    emu.inject_sms(order.order_id, "code 1111")
    await provider.another_code(order)
    second_id = emu.inject_sms(order.order_id, "code 2222")
    restarted = make_provider(emu.base_url, http_client, fast_retry, clock)
    # Without the stored flag a new process cannot know the user asked: getcode only.
    assert [m.code for m in (await restarted.state(order)).messages] == ["1111"]
    flagged = dataclasses.replace(order, meta={**order.meta, ANOTHER_CODE_META: "1"})
    state = await restarted.state(flagged)
    assert [(m.id, m.code) for m in state.messages] == [
        (order.order_id, "1111"),
        (second_id, "2222"),
    ]


async def test_wrongcode_repeating_the_order_id_is_not_dropped(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    # The docs' wrongcode example answers with the same id as getcode's (the order id).
    order = await buy_activation(provider)
    emu.inject_sms(order.order_id, "code 1111")
    await provider.another_code(order)
    body = json.dumps(
        {
            "status": 200,
            "data": {
                "code": "753455",
                "fullSms": "753455",
                "phone": order.phone,
                "receivedDate": "2026-01-01T12:05:00.000Z",
                "sender": "",
                "id": order.order_id,
                "phonePass": "",
            },
        }
    )
    for _ in range(2):
        emu.raw_reply("wrongcode", body)
    first = (await provider.state(order)).messages
    again = (await provider.state(order)).messages
    assert [m.code for m in first] == ["1111", "753455"]
    assert first == again  # the same derived id on every poll: pushed once
    assert first[1].id != first[0].id


async def test_another_code_on_an_expired_order(
    provider: GetSmsProvider, emu: GetSmsEmulator, clock: FakeClock
) -> None:
    order = await buy_activation(provider)
    emu.inject_sms(order.order_id, "code 1111")
    clock.advance(minutes=16)
    with pytest.raises(OrderClosed):
        await provider.another_code(order)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, OrderClosed),
        (501, InvalidRequest),
        (502, ProviderUnavailable),
        (504, InvalidRequest),
        (505, OrderNotFound),
        (506, InvalidRequest),
        (401, BadCredentials),
        (404, InvalidRequest),
    ],
)
async def test_wrongcode_errors(
    provider: GetSmsProvider, emu: GetSmsEmulator, status: int, error: type[ProviderError]
) -> None:
    order = await buy_activation(provider)
    emu.inject_sms(order.order_id, "code 1111")
    emu.force_status("wrongcode", status)
    with pytest.raises(error) as info:
        await provider.another_code(order)
    assert type(info.value) is error
    assert f"status {status}" in str(info.value)
    assert emu.calls("wrongcode") == 1  # changes the order: never retried


async def test_activation_expires_without_charge(
    provider: GetSmsProvider, emu: GetSmsEmulator, clock: FakeClock
) -> None:
    order = await buy_activation(provider)
    clock.advance(minutes=15)
    assert (await provider.state(order)).status is RemoteStatus.EXPIRED
    assert emu.balance_of() == Decimal(100)
    assert emu.reserved_of() == Decimal(0)


async def test_cancel_activation_refunds(provider: GetSmsProvider, emu: GetSmsEmulator) -> None:
    order = await buy_activation(provider)
    outcome = await provider.cancel(order)
    assert outcome.refund is RefundScope.ALL
    assert emu.activations[order.order_id].status == "cancelled"
    assert emu.balance_of() == Decimal(100)
    with pytest.raises(OrderClosed):
        await provider.cancel(order)
    assert (await provider.state(order)).status is RemoteStatus.EXPIRED


@pytest.mark.parametrize("method", ["cancel", "ban"])
async def test_closing_an_activation_after_its_sms_returns_nothing(
    provider: GetSmsProvider, emu: GetSmsEmulator, method: str
) -> None:
    # get-sms.txt: money is not taken only when no SMS came; refusenumber still answers 200.
    order = await buy_activation(provider)
    emu.inject_sms(order.order_id, "code 1111")
    outcome = await getattr(provider, method)(order)
    assert outcome.refund is RefundScope.NONE
    assert emu.balance_of() == Decimal(100) - Decimal("0.50")  # the provider kept the price
    assert emu.reserved_of() == Decimal(0)


async def test_ban_activation(provider: GetSmsProvider, emu: GetSmsEmulator) -> None:
    order = await buy_activation(provider)
    outcome = await provider.ban(order)
    assert outcome.refund is RefundScope.ALL
    assert emu.activations[order.order_id].status == "banned"
    assert emu.balance_of() == Decimal(100)
    with pytest.raises(OrderClosed):
        await provider.ban(order)


def test_kinds_listed_and_unclaimed_windows(provider: GetSmsProvider) -> None:
    assert provider.listed_kinds == {OrderKind.RENTAL}  # getorders is the rent API's
    assert provider.unclaimed_window(OrderKind.ACTIVATION) >= timedelta(minutes=15)
    assert provider.unclaimed_window(OrderKind.ACTIVATION) <= timedelta(minutes=30)
    assert provider.unclaimed_window(OrderKind.RENTAL) >= timedelta(days=7)


def test_cancel_terms_of_an_activation(provider: GetSmsProvider) -> None:
    bought = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    order = Order(
        "getsms",
        "1",
        OrderKind.ACTIVATION,
        "7900",
        "tg",
        "RU",
        expires_at=bought + timedelta(minutes=15),
        bought_at=bought,
    )
    soon = bought + timedelta(minutes=2)
    terms = provider.cancel_terms(order, [], soon)
    assert (terms.blocked, terms.refund) == (None, RefundScope.ALL)
    assert terms.closes_at == bought + timedelta(minutes=15)
    # After its SMS the cancel is accepted but returns nothing: the button must say so.
    terms = provider.cancel_terms(order, [bought + timedelta(minutes=1)], soon)
    assert (terms.blocked, terms.refund) == (None, RefundScope.NONE)
    late = provider.cancel_terms(order, [], bought + timedelta(minutes=15))
    assert late.blocked is CancelBlock.TOO_LATE
    unstored = dataclasses.replace(order, expires_at=None)
    assert provider.cancel_terms(unstored, [], soon).closes_at == bought + timedelta(minutes=15)


def test_cancel_terms_of_a_rental(provider: GetSmsProvider) -> None:
    bought = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    order = Order(
        "getsms",
        "1",
        OrderKind.RENTAL,
        "7900",
        "tg",
        "RU",
        expires_at=bought + timedelta(days=1),
        duration_hours=24,
        bought_at=bought,
    )
    terms = provider.cancel_terms(order, [], bought + timedelta(minutes=19))
    assert (terms.blocked, terms.refund) == (None, RefundScope.ALL)
    assert terms.closes_at == bought + timedelta(minutes=20)
    assert terms.opens_at is None  # refuse documents no minimum wait
    late = provider.cancel_terms(order, [], bought + timedelta(minutes=20))
    assert (late.blocked, late.closes_at) == (CancelBlock.TOO_LATE, bought + timedelta(minutes=20))
    used = provider.cancel_terms(order, [bought + timedelta(minutes=1)], bought)
    assert used.blocked is CancelBlock.SMS_RECEIVED
    # Renewed later (a day on): still counted from the purchase.
    renewed = dataclasses.replace(
        order, renewed_at=bought + timedelta(hours=23), expires_at=bought + timedelta(days=2)
    )
    assert provider.cancel_terms(renewed, [], bought + timedelta(hours=23)).blocked is (
        CancelBlock.TOO_LATE
    )
    # Not stored yet (no bought_at): derived from the end and the duration.
    fresh = dataclasses.replace(order, bought_at=None)
    assert provider.cancel_terms(fresh, [], bought).closes_at == bought + timedelta(minutes=20)


def test_the_currency_must_be_stated(
    http_client: httpx.AsyncClient, fast_retry: RetryPolicy
) -> None:
    http = provider_http("getsms", http_client, "http://127.0.0.1:9", KEY, fast_retry, 1.0)
    for currency in ("", "dollars"):
        with pytest.raises(ValueError, match="currency"):
            GetSmsProvider(http, KEY, currency=currency)
    assert GetSmsProvider(http, KEY, currency="rub").currency == "RUB"


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_cloudflare_refusal_of_a_purchase_is_not_an_unknown_outcome(
    provider: GetSmsProvider, emu: GetSmsEmulator, api: str
) -> None:
    offer = (
        await activation_offer(provider, "tg", "RU")
        if api == "v1"
        else await rental_offer(provider)
    )
    emu.cloudflare_block("getnumber", api=api)
    with pytest.raises(ProviderUnavailable) as info:
        await provider.buy(offer)
    assert not isinstance(info.value, PurchaseOutcomeUnknown)  # nothing was bought
    assert not info.value.answer_lost
    assert "Cloudflare" in str(info.value) and "403" in str(info.value)
    assert (emu.activations, emu.rentals, emu.balance_of()) == ({}, {}, Decimal(100))
    assert emu.calls("getnumber") == 1


async def test_cloudflare_refusal_of_a_read_is_unavailable(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    emu.cloudflare_block("getbalance")
    assert await provider.balance() == usd("100")  # a read is retried past it
    for _ in range(3):
        emu.cloudflare_block("getbalance")
    with pytest.raises(ProviderUnavailable, match="Cloudflare"):
        await provider.balance()


async def test_unknown_activation(provider: GetSmsProvider) -> None:
    ghost = Order("getsms", "1", OrderKind.ACTIVATION, "79000000000", "tg", "RU")
    with pytest.raises(OrderNotFound):
        await provider.state(ghost)
    with pytest.raises(OrderNotFound):
        await provider.cancel(ghost)
    with pytest.raises(OrderNotFound):
        await provider.ban(ghost)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, NoNumbers),
        (502, InvalidRequest),
        (503, InvalidRequest),
        (504, InsufficientBalance),
        (505, InvalidRequest),
        (506, AccountRestricted),
        (507, ProviderUnavailable),
        (401, BadCredentials),
        (404, InvalidRequest),
    ],
)
async def test_getnumber_errors(
    provider: GetSmsProvider, emu: GetSmsEmulator, status: int, error: type[ProviderError]
) -> None:
    offer = await activation_offer(provider, "tg", "RU")
    emu.force_status("getnumber", status)
    with pytest.raises(error) as info:
        await provider.buy(offer)
    assert type(info.value) is error  # never PurchaseOutcomeUnknown: the answer is definite
    assert emu.calls("getnumber") == 1
    assert emu.activations == {}


async def test_getnumber_natural_errors(provider: GetSmsProvider, emu: GetSmsEmulator) -> None:
    with pytest.raises(NoNumbers):
        await provider.buy(await activation_offer(provider, "go", "RU"))
    offer = await activation_offer(provider, "tg", "RU")
    emu.set_balance("0.10")
    with pytest.raises(InsufficientBalance):
        await provider.buy(offer)
    emu.set_balance(100)
    emu.ban_account()
    with pytest.raises(AccountRestricted):
        await provider.buy(offer)
    emu.ban_account(banned=False)
    emu.maintenance = True
    with pytest.raises(ProviderUnavailable) as info:
        await provider.buy(offer)
    assert not isinstance(info.value, PurchaseOutcomeUnknown)
    emu.maintenance = False
    fake = Offer("getsms", "nosuch", "RU", OrderKind.ACTIVATION, usd("1"), 1, ref="ru")
    with pytest.raises(InvalidRequest):
        await provider.buy(fake)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (502, ProviderUnavailable),
        (504, InsufficientBalance),
        (505, OrderNotFound),
        (506, InvalidRequest),
        (401, BadCredentials),
        (404, InvalidRequest),
    ],
)
async def test_getcode_errors(
    provider: GetSmsProvider, emu: GetSmsEmulator, status: int, error: type[ProviderError]
) -> None:
    order = await buy_activation(provider)
    emu.force_status("getcode", status, times=3)
    with pytest.raises(error):
        await provider.state(order)


async def test_getcode_internal_error_is_retried(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    order = await buy_activation(provider)
    emu.force_status("getcode", 502)
    assert (await provider.state(order)).status is RemoteStatus.WAITING
    assert emu.calls("getcode") == 2


@pytest.mark.parametrize("method", ["refusenumber", "bannumber"])
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, OrderClosed),
        (502, ProviderUnavailable),
        (505, OrderNotFound),
        (506, InvalidRequest),
        (401, BadCredentials),
        (404, InvalidRequest),
    ],
)
async def test_refuse_and_ban_errors(
    provider: GetSmsProvider,
    emu: GetSmsEmulator,
    method: str,
    status: int,
    error: type[ProviderError],
) -> None:
    order = await buy_activation(provider)
    emu.force_status(method, status)
    action = provider.cancel if method == "refusenumber" else provider.ban
    with pytest.raises(error) as info:
        await action(order)
    assert type(info.value) is error
    assert emu.calls(method) == 1


async def test_http_status_mirroring_keeps_the_json_status_authoritative(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    emu.http_mirror_status = True
    order = await buy_activation(provider)
    assert (await provider.state(order)).status is RemoteStatus.WAITING  # HTTP 400
    with pytest.raises(NoNumbers):  # HTTP 500, a definite answer
        await provider.buy(await activation_offer(provider, "go", "RU"))
    emu.force_status("getnumber", 504)
    with pytest.raises(InsufficientBalance):
        await provider.buy(await activation_offer(provider, "tg", "RU"))
    assert emu.calls("getnumber") == 3


async def test_http_5xx_without_envelope_is_unavailable(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    for _ in range(3):
        emu.raw_reply("getbalance", '{"error": "boom"}', http_status=503)
    with pytest.raises(ProviderUnavailable):
        await provider.balance()
    offer = await activation_offer(provider, "tg", "RU")
    emu.raw_reply("getnumber", '{"error": "boom"}', http_status=500)
    with pytest.raises(PurchaseOutcomeUnknown):
        await provider.buy(offer)


async def test_buy_success_without_order_is_outcome_unknown(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    offer = await activation_offer(provider, "tg", "RU")
    emu.raw_reply("getnumber", '{"status": 200, "data": {"msg": "ok"}}')
    emu.raw_reply("getnumber", '{"status": 200, "data": []}')
    emu.raw_reply("getnumber", '{"status": 200}')
    for _ in range(3):
        with pytest.raises(PurchaseOutcomeUnknown):
            await provider.buy(offer)
    assert emu.calls("getnumber") == 3


async def test_status_200_is_enough_for_a_cancel(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    order = await buy_activation(provider)
    emu.raw_reply("refusenumber", '{"status": "200", "data": []}')
    await provider.cancel(order)
    emu.raw_reply("refusenumber", '{"data": {"msg": "canceled"}}')
    with pytest.raises(ProviderUnavailable):  # no status at all: unknown outcome
        await provider.cancel(order)


async def test_unsupported_operations(provider: GetSmsProvider) -> None:
    activation = Order("getsms", "1", OrderKind.ACTIVATION, "7900", "tg", "RU")
    rental = Order("getsms", "2", OrderKind.RENTAL, "7900", "tg", "RU")
    for call in (
        provider.finish(activation),
        provider.finish(rental),
        provider.reuse(activation),
        provider.renew(activation, 24),
        provider.renewal_options(activation),
        provider.ban(rental),
        provider.another_code(rental),
    ):
        with pytest.raises(Unsupported):
            await call


# --- rentals -------------------------------------------------------------------------------------


async def test_buy_rental(provider: GetSmsProvider, emu: GetSmsEmulator, clock: FakeClock) -> None:
    order = await provider.buy(await rental_offer(provider, 72))
    assert order.kind is OrderKind.RENTAL
    assert (order.duration_hours, order.price) == (72, usd("5.00"))
    assert order.expires_at == clock.now() + timedelta(days=3)
    assert order.meta["slug"] == "ru"
    wire = [r.query for r in emu.requests if r.query.get("method") == "getnumber"][-1]
    assert (wire["type"], wire["period"], wire["country"], wire["service"]) == (
        "day",
        "3",
        "ru",
        "tg",
    )
    assert emu.balance_of() == Decimal("95.00")  # charged at purchase


async def test_rental_duration_must_be_whole_days(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    offer = Offer("getsms", "tg", "RU", OrderKind.RENTAL, usd("1"), 1, 36, "ru")
    with pytest.raises(InvalidRequest):
        await provider.buy(offer)
    assert emu.calls("getnumber") == 0


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, NoNumbers),
        (502, InvalidRequest),
        (503, ProviderUnavailable),
        (504, InsufficientBalance),
        (505, InvalidRequest),
        (506, InvalidRequest),
        (507, ProviderUnavailable),
        (401, BadCredentials),
        (404, InvalidRequest),
    ],
)
async def test_rental_getnumber_errors(
    provider: GetSmsProvider, emu: GetSmsEmulator, status: int, error: type[ProviderError]
) -> None:
    offer = await rental_offer(provider)
    emu.force_status("getnumber", status, api="v2")
    with pytest.raises(error) as info:
        await provider.buy(offer)
    assert type(info.value) is error
    assert emu.rentals == {}


async def test_rental_natural_errors(provider: GetSmsProvider, emu: GetSmsEmulator) -> None:
    offer = await rental_offer(provider)
    emu.set_balance("1")
    with pytest.raises(InsufficientBalance):
        await provider.buy(offer)
    emu.set_balance(100)
    emu.set_rent_stock("tg", "ru", count=0, prices={1: "2"})
    with pytest.raises(NoNumbers):
        await provider.buy(offer)


async def test_rental_messages(
    provider: GetSmsProvider, emu: GetSmsEmulator, clock: FakeClock
) -> None:
    order = await provider.buy(await rental_offer(provider))
    assert (await provider.state(order)).status is RemoteStatus.WAITING
    clock.advance(minutes=3)
    emu.inject_sms(order.order_id, "Verification code for Rambler&Co: 435345")
    emu.inject_sms(order.order_id, "Verification code for Rambler&Co: 435345")
    clock.advance(hours=5)
    emu.inject_sms(order.order_id, "Your login code is G-520455")
    first = await provider.state(order)
    again = await provider.state(order)
    assert first.status is RemoteStatus.RECEIVED
    assert first == again  # stable ids across polls
    ids = [m.id for m in first.messages]
    assert len(set(ids)) == 3  # exact duplicates still get distinct ids
    assert [m.code for m in first.messages] == ["435345", "435345", "520455"]
    assert first.messages[0].received_at == datetime(2026, 1, 1, 12, 3, tzinfo=UTC)
    assert first.messages[2].received_at == datetime(2026, 1, 1, 17, 3, tzinfo=UTC)


async def test_rental_sms_list_keyed_object(provider: GetSmsProvider, emu: GetSmsEmulator) -> None:
    order = await provider.buy(await rental_offer(provider))
    emu.raw_reply(
        "getcode",
        '{"status": 200, "data": {"sms_list": {"0": {"date": "2023-12-14 17:11:51",'
        ' "text": "code 4321"}}}}',
        api="v2",
    )
    (sms,) = (await provider.state(order)).messages
    assert sms.code == "4321"
    assert sms.received_at == datetime(2023, 12, 14, 14, 11, 51, tzinfo=UTC)


async def test_rental_cancel_within_window_refunds(
    provider: GetSmsProvider, emu: GetSmsEmulator, clock: FakeClock
) -> None:
    order = await provider.buy(await rental_offer(provider))
    clock.advance(minutes=19)
    assert (await provider.cancel(order)).refund is RefundScope.ALL
    assert emu.balance_of() == Decimal(100)
    assert (await provider.state(order)).status is RemoteStatus.CANCELLED
    with pytest.raises(OrderClosed):
        await provider.cancel(order)


async def test_rental_cancel_refused_late_or_after_sms(
    provider: GetSmsProvider, emu: GetSmsEmulator, clock: FakeClock
) -> None:
    late = await provider.buy(await rental_offer(provider))
    used = await provider.buy(await rental_offer(provider))
    emu.inject_sms(used.order_id, "code 9999")
    with pytest.raises(CancelNotAllowed, match="20 minutes"):  # the provider's own reason
        await provider.cancel(used)
    clock.advance(minutes=21)
    with pytest.raises(CancelNotAllowed):
        await provider.cancel(late)
    assert emu.calls("refuse") == 2
    assert emu.balance_of() == Decimal(100) - 2 * emu.rentals[late.order_id].price


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, CancelNotAllowed),
        (500, InvalidRequest),
        (501, OrderClosed),
        (502, OrderClosed),
        (503, OrderNotFound),
        (401, BadCredentials),
        (404, InvalidRequest),
    ],
)
async def test_rental_refuse_errors(
    provider: GetSmsProvider, emu: GetSmsEmulator, status: int, error: type[ProviderError]
) -> None:
    order = await provider.buy(await rental_offer(provider))
    emu.force_status("refuse", status, api="v2")
    with pytest.raises(error) as info:
        await provider.cancel(order)
    assert type(info.value) is error
    assert emu.calls("refuse") == 1


async def test_rental_expiry_and_completion(
    provider: GetSmsProvider, emu: GetSmsEmulator, clock: FakeClock
) -> None:
    short = await provider.buy(await rental_offer(provider, 24))
    long = await provider.buy(await rental_offer(provider, 48))
    clock.advance(days=1)
    assert (await provider.state(short)).status is RemoteStatus.EXPIRED
    assert (await provider.state(long)).status is RemoteStatus.WAITING
    emu.complete_rental(long.order_id)
    assert (await provider.state(long)).status is RemoteStatus.FINISHED


@pytest.mark.parametrize(
    ("status", "error"), [(503, OrderNotFound), (401, BadCredentials), (404, InvalidRequest)]
)
async def test_rental_getcode_errors(
    provider: GetSmsProvider, emu: GetSmsEmulator, status: int, error: type[ProviderError]
) -> None:
    order = await provider.buy(await rental_offer(provider))
    emu.force_status("getcode", status, api="v2", times=3)
    with pytest.raises(error):
        await provider.state(order)


async def test_renewal_options_and_renew(
    provider: GetSmsProvider, emu: GetSmsEmulator, clock: FakeClock
) -> None:
    order = await provider.buy(await rental_offer(provider, 24))
    options = await provider.renewal_options(order)
    assert [o.duration_hours for o in options] == [24, 48, 72, 96, 120, 144, 168]
    assert options[1].price == usd("3.50")
    clock.advance(hours=10)
    renewal = await provider.renew(order, 48)
    assert renewal.order_id == order.order_id
    assert order.expires_at is not None
    assert renewal.expires_at == order.expires_at + timedelta(days=2)
    assert emu.balance_of() == Decimal("94.50")  # 2.00 + 3.50
    wire = [r.query for r in emu.requests if r.query.get("method") == "prolong"][-1]
    assert (wire["type"], wire["period"], wire["rentid"]) == ("day", "2", order.order_id)


async def test_renew_when_the_end_date_cannot_be_read_back(
    provider: GetSmsProvider, emu: GetSmsEmulator
) -> None:
    order = await provider.buy(await rental_offer(provider, 24))
    for _ in range(3):  # prolong succeeds; every getorders attempt fails
        emu.raw_reply("getorders", "<html>oops</html>", api="v2", http_status=502)
    assert order.expires_at is not None
    renewal = await provider.renew(order, 24)
    assert renewal.expires_at == order.expires_at + timedelta(days=1)
    assert emu.calls("getorders") == 3


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (502, OrderNotFound),
        (504, InvalidRequest),
        (505, InsufficientBalance),
        (506, InvalidRequest),
        (507, ProviderUnavailable),
        (401, BadCredentials),
        (404, InvalidRequest),
    ],
)
async def test_prolong_errors(
    provider: GetSmsProvider, emu: GetSmsEmulator, status: int, error: type[ProviderError]
) -> None:
    order = await provider.buy(await rental_offer(provider))
    emu.force_status("prolong", status, api="v2")
    with pytest.raises(error) as info:
        await provider.renew(order, 24)
    assert type(info.value) is error
    assert emu.calls("prolong") == 1


async def test_prolong_natural_errors(
    provider: GetSmsProvider, emu: GetSmsEmulator, clock: FakeClock
) -> None:
    order = await provider.buy(await rental_offer(provider))
    emu.set_balance(0)
    with pytest.raises(InsufficientBalance):
        await provider.renew(order, 24)
    emu.set_balance(100)
    clock.advance(days=2)
    with pytest.raises(InvalidRequest):  # expired: cannot extend
        await provider.renew(order, 24)
    with pytest.raises(InvalidRequest):
        await provider.renew(order, 200)


async def test_list_orders(
    provider: GetSmsProvider, emu: GetSmsEmulator, clock: FakeClock
) -> None:
    assert await provider.list_orders() == []
    active = await provider.buy(await rental_offer(provider, 48))
    cancelled = await provider.buy(await rental_offer(provider, 24))
    expired = await provider.buy(await rental_offer(provider, 24))
    await provider.cancel(cancelled)
    clock.advance(days=1)
    remote = {o.order_id: o for o in await provider.list_orders()}
    assert remote[active.order_id].status is RemoteStatus.WAITING
    assert remote[cancelled.order_id].status is RemoteStatus.CANCELLED
    assert remote[expired.order_id].status is RemoteStatus.EXPIRED
    assert remote[active.order_id].expires_at == active.expires_at
    assert remote[active.order_id].phone == active.phone
    assert all(o.kind is OrderKind.RENTAL for o in remote.values())


async def test_list_orders_shapes(provider: GetSmsProvider, emu: GetSmsEmulator) -> None:
    emu.raw_reply(
        "getorders",
        '{"0": {"id": 512, "phone": "79222222222", "status": 0, "date_at": "2023-09-29 09:56:38"},'
        ' "1": {"id": "513", "phone": "79222222222", "status": "7", "date_at": ""}}',
        api="v2",
    )
    (order,) = await provider.list_orders()
    assert (order.order_id, order.status) == ("512", RemoteStatus.EXPIRED)
    assert order.expires_at == datetime(2023, 9, 29, 6, 56, 38, tzinfo=UTC)
    emu.raw_reply("getorders", '{"status": 401, "data": {"msg": "no key"}}', api="v2")
    with pytest.raises(BadCredentials):
        await provider.list_orders()


# --- transport: retries, no retry for purchases, timeouts, secrets ------------------------------


async def test_reads_retry_a_transient_5xx(provider: GetSmsProvider, emu: GetSmsEmulator) -> None:
    emu.fail("5xx")
    assert await provider.balance() == usd("100.00")
    assert emu.calls("getbalance") == 2


@pytest.mark.parametrize("mode", ["garbage", "5xx"])
async def test_buy_is_never_retried(
    provider: GetSmsProvider, emu: GetSmsEmulator, mode: str
) -> None:
    offer = await activation_offer(provider, "tg", "RU")
    emu.fail("garbage" if mode == "garbage" else "5xx")
    with pytest.raises(PurchaseOutcomeUnknown):
        await provider.buy(offer)
    assert emu.calls("getnumber") == 1


async def test_rental_buy_is_never_retried(provider: GetSmsProvider, emu: GetSmsEmulator) -> None:
    offer = await rental_offer(provider)
    emu.gate("getnumber")  # the price is asked again first: the fault is for getnumber
    buying = asyncio.create_task(provider.buy(offer))
    await asyncio.wait_for(emu.gated_arrived.wait(), 10)
    emu.fail("garbage")
    emu.open_gate()
    with pytest.raises(PurchaseOutcomeUnknown):
        await buying
    assert emu.calls("getnumber") == 1


async def test_rental_prices_are_kept_per_country_and_asked_again_before_buying(
    provider: GetSmsProvider, emu: GetSmsEmulator, clock: FakeClock
) -> None:
    offers = await provider.offers("tg", "RU")
    assert emu.calls("getcountprices") == 1
    await provider.offers("wa", "RU")  # another service in the same country: the kept list
    assert emu.calls("getcountprices") == 1
    assert emu.calls("getallcount") == 2  # activations are asked every time
    clock.advance(seconds=60)
    await provider.offers("tg", "RU")
    assert emu.calls("getcountprices") == 2  # a minute later: asked again

    rental = next(o for o in offers if o.kind is OrderKind.RENTAL and o.duration_hours == 24)
    cheaper = dataclasses.replace(rental, price=usd(str(rental.price.amount / 2)))
    with pytest.raises(PriceAboveLimit):  # the price at the provider is above the offer's
        await provider.buy(cheaper)
    assert emu.calls("getcountprices") == 3 and emu.calls("getnumber") == 0
    order = await provider.buy(rental)  # at the price asked again: bought
    assert order.price == rental.price and emu.calls("getnumber") == 1


async def test_refused_connection_is_not_an_unknown_outcome(
    http_client: httpx.AsyncClient, fast_retry: RetryPolicy, clock: FakeClock
) -> None:
    provider = make_provider(f"http://127.0.0.1:{free_port()}", http_client, fast_retry, clock)
    offer = Offer("getsms", "tg", "RU", OrderKind.ACTIVATION, usd("0.5"), 1, ref="ru")
    with pytest.raises(ProviderUnavailable) as info:
        await provider.buy(offer)
    assert not isinstance(info.value, PurchaseOutcomeUnknown)


async def test_timeouts(
    emu: GetSmsEmulator, http_client: httpx.AsyncClient, fast_retry: RetryPolicy, clock: FakeClock
) -> None:
    provider = make_provider(emu.base_url, http_client, fast_retry, clock, timeout=0.2)
    emu.fail("timeout")
    assert await provider.balance() == usd("100.00")  # a read is retried after the timeout
    offer = await activation_offer(provider, "tg", "RU")
    emu.fail("timeout")
    with pytest.raises(PurchaseOutcomeUnknown):
        await provider.buy(offer)
    assert emu.calls("getnumber") == 1


async def test_bad_key_and_no_secret_leaks(
    emu: GetSmsEmulator,
    http_client: httpx.AsyncClient,
    fast_retry: RetryPolicy,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "gs-Wrong-Key-0042"
    bad = make_provider(emu.base_url, http_client, fast_retry, clock, key=wrong)
    good = make_provider(emu.base_url, http_client, fast_retry, clock, timeout=0.2)
    errors: list[ProviderError] = []
    with pytest.raises(BadCredentials) as denied:
        await bad.balance()
    errors.append(denied.value)
    with pytest.raises(BadCredentials) as denied_rent:
        await bad.list_orders()
    errors.append(denied_rent.value)
    offer = await activation_offer(good, "tg", "RU")
    modes: tuple[FaultMode, ...] = ("garbage", "5xx", "timeout")
    for mode in modes:
        emu.fail(mode)
        with pytest.raises(PurchaseOutcomeUnknown) as lost:
            await good.buy(offer)
        errors.append(lost.value)
    emu.fail("5xx", times=3)
    with pytest.raises(ProviderUnavailable) as down:
        await good.balance()
    errors.append(down.value)
    for error in errors:
        assert KEY not in str(error) and wrong not in str(error)
        assert KEY not in repr(error.__cause__) and wrong not in repr(error.__cause__)
    assert caplog.text  # httpx did log the requests
    assert KEY not in caplog.text and wrong not in caplog.text


async def test_post_requests_are_accepted_by_the_emulator(
    emu: GetSmsEmulator, http_client: httpx.AsyncClient
) -> None:
    response = await http_client.post(
        emu.base_url + "/api/v1/", data={"method": "getbalance", "userkey": KEY}
    )
    assert response.status_code == 200 and '"balance": 100.00' in response.text


async def test_emulator_auto_sms(
    http_client: httpx.AsyncClient, fast_retry: RetryPolicy, clock: FakeClock
) -> None:
    async with GetSmsEmulator(clock, api_key=KEY, auto_sms_after=30) as emu:
        provider = make_provider(emu.base_url, http_client, fast_retry, clock)
        order = await buy_activation(provider)
        assert (await provider.state(order)).status is RemoteStatus.WAITING
        clock.advance(seconds=30)
        (first,) = (await provider.state(order)).messages
        await provider.another_code(order)
        clock.advance(seconds=30)
        (again, second) = (await provider.state(order)).messages
        assert again == first
        assert first.id != second.id and second.code and len(second.code) == 6


# --- helpers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Verification code for Rambler&Co: 435345", "435345"),
        ("G-520455 is your Google verification code", "520455"),
        ("Your code: 1234. Do not share it.", "1234"),
        ("Код 123-456 для входа", "123456"),
        ("Call +79001234567 for help", None),
        ("no code here", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_code(text: str | None, code: str | None) -> None:
    assert extract_code(text) == code


def test_rental_sms_id_is_stable_and_distinct() -> None:
    a = rental_sms_id("2023-12-14 17:11:51", "code 1")
    assert a == rental_sms_id("2023-12-14 17:11:51", "code 1")
    assert a != rental_sms_id("2023-12-14 17:11:51", "code 1", 1)
    assert a != rental_sms_id("2023-12-14 17:11:52", "code 1")


def test_rent_dates_are_moscow_time() -> None:
    # The doc's getnumber example: end_time is end_time_timestamp shown in UTC+3.
    from_text = parse_rent_datetime("2023-12-19 13:17:29")
    from_stamp = parse_rent_datetime(1702981048)
    assert from_text is not None and from_stamp is not None
    assert abs((from_text - from_stamp).total_seconds()) <= 1
    assert parse_rent_datetime("2023-12-19T10:17:28Z") == from_stamp
    assert parse_rent_datetime("") is None
