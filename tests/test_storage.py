"""The storage layer against a real SQLite file: round trips, ownership, exactly-once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from bot.money import Money
from bot.providers.base import Order, OrderKind, RemoteStatus, Sms
from storage import (
    Database,
    DuplicateOrder,
    NestedTransactionError,
    OrderStatus,
    Storage,
    StoredOrder,
    UnknownUser,
)
from tests.emulators.base import FakeClock

USER = 1001
OTHER = 2002
MSK = timezone(timedelta(hours=3))


@pytest.fixture
def db_path(db_location: str) -> str:
    return db_location


@pytest.fixture
async def store(db_path: str, clock: FakeClock) -> AsyncIterator[Storage]:
    storage = await Storage.open(db_path)
    try:
        await storage.users.ensure(USER, "en", clock.now())
        await storage.users.ensure(OTHER, None, clock.now())
        yield storage
    finally:
        await storage.close()


def make_order(order_id: str = "A-1", **changes: object) -> Order:
    fields: dict[str, object] = {
        "provider": "getsms",
        "order_id": order_id,
        "kind": OrderKind.ACTIVATION,
        "phone": "12025550123",
        "service": "tg",
        "country": "US",
        "price": Money(Decimal("0.1234567890123456789"), "USD"),
        "expires_at": datetime(2026, 1, 1, 15, 20, 0, 123456, tzinfo=MSK),
        "meta": {"ref": "variant-7", "note": 'тест "quoted" ;', "empty": ""},
    }
    fields.update(changes)
    return Order(**fields)  # type: ignore[arg-type]


async def add_order(
    store: Storage, clock: FakeClock, order_id: str = "A-1", user: int = USER, **changes: object
) -> StoredOrder:
    return await store.orders.create(user, make_order(order_id, **changes), None, clock.now())


def sms(sms_id: str, code: str | None = "12345") -> Sms:
    return Sms(
        id=sms_id,
        text=f"Your code {code}",
        code=code,
        sender="Telegram",
        received_at=datetime(2026, 1, 1, 12, 1, tzinfo=UTC),
    )


# --- orders -----------------------------------------------------------------------------


async def test_order_round_trip_is_exact(store: Storage, clock: FakeClock, db_path: Path) -> None:
    order = make_order()
    shown = Money(Decimal("12.3400"), "RUB")
    stored = await store.orders.create(USER, order, shown, clock.now())

    assert stored.status is OrderStatus.ACTIVE
    assert stored.price == order.price
    assert stored.price is not None and str(stored.price.amount) == "0.1234567890123456789"
    assert stored.display_price is not None and str(stored.display_price.amount) == "12.3400"
    assert stored.expires_at == order.expires_at
    assert stored.expires_at is not None and stored.expires_at.tzinfo is UTC
    assert stored.created_at == stored.updated_at == clock.now()
    assert store.orders.to_order(stored) == replace(order, bought_at=clock.now())

    typeof = "typeof" if store.db.dialect == "sqlite" else "pg_typeof"
    row = await store.db.fetchone(
        f"SELECT CAST({typeof}(price) AS TEXT), price, display_price, expires_at, meta "  # noqa: S608
        "FROM orders WHERE id = ?",
        (stored.id,),
    )
    assert row is not None
    assert tuple(row)[:4] == (
        "text",
        "0.1234567890123456789",
        "12.3400",
        "2026-01-01T12:20:00.123456+00:00",
    )

    await store.close()
    async with await Storage.open(db_path) as reopened:
        again = await reopened.orders.get(stored.id)
        assert again == stored
        assert again is not None and again.to_order() == replace(order, bought_at=clock.now())


async def test_rental_without_price_or_expiry_round_trips(
    store: Storage, clock: FakeClock
) -> None:
    order = make_order(
        "R-9",
        kind=OrderKind.RENTAL,
        price=None,
        expires_at=None,
        auto_renew=True,
        duration_hours=72,
        meta={},
    )
    stored = await store.orders.create(USER, order, None, clock.now())
    assert (stored.price, stored.display_price, stored.expires_at) == (None, None, None)
    assert stored.to_order() == replace(order, bought_at=clock.now())
    assert await store.orders.get_by_provider("getsms", "R-9") == stored
    assert await store.orders.get_by_provider("smsbus", "R-9") is None


async def test_create_refuses_duplicates_unknown_users_and_naive_times(
    store: Storage, clock: FakeClock
) -> None:
    await add_order(store, clock, "A-1")
    with pytest.raises(DuplicateOrder):
        await add_order(store, clock, "A-1")
    with pytest.raises(UnknownUser):
        await add_order(store, clock, "A-2", user=999)
    with pytest.raises(ValueError, match="naive"):
        await store.orders.create(USER, make_order("A-3"), None, datetime(2026, 1, 1))
    # the same provider order id at another provider is a different order
    await add_order(store, clock, "A-1", provider="smsbus")
    assert await store.orders.count_for_user(USER) == 2
    assert await store.orders.count_for_user(999) == 0


async def test_get_for_user_checks_ownership(store: Storage, clock: FakeClock) -> None:
    mine = await add_order(store, clock)
    assert await store.orders.get_for_user(mine.id, USER) == mine
    assert await store.orders.get_for_user(mine.id, OTHER) is None
    assert await store.orders.get_for_user(mine.id + 100, USER) is None


async def test_set_status_moves_out_of_active_only_once(store: Storage, clock: FakeClock) -> None:
    order = await add_order(store, clock)
    assert await store.orders.set_remote_status(order.id, RemoteStatus.RECEIVED, clock.now())
    clock.advance(minutes=5)
    finished_at = clock.now()
    assert await store.orders.set_status(order.id, OrderStatus.FINISHED, None, finished_at)
    clock.advance(minutes=1)
    assert not await store.orders.set_status(
        order.id, OrderStatus.CANCELLED, RemoteStatus.CANCELLED, clock.now()
    )
    assert not await store.orders.set_remote_status(order.id, RemoteStatus.EXPIRED, clock.now())

    stored = await store.orders.get(order.id)
    assert stored is not None
    assert stored.status is OrderStatus.FINISHED
    assert stored.remote_status is RemoteStatus.RECEIVED  # None kept the last seen one
    assert stored.updated_at == finished_at
    assert not stored.is_active
    assert await store.orders.list_active() == []
    with pytest.raises(ValueError, match="active"):
        await store.orders.set_status(order.id, OrderStatus.ACTIVE, None, clock.now())


async def test_concurrent_status_changes_have_one_winner(store: Storage, clock: FakeClock) -> None:
    order = await add_order(store, clock)
    finals = [OrderStatus.FINISHED, OrderStatus.CANCELLED, OrderStatus.EXPIRED] * 10
    results = await asyncio.gather(
        *(store.orders.set_status(order.id, s, None, clock.now()) for s in finals)
    )
    assert results.count(True) == 1
    stored = await store.orders.get(order.id)
    assert stored is not None and stored.status is finals[results.index(True)]


async def test_update_expiry_renews_and_rearms_reminders(store: Storage, clock: FakeClock) -> None:
    order = await add_order(store, clock, "R-1", kind=OrderKind.RENTAL, duration_hours=24)
    assert await store.reminders.mark_sent(order.id, 3600, clock.now())
    new_expiry = datetime(2026, 1, 3, 12, tzinfo=UTC)
    clock.advance(hours=1)
    assert await store.orders.update_expiry(
        order.id, new_expiry, now=clock.now(), provider_order_id="R-2"
    )
    renewed = await store.orders.get(order.id)
    assert renewed is not None
    assert (renewed.expires_at, renewed.provider_order_id) == (new_expiry, "R-2")
    assert renewed.updated_at == clock.now()
    assert renewed.to_order().order_id == "R-2"
    assert not await store.reminders.was_sent(order.id, 3600)
    assert await store.reminders.mark_sent(order.id, 3600, clock.now())

    assert await store.orders.update_expiry(order.id, None, now=clock.now())
    kept = await store.orders.get(order.id)
    assert kept is not None and (kept.expires_at, kept.provider_order_id) == (None, "R-2")
    assert not await store.orders.update_expiry(order.id + 1, new_expiry, now=clock.now())

    other = await add_order(store, clock, "R-3")
    with pytest.raises(DuplicateOrder):
        await store.orders.update_expiry(
            other.id, new_expiry, now=clock.now(), provider_order_id="R-2"
        )


async def test_set_auto_renew(store: Storage, clock: FakeClock) -> None:
    order = await add_order(store, clock)
    assert await store.orders.set_auto_renew(order.id, True, clock.now())
    stored = await store.orders.get(order.id)
    assert stored is not None and stored.auto_renew and stored.to_order().auto_renew
    assert not await store.orders.set_auto_renew(order.id + 1, True, clock.now())


async def test_list_for_user_paginates_newest_first(store: Storage, clock: FakeClock) -> None:
    ids = []
    for n in range(25):
        order = await add_order(store, clock, f"P-{n}")
        ids.append(order.id)
        if n % 5 == 0:
            await store.orders.set_status(order.id, OrderStatus.CANCELLED, None, clock.now())
    await add_order(store, clock, "X-1", user=OTHER)

    pages = [
        [o.id for o in await store.orders.list_for_user(USER, limit=10, offset=offset)]
        for offset in (0, 10, 20, 30)
    ]
    assert [len(p) for p in pages] == [10, 10, 5, 0]
    assert [i for page in pages for i in page] == ids[::-1]

    closed = {ids[n] for n in range(0, 25, 5)}
    active = await store.orders.list_for_user(USER, active=True, limit=100)
    history = await store.orders.list_for_user(USER, active=False, limit=100)
    assert [o.id for o in active] == [i for i in ids[::-1] if i not in closed]
    assert [o.id for o in history] == [i for i in ids[::-1] if i in closed]
    assert [o.id for o in await store.orders.list_for_user(USER, active=True, limit=3)] == [
        o.id for o in active[:3]
    ]
    counts = [await store.orders.count_for_user(USER, active=a) for a in (None, True, False)]
    assert counts == [25, 20, 5]
    assert len(await store.orders.list_active()) == 21  # the other user's order too
    with pytest.raises(ValueError, match="negative"):
        await store.orders.list_for_user(USER, offset=-1)


# --- messages ---------------------------------------------------------------------------


async def test_add_new_returns_each_message_once_even_after_reopening(
    store: Storage, clock: FakeClock, db_path: Path
) -> None:
    order = await add_order(store, clock)
    other = await add_order(store, clock, "A-2")

    first = await store.messages.add_new(order.id, [sms("s1"), sms("s2", None)], clock.now())
    assert [m.sms_id for m in first] == ["s1", "s2"]
    assert first[0].to_sms() == sms("s1")
    assert first[1].to_sms() == sms("s2", None)
    clock.advance(seconds=10)
    again = await store.messages.add_new(
        order.id, [sms("s1"), sms("s2"), sms("s3"), sms("s3")], clock.now()
    )
    assert [m.sms_id for m in again] == ["s3"]
    assert again[0].stored_at == clock.now()
    assert [m.sms_id for m in await store.messages.add_new(other.id, [sms("s1")], clock.now())]
    assert await store.messages.add_new(order.id, [], clock.now()) == []

    assert await store.messages.mark_delivered(first[0].id, clock.now())
    assert not await store.messages.mark_delivered(first[0].id, clock.now())
    assert [m.sms_id for m in await store.messages.undelivered(order.id)] == ["s2", "s3"]
    assert len(await store.messages.undelivered()) == 3

    await store.close()
    async with await Storage.open(db_path) as reopened:
        replay = [sms("s1"), sms("s2"), sms("s3")]
        assert await reopened.messages.add_new(order.id, replay, clock.now()) == []
        stored = await reopened.messages.list_for_order(order.id)
        assert [m.sms_id for m in stored] == ["s1", "s2", "s3"]
        assert stored[0].delivered_at == clock.now()
        assert [m.sms_id for m in await reopened.messages.undelivered(order.id)] == ["s2", "s3"]


async def test_concurrent_polls_store_each_message_exactly_once(
    store: Storage, clock: FakeClock
) -> None:
    order = await add_order(store, clock)
    batch = [sms(f"s{n}") for n in range(5)]
    results = await asyncio.gather(
        *(store.messages.add_new(order.id, batch, clock.now()) for _ in range(20))
    )
    returned = sorted(m.sms_id for result in results for m in result)
    assert returned == [f"s{n}" for n in range(5)]
    assert len(await store.messages.list_for_order(order.id)) == 5


# --- reminders and users ----------------------------------------------------------------


async def test_reminder_is_marked_sent_only_once(store: Storage, clock: FakeClock) -> None:
    order = await add_order(store, clock)
    assert not await store.reminders.was_sent(order.id, 3600)
    results = await asyncio.gather(
        *(store.reminders.mark_sent(order.id, 3600, clock.now()) for _ in range(10))
    )
    assert results.count(True) == 1
    assert await store.reminders.was_sent(order.id, 3600)
    assert not await store.reminders.was_sent(order.id, 600)
    assert await store.reminders.mark_sent(order.id, 600, clock.now())
    assert not await store.reminders.mark_sent(order.id, 600, clock.now())


async def test_users_ensure_language_and_blocking(store: Storage, clock: FakeClock) -> None:
    first_seen = clock.now()
    clock.advance(days=1)
    user = await store.users.ensure(USER, "ru", clock.now())
    assert (user.language, user.first_seen, user.blocked_bot) == ("en", first_seen, False)
    assert (await store.users.ensure(OTHER, "de", clock.now())).language is None

    new = await store.users.ensure(3003, "de", clock.now())
    assert (new.id, new.language, new.first_seen) == (3003, "de", clock.now())
    assert await store.users.set_language(3003, "ru")
    assert not await store.users.set_language(4004, "ru")
    assert await store.users.get(4004) is None

    assert await store.users.mark_blocked_bot(3003)
    blocked = await store.users.get(3003)
    assert blocked is not None and (blocked.language, blocked.blocked_bot) == ("ru", True)
    unblocked = await store.users.ensure(3003, None, clock.now())
    assert (unblocked.language, unblocked.blocked_bot) == ("ru", False)
    assert not await store.users.mark_blocked_bot(4004)


# --- transactions -----------------------------------------------------------------------


@pytest.fixture
async def counter_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = await Database.open(tmp_path / "counter.sqlite3")
    try:
        async with db.transaction() as tx:
            await tx.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
            await tx.execute("INSERT INTO counter VALUES (0)")
        yield db
    finally:
        await db.close()


async def _count(db: Database) -> int:
    row = await db.fetchone("SELECT n FROM counter")
    assert row is not None
    return int(row[0])


async def test_concurrent_transactions_never_interleave(counter_db: Database) -> None:
    async def increment() -> None:
        async with counter_db.transaction() as tx:
            row = await tx.fetchone("SELECT n FROM counter")
            assert row is not None
            await asyncio.sleep(0)  # let every other coroutine try to get in
            await tx.execute("UPDATE counter SET n = ?", (row[0] + 1,))

    await asyncio.gather(*(increment() for _ in range(50)))
    assert await _count(counter_db) == 50


async def test_failed_transaction_rolls_back(counter_db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with counter_db.transaction() as tx:
            await tx.execute("UPDATE counter SET n = 7")
            raise RuntimeError("boom")
    assert await _count(counter_db) == 0
    async with counter_db.transaction() as tx:
        await tx.execute("UPDATE counter SET n = n + 1")
    assert await _count(counter_db) == 1


async def test_reads_wait_for_the_running_transaction(counter_db: Database) -> None:
    inside, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with counter_db.transaction() as tx:
            await tx.execute("UPDATE counter SET n = 5")
            inside.set()
            await release.wait()

    writing = asyncio.create_task(writer())
    try:
        await asyncio.wait_for(inside.wait(), 5)
        reading = asyncio.create_task(_count(counter_db))
        for _ in range(20):
            await asyncio.sleep(0)
        # without the lock it would already have read the uncommitted 5
        assert not reading.done()
    finally:
        release.set()
        await asyncio.wait_for(writing, 5)
    assert await asyncio.wait_for(reading, 5) == 5


async def test_cancelled_transaction_rolls_back_and_frees_the_lock(
    counter_db: Database,
) -> None:
    inside = asyncio.Event()

    async def stuck() -> None:
        async with counter_db.transaction() as tx:
            await tx.execute("UPDATE counter SET n = 9")
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(stuck())
    await asyncio.wait_for(inside.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.wait_for(_count(counter_db), 5) == 0


async def test_nested_use_fails_instead_of_deadlocking(counter_db: Database) -> None:
    async def nested() -> None:
        async with counter_db.transaction():
            await counter_db.fetchone("SELECT n FROM counter")

    with pytest.raises(NestedTransactionError):
        await asyncio.wait_for(nested(), 5)
    assert await asyncio.wait_for(_count(counter_db), 5) == 0


async def test_memory_storage_works(clock: FakeClock) -> None:
    async with await Storage.open(":memory:") as store:
        await store.users.ensure(USER, "en", clock.now())
        order = await add_order(store, clock)
        assert await store.orders.get_for_user(order.id, USER) == order


async def test_order_meta_must_be_strings(store: Storage, clock: FakeClock) -> None:
    with pytest.raises(TypeError, match="meta"):
        await add_order(store, clock, meta={"n": 1})
    order = await add_order(store, clock)
    async with store.db.transaction() as tx:
        await tx.execute("UPDATE orders SET meta = ? WHERE id = ?", ('{"n": 1}', order.id))
    with pytest.raises(ValueError, match="meta"):
        await store.orders.get(order.id)


async def test_users_search_ignores_case_on_either_database(
    store: Storage, clock: FakeClock
) -> None:
    await store.users.set_profile(USER, "Ronald McDonald", "BigMac")
    await store.users.set_profile(OTHER, "Иван Петров", None)
    for query in ("mcdonald", "MCDONALD", "bigmac", "@bIgMaC"):
        found, total = await store.users.page(query)
        assert ([u.id for u in found], total) == ([USER], 1), query
    for query in ("иван", "ИВАН", "иВаН"):
        found, _ = await store.users.page(query)
        assert [u.id for u in found] == [OTHER], query
