"""User wallets: the ledger's invariants on a real SQLite database, alone and under concurrency.

The property test runs random batches of wallet operations, each batch concurrently
(``asyncio.gather``), and checks every result against an independent model: the balance is
the sum of the ledger and never negative at any point of it, a hold is settled at most once,
an order is refunded at most once and a payment reference is credited once.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.money import Money
from bot.providers.base import Order, OrderKind
from bot.services.wallet import Hold, WalletService, minor_unit, price_with_markup
from storage.db import Database, Row
from storage.ledger import LedgerKind, LedgerRepo, UnknownHold, UnknownOrder, exact_sum
from storage.migrations import MIGRATIONS
from storage.orders import OrdersRepo, UnknownUser
from storage.users import UsersRepo
from tests.emulators.base import FakeClock

USER = 1001
OTHER = 2002
ADMIN = 42
USD = "USD"


def usd(amount: str) -> Money:
    return Money(Decimal(amount), USD)


@dataclass
class Env:
    db: Database
    ledger: LedgerRepo
    orders: OrdersRepo
    wallet: WalletService
    clock: FakeClock
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def order(self, user_id: int = USER) -> int:
        """A stored order of ``user_id`` (what a purchase captures its hold for)."""
        number = next(self._numbers)
        order = Order(
            provider="getsms",
            order_id=f"A-{number}",
            kind=OrderKind.ACTIVATION,
            phone=f"1202555{number:04d}",
            service="tg",
            country="US",
            price=Money(Decimal("0.5"), "RUB"),
        )
        stored = await self.orders.create(user_id, order, None, self.clock.now())
        return stored.id


async def open_env(path: str | Path, clock: FakeClock) -> Env:
    db = await Database.open(path)
    users = UsersRepo(db)
    for user_id in (USER, OTHER):
        await users.ensure(user_id, "en", clock.now())
    ledger = LedgerRepo(db)
    return Env(db, ledger, OrdersRepo(db), WalletService(ledger, USD, clock), clock)


@pytest.fixture
def db_path(db_location: str) -> str:
    return db_location


@pytest.fixture
async def env(db_path: Path, clock: FakeClock) -> AsyncIterator[Env]:
    opened = await open_env(db_path, clock)
    try:
        yield opened
    finally:
        await opened.db.close()


async def ledger_rows(db: Database) -> list[Row]:
    return await db.fetchall("SELECT * FROM ledger ORDER BY id")


async def assert_ledger_invariants(db: Database) -> None:
    """Read straight from the table: every prefix sum >= 0, no twin settlements or refunds."""
    running: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for row in await ledger_rows(db):
        key = (int(row["user_id"]), row["currency"])
        running[key] = exact_sum([running[key], Decimal(row["amount"])])
        assert running[key] >= 0, f"balance negative after ledger row {row['id']}"
    for sql in (
        "SELECT hold_id FROM ledger WHERE kind IN ('capture', 'release') "
        "GROUP BY hold_id HAVING COUNT(*) > 1",
        "SELECT order_id FROM ledger WHERE kind = 'refund' GROUP BY order_id HAVING COUNT(*) > 1",
        "SELECT ref FROM ledger WHERE ref IS NOT NULL GROUP BY ref HAVING COUNT(*) > 1",
    ):
        assert await db.fetchall(sql) == []


# --- migration ----------------------------------------------------------------------------


async def test_migration_adds_wallets_and_access_to_an_existing_v2_database(
    db_path: Path,
) -> None:
    async with (
        await Database.open(db_path, migrations=MIGRATIONS[:2]) as old,
        old.transaction() as tx,
    ):
        await tx.execute(
            "INSERT INTO users (id, language, first_seen, telegram_language) "
            "VALUES (?, 'ru', '2025-12-31T00:00:00.000000+00:00', 'ru')",
            (USER,),
        )
    async with await Database.open(db_path) as db:
        assert db.migrations_applied == tuple(range(3, len(MIGRATIONS) + 1))
        assert await db.schema_version() == len(MIGRATIONS)
        row = await db.fetchone(
            "SELECT language, access, blocked FROM users WHERE id = ?", (USER,)
        )
        assert row is not None and tuple(row) == ("ru", "none", 0)
        ledger = LedgerRepo(db)
        assert await ledger.top_up(USER, usd("5"), "r-1", FakeClock().now())
        assert await ledger.balance(USER, USD) == usd("5")
        async with db.transaction() as tx:
            for access in ("requested", "approved", "denied", "none"):
                await tx.execute("UPDATE users SET access = ? WHERE id = ?", (access, USER))
        for sql in (
            "UPDATE users SET access = 'maybe' WHERE id = ?",
            "UPDATE users SET blocked = 2 WHERE id = ?",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                async with db.transaction() as tx:
                    await tx.execute(sql, (USER,))


async def test_database_refuses_duplicates_edits_and_wrong_signs(env: Env) -> None:
    assert await env.ledger.top_up(USER, usd("10"), "charge-1", env.clock.now())
    hold_id = await env.ledger.hold(USER, usd("3"), env.clock.now())
    assert hold_id is not None
    order_id = await env.order()
    assert await env.ledger.capture(hold_id, order_id, env.clock.now())
    assert await env.ledger.refund(order_id, env.clock.now()) == usd("3")
    insert = (
        "INSERT INTO ledger (user_id, kind, amount, currency, hold_id, order_id, ref, actor, "
        "created_at) VALUES (?, ?, ?, 'USD', ?, ?, ?, ?, '2026-01-01T00:00:00.000000+00:00')"
    )
    rejected: list[tuple[tuple[object, ...], str]] = [
        ((USER, "release", "3", hold_id, None, None, None), "UNIQUE"),  # second settlement
        ((USER, "capture", "0", hold_id, order_id, None, None), "UNIQUE"),
        ((USER, "refund", "3", None, order_id, None, None), "UNIQUE"),  # second refund
        ((USER, "topup", "1", None, None, "charge-1", None), "UNIQUE"),  # same payment
        ((USER, "topup", "-1", None, None, "charge-2", None), "CHECK"),  # wrong sign
        ((USER, "hold", "1", None, None, None, None), "CHECK"),
        ((USER, "capture", "0", None, order_id, None, None), "CHECK"),  # settles nothing
        ((USER, "adjust", "1", None, None, None, None), "CHECK"),  # nobody did it
        ((USER, "gift", "1", None, None, None, None), "CHECK"),
    ]
    for params, error in rejected:
        with pytest.raises(sqlite3.IntegrityError, match=error):
            async with env.db.transaction() as tx:
                await tx.execute(insert, params)
    for sql in ("UPDATE ledger SET amount = '100' WHERE id = 1", "DELETE FROM ledger"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            async with env.db.transaction() as tx:
                await tx.execute(sql)
    assert len(await ledger_rows(env.db)) == 4
    assert await env.ledger.balance(USER, USD) == usd("10")


# --- ledger operations ----------------------------------------------------------------------


async def test_balance_is_the_exact_sum_per_currency(env: Env) -> None:
    assert await env.ledger.balance(USER, USD) == usd("0")
    now = env.clock.now()
    assert await env.ledger.top_up(USER, usd("0.1"), "a", now)
    assert await env.ledger.top_up(USER, usd("0.2"), "b", now)
    assert await env.ledger.top_up(USER, usd("1234567890123456789.000000000000000001"), "c", now)
    assert await env.ledger.top_up(USER, Money(Decimal("7"), "EUR"), "d", now)
    assert await env.ledger.balance(USER, USD) == usd("1234567890123456789.300000000000000001")
    assert await env.ledger.balance(USER, "EUR") == Money(Decimal("7"), "EUR")
    assert await env.ledger.balance(OTHER, USD) == usd("0")


async def test_top_up_is_credited_once_per_reference(env: Env) -> None:
    now = env.clock.now()
    assert await env.ledger.top_up(USER, usd("5"), "charge-1", now)
    assert not await env.ledger.top_up(USER, usd("5"), "charge-1", now)
    assert not await env.ledger.top_up(OTHER, usd("9"), "charge-1", now)  # logged, not credited
    results = await asyncio.gather(
        *(env.ledger.top_up(USER, usd("2"), "charge-2", now) for _ in range(10))
    )
    assert sorted(results) == [False] * 9 + [True]
    assert await env.ledger.balance(USER, USD) == usd("7")
    assert await env.ledger.balance(OTHER, USD) == usd("0")
    with pytest.raises(ValueError, match="reference"):
        await env.ledger.top_up(USER, usd("1"), "", now)
    with pytest.raises(UnknownUser):
        await env.ledger.top_up(777, usd("1"), "charge-3", now)


async def test_hold_takes_money_only_when_covered(env: Env) -> None:
    now = env.clock.now()
    assert await env.ledger.hold(USER, usd("0.01"), now) is None
    assert await env.ledger.top_up(USER, usd("1.50"), "c", now)
    assert await env.ledger.hold(USER, usd("1.51"), now) is None
    first = await env.ledger.hold(USER, usd("1"), now)
    assert first is not None
    assert await env.ledger.balance(USER, USD) == usd("0.50")
    assert await env.ledger.hold(USER, usd("0.50"), now) is not None  # exactly the balance
    assert await env.ledger.balance(USER, USD) == usd("0")
    assert await env.ledger.hold(USER, usd("0.01"), now) is None
    assert await env.ledger.hold(USER, Money(Decimal("1"), "EUR"), now) is None
    for bad in ("0", "-1"):
        with pytest.raises(ValueError, match="positive"):
            await env.ledger.hold(USER, usd(bad), now)
    entry = await env.ledger.get(first)
    assert entry is not None
    assert (entry.kind, entry.amount, entry.created_at) == (LedgerKind.HOLD, usd("-1"), now)


async def test_a_hold_is_settled_once_either_way(env: Env) -> None:
    now = env.clock.now()
    assert await env.ledger.top_up(USER, usd("10"), "c", now)
    captured = await env.ledger.hold(USER, usd("4"), now)
    released = await env.ledger.hold(USER, usd("3"), now)
    assert captured is not None and released is not None
    order_id = await env.order()
    assert await env.ledger.capture(captured, order_id, now)
    assert not await env.ledger.capture(captured, order_id, now)
    assert not await env.ledger.release(captured, now)
    assert await env.ledger.release(released, now)
    assert not await env.ledger.release(released, now)
    assert not await env.ledger.capture(released, await env.order(), now)
    assert await env.ledger.balance(USER, USD) == usd("6")
    assert await env.ledger.open_holds() == []


async def test_concurrent_capture_and_release_settle_a_hold_once(env: Env) -> None:
    now = env.clock.now()
    assert await env.ledger.top_up(USER, usd("10"), "c", now)
    hold_id = await env.ledger.hold(USER, usd("4"), now)
    assert hold_id is not None
    order_id = await env.order()
    attempts: list[Awaitable[bool]] = []
    for _ in range(5):
        attempts.append(env.ledger.release(hold_id, now))
        attempts.append(env.ledger.capture(hold_id, order_id, now))
    results = await asyncio.gather(*attempts)
    assert results.count(True) == 1
    kept = results.index(True) % 2 == 1  # the capture won
    assert await env.ledger.balance(USER, USD) == usd("6" if kept else "10")
    await assert_ledger_invariants(env.db)


async def test_capture_checks_the_hold_and_the_order(env: Env) -> None:
    now = env.clock.now()
    assert await env.ledger.top_up(USER, usd("10"), "c", now)
    hold_id = await env.ledger.hold(USER, usd("4"), now)
    assert hold_id is not None
    topup_id = hold_id - 1
    with pytest.raises(UnknownHold):
        await env.ledger.capture(topup_id, await env.order(), now)
    with pytest.raises(UnknownHold):
        await env.ledger.release(9999, now)
    with pytest.raises(UnknownOrder):
        await env.ledger.capture(hold_id, await env.order(OTHER), now)
    with pytest.raises(UnknownOrder):
        await env.ledger.capture(hold_id, 9999, now)
    assert [h.id for h in await env.ledger.open_holds(USER)] == [hold_id]
    assert await env.ledger.open_holds(OTHER) == []


async def test_refund_gives_back_a_captured_order_exactly_once(env: Env) -> None:
    now = env.clock.now()
    assert await env.ledger.top_up(USER, usd("10"), "c", now)
    uncaptured = await env.order()
    assert await env.ledger.refund(uncaptured, now) is None
    hold_id = await env.ledger.hold(USER, usd("2.35"), now)
    assert hold_id is not None
    assert await env.ledger.refund(uncaptured, now) is None  # held, not yet captured
    order_id = await env.order()
    assert await env.ledger.capture(hold_id, order_id, now)
    assert await env.ledger.balance(USER, USD) == usd("7.65")
    results = await asyncio.gather(*(env.ledger.refund(order_id, now) for _ in range(10)))
    assert [r for r in results if r is not None] == [usd("2.35")]
    assert await env.ledger.refund(order_id, now) is None
    assert await env.ledger.balance(USER, USD) == usd("10")
    released = await env.ledger.hold(USER, usd("1"), now)
    assert released is not None and await env.ledger.release(released, now)
    assert await env.ledger.refund(order_id, now) is None
    assert await env.ledger.balance(USER, USD) == usd("10")


async def test_admin_adjustments_record_who_and_never_overdraw(env: Env) -> None:
    now = env.clock.now()
    assert await env.ledger.adjust(USER, usd("5"), ADMIN, "goodwill", now)
    assert not await env.ledger.adjust(USER, usd("-5.01"), ADMIN, "too much", now)
    assert await env.ledger.adjust(USER, usd("-5"), ADMIN, "clawback", now)
    assert await env.ledger.balance(USER, USD) == usd("0")
    with pytest.raises(ValueError, match="non-zero"):
        await env.ledger.adjust(USER, usd("0"), ADMIN, "nothing", now)
    latest, first = await env.ledger.entries(USER, limit=5)
    assert (latest.kind, latest.amount, latest.actor, latest.reason) == (
        LedgerKind.ADJUST,
        usd("-5"),
        ADMIN,
        "clawback",
    )
    assert (first.amount, first.reason) == (usd("5"), "goodwill")
    assert len(await env.ledger.entries(USER, limit=1)) == 1


async def test_concurrent_holds_never_overdraw_one_connection(env: Env) -> None:
    now = env.clock.now()
    assert await env.ledger.top_up(USER, usd("10"), "c", now)
    results = await asyncio.gather(*(env.ledger.hold(USER, usd("1"), now) for _ in range(40)))
    assert sum(r is not None for r in results) == 10
    assert await env.ledger.balance(USER, USD) == usd("0")
    await assert_ledger_invariants(env.db)


async def test_concurrent_holds_never_overdraw_across_two_connections(
    env: Env, db_path: Path
) -> None:
    now = env.clock.now()
    assert await env.ledger.top_up(USER, usd("10"), "c", now)
    async with await Database.open(db_path) as second:
        repos = (env.ledger, LedgerRepo(second))
        results = await asyncio.gather(
            *(repos[i % 2].hold(USER, usd("1"), now) for i in range(40))
        )
    assert sum(r is not None for r in results) == 10
    assert await env.ledger.balance(USER, USD) == usd("0")
    await assert_ledger_invariants(env.db)


# --- the service ----------------------------------------------------------------------------


async def test_purchase_flow_through_the_service(env: Env) -> None:
    wallet = env.wallet
    assert await wallet.top_up_stars(USER, usd("3"), "tg-charge-1")
    assert not await wallet.top_up_stars(USER, usd("3"), "tg-charge-1")
    price = wallet.price_with_markup(usd("1.00"), Decimal("15"))
    assert price == usd("1.15")
    hold = await wallet.hold(USER, price)
    assert hold is not None and hold.amount == price and hold.user_id == USER
    env.clock.advance(seconds=5)
    assert await wallet.capture(hold, await env.order())
    failed = await wallet.hold(USER, price)
    assert failed is not None
    assert await wallet.release(failed)
    assert await wallet.balance(USER) == usd("1.85")
    assert await wallet.hold(USER, usd("1.86")) is None
    history = await wallet.history(USER)
    assert [(e.kind, e.amount) for e in history] == [
        (LedgerKind.RELEASE, usd("1.15")),
        (LedgerKind.HOLD, usd("-1.15")),
        (LedgerKind.CAPTURE, usd("0")),
        (LedgerKind.HOLD, usd("-1.15")),
        (LedgerKind.TOPUP, usd("3")),
    ]
    assert history[-1].ref == "stars:tg-charge-1"
    assert history[2].created_at == env.clock.now()
    assert history[3].created_at < env.clock.now()


async def test_service_refund_and_admin_credit_debit(env: Env) -> None:
    wallet = env.wallet
    assert await wallet.credit(USER, usd("2"), ADMIN, "welcome")
    hold = await wallet.hold(USER, usd("2"))
    assert hold is not None
    order_id = await env.order()
    assert await wallet.capture(hold, order_id)
    assert await wallet.refund(order_id) == usd("2")
    assert await wallet.refund(order_id) is None
    assert not await wallet.debit(USER, usd("2.01"), ADMIN, "too much")
    assert await wallet.debit(USER, usd("0.5"), ADMIN, "fee")
    assert await wallet.balance(USER) == usd("1.5")
    entry = (await wallet.history(USER, limit=1))[0]
    assert (entry.amount, entry.actor, entry.reason) == (usd("-0.5"), ADMIN, "fee")


async def test_service_refuses_wrong_currency_and_odd_amounts(env: Env) -> None:
    wallet = env.wallet
    eur = Money(Decimal("1"), "EUR")
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: wallet.hold(USER, eur),
        lambda: wallet.top_up_stars(USER, eur, "x"),
        lambda: wallet.credit(USER, eur, ADMIN, "r"),
        lambda: wallet.debit(USER, eur, ADMIN, "r"),
        lambda: wallet.capture(Hold(1, USER, eur), 1),
        lambda: wallet.release(Hold(1, USER, eur)),
        lambda: wallet.hold(USER, usd("0.001")),  # below a cent
        lambda: wallet.hold(USER, usd("0")),
        lambda: wallet.credit(USER, usd("-1"), ADMIN, "r"),
        lambda: wallet.top_up_stars(USER, usd("1"), ""),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            await call()
    with pytest.raises(ValueError, match="EUR"):
        wallet.price_with_markup(eur, Decimal("10"))
    assert await ledger_rows(env.db) == []


@pytest.mark.parametrize(
    ("price", "percent", "expected"),
    [
        (usd("1.00"), "10", usd("1.10")),
        (usd("0.333"), "0", usd("0.34")),
        (usd("1.001"), "0", usd("1.01")),
        (usd("0.01"), "1", usd("0.02")),
        (usd("2"), "12.5", usd("2.25")),
        (usd("0"), "50", usd("0.00")),
        (Money(Decimal("100"), "JPY"), "0.5", Money(Decimal("101"), "JPY")),
        (Money(Decimal("1.0001"), "BHD"), "0", Money(Decimal("1.001"), "BHD")),
    ],
)
def test_markup_rounds_up_to_the_minor_unit(price: Money, percent: str, expected: Money) -> None:
    result = price_with_markup(price, Decimal(percent))
    assert result == expected
    assert result.amount.as_tuple().exponent == expected.amount.as_tuple().exponent


def test_markup_refuses_negative_inputs() -> None:
    with pytest.raises(ValueError, match="markup"):
        price_with_markup(usd("1"), Decimal("-1"))
    with pytest.raises(ValueError, match="price"):
        price_with_markup(usd("-1"), Decimal("1"))


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    cents=st.integers(min_value=0, max_value=10**12),
    scale=st.integers(min_value=0, max_value=6),
    percent=st.decimals(min_value=0, max_value=500, places=3),
    currency=st.sampled_from(["USD", "JPY", "BHD"]),
)
def test_markup_is_the_smallest_minor_unit_amount_not_below_the_exact_price(
    cents: int, scale: int, percent: Decimal, currency: str
) -> None:
    price = Money(Decimal(cents).scaleb(-scale), currency)
    exact = price.amount * (1 + percent / 100)
    result = price_with_markup(price, percent)
    minor = minor_unit(currency)
    assert result.currency == currency
    assert result.amount % minor == 0
    assert exact <= result.amount < exact + minor


# --- the property test ----------------------------------------------------------------------

USERS = st.sampled_from([USER, OTHER])
CENTS = st.integers(min_value=1, max_value=2000)
PICK = st.integers(min_value=0, max_value=10**6)
REF = st.integers(min_value=0, max_value=5)
WIDEN = st.booleans()
OPERATION = st.one_of(
    st.tuples(st.just("topup"), USERS, st.integers(min_value=1, max_value=5000), REF),
    st.tuples(st.just("hold"), USERS, CENTS),
    st.tuples(st.just("hold"), USERS, CENTS),
    st.tuples(st.just("capture"), PICK, WIDEN),
    st.tuples(st.just("capture"), PICK, WIDEN),
    st.tuples(st.just("release"), PICK, WIDEN),
    st.tuples(st.just("settle-race"), PICK, WIDEN),
    st.tuples(st.just("refund"), PICK, WIDEN),
    st.tuples(st.just("refund-race"), PICK, WIDEN),
    st.tuples(st.just("credit"), USERS, CENTS),
    st.tuples(st.just("debit"), USERS, CENTS),
)
BATCHES = st.lists(st.lists(OPERATION, min_size=1, max_size=10), min_size=2, max_size=8)


@dataclass
class Model:
    """What the ledger should say, kept apart from the code under test."""

    balance: dict[int, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    holds: list[Hold] = field(default_factory=list)
    settled: dict[int, str] = field(default_factory=dict)  # hold id -> capture/release
    orders: dict[int, Hold | None] = field(default_factory=dict)  # order id -> captured hold
    refunded: set[int] = field(default_factory=set)
    refs: set[str] = field(default_factory=set)


def cents(value: int) -> Money:
    return usd(str(Decimal(value) / 100))


async def run_operation(env: Env, operation: tuple[Any, ...]) -> tuple[Any, ...]:
    """Run one operation; return what the checks need (the targets are fixed before the batch)."""
    wallet = env.wallet
    match operation:
        case ("topup", user, amount, ref):
            return (
                "topup",
                user,
                amount,
                f"pay-{ref}",
                await wallet.top_up_stars(user, cents(amount), f"pay-{ref}"),
            )
        case ("hold", user, amount):
            return ("hold", user, amount, await wallet.hold(user, cents(amount)))
        case ("credit", user, amount):
            return ("credit", user, amount, await wallet.credit(user, cents(amount), ADMIN, "p"))
        case ("debit", user, amount):
            return ("debit", user, amount, await wallet.debit(user, cents(amount), ADMIN, "p"))
        case ("capture", hold):
            order_id = await env.order(hold.user_id)
            return ("capture", hold, order_id, await wallet.capture(hold, order_id))
        case ("release", hold):
            return ("release", hold, await wallet.release(hold))
        case ("refund", order_id):
            return ("refund", order_id, await wallet.refund(order_id))
    raise AssertionError(f"unknown operation {operation!r}")


def resolve(model: Model, operation: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Turn a pick into an existing hold or order (nothing if there is none yet).

    A pick prefers an open hold or a captured order (``widen`` picks among all). A
    ``settle-race`` is a capture and two releases of one hold, a ``refund-race`` three
    refunds of one order, all in the same batch.
    """
    kind = operation[0]
    if kind not in ("capture", "release", "settle-race", "refund", "refund-race"):
        return [operation]
    _, pick, widen = operation
    if kind in ("capture", "release", "settle-race"):
        holds = [h for h in model.holds if h.id not in model.settled]
        holds = model.holds if widen or not holds else holds
        if not holds:
            return []
        hold = holds[pick % len(holds)]
        if kind == "settle-race":
            race = [("capture", hold), ("release", hold), ("release", hold)]
            return race[pick % 3 :] + race[: pick % 3]  # who asks first varies
        return [(kind, hold)]
    orders = sorted(o for o, hold in model.orders.items() if hold is not None)
    orders = sorted(model.orders) if widen or not orders else orders
    if not orders:
        return []
    return [("refund", orders[pick % len(orders)])] * (3 if kind == "refund-race" else 1)


def check_batch(model: Model, results: list[tuple[Any, ...]]) -> None:
    """Check each result against the model, then apply it to the model."""
    inflow: dict[int, Decimal] = defaultdict(Decimal)
    failed: list[tuple[int, Decimal]] = []  # (user, amount) of holds and debits refused
    credited_refs: dict[str, int] = defaultdict(int)
    settlements: dict[int, int] = defaultdict(int)
    refunds: dict[int, int] = defaultdict(int)
    for result in results:
        match result:
            case ("topup", user, amount, ref, ok):
                if ok:
                    credited_refs[ref] += 1
                    model.balance[user] += Decimal(amount) / 100
                    inflow[user] += Decimal(amount) / 100
            case ("credit", user, amount, ok):
                assert ok
                model.balance[user] += Decimal(amount) / 100
                inflow[user] += Decimal(amount) / 100
            case ("hold", user, amount, hold):
                if hold is None:
                    failed.append((user, Decimal(amount) / 100))
                else:
                    assert hold.amount == cents(amount) and hold.user_id == user
                    model.holds.append(hold)
                    model.balance[user] -= hold.amount.amount
            case ("debit", user, amount, ok):
                if ok:
                    model.balance[user] -= Decimal(amount) / 100
                else:
                    failed.append((user, Decimal(amount) / 100))
            case ("capture", hold, order_id, ok):
                model.orders[order_id] = None
                if ok:
                    settlements[hold.id] += 1
                    assert hold.id not in model.settled
                    model.settled[hold.id] = "capture"
                    model.orders[order_id] = hold
            case ("release", hold, ok):
                if ok:
                    settlements[hold.id] += 1
                    assert hold.id not in model.settled
                    model.settled[hold.id] = "release"
                    model.balance[hold.user_id] += hold.amount.amount
                    inflow[hold.user_id] += hold.amount.amount
            case ("refund", order_id, refund):
                captured = model.orders[order_id]
                if refund is not None:
                    refunds[order_id] += 1
                    assert captured is not None and order_id not in model.refunded
                    assert refund == captured.amount
                    model.refunded.add(order_id)
                    model.balance[captured.user_id] += refund.amount
                    inflow[captured.user_id] += refund.amount
    # Exactly once: each contested target was won by exactly one operation of the batch.
    for result in results:
        match result:
            case ("topup", _, _, ref, _):
                assert credited_refs[ref] == (0 if ref in model.refs else 1)
            case ("capture", hold, _, _) | ("release", hold, _):
                assert hold.id in model.settled and settlements[hold.id] <= 1
            case ("refund", order_id, _):
                assert refunds[order_id] <= 1
                captured = model.orders[order_id]
                if captured is not None:
                    assert order_id in model.refunded
    model.refs.update(credited_refs)
    targets = [(r[0], r[1].id) for r in results if r[0] in ("capture", "release")]
    targets += [(r[0], r[1]) for r in results if r[0] == "refund"]
    for kind, target in set(targets):
        if targets.count((kind, target)) > 1:
            event(f"{kind}s of one target in one batch")
    if any(r[0] == "refund" and r[2] is not None for r in results):
        event("a refund paid")
    if failed:
        event("a hold or debit refused")
    # A refusal happened at a moment when the balance was short: the balance then was at
    # least the final one minus whatever came in during the batch.
    for user, amount in failed:
        assert amount > model.balance[user] - inflow[user]


@settings(
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(start=st.integers(min_value=0, max_value=10_000), batches=BATCHES)
async def test_ledger_invariants_under_concurrent_operations(
    start: int, batches: list[list[tuple[Any, ...]]]
) -> None:
    clock = FakeClock()
    env = await open_env(":memory:", clock)
    model = Model()
    try:
        opening = [("credit", user, start) for user in (USER, OTHER)] if start else []
        for batch in [opening, *batches]:
            operations = [op for pick in batch for op in resolve(model, pick)]
            results = list(await asyncio.gather(*(run_operation(env, op) for op in operations)))
            check_batch(model, results)
            clock.advance(seconds=1)
            for user in (USER, OTHER):
                balance = await env.wallet.balance(user)
                assert balance.amount == model.balance[user]
                assert balance.amount >= 0
            open_holds = {h.id for h in model.holds if h.id not in model.settled}
            assert {h.id for h in await env.ledger.open_holds()} == open_holds
            await assert_ledger_invariants(env.db)
        rows = await ledger_rows(env.db)
        for user in (USER, OTHER):
            total = exact_sum([Decimal(r["amount"]) for r in rows if r["user_id"] == user])
            assert total == model.balance[user]
    finally:
        await env.db.close()
