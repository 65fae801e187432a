"""The offers step: from the tap on a country to the offers message, cold and cached.

Run ``python -m benchmarks.offers`` (50 taps of each kind, under a minute) or
``python -m benchmarks.offers --quick`` (5 of each, for the tests). It prints figures next to
the goals of issue #12 and asserts none of them.

The bot is wired as in production (``bot.app.create_app``) in this process, with the Bot API
faked in-process (``tests.fakes.telegram``); the four provider emulators run in a process of
their own (``python -m tests.emulators.control``), each answering every request after
``--latency-ms`` (100 ms by default), so none of their work is in the bot's times. A user walks
/start -> Buy -> a service -> types a country -> taps it; the time is real
(``time.perf_counter``) from feeding that tap to the moment the fake Bot API applied the last
edit of that message made before the handler returned (the handler first shows a "looking for
offers" text, then edits the same message into the list).

* cold: the offer cache for the pair is emptied before the tap, so every provider is asked;
  the provider catalogs stay cached, as for any user after the first one;
* cached: the same pair again within the cache time (the bot's clock is a FakeClock that is
  never moved), so no provider is asked.

One provider round trip is measured the same way, through the bot's own HTTP client: a GET to
each emulator (which adds the same latency). Goals: cold tap p95 <= 1.5 x that round trip
(median); at most 2 requests to each provider per cold tap (the most any tap made).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from aiogram import Bot
from aiogram.methods import EditMessageText, TelegramMethod
from aiogram.types import InlineKeyboardButton, Message

from benchmarks.harness import PROVIDERS, Emulators, goal_line, percentile
from bot.app import App, create_app
from bot.callbacks import PickCountry
from bot.config import Settings
from bot.services.offers import OfferService
from tests.emulators.base import FakeClock
from tests.fakes.telegram import TOKEN, BotClient, FakeBotApi

SERVICE_BUTTON = "Telegram"
COUNTRY_QUERY = "united"
COUNTRY_BUTTON = "United States"
USER = 1001
QUICK_RUNS = 5
ROUND_TRIPS = 10  # per provider
HEADER = f"{'scenario':<8} {'runs':>5} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}"
GOALS = "Goals (issue #12):"
REQUESTS_GOAL = 2  # per provider per cold tap
LATENCY_GOAL = 1.5  # times one provider round trip

MakeRequest = Callable[[Bot, TelegramMethod[Any], int | None], Awaitable[Any]]


@dataclass
class Series:
    """Timings of one scenario, in seconds, and provider requests per tap."""

    name: str
    to_offers: list[float] = field(default_factory=list)  # tap -> offers edit applied
    to_return: list[float] = field(default_factory=list)  # tap -> handler returned
    requests: list[dict[str, int]] = field(default_factory=list)


class EditTimes:
    """When each ``editMessageText`` answered, read from a wrapper around the fake Bot API."""

    def __init__(self, api: FakeBotApi) -> None:
        self.times: list[float] = []
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
        if isinstance(method, EditMessageText):
            self.times.append(time.perf_counter())
        return result


async def request_counts(emulators: Emulators) -> dict[str, int]:
    return {name: len(log) for name, log in (await emulators.requests()).items()}


def country_button(message: Message) -> InlineKeyboardButton:
    markup = message.reply_markup
    buttons = [b for row in markup.inline_keyboard for b in row] if markup else []
    found = [b for b in buttons if COUNTRY_BUTTON in b.text and b.callback_data]
    if len(found) != 1:
        texts = [b.text for b in found]
        raise RuntimeError(f"expected one {COUNTRY_BUTTON!r} button, got {texts}")
    return found[0]


async def to_country_list(user: BotClient) -> InlineKeyboardButton:
    """From the offers screen back to a country list filtered by typing; the country button."""
    await user.click(user.last_message(), "« Back")
    await user.send(COUNTRY_QUERY)
    return country_button(user.last_message())


async def tap(
    emulators: Emulators,
    user: BotClient,
    button: InlineKeyboardButton,
    edits: EditTimes,
    into: Series,
) -> None:
    """Tap the country button; record the times and check the offers message is on screen."""
    data = cast(str, button.callback_data)
    message = user.last_message()
    before, edits_before = await request_counts(emulators), len(edits.times)
    start = time.perf_counter()
    await user.click_data(message, data)
    returned = time.perf_counter()
    after = await request_counts(emulators)
    new_edits = edits.times[edits_before:]
    shown = user.last_message()
    if not new_edits or shown.message_id != message.message_id:
        raise RuntimeError(f"expected the offers in the tapped message, got {len(new_edits)}")
    if (shown.text or "").startswith("⏳") or not shown.reply_markup:
        raise RuntimeError(f"the offers list is not on screen: {shown.text!r}")
    into.to_offers.append(new_edits[-1] - start)
    into.to_return.append(returned - start)
    into.requests.append({name: after[name] - before[name] for name in PROVIDERS})


async def round_trip(app: App, emulators: Emulators, times: int) -> float:
    """The median time of one GET to each emulator, through the bot's own HTTP client."""
    bases = [value for name, value in emulators.env.items() if name.endswith("_BASE_URL")]
    seconds: list[float] = []
    for _ in range(times):
        for base in bases:
            start = time.perf_counter()
            await app.http.get(f"{base}/")
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def row(series: Series) -> str:
    values = series.to_offers
    return (
        f"{series.name:<8} {len(values):>5} {ms(statistics.median(values)):>10}"
        f" {ms(percentile(values, 95)):>8} {ms(max(values)):>8}"
    )


async def make_app(emulators: Emulators, database: Path) -> tuple[App, FakeBotApi]:
    clock = FakeClock()
    api = FakeBotApi(clock=clock)
    values: dict[str, Any] = {name.lower(): value for name, value in emulators.env.items()}
    values.update(bot_token=TOKEN, database_path=database, admin_ids=frozenset({USER}))
    settings = Settings(_env_file=None, **values)
    return await create_app(settings, session=api, clock=clock), api


async def measure(runs: int, latency: float, database_dir: Path) -> None:
    async with Emulators() as emulators:
        app, api = await make_app(emulators, database_dir / "bot.sqlite3")
        try:
            await walk(app, api, emulators, runs, latency)
        finally:
            await app.close()


async def walk(app: App, api: FakeBotApi, emulators: Emulators, runs: int, latency: float) -> None:
    user = BotClient(app.dp, app.bot, user_id=USER, language_code="en")
    edits = EditTimes(api)
    offers = cast(OfferService, app.dp["offers"])
    # The walk, without added latency (it fills the catalog cache).
    await user.send("/start")
    await user.click(user.last_message(), "📲 Buy a number")
    await user.click(user.last_message(), lambda b: SERVICE_BUTTON in b.text)
    await user.send(COUNTRY_QUERY)
    button = country_button(user.last_message())
    pair = PickCountry.unpack(cast(str, button.callback_data))
    await emulators.set_latency(latency)
    trip = await round_trip(app, emulators, ROUND_TRIPS)

    cold, cached = Series("cold"), Series("cached")
    for i in range(runs + 1):  # the first pair of taps warms up and is not counted
        keep = i > 0
        offers.invalidate(pair.service, pair.country)
        await tap(emulators, user, button, edits, cold if keep else Series("warm-up"))
        button = await to_country_list(user)
        await tap(emulators, user, button, edits, cached if keep else Series("warm-up"))
        button = await to_country_list(user)
    if not all(sum(r.values()) for r in cold.requests):
        raise RuntimeError(f"a cold tap asked no provider: {cold.requests}")
    result = await offers.offers(pair.service, pair.country)  # cached: asks no one

    answered = sorted(
        {p.offer.provider for p in result.offers} - {f.provider for f in result.failures}
    )
    print(f"Pair: {pair.service}/{pair.country}; {len(result.offers)} offers from {answered};")
    print(f"      failed providers: {[f.provider for f in result.failures] or 'none'}.")
    print("One warm-up cold+cached pair of taps discarded; cold and cached taps alternate.")
    print()
    print(HEADER)
    print(row(cold))
    print(row(cached))
    print()
    cached_total = sum(sum(r.values()) for r in cached.requests) / runs
    print(
        "Provider requests per cold tap (mean, most): "
        + ", ".join(
            f"{name} {statistics.mean(r[name] for r in cold.requests):g}"
            f" (most {max(r[name] for r in cold.requests)})"
            for name in PROVIDERS
        )
        + f"; per cached tap: {cached_total:g}."
    )
    for series in (cold, cached):
        gaps = [r - o for r, o in zip(series.to_return, series.to_offers, strict=True)]
        print(
            f"Handler returned after the last edit ({series.name}): median"
            f" +{statistics.median(gaps) * 1000:.2f} ms, max +{max(gaps) * 1000:.2f} ms."
        )
    print(f"One provider round trip: median {ms(trip)} ms ({ROUND_TRIPS} GETs per emulator).")
    print()
    print(GOALS)
    p95 = percentile(cold.to_offers, 95)
    print(
        goal_line(
            "cold tap to offers p95",
            f"{ms(p95)} ms",
            f"<= {LATENCY_GOAL:g} x one round trip = {ms(LATENCY_GOAL * trip)} ms",
            p95 <= LATENCY_GOAL * trip,
        )
    )
    for name in PROVIDERS:
        most = max(r[name] for r in cold.requests)
        print(
            goal_line(
                f"{name} requests per cold tap",
                f"{most} at most",
                f"<= {REQUESTS_GOAL}",
                most <= REQUESTS_GOAL,
            )
        )


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.offers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--runs", type=int, default=50, help="taps per scenario (default 50)")
    group.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} taps per scenario")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=100.0,
        help="added to every provider request by each emulator (default 100)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = QUICK_RUNS
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    latency = args.latency_ms / 1000
    print(
        f"Offers step benchmark: Python {platform.python_version()}"
        f" ({platform.python_implementation()}) on {platform.platform()}"
    )
    print(
        "Measured: real time from feeding the tap on a country button until the fake Bot API\n"
        "  has applied the last edit of that message. The bot runs in this process; the four\n"
        "  emulated providers run in another, each adding"
        f" {args.latency_ms:g} ms to every request. Bot API faked\n  in-process, no latency."
        " cold = offers cache emptied for the pair before the tap (provider\n  catalogs stay"
        " cached); cached = the same pair again within the cache time."
    )
    with tempfile.TemporaryDirectory(prefix="bench-offers-") as tmp:
        asyncio.run(measure(args.runs, latency, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
