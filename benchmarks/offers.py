"""The offers step: from the tap on a country to the offers message, cold and cached.

Runs the whole bot (``tests.stack.running_stack``) against the four provider emulators over real
HTTP on 127.0.0.1, each answering every request after ``--latency-ms`` (100 ms by default), with
the Bot API faked in-process. A user walks /start -> Buy -> a service -> types a country ->
taps it; the time is real (``time.perf_counter``) from feeding that tap to the moment the fake
Bot API has applied the edit that shows the offers list (the handler first shows a "looking for
offers" text, then edits the same message into the list).

* cold: the offer cache for the pair is emptied before the tap, so every provider is asked;
  the provider catalogs stay cached, as for any user after the first one;
* cached: the same pair again within the cache time (the bot's clock is a FakeClock that is
  never moved), so no provider is asked.

Run ``python -m benchmarks.offers [--runs N | --quick]``; it prints figures and asserts no times.
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

from bot.callbacks import PickCountry
from bot.services.offers import OfferService
from tests.fakes.telegram import BotClient, FakeBotApi
from tests.stack import Stack, running_stack

SERVICE_BUTTON = "Telegram"
COUNTRY_QUERY = "united"
COUNTRY_BUTTON = "United States"
QUICK_RUNS = 5
HEADER = f"{'scenario':<8} {'runs':>5} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}"

MakeRequest = Callable[[Bot, TelegramMethod[Any], int | None], Awaitable[Any]]


@dataclass
class Series:
    """Timings of one scenario, in seconds, and provider requests per tap."""

    name: str
    to_offers: list[float] = field(default_factory=list)  # tap -> offers edit applied
    to_return: list[float] = field(default_factory=list)  # tap -> handler returned
    requests: list[int] = field(default_factory=list)


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


def provider_requests(stack: Stack) -> dict[str, int]:
    return {name: len(server.requests) for name, server in stack.suite.servers.items()}


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
    stack: Stack, user: BotClient, button: InlineKeyboardButton, edits: EditTimes, into: Series
) -> None:
    """Tap the country button; record the times and check the offers message is on screen."""
    data = cast(str, button.callback_data)
    message = user.last_message()
    before, edits_before = provider_requests(stack), len(edits.times)
    start = time.perf_counter()
    await user.click_data(message, data)
    returned = time.perf_counter()
    after = provider_requests(stack)
    new_edits = edits.times[edits_before:]
    shown = user.last_message()
    if len(new_edits) != 2 or shown.message_id != message.message_id:
        raise RuntimeError(f"expected the loading edit and the offers edit, got {len(new_edits)}")
    if (shown.text or "").startswith("⏳") or not shown.reply_markup:
        raise RuntimeError(f"the offers list is not on screen: {shown.text!r}")
    into.to_offers.append(new_edits[-1] - start)
    into.to_return.append(returned - start)
    into.requests.append(sum(after.values()) - sum(before.values()))


def p95(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def row(series: Series) -> str:
    values = series.to_offers
    return (
        f"{series.name:<8} {len(values):>5} {ms(statistics.median(values)):>10}"
        f" {ms(p95(values)):>8} {ms(max(values)):>8}"
    )


async def measure(runs: int, latency: float, database_dir: Path) -> None:
    async with running_stack(database_dir) as stack:
        user = stack.client()
        edits = EditTimes(stack.api)
        offers = cast(OfferService, stack.app.dp["offers"])
        # The walk, without added latency (it fills the catalog cache).
        await user.send("/start")
        await user.click(user.last_message(), "📲 Buy a number")
        await user.click(user.last_message(), lambda b: SERVICE_BUTTON in b.text)
        await user.send(COUNTRY_QUERY)
        button = country_button(user.last_message())
        pair = PickCountry.unpack(cast(str, button.callback_data))
        stack.suite.set_latency(latency)

        cold, cached = Series("cold"), Series("cached")
        by_provider: dict[str, int] = {}
        for i in range(runs + 1):  # the first pair of taps warms up and is not counted
            keep = i > 0
            offers.invalidate(pair.service, pair.country)
            before = provider_requests(stack)
            await tap(stack, user, button, edits, cold if keep else Series("warm-up"))
            if keep:
                for name, count in provider_requests(stack).items():
                    by_provider[name] = by_provider.get(name, 0) + count - before[name]
            button = await to_country_list(user)
            await tap(stack, user, button, edits, cached if keep else Series("warm-up"))
            button = await to_country_list(user)
        if not all(cold.requests):
            raise RuntimeError(f"a cold tap asked no provider: {cold.requests}")
        if any(cached.requests):
            raise RuntimeError(f"a cached tap asked the providers: {cached.requests}")
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
    per_tap = {name: count / runs for name, count in by_provider.items()}
    print(
        f"Provider requests per cold tap: {statistics.mean(cold.requests):g}"
        f" ({', '.join(f'{name} {count:g}' for name, count in per_tap.items())});"
        f" per cached tap: {statistics.mean(cached.requests):g}."
    )
    for series in (cold, cached):
        gaps = [r - o for r, o in zip(series.to_return, series.to_offers, strict=True)]
        print(
            f"Handler returned after the offers edit ({series.name}): median"
            f" +{statistics.median(gaps) * 1000:.2f} ms, max +{max(gaps) * 1000:.2f} ms."
        )


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.offers", description=__doc__)
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
        "  has applied the edit that shows the offers list. Four emulated providers over HTTP\n"
        f"  on 127.0.0.1, each adding {args.latency_ms:g} ms to every request; they share the"
        " bot's process and\n  event loop, so their CPU time is included. Bot API faked"
        " in-process, no latency.\n"
        "  cold = offers cache emptied for the pair before the tap (provider catalogs stay"
        " cached);\n  cached = the same pair again within the cache time."
    )
    with tempfile.TemporaryDirectory(prefix="bench-offers-") as tmp:
        asyncio.run(measure(args.runs, latency, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
