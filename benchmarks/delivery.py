"""SMS delivery under load: from an SMS arriving at a provider to the bot's sendMessage.

Runs the whole bot (``tests.stack.running_stack``) against the four provider emulators over real
HTTP on 127.0.0.1, with the Bot API faked in-process. ``--orders`` active orders (1,000 by
default) are bought first, a quarter at each provider: Get-SMS and SMS-BUS activations, BEE-SMS
7-day and SMS.online 4-hour rentals. Then every emulator answers each request after
``--latency-ms`` (100 ms by default) and the watcher polls in real time: a round
(:meth:`Watcher.tick`), then a pause of ``--interval`` seconds, as ``Watcher.run`` does (the
stack gives the app a sleep that does not wait, so the rounds are driven here). Meanwhile
``--sms`` SMS, each with its own code, are injected into distinct orders at random times
(seeded) over ``--window`` seconds. The bot's clock is a FakeClock that is never moved, so no
order expires; the provider timeout is the bot's default, not the test stack's 2 s.

The delay of an SMS is real time (``time.perf_counter``) from its injection to the moment the
fake Bot API answered the sendMessage that carries its code. Every injected code must be sent
exactly once, else the run fails. Also printed: provider requests per second, the process CPU
time and peak RSS over the measured window (first round to the last), round durations.

Default polling settings: ``--interval 2 --concurrency 8 --rate 20``. A round then needs at
least 250 / 20 = 12.5 s, about what one CPython process can poll 1,000 orders in when it also
runs the four emulators. Higher rates or concurrency make rounds slower, not faster, here; the
bot's own defaults (5 s, 8, 5/s) make a round last 50 s. Pass them to compare.

Run ``python -m benchmarks.delivery [--quick] [--orders N --sms N --window S ...]``; it prints
figures and asserts no times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import platform
import random
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.methods import SendMessage, TelegramMethod
from aiogram.types import Chat

from bot.config import Settings
from bot.providers.base import Capability, OrderKind
from bot.services.offers import OfferService
from storage.models import StoredOrder
from storage.orders import OrdersRepo
from storage.users import UsersRepo
from tests.fakes.telegram import FakeBotApi
from tests.stack import Stack, running_stack

QUICK_ORDERS, QUICK_SMS, QUICK_WINDOW = 20, 12, 5.0
FIRST_USER = 10_000
MAX_WAIT = 600.0  # seconds, for any one wait (a safety net: rounds bound the waits)
PARALLEL_BUYS = 10  # purchases in flight per provider during the set-up
SEED = 20260101
CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
HEADER = (
    f"{'provider':<10} {'orders':>6} {'sms':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
    f" {'req/s':>7}"
)

MakeRequest = Callable[[Bot, TelegramMethod[Any], int | None], Awaitable[Any]]


@dataclass(frozen=True)
class Plan:
    """What is bought at one provider."""

    provider: str
    service: str
    country: str
    hours: int | None  # None: an activation
    label: str


PLANS = (
    Plan("getsms", "tg", "RU", None, "activations"),
    Plan("smsbus", "tg", "RU", None, "activations"),
    Plan("beesms", "tg", "US", 24 * 7, "7-day rentals"),
    Plan("smsonline", "tg", "US", 4, "4-hour rentals"),  # the one rent getRentPrices prices
)


@dataclass
class Injection:
    order: StoredOrder
    code: str
    offset: float  # seconds after the start of the window
    at: float = 0.0  # perf_counter when injected


@dataclass
class Round:
    start: float
    seconds: float
    polled: int
    failed: int


class Deliveries:
    """When each code went out in a sendMessage, read from a wrapper around the fake Bot API."""

    def __init__(self, api: FakeBotApi, codes: set[str]) -> None:
        self.codes = codes
        self.sent: dict[str, list[float]] = {}
        self.others: list[str] = []  # sendMessage texts that carry none of the codes
        self.all_in = asyncio.Event()
        self._inner: MakeRequest = api.make_request
        # Instrumenting the fake (not the bot): the bot's calls go through it unchanged.
        setattr(api, "make_request", self._timed)  # noqa: B010 - mypy forbids method assignment

    async def _timed(
        self,
        bot: Bot,
        method: TelegramMethod[Any],
        timeout: int | None = None,  # noqa: ASYNC109 - the signature of BaseSession
    ) -> Any:
        result = await self._inner(bot, method, timeout)
        if isinstance(method, SendMessage):
            now = time.perf_counter()
            found = {c for c in CODE.findall(method.text) if c in self.codes}
            for code in found:
                self.sent.setdefault(code, []).append(now)
            if not found:
                self.others.append(method.text)
            if len(self.sent) == len(self.codes):
                self.all_in.set()
        return result


def percentile(values: Sequence[float], n: int) -> float:
    """The n-th percentile (inclusive method); the only value of a one-value sample."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[n - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def row(name: str, orders: int, delays: Sequence[float], per_second: float) -> str:
    if not delays:
        return f"{name:<10} {orders:>6} {0:>5} {'-':>8} {'-':>8} {'-':>8} {per_second:>7.1f}"
    return (
        f"{name:<10} {orders:>6} {len(delays):>5} {ms(percentile(delays, 50)):>8}"
        f" {ms(percentile(delays, 95)):>8} {ms(max(delays)):>8} {per_second:>7.1f}"
    )


def provider_requests(stack: Stack) -> dict[str, int]:
    return {name: len(server.requests) for name, server in stack.suite.servers.items()}


def stock_up(stack: Stack, count: int) -> None:
    """Enough numbers and money at every emulator for ``count`` purchases each."""
    suite = stack.suite
    suite.getsms.set_stock("tg", "ru", price="0.50", count=count + 10)
    suite.getsms.set_balance(10_000)
    suite.smsbus.set_price(1, 1, "0.25", count + 10)  # Russia, Telegram
    suite.smsbus.waiting_limit = count + 10  # open requests allowed at once (50104 past it)
    suite.smsbus.set_balance("10000")
    suite.beesms.set_stock("tg", "us", 7, count + 10)
    suite.beesms.set_balance(10**9)
    suite.smsonline.set_stock("tg", 187, count + 10)  # United States
    suite.smsonline.set_balance("100000")


async def buy_many(stack: Stack, plan: Plan, users: Sequence[int]) -> list[StoredOrder]:
    """One order per user at ``plan.provider``: the adapter's purchase call, then the same store
    as the purchase service (whose re-check of every provider's offers would make the set-up of
    1,000 orders take minutes), ``PARALLEL_BUYS`` at a time."""
    offers: OfferService = stack.app.dp["offers"]
    order_repo: OrdersRepo = stack.app.dp["order_repo"]
    provider = stack.app.providers[plan.provider]
    kind = OrderKind.RENTAL if plan.hours else OrderKind.ACTIVATION
    result = await offers.offers(plan.service, plan.country, fresh=True)
    priced = next(
        p
        for p in result.offers
        if p.offer.provider == plan.provider
        and p.offer.kind is kind
        and (p.offer.duration_hours or None) == plan.hours
    )
    ceiling = priced.offer.price if Capability.MAX_PRICE in provider.capabilities else None
    gate = asyncio.Semaphore(PARALLEL_BUYS)

    async def buy(user_id: int) -> StoredOrder:
        async with gate:
            order = await provider.buy(priced.offer, max_price=ceiling)
            return await order_repo.create(
                user_id, order, priced.display_price.quantize(), stack.clock.now()
            )

    return list(await asyncio.gather(*(buy(user_id) for user_id in users)))


async def create_orders(stack: Stack, count: int) -> dict[str, list[StoredOrder]]:
    """``count`` users, each with one active order; the providers are served concurrently."""
    users: UsersRepo = stack.app.dp["users"]
    ids = list(range(FIRST_USER, FIRST_USER + count))
    for user_id in ids:
        await users.ensure(user_id, None, stack.clock.now())
        stack.api.add_chat(Chat(id=user_id, type="private", first_name=f"User{user_id}"))
    stock_up(stack, count)
    shares = [ids[i :: len(PLANS)] for i in range(len(PLANS))]
    bought = await asyncio.gather(
        *(buy_many(stack, plan, share) for plan, share in zip(PLANS, shares, strict=True))
    )
    return {plan.provider: orders for plan, orders in zip(PLANS, bought, strict=True)}


def plan_injections(
    orders: dict[str, list[StoredOrder]], sms: int, window: float, rng: random.Random
) -> list[Injection]:
    """``sms`` distinct orders, taken from the providers in turn, each with a code and a time."""
    shuffled = [rng.sample(group, len(group)) for group in orders.values()]
    turns = itertools.chain.from_iterable(itertools.zip_longest(*shuffled))
    chosen = [order for order in turns if order is not None][:sms]
    codes = rng.sample(range(100_000, 1_000_000), sms)
    injections = [
        Injection(order, str(code), rng.uniform(0, window))
        for order, code in zip(chosen, codes, strict=True)
    ]
    return sorted(injections, key=lambda i: i.offset)


async def inject(stack: Stack, injection: Injection) -> None:
    suite, order, code = stack.suite, injection.order, injection.code
    remote_id = order.provider_order_id
    injection.at = time.perf_counter()
    if order.provider == "getsms":
        suite.getsms.inject_sms(remote_id, f"Your Telegram code {code}", code=code)
    elif order.provider == "smsbus":
        suite.smsbus.inject_code(remote_id, code)
    elif order.provider == "beesms":
        suite.beesms.inject_sms(remote_id, f"Telegram code: {code}. Do not share it.")
    elif order.provider == "smsonline":
        await suite.smsonline.inject_sms(remote_id, f"Telegram code {code}")
    else:
        raise RuntimeError(f"no injection for {order.provider}")


async def inject_all(stack: Stack, injections: Sequence[Injection], started: float) -> None:
    for injection in injections:
        await asyncio.sleep(max(0.0, started + injection.offset - time.perf_counter()))
        await inject(stack, injection)


async def watch(stack: Stack, stop: asyncio.Event, rounds: list[Round]) -> None:
    """Rounds as ``Watcher.run`` runs them (a round, then the whole interval), in real time."""
    watcher = stack.app.watcher
    while not stop.is_set():
        start = time.perf_counter()
        report = await watcher.tick()
        seconds = time.perf_counter() - start
        rounds.append(Round(start, seconds, report.polled, report.failed))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), watcher.settings.interval)


def rounds_after(rounds: Sequence[Round], moment: float) -> int:
    """How many rounds started after ``moment`` and are over."""
    return sum(r.start > moment for r in rounds)


async def until(condition: Callable[[], bool], watching: asyncio.Task[None], what: str) -> None:
    """Wait (at most ``MAX_WAIT``) for ``condition``; a failed round loop fails the run."""
    deadline = time.perf_counter() + MAX_WAIT
    while not condition():
        if watching.done():
            watching.result()  # raises what stopped the rounds
            raise RuntimeError(f"the rounds stopped while waiting for {what}")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out after {MAX_WAIT:g} s waiting for {what}")
        await asyncio.sleep(0.05)


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def measure(args: argparse.Namespace, database_dir: Path) -> None:
    overrides = {
        "poll_interval": args.interval,
        "poll_concurrency": args.concurrency,
        "poll_rate": args.rate,
        # The test stack's 2 s would turn a busy event loop into "provider down" backoffs.
        "provider_timeout": Settings.model_fields["provider_timeout"].default,
    }
    async with running_stack(database_dir, **overrides) as stack:
        setup_started = time.perf_counter()
        orders = await create_orders(stack, args.orders)
        setup = time.perf_counter() - setup_started
        order_repo: OrdersRepo = stack.app.dp["order_repo"]
        active_before = len(await order_repo.list_active())
        if active_before != args.orders:
            raise RuntimeError(f"{active_before} active orders, expected {args.orders}")

        injections = plan_injections(orders, args.sms, args.window, random.Random(SEED))
        deliveries = Deliveries(stack.api, {i.code for i in injections})
        stack.suite.set_latency(args.latency_ms / 1000)
        rss_before = max_rss_mib()
        stop = asyncio.Event()
        rounds: list[Round] = []
        requests_before = provider_requests(stack)
        cpu_before, started = time.process_time(), time.perf_counter()

        watching = asyncio.create_task(watch(stack, stop, rounds))
        try:
            await inject_all(stack, injections, started)
            # A code injected before a round starts is sent when that round ends; one spare.
            injected = time.perf_counter()
            await until(
                lambda: deliveries.all_in.is_set() or rounds_after(rounds, injected) >= 2,
                watching,
                "the codes",
            )
            if not deliveries.all_in.is_set():
                missing = len(injections) - len(deliveries.sent)
                raise RuntimeError(
                    f"{missing} of {len(injections)} codes were not sent within two whole rounds"
                    f" after the last injection; rounds: {rounds}"
                )
            # One more whole round: a code pushed twice would show up there.
            all_in = time.perf_counter()
            await until(lambda: rounds_after(rounds, all_in) >= 1, watching, "a last round")
        finally:
            stop.set()
            await asyncio.wait_for(watching, timeout=MAX_WAIT)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        requests_after = provider_requests(stack)
        active_after = len(await order_repo.list_active())

    twice = {code: len(times) for code, times in deliveries.sent.items() if len(times) > 1}
    if twice:
        raise RuntimeError(f"{len(twice)} codes were sent more than once: {twice}")
    if deliveries.others:
        raise RuntimeError(f"unexpected messages: {deliveries.others[:3]}")
    delays: dict[str, list[float]] = {plan.provider: [] for plan in PLANS}
    for injection in injections:
        delays[injection.order.provider].append(deliveries.sent[injection.code][0] - injection.at)
    per_second = {
        name: (requests_after[name] - requests_before[name]) / wall for name in requests_after
    }

    settings: Settings = stack.app.settings
    busiest = max(len(o) for o in orders.values())
    print(
        f"Settings: a round, then a pause of {settings.poll_interval:g} s; per provider at most"
        f" {settings.poll_concurrency} polls at once and {settings.poll_rate:g} polls/s\n"
        f"  (so a round takes at least {busiest / settings.poll_rate:.1f} s); provider timeout"
        f" {settings.provider_timeout:g} s."
    )
    print(
        "Orders: "
        + ", ".join(f"{len(orders[p.provider])} {p.provider} {p.label}" for p in PLANS)
        + f";\n  bought in {setup:.1f} s (no latency) before measuring."
    )
    print(
        f"SMS: {len(injections)} injected into distinct orders at random times over"
        f" {args.window:g} s (seed {SEED});\n  {len(deliveries.sent)} sent, each exactly once;"
        " no other messages."
    )
    print()
    print(HEADER)
    for plan in PLANS:
        name = plan.provider
        print(row(name, len(orders[name]), delays[name], per_second[name]))
    everything = [d for values in delays.values() for d in values]
    print(row("all", args.orders, everything, sum(per_second.values())))
    print()
    durations = [r.seconds for r in rounds]
    print(
        f"Rounds: {len(rounds)}; duration median {statistics.median(durations):.2f} s,"
        f" max {max(durations):.2f} s; polls per round median"
        f" {statistics.median(r.polled for r in rounds):g}; failed polls"
        f" {sum(r.failed for r in rounds)}.\n  Active orders {active_before} -> {active_after}"
        " (an SMS-BUS request ends with its code)."
    )
    print(
        f"Window: {wall:.1f} s (first round to the last). Process CPU {cpu:.1f} s"
        f" ({cpu / wall:.0%} of one core).\n  Peak RSS {max_rss_mib():.0f} MiB"
        f" ({rss_before:.0f} MiB when the window began)."
    )


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.delivery", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_ORDERS} orders, {QUICK_SMS} SMS over {QUICK_WINDOW:g} s",
    )
    parser.add_argument("--orders", type=int, default=1000, help="active orders (default 1000)")
    parser.add_argument("--sms", type=int, default=300, help="SMS injected (default 300)")
    parser.add_argument(
        "--window", type=float, default=30.0, help="seconds SMS are injected over (default 30)"
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=100.0,
        help="added to every provider request by each emulator (default 100)",
    )
    parser.add_argument(
        "--interval", type=float, default=2.0, help="POLL_INTERVAL, seconds (default 2)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="POLL_CONCURRENCY (default 8)")
    parser.add_argument(
        "--rate", type=float, default=20.0, help="POLL_RATE, polls/s per provider (default 20)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.orders, args.sms, args.window = QUICK_ORDERS, QUICK_SMS, QUICK_WINDOW
    if args.orders < len(PLANS):
        parser.error(f"--orders must be at least {len(PLANS)}")
    if not 1 <= args.sms <= args.orders:
        parser.error("--sms must be between 1 and --orders")
    if args.window <= 0 or args.latency_ms < 0:
        parser.error("--window must be positive and --latency-ms not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    defaults = Settings.model_fields
    print(
        f"Delivery benchmark: Python {platform.python_version()}"
        f" ({platform.python_implementation()}) on {platform.platform()}"
    )
    print(
        "Measured: real time from injecting an SMS at a provider emulator until the fake Bot API\n"
        "  answered the sendMessage with its code. Four emulated providers over HTTP on"
        f" 127.0.0.1, each\n  adding {args.latency_ms:g} ms to every request; they share the"
        " bot's process and event loop, so their\n  CPU time, memory and scheduling are in"
        " every figure here. Bot API faked in-process, no latency.\n"
        f"  The bot's own defaults are POLL_INTERVAL={defaults['poll_interval'].default},"
        f" POLL_CONCURRENCY={defaults['poll_concurrency'].default},"
        f" POLL_RATE={defaults['poll_rate'].default}."
    )
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        asyncio.run(measure(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
