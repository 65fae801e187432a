"""SMS delivery at scale: from an SMS arriving at a provider to the bot's sendMessage.

Run ``python -m benchmarks.delivery`` (about five minutes on two cores, one to two of them filling
the database), or
``python -m benchmarks.delivery --quick`` (well under a minute, for the tests); ``--help`` lists
the sizes and settings that can be changed. It prints figures next to the goals of issue #12
and asserts none of them; it exits with 1 only when a code was sent twice.

Three processes:

* the bot, run as operators run it: ``python -m bot`` (its own start-up, background loops and
  long polling), with only the settings below in its environment;
* the four provider emulators (``python -m tests.emulators.control``), each adding
  ``--latency-ms`` (100 ms) to every request, real time;
* this one: a fake Bot API over HTTP (``tests.fakes.bot_server``, no latency) that the bot
  polls and sends to, and the driver.

So the bot's CPU time and peak RSS are its own: read with ``getrusage(RUSAGE_CHILDREN)`` once it
has exited (CPU also over the measured window from ``/proc`` where there is one).

Before the bot starts, its SQLite database is filled through the storage API (``UsersRepo``,
``storage.orders.insert_order``) and the emulators through their control endpoint, with the
same orders: ``--activations`` (1,000) Telegram activations in Russia bought in the last minute,
half at Get-SMS and half at SMS-BUS, all waiting for their code; ``--rentals`` (10,000) rentals,
half BEE-SMS 7-day and half SMS.online 4-hour, of which ``--hot-rentals`` (100) were bought in
the last minute and the others 15 minutes to 5 days ago (none near a reminder); and ``--past``
(100,000) finished orders. Buying them through the UI would take far longer than the run.

Then ``--sms`` (300) SMS, each with a code of its own, arrive at random times (seeded) over
``--window`` seconds in distinct *hot* orders (the activations and the recent rentals, the
providers in turn). The delay of one is real time (``time.monotonic``, shared by the
processes) from just before the emulator was told to just after the fake Bot API received the
sendMessage with its code. Every code must be sent exactly once: the run waits for all of
them (at most ``--give-up`` seconds after the last one), then two more poll intervals to catch
a second copy.

The caps are the workload's, not the bot's defaults (10/s would need 50 s a round for 500 hot
activations at one provider, and Get-SMS and SMS-BUS list no activations): the benchmark
counts the requests each provider needs per ``POLL_INTERVAL`` (every hot order; the cold
rentals whose ``POLL_COLD_INTERVAL`` turn comes; BEE-SMS's listing pages), sets ``POLL_RATE``
so that the busiest round takes 80 % of the interval and ``POLL_CONCURRENCY`` to rate x
latency x 2, and prints the sum. ``--rate``/``--concurrency`` choose them instead,
``--bot-defaults`` runs the bot's own. POLL_INTERVAL and the others are the bot's defaults
unless given (``--interval``...).

Printed: hot SMS-to-chat p50/p95/max per provider (nearest-rank percentiles; a code never sent
counts as infinitely late) next to "p95 <= POLL_INTERVAL + 1 s"; each provider's requests per
second (mean, and the most in any one-second window from the bot's start to its stop, from
the arrival times the emulator process records) next to the configured ``POLL_RATE``; with
``--trace``, the same peak from the bot's own request starts (its rate caps log them at debug
level), so bunching on the way is told apart from the bot's pacing; the bot's peak RSS next to
"<= 120 MB" (10**6 bytes); its CPU seconds.

THE RSS GOAL CANNOT BE MET WITH AIOGRAM AS IT IS: a process that does nothing but
``import aiogram`` peaks at about 170 MB here, because aiogram imports every Bot API type and
method and pydantic builds their schemas at import (aiogram/aiogram#1513, "High memory
consumption due to importing any object from aiogram"). So the run also measures, in the same
run, a bare ``import aiogram`` process and an ``import bot.app`` one (every module the bot
loads, nothing run), and prints the bot's peak above each: the second is the bot's own data
(orders, queues, caches) with 10,000 active and 100,000 past orders.

``--profile PATH`` writes a cProfile of the bot process (``python -m pstats PATH``); with it or
``--trace`` the bot runs as ``python -m benchmarks.botproc`` (the same ``bot.__main__.main``,
instrumented).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import platform
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    PROVIDERS,
    ROOT,
    Emulators,
    goal_line,
    peak_in_window,
    percentile,
)
from bot.config import Settings
from bot.domain import Order, OrderKind
from bot.money import Money
from bot.providers.getsms import ACTIVATION_LIFETIME
from storage.db import Database
from storage.models import OrderStatus
from storage.orders import insert_order
from storage.users import UsersRepo
from tests.fakes.bot_server import BotApiCall, FakeBotServer

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_"
FIRST_USER = 10_000
ADMIN = 1  # no seeded user: what the bot tells the admins is counted apart
SEED = 20260101
BATCH = 2_000  # rows per transaction while filling the database
CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
RSS_GOAL = 120 * 10**6  # bytes
HEADER = f"{'hot SMS':<10} {'orders':>6} {'sms':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
GOALS = "Goals (issue #12):"
KINDS = {
    "getsms": "activations",
    "smsbus": "activations",
    "beesms": "7-day rentals",
    "smsonline": "4-hour rentals",
}
ACTIVATION_PROVIDERS = ("getsms", "smsbus")
RENTAL_PROVIDERS = ("beesms", "smsonline")
COLD_AGES = {  # seconds: old enough to be cold, far enough from the end to need no reminder
    "beesms": (3600.0, 5 * 86400.0),
    "smsonline": (900.0, 7200.0),
}
FILL = 0.8  # the busiest provider's round takes at most this share of POLL_INTERVAL at the cap
IN_FLIGHT_MARGIN = 2.0  # POLL_CONCURRENCY = POLL_RATE x latency x this
LISTING_PAGE = 100  # BEE-SMS rentals per listing page (the adapter's page size)
POLL_SETTINGS = (
    "poll_interval",
    "poll_concurrency",
    "poll_rate",
    "poll_hot_for",
    "poll_cold_interval",
)


@dataclass(frozen=True)
class Sizes:
    activations: int
    rentals: int
    hot_rentals: int
    past: int
    sms: int
    window: float
    give_up: float


FULL = Sizes(1_000, 10_000, 100, 100_000, 300, 60.0, 120.0)
QUICK = Sizes(20, 40, 8, 200, 12, 5.0, 30.0)


@dataclass
class Seeded:
    provider: str
    order_id: str
    hot: bool


@dataclass
class Injection:
    order: Seeded
    code: str
    offset: float  # seconds after the first injection may happen
    at: float = math.nan  # time.monotonic() just before the emulator was told


@dataclass
class Sends:
    """What the fake Bot API was asked to send, with when."""

    codes: set[str]
    sent: dict[str, list[float]] = field(default_factory=dict)
    others: list[tuple[int, str]] = field(default_factory=list)  # (chat, first line)
    all_in: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, call: BotApiCall) -> None:
        now = time.monotonic()
        text = str(call.params.get("text", ""))
        found = {code for code in CODE.findall(text) if code in self.codes}
        for code in found:
            self.sent.setdefault(code, []).append(now)
        if not found:
            self.others.append((int(call.params.get("chat_id", 0)), text.split("\n", 1)[0]))
        if len(self.sent) == len(self.codes):
            self.all_in.set()


class TimedBotApi(FakeBotServer):
    """The fake Bot API, noting the moment each sendMessage arrived."""

    def __init__(self, sends: Sends) -> None:
        super().__init__()
        self.sends = sends

    async def _result(self, call: BotApiCall) -> Any:
        if call.method.lower() == "sendmessage":
            self.sends.record(call)
        return await super()._result(call)


@dataclass(frozen=True)
class Caps:
    """The POLL_RATE and POLL_CONCURRENCY the workload needs, and why."""

    rate: float
    concurrency: int
    needs: dict[str, tuple[float, str]]  # provider -> (requests per round, what they are)
    busiest: str


def needed_caps(sizes: Sizes, interval: float, cold_interval: float, latency: float) -> Caps:
    """Per provider, the requests one round needs: every hot order (activations: all of them),
    the cold rentals whose turn comes (``cold × interval / cold_interval``), BEE-SMS's listing
    pages (and at most one SMS read per hot rental). POLL_RATE lets the busiest provider's
    round take ``FILL`` of the interval, knowing that the bot's cap holds each request's permit
    until 1 s after its answer (so it passes ``rate / (1 s + latency)``); POLL_CONCURRENCY
    keeps that rate in flight at the emulators' latency (Little's law) with a margin."""
    needs: dict[str, tuple[float, str]] = {}
    for provider, hot in zip(
        ACTIVATION_PROVIDERS, split(sizes.activations, len(ACTIVATION_PROVIDERS)), strict=True
    ):
        needs[provider] = (float(hot), f"{hot} hot activations")
    counts = split(sizes.rentals, len(RENTAL_PROVIDERS))
    hots = split(sizes.hot_rentals, len(RENTAL_PROVIDERS))
    bee, bee_hot = counts[0], hots[0]
    pages = math.ceil(bee / LISTING_PAGE)
    needs["beesms"] = (float(pages + bee_hot), f"{pages} listing pages + {bee_hot} hot reads")
    online, online_hot = counts[1], hots[1]
    cold = online - online_hot
    due = cold * interval / cold_interval
    needs["smsonline"] = (
        online_hot + due,
        f"{online_hot} hot + {cold} cold every {cold_interval:g} s",
    )
    busiest = max(needs, key=lambda p: needs[p][0])
    rate = float(max(1, math.ceil(needs[busiest][0] * (1 + latency) / (interval * FILL))))
    return Caps(rate, in_flight(rate, latency), needs, busiest)


def in_flight(rate: float, latency: float) -> int:
    """POLL_CONCURRENCY for ``rate`` at ``latency``: rate x latency x margin, 8 to 100."""
    return min(100, max(8, math.ceil(rate * latency * IN_FLIGHT_MARGIN)))


# --- filling the database and the emulators ----------------------------------------------------


def order_from(provider: str, row: dict[str, Any]) -> Order:
    """The order the adapter would have returned for this purchase answer."""
    usd = "USD"  # the emulators' account currency (GETSMS_CURRENCY=USD)
    if provider == "getsms":
        return Order(
            provider=provider,
            order_id=row["order_id"],
            kind=OrderKind.ACTIVATION,
            phone=row["phone"],
            service="tg",
            country="RU",
            price=Money(Decimal(row["price"]), usd),
            expires_at=datetime.fromisoformat(row["started"]) + ACTIVATION_LIFETIME,
            meta={"slug": row["slug"], "service": "tg"},
        )
    if provider == "smsbus":
        return Order(
            provider=provider,
            order_id=row["order_id"],
            kind=OrderKind.ACTIVATION,
            phone=row["phone"],
            service="tg",
            country="RU",
            price=Money(Decimal(row["price"]), usd),
            meta={"country_id": str(row["country_id"]), "project_id": str(row["project_id"])},
        )
    if provider == "beesms":
        return Order(
            provider=provider,
            order_id=row["order_id"],
            kind=OrderKind.RENTAL,
            phone=row["dialing_code"] + row["mobile_number"],
            service="tg",
            country="US",
            price=Money(Decimal(row["actual_amount"]) / 100, usd),
            expires_at=datetime.fromisoformat(row["rental_end_at"].replace("Z", "+00:00")),
            duration_hours=int(row["duration"]) * 24,
            meta={
                "service": row["service_code"],
                "area": row["area_code"],
                "mobile_number": row["mobile_number"],
                "dialing_code": row["dialing_code"],
            },
        )
    return Order(
        provider=provider,
        order_id=row["order_id"],
        kind=OrderKind.RENTAL,
        phone=row["phone"],
        service="tg",
        country="US",
        price=Money(Decimal(row["price"]), usd),
        expires_at=datetime.fromisoformat(row["end_date"]),
        duration_hours=int(row["hours"]),
        meta={"country_id": str(row["country_id"])},
    )


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


def plan_ages(sizes: Sizes, rng: random.Random) -> dict[str, list[tuple[float, bool]]]:
    """Per provider: (seconds since purchase, hot) of each active order."""
    plan: dict[str, list[tuple[float, bool]]] = {}
    for provider, count in zip(
        ACTIVATION_PROVIDERS, split(sizes.activations, len(ACTIVATION_PROVIDERS)), strict=True
    ):
        plan[provider] = [(rng.uniform(0, 60), True) for _ in range(count)]
    hot_counts = split(sizes.hot_rentals, len(RENTAL_PROVIDERS))
    for provider, count, hot in zip(
        RENTAL_PROVIDERS, split(sizes.rentals, len(RENTAL_PROVIDERS)), hot_counts, strict=True
    ):
        low, high = COLD_AGES[provider]
        plan[provider] = [(rng.uniform(0, 60), True) for _ in range(hot)] + [
            (rng.uniform(low, high), False) for _ in range(count - hot)
        ]
    return plan


async def fill(
    emulators: Emulators, database: Path, sizes: Sizes, rng: random.Random
) -> list[Seeded]:
    """The same active orders at the emulators and in SQLite; the past orders in SQLite."""
    plan = plan_ages(sizes, rng)
    now = datetime.now(UTC)
    users = list(range(FIRST_USER, FIRST_USER + sizes.activations + sizes.rentals))
    owners = iter(users)
    seeded: list[Seeded] = []
    db = await Database.open(database)
    try:
        repo = UsersRepo(db)
        for user_id in users:
            await repo.ensure(user_id, None, now - timedelta(days=100))
        for provider in PROVIDERS:
            ages = plan[provider]
            rows = await emulators.seed(provider, [age for age, _ in ages])
            for start in range(0, len(rows), BATCH):
                async with db.transaction() as tx:
                    for (age, hot), row in zip(
                        ages[start : start + BATCH], rows[start : start + BATCH], strict=True
                    ):
                        order = order_from(provider, row)
                        bought = now - timedelta(seconds=age)
                        await insert_order(tx, next(owners), order, order.price, bought)
                        seeded.append(Seeded(provider, order.order_id, hot))
        await fill_past(db, users, sizes.past, now, rng)
    finally:
        await db.close()
    return seeded


async def fill_past(
    db: Database, users: Sequence[int], count: int, now: datetime, rng: random.Random
) -> None:
    """``count`` orders that ended, spread over the last 90 days and every provider."""
    finals = (OrderStatus.FINISHED, OrderStatus.CANCELLED, OrderStatus.EXPIRED)
    for start in range(0, count, BATCH):
        by_status: dict[OrderStatus, list[int]] = {status: [] for status in finals}
        async with db.transaction() as tx:
            for n in range(start, min(count, start + BATCH)):
                provider = PROVIDERS[n % len(PROVIDERS)]
                rental = provider in RENTAL_PROVIDERS
                bought = now - timedelta(days=rng.uniform(1, 90))
                order = Order(
                    provider=provider,
                    order_id=f"past-{n}",
                    kind=OrderKind.RENTAL if rental else OrderKind.ACTIVATION,
                    phone=f"7900{n:07d}",
                    service="tg",
                    country="US" if rental else "RU",
                    price=Money(Decimal("0.50"), "USD"),
                    expires_at=bought + (timedelta(days=7) if rental else ACTIVATION_LIFETIME),
                    duration_hours=168 if rental else None,
                )
                stored = await insert_order(tx, rng.choice(users), order, order.price, bought)
                by_status[rng.choice(finals)].append(stored.id)
            for status, ids in by_status.items():
                if ids:
                    marks = ", ".join("?" * len(ids))
                    await tx.execute(
                        f"UPDATE orders SET status = ? WHERE id IN ({marks})",  # noqa: S608
                        (status.value, *ids),
                    )


def plan_injections(
    seeded: Sequence[Seeded], sms: int, window: float, rng: random.Random
) -> list[Injection]:
    """``sms`` distinct hot orders, the providers in turn, each with a code and a time."""
    hot: dict[str, list[Seeded]] = {}
    for provider in PROVIDERS:
        pool = [s for s in seeded if s.hot and s.provider == provider]
        hot[provider] = rng.sample(pool, len(pool))
    turns = itertools.chain.from_iterable(itertools.zip_longest(*hot.values()))
    chosen = [order for order in turns if order is not None][:sms]
    if len(chosen) < sms:
        raise SystemExit(f"only {len(chosen)} hot orders for {sms} SMS")
    codes = rng.sample(range(100_000, 1_000_000), sms)
    injections = [
        Injection(order, str(code), rng.uniform(0, window))
        for order, code in zip(chosen, codes, strict=True)
    ]
    return sorted(injections, key=lambda i: i.offset)


# --- the bot process ----------------------------------------------------------------------------


def bot_env(
    emulators: Emulators, api: FakeBotServer, database: Path, args: argparse.Namespace
) -> dict[str, str]:
    """The process environment without any of the bot's settings, then exactly ours."""
    ours = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in ours}
    env.update(emulators.env)
    env.update(
        PYTHONPATH=str(ROOT),
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=api.base_url,
        DATABASE_PATH=str(database),
        ADMIN_IDS=str(ADMIN),
    )
    for name in POLL_SETTINGS:
        value = getattr(args, name.removeprefix("poll_"))
        if value is not None:
            env[name.upper()] = str(value)
    return env


def effective(env: dict[str, str]) -> Settings:
    """The settings the bot reads from ``env``: the same loading, in this process."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return Settings(_env_file=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of a live process, where /proc tells; else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_memory(pid: int, field: str = "VmHWM") -> int | None:
    """A live process's peak RSS (``VmHWM``) or RSS now (``VmRSS``), bytes, where /proc
    tells; else None."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else None


BASELINES = {  # what a process that runs nothing else weighs, next to the bot
    "import aiogram": "import aiogram",
    "import bot.app": "import bot.app  # every module the bot loads, nothing run",
}


def baseline_rss(code: str) -> int:
    """The peak RSS (bytes) of a fresh interpreter that runs ``code`` and nothing else."""
    probe = (
        f"{code}\nimport resource, sys\n"
        "usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(usage * (1 if sys.platform == 'darwin' else 1024))"
    )
    done = subprocess.run(  # noqa: S603 (this interpreter, our own code)
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout.split()[-1])


def children_usage() -> tuple[float, int]:
    """CPU seconds and peak RSS (bytes) of the children this process has waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss * scale


@dataclass
class Run:
    ready_after: float = 0.0  # seconds from spawning the bot to its setMyCommands
    started: float = 0.0  # monotonic: spawned
    ready: float = 0.0
    ended: float = 0.0
    window_cpu: float | None = None
    cpu: float = 0.0
    peak_rss: int = 0
    exit: str = ""
    log_levels: Counter[str] = field(default_factory=Counter)
    log_lines: list[str] = field(default_factory=list)  # the first warnings and errors
    proc_peak: int | None = None  # VmHWM from /proc just before SIGTERM, bytes
    rss_ready: int | None = None  # VmRSS once it was ready (after the warm-up), bytes
    rss_end: int | None = None  # VmRSS just before SIGTERM, bytes
    starts: dict[str, list[float]] = field(default_factory=dict)  # --trace: the bot's own


async def run_bot(
    emulators: Emulators,
    api: TimedBotApi,
    env: dict[str, str],
    workdir: Path,
    injections: Sequence[Injection],
    sizes: Sizes,
    linger: float,
    warm_up: float,
) -> Run:
    run = Run()
    log_path = workdir / "bot.log"
    trace = env.get("BENCH_TRACE")
    module = "benchmarks.botproc" if trace or env.get("BENCH_PROFILE") else "bot"
    with log_path.open("wb") as log:
        run.started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, cwd=workdir, env=env, stdout=log, stderr=log
        )
        try:
            waiting = asyncio.create_task(api.wait_for("setMyCommands", within=600))
            done, _ = await asyncio.wait(
                {waiting, asyncio.create_task(process.wait())},
                return_when=asyncio.FIRST_COMPLETED,
            )
            if waiting not in done:
                waiting.cancel()
                raise RuntimeError(f"the bot exited at start-up; see the end of {log_path}")
            run.ready = time.monotonic()
            run.ready_after = run.ready - run.started
            await asyncio.sleep(warm_up)
            run.rss_ready = proc_memory(process.pid, "VmRSS")
            cpu_before = proc_cpu(process.pid)
            first = time.monotonic()
            for injection in injections:
                await asyncio.sleep(max(0.0, first + injection.offset - time.monotonic()))
                injection.at = time.monotonic()
                await emulators.sms(
                    injection.order.provider, injection.order.order_id, injection.code
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(api.sends.all_in.wait(), sizes.give_up)
            await asyncio.sleep(linger)  # a second copy of a code would come within this
            run.ended = time.monotonic()
            cpu_after = proc_cpu(process.pid)
            if cpu_before is not None and cpu_after is not None:
                run.window_cpu = cpu_after - cpu_before
            run.proc_peak = proc_memory(process.pid)
            run.rss_end = proc_memory(process.pid, "VmRSS")
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            try:
                code = await asyncio.wait_for(process.wait(), 60)
                run.exit = f"exited with {code} on SIGTERM"
            except TimeoutError:
                process.kill()
                await process.wait()
                run.exit = "killed: still running 60 s after SIGTERM"
    run.cpu, run.peak_rss = children_usage()  # the bot is the only child waited for so far
    if trace:
        for line in (await asyncio.to_thread(Path(trace).read_text)).splitlines():
            _, _, provider, at = line.split()
            run.starts.setdefault(provider, []).append(float(at))
    for line in log_path.read_text(errors="replace").splitlines():
        if "Received SIGTERM signal" in line:  # aiogram on the way out: how it was stopped
            continue
        for level in ("WARNING", "ERROR", "CRITICAL", "Traceback"):
            if level in line:
                run.log_levels[level] += 1
                if len(run.log_lines) < 5:
                    run.log_lines.append(line[:160])
    return run


# --- the report -----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "never" if math.isinf(seconds) else f"{seconds * 1000:.0f}"


def row(name: str, orders: int, delays: Sequence[float]) -> str:
    if not delays:
        return f"{name:<10} {orders:>6} {0:>5} {'-':>8} {'-':>8} {'-':>8}"
    return (
        f"{name:<10} {orders:>6} {len(delays):>5} {ms(percentile(delays, 50)):>8}"
        f" {ms(percentile(delays, 95)):>8} {ms(max(delays)):>8}"
    )


@dataclass
class Load:
    requests: dict[str, list[float]]  # provider -> arrival times at its emulator
    names: dict[str, Counter[str]]  # provider -> requests by name
    baselines: dict[str, int]  # what -> peak RSS of a bare process, bytes


def report(
    args: argparse.Namespace,
    sizes: Sizes,
    settings: Settings,
    caps: Caps,
    seeded: Sequence[Seeded],
    filled_in: float,
    injections: Sequence[Injection],
    sends: Sends,
    load: Load,
    run: Run,
) -> int:
    requests, names = load.requests, load.names
    counts = Counter(s.provider for s in seeded)
    hot = Counter(s.provider for s in seeded if s.hot)
    shown = ", ".join(
        f"{name.upper()}={getattr(settings, name)}"
        for name in POLL_SETTINGS
        if hasattr(settings, name)
    )
    missing = [name.upper() for name in POLL_SETTINGS if not hasattr(settings, name)]
    print(
        f"Bot settings: {shown}"
        + (f" ({', '.join(missing)}: not settings of this bot)" if missing else "")
    )
    interval = settings.poll_interval
    latency = args.latency_ms / 1000
    per_round = ", ".join(f"{p} {n:.0f} ({what})" for p, (n, what) in caps.needs.items())
    busiest = caps.needs[caps.busiest][0]
    chosen = (
        "the bot's own defaults (--bot-defaults)"
        if args.bot_defaults
        else f"POLL_RATE={caps.rate:g}/s and POLL_CONCURRENCY={caps.concurrency}, chosen by the"
        " benchmark for this workload"
    )
    print(
        f"Caps: {chosen}.\n  Requests per POLL_INTERVAL ({interval:g} s) each provider needs:"
        f" {per_round};\n  POLL_RATE = {busiest:.0f} x (1 s + {latency:g} s) / ({interval:g} s"
        f" x {FILL:g}) = {caps.rate:g}/s (the busiest round in {FILL:.0%} of the interval: the"
        " cap keeps a permit 1 s past each answer);\n "
        f" POLL_CONCURRENCY = {caps.rate:g}/s x {latency:g} s"
        f" x {IN_FLIGHT_MARGIN:g} = {caps.concurrency} (at least 8)."
    )
    print(
        "Database: "
        + ", ".join(f"{counts[p]} {p} {KINDS[p]} ({hot[p]} hot)" for p in PROVIDERS)
        + f";\n  {sizes.past} past orders; {len(seeded)} active in all; filled in"
        f" {filled_in:.1f} s before the bot started."
    )
    print(
        f"Bot: ready (setMyCommands) {run.ready_after:.1f} s after it was spawned; SMS from"
        f" {args.warm_up:g} s later; {run.exit}."
    )
    twice = {code: len(t) for code, t in sends.sent.items() if len(t) > 1}
    not_sent = [i for i in injections if i.code not in sends.sent]
    print(
        f"SMS: {len(injections)} injected into distinct hot orders at random times over"
        f" {sizes.window:g} s (seed {SEED});\n  "
        + (
            f"{len(sends.sent)} sent, each exactly once"
            if not twice
            else f"{len(sends.sent)} sent, {len(twice)} of them MORE THAN ONCE"
        )
        + (f"; {len(not_sent)} NOT SENT within {sizes.give_up:g} s" if not_sent else "")
        + f"; {len(sends.others)} other messages."
    )
    for chat, first_line in sends.others[:5]:
        print(f"    other message to {chat}: {first_line[:80]}")
    print()
    delays: dict[str, list[float]] = {p: [] for p in PROVIDERS}
    for injection in injections:
        times = sends.sent.get(injection.code)
        delay = times[0] - injection.at if times else math.inf
        delays[injection.order.provider].append(delay)
    print(HEADER)
    for provider in PROVIDERS:
        print(row(provider, hot[provider], delays[provider]))
    everything = [d for values in delays.values() for d in values]
    print(row("all", sum(hot.values()), everything))
    print()

    wall = run.ended - run.started
    print(f"Provider requests from the bot's start to the end of the window ({wall:.1f} s):")
    for provider in PROVIDERS:
        top = ", ".join(f"{name} {n}" for name, n in names[provider].most_common(4))
        print(f"  {provider:<10} {len(requests[provider]):>6}  ({top})")
    print()
    print(GOALS)
    p95 = percentile(everything, 95)
    print(
        goal_line(
            "hot SMS-to-chat p95",
            "never" if math.isinf(p95) else f"{p95:.2f} s",
            f"<= POLL_INTERVAL + 1 s = {interval + 1:g} s",
            p95 <= interval + 1,
        )
    )
    cap = settings.poll_rate
    for provider in PROVIDERS:
        times = requests[provider]
        peak = peak_in_window(times)
        print(
            goal_line(
                f"{provider} requests/s",
                f"{len(times) / wall:.1f} mean, {peak} peak",
                f"never above POLL_RATE = {cap:g} (configured)",
                peak <= cap,
            )
        )
    if run.starts:
        print(
            "    peak in any 1 s, at the bot (its rate caps' starts, --trace) vs at the"
            " emulators (arrivals; the watcher's and every other request):"
        )
        for provider in PROVIDERS:
            own = run.starts.get(provider, [])
            print(
                f"    {provider:<10} bot {peak_in_window(own):>4} of {len(own):>6}"
                f"   emulator {peak_in_window(requests[provider]):>4}"
                f" of {len(requests[provider]):>6}"
            )
    print(
        goal_line(
            "bot peak RSS",
            f"{run.peak_rss / 10**6:.0f} MB",
            f"<= {RSS_GOAL // 10**6} MB ({len(seeded)} active, {sizes.past} past)",
            run.peak_rss <= RSS_GOAL,
        )
    )
    aiogram = load.baselines["import aiogram"]
    modules = load.baselines["import bot.app"]
    print(
        "    CANNOT BE MET WITH AIOGRAM AS IT IS: a bare process that only imports aiogram"
        f" peaks at {aiogram / 10**6:.0f} MB\n    here (aiogram loads every type and its"
        " pydantic schemas at import: aiogram/aiogram#1513)."
    )
    print(
        goal_line(
            "bot RSS above import aiogram",
            f"{(run.peak_rss - aiogram) / 10**6:.0f} MB",
            f"(peak {run.peak_rss / 10**6:.0f} - bare {aiogram / 10**6:.0f} MB)",
            None,
        )
    )
    print(
        goal_line(
            "bot RSS above its imports",
            f"{(run.peak_rss - modules) / 10**6:.0f} MB",
            f"(peak - `import bot.app` {modules / 10**6:.0f} MB): its data",
            None,
        )
    )
    if run.rss_ready is not None and run.rss_end is not None:
        print(
            f"    (VmRSS once ready {run.rss_ready / 10**6:.0f} MB, at the end"
            f" {run.rss_end / 10**6:.0f} MB"
            + (
                f"; VmHWM just before SIGTERM {run.proc_peak / 10**6:.0f} MB)"
                if run.proc_peak is not None
                else ")"
            )
        )
    window = run.ended - run.ready - args.warm_up
    cpu_window = (
        f"; {run.window_cpu:.1f} s in the {window:.0f} s window ({run.window_cpu / window:.0%})"
        if run.window_cpu is not None
        else ""
    )
    print(
        goal_line(
            "bot CPU", f"{run.cpu:.1f} s", "(no goal) over its whole life" + cpu_window, None
        )
    )
    levels = ", ".join(f"{level} {n}" for level, n in sorted(run.log_levels.items()))
    print(f"\nBot log lines with WARNING/ERROR/CRITICAL/Traceback: {levels or 'none'}.")
    for line in run.log_lines:
        print(f"  {line}")
    return 1 if twice else 0


async def measure(args: argparse.Namespace, sizes: Sizes, workdir: Path) -> int:
    rng = random.Random(SEED)
    database = workdir / "bot.sqlite3"
    async with Emulators() as emulators:
        filling = time.monotonic()
        seeded = await fill(emulators, database, sizes, rng)
        filled_in = time.monotonic() - filling
        injections = plan_injections(seeded, sizes.sms, sizes.window, rng)
        sends = Sends({i.code for i in injections})
        api = TimedBotApi(sends)
        await api.start()
        try:
            given = effective(bot_env(emulators, api, database, args))
            caps = needed_caps(
                sizes, given.poll_interval, given.poll_cold_interval, args.latency_ms / 1000
            )
            if not args.bot_defaults:
                if args.rate is None:
                    args.rate = caps.rate
                if args.concurrency is None:
                    args.concurrency = in_flight(args.rate, args.latency_ms / 1000)
            env = bot_env(emulators, api, database, args)
            if args.trace:
                env["BENCH_TRACE"] = str(workdir / "starts.log")
            if args.profile is not None:
                env["BENCH_PROFILE"] = str(args.profile.resolve())
            settings = effective(env)
            await emulators.set_latency(args.latency_ms / 1000)
            linger = 2 * settings.poll_interval + 1
            if args.warm_up is None:
                args.warm_up = settings.poll_interval
            run = await run_bot(
                emulators, api, env, workdir, injections, sizes, linger, args.warm_up
            )
            log = await emulators.requests()
        finally:
            await api.stop()
    baselines = {name: baseline_rss(code) for name, code in BASELINES.items()}
    requests = {
        name: [r.at for r in log[name] if run.started <= r.at <= run.ended] for name in PROVIDERS
    }
    names = {
        name: Counter(r.name for r in log[name] if run.started <= r.at <= run.ended)
        for name in PROVIDERS
    }
    return report(
        args,
        sizes,
        settings,
        caps,
        seeded,
        filled_in,
        injections,
        sends,
        Load(requests, names, baselines),
        run,
    )


def parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Sizes]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.delivery",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK.activations} activations, {QUICK.rentals} rentals, {QUICK.past} past"
        f" orders, {QUICK.sms} SMS over {QUICK.window:g} s, POLL_INTERVAL 1 s",
    )
    for name, default, what in (
        ("activations", FULL.activations, "active activations"),
        ("rentals", FULL.rentals, "active rentals"),
        ("hot-rentals", FULL.hot_rentals, "of them bought in the last minute"),
        ("past", FULL.past, "finished orders in the database"),
        ("sms", FULL.sms, "SMS injected into hot orders"),
    ):
        parser.add_argument(
            f"--{name}", type=int, default=None, help=f"{what} (default {default})"
        )
    parser.add_argument("--window", type=float, default=None, help="seconds SMS arrive over (60)")
    parser.add_argument(
        "--give-up", type=float, default=None, help="seconds to wait for the last codes (120)"
    )
    parser.add_argument(
        "--warm-up",
        type=float,
        default=None,
        help="seconds from ready to the first SMS (default POLL_INTERVAL)",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=100.0, help="added to every provider request (100)"
    )
    parser.add_argument("--interval", type=float, default=None, help="POLL_INTERVAL, seconds")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="POLL_CONCURRENCY (default: POLL_RATE x latency x 2, at least 8)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="POLL_RATE, requests/s (default: what the workload needs; see the output)",
    )
    parser.add_argument(
        "--bot-defaults",
        action="store_true",
        help="run with the bot's own POLL_RATE and POLL_CONCURRENCY instead",
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="also log the bot's own request starts (debug level) and compare them with the"
        " arrivals at the emulators",
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="write a cProfile of the bot process here"
    )
    parser.add_argument(
        "--hot-for", default=None, help="POLL_HOT_FOR (e.g. 10m), if the bot has it"
    )
    parser.add_argument(
        "--cold-interval", type=float, default=None, help="POLL_COLD_INTERVAL, if the bot has it"
    )
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    if args.quick and args.interval is None:
        args.interval = 1.0
    sizes = Sizes(
        activations=base.activations if args.activations is None else args.activations,
        rentals=base.rentals if args.rentals is None else args.rentals,
        hot_rentals=base.hot_rentals if args.hot_rentals is None else args.hot_rentals,
        past=base.past if args.past is None else args.past,
        sms=base.sms if args.sms is None else args.sms,
        window=base.window if args.window is None else args.window,
        give_up=base.give_up if args.give_up is None else args.give_up,
    )
    if min(sizes.activations, sizes.rentals, sizes.past) < 0 or sizes.hot_rentals > sizes.rentals:
        parser.error("sizes must not be negative, and --hot-rentals at most --rentals")
    if not 1 <= sizes.sms <= sizes.activations + sizes.hot_rentals:
        parser.error("--sms must be between 1 and the hot orders (activations + hot rentals)")
    if sizes.window <= 0 or sizes.give_up <= 0 or args.latency_ms < 0:
        parser.error("--window and --give-up must be positive, --latency-ms not negative")
    return args, sizes


def main(argv: Sequence[str] | None = None) -> int:
    args, sizes = parse(argv)
    print(
        f"Delivery benchmark: Python {platform.python_version()}"
        f" ({platform.python_implementation()}) on {platform.platform()}"
    )
    print(
        "Measured: real time from an SMS arriving at a provider emulator until the fake Bot API\n"
        "  received the sendMessage with its code. The bot is `python -m bot` in its own"
        " process;\n  the four emulated providers run in another, each adding"
        f" {args.latency_ms:g} ms to every request;\n  the fake Bot API (no latency) runs in"
        " this one."
    )
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        return asyncio.run(measure(args, sizes, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
