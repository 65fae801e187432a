"""How offers deliver (issue #12): each order's outcome and time to its first SMS are learnt
once, with the fact that tells them; badges appear at the threshold; the best pick is the
cheapest offer that delivers well, and says why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot import texts
from bot.domain import Order, OrderKind, Sms
from bot.i18n import create_i18n
from bot.money import Money
from bot.providers.base import Offer
from bot.services.offer_stats import BestReason, OfferStatsService
from bot.services.offers import PricedOffer
from storage import Storage
from storage.intents import IntentsRepo
from storage.models import OrderStatus
from storage.offer_stats import RECENT_WINDOW, OfferRef, OfferStatsRepo
from storage.orders import OrdersRepo
from tests.emulators.base import FakeClock
from tests.stack import running_stack
from tests.test_flow_orders import CANCEL, GETSMS_ACTIVATION, buy, deliver_sms

USER = 1001
TG_US = OfferRef("smsbus", "tg", "US", "activation")


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Storage]:
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    try:
        await storage.users.ensure(USER, "en", clock.now())
        yield storage
    finally:
        await storage.close()


class Orders:
    """Orders bought and told about through the storage API, on a fake clock."""

    def __init__(self, store: Storage, clock: FakeClock) -> None:
        self.store, self.clock, self.count = store, clock, 0

    async def buy(self, ref: OfferRef = TG_US) -> int:
        self.count += 1
        order = Order(
            provider=ref.provider,
            order_id=f"P-{self.count}",
            kind=OrderKind(ref.kind),
            phone="12025550123",
            service=ref.service,
            country=ref.country,
            price=Money(Decimal("0.50"), "USD"),
        )
        stored = await self.store.orders.create(USER, order, None, self.clock.now())
        return stored.id

    async def sms(self, order_id: int, after: float, sms_id: str = "1") -> None:
        self.clock.advance(seconds=after)
        await self.store.messages.add_new(
            order_id, [Sms(sms_id, "code 12345", "12345")], self.clock.now()
        )

    async def close(self, order_id: int, status: OrderStatus) -> bool:
        return await self.store.orders.set_status(order_id, status, None, self.clock.now())

    async def coded(self, seconds: float, ref: OfferRef = TG_US) -> int:
        order_id = await self.buy(ref)
        await self.sms(order_id, seconds)
        await self.close(order_id, OrderStatus.FINISHED)
        return order_id

    async def failed(
        self, ref: OfferRef = TG_US, status: OrderStatus = OrderStatus.EXPIRED
    ) -> None:
        await self.close(await self.buy(ref), status)


async def figures(store: Storage, ref: OfferRef = TG_US) -> tuple[int, ...]:
    got = await OfferStatsRepo(store.db).get(ref)
    assert got is not None
    return (got.samples, got.codes, got.no_code, got.cancelled, got.banned, got.recent)


async def test_each_outcome_is_counted_with_the_time_to_the_first_sms(
    store: Storage, clock: FakeClock
) -> None:
    orders = Orders(store, clock)
    assert await OfferStatsRepo(store.db).get(TG_US) is None

    await orders.coded(40)
    await orders.coded(20)
    await orders.coded(300)
    await orders.failed(status=OrderStatus.EXPIRED)
    await orders.failed(status=OrderStatus.CANCELLED)
    await orders.failed(status=OrderStatus.BANNED)
    active = await orders.buy()  # still waiting: not an outcome yet

    got = await OfferStatsRepo(store.db).get(TG_US)
    assert got is not None
    assert (got.samples, got.codes, got.no_code, got.cancelled, got.banned) == (6, 3, 1, 1, 1)
    assert got.recent_seconds == (20, 40, 300)
    assert got.typical_seconds == 40
    assert got.code_seconds == 360
    assert (got.recent, got.recent_codes) == (6, 3)
    # Offers are told apart by provider, service, country and kind.
    assert await OfferStatsRepo(store.db).get(OfferRef("smsbus", "tg", "US", "rental")) is None

    await orders.sms(active, 15)  # its code: counted when it comes, not when it closes
    assert await figures(store) == (7, 4, 1, 1, 1, 7)


async def test_a_second_sms_or_a_repeated_close_changes_nothing(
    store: Storage, clock: FakeClock
) -> None:
    orders = Orders(store, clock)
    coded = await orders.buy()
    await orders.sms(coded, 30)
    await orders.sms(coded, 30, sms_id="2")  # another SMS on the same order
    await orders.sms(coded, 30)  # the same SMS polled again
    assert await orders.close(coded, OrderStatus.CANCELLED)  # closed after its code
    assert not await orders.close(coded, OrderStatus.EXPIRED)
    assert await figures(store) == (1, 1, 0, 0, 0, 1)
    got = await OfferStatsRepo(store.db).get(TG_US)
    assert got is not None and got.recent_seconds == (30,)

    expired = await orders.buy()
    assert await orders.close(expired, OrderStatus.EXPIRED)
    assert not await orders.close(expired, OrderStatus.CANCELLED)
    # The provider's close seen by the watcher (intents.close_order) after the card's close.
    closed, _ = await IntentsRepo(store.db).close_order(
        expired, OrderStatus.EXPIRED, None, clock.now()
    )
    assert not closed
    await orders.sms(expired, 5)  # a late SMS on a closed order: the outcome stays
    assert await figures(store) == (2, 1, 1, 0, 0, 2)

    # The intents' close (a cancel seen in a poll) learns as set_status does, once.
    seen = await orders.buy()
    closed, _ = await IntentsRepo(store.db).close_order(
        seen, OrderStatus.CANCELLED, None, clock.now()
    )
    assert closed
    assert await figures(store) == (3, 1, 1, 1, 0, 3)


async def test_a_provider_time_outside_the_order_is_not_trusted(
    store: Storage, clock: FakeClock
) -> None:
    orders = Orders(store, clock)
    early = await orders.buy()
    clock.advance(seconds=50)
    told = clock.now() - timedelta(hours=3)  # a provider clock in another zone
    await store.messages.add_new(early, [Sms("1", "x", "1", received_at=told)], clock.now())
    fair = await orders.buy()
    clock.advance(seconds=70)
    told = clock.now() - timedelta(seconds=10)  # received 60 s after the purchase
    await store.messages.add_new(fair, [Sms("1", "x", "1", received_at=told)], clock.now())
    got = await OfferStatsRepo(store.db).get(TG_US)
    assert got is not None and got.recent_seconds == (50, 60)


async def test_recent_figures_keep_only_the_latest_outcomes(
    store: Storage, clock: FakeClock
) -> None:
    orders = Orders(store, clock)
    for _ in range(60):
        await orders.coded(10)
    for _ in range(60):
        await orders.failed()
    got = await OfferStatsRepo(store.db).get(TG_US)
    assert got is not None
    assert (got.samples, got.codes, got.no_code) == (120, 60, 60)
    assert (got.recent, got.recent_codes) == (RECENT_WINDOW, 40)  # the last 100: 40 codes
    assert len(got.recent_seconds) == 40
    assert got.recent_share == 0.4


# --- badges and the best pick -------------------------------------------------------------


def priced(provider: str, price: str, kind: OrderKind = OrderKind.ACTIVATION) -> PricedOffer:
    offer = Offer(provider, "tg", "US", kind, Money(Decimal(price), "USD"), stock=10)
    return PricedOffer(offer, Money(Decimal(price), "USD"))


async def deliveries(orders: Orders, provider: str, codes: int, fails: int, secs: float) -> None:
    ref = OfferRef(provider, "tg", "US", "activation")
    for _ in range(codes):
        await orders.coded(secs, ref)
    for _ in range(fails):
        await orders.failed(ref)


def render(locale: str, make: object) -> str:
    i18n = create_i18n()
    with i18n.context(), i18n.use_locale(locale):
        assert callable(make)
        text = make()
        assert isinstance(text, str)
        return text


async def test_a_badge_appears_only_with_enough_recent_orders(
    store: Storage, clock: FakeClock
) -> None:
    service = OfferStatsService(OfferStatsRepo(store.db), min_samples=20, good_share=0.7)
    orders = Orders(store, clock)
    await deliveries(orders, "smsbus", codes=17, fails=2, secs=40)  # 19 outcomes
    assert await service.badge("smsbus", "tg", "US", "activation") is None
    assert await service.badges([priced("smsbus", "1.10")]) == {}

    await orders.coded(40)  # the 20th
    badge = await service.badge("smsbus", "tg", "US", "activation")
    assert badge is not None
    assert (badge.percent, badge.samples, badge.typical_seconds, badge.good) == (90, 20, 40, True)
    assert render("en", lambda: texts.offer_badge(badge)) == "✅ 90% · ~40 s"
    assert render("ru", lambda: texts.offer_badge(badge)) == "✅ 90% · ~40 с"
    assert await service.badges([priced("smsbus", "1.10")]) == {TG_US: badge}

    for _ in range(20):
        await orders.failed()  # the recent share falls under 70%: a warning, not a tick
    badge = await service.badge("smsbus", "tg", "US", "activation")
    assert badge is not None and not badge.good
    assert render("en", lambda: texts.offer_badge(badge)) == "⚠️ 45% · ~40 s"


async def test_the_best_pick_is_the_cheapest_offer_that_delivers_well(
    store: Storage, clock: FakeClock
) -> None:
    service = OfferStatsService(OfferStatsRepo(store.db), min_samples=20, good_share=0.7)
    orders = Orders(store, clock)
    await deliveries(orders, "getsms", codes=5, fails=15, secs=30)  # cheapest, poor: 25%
    await deliveries(orders, "smsbus", codes=18, fails=2, secs=45)  # 90%
    await deliveries(orders, "beesms", codes=20, fails=0, secs=20)  # 100%, dearer
    offers = [
        priced("getsms", "0.40"),
        priced("smsonline", "0.45"),  # no orders yet: unknown
        priced("smsbus", "1.10"),
        priced("beesms", "1.50"),
    ]
    best = await service.best(offers)
    assert best is not None
    assert (best.priced.offer.provider, best.reason) == ("smsbus", BestReason.DELIVERS_WELL)
    assert render("en", lambda: texts.best_reason(best)) == (
        "⭐ Best pick: the cheapest offer that delivers well: 90% of its recent orders got a "
        "code, typically in ~45 s."
    )
    assert render("ru", lambda: texts.best_reason(best)).startswith("⭐ Лучший выбор")

    # None delivers well: the cheapest one not known to fail, not the poor cheaper one.
    best = await service.best([offers[0], offers[1]])
    assert best is not None
    assert (best.priced.offer.provider, best.reason) == ("smsonline", BestReason.UNKNOWN)
    assert "too few orders" in render("en", lambda: texts.best_reason(best))

    # Only poor offers: the one that delivered most often.
    await deliveries(orders, "smsonline", codes=10, fails=10, secs=60)  # 50%
    best = await service.best([offers[0], offers[1]])
    assert best is not None
    assert (best.priced.offer.provider, best.reason) == ("smsonline", BestReason.LEAST_BAD)
    assert "(50% of its recent orders)" in render("en", lambda: texts.best_reason(best))
    assert await service.best([]) is None


async def test_the_admins_delivery_table_shows_the_best_and_the_worst(
    store: Storage, clock: FakeClock
) -> None:
    service = OfferStatsService(OfferStatsRepo(store.db), min_samples=20, good_share=0.7)
    orders = Orders(store, clock)
    table = await service.table(limit=1)
    assert render("en", lambda: texts.delivery_table(table)) == (
        "📊 Delivery: no offer has 20 recent orders yet."
    )
    await deliveries(orders, "getsms", codes=5, fails=15, secs=30)
    await deliveries(orders, "smsbus", codes=18, fails=2, secs=45)
    await deliveries(orders, "beesms", codes=20, fails=0, secs=200)
    await deliveries(orders, "smsonline", codes=3, fails=3, secs=10)  # too few: not shown
    table = await service.table(limit=1)
    assert [row.figures.ref.provider for row in table.best] == ["beesms"]
    assert [row.figures.ref.provider for row in table.worst] == ["getsms"]
    text = render("en", lambda: texts.delivery_table(table))
    assert text.splitlines() == [
        "📊 <b>Delivery</b> (offers with at least 20 recent orders)",
        "",
        "<b>Best</b>",
        "• BEE-SMS · Telegram · 🇺🇸 United States · activation: ✅ 100% · ~3 min "
        "(20 recent orders)",
        "",
        "<b>Worst</b>",
        "• Get-SMS · Telegram · 🇺🇸 United States · activation: ⚠️ 25% · ~30 s (20 recent orders)",
    ]
    assert "Лучшие" in render("ru", lambda: texts.delivery_table(table))


# --- on the stack: a real purchase, its SMS through the watcher, a cancel from the card ------


async def test_a_real_purchase_teaches_its_offer(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        user = stack.client()
        repo = OfferStatsRepo(stack.app.db)
        _, order = await buy(stack, user, GETSMS_ACTIVATION)
        ref = OfferRef("getsms", order.service, order.country, "activation")
        assert (order.service, order.country) == ("tg", "RU")

        stack.clock.advance(seconds=40)
        await deliver_sms(stack.suite, "getsms", order.provider_order_id, "482913")
        await stack.app.watcher.tick()
        await stack.app.watcher.tick()  # polled again: the same SMS, nothing new learnt
        got = await repo.get(ref)
        assert got is not None
        assert (got.samples, got.codes, got.recent_seconds) == (1, 1, (40,))

        second_card, second = await buy(stack, user, GETSMS_ACTIVATION)
        answer = await user.click(second_card, CANCEL)
        assert answer is not None and answer.text == "Cancelled."
        stored = await OrdersRepo(stack.app.db).get(second.id)
        assert stored is not None and stored.status is OrderStatus.CANCELLED
        await stack.app.watcher.tick()
        got = await repo.get(ref)
        assert got is not None
        assert (got.samples, got.codes, got.cancelled) == (2, 1, 1)

        service: OfferStatsService = stack.app.dp["offer_stats"]
        assert service.min_samples == 20  # the setting's default
        assert await service.badge("getsms", "tg", "RU", "activation") is None
