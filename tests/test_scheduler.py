"""Which orders the watcher asks, and how often: hot ones every round, cold ones in turn, the cap.

Rounds are run by hand (``tick``) on the shared fake clock; what was asked is counted at the
provider emulators (requests naming the order), never by mocking the bot's own functions.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiogram.methods import SendMessage

from bot.services.heat import Heat
from bot.services.scheduler import RateCap
from storage.models import OrderStatus, StoredOrder
from tests.emulators.base import EmulatorServer
from tests.stack import Stack, running_stack
from tests.test_delivery import bought, order_now


def asked(emulator: EmulatorServer, order: StoredOrder) -> int:
    """Requests to the emulator that name the order (its status or SMS reads)."""
    return sum(order.provider_order_id in r.query.values() for r in emulator.requests)


class Counts:
    """How many times each order was asked since the last ``take()``."""

    def __init__(self, emulator: EmulatorServer, *orders: StoredOrder) -> None:
        self.emulator = emulator
        self.orders = orders
        self.seen = [asked(emulator, o) for o in orders]

    def take(self) -> list[int]:
        now = [asked(self.emulator, o) for o in self.orders]
        delta = [b - a for a, b in zip(self.seen, now, strict=True)]
        self.seen = now
        return delta


async def test_hot_orders_every_round_cold_rentals_every_cold_interval(stack: Stack) -> None:
    user = stack.client()
    rental = await bought(stack, user, "getsms", "tg", "RU", hours=48)
    activation = await bought(stack, user, "getsms")
    counts = Counts(stack.suite.getsms, activation, rental)
    watcher = stack.app.watcher
    assert watcher.settings.cold_interval == 180.0  # the default

    for _ in range(2):  # both just bought: hot, asked every round
        await watcher.tick()
        assert counts.take() == [1, 1]

    stack.clock.advance(minutes=10)  # the purchase is 10 minutes old: the rental goes cold
    await watcher.tick()
    assert counts.take() == [1, 1]  # its cold turn had come (asked 10 minutes ago)
    for _ in range(3):
        stack.clock.advance(seconds=59)
        await watcher.tick()
        assert counts.take() == [1, 0]  # the activation still waits for its code
    stack.clock.advance(seconds=3)  # 180 s since the rental was asked
    await watcher.tick()
    assert counts.take() == [1, 1]

    # An SMS on the rental: found on its cold turn, and the rental is hot again for a while.
    # (The activation ended meanwhile: 15 minutes without a code.)
    stack.suite.getsms.inject_sms(rental.provider_order_id, "code 31313", code="31313")
    stack.clock.advance(seconds=180)
    user.reset()
    await watcher.tick()
    assert counts.take()[1] == 1
    assert any("31313" in c.text for c in user.calls(SendMessage))
    for _ in range(2):
        await watcher.tick()
        assert counts.take() == [0, 1]


async def test_a_user_looking_at_a_cold_rental_makes_it_hot(stack: Stack) -> None:
    user = stack.client()
    rental = await bought(stack, user, "getsms", "tg", "RU", hours=48)
    counts = Counts(stack.suite.getsms, rental)
    watcher = stack.app.watcher
    stack.clock.advance(minutes=11)
    await watcher.tick()
    await watcher.tick()
    assert counts.take() == [1]  # cold: one turn, then it waits
    await user.send("/numbers")
    listing = user.last_message()
    await user.click(listing, user.buttons(listing)[0])  # the user opens the rental's card
    assert counts.take() == [0]  # opening the card asks nothing itself
    for _ in range(3):
        await watcher.tick()
    assert counts.take() == [3]
    stack.clock.advance(minutes=10)  # the look is 10 minutes old
    await watcher.tick()
    await watcher.tick()
    assert counts.take() == [1]

    heat: Heat = stack.app.dp["heat"]  # a button on the card does the same
    await user.click(user.last_message(), "🔄 Check SMS")
    assert heat.touched_at(rental.id) == stack.clock.now()
    counts.take()
    await watcher.tick()
    await watcher.tick()
    assert counts.take() == [2]


async def test_hot_before_a_reminder_so_the_reminder_knows_the_rental(stack: Stack) -> None:
    user = stack.client()
    rental = await bought(stack, user, "getsms", "tg", "RU", hours=48)
    counts = Counts(stack.suite.getsms, rental)
    watcher = stack.app.watcher
    stack.clock.advance(hours=23, minutes=45)  # the 24 h reminder is 15 minutes away: cold
    await watcher.tick()
    await watcher.tick()
    assert counts.take() == [1]
    stack.clock.advance(minutes=6)  # 9 minutes before it: hot
    await watcher.tick()
    await watcher.tick()
    assert counts.take() == [2]


async def test_the_cap_binds_hot_orders_first_cold_ones_in_turn(tmp_path: Path) -> None:
    # A budget of 3 requests a round (POLL_RATE 10 x POLL_INTERVAL 0.3 s).
    async with running_stack(tmp_path, poll_rate=10, poll_interval=0.3) as stack:
        user = stack.client()
        rentals = [await bought(stack, user, "getsms", "tg", "RU", hours=48) for _ in range(3)]
        stack.clock.advance(minutes=11)  # the rentals are cold now
        activations = [await bought(stack, user, "getsms") for _ in range(2)]
        counts = Counts(stack.suite.getsms, *activations, *rentals)
        watcher = stack.app.watcher

        await watcher.tick()
        assert counts.take() == [1, 1, 1, 0, 0]  # both hot ones, then the oldest cold one
        await watcher.tick()
        assert counts.take() == [1, 1, 0, 1, 0]
        await watcher.tick()
        assert counts.take() == [1, 1, 0, 0, 1]
        await watcher.tick()
        assert counts.take() == [1, 1, 0, 0, 0]  # every cold one had its turn

        # More hot orders than the budget: all of them are asked (the rate limiter paces them)
        # and cold ones wait.
        more = [await bought(stack, user, "getsms") for _ in range(2)]
        counts = Counts(stack.suite.getsms, *activations, *more, *rentals)
        stack.clock.advance(seconds=180)
        await watcher.tick()
        assert counts.take() == [1, 1, 1, 1, 0, 0, 0]


async def test_a_round_running_late_leaves_its_cold_orders_to_the_next(tmp_path: Path) -> None:
    # One request at a time; the hot one is answered after 80% of the interval has gone by.
    async with running_stack(
        tmp_path, poll_rate=10, poll_interval=0.3, poll_concurrency=1
    ) as stack:
        user = stack.client()
        rentals = [await bought(stack, user, "getsms", "tg", "RU", hours=48) for _ in range(2)]
        stack.clock.advance(minutes=11)  # the rentals are cold now
        activation = await bought(stack, user, "getsms")
        counts = Counts(stack.suite.getsms, activation, *rentals)
        getsms, watcher = stack.suite.getsms, stack.app.watcher

        getsms.gate("getcode")
        tick = asyncio.create_task(watcher.tick())
        await asyncio.wait_for(getsms.gated_arrived.wait(), 10)
        stack.clock.advance(seconds=0.25)  # past 0.8 x 0.3 s
        getsms.open_gate()
        await tick
        assert counts.take() == [1, 0, 0]  # the cold ones were not asked so late

        await watcher.tick()
        assert counts.take() == [1, 1, 1]  # ... and are asked, first in line, in the next


async def test_check_sms_asks_the_provider_at_once(stack: Stack) -> None:
    user = stack.client()
    rental = await bought(stack, user, "getsms", "tg", "RU", hours=48)
    stack.clock.advance(minutes=11)
    await stack.app.watcher.tick()  # its cold turn: not asked again for 3 minutes
    counts = Counts(stack.suite.getsms, rental)
    stack.suite.getsms.inject_sms(rental.provider_order_id, "code 42424", code="42424")
    await user.send("/numbers")
    listing = user.last_message()
    await user.click(listing, user.buttons(listing)[0])
    await user.click(user.last_message(), "🔄 Check SMS")
    assert counts.take() == [1]
    assert "42424" in (user.last_message().text or "")


# --- BEE-SMS: one listing a round, SMS only where the count moved ---------------------------


async def test_beesms_one_listing_a_round_then_sms_only_where_the_count_moved(
    stack: Stack,
) -> None:
    bee = stack.suite.beesms
    bee.max_page_size = 2  # three rentals: a listing of two pages
    users = [stack.client(3001 + i) for i in range(3)]
    rentals = [await bought(stack, u, "beesms", "tg", "US", hours=24 * 7) for u in users]
    watcher = stack.app.watcher
    numbers, sms = bee.calls("numbers"), bee.calls("sms")

    report = await watcher.tick()
    assert bee.calls("numbers") - numbers == 2 and report.pages == 2 and report.listed == 3
    assert bee.calls("sms") == sms  # no count moved: no SMS read
    assert all(r.query.get("status") == "ACTIVE" for r in bee.requests[-2:])

    bee.inject_sms(rentals[1].provider_order_id, "Telegram code 515151")
    numbers, sms = bee.calls("numbers"), bee.calls("sms")
    for user in users:
        user.reset()
    await watcher.tick()
    assert bee.calls("numbers") - numbers == 2
    reads = [r.query.get("order_id") for r in bee.requests if r.path.endswith("/sms")][sms:]
    assert reads == [rentals[1].provider_order_id]  # one read, of that rental only
    assert [len(u.calls(SendMessage)) for u in users] == [0, 1, 0]
    assert "515151" in users[1].calls(SendMessage)[0].text

    sms = bee.calls("sms")
    await watcher.tick()
    assert bee.calls("sms") == sms  # read once per new count, not every round
    assert [len(u.calls(SendMessage)) for u in users] == [0, 1, 0]

    # Cold rentals: the listing waits for their turn too.
    stack.clock.advance(minutes=11)
    await watcher.tick()
    numbers = bee.calls("numbers")
    await watcher.tick()
    assert bee.calls("numbers") == numbers
    stack.clock.advance(seconds=180)
    await watcher.tick()
    assert bee.calls("numbers") - numbers == 2


async def test_beesms_a_rental_gone_from_the_listing_is_asked_on_its_own_and_closed(
    stack: Stack,
) -> None:
    bee = stack.suite.beesms
    user = stack.client()
    kept = await bought(stack, user, "beesms", "tg", "US", hours=24 * 7)
    gone = await bought(stack, stack.client(3002), "beesms", "tg", "US", hours=24 * 7)
    await stack.app.watcher.tick()
    bee.rental(gone.provider_order_id).cancelled = True  # cancelled on the provider's site
    report = await stack.app.watcher.tick()
    assert report.listed == 1 and report.ended == 1
    assert (await order_now(stack, gone)).status is OrderStatus.CANCELLED
    assert (await order_now(stack, kept)).status is OrderStatus.ACTIVE


async def test_beesms_listing_down_is_probed_with_one_page_and_recovers(stack: Stack) -> None:
    bee = stack.suite.beesms
    user = stack.client()
    rental = await bought(stack, user, "beesms", "tg", "US", hours=24 * 7)
    bee.fail("5xx", times=1000)
    await stack.app.watcher.tick()
    for _ in range(2):
        before = len(bee.requests)
        report = await stack.app.watcher.tick()
        assert report.skipped_providers == ["beesms"]
        assert len(bee.requests) - before == 2  # the first page, tried twice (a read)
    bee._faults.clear()
    bee.inject_sms(rental.provider_order_id, "Telegram code 626262")
    user.reset()
    report = await stack.app.watcher.tick()
    assert report.skipped_providers == [] and report.delivered == 1
    assert "626262" in user.calls(SendMessage)[0].text


# --- the rate cap ----------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [10.0, 2.5, 0.5])
async def test_the_rate_cap_holds_in_every_one_second_window(rate: float) -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:  # the fake time moves only by waiting
        now[0] += seconds

    cap = RateCap(rate, monotonic=lambda: now[0], sleep=sleep)
    starts: list[float] = []

    async def request() -> None:
        async with cap:
            starts.append(now[0])

    await asyncio.gather(*(request() for _ in range(40)))
    assert len(starts) == 40
    most = max(sum(s <= t < s + 1.0 for t in starts) for s in starts)
    assert most <= max(1, int(rate))  # never more than the cap in any second
    assert starts[-1] <= 40 / (rate / 2)  # ... and not far below it


@pytest.mark.parametrize("rate", [10.0, 2.5])
async def test_the_rate_cap_holds_at_the_provider_however_late_requests_arrive(
    rate: float,
) -> None:
    # The provider sees a request anywhere between its start and its answer: late sends (a
    # busy loop, a new connection) must not let more than the cap fall in one second there.
    now = [0.0]
    waiting: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(seconds: float) -> None:
        done = asyncio.get_running_loop().create_future()
        waiting.append((now[0] + seconds, done))
        await done

    async def clock() -> None:  # moves the fake time to the next wake-up once all are waiting
        while len(spans) < 40:
            for _ in range(5):
                await asyncio.sleep(0)
            if waiting:
                waiting.sort(key=lambda w: w[0])
                at, done = waiting.pop(0)
                now[0] = max(now[0], at)
                done.set_result(None)

    cap = RateCap(rate, monotonic=lambda: now[0], sleep=sleep)
    spans: list[tuple[float, float]] = []

    async def request(n: int) -> None:
        async with cap:
            start = now[0]
            await sleep(0.05 + 0.4 * (n % 3))  # leaves late and is answered later still
            spans.append((start, now[0]))

    await asyncio.gather(clock(), *(request(n) for n in range(40)))
    # Requests that may have arrived within [t, t + 1): started before t + 1, answered from t.
    most = max(sum(s < t + 1.0 and e >= t for s, e in spans) for _, t in spans)
    assert most <= max(1, int(rate))
    assert max(e for _, e in spans) <= 40 / (rate / 3)  # ... and not far below the cap
