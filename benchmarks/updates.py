"""Updates per second through the bot's real Dispatcher, next to a bare aiogram echo bot.

Run ``python -m benchmarks.updates`` (5,000 updates each, about a minute on two cores) or
``python -m benchmarks.updates --quick`` (200 updates, for the tests); ``--help`` lists the
sizes and settings. It prints figures next to the goals of issue #13 and asserts none of them;
it exits with 1 when an update was left unanswered or refused (the figures would not count).

Processes, each on its own so that the CPU of one is not in another's figures:

* the bot, run as operators run it: ``python -m bot`` (its own start-up, background loops,
  middlewares, SQLite or PostgreSQL), with only the settings below in its environment; or the
  echo bot, ``python -m benchmarks.echo_bot`` (one Dispatcher: a text is echoed, a callback
  query answered), against the same fake Telegram with the same updates;
* a fake Telegram (``python -m benchmarks.feed``: the tests' fake Bot API, serving the updates
  and counting the answers; it reports its own CPU time, so it is seen not to be the bottleneck);
* the four provider emulators (``python -m tests.emulators.control``, ``--latency-ms`` each);
* this one, the driver: it starts the others and prints.

The workload is what users do, from ``--users`` distinct users (half of them in Russian), each
going through the same session (``SESSION``: /start, a tap on Buy that opens the services list,
a typed service name, the menu, My numbers, typed searches that go to the catalog, Help...)
``--per-user`` updates long. Each user sends their next update once the previous one is fully
answered (sendMessage for a message; answerCallbackQuery and editMessageText for a tap of this
bot, answerCallbackQuery for the echo bot), every user at once; so ``--users`` updates are in
flight, and nobody taps faster than the bot answers. No step buys or asks for offers: the
screens that need a provider read the providers' catalogs, which one warm-up user's session
(before the measured updates, not counted) has cached, so no provider is asked during the
measurement (the output shows the requests the emulators saw in the window).

updates/s = the updates fully answered / seconds from the first measured update served to the
last answer (both seen by the fake Telegram). Latency = served to fully answered. ``RATE_LIMIT_*``
are the bot's defaults unless given; a user sends at most ``--per-user`` updates in all, which
the run keeps at or under RATE_LIMIT_COUNT, so the limit is on (its middleware runs) and never
binds; a refusal ("slow down", "private bot") would be counted apart.

Feeds: by default long polling (getUpdates, as many waiting updates as the bot asks for). With
``--feed webhook`` the fake Telegram POSTs each update to the bots' webhooks, round robin, with
at most ``--in-flight`` sent and not yet answered. ``--replicas 2`` runs the echo bot, one
replica of this bot and two replicas with what replicas need (README, Production): webhooks,
one fresh PostgreSQL database (``createdb``, dropped after) and Redis (keys under a fresh
``REDIS_PREFIX``, deleted after); it prints two replicas against one. ``--postgres`` and
``--redis`` use them in the other modes too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from benchmarks.delivery import effective, proc_cpu
from benchmarks.harness import (
    PROVIDERS,
    ROOT,
    ControlledProcess,
    Emulators,
    goal_line,
    percentile,
)
from bot import texts
from bot.callbacks import Menu, MenuAction
from bot.config import Settings
from bot.i18n import create_i18n
from tests.fakes.bot_server import BOT_USER

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_"
ADMIN = 1  # no benchmark user is an admin (admins skip the rate limit)
FIRST_USER = 10_000
RUN_USERS = 1_000_000  # each run's users are new: run i numbers them from FIRST_USER + i x this
WARM_UP_USER = 5_000
DATE = 1767268800
RATIO_GOAL = 0.5  # the bot's updates/s at least this share of the echo bot's
FEED_CPU_GOAL = 0.5  # the fake Telegram under this share of one core: not the bottleneck
HEADER = (
    f"{'run':<8} {'updates':>7} {'answered':>8} {'refused':>7} {'seconds':>8} {'updates/s':>9}"
    f" {'p50 ms':>7} {'p95 ms':>7} {'bot CPU':>9} {'fake TG CPU':>11}"
)
GOALS = "Goals (issue #13):"
Kind = Literal["message", "callback_query"]


@dataclass(frozen=True)
class Step:
    label: str
    kind: Kind
    text: str  # typed, or the callback data of the button tapped
    ru: str | None = None  # what a Russian-speaking user types instead


def tap(action: MenuAction) -> str:
    return Menu(action=action).pack()


SESSION: tuple[Step, ...] = (
    Step("/start: the menu", "message", "/start"),
    Step("tap Buy: the services list", "callback_query", tap(MenuAction.BUY)),
    Step("type a service: the list filtered", "message", "telegram"),
    Step("tap Menu", "callback_query", tap(MenuAction.MENU)),
    Step("tap My numbers", "callback_query", tap(MenuAction.NUMBERS)),
    Step("type a service: its countries", "message", "whatsapp"),
    Step("/start: the menu", "message", "/start"),
    Step("type a country: its services", "message", "russia", ru="россия"),
    Step("tap Help", "callback_query", tap(MenuAction.HELP)),
    Step("tap My numbers", "callback_query", tap(MenuAction.NUMBERS)),
)
EXPECT: dict[str, dict[str, list[str]]] = {  # the calls that answer an update in full
    "echo": {"message": ["sendMessage"], "callback_query": ["answerCallbackQuery"]},
    "bot": {
        "message": ["sendMessage"],
        "callback_query": ["answerCallbackQuery", "editMessageText"],
    },
}


@dataclass(frozen=True)
class Sizes:
    users: int
    per_user: int

    @property
    def updates(self) -> int:
        return self.users * self.per_user


FULL = Sizes(500, 10)
QUICK = Sizes(20, 10)


# --- the workload -------------------------------------------------------------------------------


def language(user: int) -> str:
    return "ru" if user % 2 else "en"


def update(step: Step, user: int, n: int) -> dict[str, Any]:
    """The update ``step`` makes for ``user`` (their ``n``-th), as Telegram sends it."""
    lang = language(user)
    person = {"id": user, "is_bot": False, "first_name": f"User{user}", "language_code": lang}
    chat = {"id": user, "type": "private", "first_name": f"User{user}"}
    if step.kind == "message":
        text = step.ru if lang == "ru" and step.ru else step.text
        message: dict[str, Any] = {
            "message_id": 2 * n + 1,
            "date": DATE + n,
            "chat": chat,
            "from": person,
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
        return {"message": message}
    on = {"message_id": 2 * n, "date": DATE + n, "chat": chat, "from": BOT_USER, "text": "…"}
    return {
        "callback_query": {
            "id": f"q{user}-{n}",
            "from": person,
            "chat_instance": f"ci{user}",
            "message": on,
            "data": step.text,
        }
    }


def session(user: int, length: int) -> list[dict[str, Any]]:
    steps = (SESSION[n % len(SESSION)] for n in range(length))
    return [{"label": s.label, "update": update(s, user, n)} for n, s in enumerate(steps)]


def workload(first_user: int, sizes: Sizes, warm_up_user: int) -> dict[str, Any]:
    users = range(first_user, first_user + sizes.users)
    return {
        "warm_up": [session(warm_up_user, len(SESSION))],
        "sessions": [session(user, sizes.per_user) for user in users],
    }


def mix(sizes: Sizes) -> Counter[str]:
    """Updates per step label in one user's session."""
    return Counter(SESSION[n % len(SESSION)].label for n in range(sizes.per_user))


def refusals() -> list[str]:
    """How the bot's refusals begin, in each of its languages (rate limit, private bot)."""
    i18n = create_i18n()
    found: list[str] = []
    for locale in i18n.available_locales:
        with i18n.context(), i18n.use_locale(locale):
            found.append(texts.slow_down(7).split("7", 1)[0])
            found.append(texts.private_bot()[:40])
    return found


# --- processes ----------------------------------------------------------------------------------


class FakeTelegram(ControlledProcess):
    """``async with FakeTelegram() as feed``: ``python -m benchmarks.feed``, stopped on exit."""

    module = "benchmarks.feed"
    name = "the fake Telegram"
    timeout = None  # a run ends by itself

    def __init__(self) -> None:
        super().__init__()
        self.api = ""

    def hello(self, data: dict[str, Any]) -> None:
        self.api = data["api"]

    async def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        assert self._http is not None
        response = await self._http.post("/run", json=spec)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def listening(port: int, process: asyncio.subprocess.Process, within: float) -> None:
    """Wait until something accepts connections on ``port`` (the process must stay alive)."""
    deadline = time.monotonic() + within
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"the process exited with {process.returncode} at start-up")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} after {within:g} s") from None
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return


@dataclass
class Cpu:
    """CPU seconds of some processes over time, sampled from /proc."""

    pids: list[int]
    samples: list[tuple[float, float]] = field(default_factory=list)
    names: tuple[str, ...] = ()  # instead of pids: every process of these names (servers)

    def take(self) -> None:
        pids = self.pids or named(self.names)
        values = [proc_cpu(pid) for pid in pids]
        if all(v is not None for v in values):
            self.samples.append((time.monotonic(), sum(v or 0.0 for v in values)))

    async def sample(self, every: float = 0.05) -> None:
        while True:
            self.take()
            await asyncio.sleep(every)

    def between(self, start: float, end: float) -> float | None:
        """CPU seconds from the last sample at or before ``start`` to the first after ``end``."""
        before = [cpu for at, cpu in self.samples if at <= start]
        after = [cpu for at, cpu in self.samples if at >= end]
        if not before or not after:
            return None
        return after[0] - before[-1]


def named(names: tuple[str, ...]) -> list[int]:
    """The processes (any user's) whose command name is one of ``names``, where /proc tells."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() in names:
                found.append(int(entry.name))
    return found


SERVERS = {"PostgreSQL": ("postgres",), "Redis": ("redis-server",)}


@dataclass(frozen=True)
class Target:
    name: str  # the row: echo, bot, bot-x2
    what: str  # echo / bot: which program and which answers complete an update
    replicas: int
    feed: str  # polling / webhook


@dataclass
class Outcome:
    target: Target
    result: dict[str, Any]
    cpu: list[float | None]  # per replica, over the window
    exits: list[str]
    log_levels: Counter[str]
    log_lines: list[str]
    spawned: float  # monotonic: the first replica was started
    stopped_in: float  # seconds from SIGTERM to every replica's exit
    servers: dict[str, float | None]  # PostgreSQL / Redis server CPU seconds in the window

    @property
    def window(self) -> float:
        first, last = self.result["first_served"], self.result["last_answer"]
        return float(last - first) if first is not None and last is not None else 0.0

    @property
    def rate(self) -> float:
        return self.result["answered"] / self.window if self.window > 0 else 0.0


def bot_env(
    emulators: Emulators,
    feed: FakeTelegram,
    args: argparse.Namespace,
    workdir: Path,
    database_url: str | None,
    webhook: tuple[str, int, str] | None,
    redis_prefix: str | None = None,
) -> dict[str, str]:
    """The process environment without any of the bot's settings, then exactly ours."""
    ours = {name.upper() for name in Settings.model_fields}
    ours |= {"TELEGRAM_WEBHOOK_URL", "TELEGRAM_WEBHOOK_SECRET", "DATABASE_URL", "REDIS_URL"}
    ours |= {"REDIS_PREFIX", "REPLICA_ID"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in ours}
    env.update(emulators.env)
    env.update(
        PYTHONPATH=str(ROOT),
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=feed.api,
        DATABASE_PATH=str(workdir / "bot.sqlite3"),
        ADMIN_IDS=str(ADMIN),
        ACCESS_MODE="public",
    )
    if args.rate_limit_count is not None:
        env["RATE_LIMIT_COUNT"] = str(args.rate_limit_count)
    if args.rate_limit_window is not None:
        env["RATE_LIMIT_WINDOW"] = str(args.rate_limit_window)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    if redis_prefix is not None:
        env.update(REDIS_URL=REDIS_URL, REDIS_PREFIX=redis_prefix)
    if webhook is not None:
        url, port, secret = webhook
        env.update(
            TELEGRAM_WEBHOOK_URL=url,
            TELEGRAM_WEBHOOK_SECRET=secret,
            WEBHOOK_HOST="127.0.0.1",
            WEBHOOK_PORT=str(port),
        )
    return env


def log_findings(paths: Sequence[Path]) -> tuple[Counter[str], list[str]]:
    levels: Counter[str] = Counter()
    lines: list[str] = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if "Received SIGTERM signal" in line:  # aiogram on the way out
                continue
            for level in ("WARNING", "ERROR", "CRITICAL", "Traceback"):
                if level in line:
                    levels[level] += 1
                    if len(lines) < 5:
                        lines.append(line[:160])
    return levels, lines


async def stop(process: asyncio.subprocess.Process) -> str:
    if process.returncode is not None:
        return f"had exited with {process.returncode}"
    process.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.wait_for(process.wait(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        return "killed: still running 60 s after SIGTERM"
    return f"exited with {code} on SIGTERM"


async def measure(
    target: Target,
    index: int,
    emulators: Emulators,
    feed: FakeTelegram,
    args: argparse.Namespace,
    sizes: Sizes,
    workdir: Path,
    database_url: str | None,
    redis_prefix: str | None,
) -> Outcome:
    """One run: start the replicas, feed them the workload, stop them."""
    rundir = workdir / f"{index}-{target.name}"
    rundir.mkdir()
    load = workload(FIRST_USER + index * RUN_USERS, sizes, WARM_UP_USER + index)
    path = rundir / "workload.json"
    path.write_text(json.dumps(load), encoding="utf-8")
    module = "benchmarks.echo_bot" if target.what == "echo" else "bot"
    if args.profile is not None and target.what == "bot":
        module = "benchmarks.botproc"  # the same bot.__main__.main, under cProfile
    processes: list[asyncio.subprocess.Process] = []
    logs: list[Path] = []
    hooks: list[dict[str, str]] = []
    cpu: list[Cpu] = []
    sampling: list[asyncio.Task[None]] = []
    spawned = time.monotonic()
    servers = {
        name: Cpu([], names=names)
        for name, names in SERVERS.items()
        if (name == "PostgreSQL" and database_url) or (name == "Redis" and redis_prefix)
    }
    for server in servers.values():
        sampling.append(asyncio.create_task(server.sample(every=0.25)))
    try:
        for replica in range(target.replicas):
            webhook = None
            if target.feed == "webhook":
                port, secret = free_port(), secrets.token_hex(16)
                webhook = (f"http://127.0.0.1:{port}/telegram/webhook", port, secret)
                hooks.append({"url": webhook[0], "secret": secret})
            env = bot_env(emulators, feed, args, rundir, database_url, webhook, redis_prefix)
            env["REPLICA_ID"] = f"{target.name}-{replica}"
            if module == "benchmarks.botproc":
                args.profile.mkdir(parents=True, exist_ok=True)
                profile = args.profile.resolve() / f"{index}-{target.name}-{replica}.prof"
                env["BENCH_PROFILE"] = str(profile)
            logs.append(rundir / f"replica-{replica}.log")
            with logs[-1].open("wb") as log:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", module, cwd=rundir, env=env, stdout=log, stderr=log
                )
            processes.append(process)
            if webhook is not None:  # one after the other: each migrates the database first
                try:
                    await listening(webhook[1], process, 120)
                except RuntimeError as exc:
                    tail = logs[-1].read_text(errors="replace").splitlines()[-15:]
                    raise RuntimeError(
                        f"{target.name} replica {replica}: {exc}; its log ends:\n"
                        + "\n".join(tail)
                    ) from None
            cpu.append(Cpu([process.pid]))
            sampling.append(asyncio.create_task(cpu[-1].sample()))
        spec = {
            "workload": str(path),
            "expect": EXPECT[target.what],
            "refusals": refusals(),
            "webhooks": hooks,
            "in_flight": args.in_flight,
            "stall": args.stall,
        }
        result = await feed.run(spec)
        for one in [*cpu, *servers.values()]:
            one.take()
    finally:
        for task in sampling:
            task.cancel()
        stopping = time.monotonic()
        exits = list(await asyncio.gather(*(stop(process) for process in processes)))
        stopped_in = time.monotonic() - stopping
    first, last = result["first_served"], result["last_answer"]
    used = [c.between(first, last) if first and last else None for c in cpu]
    server_cpu = {
        name: one.between(first, last) if first and last else None for name, one in servers.items()
    }
    levels, lines = log_findings(logs)
    return Outcome(target, result, used, exits, levels, lines, spawned, stopped_in, server_cpu)


# --- the report ---------------------------------------------------------------------------------


def share(seconds: float | None, window: float) -> str:
    return "-" if seconds is None or window <= 0 else f"{seconds / window:.0%}"


def row(outcome: Outcome) -> str:
    r, window = outcome.result, outcome.window
    latencies = r["latencies"]
    p50 = f"{percentile(latencies, 50) * 1000:.0f}" if latencies else "-"
    p95 = f"{percentile(latencies, 95) * 1000:.0f}" if latencies else "-"
    bot_cpu = "+".join(share(c, window) for c in outcome.cpu)
    return (
        f"{outcome.target.name:<8} {r['updates']:>7} {r['answered']:>8} {r['refused']:>7}"
        f" {window:>8.2f} {outcome.rate:>9.0f} {p50:>7} {p95:>7} {bot_cpu:>9}"
        f" {share(r['cpu'], window):>11}"
    )


def describe(
    target: Target, args: argparse.Namespace, database_url: str | None, redis: str | None
) -> str:
    program = (
        "benchmarks.echo_bot (aiogram, two handlers)"
        if target.what == "echo"
        else "python -m bot"
        + (" x2 replicas" if target.replicas > 1 else "")
        + (", PostgreSQL" if database_url else ", SQLite")
        + (", Redis" if redis else "")
    )
    if args.profile is not None and target.what == "bot":
        program += " UNDER cProfile (slower)"
    feed = (
        "long polling"
        if target.feed == "polling"
        else f"webhook, round robin, at most {args.in_flight} in flight"
    )
    return f"  {target.name:<8} {program}; {feed}"


def calls_line(outcome: Outcome) -> str:
    calls = outcome.result["calls"]
    shown = ", ".join(f"{m} {n}" for m, n in sorted(calls.items(), key=lambda kv: -kv[1]))
    batches = outcome.result["served_batches"]
    per_poll = (
        f" ({sum(batches) / len(batches):.1f} updates per getUpdates that had some)"
        if batches
        else ""
    )
    return f"  {outcome.target.name:<8} {shown or 'none'}{per_poll}"


def report(
    args: argparse.Namespace,
    sizes: Sizes,
    settings: Settings,
    outcomes: Sequence[Outcome],
    provider_requests: dict[str, int],
    database_url: str | None,
    redis_prefix: str | None,
) -> int:
    limit, window = settings.rate_limit_count, settings.rate_limit_window
    defaults = Settings.model_fields
    chosen = (
        "the bot's defaults"
        if (limit, window)
        == (defaults["rate_limit_count"].default, defaults["rate_limit_window"].default)
        else "the count raised to --per-user: the limit stays on and never binds"
        if args.rate_limit_raised
        else "given"
    )
    binds = "none can be limited" if sizes.per_user <= limit or not limit else "SOME MAY BE"
    database = "PostgreSQL (a fresh database)" if database_url else "SQLite (a fresh file a run)"
    if redis_prefix is not None:
        database += (
            f";\n  Redis ({REDIS_URL}, REDIS_PREFIX={redis_prefix}): FSM, guards, rate limit"
        )
    print(
        f"Bot settings: ACCESS_MODE={settings.access_mode.value}, RATE_LIMIT_COUNT={limit} per"
        f" RATE_LIMIT_WINDOW={window:g} s\n  ({chosen});\n  each user sends {sizes.per_user}"
        f" updates in all, so {binds}; database: {database}."
    )
    counts = mix(sizes)
    print(
        f"Workload: {sizes.users} users x {sizes.per_user} updates = {sizes.updates} a run, half"
        " of the users in Russian;\n  each user sends the next update once the previous one"
        f" is answered. Mix (x {sizes.users} users):"
    )
    total = 0
    for label, n in counts.items():
        kind = next(s.kind for s in SESSION if s.label == label)
        total += n * sizes.users
        print(
            f"    {label:<36} {'tap' if kind == 'callback_query' else 'message':<8}"
            f" {n * sizes.users:>7} ({n / sizes.per_user:.0%})"
        )
    print(f"    {'in all':<36} {'':<8} {total:>7}")
    print(
        f"  Warm-up: one user's {len(SESSION)}-update session before each run's measured"
        " updates (not counted);\n  it caches the providers' catalogs (the four emulators"
        f" answering in {args.latency_ms:g} ms, in a process of their own)."
    )
    print("Runs:")
    for outcome in outcomes:
        print(describe(outcome.target, args, database_url, redis_prefix))
    print(f"  load average at the end: {load_average()}")
    print()
    print(HEADER)
    for outcome in outcomes:
        print(row(outcome))
    print()
    print(
        "bot CPU: the bot's (or echo bot's) process over the window, per replica; fake TG CPU:"
        "\n  the fake Telegram's own; both in % of one core."
    )
    print("Bot API calls in each window:")
    for outcome in outcomes:
        print(calls_line(outcome))
    if any(o.servers for o in outcomes):
        print(
            "Database servers' CPU in each window (all their processes, % of one core): "
            + "; ".join(
                f"{o.target.name} "
                + ", ".join(f"{name} {share(used, o.window)}" for name, used in o.servers.items())
                for o in outcomes
                if o.servers
            )
            + "."
        )
    print(
        "Provider requests the emulators saw in the measured windows: "
        + ", ".join(f"{name} {n}" for name, n in provider_requests.items())
        + "."
    )
    bots = [o for o in outcomes if o.target.what == "bot"]
    if bots:
        print("What each step got first (the bot's first run; its first user there):")
        answers = bots[0].result["answers"]
        for label in dict.fromkeys(s.label for s in SESSION):
            if label in counts:
                shown = answers.get(label, "NO ANSWER").replace("\n", " ")
                print(f"    {label:<36} {shown[:90]}")
    bad = 0
    for outcome in outcomes:
        r = outcome.result
        extra = r["extra"]
        if r["unanswered"] or r["refused"] or extra or r["post_failures"]:
            bad += r["unanswered"] + r["refused"]
            print(
                f"  {outcome.target.name}: {r['unanswered']} NOT ANSWERED, {r['refused']}"
                f" refused, extra calls {extra or 'none'}, failed POSTs"
                f" {r['post_failures'] or 'none'}"
            )
            for example in r["extra_examples"]:
                print(f"      {example}")
        first = outcome.result["first_served"]
        started = (
            f"first update served {first - outcome.spawned:.1f} s after it was spawned; "
            if first
            else ""
        )
        print(
            f"  {outcome.target.name}: {started}"
            + "; ".join(outcome.exits)
            + f" (in {outcome.stopped_in:.1f} s)."
        )
    print()
    print(GOALS)
    echo = next((o for o in outcomes if o.target.what == "echo"), None)
    for bot in bots:
        if echo is None or bot.target.replicas != 1:
            continue
        ratio = bot.rate / echo.rate if echo.rate else 0.0
        print(
            goal_line(
                f"{bot.target.name} vs echo updates/s",
                f"{ratio:.0%} ({bot.rate:.0f} / {echo.rate:.0f})",
                f">= {RATIO_GOAL:.0%} of the echo bot ({bot.target.feed})",
                ratio >= RATIO_GOAL,
            )
        )
    one = next((o for o in bots if o.target.replicas == 1), None)
    for many in (o for o in bots if o.target.replicas > 1):
        if one is None:
            continue
        ratio = many.rate / one.rate if one.rate else 0.0
        print(
            goal_line(
                f"{many.target.replicas} replicas vs 1",
                f"{ratio:.2f}x ({many.rate:.0f} / {one.rate:.0f})",
                f"(no goal; {cores()} cores for all the processes)",
                None,
            )
        )
    for outcome in outcomes:
        fraction = outcome.result["cpu"] / outcome.window if outcome.window else None
        print(
            goal_line(
                f"fake Telegram CPU, {outcome.target.name}",
                "-" if fraction is None else f"{fraction:.0%} of a core",
                f"< {FEED_CPU_GOAL:.0%}: not the bottleneck",
                None if fraction is None else fraction < FEED_CPU_GOAL,
            )
        )
    levels = Counter[str]()
    for outcome in outcomes:
        levels.update(outcome.log_levels)
    shown = ", ".join(f"{level} {n}" for level, n in sorted(levels.items()))
    print(f"\nBot log lines with WARNING/ERROR/CRITICAL/Traceback: {shown or 'none'}.")
    for outcome in outcomes:
        for line in outcome.log_lines:
            print(f"  {outcome.target.name}: {line}")
    return 1 if bad else 0


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


# --- PostgreSQL and Redis ----------------------------------------------------------------------

PG_HOST, PG_USER = "127.0.0.1", "postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"


@contextlib.contextmanager
def fresh_database() -> Any:
    """A new PostgreSQL database (``createdb``), dropped on exit; yields its URL."""
    name = f"bench_{secrets.token_hex(4)}"
    subprocess.run(  # noqa: S603 - fixed programs, a name we made
        ["createdb", "-h", PG_HOST, "-U", PG_USER, name],  # noqa: S607
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:5432/{name}"
    finally:
        subprocess.run(  # noqa: S603
            ["dropdb", "-h", PG_HOST, "-U", PG_USER, "--if-exists", "--force", name],  # noqa: S607
            check=False,
            capture_output=True,
            timeout=60,
        )


@contextlib.contextmanager
def fresh_redis_prefix() -> Any:
    """A REDIS_PREFIX no one uses; its keys are deleted on exit."""
    import redis

    prefix = f"bench_{secrets.token_hex(4)}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
        yield prefix
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()


# --- running --------------------------------------------------------------------------------


def targets(args: argparse.Namespace) -> list[Target]:
    if args.replicas > 1:
        return [
            Target("echo", "echo", 1, "webhook"),
            Target("bot", "bot", 1, "webhook"),
            Target(f"bot-x{args.replicas}", "bot", args.replicas, "webhook"),
        ]
    return [Target("echo", "echo", 1, args.feed), Target("bot", "bot", 1, args.feed)]


async def run_all(
    args: argparse.Namespace,
    sizes: Sizes,
    workdir: Path,
    database_url: str | None,
    redis_prefix: str | None,
) -> int:
    async with Emulators() as emulators, FakeTelegram() as feed:
        await emulators.set_latency(args.latency_ms / 1000)
        settings = effective(bot_env(emulators, feed, args, workdir, database_url, None))
        if args.rate_limit_count is None and 0 < settings.rate_limit_count < sizes.per_user:
            args.rate_limit_count, args.rate_limit_raised = sizes.per_user, True
            settings = effective(bot_env(emulators, feed, args, workdir, database_url, None))
        outcomes = []
        for index, target in enumerate(targets(args)):
            outcome = await measure(
                target, index, emulators, feed, args, sizes, workdir, database_url, redis_prefix
            )
            outcomes.append(outcome)
        log = await emulators.requests()
    windows = [(o.result["first_served"], o.result["last_answer"]) for o in outcomes]
    provider_requests = {
        name: sum(
            1
            for r in log[name]
            for first, last in windows
            if first is not None and last is not None and first <= r.at <= last
        )
        for name in PROVIDERS
    }
    return report(args, sizes, settings, outcomes, provider_requests, database_url, redis_prefix)


def landed() -> tuple[bool, bool, bool]:
    """Whether this bot has Telegram webhook mode, DATABASE_URL (PostgreSQL) and REDIS_URL."""
    fields = Settings.model_fields
    return "telegram_webhook_url" in fields, "database_url" in fields, "redis_url" in fields


def parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Sizes]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.updates",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK.users} users x {QUICK.per_user} updates (default {FULL.users} x"
        f" {FULL.per_user})",
    )
    parser.add_argument("--users", type=int, default=None, help="distinct users, all at once")
    parser.add_argument(
        "--per-user", type=int, default=None, help="updates each user sends (the session cycles)"
    )
    parser.add_argument(
        "--feed",
        choices=("polling", "webhook"),
        default="polling",
        help="how updates reach the bots (default polling)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="2: echo, one replica and two replicas of the bot, on webhooks and PostgreSQL",
    )
    parser.add_argument(
        "--postgres", action="store_true", help="a fresh PostgreSQL database (createdb)"
    )
    parser.add_argument(
        "--redis",
        action="store_true",
        help=f"REDIS_URL={REDIS_URL} with a fresh REDIS_PREFIX (deleted after)",
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=100,
        help="webhook feed: at most this many updates sent and not answered (100)",
    )
    parser.add_argument("--rate-limit-count", type=int, default=None, help="RATE_LIMIT_COUNT")
    parser.add_argument(
        "--rate-limit-window", type=float, default=None, help="RATE_LIMIT_WINDOW, seconds"
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=None,
        help="added to every provider request (100; --quick: 0): only the warm-up asks them",
    )
    parser.add_argument(
        "--stall",
        type=float,
        default=60.0,
        help="give a run up after this many seconds with no update answered (60)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the workloads and the bots' logs in this new directory (default: temporary)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="write a cProfile of each bot process into this directory (slows the bot down)",
    )
    args = parser.parse_args(argv)
    args.rate_limit_raised = False
    base = QUICK if args.quick else FULL
    if args.latency_ms is None:
        args.latency_ms = 0.0 if args.quick else 100.0
    sizes = Sizes(
        users=base.users if args.users is None else args.users,
        per_user=base.per_user if args.per_user is None else args.per_user,
    )
    if sizes.users < 1 or sizes.per_user < 1 or args.in_flight < 1 or args.replicas < 1:
        parser.error("--users, --per-user, --in-flight and --replicas must be at least 1")
    webhooks, postgres, redis = landed()
    if args.replicas > 1:  # what several replicas need (README, Production)
        args.feed, args.postgres, args.redis = "webhook", True, True
    if args.feed == "webhook" and not webhooks:
        parser.error(
            "this bot has no Telegram webhook mode yet (no TELEGRAM_WEBHOOK_URL in bot/config.py)"
        )
    if args.postgres and not postgres:
        parser.error("this bot has no DATABASE_URL (PostgreSQL) yet")
    if args.redis and not redis:
        parser.error("this bot has no REDIS_URL yet")
    return args, sizes


def main(argv: Sequence[str] | None = None) -> int:
    args, sizes = parse(argv)
    print(
        f"Updates benchmark: Python {platform.python_version()}"
        f" ({platform.python_implementation()}) on {platform.platform()};\n  CPU cores"
        f" available: {cores()} (of {os.cpu_count()}); load average at the start:"
        f" {load_average()}\n  (other work on the machine shares the cores)."
    )
    print(
        "Measured: updates fully answered per second, from the first update the fake Telegram"
        " served\n  to the last answer it received; the bot, the echo bot, the fake Telegram"
        " and the provider\n  emulators each run in a process of their own."
    )
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        else:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=False)
        url = prefix = None
        if args.postgres:
            url = stack.enter_context(fresh_database())
            print(f"PostgreSQL: a fresh database {url.rsplit('/', 1)[1]}, dropped after the run.")
        if args.redis:
            prefix = stack.enter_context(fresh_redis_prefix())
            print(f"Redis: keys under {prefix}: at {REDIS_URL}, deleted after the run.")
        return asyncio.run(run_all(args, sizes, workdir, url, prefix))


if __name__ == "__main__":
    sys.exit(main())
