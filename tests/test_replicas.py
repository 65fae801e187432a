"""Replicas on one database: each active order is leased by one watcher at a time, an SMS is
sent by the one replica that claims it, and a dead replica's orders move on within a lease.

The storage tests run on SQLite and on PostgreSQL (``db_location``); the watcher tests run two
apps (two "replicas", each with its own fake Bot API) on one database and one set of provider
emulators, on both databases too. The real-process version (two ``python -m bot`` behind their
webhooks, one SIGKILLed) is in ``tests/test_replica_processes.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from aiogram.methods import SendMessage

from bot.app import App, create_app
from bot.domain import Order, OrderKind, Sms
from bot.money import Money
from bot.providers.http import RetryPolicy
from bot.services.broadcast import BroadcastService, Delivery, SendOutcome
from bot.services.keep_trying import KeepTryingService
from bot.services.reconcile import Reconciler
from storage.broadcasts import Broadcast, BroadcastsRepo, Progress
from storage.db import Database
from storage.leases import LeasesRepo
from storage.messages import MessagesRepo
from storage.orders import OrdersRepo
from storage.users import UsersRepo
from tests.emulators.base import FakeClock
from tests.fakes.telegram import BotClient, FakeBotApi
from tests.stack import Stack, running_stack, stack_settings
from tests.test_delivery import bought
from tests.test_web import until

LEASE = timedelta(seconds=60)
USER = 1001


async def _orders(db: Database, clock: FakeClock, count: int) -> list[int]:
    await UsersRepo(db).ensure(USER, "en", clock.now())
    repo = OrdersRepo(db)
    ids = []
    for n in range(count):
        order = Order(
            "getsms", f"A-{n}", OrderKind.ACTIVATION, f"7900{n:07d}", "tg", "RU",
            Money(Decimal(10), "RUB"),
        )  # fmt: skip
        ids.append((await repo.create(USER, order, None, clock.now())).id)
    return ids


@asynccontextmanager
async def two_connections(location: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two replicas' own connections (pools) to one database."""
    first = await Database.open(location)
    second = await Database.open(location)
    try:
        yield first, second
    finally:
        await second.close()
        await first.close()


async def test_an_order_is_leased_by_one_replica_until_its_lease_runs_out(
    db_location: str, clock: FakeClock
) -> None:
    async with two_connections(db_location) as (db_a, db_b):
        ids = await _orders(db_a, clock, 3)
        a, b = OrdersRepo(db_a), OrdersRepo(db_b)
        assert [o.id for o in await a.lease_active("getsms", "a", clock.now(), LEASE)] == ids
        assert await b.lease_active("getsms", "b", clock.now(), LEASE) == []
        assert await a.lease_active("smsbus", "a", clock.now(), LEASE) == []  # per provider

        clock.advance(seconds=45)  # past half the lease: "a" renews it (until 45 + 60)
        assert len(await a.lease_active("getsms", "a", clock.now(), LEASE)) == 3
        clock.advance(seconds=30)  # 75 s: the first lease would have run out; the renewal holds
        assert await b.lease_active("getsms", "b", clock.now(), LEASE) == []

        # "a" dies (renews no more): "b" takes every order once the lease has run out.
        clock.advance(seconds=31)
        assert [o.id for o in await b.lease_active("getsms", "b", clock.now(), LEASE)] == ids
        assert await a.lease_active("getsms", "a", clock.now(), LEASE) == []

        # A replica that stops cleanly hands over at once.
        assert await b.release_leases("b") == 3
        assert len(await a.lease_active("getsms", "a", clock.now(), LEASE)) == 3


async def test_two_replicas_leasing_at_once_split_the_orders(
    db_location: str, clock: FakeClock
) -> None:
    async with two_connections(db_location) as (db_a, db_b):
        ids = await _orders(db_a, clock, 40)
        a, b = OrdersRepo(db_a), OrdersRepo(db_b)
        for _ in range(5):
            got_a, got_b = await asyncio.gather(
                a.lease_active("getsms", "a", clock.now(), LEASE),
                b.lease_active("getsms", "b", clock.now(), LEASE),
            )
            mine, theirs = {o.id for o in got_a}, {o.id for o in got_b}
            assert not mine & theirs  # never both
            assert mine | theirs == set(ids)  # and nobody's order is left out
            clock.advance(seconds=61)  # every lease runs out: they race again


async def test_an_sms_is_claimed_by_one_sender(db_location: str, clock: FakeClock) -> None:
    async with two_connections(db_location) as (db_a, db_b):
        [order_id] = await _orders(db_a, clock, 1)
        [message] = await MessagesRepo(db_a).add_new(
            order_id, [Sms("s1", "code 1", "1")], clock.now()
        )
        a, b = MessagesRepo(db_a), MessagesRepo(db_b)
        assert await a.claim(message.id, "a", clock.now(), LEASE)
        assert not await b.claim(message.id, "b", clock.now(), LEASE)
        assert await a.claim(message.id, "a", clock.now(), LEASE)  # its own, again
        await a.unclaim(message.id, "a")  # Telegram could not take it now
        assert await b.claim(message.id, "b", clock.now(), LEASE)
        clock.advance(seconds=61)  # "b" died mid-send: the claim runs out
        assert await a.claim(message.id, "a", clock.now(), LEASE)
        assert await a.mark_delivered(message.id, clock.now())
        assert not await b.claim(message.id, "b", clock.now() + LEASE * 2, LEASE)  # sent


# --- two watchers ------------------------------------------------------------------------


@asynccontextmanager
async def replica(
    stack: Stack, user: BotClient, name: str
) -> AsyncIterator[tuple[App, FakeBotApi]]:
    """A second app on the stack's database and emulators, with a fake Bot API of its own
    (where ``user``'s chat exists too: one Telegram behind both)."""
    api = FakeBotApi(clock=stack.clock)
    api.add_chat(user.chat)
    app = await create_app(
        stack_settings(
            stack.suite,
            stack.app.settings.database_path,
            database_url=stack.app.settings.database_url,
            replica_id=name,
            admin_ids=stack.app.settings.admin_ids,
        ),
        session=api,
        clock=stack.clock,
        retry=RetryPolicy(attempts=2, initial_delay=0.001, max_delay=0.01),
    )
    try:
        yield app, api
    finally:
        await app.close()


def sent_to(api: FakeBotApi, chat_id: int) -> list[str]:
    """The SMS pushes Telegram took from this replica for the chat."""
    return [
        str(call.params.get("text"))
        for call in api.calls(SendMessage)
        if call.error is None and call.chat_id == chat_id and "Code:" in str(call.params)
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
async def stack_a(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(
        tmp_path, postgres=request.param == "postgresql", replica_id="a"
    ) as stack:
        yield stack


async def test_each_sms_is_pushed_once_and_a_dead_replicas_orders_move_on(
    stack_a: Stack, tmp_path: Path
) -> None:
    stack = stack_a
    user = stack.client()
    order = await bought(stack, user, "getsms", "tg", "RU", hours=24)  # a rental: many SMS
    user.reset()
    await stack.app.watcher.tick()  # "a" leases the order (the first to ask)
    async with replica(stack, user, "b") as (app_b, api_b):
        stack.suite.getsms.inject_sms(order.provider_order_id, "Telegram code 11111", code="11111")
        reports = await asyncio.gather(stack.app.watcher.tick(), app_b.watcher.tick())
        await asyncio.gather(stack.app.watcher.tick(), app_b.watcher.tick())
        assert sum(r.delivered for r in reports) == 1
        pushed = sent_to(stack.api, user.chat.id) + sent_to(api_b, user.chat.id)
        assert len(pushed) == 1 and "11111" in pushed[0]
        already = len(sent_to(api_b, user.chat.id))  # "a" polled it; either may send it

        # Replica "a" dies: it polls and renews no more. "b" leaves the order alone while the
        # lease holds, then takes it and pushes the next SMS.
        asked = len(stack.suite.getsms.requests)
        stack.suite.getsms.inject_sms(order.provider_order_id, "Telegram code 22222", code="22222")
        await app_b.watcher.tick()
        assert len(sent_to(api_b, user.chat.id)) == already
        assert len(stack.suite.getsms.requests) == asked  # not polled by "b" yet
        stack.clock.advance(seconds=61)
        report = await app_b.watcher.tick()
        assert report.delivered == 1
        pushed = sent_to(stack.api, user.chat.id) + sent_to(api_b, user.chat.id)
        assert len(pushed) == 2 and "22222" in sent_to(api_b, user.chat.id)[-1]


async def test_an_sms_pushed_to_another_replica_is_sent_once(
    stack_a: Stack, tmp_path: Path
) -> None:
    """The webhook push lands on replica "b" while "a" leases the order: one message."""
    stack = stack_a
    user = stack.client()
    order = await bought(stack, user, "getsms")
    await stack.app.watcher.tick()  # "a" leases it
    user.reset()
    async with replica(stack, user, "b") as (app_b, api_b):
        sms = Sms("push-1", "Telegram code 33333", "33333")
        assert await app_b.watcher.receive("getsms", order.provider_order_id, sms)
        await app_b.watcher.outbox.drain()
        await asyncio.gather(stack.app.watcher.tick(), app_b.watcher.tick())
        total = sent_to(stack.api, user.chat.id) + sent_to(api_b, user.chat.id)
        assert sum("33333" in text for text in total) == 1


# --- broadcasts ----------------------------------------------------------------------------


def broadcaster(
    db: Database, clock: FakeClock, name: str, sent: list[tuple[str, int]]
) -> BroadcastService:
    async def send(user_id: int, text: str) -> SendOutcome:
        sent.append((name, user_id))
        await asyncio.sleep(0)  # let the other replica run in between
        return SendOutcome(Delivery.SENT)

    async def report(broadcast: Broadcast, progress: Progress, done: bool) -> None:
        return None

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    return BroadcastService(
        BroadcastsRepo(db), send, report, clock=clock, sleep=no_wait, replica=name, lease=LEASE
    )


async def test_a_broadcast_is_sent_by_one_replica_and_taken_over_when_it_dies(
    db_location: str, clock: FakeClock
) -> None:
    async with two_connections(db_location) as (db_a, db_b):
        users = UsersRepo(db_a)
        for user_id in range(1, 31):
            await users.ensure(user_id, "en", clock.now())
        repo = BroadcastsRepo(db_a)
        first = await repo.create(USER, "news", clock.now())
        assert await repo.start(first.id, USER, 1, clock.now())
        sent: list[tuple[str, int]] = []
        a, b = broadcaster(db_a, clock, "a", sent), broadcaster(db_b, clock, "b", sent)
        await asyncio.gather(a.run(first.id), b.run(first.id))
        assert sorted(user for _, user in sent) == list(range(1, 31))  # each user once
        assert len({replica for replica, _ in sent}) == 1  # by one replica: one rate

        # A second broadcast: "a" takes it and dies at once (holds it, sends nothing).
        second = await repo.create(USER, "more news", clock.now())
        assert await repo.start(second.id, USER, 2, clock.now())
        assert await repo.hold_sender(second.id, "a", clock.now(), LEASE)
        sent.clear()
        assert (await b.run(second.id)).pending == 30  # held by "a": "b" leaves it
        assert await b.resume() == [second.id]
        await b.join()
        assert sent == []
        clock.advance(seconds=61)
        assert await b.resume() == [second.id]
        await b.join()
        assert sorted(user for _, user in sent) == list(range(1, 31))
        assert {replica for replica, _ in sent} == {"b"}


async def test_a_named_lease_has_one_holder_at_a_time(db_location: str, clock: FakeClock) -> None:
    async with two_connections(db_location) as (db_a, db_b):
        a, b = LeasesRepo(db_a), LeasesRepo(db_b)
        first = await asyncio.gather(
            a.hold("reconciler", "a", clock.now(), LEASE),
            b.hold("reconciler", "b", clock.now(), LEASE),
        )
        assert sorted(first) == [False, True]  # a race has one winner
        winner, loser = (a, b) if first[0] else (b, a)
        won, lost = ("a", "b") if first[0] else ("b", "a")
        clock.advance(seconds=59)
        assert await winner.hold("reconciler", won, clock.now(), LEASE)  # renewed to 119
        clock.advance(seconds=30)
        assert not await loser.hold("reconciler", lost, clock.now(), LEASE)
        clock.advance(seconds=31)  # the winner died at 59: its renewal ran out at 119
        assert await loser.hold("reconciler", lost, clock.now(), LEASE)
        await loser.release("reconciler", lost)  # stops cleanly: taken at once
        assert await winner.hold("reconciler", won, clock.now(), LEASE)


async def _run_a_round_then_stop(stack: Stack, service: Reconciler | KeepTryingService) -> None:
    """The service's loop, stopped once a round ran (each ends with a fake, instant sleep):
    a replica stopping lets go of its lease."""
    rounds = len(stack.slept)
    running = asyncio.create_task(service.run())
    await until(lambda: len(stack.slept) > rounds)
    service.stop()
    await running


async def test_rounds_one_replica_at_a_time_do_are_done_by_the_holder(stack_a: Stack) -> None:
    """The reconciler, keep trying, stock alerts and the daily summary: a round each on both
    replicas; "a" (first) holds every lease and "b" skips; "a" stopping hands them over."""
    stack = stack_a
    user = stack.client()
    await user.send("/start")
    async with replica(stack, user, "b") as (app_b, _):
        for app in (stack.app, app_b):
            await app.reconciler.tick()
            await app.keep_trying.tick()
            await app.stock_alerts.tick()
            await app.daily_summary.tick()
        rows = await stack.app.db.fetchall("SELECT name, owner FROM leases ORDER BY name")
        assert [(r["name"], r["owner"]) for r in rows] == [
            ("daily_summary", "a"),
            ("keep_trying", "a"),
            ("reconciler", "a"),
            ("stock_alerts", "a"),
        ]
        for service in (stack.app.reconciler, stack.app.keep_trying):
            await _run_a_round_then_stop(stack, service)
        await app_b.reconciler.tick()
        await app_b.keep_trying.tick()
        rows = await stack.app.db.fetchall("SELECT name, owner FROM leases ORDER BY name")
        assert {r["name"]: r["owner"] for r in rows} == {
            "daily_summary": "a",
            "keep_trying": "b",
            "reconciler": "b",
            "stock_alerts": "a",
        }
