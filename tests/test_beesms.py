"""BEE-SMS adapter against its emulator over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from bot.money import Money
from bot.providers.base import (
    BadCredentials,
    CancelBlock,
    CancelNotAllowed,
    CancelOutcome,
    CancelTerms,
    Capability,
    InsufficientBalance,
    InvalidRequest,
    NoNumbers,
    Offer,
    Order,
    OrderKind,
    OrderNotFound,
    PriceAboveLimit,
    Provider,
    ProviderError,
    ProviderUnavailable,
    PurchaseOutcomeUnknown,
    RefundScope,
    RemoteStatus,
    RenewalOption,
    Unsupported,
)
from bot.providers.beesms import BeeSmsProvider
from bot.providers.codes import extract_code
from bot.providers.http import RetryPolicy
from tests.emulators.base import FakeClock
from tests.emulators.beesms import DEFAULT_TOKEN, BeeSmsEmulator
from tests.helpers import free_port, provider_http


@pytest.fixture
async def emulator(clock: FakeClock) -> AsyncIterator[BeeSmsEmulator]:
    emu = BeeSmsEmulator(clock)
    await emu.start()
    yield emu
    await emu.stop()


def make_provider(
    base_url: str,
    client: httpx.AsyncClient,
    retry: RetryPolicy,
    clock: FakeClock,
    *,
    key: str = DEFAULT_TOKEN,
    timeout: float = 5.0,
) -> BeeSmsProvider:
    http = provider_http("beesms", client, base_url, key, retry, timeout)
    return BeeSmsProvider(http, key, clock=clock)


@pytest.fixture
def provider(
    emulator: BeeSmsEmulator,
    http_client: httpx.AsyncClient,
    fast_retry: RetryPolicy,
    clock: FakeClock,
) -> BeeSmsProvider:
    return make_provider(emulator.base_url, http_client, fast_retry, clock)


async def offer_for(
    provider: BeeSmsProvider, service: str = "tg", country: str = "US", hours: int = 720
) -> Offer:
    offers = await provider.offers(service, country)
    return next(o for o in offers if o.duration_hours == hours)


async def rent(provider: BeeSmsProvider, *, auto_renew: bool = False) -> Order:
    return await provider.buy(await offer_for(provider), auto_renew=auto_renew)


# --- identity and unsupported operations ----------------------------------------------------


def test_identity_and_capabilities(provider: BeeSmsProvider) -> None:
    assert isinstance(provider, Provider)
    assert (provider.id, provider.title, provider.currency) == ("beesms", "BEE-SMS", "USD")
    assert provider.capabilities == {
        Capability.RENTALS,
        Capability.CANCEL,
        Capability.RENEW,
        Capability.RENEW_PRICE,
        Capability.LIST_ORDERS,
        Capability.MAX_PRICE,
        Capability.AUTO_RENEW,
    }


async def test_unsupported_operations_send_nothing(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    order = await rent(provider)
    before = len(emulator.requests)
    for action in (provider.another_code, provider.finish, provider.ban, provider.reuse):
        with pytest.raises(Unsupported):
            await action(order)
    activation = Offer("beesms", "tg", "US", OrderKind.ACTIVATION, Money(Decimal(1), "USD"), 5)
    with pytest.raises(Unsupported):
        await provider.buy(activation)
    assert len(emulator.requests) == before


# --- catalog and offers ---------------------------------------------------------------------


async def test_catalog_maps_to_canonical_ids(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    emulator.set_price("tg", "zz", 30, 999)  # not a country: skipped
    catalog = await provider.catalog()
    assert ("tg", "US") in catalog.pairs
    assert ("wa", "GB") in catalog.pairs  # "whatsapp" in "uk"
    assert ("go", "DE") in catalog.pairs
    assert all(country != "ZZ" for _, country in catalog.pairs)
    assert len(catalog.pairs) == 9
    assert catalog.service_names["wa"] == "WhatsApp"
    assert emulator.calls("services") == 1
    assert emulator.calls("prices") == 3
    assert all(r.query["token"] == DEFAULT_TOKEN for r in emulator.requests)


async def test_catalog_concurrency_is_bounded(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    for i in range(12):
        emulator.set_price(f"s{i}", "us", 30, 100)
    emulator.latency = 0.02
    catalog = await provider.catalog()
    assert emulator.calls("prices") == 15
    assert ("s11", "US") in catalog.pairs
    assert 2 <= emulator.max_in_flight <= 5


async def test_offers_one_per_duration(provider: BeeSmsProvider, emulator: BeeSmsEmulator) -> None:
    emulator.set_price("tg", "us", 30, 1500, 1425, qty=24)
    emulator.set_price("tg", "us", 7, 500, 490, qty=0)
    offers = sorted(await provider.offers("tg", "US"), key=lambda o: o.duration_hours or 0)
    assert [(o.duration_hours, o.price, o.stock) for o in offers] == [
        (168, Money(Decimal("4.9"), "USD"), 0),
        (720, Money(Decimal("14.25"), "USD"), 24),
    ]
    assert all(
        (o.provider, o.service, o.country, o.kind) == ("beesms", "tg", "US", OrderKind.RENTAL)
        for o in offers
    )
    # the area is unknown before a price list was seen: the whole service is asked, then filtered
    assert emulator.requests[-1].query.get("area") is None
    await provider.offers("tg", "US")
    assert emulator.requests[-1].query["area"] == "us"


async def test_offers_aliases_and_unknown(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    offers = await provider.offers("wa", "gb")
    assert {o.duration_hours for o in offers} == {168, 720}
    assert {(o.service, o.country) for o in offers} == {("wa", "GB")}
    assert all(o.ref.startswith("whatsapp|uk|") for o in offers)
    assert await provider.offers("zz", "US") == []
    assert await provider.offers("tg", "FR") == []


async def test_lenient_numbers_and_keyed_lists(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    emulator.queue_response("services", {"code": "200", "data": {"0": {"code": "tg"}}})
    emulator.queue_response(
        "prices",
        {
            "code": 200,
            "data": [
                {
                    "service_code": "tg",
                    "area_code": "us",
                    "durations": {"0": {"days": "30", "amount": "1500", "qty": "3"}},
                }
            ],
        },
    )
    [offer] = await provider.offers("tg", "US")
    assert (offer.price, offer.stock, offer.duration_hours) == (
        Money(Decimal(15), "USD"),
        3,
        720,
    )


@pytest.mark.parametrize(
    "body",
    [
        {"code": 200, "data": {"unexpected": True}},
        {"code": 200, "data": [{"service_code": "tg"}]},
        {"message": "no code"},
        [1, 2],
    ],
)
async def test_unexpected_shapes_are_unavailable(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator, body: object
) -> None:
    for _ in range(3):
        emulator.queue_response("prices", body)
    with pytest.raises(ProviderUnavailable):
        await provider.offers("tg", "US")
    assert emulator.calls("prices") == 3  # a read: retried, then given up


# --- buying ---------------------------------------------------------------------------------


async def test_buy_rental(provider: BeeSmsProvider, emulator: BeeSmsEmulator) -> None:
    emulator.set_price("tg", "us", 30, 1500, 1425)
    emulator.set_balance(10_000)
    offer = await offer_for(provider)
    order = await provider.buy(offer)
    assert order.provider == "beesms"
    assert order.kind == OrderKind.RENTAL
    assert order.phone == "14155550001"
    assert (order.service, order.country) == ("tg", "US")
    assert order.price == Money(Decimal("14.25"), "USD")
    assert order.duration_hours == 720
    assert order.expires_at == emulator.clock.now() + timedelta(days=30)
    assert order.expires_at is not None and order.expires_at.utcoffset() == timedelta(0)
    assert order.auto_renew is False
    assert dict(order.meta) == {
        "service": "tg",
        "area": "us",
        "mobile_number": "4155550001",
        "dialing_code": "1",
    }
    assert emulator.balance == 10_000 - 1425
    query = emulator.requests[-1].query
    assert (query["service"], query["area"], query["duration"], query["auto_renew"]) == (
        "tg",
        "us",
        "30",
        "false",
    )
    assert "max_amount" not in query


async def test_buy_alias_service_and_area(provider: BeeSmsProvider) -> None:
    offers = await provider.offers("wa", "GB")
    order = await provider.buy(next(o for o in offers if o.duration_hours == 168))
    assert (order.service, order.country, order.duration_hours) == ("wa", "GB", 168)
    assert order.phone.startswith("44")
    assert order.meta["service"] == "whatsapp"


async def test_buy_without_ref_uses_canonical_ids(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    offer = Offer("beesms", "wa", "DE", OrderKind.RENTAL, Money(Decimal(5), "USD"), 1, 168)
    order = await provider.buy(offer)
    assert (order.service, order.country) == ("wa", "DE")
    last = emulator.requests[-1].query
    assert (last["service"], last["area"], last["duration"]) == ("whatsapp", "de", "7")
    with pytest.raises(InvalidRequest):
        await provider.buy(
            Offer("beesms", "wa", "DE", OrderKind.RENTAL, Money(Decimal(5), "USD"), 1, 36)
        )


async def test_max_price_is_rounded_down_to_cents(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    emulator.set_price("tg", "us", 30, 1500, 1425)
    offer = await offer_for(provider)
    order = await provider.buy(offer, max_price=Money(Decimal("14.259"), "USD"))
    assert emulator.requests[-1].query["max_amount"] == "1425"
    assert order.price == Money(Decimal("14.25"), "USD")
    balance = emulator.balance
    with pytest.raises(PriceAboveLimit):
        await provider.buy(offer, max_price=Money(Decimal("14.249"), "USD"))
    assert emulator.requests[-1].query["max_amount"] == "1424"
    assert emulator.balance == balance
    with pytest.raises(InvalidRequest):
        await provider.buy(offer, max_price=Money(Decimal(15), "EUR"))


async def test_buy_with_auto_renew(provider: BeeSmsProvider, emulator: BeeSmsEmulator) -> None:
    emulator.set_price("tg", "us", 30, 1500, 1425)
    order = await rent(provider, auto_renew=True)
    assert order.auto_renew is True
    assert emulator.requests[-1].query["auto_renew"] == "true"
    assert emulator.rental(order.order_id).auto_renew
    # the emulator renews it at the end of the period
    emulator.clock.advance(days=30, seconds=1)
    state = await provider.state(order)
    assert state.status == RemoteStatus.WAITING
    assert state.expires_at == order.expires_at + timedelta(days=30)  # type: ignore[operator]


# --- documented errors ----------------------------------------------------------------------


@pytest.fixture(params=["mirror", "200"])
def error_status(request: pytest.FixtureRequest, emulator: BeeSmsEmulator) -> str:
    emulator.error_status = request.param
    return str(request.param)


async def test_purchase_errors(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator, error_status: str
) -> None:
    offer = await offer_for(provider)
    emulator.set_balance(0)
    with pytest.raises(InsufficientBalance):
        await provider.buy(offer)
    emulator.set_balance(100_000)
    emulator.set_stock("tg", "us", 30, 0)
    with pytest.raises(NoNumbers):
        await provider.buy(offer)
    emulator.queue_error("purchase", 50302)
    with pytest.raises(OrderNotFound):
        await provider.buy(offer)
    bad = Offer("beesms", "tg", "US", OrderKind.RENTAL, offer.price, 1, 120, ref="tg|us|5")
    with pytest.raises(InvalidRequest):
        await provider.buy(bad)
    assert not emulator.rentals


async def test_wrong_key_is_bad_credentials(
    emulator: BeeSmsEmulator,
    http_client: httpx.AsyncClient,
    fast_retry: RetryPolicy,
    clock: FakeClock,
    error_status: str,
) -> None:
    provider = make_provider(emulator.base_url, http_client, fast_retry, clock, key="wrong-key")
    with pytest.raises(BadCredentials) as info:
        await provider.catalog()
    assert "wrong-key" not in str(info.value)
    offer = Offer(
        "beesms", "tg", "US", OrderKind.RENTAL, Money(Decimal(1), "USD"), 1, 720, "tg|us|30"
    )
    with pytest.raises(BadCredentials):
        await provider.buy(offer)
    assert (emulator.calls("services"), emulator.calls("purchase")) == (1, 1)  # not retried


async def test_bare_http_error_pages(provider: BeeSmsProvider, emulator: BeeSmsEmulator) -> None:
    emulator.queue_response("services", "<html>Unauthorized</html>", status=401)
    with pytest.raises(BadCredentials):
        await provider.catalog()
    emulator.queue_response("cancel", "not found", status=404)
    order = Order("beesms", "1", OrderKind.RENTAL, "1", "tg", "US")
    with pytest.raises(OrderNotFound):
        await provider.cancel(order)


async def test_unknown_error_code_is_ambiguous_for_a_purchase(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    offer = await offer_for(provider)
    emulator.queue_response("purchase", {"code": 500, "message": "Internal error"})
    with pytest.raises(PurchaseOutcomeUnknown):
        await provider.buy(offer)


# --- state and SMS --------------------------------------------------------------------------


async def test_state_waiting_then_received(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    order = await rent(provider)
    state = await provider.state(order)
    assert state.status == RemoteStatus.WAITING
    assert state.messages == ()
    assert state.expires_at == order.expires_at
    sms_id = emulator.inject_sms(order.order_id, "Your verification code is 482901", "+1212")
    emulator.clock.advance(minutes=1)
    emulator.inject_sms(order.order_id, "Telegram code: 123-456")
    state = await provider.state(order)
    assert state.status == RemoteStatus.RECEIVED
    first, second = state.messages
    assert (first.id, first.code, first.sender) == (sms_id, "482901", "+1212")
    assert first.text == "Your verification code is 482901"
    assert first.received_at == emulator.clock.now() - timedelta(minutes=1)
    assert second.code == "123456"


async def test_state_reads_every_sms_page(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    order = await rent(provider)
    for i in range(45):
        emulator.inject_sms(order.order_id, f"code {1000 + i}")
        emulator.clock.advance(seconds=10)
    state = await provider.state(order)
    assert [m.code for m in state.messages] == [str(1000 + i) for i in range(45)]
    assert emulator.calls("sms") == 3
    assert [r.query["page_num"] for r in emulator.requests if r.path.endswith("/sms")] == [
        "1",
        "2",
        "3",
    ]


async def test_sms_paging_stops_without_progress(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    order = await rent(provider)
    for i in range(20):
        emulator.inject_sms(order.order_id, f"code {1000 + i}")
    # a server that ignores page_num: the same full page again ends the loop
    page = {"code": 200, "data": [{"id": str(i), "sms_content": "x"} for i in range(20)]}
    for _ in range(5):
        emulator.queue_response("sms", page)
    state = await provider.state(order)
    assert len(state.messages) == 20
    assert emulator.calls("sms") == 2


async def test_state_final_statuses(provider: BeeSmsProvider, emulator: BeeSmsEmulator) -> None:
    expired = await rent(provider)
    emulator.expire(expired.order_id)
    assert (await provider.state(expired)).status == RemoteStatus.EXPIRED
    natural = await rent(provider)
    emulator.clock.advance(days=31)
    assert (await provider.state(natural)).status == RemoteStatus.EXPIRED
    cancelled = await rent(provider)
    await provider.cancel(cancelled)
    assert (await provider.state(cancelled)).status == RemoteStatus.CANCELLED


async def test_state_of_unknown_order(provider: BeeSmsProvider, emulator: BeeSmsEmulator) -> None:
    ghost = Order("beesms", "999", OrderKind.RENTAL, "1999", "tg", "US")
    with pytest.raises(OrderNotFound):
        await provider.state(ghost)
    # known to the order endpoint but not listed under that number: transient, not "gone"
    order = await rent(provider)
    stale = Order(
        "beesms", order.order_id, OrderKind.RENTAL, order.phone, "tg", "US",
        meta={**order.meta, "mobile_number": "0000"},
    )  # fmt: skip
    with pytest.raises(ProviderUnavailable):
        await provider.state(stale)
    assert emulator.calls("order") == 2


# --- renewals and cancel --------------------------------------------------------------------


async def test_renewal_options(provider: BeeSmsProvider, emulator: BeeSmsEmulator) -> None:
    emulator.set_price("tg", "us", 30, 1500, 1425)
    emulator.set_price("tg", "us", 7, 500, 480)
    order = await rent(provider)
    assert await provider.renewal_options(order) == [
        RenewalOption(168, Money(Decimal("4.8"), "USD")),
        RenewalOption(720, Money(Decimal("14.25"), "USD")),
    ]


async def test_renew(provider: BeeSmsProvider, emulator: BeeSmsEmulator) -> None:
    emulator.set_price("tg", "us", 7, 500, 480)
    order = await rent(provider)
    balance = emulator.balance
    emulator.clock.advance(days=2)
    renewal = await provider.renew(order, 168)
    assert renewal.order_id == order.order_id
    assert renewal.expires_at == order.expires_at + timedelta(days=7)  # type: ignore[operator]
    assert renewal.price == Money(Decimal("4.8"), "USD")
    assert emulator.balance == balance - 480
    renew_request = next(r for r in emulator.requests if r.path.endswith("/renew"))
    assert renew_request.query["duration"] == "7"
    assert (await provider.state(order)).expires_at == renewal.expires_at


async def test_renew_errors(provider: BeeSmsProvider, emulator: BeeSmsEmulator) -> None:
    order = await rent(provider)
    with pytest.raises(InvalidRequest):
        await provider.renew(order, 36)
    assert emulator.calls("renew") == 0
    emulator.queue_error("renew", 50304)
    with pytest.raises(ProviderUnavailable) as info:
        await provider.renew(order, 720)
    assert not isinstance(info.value, PurchaseOutcomeUnknown)
    assert info.value.answer_lost is False
    assert emulator.calls("renew") == 1
    emulator.set_balance(0)
    with pytest.raises(InsufficientBalance):
        await provider.renew(order, 720)
    ghost = Order("beesms", "999", OrderKind.RENTAL, "1999", "tg", "US")
    with pytest.raises(OrderNotFound):
        await provider.renew(ghost, 720)


async def test_renew_survives_a_failed_read_back(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    order = await rent(provider)
    for _ in range(3):
        emulator.queue_response("numbers", "<html>oops</html>", status=502)
    renewal = await provider.renew(order, 720)
    assert renewal.expires_at is None  # renewed, expiry unknown: not an error
    assert emulator.rental(order.order_id).end == order.expires_at + timedelta(days=30)  # type: ignore[operator]


async def test_cancel(provider: BeeSmsProvider, emulator: BeeSmsEmulator) -> None:
    order = await rent(provider)
    balance = emulator.balance
    await provider.cancel(order)
    assert emulator.balance == balance + 1425
    assert emulator.rental(order.order_id).cancelled


async def test_cancel_errors(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator, error_status: str
) -> None:
    order = await rent(provider)
    emulator.inject_sms(order.order_id, "code 1234")
    with pytest.raises(CancelNotAllowed):
        await provider.cancel(order)
    assert not emulator.rental(order.order_id).cancelled
    ghost = Order("beesms", "999", OrderKind.RENTAL, "1999", "tg", "US")
    with pytest.raises(OrderNotFound):
        await provider.cancel(ghost)


async def test_renew_then_cancel_gives_back_the_renewal_only(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator, clock: FakeClock
) -> None:
    start = emulator.balance
    order = await rent(provider)  # 30 days, 1425 cents
    emulator.inject_sms(order.order_id, "code 1111")  # before the renewal: does not count
    clock.advance(days=2)
    await provider.renew(order, 168)  # 7 days
    renewal = emulator.rental(order.order_id).actual_amount
    renewed = replace(order, bought_at=clock.now() - timedelta(days=2), renewed_at=clock.now())
    terms = provider.cancel_terms(renewed, [clock.now() - timedelta(days=2)], clock.now())
    assert (terms.blocked, terms.refund) == (None, RefundScope.LAST)
    outcome = await provider.cancel(renewed)
    assert outcome.refund is RefundScope.LAST
    # The provider kept the purchase; it gave back the renewal, which is what LAST refunds.
    assert emulator.balance == start - 1425
    assert emulator.refunds == [(order.order_id, renewal)]


async def test_cancel_after_the_24_hour_window_is_refused_and_keeps_the_money(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator, clock: FakeClock
) -> None:
    order = replace(await rent(provider), bought_at=clock.now())
    balance = emulator.balance
    clock.advance(hours=24)
    terms = provider.cancel_terms(order, [], clock.now())
    assert terms.blocked is CancelBlock.TOO_LATE
    assert terms.closes_at == order.bought_at + timedelta(hours=24)  # type: ignore[operator]
    with pytest.raises(CancelNotAllowed, match="not eligible for refund"):
        await provider.cancel(order)
    assert emulator.balance == balance and not emulator.rental(order.order_id).cancelled


def test_cancel_terms_follow_the_last_charge(provider: BeeSmsProvider) -> None:
    bought = FakeClock().now()
    order = Order("beesms", "1", OrderKind.RENTAL, "1", "tg", "US", bought_at=bought)
    hour = timedelta(hours=1)
    now = bought + hour
    assert provider.cancel_terms(order, [], now) == CancelTerms(
        None, RefundScope.LAST, closes_at=bought + 24 * hour
    )
    sms = provider.cancel_terms(order, [bought + hour / 2], now)
    assert (sms.blocked, sms.refund) == (CancelBlock.SMS_RECEIVED, RefundScope.NONE)
    late = provider.cancel_terms(order, [], bought + 24 * hour)
    assert (late.blocked, late.refund) == (CancelBlock.TOO_LATE, RefundScope.NONE)
    # A renewal opens a new window; an SMS before it no longer blocks.
    renewed = replace(order, renewed_at=bought + 30 * hour)
    again = provider.cancel_terms(renewed, [bought + hour], bought + 31 * hour)
    assert (again.blocked, again.closes_at) == (None, bought + 54 * hour)
    unstored = replace(order, bought_at=None)
    assert provider.cancel_terms(unstored, [bought], now).allowed  # the provider decides


@pytest.mark.parametrize(
    ("data", "outcome"),
    [
        (
            {"refund_amount": 1425},
            CancelOutcome(RefundScope.AMOUNT, Money(Decimal("14.25"), "USD")),
        ),
        ({"amount": "990"}, CancelOutcome(RefundScope.AMOUNT, Money(Decimal("9.90"), "USD"))),
        ({"refund_amount": "lots"}, CancelOutcome(RefundScope.UNKNOWN)),
        ({"refund_amount": -5}, CancelOutcome(RefundScope.UNKNOWN)),
        (None, CancelOutcome(RefundScope.LAST)),
    ],
)
async def test_cancel_answer_with_an_amount_is_what_came_back(
    provider: BeeSmsProvider,
    emulator: BeeSmsEmulator,
    data: object,
    outcome: CancelOutcome,
) -> None:
    order = await rent(provider)
    emulator.queue_response("cancel", {"code": 200, "message": "Operation Success", "data": data})
    got = await provider.cancel(order)
    assert (got.refund, got.amount) == (outcome.refund, outcome.amount)


def test_listed_kinds_and_unclaimed_window(provider: BeeSmsProvider) -> None:
    assert provider.listed_kinds == {OrderKind.RENTAL}
    assert provider.unclaimed_window(OrderKind.RENTAL) == timedelta(hours=24)


# --- list_orders ----------------------------------------------------------------------------


async def test_list_orders_reads_every_page(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    emulator.max_page_size = 2  # the server caps page_size: total_page still drives the loop
    orders = [await rent(provider) for _ in range(5)]
    emulator.inject_sms(orders[0].order_id, "code 5555")
    emulator.expire(orders[1].order_id)
    await provider.cancel(orders[2])
    remote = {o.order_id: o for o in await provider.list_orders()}
    assert set(remote) == {o.order_id for o in orders}
    assert emulator.calls("numbers") == 3
    assert remote[orders[0].order_id].status == RemoteStatus.RECEIVED
    assert remote[orders[1].order_id].status == RemoteStatus.EXPIRED
    assert remote[orders[2].order_id].status == RemoteStatus.CANCELLED
    assert remote[orders[3].order_id].status == RemoteStatus.WAITING
    first = remote[orders[3].order_id]
    assert (first.kind, first.phone, first.service, first.country) == (
        OrderKind.RENTAL,
        orders[3].phone,
        "tg",
        "US",
    )
    assert first.expires_at == orders[3].expires_at


# --- transport faults -----------------------------------------------------------------------


async def test_reads_retry_on_transient_fault(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    emulator.fail("5xx")
    catalog = await provider.catalog()
    assert ("tg", "US") in catalog.pairs
    assert emulator.calls("services") == 2


async def test_buy_is_never_retried(provider: BeeSmsProvider, emulator: BeeSmsEmulator) -> None:
    offer = await offer_for(provider)
    emulator.fail("garbage")
    with pytest.raises(PurchaseOutcomeUnknown):
        await provider.buy(offer)
    assert emulator.calls("purchase") == 1
    emulator.fail("5xx")
    with pytest.raises(PurchaseOutcomeUnknown):
        await provider.buy(offer)
    assert emulator.calls("purchase") == 2


async def test_refused_connection_is_not_ambiguous(
    http_client: httpx.AsyncClient, fast_retry: RetryPolicy, clock: FakeClock
) -> None:
    provider = make_provider(f"http://127.0.0.1:{free_port()}", http_client, fast_retry, clock)
    offer = Offer("beesms", "tg", "US", OrderKind.RENTAL, Money(Decimal(1), "USD"), 1, 720)
    with pytest.raises(ProviderUnavailable) as info:
        await provider.buy(offer)
    assert not isinstance(info.value, PurchaseOutcomeUnknown)


async def test_timeouts(
    emulator: BeeSmsEmulator,
    http_client: httpx.AsyncClient,
    fast_retry: RetryPolicy,
    clock: FakeClock,
) -> None:
    provider = make_provider(emulator.base_url, http_client, fast_retry, clock, timeout=0.2)
    offer = await offer_for(provider)
    emulator.fail("timeout")
    with pytest.raises(PurchaseOutcomeUnknown):
        await provider.buy(offer)
    assert emulator.calls("purchase") == 1
    emulator.fail("timeout", times=3)
    with pytest.raises(ProviderUnavailable) as info:
        await provider.catalog()
    assert info.value.answer_lost
    assert not isinstance(info.value, PurchaseOutcomeUnknown)
    assert emulator.calls("services") == 1 + 3  # offers, then three attempts


async def test_key_never_leaks(
    emulator: BeeSmsEmulator,
    http_client: httpx.AsyncClient,
    fast_retry: RetryPolicy,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    provider = make_provider(emulator.base_url, http_client, fast_retry, clock, timeout=0.2)
    offer = await offer_for(provider)
    order = await provider.buy(offer)
    errors: list[ProviderError] = []
    emulator.fail("garbage")
    emulator.fail("timeout")
    emulator.fail("5xx", times=3)
    emulator.queue_response("cancel", {"code": 777, "message": f"bad token={DEFAULT_TOKEN}"})
    for call in (
        lambda: provider.buy(offer),
        lambda: provider.buy(offer),
        provider.catalog,
        lambda: provider.cancel(order),
    ):
        with pytest.raises(ProviderError) as info:
            await call()
        errors.append(info.value)
    assert len(errors) == 4
    for error in errors:
        assert DEFAULT_TOKEN not in str(error)
        assert DEFAULT_TOKEN not in repr(error.__cause__)
    assert DEFAULT_TOKEN not in caplog.text


# --- code extraction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Your verification code is 482901", "482901"),
        ("G-482901 is your Google verification code", "482901"),
        ("Telegram code: 123-456", "123456"),
        ("Welcome to 2025! Your code 5521", "5521"),
        ("on 2025-01-15 your code is 9911", "9911"),
        ("Call 415-555-2671 for help", None),
        ("Code 12345678901", None),
        ("no digits here", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_code(text: str | None, code: str | None) -> None:
    assert extract_code(text) == code


async def test_the_balance_is_read_in_cents(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    emulator.set_balance(12_345)
    assert await provider.balance() == Money(Decimal("123.45"), "USD")


async def test_an_account_without_the_balance_endpoint_is_unknown_not_an_error(
    provider: BeeSmsProvider, emulator: BeeSmsEmulator
) -> None:
    emulator.balance_endpoint = False
    with pytest.raises(Unsupported):
        await provider.balance()
