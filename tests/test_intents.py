"""Write-ahead intents and refunds by what the provider returned, on a real SQLite file.

Each money-moving step is one transaction with its outcome: the hold with the intent, the
order with its capture, the status with its refund. A refund is the share of what the user
paid that the provider returned: all of it, the latest charge, an amount in proportion, or
nothing; once per order. Two database connections (two processes) cannot buy one quote twice
nor run two calls on one order at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from bot.domain import CancelOutcome, Order, OrderKind, RefundScope
from bot.money import Money
from storage.db import Database
from storage.intents import (
    IntentAction,
    IntentBusy,
    IntentClosed,
    IntentsRepo,
    Purpose,
    QuoteUsed,
)
from storage.ledger import LedgerRepo
from storage.models import OrderStatus, StoredOrder
from storage.users import UsersRepo
from tests.emulators.base import FakeClock

USER = 7001


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


RENTAL = Purpose(
    provider="beesms",
    service="tg",
    country="US",
    kind=OrderKind.RENTAL,
    duration_hours=168,
    cost=usd("4.00"),
    display_price=usd("5.00"),
)


@pytest.fixture
async def db(db_location: str) -> AsyncIterator[Database]:
    database = await Database.open(db_location)
    await UsersRepo(database).ensure(USER, "en", FakeClock().now())
    ledger = LedgerRepo(database)
    await ledger.adjust(USER, usd("100.00"), 1, "test", FakeClock().now())
    yield database
    await database.close()


async def bought(db: Database, clock: FakeClock, order_id: str = "R1") -> StoredOrder:
    intents = IntentsRepo(db)
    intent = await intents.open(IntentAction.BUY, USER, RENTAL, clock.now(), pays=True)
    assert intent is not None
    order = Order("beesms", order_id, OrderKind.RENTAL, "15550001", "tg", "US", usd("4.00"))
    return await intents.bought(intent, order, clock.now())


async def renewed(
    db: Database, clock: FakeClock, order: StoredOrder, cost: str, paid: str
) -> None:
    intents = IntentsRepo(db)
    purpose = Purpose("beesms", "tg", "US", OrderKind.RENTAL, 24, "", usd(cost), usd(paid))
    intent = await intents.open(
        IntentAction.RENEW, USER, purpose, clock.now(), pays=True, order=order
    )
    assert intent is not None
    await intents.renewed(intent, None, clock.now())


async def cancel(
    db: Database, clock: FakeClock, order: StoredOrder, outcome: CancelOutcome
) -> Money | None:
    intents = IntentsRepo(db)
    intent = await intents.open(
        IntentAction.CANCEL, USER, RENTAL, clock.now(), pays=False, order=order
    )
    assert intent is not None
    _, refunded = await intents.cancelled(intent, OrderStatus.CANCELLED, outcome, clock.now())
    return refunded


async def balance(db: Database) -> Decimal:
    return (await LedgerRepo(db).balance(USER, "USD")).amount


@pytest.mark.parametrize(
    ("outcome", "back"),
    [
        (CancelOutcome(RefundScope.ALL), "7.00"),  # the purchase and the renewal
        (CancelOutcome(RefundScope.LAST), "2.00"),  # the renewal only
        (CancelOutcome(RefundScope.NONE), None),
        (CancelOutcome(RefundScope.UNKNOWN), None),  # nothing given on a guess
        # The provider says it returned $1.00 of the renewal's $1.50: two thirds of $2.00.
        (CancelOutcome(RefundScope.AMOUNT, usd("1.00")), "1.33"),
        # $3.50: the whole renewal ($2.00) and $2.00 of the purchase's $4.00 ($2.50 of $5.00).
        (CancelOutcome(RefundScope.AMOUNT, usd("3.50")), "4.50"),
        # More than was ever charged: never more than the user paid.
        (CancelOutcome(RefundScope.AMOUNT, usd("99.00")), "7.00"),
    ],
    ids=["all", "last", "none", "unknown", "part-of-last", "last-and-part", "capped"],
)
async def test_a_cancel_refunds_the_share_the_provider_returned(
    db: Database, outcome: CancelOutcome, back: str | None
) -> None:
    clock = FakeClock()
    order = await bought(db, clock)
    await renewed(db, clock, order, cost="1.50", paid="2.00")
    assert await balance(db) == Decimal("93.00")

    refunded = await cancel(db, clock, order, outcome)

    assert refunded == (None if back is None else usd(back))
    assert await balance(db) == Decimal("93.00") + Decimal(back or "0")
    assert await LedgerRepo(db).open_holds() == []


async def test_a_refund_is_given_once_per_order(db: Database) -> None:
    clock = FakeClock()
    order = await bought(db, clock)
    assert await cancel(db, clock, order, CancelOutcome(RefundScope.ALL)) == usd("5.00")
    # A second confirmed cancel (a replayed answer, a reconciler) gives nothing more.
    assert await LedgerRepo(db).refund(order.id, clock.now()) is None
    assert await balance(db) == Decimal("100.00")


async def test_a_short_wallet_writes_nothing(db: Database) -> None:
    clock = FakeClock()
    dear = Purpose("beesms", "tg", "US", OrderKind.RENTAL, 168, "", usd("400"), usd("500.00"))
    intents = IntentsRepo(db)
    assert await intents.open(IntentAction.BUY, USER, dear, clock.now(), pays=True) is None
    assert await intents.list_open() == []
    assert await balance(db) == Decimal("100.00")


async def test_a_failed_call_releases_its_hold_once(db: Database) -> None:
    clock = FakeClock()
    intents = IntentsRepo(db)
    intent = await intents.open(IntentAction.BUY, USER, RENTAL, clock.now(), pays=True)
    assert intent is not None
    assert await balance(db) == Decimal("95.00")
    assert await intents.failed(intent, "no numbers", clock.now())
    assert not await intents.failed(intent, "again", clock.now())
    with pytest.raises(IntentClosed):
        await intents.bought(
            intent,
            Order("beesms", "late", OrderKind.RENTAL, "1", "tg", "US", usd("4.00")),
            clock.now(),
        )
    assert await balance(db) == Decimal("100.00")


async def test_two_processes_cannot_buy_one_quote_or_act_twice_on_an_order(
    db: Database, db_location: str
) -> None:
    clock = FakeClock()
    other = await Database.open(db_location)  # a second process's connection
    try:
        mine, theirs = IntentsRepo(db), IntentsRepo(other)
        await mine.open(IntentAction.BUY, USER, RENTAL, clock.now(), pays=True, quote_id="q1")
        with pytest.raises(QuoteUsed):
            await theirs.open(
                IntentAction.BUY, USER, RENTAL, clock.now(), pays=True, quote_id="q1"
            )
        order = await bought(db, clock, "R2")
        await mine.open(IntentAction.CANCEL, USER, RENTAL, clock.now(), pays=False, order=order)
        with pytest.raises(IntentBusy):
            await theirs.open(
                IntentAction.RENEW, USER, RENTAL, clock.now(), pays=True, order=order
            )
        assert await balance(db) == Decimal("90.00")  # the refused ones held nothing
    finally:
        await other.close()
